"""Throughput of the shift-accuracy map (``whatwhere evaluate --map``, the Where network's target), before and after.

The map classifies every MNIST-test digit at each of the 55×55 shifts of the 28×28 frame (30 M forward passes of
the What LeNet for 10,000 digits), most of the What/Where paper's reproduction time on a CPU.  Measured in the same
run, on the same displays (a centred block of cells):

* **baseline**: the model as trained (NCHW weights), batches of 1,000 displays (the protocol until 2026-12-07);
* **whatwhere**: :func:`whatwhere.eval.protocols.accuracy_map` (a copy of the model with channels-last convolution
  weights, batches of 250).

The script checks that the two maps agree (the logits differ by float rounding only, so a cell may differ by a
near-tie or two) and prints cells/s and the ratio.

    python benchmarks/bench_accuracy_map.py [--digits 2000] [--radius 3] [--threads 1] [--model what]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from whatwhere.data import DisplaySet, mnist, preset
from whatwhere.engine.checkpoints import load
from whatwhere.eval.protocols import _accuracy, accuracy_map


def baseline_map(model, display, n: int, radius: int) -> np.ndarray:
    """The map as the protocol computed it before: the caller's model, NCHW, batches of 1,000."""
    test = mnist.load("test")
    ds = DisplaySet(
        test.images[:n], test.labels[:n], display.replace(placement="offset", offset=(0, 0)), seed=0, chunk_size=n
    )
    model = model.eval()
    side = 2 * radius + 1
    acc = np.zeros((side, side))
    with torch.no_grad():
        for di in range(-radius, radius + 1):
            for dj in range(-radius, radius + 1):
                c, t = _accuracy(model, ds, n, 1000, offset=(di, dj))
                acc[di + radius, dj + radius] = c / t
    return acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--digits", type=int, default=2000, help="MNIST-test digits per cell (the recipes use 10,000)")
    p.add_argument("--radius", type=int, default=3, help="cells within this many px of the centre: (2R+1)^2 cells")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", default="what", help="a 28x28 model (zoo name or run directory)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    display = preset("paper", 28)
    model = load(args.model)
    cells = (2 * args.radius + 1) ** 2
    accuracy_map(model, display, n_digits=200, radius=1, progress=False)  # warm-up (MNIST, allocator)
    t = time.perf_counter()
    base = baseline_map(model, display, args.digits, args.radius)
    t_base = time.perf_counter() - t
    t = time.perf_counter()
    fast = accuracy_map(model, display, n_digits=args.digits, radius=args.radius, progress=False)
    t_fast = time.perf_counter() - t
    diff = np.abs(base - fast).max() * args.digits
    print(f"{cells} cells x {args.digits} digits, {args.threads} thread(s), torch {torch.__version__}")
    print(f"baseline  (NCHW, batch 1000)         {cells / t_base:7.2f} cells/s")
    print(f"whatwhere (channels-last, batch 250) {cells / t_fast:7.2f} cells/s")
    print(f"ratio {t_base / t_fast:.2f}x; largest difference in a cell: {diff:.0f} of {args.digits} digits")
    full = 55 * 55 * 10000 / args.digits
    print(
        f"a full map (55 x 55 cells, 10,000 digits): {full * t_base / cells / 60:.0f} min -> "
        f"{full * t_fast / cells / 60:.0f} min at these speeds"
    )
    if diff > 2:
        raise SystemExit(f"the maps disagree by {diff:.0f} digits in a cell (more than near-ties)")


if __name__ == "__main__":
    main()
