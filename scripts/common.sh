# Shared by the reproduce scripts: the `whatwhere` command and the copy of a run into results/.
WW=${WW:-whatwhere}
command -v "$WW" >/dev/null 2>&1 || WW="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin/whatwhere"
RUNS=${RUNS:-runs}
mkdir -p "$RUNS"

# train RECIPE [train args...]: train a packaged recipe into $RUNS/RECIPE, its log in results/RECIPE/train.log
train() {
  local r=$1; shift
  mkdir -p "results/$r"
  local t0=$SECONDS
  echo "command: $WW train $r --out $RUNS/$r --no-progress $*" > "results/$r/train.log"
  timeout "${TRAIN_TIMEOUT:-100000}" "$WW" train "$r" --out "$RUNS/$r" --no-progress "$@" >> "results/$r/train.log" 2>&1
  local rc=$?
  echo "train wall time: $((SECONDS - t0)) s (exit $rc) on $(uname -m), $(nproc) cores" | tee -a "results/$r/train.log"
  cp "$RUNS/$r/metrics.csv" "$RUNS/$r/recipe.yaml" "results/$r/" 2>/dev/null
  "$WW" figures curves "$RUNS/$r" --out "results/$r/training_curves.png" >/dev/null 2>&1
  [ -f "$RUNS/$r/model.safetensors" ] && echo "to ship it: $WW zoo add $RUNS/$r --name $r --metric ..."
  return $rc
}
