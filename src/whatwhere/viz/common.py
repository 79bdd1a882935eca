"""Shared figure helpers: figures are built with matplotlib's object API (``Figure``), so that
drawing never selects a backend or touches pyplot's global state."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from whatwhere.eval.metrics import CHANCE

__all__ = ["subplots", "save", "chance_line"]


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=(6.4, 4.8), constrained_layout: bool = False, **kw):
    """``(Figure, axes)`` like ``pyplot.subplots``, without pyplot."""
    fig = Figure(figsize=figsize, constrained_layout=constrained_layout)
    return fig, fig.subplots(nrows, ncols, **kw)


def save(fig: Figure, out) -> Path:
    """Write ``fig`` to ``out`` (PNG or PDF by the suffix, 120 dpi) and return the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    return out


def chance_line(ax, label: bool = False) -> None:
    """The chance level (11.35 %: the What net answers "1" on an empty fovea) as a dotted line."""
    ax.axhline(CHANCE, color="grey", lw=0.8, ls=":", label=f"chance ({CHANCE:.2%})" if label else None)
