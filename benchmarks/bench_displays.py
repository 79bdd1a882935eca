"""Displays per second: the batched whatwhere generator against a per-sample numpy pipeline.

The baseline follows the original What/Where algorithm one display at a time, with its costs:
the global legacy RNG reseeded with the sample index for the placement, a fresh MotionClouds
texture seeded with a hash of the contrast-scaled digit field (centred Fourier grid and envelope
rebuilt per display, uniform phase and Gaussian amplitude, inverse FFT, Michelson
rectification), digit placement by translation with zero fill, contrast, opaque max-mixing,
min-max re-normalisation and the circular mask (mask grid rebuilt per display).  It does not
include the original's PIL/ToTensor conversions or DataLoader overhead, so it is a little faster
than the original code (which makes about 556 displays/s on one core of the project machine).  Both are measured in the same run, on the same
MNIST digits; the ratio is printed.

    python benchmarks/bench_displays.py            # CPU (and CUDA when present)
    python benchmarks/bench_displays.py --help
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
import torch

from whatwhere.data import DisplaySet, mnist, preset


def _mc_noise_numpy(N: int, sf_0: float, B_sf: float, seed: int) -> np.ndarray:
    """One MotionClouds frame as the original computes it: grids and envelope rebuilt per call,
    the global legacy RNG reseeded, uniform phase and Gaussian amplitude, inverse FFT, Michelson."""
    fx, fy = np.meshgrid(np.arange(-N // 2, N // 2) / N, np.arange(-N // 2, N // 2) / N)
    f = np.sqrt(fx**2 + fy**2)
    f[N // 2, N // 2] = np.inf
    env = np.exp(-0.5 * np.log(f / sf_0) ** 2 / np.log((sf_0 + B_sf) / sf_0) ** 2) / f
    np.random.seed(seed)
    phase = 2 * np.pi * np.random.rand(N, N)
    spec = env * np.random.randn(N, N) * np.exp(1j * phase)
    spec = np.fft.ifftshift(spec)
    spec[0, 0] = 0
    z = np.real(np.fft.ifft2(spec))
    z -= z.mean()
    return 0.5 * z / np.abs(z).max() + 0.5


def reference_display(digit: np.ndarray, cfg, index: int) -> np.ndarray:
    """One display, per sample, following the original algorithm (the original notebooks' per-sample pipeline):
    the global legacy RNG reseeded with the sample index for the placement, the clutter seeded
    with a hash of the contrast-scaled digit field, opaque max-mixing, min-max and mask."""
    N = cfg.size
    np.random.seed(index)
    canvas = np.zeros((N, N))
    if N == 28:
        di, dj = (int(np.clip(np.random.randn() * cfg.sigma, -cfg.clip, cfg.clip)) for _ in range(2))
        canvas[:] = digit
    else:
        theta = 2 * np.pi * np.random.rand()
        r = min(abs(np.random.randn()) * cfg.sigma, cfg.clip)
        di, dj = int(r * np.cos(theta)), int(r * np.sin(theta))
        a = N // 2 - 14
        canvas[a:a + 28, a:a + 28] = digit
    shifted = np.zeros_like(canvas)
    src = canvas[max(0, -di):N - max(0, di), max(0, -dj):N - max(0, dj)]
    shifted[max(0, di):max(0, di) + src.shape[0], max(0, dj):max(0, dj) + src.shape[1]] = src
    lo, hi = cfg.contrast_bounds
    c = lo + (hi - lo) * np.random.rand()
    F = (shifted - shifted.min()) / max(shifted.max() - shifted.min(), 1e-12)
    F = c * (2 * F - 1) / 2 + 0.5
    seed = hash(tuple(F.flatten())) % (2**31 - 1)
    F[F <= 0.5] = -np.inf
    B = cfg.clutter * (2 * _mc_noise_numpy(N, cfg.sf_0, cfg.B_sf, seed) - 1) / 2 + 0.5
    out = np.clip(np.maximum(F, B), 0, 1)
    if cfg.masked:
        out = (out - out.min()) / (out.max() - out.min())
        x, y = np.meshgrid(np.linspace(-1, 1, N), np.linspace(-1, 1, N))
        out = (out - 0.5) * (np.sqrt(x**2 + y**2) < 1) + 0.5
    return out.astype(np.float32)


def bench_reference(digits: np.ndarray, cfg, n: int, repeats: int) -> float:
    reference_display(digits[0], cfg, 0)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for k in range(n):
            reference_display(digits[k % len(digits)], cfg, k)
        best = min(best, time.perf_counter() - t)
    return n / best


def bench_ours(images, labels, cfg, n: int, batch: int, repeats: int, device: str) -> float:
    ds = DisplaySet(images, labels, cfg, seed=0, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for b in ds.epoch(10_000, batch, limit=min(n, 2 * batch)):  # warm-up
        pass
    sync()
    best = math.inf
    for r in range(repeats):
        t = time.perf_counter()
        count = 0
        epoch = r
        while count < n:  # fresh epochs: every display is generated, none is cached
            for b in ds.epoch(epoch, batch, limit=n - count):
                count += len(b)
            epoch += 1000
        sync()
        best = min(best, time.perf_counter() - t)
    return n / best


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=4096, help="displays per timed run of whatwhere (CPU)")
    p.add_argument("--n-ref", type=int, default=500, help="displays per timed run of the baseline")
    p.add_argument("--n-gpu", type=int, default=2_000_000, help="displays per timed run on CUDA")
    p.add_argument("--batch", type=int, default=256, help="batch size of whatwhere on CPU")
    p.add_argument("--batch-gpu", type=int, default=65536, help="batch size of whatwhere on CUDA")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 28], choices=[128, 28])
    p.add_argument("--preset", default="paper")
    p.add_argument("--mnist-dir", default=None)
    p.add_argument("--no-cuda", action="store_true", help="skip CUDA even when present")
    args = p.parse_args(argv)

    data = mnist.load("test", args.mnist_dir)
    digits_np = data.images.numpy().astype(np.float64)
    print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    rows = []
    for size in args.sizes:
        cfg = preset(args.preset, size)
        ref = bench_reference(digits_np, cfg, args.n_ref, args.repeats)
        ours = bench_ours(data.images, data.labels, cfg, args.n, args.batch, args.repeats, "cpu")
        rows.append((size, "cpu", ref, ours))
        if torch.cuda.is_available() and not args.no_cuda:
            gpu = bench_ours(data.images, data.labels, cfg, args.n_gpu, args.batch_gpu, args.repeats, "cuda")
            rows.append((size, torch.cuda.get_device_name(), ref, gpu))
    print(f"\n| display | device | per-sample numpy (displays/s) | whatwhere (displays/s) | ratio |")
    print("|---|---|---|---|---|")
    for size, dev, ref, ours in rows:
        print(f"| {size}×{size} | {dev} | {ref:,.0f} | {ours:,.0f} | {ours / ref:.1f}× |")


if __name__ == "__main__":
    main()
