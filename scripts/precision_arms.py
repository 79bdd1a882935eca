#!/usr/bin/env python
"""A stage of a training run in fp32 and in bf16 from the same state: one factor, the precision.

    OMP_NUM_THREADS=1 python scripts/precision_arms.py RUN EPOCH EPOCHS OUT [--arms bf16 fp32]

RUN is a run directory that kept the checkpoint after epoch EPOCH (``epoch-EEEE-batch-00000``; the
trainer keeps the one at each stage's end).  For each arm, OUT/ARM becomes a copy of
RUN at that checkpoint (its recipe with ``precision`` set to the arm, its metrics up to epoch
EPOCH), and EPOCHS epochs are trained there on the same batches (the checkpoint holds the random
state).  It prints the test and train accuracy per epoch of each arm; each arm's metrics.csv holds
them.  An arm already trained is not trained again.  Written for the stages that start a fresh
optimiser on a trained model (convPOLO's retrain stage collapsed in bf16:
results/conv_polo_atn/retrain-precision); run with PYTHONPATH=src from a checkout, or installed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
from pathlib import Path

import yaml

from whatwhere.engine.recipe import parse_recipe
from whatwhere.engine.trainer import TrainingInterrupted, read_metrics, train


def branch(run: Path, epoch: int, out: Path, precision: str) -> None:
    """Make ``out`` a copy of ``run`` at the checkpoint of epoch ``epoch``'s end, in ``precision``."""
    stem = f"epoch-{epoch:04d}-batch-00000"  # after EPOCH epochs (the trainer counts from 1)
    ck = run / "checkpoints"
    if not (ck / f"{stem}.safetensors").is_file() or not (ck / f"{stem}.state.pt").is_file():
        kept = sorted(p.stem for p in ck.glob("epoch-*-batch-00000.safetensors"))
        raise SystemExit(f"{run}: no checkpoint {stem} (the end of epoch {epoch}); kept: {', '.join(kept) or 'none'}")
    recipe = parse_recipe(yaml.safe_load((run / "recipe.yaml").read_text()), overrides=[f"precision={precision}"])
    tmp = out.with_name(out.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoints").mkdir(parents=True)
    for suffix in (".safetensors", ".state.pt"):
        shutil.copy2(ck / f"{stem}{suffix}", tmp / "checkpoints" / f"{stem}{suffix}")
    pointer = {"stem": stem, "epoch": epoch, "batch": 0, "loss_sum": 0.0, "correct": 0, "seen": 0, "train_time": 0.0}
    (tmp / "checkpoints" / "latest.json").write_text(json.dumps(pointer))
    (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    with open(run / "metrics.csv", newline="") as fh:
        rows = [r for r in csv.reader(fh)]
    with open(tmp / "metrics.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([rows[0]] + [r for r in rows[1:] if int(r[0]) <= epoch])
    tmp.rename(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("run", type=Path, help="the run directory to branch from")
    p.add_argument("epoch", type=int, help="branch at the end of this epoch (a kept checkpoint)")
    p.add_argument("epochs", type=int, help="epochs to train in each arm")
    p.add_argument("out", type=Path, help="the folder of the arms (OUT/bf16, OUT/fp32)")
    p.add_argument("--arms", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    args = p.parse_args(argv)
    if args.epoch < 1 or args.epochs < 1:
        p.error("EPOCH and EPOCHS must be >= 1")
    for arm in args.arms:
        out = args.out / arm
        if not out.exists():
            branch(args.run, args.epoch, out, arm)
        recipe = parse_recipe(yaml.safe_load((out / "recipe.yaml").read_text()))
        done = [r for r in read_metrics(out) if r["epoch"] > args.epoch]
        if len(done) < args.epochs:
            n_train = recipe.train_limit or 60_000
            # one batch into the next epoch: the stop comes before an epoch's close, which must run
            left = (args.epochs - len(done)) * math.ceil(n_train / recipe.batch_size) + 1
            try:
                train(recipe, out, resume=True, progress=False, stop_after_batches=left)
            except TrainingInterrupted:
                pass  # the planned stop after EPOCHS epochs (a checkpoint is saved)
    print("| arm | epoch | stage | train acc | test acc |\n|---|---|---|---|---|")
    for arm in args.arms:
        for r in read_metrics(args.out / arm):
            if args.epoch < r["epoch"] <= args.epoch + args.epochs:
                print(f"| {arm} | {int(r['epoch'])} | {r['stage_name']} | {r['train_acc']:.4f} | {r['test_acc']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
