"""The trade-off between accuracy far from the fixation and the numbers a model reads to answer.

A foveated model is meant to read little: the What/Where agent (Daucé, Albiges & Perrinet 2020)
reads a 2880-coefficient log-polar retina code before each saccade and a 28 x 28 fovea, where a
spatial transformer on the display (Jaderberg et al. 2015; STN-128 and ATN of Dabane, Perrinet &
Daucé 2022) reads all 16,384 pixels.  This module puts every model of a benchmark on one axis,
numbers read per decision (:func:`whatwhere.eval.benchmark.reads_of`), against its accuracy at
one eccentricity (the largest, 40 px, by default):

* :func:`registry_reads`: the count of a registry model as its default arguments build it (for
  ``where``: the What/Where agent of the default What and Where networks);
* :func:`result_reads`: the counts of the models of a ``whatwhere benchmark`` result, as the
  benchmark recorded them (``reads`` of each model's summary) or, for older result files,
  rebuilt from each model's architecture (the metadata of its weights file; no weights are read);
* :func:`tradeoff_points`: one point per model, saccade count and contrast of a result (pure);
* :func:`published_candidates` / :func:`published_points`: the published models that were not
  benchmarked, at the published accuracy (pure);
* :func:`tradeoff_markdown`: the table of the points.

``whatwhere figures tradeoff`` draws the figure (:func:`whatwhere.viz.tradeoff_figure`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields

from whatwhere.data.display import DisplayConfig
from whatwhere.eval.benchmark import Reads, reads_of
from whatwhere.eval.published import STN_BENCHMARK, WHERE_ECCENTRICITY, published_curve
from whatwhere.eval.reports import row_label

__all__ = [
    "registry_reads",
    "result_reads",
    "tradeoff_points",
    "published_candidates",
    "published_points",
    "tradeoff_markdown",
    "same_displays",
    "PUBLISHED_CLUTTER",
]

#: The clutter level of the displays each published source measured on (its values are drawn
#: only beside results on displays of the same clutter): the STN study's benchmark, 0.75; the
#: What/Where paper, 1.0.
PUBLISHED_CLUTTER = {"stn": 0.75, "whatwhere": 1.0}

#: Citations of the published points.
_CITE = {"stn": str(STN_BENCHMARK["source"]), "whatwhere": str(WHERE_ECCENTRICITY["source"])}


def _agent(what, where):
    from whatwhere.models.agent import Agent

    return Agent(what, where).eval()


def registry_reads(
    name: str,
    *,
    N: int | None = None,
    saccades: int | None = None,
    glimpses: float | None = None,
    model_args: Mapping | None = None,
) -> Reads:
    """Numbers read per decision by the registry model ``name`` built with its default arguments
    (``model_args`` override them), untrained.

    ``where`` (or ``whatwhere``) is the What/Where agent of a default What and Where network after
    ``saccades`` saccades; ``glimpses`` the glimpses a glimpse model takes (default its own);
    ``N`` the display side (default the model's).
    """
    from whatwhere.models.registry import create_model

    if name in ("where", "whatwhere"):
        return reads_of(
            _agent(create_model("what"), create_model("where", **dict(model_args or {}))), N, saccades=saccades
        )
    return reads_of(create_model(name, **dict(model_args or {})), N, saccades=saccades, glimpses=glimpses)


def _architecture(spec: str):
    """The untrained model of the architecture of ``spec`` (a run directory, weights file or zoo
    name): its weights file's metadata, the weights themselves not read."""
    from whatwhere.engine.checkpoints import resolved_meta
    from whatwhere.models.registry import create_model

    meta = resolved_meta(spec)
    return create_model(meta["model"], **meta.get("model_args", {}))


def _rebuilt(summary: dict):
    """``(model, how)``: the architecture of a benchmarked model from its sources, else the
    registry defaults of its registry name."""
    from whatwhere.models.registry import create_model

    agent = summary.get("kind") == "agent"
    src = str(summary.get("source") or "")
    where_spec = next(iter((summary.get("where_by_contrast") or {}).values()), src.split(", ")[0])
    try:
        if agent:
            return _agent(_architecture(str(summary.get("what") or "what")), _architecture(where_spec)), (
                f"the architecture of {where_spec}"
            )
        return _architecture(src), f"the architecture of {src}"
    except (OSError, ValueError) as exc:  # not on this machine (a run elsewhere) or unreadable
        why = f"{src or 'its source'} not readable here: {type(exc).__name__}"
        if agent:
            return _agent(create_model("what"), create_model("where")), f"registry defaults of where ({why})"
        name = summary.get("registry_model")
        if not name:
            raise ValueError(f"cannot rebuild a model without a registry name ({why})") from exc
        return create_model(str(name)), f"registry defaults of {name} ({why})"


def result_reads(result: dict) -> dict[str, dict]:
    """The numbers read per decision of every model of a ``whatwhere benchmark`` result:
    ``{model: {"rows": {saccades: Reads-as-dict}, "how": str}}`` (``saccades`` None for a model
    that is not an agent).

    A result that recorded them (``reads`` in each model's summary) gives them as recorded.  For
    an older result each model is rebuilt from its architecture (the metadata of its weights,
    :func:`reads_of` on the untrained model, the mean glimpses the benchmark recorded for a glimpse
    model); a source missing here falls back to its registry name's defaults, said in ``how``, and
    a rebuilt model whose ``bandwidth`` differs from the recorded one is refused.
    """
    N = int((result.get("display") or {}).get("size") or 128)
    out: dict[str, dict] = {}
    for name, s in result["models"].items():
        if isinstance(s.get("reads"), list) and s["reads"]:
            rows = {r["saccades"]: {k: v for k, v in r.items() if k != "saccades"} for r in s["reads"]}
            out[name] = {"rows": rows, "how": "recorded by the benchmark"}
            continue
        model, how = _rebuilt(s)
        band, recorded = getattr(model, "bandwidth", None), s.get("bandwidth")
        if recorded is not None and band is not None and int(band) != int(recorded):
            raise ValueError(
                f"{name}: the rebuilt model ({how}) reads {int(band)} code numbers, the benchmark recorded {recorded}"
            )
        counts = list(s.get("saccades") or [0]) if s.get("kind") == "agent" else [None]
        g = s.get("mean_glimpses")
        rows = {k: reads_of(model, N, saccades=k, glimpses=g).as_dict() for k in counts}
        out[name] = {"rows": rows, "how": how}
    return out


def _at(values: Sequence[float], e: float) -> int | None:
    return next((i for i, v in enumerate(values) if abs(float(v) - e) < 0.01), None)


def tradeoff_points(result: dict, reads: Mapping[str, dict], *, eccentricity: float | None = None, source: str = ""):
    """One point per model, saccade count and contrast of a benchmark result: its accuracy (and
    Wilson 95 % interval) at ``eccentricity`` (default the largest of the result) against the
    numbers it reads per decision (``reads``: :func:`result_reads`).  A glimpse model that
    reports the glimpses it took in that cell (``mean_glimpses``) reads in proportion.  Stopping
    rule rows are left out.

    Returns:
        ``[{"model", "saccades", "label", "contrast", "eccentricity", "accuracy", "ci95",
        "numbers_read", "glimpses", "formula", "published": False, "registry_model", "source",
        "how"}]``.
    """
    eccs = [float(e) for e in result["eccentricities"]]
    e = max(eccs) if eccentricity is None else float(eccentricity)
    if _at(eccs, e) is None:
        raise ValueError(f"eccentricity {e:g} px is not in the result's grid {', '.join(f'{v:g}' for v in eccs)}")
    points = []
    for r in result["records"]:
        if r["saccades"] == "stop" or abs(float(r["eccentricity"]) - e) >= 0.01:
            continue
        name, s = r["model"], r["saccades"]
        if name not in reads or s not in reads[name]["rows"]:
            raise ValueError(f"no count of the numbers read by {row_label(name, s)}")
        row = reads[name]["rows"][s]
        total, g, formula = float(row["total"]), float(row["glimpses"]), str(row.get("formula", ""))
        taken = r.get("mean_glimpses")
        if taken is not None and g > 0 and abs(float(taken) - g) > 1e-9:  # the glimpses taken in this cell
            total, formula = total * float(taken) / g, formula.replace(f"{g:g} × ", f"{float(taken):.3g} × ", 1)
            g = float(taken)
        summary = result["models"].get(name, {})
        points.append(
            {
                "model": name,
                "saccades": s,
                "label": row_label(name, s),
                "contrast": float(r["contrast"]),
                "eccentricity": float(r["eccentricity"]),
                "accuracy": float(r["accuracy"]),
                "ci95": list(r["ci95"]) if r.get("ci95") else None,
                "numbers_read": total,
                "glimpses": g,
                "formula": formula,
                "published": False,
                "registry_model": summary.get("registry_model") or summary.get("published"),
                "source": source,
                "how": reads[name]["how"],
            }
        )
    return points


def published_candidates(results: Sequence[dict]) -> list[tuple[str, int | None]]:
    """The published models (``(key, saccades)``) to draw beside ``results``: those of a published
    source measured at the results' clutter level (:data:`PUBLISHED_CLUTTER`) that none of the
    results benchmarked (by its ``published`` key).  Empty when the results' clutter levels
    differ or match no source."""
    clutters = {float((r.get("display") or {}).get("clutter", float("nan"))) for r in results}
    if len(clutters) != 1:
        return []
    clutter = clutters.pop()
    done = {m.get("published") for r in results for m in r["models"].values()}
    out: list[tuple[str, int | None]] = []
    if abs(clutter - PUBLISHED_CLUTTER["stn"]) < 1e-9:
        out += [(k, None) for k in STN_BENCHMARK["accuracy"] if k not in done]
    if abs(clutter - PUBLISHED_CLUTTER["whatwhere"]) < 1e-9 and "whatwhere" not in done:
        out += [("whatwhere", s) for s in sorted(next(iter(WHERE_ECCENTRICITY["accuracy"].values())))]
    return out


def published_points(
    reads: Mapping[tuple[str, int | None], Reads], contrasts: Sequence[float], eccentricity: float
) -> list[dict]:
    """The published accuracy at ``eccentricity`` of every model of ``reads`` (``{(key, saccades):
    numbers read}``, :func:`published_candidates` with :func:`registry_reads`) at each contrast,
    as points of :func:`tradeoff_points` with ``published`` True (no interval: the studies give
    none); nothing where the study has no value."""
    points = []
    for (key, s), rd in reads.items():
        for c in contrasts:
            acc = published_curve(key, float(c), s, [float(eccentricity)])
            if acc is None or not math.isfinite(acc[0]):
                continue
            points.append(
                {
                    "model": key,
                    "saccades": s,
                    "label": row_label(key, s) + " (published)",
                    "contrast": float(c),
                    "eccentricity": float(eccentricity),
                    "accuracy": float(acc[0]),
                    "ci95": None,
                    "numbers_read": rd.total,
                    "glimpses": rd.glimpses,
                    "formula": rd.formula,
                    "published": True,
                    "registry_model": "where" if key == "whatwhere" else key,
                    "source": _CITE["whatwhere" if key == "whatwhere" else "stn"],
                    "how": f"registry defaults of {'where' if key == 'whatwhere' else key}",
                }
            )
    return points


def tradeoff_markdown(points: Sequence[dict], *, command: str = "", note: str = "") -> str:
    """A Markdown table of trade-off points: one row per model and saccade count, the numbers it
    reads and how they are counted, its accuracy at each contrast (± the Wilson 95 % half-width;
    published values in italics), and where it comes from."""
    contrasts = sorted({p["contrast"] for p in points}, reverse=True)
    eccs = sorted({p["eccentricity"] for p in points})
    rows: dict[tuple, dict] = {}
    for p in points:
        rows.setdefault((p["label"], p["published"]), {"p": p, "acc": {}})["acc"][p["contrast"]] = p
    lines = []
    if command:
        lines += [f"`{command}`", ""]
    if note:
        lines += [note, ""]
    at = ", ".join(f"{e:g}" for e in eccs)
    lines += [
        "| model | numbers read per decision | counted as | "
        + " | ".join(f"accuracy at {at} px, contrast {c:g}" for c in contrasts)
        + " | source |",
        "|---|---|---|" + "---|" * len(contrasts) + "---|",
    ]
    for (label, pub), v in sorted(rows.items(), key=lambda kv: (kv[1]["p"]["numbers_read"], kv[0][0])):
        p = v["p"]
        cells = []
        for c in contrasts:
            q = v["acc"].get(c)
            if q is None:
                cells.append("—")
            elif pub:
                cells.append(f"*{q['accuracy']:.3f}*")
            else:
                lo, hi = q["ci95"] or (q["accuracy"], q["accuracy"])
                cells.append(f"{q['accuracy']:.3f} ± {(hi - lo) / 2:.3f}")
        name = f"*{label}*" if pub else label
        src = p["source"] if pub else f"{p['source']}; counts: {p['how']}"
        lines.append(f"| {name} | {p['numbers_read']:,.0f} | {p['formula']} | " + " | ".join(cells) + f" | {src} |")
    return "\n".join(lines) + "\n"


def same_displays(a: dict, b: dict) -> bool:
    """Whether two benchmark results' ``display`` records describe the same displays.  A key that
    only one of them records (a display parameter added after the other was written) must hold its
    :class:`~whatwhere.data.display.DisplayConfig` default there."""
    defaults = {f.name: f.default for f in fields(DisplayConfig) if f.default is not MISSING}
    missing = object()
    for k in a.keys() | b.keys():
        x, y = a.get(k, missing), b.get(k, missing)
        if x is missing or y is missing:
            x = y if x is missing else x
            y = defaults.get(k, missing)
        if x != y:
            return False
    return True
