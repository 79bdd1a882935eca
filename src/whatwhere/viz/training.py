"""Training curves from a run's ``metrics.csv``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from whatwhere.viz.common import save, subplots

__all__ = ["training_curves"]


def training_curves(rows: Sequence[dict], out, title: str = "") -> Path:
    """Train/test accuracy per epoch with stage boundaries (rows of ``RUN/metrics.csv``)."""
    ep = np.array([r["epoch"] for r in rows])
    fig, ax = subplots(figsize=(7, 3.2))
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
    return save(fig, out)
