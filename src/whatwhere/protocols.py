"""Evaluation protocols and result files.

* :func:`central_general` — accuracy of a 28×28 model on MNIST-test at shift σ = 0 ("central")
  and σ = 15 clipped at 25 px ("general").
* :func:`accuracy_map` — the 55×55 shift-accuracy map over (di, dj) ∈ [−27, 27]², element
  ``[di + 27, dj + 27]``; :func:`radial_profile` averages it over 1-px rings.
* :func:`theta_diagnostics` — for spatial transformers: spread of θ across inputs and how far
  the glimpse centre lands from the digit (collapse to one θ shows as spread ≈ 0).
* :func:`wilson` — Wilson 95 % interval of a binomial proportion.
* :func:`provenance` / :func:`write_json` — the fields every result file carries.

All protocols take any model with the common interface ``model(images (B, N, N)) -> logits``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from whatwhere.data import DisplayConfig, DisplaySet, mnist

__all__ = ["central_general", "accuracy_map", "radial_profile", "theta_diagnostics", "wilson", "provenance",
           "write_json", "MAP_RADIUS"]

MAP_RADIUS = 27


def wilson(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval (default 95 %) for ``correct / total``."""
    if total <= 0:
        return (0.0, 1.0)
    p = correct / total
    den = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / den
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


@torch.no_grad()
def _accuracy(model, ds: DisplaySet, n: int, batch: int, offset=None) -> tuple[int, int]:
    correct = total = 0
    for d in ds.epoch(0, batch, limit=n, offset=offset):
        correct += int((model(d.images).argmax(1) == d.labels).sum())
        total += len(d)
    return correct, total


def central_general(model, display: DisplayConfig, *, n_digits: int = 10000, seed: int = 0, device="cpu",
                    batch: int = 1000, mnist_dir=None) -> dict:
    """Central (σ = 0) and general (σ = 15, clip 25) accuracy of a 28×28 model.

    ``display`` gives the clutter level, contrast law and mixing (placement is replaced).
    Returns ``{"central", "general", "central_ci95", "general_ci95", "n_digits"}``.
    """
    if display.size != 28:
        raise ValueError("central/general accuracy is defined on the 28×28 display")
    test = mnist.load("test", mnist_dir)
    n = min(n_digits, len(test))
    model = model.to(device).eval()
    out = {"n_digits": n}
    for key, sigma in (("central", 0.0), ("general", 15.0)):
        cfg = display.replace(placement="cartesian", sigma=sigma, clip=25.0)
        c, t = _accuracy(model, DisplaySet(test.images, test.labels, cfg, seed=seed, device=device), n, batch)
        out[key] = c / t
        out[f"{key}_ci95"] = list(wilson(c, t))
    return out


def accuracy_map(model, display: DisplayConfig, *, n_digits: int = 10000, seed: int = 0, device="cpu",
                 batch: int | None = None, radius: int = MAP_RADIUS, mnist_dir=None, progress: bool = True) -> np.ndarray:
    """The shift-accuracy map of a 28×28 model: ``(2R+1, 2R+1)`` float, element ``[di+R, dj+R]``.

    Each cell is the accuracy over the first ``n_digits`` MNIST-test digits shifted by (di, dj)
    inside the 28×28 frame.  Every cell sees the same digits, clutter and contrasts (a paired
    design: differences between cells come from the shift alone).
    """
    from tqdm.auto import tqdm

    if display.size != 28:
        raise ValueError("the accuracy map is defined on the 28×28 display")
    if not 0 <= radius <= 27:
        raise ValueError(f"radius must be in [0, 27], got {radius}")
    test = mnist.load("test", mnist_dir)
    n = min(n_digits, len(test))
    batch = batch or (10000 if torch.device(device).type == "cuda" else 1000)
    model = model.to(device).eval()
    side = 2 * radius + 1
    acc = np.zeros((side, side))
    # one chunk holds every digit's random numbers, so they are drawn once and shared by all cells
    ds = DisplaySet(test.images[:n], test.labels[:n], display.replace(placement="offset", offset=(0, 0)),
                    seed=seed, device=device, chunk_size=n)
    cells = [(di, dj) for di in range(-radius, radius + 1) for dj in range(-radius, radius + 1)]
    for di, dj in tqdm(cells, disable=None if progress else True, desc="accuracy map", leave=False, mininterval=1.0):
        c, t = _accuracy(model, ds, n, batch, offset=(di, dj))
        acc[di + radius, dj + radius] = c / t
    return acc


