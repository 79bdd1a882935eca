#!/usr/bin/env bash
# The unified benchmark of every trained model in results/ (whatever is there): the transformers
# and the What/Where agent (its three Where networks), on the same displays.
#   scripts/benchmark_all.sh                      # 1000 digits per cell, preset dabane2021 -> results/benchmark
#   DIGITS=200 OUT=/tmp/bench scripts/benchmark_all.sh
#   PRESET=paper OUT=results/benchmark-paper scripts/benchmark_all.sh   # the What/Where paper's clutter (1.0)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
DIGITS=${DIGITS:-1000}
PRESET=${PRESET:-dabane2021}
OUT=${OUT:-results/benchmark}
EXTRA=${EXTRA:-}
runs=()
for r in stn128 atn polo_atn polo_atn85 conv_polo_atn $EXTRA where-c0.7 where-c0.5 where-c0.3; do
  [ -f "results/$r/model.safetensors" ] && runs+=("results/$r")
done
[ ${#runs[@]} -gt 0 ] || { echo "no trained models in results/"; exit 1; }
$PY -m whatwhere.cli benchmark "${runs[@]}" --what results/what --digits "$DIGITS" --preset "$PRESET" \
    --out "$OUT" --no-progress
