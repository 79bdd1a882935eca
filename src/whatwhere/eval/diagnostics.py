"""Diagnostics of what a localiser can see.

:func:`code_r2` answers: how much of the digit's position does the localiser's input carry
*linearly*?  A ridge regression of the digit offset ``(di, dj)`` on the input code is fitted on
one set of displays, its penalty chosen on a second and its R² reported on a third (held out).
A localiser whose first layer barely moves during training (as the POLO-ATN localisers') can only
use what this linear read-out finds, so a low R² explains a localiser that does not localise.

For the POLO models: with the 1/f filters the published models ran with, the 768-d code explains
R² ≈ 0.8 of the offset; with the band-pass bank that was intended, ≈ 0.1
(``whatwhere diagnose code polo_atn`` vs ``... --model-arg filters=bandpass``).

:func:`fixation_errors` answers: where do a saccadic model's glimpses land?  Per eccentricity of
the digit, the median distance between the digit and the fixation after each glimpse, on the
displays of the benchmark's cells (``whatwhere diagnose fixations``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from whatwhere.data import DisplayConfig, DisplaySet, mnist

__all__ = ["localiser_input", "code_r2", "ridge_r2", "fixation_errors"]


def localiser_input(model) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The function ``images (B, N, N) -> (B, D)`` giving what ``model``'s localiser (or Where
    pathway) reads, or None when the model has no such input (a plain classifier)."""
    f = getattr(model, "localiser_input", None)
    return f if callable(f) else None


def ridge_r2(
    X_fit: torch.Tensor,
    y_fit: torch.Tensor,
    X_val: torch.Tensor,
    y_val: torch.Tensor,
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    lambdas=None,
) -> dict:
    """Ridge regression of ``y`` on standardised ``X``, penalty chosen on the validation set.

    Args:
        X_*: ``(n, D)`` features; y_*: ``(n, k)`` targets.
        lambdas: penalties to try, relative to the mean eigenvalue of the Gram matrix (default
            ``10^-4 ... 10^2``).

    Returns:
        ``{"r2": test R² (pooled over the k targets), "r2_val", "lambda", "n_fit", "dim"}``.
    """
    X_fit, X_val, X_test = (x.double() for x in (X_fit, X_val, X_test))
    y_fit, y_val, y_test = (y.double() for y in (y_fit, y_val, y_test))
    mu, sd = X_fit.mean(0), X_fit.std(0).clamp_min(1e-12)
    ym = y_fit.mean(0)
    Z = (X_fit - mu) / sd
    yc = y_fit - ym
    n, D = Z.shape
    primal = D <= n
    G = Z.T @ Z if primal else Z @ Z.T  # (D, D) or (n, n)
    lam, V = torch.linalg.eigh(G)
    lam = lam.clamp_min(0)
    scale = float(lam.mean())
    lambdas = lambdas if lambdas is not None else [10.0**k for k in range(-4, 3)]

    def weights(lmb):
        inv = 1.0 / (lam + lmb * scale)
        if primal:
            return V @ (inv[:, None] * (V.T @ (Z.T @ yc)))  # (D, k)
        return Z.T @ (V @ (inv[:, None] * (V.T @ yc)))  # (D, k)

    def r2(W, X, y):
        pred = ((X - mu) / sd) @ W + ym
        return 1.0 - float(((y - pred) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())

    scores = [(r2(weights(reg), X_val, y_val), reg) for reg in lambdas]
    best_val, best = max(scores)
    return {"r2": r2(weights(best), X_test, y_test), "r2_val": best_val, "lambda": best, "n_fit": n, "dim": D}


@torch.no_grad()
def code_r2(
    model,
    display: DisplayConfig,
    *,
    n_fit: int = 3000,
    n_val: int = 1000,
    n_test: int = 2000,
    seed: int = 0,
    device="cpu",
    batch: int = 500,
    features: str = "linear",
    mnist_dir=None,
) -> dict:
    """How much of the digit offset ``model``'s localiser input explains linearly (module doc).

    Displays: MNIST-test digits under ``display`` (e.g. the model's training distribution), seed
    ``seed``; the three sets are disjoint runs of one display stream.  ``features="energy"``
    regresses on the squared coefficients instead: the local energy, which a localiser with
    non-linear layers (convPOLO's convolutions and ReLUs) can compute, while a linear read-out
    of the first layer cannot (convPOLO's band-pass-only code: R² 0.00 linear, 0.38 energy).

    Returns:
        :func:`ridge_r2`'s dict plus ``"n_test"``; raises ``ValueError`` for a model without a
        localiser input.
    """
    if features not in ("linear", "energy"):
        raise ValueError(f"features must be 'linear' or 'energy', got {features!r}")
    encode = localiser_input(model)
    if encode is None:
        raise ValueError(f"{type(model).__name__} has no localiser input (no `localiser_input` method)")
    test = mnist.load("test", mnist_dir)
    total = n_fit + n_val + n_test
    if total > len(test):
        raise ValueError(f"n_fit + n_val + n_test must be <= {len(test)}, got {total}")
    ds = DisplaySet(test.images, test.labels, display, seed=seed, shuffle=True, device=device)
    Xs, ys = [], []
    for d in ds.epoch(0, batch, limit=total):
        Xs.append(encode(d.images).reshape(len(d), -1).float().cpu())
        ys.append(d.offsets.double().cpu())
    X, y = torch.cat(Xs), torch.cat(ys)
    if features == "energy":
        X = X.square()
    a, b = n_fit, n_fit + n_val
    if float(y[:a].std(0).min()) == 0 or not math.isfinite(float(X.abs().max())):
        raise ValueError("the displays must vary the digit position (use a random placement) and the codes be finite")
    out = ridge_r2(X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:])
    out["n_test"] = n_test
    out["features"] = features
    return out


