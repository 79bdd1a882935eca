"""Figures of sweeps: a metric against each scanned parameter, mean ± sd over seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from whatwhere.eval.reports import main_sweep_metrics
from whatwhere.viz.common import chance_line, save, subplots

__all__ = ["sweep_figures", "scan_figure"]


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def sweep_figures(report: dict, out, *, metrics: list[str] | None = None) -> list[Path]:
    """One figure per numeric grid key: each metric's mean ± sd over seeds (individual seeds as
    dots) against the key's values; points that differ in other keys are separate lines."""
    out = Path(out)
    metrics = metrics or main_sweep_metrics(report)[:3]
    paths = []
    for key, values in report["grid"].items():
        if len(values) < 2 or not _numeric(values):
            continue
        others = [k for k in report["grid"] if k != key]
        fig, axes = subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
        lines: dict[tuple, list] = {}
        for p in report["points"]:
            lines.setdefault(tuple(str(p["values"][k]) for k in others), []).append(p)
        for ax, m in zip(axes[0], metrics, strict=True):
            for label, pts in lines.items():
                pts = sorted((p for p in pts if m in p["metrics"]), key=lambda p: p["values"][key])
                if not pts:
                    continue
                x = np.array([p["values"][key] for p in pts], dtype=float)
                mean = np.array([p["metrics"][m]["mean"] for p in pts])
                sd = np.array([p["metrics"][m]["sd"] or 0.0 for p in pts])
                name = ", ".join(f"{k}={v}" for k, v in zip(others, label, strict=True)) or None
                line = ax.errorbar(x, mean, yerr=sd, marker="o", ms=4, capsize=3, label=name)
                for p, xi in zip(pts, x, strict=True):
                    ax.plot(
                        [xi] * len(p["metrics"][m]["values"]),
                        p["metrics"][m]["values"],
                        ".",
                        color=line[0].get_color(),
                        alpha=0.5,
                        ms=4,
                    )
            ax.set_xlabel(key)
            ax.set_ylabel(m)
            if others:
                ax.legend(fontsize=6)
        fig.suptitle(f"sweep of {report['recipe']}: mean ± sd over seeds {report['seeds']}", fontsize=9)
        paths.append(save(fig, out / f"sweep_{key.replace('.', '_')}.png"))
    return paths


def scan_figure(panels: list[dict], out, *, ylabel: str = "accuracy after one saccade", title: str = "") -> Path:
    """The parameter-scan figure: one panel per parameter, our mean ± 95 % interval over seeds
    (seeds as dots) and the published values (one run each, crosses).

    ``panels``: ``[{"parameter", "x", "mean", "ci95": [(lo, hi)], "seeds": [[...]], "published": {x: y},
    "default": x}]``.
    """
    n = len(panels)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False, sharey=True)
    for ax, p in zip(axes.flat, panels, strict=False):
        x = np.array(p["x"], dtype=float)
        mean = np.array(p["mean"])
        lo = np.array([c[0] for c in p["ci95"]])
        hi = np.array([c[1] for c in p["ci95"]])
        ax.fill_between(x, lo, hi, color="tab:blue", alpha=0.2, lw=0)
        ax.plot(x, mean, "-o", color="tab:blue", ms=4, label="ours (mean, 95 % interval)")
        for xi, ys in zip(x, p["seeds"], strict=False):
            ax.plot([xi] * len(ys), ys, ".", color="tab:blue", alpha=0.5, ms=4)
        if p.get("published"):
            px = np.array(sorted(p["published"]), dtype=float)
            ax.plot(
                px,
                [p["published"][k] for k in sorted(p["published"])],
                "x--",
                color="tab:red",
                ms=5,
                lw=0.8,
                label="published (one run)",
            )
        if p.get("default") is not None:
            ax.axvline(p["default"], color="grey", lw=0.6, ls="--")
        chance_line(ax)
        ax.set_xlabel(p["parameter"])
        ax.set_ylim(0, 1)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, out)
