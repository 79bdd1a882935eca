"""Training throughput of the What network with displays made on the fly.

Measures samples per second of complete What training steps (28×28 displays of the `paper`
preset, σ = 15, batch 100, Adam, forward + backward + step) in three ways, in the same run:

* **per-sample**: displays made one at a time by the per-sample numpy pipeline of
  ``bench_displays.py`` (the original algorithm), stacked into a batch, then the training step;
* **whatwhere**: displays from :class:`whatwhere.data.DisplaySet` (batched, seeded), then the
  same step;
* **step only**: the training step on a fixed batch (the ceiling set by the network itself).

    python benchmarks/bench_training.py [--steps 60] [--device cuda]
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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=60, help="timed training steps per path")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=2, help="timed repeats (best is kept)")
    p.add_argument("--mnist-dir")
    args = p.parse_args(argv)
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


if __name__ == "__main__":
    main()
