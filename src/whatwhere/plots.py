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
    fig, axes = plt.subplots(1, n + 1, figsize=(3.6 * (n + 1), 3.4), constrained_layout=True)
    for ax, acc, name in zip(axes, maps, names):
        R = acc.shape[0] // 2
        im = ax.imshow(np.maximum(acc, 0.1), extent=(-R - .5, R + .5, R + .5, -R - .5), cmap="viridis",
                       vmin=0.1, vmax=1)
        ax.contour(np.arange(-R, R + 1), np.arange(-R, R + 1), acc, levels=[0.3, 0.5, 0.7], colors="w",
                   linewidths=0.6)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("dj (px)")
        ax.set_ylabel("di (px)")
    fig.colorbar(im, ax=axes[n - 1], fraction=0.046, pad=0.02, label="accuracy")
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


# ---------------------------------------------------------------------- What/Where (paper Figs. 3-5)


def _cells(records: Sequence[dict], contrast: float, saccades, model: str | None = None):
    """(eccentricities, accuracy, lo, hi) of the records of one contrast and saccade count, sorted."""
    rows = sorted((r for r in records if r["saccades"] == saccades and abs(r["contrast"] - contrast) < 1e-9
                   and (model is None or r["model"] == model)), key=lambda r: r["eccentricity"])
    e = np.array([r["eccentricity"] for r in rows])
    a = np.array([r["accuracy"] for r in rows])
    lo = np.array([r["ci95"][0] for r in rows])
    hi = np.array([r["ci95"][1] for r in rows])
    return e, a, lo, hi


def _published_where(contrast: float):
    from whatwhere.published import WHERE_ECCENTRICITY as P

    for c, table in P["accuracy"].items():
        if abs(c - contrast) < 1e-9:
            return np.array(P["eccentricities"]), table
    return None, None


def where_fig4(records: Sequence[dict], out, *, model: str | None = None, published: bool = True,
               title: str = "") -> Path:
    """Paper Fig. 4: accuracy before (0) and after one saccade (1) per eccentricity, one panel per
    contrast; bars with Wilson 95 % intervals, the published values as markers."""
    contrasts = sorted({r["contrast"] for r in records}, reverse=True)
    fig, axes = plt.subplots(1, len(contrasts), figsize=(4.6 * len(contrasts), 3.5), squeeze=False, sharey=True)
    for ax, c in zip(axes[0], contrasts):
        pe, pub = _published_where(c) if published else (None, None)
        for k, (s, color) in enumerate(((0, "tab:grey"), (1, "tab:blue"))):
            e, a, lo, hi = _cells(records, c, s, model)
            if len(e) == 0:
                continue
            x = np.arange(len(e)) + (k - 0.5) * 0.38
            ax.bar(x, a, width=0.38, color=color, alpha=0.8, label=f"{s} saccade" + ("s" if s != 1 else ""),
                   yerr=np.vstack([a - lo, hi - a]), capsize=2, error_kw={"lw": 0.8})
            if pub is not None and len(e) == len(pe) and np.allclose(e, pe, atol=0.01):
                ax.plot(x, pub[s], "k_" if s == 0 else "r_", ms=11, mew=2,
                        label=f"published, {s} saccade" + ("s" if s != 1 else ""))
        e = _cells(records, c, 0, model)[0]
        if len(e) == 0:
            e = _cells(records, c, 1, model)[0]
        ax.set_xticks(np.arange(len(e)))
        ax.set_xticklabels([f"{v:.1f}" for v in e], fontsize=7)
        ax.axhline(0.1135, color="grey", lw=0.8, ls=":")
        ax.set_ylim(0, 1)
        ax.set_xlabel("eccentricity (px)")
        ax.set_title(f"contrast {c:g}", fontsize=9)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, -1].legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, out)


def where_fig5b(records: Sequence[dict], out, *, contrast: float = 0.7, saccades: Sequence[int] = (0, 1, 2, 3),
                model: str | None = None, published: bool = True, title: str = "") -> Path:
    """Paper Fig. 5B: accuracy vs eccentricity after 0, 1, 2, 3 saccades (one contrast), with
    Wilson 95 % bands; the stopping rule (if benchmarked) dashed; published curves as markers."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    pe, pub = _published_where(contrast) if published else (None, None)
    colors = plt.cm.viridis(np.linspace(0, 0.85, max(len(saccades), 1)))
    for s, col in zip(saccades, colors):
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
    ax.axhline(0.1135, color="grey", lw=0.8, ls=":", label="chance (11.35 %)")
    ax.set_ylim(0, 1)
    ax.set_xlabel("eccentricity (px)")
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"contrast {contrast:g}", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    return _save(fig, out)


def where_fig3(*, display: np.ndarray, reconstruction: np.ndarray, true_map: np.ndarray, pred_map: np.ndarray,
               fovea: np.ndarray, label: int, prediction: int, offset: tuple[int, int], fixation: tuple[int, int],
               out, title: str = "") -> Path:
    """Paper Fig. 3: a display, its retina reconstruction, the true and predicted collicular maps
    (unpooled to the full field), and the fovea after the saccade with its label.

    Args:
        display, reconstruction, true_map, pred_map: ``(N, N)`` arrays; ``fovea`` ``(28, 28)``.
        offset: the digit's (di, dj); fixation: where the saccade landed (di, dj).
    """
    N = display.shape[0]
    c = N // 2
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.7), constrained_layout=True)
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
    axes[4].set_title(f"fovea after the saccade to ({fixation[0]:+d},{fixation[1]:+d})\n"
                      f"What says {prediction} (label {label})", fontsize=8, color="g" if prediction == label else "r")
    for ax in axes[:4]:
        ax.set_xlabel("dj (px)", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[4].set_xticks([])
    axes[4].set_yticks([])
    axes[2].legend(handles=[plt.Line2D([], [], color="r", marker="+", ls="", label="digit"),
                            plt.Line2D([], [], color="w", marker="o", mfc="none", ls="", mec="k", label="saccade")],
                   fontsize=6, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, out)
