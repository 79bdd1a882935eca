#!/usr/bin/env bash
# The foveated saccadic transformer: the packaged recipe `saccadic_transformer` (the POLO periphery)
# and its one-factor ablations, then benchmarked side by side on the same displays (preset
# dabane2021, 1,000 MNIST-test digits per cell) -> results/saccadic/.  The ablation `retina` is the
# recipe `saccadic_transformer-retina` (What/Where's log-Gabor periphery, shipped before); the others
# (K1, K3, nomap, e2e, lenet) change one factor of that retina recipe, the one they were measured
# against (RESULTS.md).
#   scripts/reproduce_saccadic.sh                 # everything (about 6 CPU-hours on 2 cores; minutes on a GPU)
#   ABLATIONS="" scripts/reproduce_saccadic.sh    # the main recipe only (about 30 min on one CPU core)
#   DIGITS=200 SET="--set train_limit=2000" scripts/reproduce_saccadic.sh   # smoke test
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
DIGITS=${DIGITS:-1000}
SET=${SET:-}
ABLATIONS=${ABLATIONS-"retina K1 K3 nomap e2e lenet"}
ablation_args() {  # the one factor each ablation changes (of the retina recipe)
  case $1 in
    retina) args=() ;;
    K1)    args=(--set model_args.glimpses=1) ;;
    K3)    args=(--set model_args.glimpses=3) ;;
    nomap) args=(--set objective_args.map_weight=0) ;;
    e2e) args=(--set model_args.end_to_end=true) ;;
    lenet) args=(--set model_args.fovea=what --set "init={what: zoo:what-dabane2021, where: zoo:where-c0.7}"
                 --set objective_args.accuracy_map=zoo:what-dabane2021) ;;
    *) echo "unknown ablation $1"; exit 1 ;;
  esac
}
"$WW" data fetch >/dev/null || exit 1
train saccadic_transformer $SET
models=("$RUNS/saccadic_transformer")
for a in $ABLATIONS; do
  ablation_args "$a"
  name="saccadic-$a"
  mkdir -p "results/$name"
  t0=$SECONDS
  "$WW" train saccadic_transformer-retina --out "$RUNS/$name" --no-progress "${args[@]}" $SET > "results/$name/train.log" 2>&1
  echo "train wall time: $((SECONDS - t0)) s" >> "results/$name/train.log"
  cp "$RUNS/$name/metrics.csv" "$RUNS/$name/recipe.yaml" "results/$name/"
  models+=("$RUNS/$name")
done
"$WW" benchmark "${models[@]}" --digits "$DIGITS" --out results/saccadic --no-progress
"$WW" figures scanpaths "$RUNS/saccadic_transformer" --agent where-c0.7 --out results/saccadic/scanpaths.png
