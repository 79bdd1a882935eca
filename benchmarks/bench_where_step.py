"""Training throughput of the Where network (the What/Where paper's recipe `where-c0.7`), before and after two changes.

Complete training steps on displays made on the fly (the recipe's displays, batch 100: display, retina, collicular
target, forward, backward, optimizer step), measured in the same run for

* **baseline**: the collicular target of every display computed afresh (full-field map, then pooling) and torch's
  default Adam (a loop of elementwise ops per parameter);
* **whatwhere**: the targets looked up in :class:`whatwhere.retina.WhereTargets` (each offset computed once) and the
  fused Adam (one kernel per step), as `whatwhere train` does.

Both arms make the same displays and start from the same weights; the script checks that their losses agree
(they differ by float rounding only) and prints samples/s and the ratio.

    python benchmarks/bench_where_step.py [--steps 60] [--warmup 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from whatwhere.data import DisplaySet, mnist
from whatwhere.engine.objectives import load_accuracy_map
from whatwhere.engine.recipe import load_recipe
from whatwhere.models.registry import create_model
from whatwhere.retina import Colliculus, WhereTargets


def run_arm(recipe, displays: DisplaySet, *, fast: bool, steps: int, warmup: int) -> tuple[float, list[float]]:
    """Samples/s over ``steps`` timed steps (after ``warmup`` untimed ones, which also fill the table), and the
    losses of every step."""
    torch.manual_seed(0)
    model = create_model(recipe.model, **recipe.model_args).train()
    colliculus = Colliculus(model.retina)
    acc = load_accuracy_map("zoo:what")
    table = WhereTargets(colliculus, acc, baseline=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.optimizer.lr, fused=fast or None)
    losses, t0 = [], 0.0
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        d = displays.batch(i * 100, (i + 1) * 100)
        target = table(d.offsets) if fast else colliculus.where_target(acc, d.offsets, baseline=0.1)
        loss = F.binary_cross_entropy_with_logits(model(d.images).float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return steps * 100 / (time.perf_counter() - t0), losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60, help="timed steps of batch 100 per arm (default 60)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps first (default 20)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    recipe = load_recipe("where-c0.7")
    split = mnist.load("train")
    displays = DisplaySet(split.images, split.labels, recipe.stages[0].display, seed=0)
    base, base_losses = run_arm(recipe, displays, fast=False, steps=args.steps, warmup=args.warmup)
    fast, fast_losses = run_arm(recipe, displays, fast=True, steps=args.steps, warmup=args.warmup)
    drift = max(abs(a - b) for a, b in zip(base_losses, fast_losses, strict=True))
    print(f"Where training step (where-c0.7, batch 100, {args.threads} thread(s), torch {torch.__version__})")
    print(f"  baseline (target per display, default Adam): {base:8.1f} samples/s")
    print(f"  whatwhere (target table, fused Adam):        {fast:8.1f} samples/s")
    print(f"  ratio: {fast / base:.2f}x    largest loss difference over {len(base_losses)} steps: {drift:.2e}")


if __name__ == "__main__":
    main()
