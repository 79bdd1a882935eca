"""Training throughput of the What network with displays made on the fly.

Measures samples per second of complete What training steps (28×28 displays of the `paper`
preset, σ = 15, batch 100, Adam, forward + backward + step) in three ways, in the same run:

* **per-sample**: displays made one at a time by the per-sample numpy pipeline of
  ``bench_displays.py`` (the original algorithm), stacked into a batch, then the training step;
* **whatwhere**: displays from :class:`whatwhere.data.DisplaySet` (batched, seeded), then the
  same step;
* **step only**: the training step on a fixed batch (the ceiling set by the network itself).

Then (on the CPU) a table of every registry model: samples/s of a training step in fp32 and in
bf16 (the recipe key ``precision``), and the achieved GFLOP/s against a matrix-multiply peak
measured in the same run.

    python benchmarks/bench_training.py [--steps 60] [--device cuda]
    python benchmarks/bench_training.py --skip-pipeline --models atn stn128 --model-steps 5
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_displays import reference_display  # noqa: E402

from whatwhere.data import DisplaySet, mnist, preset  # noqa: E402
from whatwhere.models import WhatNet  # noqa: E402


# ------------------------------------------------------------------ every registry model, fp32 and bf16


def _recipe_for(model_name: str):
    """The first packaged recipe that trains ``model_name`` (its objective and displays)."""
    from whatwhere.engine.recipe import load_recipe, recipe_names

    names = recipe_names()
    for name in sorted(names, key=lambda n: n != model_name):  # the model's own recipe first
        try:
            r = load_recipe(name)
        except Exception:  # noqa: BLE001 - a recipe that does not resolve here is skipped
            continue
        if r.model == model_name:
            return r
    return None


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n × n`` matrix product in ``dtype`` with the current threads."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def model_steps(steps: int, batch: int, models: list[str] | None, mnist_dir: str | None) -> None:
    """samples/s of complete training steps (forward under the precision, the recipe's objective,
    backward, SGD step) on a fixed batch, for every registry model in fp32 and bf16, with the
    achieved GFLOP/s (matrix products and convolutions, forward + backward, counted by
    ``torch.utils.flop_counter``) against a matrix-multiply peak measured in the same run."""
    from torch.utils.flop_counter import FlopCounterMode

    from whatwhere.engine.objectives import make_objective
    from whatwhere.engine.precision import autocast, prepare_model
    from whatwhere.models.registry import MODELS, create_model

    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    train = mnist.load("train", mnist_dir)
    print(f"\nEvery registry model: one training step on a fixed batch of {batch}, the recipe's objective, "
          f"plain SGD, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"matrix-multiply peak (2048², same run): fp32 {peaks['fp32']:,.0f} GFLOP/s, "
          f"bf16 {peaks['bf16']:,.0f} GFLOP/s\n")
    print("| model | recipe | GFLOP/sample | fp32 samples/s | bf16 samples/s | bf16/fp32 | fp32 % of peak | bf16 % of peak |")
    print("|---|---|---|---|---|---|---|---|")
    for name in models or sorted(MODELS):
        recipe = _recipe_for(name)
        if recipe is None:
            print(f"| {name} | (no packaged recipe: skipped) | | | | | | |")
            continue
        ds = DisplaySet(train.images, train.labels, recipe.stages[0].display, seed=0)
        d = ds.batch(0, batch)
        objective = make_objective(recipe, torch.device("cpu"))
        sps, flops = {}, 0.0
        for precision in ("fp32", "bf16"):
            torch.manual_seed(0)
            model = prepare_model(create_model(name, **recipe.model_args), precision)
            opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)

            def step():
                with autocast(precision, "cpu"):
                    loss, _ = objective(model, d)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            step()
            if precision == "fp32":
                with FlopCounterMode(display=False) as fc:
                    step()
                flops = fc.get_total_flops() / batch
            t = time.perf_counter()
            for _ in range(steps):
                step()
            sps[precision] = steps * batch / (time.perf_counter() - t)
        g = flops / 1e9
        print(f"| {name} | {recipe.name} | {g:.3f} | {sps['fp32']:,.0f} | {sps['bf16']:,.0f} | "
              f"{sps['bf16'] / sps['fp32']:.2f}× | {100 * g * sps['fp32'] / peaks['fp32']:.0f} % | "
              f"{100 * g * sps['bf16'] / peaks['bf16']:.0f} % |", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=60, help="timed training steps per path")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=2, help="timed repeats (best is kept)")
    p.add_argument("--mnist-dir")
    p.add_argument("--models", nargs="*", help="the registry models of the fp32/bf16 table (default: all)")
    p.add_argument("--model-steps", type=int, default=5, help="timed steps per model and precision")
    p.add_argument("--skip-pipeline", action="store_true", help="only the per-model fp32/bf16 table")
    args = p.parse_args(argv)
    if args.skip_pipeline:
        model_steps(args.model_steps, args.batch, args.models, args.mnist_dir)
        return
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    train = mnist.load("train", args.mnist_dir)
    cfg = preset("paper", 28)
    torch.manual_seed(0)
    model = WhatNet().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(images, labels):
        loss = F.cross_entropy(model(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    digits = train.images.numpy().astype(np.float64)
    B = args.batch

    def per_sample(k):
        idx = range(k * B, (k + 1) * B)
        imgs = np.stack([reference_display(digits[i], cfg, i) for i in idx])
        step(torch.from_numpy(imgs).to(dev), train.labels[k * B:(k + 1) * B].to(dev))

    ds = DisplaySet(train.images, train.labels, cfg, seed=0, shuffle=True, device=dev)

    def ours(k):
        d = ds.batch(k * B, (k + 1) * B, epoch=k // 500)
        step(d.images, d.labels)

    fixed = ds.batch(0, B)

    def step_only(k):
        step(fixed.images, fixed.labels)

    rows = []
    for name, fn in (("per-sample pipeline", per_sample), ("whatwhere DisplaySet", ours), ("step only", step_only)):
        fn(0)
        best = math.inf
        for r in range(args.repeats):
            sync()
            t = time.perf_counter()
            for k in range(1, args.steps + 1):
                fn(k + r * args.steps)
            sync()
            best = min(best, time.perf_counter() - t)
        rows.append((name, args.steps * B / best))
    base = rows[0][1]
    print(f"What training step, batch {B}, 28×28 paper displays, device {dev}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)\n")
    print("| path | samples/s | vs per-sample |")
    print("|---|---|---|")
    for name, sps in rows:
        print(f"| {name} | {sps:,.0f} | {sps / base:.1f}× |")
    if dev.type == "cpu":
        model_steps(args.model_steps, args.batch, args.models, args.mnist_dir)


if __name__ == "__main__":
    main()
