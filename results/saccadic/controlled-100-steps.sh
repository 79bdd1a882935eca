#!/usr/bin/env bash
# controlled 100-step fine-tuning variants of the saccadic transformer (same seed, same batches)
cd /work/main
W="/work/main/.venv/bin/whatwhere"
common="--set train_limit=10000 --set eval_digits=200 --no-progress"
st='stages=[{name: s40, sigma: 40, epochs: 1}]'
for v in "base|" "freezewhere|--set model_args.freeze=[where]" "lr1e-5|--set optimizer.lr=0.00001" "nomap|--set objective_args.map_weight=0" "noe2e|--set model_args.end_to_end=false"; do
  name=${v%%|*}; args=${v#*|}
  rm -rf /work/tmp/sacx/$name
  OMP_NUM_THREADS=1 $W train saccadic_transformer --out /work/tmp/sacx/$name --set "$st" $common $args > /work/tmp/sacx/$name.log 2>&1
  echo "== $name" >> /work/tmp/sacx/diag.txt
  OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python /work/tmp/sac_diag.py /work/tmp/sacx/$name 2>/dev/null | grep ckpt >> /work/tmp/sacx/diag.txt
done
