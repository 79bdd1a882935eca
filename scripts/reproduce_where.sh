#!/usr/bin/env bash
# The What/Where study (Daucé, Albiges & Perrinet 2020): `whatwhere reproduce paper` trains what,
# where-c0.7, where-c0.5-ft and where-c0.3-ft, benchmarks the agent at the paper's 9
# eccentricities after 0..5 saccades (preset paper), evaluates the What network (central accuracy,
# shift-accuracy map), draws Figs. 4/5B and writes reproduce/paper/report/index.html.
#   scripts/reproduce_where.sh                         # full recipes
#   scripts/reproduce_where.sh --profile quick --digits 100   # a quick, labelled pass
#   scripts/reproduce_where.sh --from-zoo              # the shipped models only
# Any option of `whatwhere reproduce` passes through (`whatwhere reproduce --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
exec "$WW" reproduce paper "$@"
