"""Evaluation protocols and result files.

* :func:`central_general` — accuracy of a 28×28 model on MNIST-test at shift σ = 0 ("central")
  and σ = 15 clipped at 25 px ("general").
* :func:`accuracy_map` — the 55×55 shift-accuracy map over (di, dj) ∈ [−27, 27]², element
  ``[di + 27, dj + 27]``; :func:`radial_profile` averages it over 1-px rings.
* :func:`theta_diagnostics` — for spatial transformers: spread of θ across inputs and how far
  the glimpse centre lands from the digit (collapse to one θ shows as spread ≈ 0).
* :data:`ECCENTRICITIES` — the benchmark's nine eccentricities, 4.44 … 40 px.

All protocols take any model with the common interface ``model(images (B, N, N)) -> logits``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from whatwhere.data import DisplayConfig, DisplaySet, mnist
from whatwhere.eval.metrics import wilson
from whatwhere.ops.sampling import glimpse_centre

__all__ = ["central_general", "accuracy_map", "radial_profile", "theta_diagnostics", "MAP_RADIUS", "ECCENTRICITIES"]

MAP_RADIUS = 27

#: displays per forward pass on a CPU: a 28×28 LeNet's activations for 250 displays stay in cache
#: (about 2× the throughput of batches of 1,000, benchmarks/bench_accuracy_map.py)
CPU_BATCH = 250


def _for_inference(model, device):
    """A copy of ``model`` on ``device`` in eval mode, for inference only (the caller's model is left
    as it is).  On a CPU a convolutional model's weights are stored channels-last, which runs its
    convolutions about 1.8× faster in the same fp32 arithmetic (the logits differ by float rounding,
    ~1e-4; the answers are the same but for near-ties)."""
    import copy

    from whatwhere.engine.precision import channels_last

    model = copy.deepcopy(model).to(device).eval()
    if torch.device(device).type == "cpu":  # explicit strides: a 1-channel kernel too (engine.precision)
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.data = channels_last(m.weight.data)
    return model


@torch.no_grad()
def _accuracy(model, ds: DisplaySet, n: int, batch: int, offset=None, precision: str = "fp32") -> tuple[int, int]:
    from whatwhere.engine.precision import autocast

    correct = total = 0
    for d in ds.epoch(0, batch, limit=n, offset=offset):
        with autocast(precision, d.images.device):
            logits = model(d.images)
        correct += int((logits.argmax(1) == d.labels).sum())
        total += len(d)
    return correct, total


def central_general(
    model,
    display: DisplayConfig,
    *,
    n_digits: int = 10000,
    seed: int = 0,
    device="cpu",
    batch: int = 1000,
    mnist_dir=None,
) -> dict:
    """Central (σ = 0) and general (σ = 15, clip 25) accuracy of a 28×28 model.

    ``display`` gives the clutter level, contrast law and mixing (placement is replaced).
    Returns ``{"central", "general", "central_ci95", "general_ci95", "n_digits"}``.
    """
    if display.size != 28:
        raise ValueError("central/general accuracy is defined on the 28×28 display")
    test = mnist.load("test", mnist_dir)
    n = min(n_digits, len(test))
    model = model.to(device).eval()
    out: dict[str, Any] = {"n_digits": n}
    for key, sigma in (("central", 0.0), ("general", 15.0)):
        cfg = display.replace(placement="cartesian", sigma=sigma, clip=25.0)
        c, t = _accuracy(model, DisplaySet(test.images, test.labels, cfg, seed=seed, device=device), n, batch)
        out[key] = c / t
        out[f"{key}_ci95"] = list(wilson(c, t))
    return out


def accuracy_map(
    model,
    display: DisplayConfig,
    *,
    n_digits: int = 10000,
    seed: int = 0,
    device="cpu",
    batch: int | None = None,
    radius: int = MAP_RADIUS,
    mnist_dir=None,
    progress: bool = True,
    precision: str = "fp32",
) -> np.ndarray:
    """The shift-accuracy map of a 28×28 model: ``(2R+1, 2R+1)`` float, element ``[di+R, dj+R]``.

    Each cell is the accuracy over the first ``n_digits`` MNIST-test digits shifted by (di, dj)
    inside the 28×28 frame.  Every cell sees the same digits, clutter and contrasts (a paired
    design: differences between cells come from the shift alone).  ``model`` is not modified: a copy
    runs the map (on a CPU with channels-last convolution weights, :func:`_for_inference`).
    ``precision="bf16"`` runs the forward passes under bf16 autocast (1.8× faster on a CPU; on the
    What LeNet's 1,000-digit map its cells moved by 0.25 points (sd, paired) and its radial profile
    by at most 0.3 points against fp32); an unknown precision, or bf16 where the device lacks it, is
    an error.
    """
    from whatwhere.engine.precision import check_precision

    check_precision(precision, device)
    from tqdm.auto import tqdm

    if display.size != 28:
        raise ValueError("the accuracy map is defined on the 28×28 display")
    if not 0 <= radius <= 27:
        raise ValueError(f"radius must be in [0, 27], got {radius}")
    test = mnist.load("test", mnist_dir)
    n = min(n_digits, len(test))
    batch = batch or (10000 if torch.device(device).type == "cuda" else CPU_BATCH)
    model = _for_inference(model, device)
    side = 2 * radius + 1
    acc = np.zeros((side, side))
    # one chunk holds every digit's random numbers, so they are drawn once and shared by all cells
    ds = DisplaySet(
        test.images[:n],
        test.labels[:n],
        display.replace(placement="offset", offset=(0, 0)),
        seed=seed,
        device=device,
        chunk_size=n,
    )
    cells = [(di, dj) for di in range(-radius, radius + 1) for dj in range(-radius, radius + 1)]
    for di, dj in tqdm(cells, disable=None if progress else True, desc="accuracy map", leave=False, mininterval=1.0):
        c, t = _accuracy(model, ds, n, batch, offset=(di, dj), precision=precision)
        acc[di + radius, dj + radius] = c / t
    return acc


def radial_profile(acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of a centred square map over 1-px rings: (radii 0..R_max, mean accuracy per ring)."""
    R = acc.shape[0] // 2
    ii, jj = np.mgrid[-R : R + 1, -R : R + 1]
    ring = np.rint(np.hypot(ii, jj)).astype(int)
    radii = np.arange(0, R + 1)
    return radii, np.array([acc[ring == r].mean() for r in radii])