@torch.no_grad()
def fixation_errors(
    model,
    display: DisplayConfig,
    eccentricities,
    *,
    n: int = 1000,
    seed: int = 0,
    device="cpu",
    batch: int = 250,
    hit_px: float = 5.0,
    mnist_dir=None,
) -> list[dict]:
    """Where a saccadic model's glimpses land, per eccentricity of the digit.

    ``model`` is anything whose ``forward_trace(images)`` returns ``fixations`` ``(B, K + 1, 2)``
    in px from the display centre (the first one the centre) and ``evidence`` ``(B, K, 10)`` (the
    answer after 1..K glimpses), such as the saccadic transformer; it is run as it is (call
    ``eval()`` first for the deterministic saccades).  The displays are those of the benchmark's
    cells: the first ``n`` digits of MNIST-test in the seeded order ``seed``, each at exactly
    that eccentricity (random azimuth) under ``display`` (its contrast, clutter...), so that with
    the same seed, contrast and ``n`` the accuracy equals the benchmark's there.

    Returns:
        One dict per eccentricity: ``eccentricity``, ``n``, ``accuracy`` (after ``k`` glimpses,
        k = 1..K), ``median_error`` and ``mean_error`` (px, the distance between the digit and
        the fixation after glimpse ``k``) and ``hit_rate`` (the fraction of those within
        ``hit_px``).
    """
    trace = getattr(model, "forward_trace", None)
    if not callable(trace):
        raise ValueError(f"{type(model).__name__} takes no traced saccades (no `forward_trace` method)")
    test = mnist.load("test", mnist_dir)
    n = min(int(n), len(test))
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = []
    for ecc in eccentricities:
        cfg = display.replace(placement="eccentricity", eccentricity=float(ecc), azimuth=None)
        ds = DisplaySet(test.images, test.labels, cfg, seed=seed, shuffle=True, device=device)
        errs, oks = [], []
        for d in ds.epoch(0, batch, limit=n):
            tr = trace(d.images)
            if not hasattr(tr, "fixations") or not hasattr(tr, "evidence"):
                raise ValueError(f"{type(model).__name__}.forward_trace reports no `fixations` and `evidence`")
            errs.append((tr.fixations[:, 1:].float() - d.offsets[:, None].float()).norm(dim=-1).cpu())  # (B, K)
            oks.append((tr.evidence.argmax(-1) == d.labels[:, None]).cpu())  # (B, K)
        err, ok = torch.cat(errs), torch.cat(oks)
        out.append(
            {
                "eccentricity": float(ecc),
                "n": len(err),
                "accuracy": ok.double().mean(0).tolist(),
                "median_error": err.median(0).values.tolist(),
                "mean_error": err.mean(0).tolist(),
                "hit_rate": (err <= hit_px).double().mean(0).tolist(),
            }
        )
    return out
