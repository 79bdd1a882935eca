"""Shift-accuracy maps of the 28×28 models (the What paper's Fig. 3B) and their radial profiles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from whatwhere.eval.protocols import radial_profile
from whatwhere.viz.common import chance_line, save, subplots

__all__ = ["accuracy_map", "maps_side_by_side"]


def accuracy_map(acc: np.ndarray, out, title: str = "", floor: float = 0.1) -> Path:
    """One shift-accuracy map (as the paper's Fig. 3B): ``acc`` ``(2R+1, 2R+1)``, ``[di+R, dj+R]``."""
    R = acc.shape[0] // 2
    fig, ax = subplots(figsize=(4.2, 3.6))
    im = ax.imshow(
        np.maximum(acc, floor),
        origin="upper",
        extent=(-R - 0.5, R + 0.5, R + 0.5, -R - 0.5),
        cmap="viridis",
        vmin=floor,
        vmax=1,
    )
    cs = ax.contour(
        np.arange(-R, R + 1), np.arange(-R, R + 1), acc, levels=[0.2, 0.3, 0.5, 0.7], colors="w", linewidths=0.7
    )
    ax.clabel(cs, fontsize=7)
    ax.set_xlabel("horizontal shift dj (px)")
    ax.set_ylabel("vertical shift di (px)")
    fig.colorbar(im, ax=ax, label="accuracy")
    ax.set_title(title, fontsize=9)
    return save(fig, out)


def maps_side_by_side(
    maps: Sequence[np.ndarray], names: Sequence[str], out, title: str = "", references: dict | None = None
) -> Path:
    """Several accuracy maps side by side, and their radial profiles on one axis.

    ``references``: optional ``{name: (radii, accuracy)}`` drawn dashed (e.g. published profiles).
    """
    n = len(maps)
    fig, axes = subplots(1, n + 1, figsize=(3.6 * (n + 1), 3.4), constrained_layout=True)
    for ax, acc, name in zip(axes, maps, names, strict=False):
        R = acc.shape[0] // 2
        im = ax.imshow(
            np.maximum(acc, 0.1), extent=(-R - 0.5, R + 0.5, R + 0.5, -R - 0.5), cmap="viridis", vmin=0.1, vmax=1
        )
        ax.contour(np.arange(-R, R + 1), np.arange(-R, R + 1), acc, levels=[0.3, 0.5, 0.7], colors="w", linewidths=0.6)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("dj (px)")
        ax.set_ylabel("di (px)")
    fig.colorbar(im, ax=axes[n - 1], fraction=0.046, pad=0.02, label="accuracy")
    ax = axes[n]
    for acc, name in zip(maps, names, strict=False):
        r, prof = radial_profile(acc)
        ax.plot(r, prof, marker="o", ms=2.5, label=name)
    for name, (r, prof) in (references or {}).items():
        ax.plot(r, prof, "--", lw=1, label=name)
    chance_line(ax, label=True)
    ax.set_xlabel("shift (px)")
    ax.set_ylabel("accuracy (ring mean)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, out)
