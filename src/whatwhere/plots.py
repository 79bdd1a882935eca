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


def accuracy_map(acc: np.ndarray, out, title: str = "", floor: float = 0.1) -> Path:
    """One shift-accuracy map (as the paper's Fig. 3B): ``acc`` ``(2R+1, 2R+1)``, ``[di+R, dj+R]``."""
    R = acc.shape[0] // 2
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(np.maximum(acc, floor), origin="upper", extent=(-R - .5, R + .5, R + .5, -R - .5),
                   cmap="viridis", vmin=floor, vmax=1)
    cs = ax.contour(np.arange(-R, R + 1), np.arange(-R, R + 1), acc, levels=[0.2, 0.3, 0.5, 0.7],
                    colors="w", linewidths=0.7)
    ax.clabel(cs, fontsize=7)
    ax.set_xlabel("horizontal shift dj (px)")
    ax.set_ylabel("vertical shift di (px)")
    fig.colorbar(im, ax=ax, label="accuracy")
    ax.set_title(title, fontsize=9)
    return _save(fig, out)


def maps_side_by_side(maps: Sequence[np.ndarray], names: Sequence[str], out, title: str = "",
                      references: dict | None = None) -> Path:
    """Several accuracy maps side by side, and their radial profiles on one axis.

    ``references``: optional ``{name: (radii, accuracy)}`` drawn dashed (e.g. published profiles).
    """
    from whatwhere.protocols import radial_profile

    n = len(maps)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.6 * (n + 1), 3.3))
    for ax, acc, name in zip(axes, maps, names):
        R = acc.shape[0] // 2
        im = ax.imshow(np.maximum(acc, 0.1), extent=(-R - .5, R + .5, R + .5, -R - .5), cmap="viridis",
                       vmin=0.1, vmax=1)
        ax.contour(np.arange(-R, R + 1), np.arange(-R, R + 1), acc, levels=[0.3, 0.5, 0.7], colors="w",
                   linewidths=0.6)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("dj (px)")
        ax.set_ylabel("di (px)")
    fig.colorbar(im, ax=list(axes[:n]), fraction=0.02)
    ax = axes[n]
    for acc, name in zip(maps, names):
        r, prof = radial_profile(acc)
        ax.plot(r, prof, marker="o", ms=2.5, label=name)
    for name, (r, prof) in (references or {}).items():
        ax.plot(r, prof, "--", lw=1, label=name)
    ax.axhline(0.1135, color="grey", lw=0.8, ls=":", label="chance (11.35 %)")
    ax.set_xlabel("shift (px)")
    ax.set_ylabel("accuracy (ring mean)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, out)


def training_curves(rows: Sequence[dict], out, title: str = "") -> Path:
    """Train/test accuracy per epoch with stage boundaries (rows of ``RUN/metrics.csv``)."""
    ep = np.array([r["epoch"] for r in rows])
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(ep, [r["train_acc"] for r in rows], label="train")
    ax.plot(ep, [r["test_acc"] for r in rows], label="test (stage displays)")
    prev = None
    for r in rows:
        if r["stage_name"] != prev:
            ax.axvline(r["epoch"] - 0.5, color="grey", lw=0.4)
            ax.text(r["epoch"] - 0.4, 0.02, r["stage_name"], rotation=90, fontsize=6, color="grey")
            prev = r["stage_name"]
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(fig, out)


def transformer_grid(inputs: np.ndarray, outputs: np.ndarray, labels, preds, out, title: str = "") -> Path:
    """Inputs ``(K, N, N)`` above the transformer's outputs ``(K, n, n)`` with true/predicted labels."""
    K = inputs.shape[0]
    fig, axes = plt.subplots(2, K, figsize=(1.6 * K, 3.4), squeeze=False)
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
    return _save(fig, out)
