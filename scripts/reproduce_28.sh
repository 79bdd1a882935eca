#!/usr/bin/env bash
# Reproduce the 28×28 comparison (What, What under the STN study's clutter, STN-28): full recipes,
# central/general accuracy and 55×55 shift-accuracy maps, written to results/<recipe>/.
#   scripts/reproduce_28.sh                      # full recipes, 10,000 digits per map cell
#   SET="--set stages.*.epochs=1 --set train_limit=500" DIGITS=50 scripts/reproduce_28.sh   # smoke test
# PARALLEL=1 runs the recipes side by side (use it on a GPU machine; on 2 CPU cores it is slower).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
RUNS=${RUNS:-runs}
DIGITS=${DIGITS:-10000}
TRAIN_TIMEOUT=${TRAIN_TIMEOUT:-100000}
RECIPES=${RECIPES:-"what what-dabane2021 stn28"}
PARALLEL=${PARALLEL:-0}
SET=${SET:-}
mkdir -p "$RUNS"
ww() { $PY -m whatwhere.cli "$@"; }
ww data fetch >/dev/null || exit 1

pipeline() {  # train, evaluate and plot one recipe
  local r=$1
  mkdir -p "results/$r"
  local t0=$SECONDS
  timeout "$TRAIN_TIMEOUT" $PY -m whatwhere.cli train "configs/$r.yaml" --out "$RUNS/$r" --no-progress $SET \
      > "results/$r/train.log" 2>&1
  echo "train wall time: $((SECONDS - t0)) s (exit $?)" | tee -a "results/$r/train.log"
  tail -n 2 "results/$r/train.log"
  ww eval central "$RUNS/$r" --digits 10000 --out "results/$r" --name "$r"
  ww eval accuracy-map "$RUNS/$r" --digits "$DIGITS" --out "results/$r" --name "$r"
  ww plot curves "$RUNS/$r" --out "results/$r/training_curves.png"
  cp "$RUNS/$r/metrics.csv" "$RUNS/$r/recipe.yaml" "results/$r/"
  [ -f "$RUNS/$r/model.safetensors" ] && cp "$RUNS/$r/model.safetensors" "$RUNS/$r/model.json" "results/$r/"
  if [ "$r" = stn28 ]; then ww plot transformer "$RUNS/$r" --out "results/$r/transformer_grid.png"; fi
}

for r in $RECIPES; do
  if [ "$PARALLEL" = 1 ]; then pipeline "$r" > "$RUNS/pipeline-$r.log" 2>&1 & else pipeline "$r"; fi
done
wait
[ "$PARALLEL" = 1 ] && cat "$RUNS"/pipeline-*.log
ww plot maps results/what/accuracy_map.npy results/what-dabane2021/accuracy_map.npy results/stn28/accuracy_map.npy \
   --labels "What (paper, clutter 1.0)" "What (clutter 0.75)" "STN-28 (clutter 0.75)" --published \
   --out results/maps_28.png
