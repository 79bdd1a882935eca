"""The What/Where figures of Daucé, Albiges & Perrinet (2020): Figs. 3, 4 and 5B."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.lines import Line2D

from whatwhere.eval.published import WHERE_ECCENTRICITY
from whatwhere.viz.common import chance_line, save, subplots

__all__ = ["where_fig3", "where_fig4", "where_fig5b", "scanpaths"]


def _cells(records: Sequence[dict], contrast: float, saccades, model: str | None = None):
    """(eccentricities, accuracy, lo, hi) of the records of one contrast and saccade count, sorted."""
    rows = sorted(
        (
            r
            for r in records
            if r["saccades"] == saccades
            and abs(r["contrast"] - contrast) < 1e-9
            and (model is None or r["model"] == model)
        ),
        key=lambda r: r["eccentricity"],
    )
    e = np.array([r["eccentricity"] for r in rows])
    a = np.array([r["accuracy"] for r in rows])
    lo = np.array([r["ci95"][0] for r in rows])
    hi = np.array([r["ci95"][1] for r in rows])
    return e, a, lo, hi


def _published_where(contrast: float):
    P = WHERE_ECCENTRICITY
    for c, table in P["accuracy"].items():
        if abs(c - contrast) < 1e-9:
            return np.array(P["eccentricities"]), table
    return None, None


def where_fig4(
    records: Sequence[dict], out, *, model: str | None = None, published: bool = True, title: str = ""
) -> Path:
    """Paper Fig. 4: accuracy before (0) and after one saccade (1) per eccentricity, one panel per
    contrast; bars with Wilson 95 % intervals, the published values as markers."""
    contrasts = sorted({r["contrast"] for r in records}, reverse=True)
    fig, axes = subplots(1, len(contrasts), figsize=(4.6 * len(contrasts), 3.5), squeeze=False, sharey=True)
    for ax, c in zip(axes[0], contrasts, strict=True):
        pe, pub = _published_where(c) if published else (None, None)
        for k, (s, color) in enumerate(((0, "tab:grey"), (1, "tab:blue"))):
            e, a, lo, hi = _cells(records, c, s, model)
            if len(e) == 0:
                continue
            x = np.arange(len(e)) + (k - 0.5) * 0.38
            ax.bar(
                x,
                a,
                width=0.38,
                color=color,
                alpha=0.8,
                label=f"{s} saccade" + ("s" if s != 1 else ""),
                yerr=np.vstack([a - lo, hi - a]),
                capsize=2,
                error_kw={"lw": 0.8},
            )
            if pub is not None and pe is not None and len(e) == len(pe) and np.allclose(e, pe, atol=0.01):
                ax.plot(
                    x,
                    pub[s],
                    "k_" if s == 0 else "r_",
                    ms=11,
                    mew=2,
                    label=f"published, {s} saccade" + ("s" if s != 1 else ""),
                )
        e = _cells(records, c, 0, model)[0]
        if len(e) == 0:
            e = _cells(records, c, 1, model)[0]
        ax.set_xticks(np.arange(len(e)))
        ax.set_xticklabels([f"{v:.1f}" for v in e], fontsize=7)
        chance_line(ax)
        ax.set_ylim(0, 1)
        ax.set_xlabel("eccentricity (px)")
        ax.set_title(f"contrast {c:g}", fontsize=9)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, -1].legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, out)


def where_fig5b(
    records: Sequence[dict],
    out,
    *,
    contrast: float = 0.7,
    saccades: Sequence[int] = (0, 1, 2, 3),
    model: str | None = None,
    published: bool = True,
    title: str = "",
) -> Path:
    """Paper Fig. 5B: accuracy vs eccentricity after 0, 1, 2, 3 saccades (one contrast), with
    Wilson 95 % bands; the stopping rule (if benchmarked) dashed; published curves as markers."""
    fig, ax = subplots(figsize=(5.6, 3.8))
    pe, pub = _published_where(contrast) if published else (None, None)
    colors = colormaps["viridis"](np.linspace(0, 0.85, max(len(saccades), 1)))
    for s, col in zip(saccades, colors, strict=False):
        e, a, lo, hi = _cells(records, contrast, s, model)
        if len(e) == 0:
            continue
        ax.plot(e, a, "-o", color=col, ms=3, label=f"{s} saccade" + ("s" if s != 1 else ""))
        ax.fill_between(e, lo, hi, color=col, alpha=0.15, lw=0)
        if pub is not None and s in pub:
            ax.plot(pe, pub[s], "x", color=col, ms=5)
    e, a, lo, hi = _cells(records, contrast, "stop", model)
    if len(e):
        ax.plot(e, a, "--", color="tab:red", lw=1.2, label="stopping rule")
    if pub is not None:
        ax.plot([], [], "kx", ms=5, label="published (Fig. 5B)")
    chance_line(ax, label=True)
    ax.set_ylim(0, 1)
    ax.set_xlabel("eccentricity (px)")
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"contrast {contrast:g}", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    return save(fig, out)


def where_fig3(
    *,
    display: np.ndarray,
    reconstruction: np.ndarray,
    true_map: np.ndarray,
    pred_map: np.ndarray,
    fovea: np.ndarray,
    label: int,
    prediction: int,
    offset: tuple[int, int],
    fixation: tuple[int, int],
    out,
    title: str = "",
) -> Path:
    """Paper Fig. 3: a display, its retina reconstruction, the true and predicted collicular maps
    (unpooled to the full field), and the fovea after the saccade with its label.

    Args:
        display, reconstruction, true_map, pred_map: ``(N, N)`` arrays; ``fovea`` ``(28, 28)``.
        offset: the digit's (di, dj); fixation: where the saccade landed (di, dj).
    """
    N = display.shape[0]
    c = N // 2
    fig, axes = subplots(1, 5, figsize=(17, 3.7), constrained_layout=True)
    ext = (-c - 0.5, N - c - 0.5, N - c - 0.5, -c - 0.5)  # axes in offsets from the centre
    axes[0].imshow(display, cmap="gray", vmin=0, vmax=1, extent=ext)
    axes[0].set_title(f"display (digit {label} at ({offset[0]:+d},{offset[1]:+d}))", fontsize=8)
    axes[1].imshow(reconstruction, cmap="gray", extent=ext)
    axes[1].set_title("retina reconstruction (whitened)", fontsize=8)
    vmax = float(max(true_map.max(), pred_map.max()))
    for ax, m, name in ((axes[2], true_map, "true accuracy map"), (axes[3], pred_map, "predicted (Where)")):
        im = ax.imshow(m, cmap="viridis", vmin=0, vmax=vmax, extent=ext)
        ax.plot(offset[1], offset[0], "r+", ms=10, mew=1.5)
        ax.plot(fixation[1], fixation[0], "wo", ms=6, mfc="none", mew=1.5)
        ax.set_title(name, fontsize=8)
    fig.colorbar(im, ax=axes[3], fraction=0.046, pad=0.02, label="accuracy")
    axes[4].imshow(fovea, cmap="gray", vmin=0, vmax=1)
    axes[4].set_title(
        f"fovea after the saccade to ({fixation[0]:+d},{fixation[1]:+d})\nWhat says {prediction} (label {label})",
        fontsize=8,
        color="g" if prediction == label else "r",
    )
    for ax in axes[:4]:
        ax.set_xlabel("dj (px)", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[4].set_xticks([])
    axes[4].set_yticks([])
    axes[2].legend(
        handles=[
            Line2D([], [], color="r", marker="+", ls="", label="digit"),
            Line2D([], [], color="w", marker="o", mfc="none", ls="", mec="k", label="saccade"),
        ],
        fontsize=6,
        loc="lower right",
    )
    if title:
        fig.suptitle(title, fontsize=10)
    return save(fig, out)


def scanpaths(
    images: np.ndarray, offsets: np.ndarray, labels: np.ndarray, paths: dict, out, *, title: str = ""
) -> Path:
    """Scan paths side by side: one row per display, one column per model.

    Args:
        images: ``(R, N, N)`` displays; offsets ``(R, 2)`` the digits' (di, dj); labels ``(R,)``.
        paths: ``{model name: {"fixations": (R, K+1, 2) (di, dj), first the start,
            "predictions": (R,) the final answers, optionally "glimpses": (R,) how many fixations each
            display took (a model that stops early repeats its last fixation up to K; only the first
            ``glimpses`` are drawn)}}``; each fixation after the start is drawn with its 28×28 fovea
            (numbered), the digit as a red cross.
    """
    from matplotlib.patches import Rectangle

    R = images.shape[0]
    names = list(paths)
    fig, axes = subplots(R, len(names), figsize=(3.3 * len(names), 3.5 * R), squeeze=False, constrained_layout=True)
    N = images.shape[-1]
    c = N // 2
    ext = (-c - 0.5, N - c - 0.5, N - c - 0.5, -c - 0.5)
    colors = colormaps["autumn"](np.linspace(0.0, 0.8, 6))
    for r in range(R):
        for k, name in enumerate(names):
            ax = axes[r, k]
            ax.imshow(images[r], cmap="gray", vmin=0, vmax=1, extent=ext)
            fx = np.asarray(paths[name]["fixations"][r], dtype=float)
            taken = paths[name].get("glimpses")
            if taken is not None:
                fx = fx[: int(taken[r]) + 1]
            ax.plot(fx[:, 1], fx[:, 0], "-", color="deepskyblue", lw=1.2)
            ax.plot(fx[0, 1], fx[0, 0], "o", color="deepskyblue", ms=4)
            for j, (di, dj) in enumerate(fx[1:], start=1):
                col = colors[min(j - 1, len(colors) - 1)]
                ax.add_patch(Rectangle((dj - 14, di - 14), 28, 28, fill=False, ec=col, lw=1.2))
                ax.text(dj + 11, di - 11, str(j), color=col, fontsize=8, ha="center", va="center")
            ax.plot(offsets[r][1], offsets[r][0], "r+", ms=10, mew=1.5)
            pred = int(paths[name]["predictions"][r])
            ok = pred == int(labels[r])
            k_txt = "" if taken is None else f", {len(fx) - 1} glimpse{'s' if len(fx) != 2 else ''}"
            ax.set_title(f"{name}\nsays {pred} (label {int(labels[r])}){k_txt}", fontsize=8, color="g" if ok else "r")
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, out)