def radial_profile(acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of a centred square map over 1-px rings: (radii 0..R_max, mean accuracy per ring)."""
    R = acc.shape[0] // 2
    ii, jj = np.mgrid[-R:R + 1, -R:R + 1]
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
    from whatwhere.models.stn import glimpse_centre

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
    return {"theta_mean": th.mean(0).tolist(), "theta_std": th.std(0).tolist(),
            "theta_spread": float(th.std(0).mean()), "glimpse_error_px": float(err.median()),
            "hit_rate": float((err <= hit_px).double().mean()), "hit_px": hit_px, "n": int(th.shape[0])}


# ------------------------------------------------------------------------------ results


def hardware(device: str | torch.device = "cpu") -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} (CUDA), torch {torch.__version__}"
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(*, model: str, recipe: str, seed: int, device="cpu", wall_time_s: float,
               command: str | None = None) -> dict:
    """The fields every result file carries (DESIGN §5)."""
    return {"model": model, "recipe": recipe, "command": command or " ".join(["whatwhere"] + sys.argv[1:]),
            "hardware": hardware(device), "wall_time_s": round(wall_time_s, 2), "git_commit": git_commit(),
            "seed": seed, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_json(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------ eccentricity benchmark

#: The benchmark's eccentricities: numpy.linspace(40, 0, 9, endpoint=False) reversed, 4.44 ... 40 px.
ECCENTRICITIES = tuple(float(e) for e in np.linspace(40, 0, 9, endpoint=False)[::-1])


def _model_name(m) -> str:
    return str(getattr(m, "name", None) or type(m).__name__.lower())


@torch.no_grad()
def eccentricity_benchmark(model_or_agent, contrasts=(0.3, 0.5, 0.7), eccentricities=ECCENTRICITIES, *,
                           n_digits: int = 1000, saccades=range(0, 6), stopping_rule: bool = True, seed: int = 0,
                           noise: float = 1.0, device="cpu", name: str | None = None, batch: int | None = None,
                           preset_name: str = "paper", mnist_dir=None, progress: bool = True) -> list[dict]:
    """Accuracy per contrast x eccentricity (x saccades for an agent), DESIGN §5.

    Displays: the first ``n_digits`` of a seeded permutation of MNIST-test, each digit placed at
    exactly the cell's eccentricity (``trunc`` of the polar offset, as the original) with a
    random azimuth, fixed contrast, clutter ``noise``, the ``preset_name`` 128 x 128 display.
    The set is a pure function of ``seed``: every model, saccade count and condition sees the same
    digits, azimuths and clutter (only the contrast and the radius change between cells), so two
    models benchmarked with the same seed are compared on exactly the same displays.

    Args:
        model_or_agent: a model ``(B, 128, 128) -> logits`` (a 28 x 28 model, ``input_size == 28``,
            classifies the central crop); an agent (anything with ``run`` and
            ``run_until_confident``, e.g. :class:`whatwhere.agent.Agent`); or a mapping
            ``{contrast: model_or_agent}`` (one Where network per contrast, as the paper).
        saccades: fixed saccade counts to report for an agent (one run of ``max(saccades)``
            gives them all).
        stopping_rule: also run an agent with the stopping rule (at most ``max(saccades)``).
        name: the records' ``model`` (default the object's ``name`` attribute or class name).

    Returns:
        the flat ``records`` list: one dict per cell ``{"model", "saccades", "contrast",
        "eccentricity", "correct", "total", "accuracy", "ci95": [lo, hi]}`` (Wilson 95 %), where
        ``saccades`` is null for a model that does not move the eye, the fixed count for an agent,
        or ``"stop"`` for the stopping rule (those records also carry ``"mean_saccades"``).
    """
    from collections.abc import Mapping

    from whatwhere.benchmark import Entry, benchmark, is_agent

    saccades = sorted(int(s) for s in saccades)
    if not saccades or saccades[0] < 0:
        raise ValueError(f"saccades must be non-empty counts >= 0, got {saccades}")
    if isinstance(model_or_agent, Mapping):
        missing = [c for c in contrasts if float(c) not in {float(k) for k in model_or_agent}]
        if missing:
            raise ValueError(f"no model for contrast(s) {missing}")
        first = next(iter(model_or_agent.values()))
    else:
        first = model_or_agent
    entry = Entry(name or _model_name(first), model_or_agent,
                  saccades=tuple(saccades) if is_agent(first) else None)
    dev = torch.device(device)
    # the batch stays 500 / 5000: faithful agents draw their dropout masks per batch
    return benchmark([entry], contrasts=contrasts, eccentricities=eccentricities, n_digits=n_digits, seed=seed,
                     preset_name=preset_name, noise=noise, device=dev,
                     batch=batch or (5000 if dev.type == "cuda" else 500), stopping_rule=stopping_rule,
                     mnist_dir=mnist_dir, progress=progress)["records"]


__all__ += ["eccentricity_benchmark", "ECCENTRICITIES"]