@torch.no_grad()
def theta_diagnostics(model, ds: DisplaySet, *, n: int = 1000, hit_px: float = 5.0) -> dict:
    """θ spread and glimpse hit rate of a spatial transformer on the first ``n`` displays of ``ds``.

    Returns ``theta_mean`` (2×3), ``theta_std`` (2×3, across inputs), ``theta_spread`` (mean of
    the std: ≈ 0 means the localiser collapsed to one θ), ``glimpse_error_px`` (median distance
    between the glimpse centre and the digit), ``hit_rate`` (fraction within ``hit_px`` px).
    """
    thetas, errors = [], []
    model.eval()
    for d in ds.epoch(0, 500, limit=n):
        theta = model.localise(d.images)
        out = getattr(model, "out_size", ds.config.size)
        centre = glimpse_centre(theta, ds.config.size, out_size=out)
        errors.append((centre - d.offsets.to(centre.dtype)).norm(dim=1).cpu())
        thetas.append(theta.cpu())
    th = torch.cat(thetas)
    err = torch.cat(errors)
    return {
        "theta_mean": th.mean(0).tolist(),
        "theta_std": th.std(0).tolist(),
        "theta_spread": float(th.std(0).mean()),
        "glimpse_error_px": float(err.median()),
        "hit_rate": float((err <= hit_px).double().mean()),
        "hit_px": hit_px,
        "n": int(th.shape[0]),
    }


#: The benchmark's eccentricities: numpy.linspace(40, 0, 9, endpoint=False) reversed, 4.44 ... 40 px.
ECCENTRICITIES = tuple(float(e) for e in np.linspace(40, 0, 9, endpoint=False)[::-1])
