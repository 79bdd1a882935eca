"""Retina encodings per second: whatwhere's ``Retina.encode`` against the original per-sample path.

The baseline follows the original What/Where code one display at a time: whiten the image with
numpy's FFT (centred spectrum times the whitening filter), then one float64 mat-vec with the
dense 2880 x 16384 bank.  Ours encodes batches on CPU (the truncated, point-symmetric form,
checked here against the float64 codes) and on CUDA when present.  Both run in the same process,
on the same cluttered displays; the table gives encodings/s, the ratio to the baseline and the
relative error of each form (L2 over all codes, and the worst ring).

    python benchmarks/bench_retina.py                 # CPU, and CUDA when present
    python benchmarks/bench_retina.py --device cpu --n 8192 --batch 1024
    python benchmarks/bench_retina.py --help
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from whatwhere.retina import Retina, whitening_filter


def displays(n: int, seed: int = 0, mnist_digits: bool = True) -> tuple[torch.Tensor, str]:
    """``(n, 128, 128)`` cluttered displays (paper preset): real MNIST digits when available."""
    from whatwhere.data import DisplaySet, mnist, preset

    try:
        if not mnist_digits:
            raise LookupError("synthetic digits requested")
        data = mnist.load("test")
        images, labels, what = data.images, data.labels, "MNIST-test digits"
    except Exception:  # no MNIST here: bright squares stand in for digits (same cost)
        g = torch.Generator().manual_seed(seed)
        images = torch.zeros(256, 28, 28, dtype=torch.uint8)
        for k in range(256):
            h = 3 + int(torch.randint(0, 5, (1,), generator=g))
            images[k, 14 - h:15 + h, 14 - h:15 + h] = 255
        labels, what = torch.zeros(256, dtype=torch.int64), "synthetic digits (bright squares)"
    reps = -(-n // len(images))
    images, labels = images.repeat(reps, 1, 1)[:n], labels.repeat(reps)[:n]
    return DisplaySet(images, labels, preset("paper"), seed=seed).batch(0, n).images, what


def reference_encode(images: np.ndarray, bank64: np.ndarray, K_centred: np.ndarray,
                     offset_clip: bool = False) -> np.ndarray:
    """The original's per-sample path: numpy FFT whitening (then +0.5 and clip for the training
    transform), then a float64 mat-vec, one display at a time."""
    out = np.empty((len(images), bank64.shape[0]))
    for k, img in enumerate(images):
        white = np.real(np.fft.ifft2(np.fft.ifftshift(np.fft.fftshift(np.fft.fft2(img)) * K_centred)))
        if offset_clip:
            white = np.clip(white + 0.5, 0.0, 1.0)
        out[k] = bank64 @ white.ravel()
    return out


def timed(fn, repeats: int, sync=lambda: None) -> float:
    """Median wall time of ``repeats`` calls after one warm-up."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def errors(codes: torch.Tensor, ref: torch.Tensor, rings: torch.Tensor) -> tuple[float, float]:
    """(relative L2 error over all codes, worst relative L2 error of one ring)."""
    d = codes.double().cpu() - ref
    per_ring = [float(d[:, rings == e].norm() / ref[:, rings == e].norm()) for e in rings.unique().tolist()]
    return float(d.norm() / ref.norm()), max(per_ring)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8192, help="displays encoded per timed repeat by whatwhere (default 8192)")
    ap.add_argument("--n-ref", type=int, default=300, help="displays encoded per repeat by the baseline (default 300)")
    ap.add_argument("--batch", type=int, default=1024, help="batch size of whatwhere's encode (default 1024)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="auto = CPU, plus CUDA when present (default auto)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats, the median is reported (default 3)")
    ap.add_argument("--inputs", default="mnist", choices=["mnist", "synthetic"],
                    help="digits of the displays: MNIST-test (falls back to synthetic) or synthetic squares")
    ap.add_argument("--offset-clip", action="store_true", help="encode clip(whiten(x) + 0.5, 0, 1) (training input)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but CUDA is not available")
    devices = ["cpu"] if args.device in ("auto", "cpu") else []
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append("cuda")

    print(f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    t = time.perf_counter()
    retina = Retina(offset_clip=args.offset_clip)
    t_bank = time.perf_counter() - t
    t = time.perf_counter()
    op = retina.truncated_operator()
    t_trunc = time.perf_counter() - t
    print(f"bank {tuple(retina.bank.shape)} built in {t_bank:.2f} s; truncated form in {t_trunc:.2f} s: "
          f"{op.macs / 1e6:.1f} M multiply-adds per image vs {retina.bank.numel() / 1e6:.1f} M dense "
          f"(tol {retina.tol:g}): {op.describe()}")

    n_max = max(args.n, args.n_ref)
    x, what = displays(n_max, mnist_digits=args.inputs == "mnist")
    print(f"inputs: {n_max} displays, paper preset, {what}")
    rings = retina.config.code_rings()

    # --- baseline: per-sample numpy float64
    bank64 = retina.bank.double().numpy()
    K = np.fft.fftshift(whitening_filter(retina.config, half=False).numpy())
    ref_in = x[:args.n_ref].double().numpy()

    def ref_fn():
        return reference_encode(ref_in, bank64, K, args.offset_clip)

    t_ref = timed(ref_fn, args.repeats)
    ref_codes = torch.from_numpy(ref_fn())
    rate_ref = args.n_ref / t_ref
    rows = [("baseline: per-sample numpy FFT + float64 mat-vec", "cpu", rate_ref, 1.0, 0.0, 0.0)]

    for dev in devices:
        r = retina if dev == "cpu" else retina.to(dev)
        xs = x[:args.n].to(dev)
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        methods = ["truncated", "dense"] if dev == "cpu" else ["dense", "dense+tf32", "truncated"]
        for method in methods:
            m = method.split("+")[0]
            tf32 = method.endswith("tf32")
            old = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32

            def run():
                for s in range(0, args.n, args.batch):
                    r.encode(xs[s:s + args.batch], method=m)

            try:
                t = timed(run, args.repeats, sync)
                codes = r.encode(xs[:args.n_ref], method=m)
            finally:
                torch.backends.cuda.matmul.allow_tf32 = old
            rate = args.n / t
            rel, worst = errors(codes, ref_codes, rings)
            rows.append((f"whatwhere Retina.encode, {method}, batch {args.batch}", dev, rate, rate / rate_ref, rel, worst))
    print(f"\n{'path':56s} {'device':6s} {'encodings/s':>12s} {'x baseline':>11s} {'rel err':>9s} {'worst ring':>10s}")
    for name, dev, rate, ratio, rel, worst in rows:
        print(f"{name:56s} {dev:6s} {rate:12,.0f} {ratio:10.1f}x {rel:9.1e} {worst:10.1e}")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f} (timings are unreliable if it exceeds the "
          f"number of cores)")


if __name__ == "__main__":
    main()
