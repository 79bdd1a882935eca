#!/usr/bin/env bash
# Reproduce the What/Where closed-loop results (Daucé, Albiges & Perrinet 2020, Figs. 3-5):
# train one Where network per contrast (configs/where-c0.7/0.5/0.3.yaml, using the What network
# and accuracy map in results/what), then benchmark the agent on MNIST-test at 9 eccentricities
# with 0..5 saccades and the stopping rule, and write results/where-cX/benchmark.json + figures
# and the combined figures in results/where/.
#   scripts/reproduce_where.sh                        # full recipes, 1000 digits per cell (the paper's count)
#   SET="--set stages.*.epochs=1 --set train_limit=2000" DIGITS=100 scripts/reproduce_where.sh   # smoke test
# PARALLEL=1 trains/benchmarks the three contrasts side by side (GPU; on 2 CPU cores it is slower).
# FAITHFUL=1 also benchmarks the bug-faithful loop (original re-encoding + test-time dropout).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
RUNS=${RUNS:-runs}
DIGITS=${DIGITS:-1000}
SACCADES=${SACCADES:-5}
CONTRASTS=${CONTRASTS:-"0.7 0.5 0.3"}
TRAIN_TIMEOUT=${TRAIN_TIMEOUT:-100000}
PARALLEL=${PARALLEL:-0}
FAITHFUL=${FAITHFUL:-0}
DEVICE=${DEVICE:-auto}
SET=${SET:-}
WHAT=${WHAT:-results/what}
mkdir -p "$RUNS"
$PY -m whatwhere.cli data fetch >/dev/null || exit 1
[ -f "$WHAT/model.safetensors" ] && [ -f "$WHAT/accuracy_map.npy" ] || {
  echo "need $WHAT/model.safetensors and $WHAT/accuracy_map.npy (scripts/reproduce_28.sh)"; exit 1; }

pipeline() {  # train and benchmark the Where network of one contrast
  local c=$1 r="where-c$1"
  mkdir -p "results/$r"
  local t0=$SECONDS
  timeout "$TRAIN_TIMEOUT" $PY -m whatwhere.cli train "configs/$r.yaml" --out "$RUNS/$r" --no-progress $SET \
      > "results/$r/train.log" 2>&1
  local rc=$?
  echo "train wall time: $((SECONDS - t0)) s (exit $rc)" | tee -a "results/$r/train.log"
  tail -n 2 "results/$r/train.log"
  cp "$RUNS/$r/metrics.csv" "$RUNS/$r/recipe.yaml" "results/$r/"
  [ -f "$RUNS/$r/model.safetensors" ] && cp "$RUNS/$r/model.safetensors" "$RUNS/$r/model.json" "results/$r/"
  $PY -m whatwhere.agent --what "$WHAT" --where "$RUNS/$r" --contrast "$c" --digits "$DIGITS" \
      --saccades "$SACCADES" --device "$DEVICE" --out "results/$r" --no-progress
  if [ "$FAITHFUL" = 1 ]; then
    $PY -m whatwhere.agent --what "$WHAT" --where "$RUNS/$r" --contrast "$c" --digits "$DIGITS" \
        --saccades "$SACCADES" --device "$DEVICE" --faithful --out "results/$r/faithful" --no-progress
  fi
}

for c in $CONTRASTS; do
  if [ "$PARALLEL" = 1 ]; then pipeline "$c" > "$RUNS/pipeline-where-c$c.log" 2>&1 & else pipeline "$c"; fi
done
wait
[ "$PARALLEL" = 1 ] && cat "$RUNS"/pipeline-where-c*.log
files=()
for c in $CONTRASTS; do [ -f "results/where-c$c/benchmark.json" ] && files+=("results/where-c$c/benchmark.json"); done
[ ${#files[@]} -gt 0 ] && $PY -m whatwhere.agent figures "${files[@]}" --out results/where
