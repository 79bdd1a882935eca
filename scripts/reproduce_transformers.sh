#!/usr/bin/env bash
# Train the spatial transformers of the 128x128 task (Dabane, Perrinet & Daucé 2022) from their
# packaged recipes; each run's metrics, recipe, log and training curves go to results/<recipe>/.
#   scripts/reproduce_transformers.sh                                   # all five, full recipes (GPU)
#   RECIPES="polo_atn polo_atn85" THREADS=1 PARALLEL=1 scripts/reproduce_transformers.sh   # two CPU jobs
#   SET="--set stages.*.epochs=1 --set train_limit=1000" scripts/reproduce_transformers.sh   # smoke test
# The unified benchmark is a separate step: scripts/benchmark_all.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
RECIPES=${RECIPES:-"stn128 atn polo_atn polo_atn85 conv_polo_atn"}
PROFILE=${PROFILE:-}
PARALLEL=${PARALLEL:-0}
THREADS=${THREADS:-}
SET=${SET:-}
"$WW" data fetch >/dev/null || exit 1
[ -n "$THREADS" ] && export OMP_NUM_THREADS=$THREADS
for r in $RECIPES; do
  args=($SET)
  [ -n "$PROFILE" ] && args+=(--profile "$PROFILE")
  if [ "$PARALLEL" = 1 ]; then train "$r" "${args[@]}" & else train "$r" "${args[@]}"; fi
done
wait
