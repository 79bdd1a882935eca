"""The unified benchmark's figure: accuracy vs eccentricity, one panel per contrast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps

from whatwhere.eval.reports import published_row, row_label, series
from whatwhere.viz.common import chance_line, save, subplots

__all__ = ["benchmark_figure"]


def benchmark_figure(result: dict, out) -> Path:
    """Accuracy vs eccentricity, one panel per contrast, one line (with its 95 % band) per model and
    saccade count; the published curves of the same models dashed in the same colour."""
    contrasts = result["contrasts"]
    pairs = series(result)
    colors = colormaps["tab10"](np.arange(len(pairs)) % 10)
    fig, axes = subplots(1, len(contrasts), figsize=(4.4 * len(contrasts), 3.8), squeeze=False, sharey=True)
    for ax, c in zip(axes[0], contrasts, strict=True):
        for (name, s), col in zip(pairs, colors, strict=True):
            rows = sorted(
                (
                    r
                    for r in result["records"]
                    if r["model"] == name and r["saccades"] == s and abs(r["contrast"] - c) < 1e-9
                ),
                key=lambda r: r["eccentricity"],
            )
            if not rows:
                continue
            e = np.array([r["eccentricity"] for r in rows])
            a = np.array([r["accuracy"] for r in rows])
            ax.plot(e, a, "-o", ms=3, color=col, label=row_label(name, s))
            ax.fill_between(e, [r["ci95"][0] for r in rows], [r["ci95"][1] for r in rows], color=col, alpha=0.15, lw=0)
            pub = published_row(result, name, s, c)
            if pub is not None:
                ax.plot(result["eccentricities"], pub, "--", color=col, lw=1)
        chance_line(ax)
        ax.set_ylim(0, 1)
        ax.set_xlabel("eccentricity (px)")
        ax.set_title(f"contrast {c:g}", fontsize=9)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].plot([], [], "k--", lw=1, label="published (same colour)")
    axes[0, -1].legend(fontsize=6.5, loc="lower left")
    return save(fig, out)
