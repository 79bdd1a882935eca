"""The trade-off figure: accuracy at one eccentricity against the numbers read per decision."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps

from whatwhere.viz.common import chance_line, save, subplots

__all__ = ["tradeoff_figure"]


def _place_labels(
    points: list[dict], *, xlim: tuple[float, float], height: float = 0.035
) -> list[tuple[float, float, str]]:
    """Where each point's label goes, ``(x, y, ha)`` in data units: beside its point (right, else
    left), moved up or down by a line at a time until it overlaps neither a label already placed
    nor another point, nor leaves the panel.  Sizes are estimated for 6-pt text on a panel of
    about 280 x 250 pt spanning ``xlim`` on the log x axis and 0..1.05 of accuracy (``height``:
    one line)."""
    left, right = math.log10(xlim[0]), math.log10(xlim[1])
    decades = right - left
    char = 0.0129 * decades  # about 3.6 pt per character of 6-pt text
    rx, ry = 0.011 * decades, 0.015  # a marker's half-size (3 pt)
    marks = [  # (log10 x, y0, y1): each marker with its error bar
        (
            math.log10(p["numbers_read"]),
            min(p["accuracy"] - ry, (p.get("ci95") or [9.0])[0]),
            max(p["accuracy"] + ry, (p.get("ci95") or [0.0, -9.0])[1]),
        )
        for p in points
    ]
    boxes: list[tuple[float, float, float, float]] = []  # (x0, x1, y0, y1), log10 x
    out: list[tuple[float, float, str]] = [(0.0, 0.0, "left")] * len(points)
    gap = 0.025 * decades  # 7 pt: clear of the marker

    def free(b, own) -> bool:
        if b[0] < left or b[1] > right or b[2] < 0.0 or b[3] > 1.05:
            return False
        if any(b[0] < o[1] and o[0] < b[1] and b[2] < o[3] and o[2] < b[3] for o in boxes):
            return False
        return not any(
            k != own and b[0] - rx < mx < b[1] + rx and b[2] < y1 and y0 < b[3] for k, (mx, y0, y1) in enumerate(marks)
        )

    for i in sorted(range(len(points)), key=lambda i: points[i]["accuracy"]):
        lx, y = marks[i][0], points[i]["accuracy"]
        w = char * len(points[i]["label"])
        choice = None
        for k in (0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6):
            ly = y + k * height
            for side in ("left", "right"):  # ha: text starts at x (left) or ends at x (right)
                x0 = lx + gap if side == "left" else lx - gap - w
                b = (x0, x0 + w, ly - height / 2, ly + height / 2)
                if free(b, i):
                    choice = (b, side, ly)
                    break
            if choice:
                break
        if choice is None:
            x0 = lx + gap
            choice = ((x0, x0 + w, y - height / 2, y + height / 2), "left", y)
        b, side, ly = choice
        boxes.append(b)
        out[i] = (10 ** (lx + gap) if side == "left" else 10 ** (lx - gap), ly, side)
    return out


def tradeoff_figure(points: list[dict], out, *, title: str | None = None) -> Path:
    """Accuracy against numbers read per decision (log axis), one panel per contrast, every model
    (and saccade count) a labelled point: measured ones filled with their Wilson 95 % interval,
    published ones hollow; the saccade counts of one agent joined by a thin line.

    ``points``: :func:`whatwhere.eval.tradeoff.tradeoff_points` and
    :func:`~whatwhere.eval.tradeoff.published_points`.
    """
    if not points:
        raise ValueError("no points to draw")
    contrasts = sorted({p["contrast"] for p in points}, reverse=True)
    keys = list(dict.fromkeys((p["model"], p["published"]) for p in points))
    colors = {k: colormaps["tab10"](i % 10) for i, k in enumerate(keys)}
    xs = [p["numbers_read"] for p in points]
    lo, hi = min(xs) / 2.0, max(xs) * 4.0
    fig, axes = subplots(1, len(contrasts), figsize=(4.8 * len(contrasts), 4.6), squeeze=False, sharey=True)
    for ax, c in zip(axes[0], contrasts, strict=True):
        here = [p for p in points if abs(p["contrast"] - c) < 1e-9]
        for key in keys:
            series = sorted((p for p in here if (p["model"], p["published"]) == key), key=lambda p: p["numbers_read"])
            if len(series) > 1:  # one agent after 0, 1, 2 ... saccades
                ax.plot(
                    [p["numbers_read"] for p in series],
                    [p["accuracy"] for p in series],
                    "-",
                    lw=0.8,
                    color=colors[key],
                    alpha=0.6,
                )
        for p, (tx, ty, ha) in zip(here, _place_labels(here, xlim=(lo, hi)), strict=True):
            col = colors[(p["model"], p["published"])]
            x, y = p["numbers_read"], p["accuracy"]
            if p["published"]:
                ax.plot(x, y, "o", ms=6, mfc="none", mec=col, mew=1.4)
            else:
                ci = p.get("ci95")
                err = None if not ci else np.array([[y - ci[0]], [ci[1] - y]])
                ax.errorbar(x, y, yerr=err, fmt="o", ms=5, color=col, capsize=2, lw=1)
            ax.annotate(
                p["label"],
                (x, y),
                xytext=(tx, ty),
                textcoords="data",
                fontsize=6,
                ha=ha,
                va="center",
                color=col,
                arrowprops=None if abs(ty - y) < 1e-9 else {"arrowstyle": "-", "lw": 0.4, "color": col},
            )
        chance_line(ax)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1.05)
        ax.grid(True, which="major", lw=0.3, alpha=0.5)
        ax.set_xlabel("numbers read per decision (codes + pixels)")
        ax.set_title(f"contrast {c:g}", fontsize=9)
    eccs = sorted({p["eccentricity"] for p in points})
    axes[0, 0].set_ylabel(f"accuracy at {', '.join(f'{e:g}' for e in eccs)} px")
    axes[0, -1].plot([], [], "ko", ms=5, label="measured here (95 % interval)")
    axes[0, -1].plot([], [], "ko", ms=6, mfc="none", label="published")
    axes[0, -1].legend(fontsize=6.5, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, out)
