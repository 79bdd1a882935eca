#!/usr/bin/env bash
# Reproduce the 28×28 comparison (What, What under the STN study's clutter, STN-28): full recipes,
# central/general accuracy and 55×55 shift-accuracy maps, written to results/<recipe>/.
#   scripts/reproduce_28.sh                      # full recipes, 10,000 digits per map cell
#   SET="--set stages.*.epochs=1 --set train_limit=500" DIGITS=50 scripts/reproduce_28.sh   # smoke test
# PARALLEL=1 runs the recipes side by side (on a GPU; on 2 CPU cores use THREADS=1 per job).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
DIGITS=${DIGITS:-10000}
RECIPES=${RECIPES:-"what what-dabane2021 stn28"}
PARALLEL=${PARALLEL:-0}
SET=${SET:-}
"$WW" data fetch >/dev/null || exit 1

pipeline() {  # train, evaluate and draw one recipe
  local r=$1
  train "$r" $SET
  "$WW" eval central "$RUNS/$r" --digits 10000 --out "results/$r" --name "$r"
  "$WW" eval accuracy-map "$RUNS/$r" --digits "$DIGITS" --out "results/$r" --name "$r" --no-progress
  if [ "$r" = stn28 ]; then "$WW" figures transformer "$RUNS/$r" --out "results/$r/transformer_grid.png"; fi
}

for r in $RECIPES; do
  if [ "$PARALLEL" = 1 ]; then pipeline "$r" > "$RUNS/pipeline-$r.log" 2>&1 & else pipeline "$r"; fi
done
wait
[ "$PARALLEL" = 1 ] && cat "$RUNS"/pipeline-*.log
"$WW" figures maps results/what/accuracy_map.npy results/what-dabane2021/accuracy_map.npy results/stn28/accuracy_map.npy \
   --labels "What (paper, clutter 1.0)" "What (clutter 0.75)" "STN-28 (clutter 0.75)" --published \
   --out results/maps_28.png
