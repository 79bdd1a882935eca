#!/usr/bin/env bash
# Reproduce the What/Where closed-loop results (Daucé, Albiges & Perrinet 2020, Figs. 3-5): train
# one Where network per contrast (packaged recipes where-c0.7 / where-c0.5 / where-c0.3, trained
# against the shipped What network's accuracy map), then benchmark the agent on MNIST-test at 9
# eccentricities with 0..5 saccades and the stopping rule: results/where-cX/benchmark.json + figures,
# and the combined figures in results/where/.
#   scripts/reproduce_where.sh                        # full recipes, 1000 digits per cell (the paper's count)
#   RECIPES="where-c0.5-ft where-c0.3-ft" scripts/reproduce_where.sh   # the specialists fine-tuned from 0.7
#   SET="--set stages.*.epochs=1 --set train_limit=2000" DIGITS=100 scripts/reproduce_where.sh   # smoke test
# PARALLEL=1 trains the contrasts side by side (GPU; on 2 CPU cores it is slower).
# FAITHFUL=1 also benchmarks the bug-faithful loop (original re-encoding + test-time dropout).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
DIGITS=${DIGITS:-1000}
SACCADES=${SACCADES:-5}
RECIPES=${RECIPES:-"where-c0.7 where-c0.5 where-c0.3"}
PARALLEL=${PARALLEL:-0}
FAITHFUL=${FAITHFUL:-0}
SET=${SET:-}
"$WW" data fetch >/dev/null || exit 1

pipeline() {  # train and benchmark the Where network of one recipe
  local r=$1
  local c
  c=$(sed -E 's/^where-c([0-9.]+).*/\1/' <<< "$r")
  train "$r" $SET || return 1
  "$WW" saccades --where "$RUNS/$r" --contrast "$c" --digits "$DIGITS" --saccades "$SACCADES" \
      --out "results/$r" --no-progress
  if [ "$FAITHFUL" = 1 ]; then
    "$WW" saccades --where "$RUNS/$r" --contrast "$c" --digits "$DIGITS" --saccades "$SACCADES" --faithful \
        --out "results/$r/faithful" --no-progress
  fi
}

for r in $RECIPES; do
  if [ "$PARALLEL" = 1 ]; then pipeline "$r" > "$RUNS/pipeline-$r.log" 2>&1 & else pipeline "$r"; fi
done
wait
files=()
for r in $RECIPES; do [ -f "results/$r/benchmark.json" ] && files+=("results/$r/benchmark.json"); done
[ ${#files[@]} -gt 0 ] && "$WW" figures where "${files[@]}" --out results/where
