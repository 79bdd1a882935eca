#!/usr/bin/env bash
# The spatial-transformer study (Dabane, Perrinet & Daucé 2021/22): `whatwhere reproduce stn-study`
# trains stn28, stn128, atn, polo_atn, polo_atn85 and conv_polo_atn (a GPU for the 128x128 ones),
# evaluates STN-28 (central accuracy, map, glimpses), benchmarks the others (preset dabane2021)
# and writes reproduce/stn-study/report/index.html.
#   scripts/reproduce_transformers.sh                                  # full recipes
#   scripts/reproduce_transformers.sh --only polo_atn,polo_atn85 --max-jobs 2   # two CPU jobs
#   scripts/reproduce_transformers.sh --executor slurm --partition gpu --gpus 1
# Any option of `whatwhere reproduce` passes through (`whatwhere reproduce --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
exec "$WW" reproduce stn-study "$@"
