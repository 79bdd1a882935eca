"""Reports of the unified benchmark: Markdown tables and the result file.

:func:`write_report` writes ``benchmark.json`` (records, per-model summary and provenance: the
fields every result file carries) and ``benchmark.md``: a per-model summary (bandwidth,
parameters, throughput, θ spread, glimpse hit rate, how much of the digit's position the
localiser's input code explains linearly) and one accuracy table per contrast with the published
values beside ours.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from whatwhere.eval.metrics import wilson
from whatwhere.eval.published import published_curve
from whatwhere.utils.io import write_json, write_text
from whatwhere.utils.provenance import command_line, provenance

__all__ = ["markdown", "write_report", "row_label", "series", "published_row", "main_sweep_metrics"]


def row_label(name: str, s) -> str:
    if s is None:
        return name
    if s == "stop":
        return f"{name}, stopping rule"
    return f"{name}, {s} saccade" + ("" if s == 1 else "s")


def series(result: dict):
    """Ordered (model, saccades) pairs as they appear in the records."""
    seen = []
    for r in result["records"]:
        key = (r["model"], r["saccades"])
        if key not in seen:
            seen.append(key)
    return seen


def series_cells(result: dict, model: str, s, c: float) -> dict:
    """The records of one series (``model`` after ``s`` saccades) at contrast ``c``, by eccentricity."""
    return {
        r["eccentricity"]: r
        for r in result["records"]
        if r["model"] == model and r["saccades"] == s and abs(r["contrast"] - c) < 1e-9
    }


def published_row(result: dict, model: str, s, c: float):
    """The published accuracies (per eccentricity of ``result``) of ``model`` at contrast ``c``
    after ``s`` saccades, or None."""
    key = result["models"].get(model, {}).get("published")
    if key is None:
        return None
    return published_curve(key, c, s, result["eccentricities"])


def _fmt_int(v) -> str:
    return "—" if v is None else f"{int(v):,}"


def _clutter_note(result: dict) -> list[str]:
    """A warning when published values were measured on another clutter level than these displays."""
    clutter = result["display"].get("clutter")
    keys = {m.get("published") for m in result["models"].values()}
    notes = []
    if "whatwhere" in keys and clutter != 1.0:
        notes.append(
            f"Note: the published What/Where values were measured at clutter 1.0 (the paper's display); "
            f"these displays have clutter {clutter}."
        )
    if keys & {"stn128", "atn", "polo_atn", "polo_atn85", "conv_polo_atn"} and clutter != 0.75:
        notes.append(
            f"Note: the published transformer values were measured at clutter 0.75; these displays have "
            f"clutter {clutter}."
        )
    return [*notes, ""] if notes else []


def origin_rows(result: dict) -> list[str]:
    """One table row per trained network: which recipe, profile (*full*: none), seed and commit made it."""

    def row(label, o):
        v = lambda k: "?" if o.get(k) is None else str(o[k])  # noqa: E731
        profile = o.get("profile") or ("full" if o.get("recipe") else "?")
        return f"| {label} | {v('recipe')} | {profile} | {v('seed')} | {v('commit')} |"

    rows = []
    for name, m in result["models"].items():
        origin = m.get("origin")
        if not origin:
            continue
        if "recipe" in origin:
            rows.append(row(name, origin))
        else:  # an agent: its What network and one Where network per contrast
            rows += [row(f"{name}, {part}", o) for part, o in origin.items()]
    return rows


def markdown(result: dict) -> str:
    """The benchmark as Markdown: per-model summary, then one accuracy table per contrast."""
    ecc = result["eccentricities"]
    disp = result["display"]
    lines = [
        f"Displays: preset `{disp['preset']}` (clutter {disp.get('clutter')}), {result['n_digits']} MNIST-test "
        f"digits per cell, seed {result['seed']}; every model saw the same displays. Accuracy with Wilson "
        f"95 % half-width in the mean column; *published* rows are the original studies' values.",
        "",
        *_clutter_note(result),
        f"| model | bandwidth | parameters | displays/s | θ spread | hit rate (≤ {result['hit_px']:g} px) | code R² |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in result["models"].items():
        spread = "—" if m.get("theta_spread") is None else f"{m['theta_spread']:.3f}"
        hit = "—" if m.get("hit_rate") is None else f"{m['hit_rate']:.1%}"
        tp = "—" if m.get("throughput") is None else f"{m['throughput']:,.0f}"
        r2 = "—" if m.get("code_r2") is None else f"{m['code_r2']:.2f}"
        glimpses = f", {m['mean_glimpses']:.2f} glimpses" if m.get("mean_glimpses") is not None else ""
        lines.append(
            f"| {name}{glimpses} | {_fmt_int(m.get('bandwidth'))} | {_fmt_int(m.get('params'))} | {tp} | "
            f"{spread} | {hit} | {r2} |"
        )
    if any(m.get("code_r2") is not None for m in result["models"].values()):
        lines += [
            "",
            "*code R²*: how much of the digit's offset a ridge regression on the localiser's (or Where "
            "pathway's) input explains, on held-out displays (`whatwhere diagnose code`).",
        ]
    made = origin_rows(result)
    if made:
        lines += ["", "| model | made by: recipe | profile | seed | commit |", "|---|---|---|---|---|", *made]
    for c in result["contrasts"]:
        lines += [
            "",
            f"**Contrast {c:g}**",
            "",
            "| model | " + " | ".join(f"{e:.2f}" for e in ecc) + " | mean |",
            "|---|" + "---|" * (len(ecc) + 1),
        ]
        for name, s in series(result):
            rows = series_cells(result, name, s, c)
            if not rows:
                continue
            acc = [rows[e]["accuracy"] if e in rows else math.nan for e in ecc]
            tot = sum(rows[e]["total"] for e in ecc if e in rows)
            cor = sum(rows[e]["correct"] for e in ecc if e in rows)
            lo, hi = wilson(cor, tot)
            lines.append(
                f"| {row_label(name, s)} | "
                + " | ".join(f"{a:.3f}" for a in acc)
                + f" | {cor / tot:.3f} ± {(hi - lo) / 2:.3f} |"
            )
            pub = published_row(result, name, s, c)
            if pub is not None:
                lines.append(
                    f"| *{row_label(name, s)}, published* | "
                    + " | ".join("—" if math.isnan(p) else f"*{p:.3f}*" for p in pub)
                    + f" | *{np.nanmean(pub):.3f}* |"
                )
    return "\n".join(lines) + "\n"


def write_report(
    result: dict, out, *, command: str | None = None, wall_time_s: float | None = None, device="cpu"
) -> list[Path]:
    """Write ``benchmark.json`` and ``benchmark.md`` into ``out`` (the figure:
    :func:`whatwhere.viz.benchmark_figure`).

    ``command`` defaults to this process's command line; ``wall_time_s`` to the benchmark's own time.
    """
    out = Path(out)
    command = command or command_line(prog=Path(sys.argv[0]).name or "python")
    wall_time_s = result.get("benchmark_time_s", 0.0) if wall_time_s is None else wall_time_s
    payload = provenance(
        model=", ".join(result["models"]),
        recipe="benchmark",
        seed=result["seed"],
        device=device,
        wall_time_s=wall_time_s,
        command=command,
    )
    payload.update(result)
    paths = [write_json(out / "benchmark.json", payload)]
    paths.append(
        write_text(
            out / "benchmark.md",
            f"<!-- {payload['command']} | {payload['hardware']} | "
            f"{wall_time_s:.0f} s | commit {payload['git_commit']} -->\n" + markdown(result),
        )
    )
    return paths


def main_sweep_metrics(report: dict) -> list[str]:
    """The (at most five) metrics a sweep report shows by default, most telling first, among those
    its runs have (the names :func:`whatwhere.orchestration.sweep.evaluate_run` writes); the
    Markdown table and the sweep figures use it."""
    names = {k for p in report["points"] for k in p["metrics"]}
    order = [
        "one_saccade_random",
        "mean_s1",
        "central",
        "general",
        "map_radius_0.7",
        "mean_c0.7",
        "mean_c0.5",
        "mean_c0.3",
        "final_test_acc",
    ]
    return [k for k in order if k in names][:5]
