#!/usr/bin/env bash
# Train the spatial transformers of the 128x128 task (Dabane, Perrinet & Daucé 2021/22) from their
# recipes and copy each run's weights, metrics and log into results/<recipe>/.
#   scripts/reproduce_transformers.sh                                   # all five, full recipes (GPU)
#   RECIPES="polo_atn85 conv_polo_atn" PROFILE=cpu scripts/reproduce_transformers.sh   # reduced CPU runs
#   SET="--set stages.*.epochs=1 --set train_limit=1000" scripts/reproduce_transformers.sh   # smoke test
# PARALLEL=1 trains the recipes side by side (one GPU, or THREADS=1 each on a small CPU).
# The unified benchmark is a separate step: see scripts/benchmark_all.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
RUNS=${RUNS:-runs}
RECIPES=${RECIPES:-"stn128 atn polo_atn polo_atn85 conv_polo_atn"}
PROFILE=${PROFILE:-}
PARALLEL=${PARALLEL:-0}
THREADS=${THREADS:-}
SET=${SET:-}
mkdir -p "$RUNS"
$PY -m whatwhere.cli data fetch >/dev/null || exit 1

pipeline() {  # train one recipe and copy its results
  local r=$1 out="results/$1" prof=""
  [ -n "$PROFILE" ] && prof="--profile $PROFILE"
  mkdir -p "$out"
  local t0=$SECONDS
  local cmd="$PY -m whatwhere.cli train configs/$r.yaml --out $RUNS/$r $prof --no-progress $SET"
  echo "command: ${THREADS:+OMP_NUM_THREADS=$THREADS }$cmd" > "$out/train.log"
  if [ -n "$THREADS" ]; then OMP_NUM_THREADS=$THREADS $cmd >> "$out/train.log" 2>&1; else $cmd >> "$out/train.log" 2>&1; fi
  local rc=$?
  echo "train wall time: $((SECONDS - t0)) s (exit $rc) on $(uname -m), $(nproc) cores" | tee -a "$out/train.log"
  cp "$RUNS/$r/metrics.csv" "$RUNS/$r/recipe.yaml" "$out/"
  [ -f "$RUNS/$r/model.safetensors" ] && cp "$RUNS/$r/model.safetensors" "$RUNS/$r/model.json" "$out/"
}

for r in $RECIPES; do
  if [ "$PARALLEL" = 1 ]; then pipeline "$r" & else pipeline "$r"; fi
done
wait
