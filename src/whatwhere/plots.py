"""Every figure of whatwhere (matplotlib, non-interactive backend).

Each function takes tensors/arrays, draws one figure and saves it to ``out`` (PNG or PDF,
chosen by the suffix); it returns the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, out) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def display_grid(images: np.ndarray, labels: np.ndarray, offsets: np.ndarray, row_names: Sequence[str],
                 col_names: Sequence[str], out, title: str = "") -> Path:
    """A grid of displays.

    Args:
        images: ``(R, C, N, N)`` in [0, 1]; labels ``(R, C)``; offsets ``(R, C, 2)`` (di, dj).
        row_names / col_names: one label per row / column (e.g. eccentricities / contrasts).
    """
    R, C = images.shape[:2]
    fig, axes = plt.subplots(R, C, figsize=(2.0 * C, 2.1 * R), squeeze=False)
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
    return _save(fig, out)
