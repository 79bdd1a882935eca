#!/usr/bin/env bash
# The controlled test of RESULTS.md ("The classification gradient should not reach the saccade"):
# 100 steps (10,000 displays at sigma 40) of the saccadic_transformer recipe from its initial
# pathways, one factor changed per variant, same seed hence same batches; then the accuracy and
# median fixation error at 4.4 / 22 / 40 px on 400 digits.  Run from the repository root, about
# 2 min per variant on one CPU core; output in runs/sacx/diag.txt.
set -euo pipefail
W=${WW:-whatwhere}
common=(--set train_limit=10000 --set eval_digits=200 --no-progress --set 'stages=[{name: s40, sigma: 40, epochs: 1}]')
mkdir -p runs/sacx
for v in "base|" "freezewhere|--set model_args.freeze=[where]" "lr1e-5|--set optimizer.lr=0.00001" \
         "nomap|--set objective_args.map_weight=0" "detached|--set model_args.end_to_end=false"; do
  name=${v%%|*}; args=${v#*|}
  rm -rf "runs/sacx/$name"
  # the recipe's default is now end_to_end: false; the test started from end_to_end: true
  OMP_NUM_THREADS=1 "$W" train saccadic_transformer --out "runs/sacx/$name" "${common[@]}" \
      --set model_args.end_to_end=true $args > "runs/sacx/$name.log" 2>&1
  echo "== $name" >> runs/sacx/diag.txt
  OMP_NUM_THREADS=1 python results/saccadic/controlled-100-steps-diag.py "runs/sacx/$name" | grep ckpt >> runs/sacx/diag.txt
done
