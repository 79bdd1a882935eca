"""What a spatial transformer sees: displays above their glimpses."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from whatwhere.viz.common import save, subplots

__all__ = ["transformer_grid"]


def transformer_grid(inputs: np.ndarray, outputs: np.ndarray, labels, preds, out, title: str = "") -> Path:
    """Inputs ``(K, N, N)`` above the transformer's outputs ``(K, n, n)`` with true/predicted labels."""
    K = inputs.shape[0]
    fig, axes = subplots(2, K, figsize=(1.6 * K, 3.4), squeeze=False)
    for k in range(K):
        axes[0, k].imshow(inputs[k], cmap="gray", vmin=0, vmax=1)
        axes[0, k].set_title(f"label {int(labels[k])}", fontsize=7)
        axes[1, k].imshow(outputs[k], cmap="gray", vmin=0, vmax=1)
        axes[1, k].set_title(f"pred {int(preds[k])}", fontsize=7, color="g" if preds[k] == labels[k] else "r")
        for a in axes[:, k]:
            a.set_xticks([])
            a.set_yticks([])
    axes[0, 0].set_ylabel("input", fontsize=8)
    axes[1, 0].set_ylabel("transformed", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, out)
