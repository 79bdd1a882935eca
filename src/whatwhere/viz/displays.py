"""Figures of the task: grids of displays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from whatwhere.viz.common import save, subplots

__all__ = ["display_grid"]


def display_grid(
    images: np.ndarray,
    labels: np.ndarray,
    offsets: np.ndarray,
    row_names: Sequence[str],
    col_names: Sequence[str],
    out,
    title: str = "",
) -> Path:
    """A grid of displays.

    Args:
        images: ``(R, C, N, N)`` in [0, 1]; labels ``(R, C)``; offsets ``(R, C, 2)`` (di, dj).
        row_names / col_names: one label per row / column (e.g. eccentricities / contrasts).
    """
    R, C = images.shape[:2]
    fig, axes = subplots(R, C, figsize=(2.0 * C, 2.1 * R), squeeze=False)
    for r in range(R):
        for c in range(C):
            ax = axes[r, c]
            ax.imshow(images[r, c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            di, dj = (int(v) for v in offsets[r, c])
            ax.set_title(f"{int(labels[r, c])} @ ({di:+d},{dj:+d})", fontsize=8)
            if c == 0:
                ax.set_ylabel(row_names[r], fontsize=9)
            if r == R - 1:
                ax.set_xlabel(col_names[c], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, out)
