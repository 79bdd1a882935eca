#!/usr/bin/env bash
# The unified benchmark of every shipped model (the zoo: `whatwhere zoo list`) on the same displays:
# the transformers, the foveated saccadic transformer and the What/Where agent (one Where network
# per contrast).
#   scripts/benchmark_all.sh                      # 1000 digits per cell, preset dabane2021 -> results/benchmark
#   DIGITS=200 OUT=/tmp/bench scripts/benchmark_all.sh
#   PRESET=paper OUT=results/benchmark-paper scripts/benchmark_all.sh   # the What/Where paper's clutter (1.0)
#   WHERE="where-c0.7" OUT=... scripts/benchmark_all.sh   # the 0.7 network at every contrast (paper reading)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
DIGITS=${DIGITS:-1000}
PRESET=${PRESET:-dabane2021}
OUT=${OUT:-results/benchmark}
MODELS=${MODELS:-"stn128 atn polo_atn polo_atn85 conv_polo_atn saccadic_transformer saccadic_transformer-retina"}
WHERE=${WHERE:-"where-c0.7 where-c0.5-ft where-c0.3-ft"}
EXTRA=${EXTRA:-}
shipped=$("$WW" zoo list | awk 'NR > 1 {print $1}')
models=()
for m in $MODELS $WHERE $EXTRA; do
  if grep -qx "$m" <<< "$shipped" || [ -e "$m" ]; then models+=("$m"); fi
done
[ ${#models[@]} -gt 0 ] || { echo "no models to benchmark"; exit 1; }
"$WW" benchmark "${models[@]}" --what what --digits "$DIGITS" --preset "$PRESET" --out "$OUT" --no-progress
