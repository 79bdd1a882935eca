"""The report of a results directory: ``report/index.html`` (self-contained) and ``report/report.md``.

:func:`collect` reads what a directory holds (``whatwhere reproduce``'s, or any folder of result
files, e.g. the repository's ``results/``):

* training runs (``run.json``): recipe, profile, precision, seed, epochs, final test accuracy, and
  the published value where there is one (the standard tasks);
* ``central.json`` (``whatwhere eval central``): central and general accuracy;
* ``accuracy_map.json`` (``whatwhere eval accuracy-map``): the radial profile of the shift-accuracy map;
* ``benchmark.json`` (``whatwhere benchmark``): one table per contrast, model × eccentricity;
* parameter scans (``sweep.json`` of a sweep over at most one key whose runs report
  ``one_saccade_random``, e.g. ``whatwhere reproduce paper``'s ``scans/``): one row per scanned
  value, the mean over seeds beside the published scan (:data:`~whatwhere.eval.published.WHERE_SCAN`),
  and the scan figure (``scan*.png``) under them; their runs are not listed among the trainings;
* every figure (``*.png``).

Every number stands beside its published value (:mod:`whatwhere.eval.published`) with the
difference Δ = ours − published; a Δ beyond the tolerance (1.96 combined binomial standard errors
of the two estimates, at least 0.01) is bold in Markdown and red in HTML.  A "made by" table says
which recipe, profile, precision, seed and commit made each model, and on which hardware, at which
commit and in how long each result was computed.

:func:`render_markdown` and :func:`render_html` turn the collected document (a list of blocks) into
text; :func:`write_report` writes both into a temporary folder renamed at the end, so a report is
never left half-written.  The HTML embeds its figures as base64 PNG and its CSS inline: no network,
no JavaScript.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from whatwhere.utils.errors import UserError

__all__ = ["collect", "render_markdown", "render_html", "write_report", "tolerance"]

#: Folders never searched for results (the report itself, checkpoints, submitit logs).
_SKIP = {"report", "checkpoints", "submitit", ".git"}


# ----------------------------------------------------------------------------------- numbers


def tolerance(p: float, n: int | None, q: float, m: int | None) -> float:
    """The largest |p − q| two binomial estimates (p of n trials, q of m) differ by at 95 %:
    1.96 combined standard errors (a count None counts as 10,000), at least 0.01."""
    n, m = n or 10000, m or 10000
    se = math.sqrt(max(p * (1 - p), 0) / n + max(q * (1 - q), 0) / m)
    return max(0.01, 1.96 * se)


def _delta(ours: float | None, pub: float | None, n=None, m=None) -> dict | str:
    if pub is None or ours is None or not (math.isfinite(ours) and math.isfinite(pub)):
        return "—"
    d = ours - pub
    return {"text": f"{d:+.3f}", "flag": abs(d) > tolerance(ours, n, pub, m)}


def _f(v, fmt=".3f") -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def _em(text: str) -> dict:
    return {"text": text, "em": True}


# ---------------------------------------------------------------------------------- collecting


def _files(root: Path, name: str) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP and not d.startswith("."))
        if name in filenames:
            out.append(Path(dirpath) / name)
    return sorted(out)


def _figures(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP and not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".png")]
    return sorted(out)


def _read(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _model_arg(command: str | None, after: str) -> str | None:
    """The model of a recorded ``whatwhere eval central MODEL ...`` command line."""
    try:
        words = shlex.split(command or "")
    except ValueError:
        return None
    return words[words.index(after) + 1] if after in words and words.index(after) + 1 < len(words) else None


def _origin(spec: str | None) -> dict:
    """recipe, profile, precision, seed, commit of a model (run directory or zoo name)."""
    from whatwhere.engine.checkpoints import origin_of, recipe_of

    if not spec:
        return {}
    try:
        o = dict(origin_of(spec))
        o["precision"] = recipe_of(spec).get("precision", "fp32") if recipe_of(spec) else None
    except Exception:  # noqa: BLE001 - a model that moved or was deleted: unknown, not fatal
        return {}
    return o


def _made_row(result: str, model: str, origin: dict, payload: dict, *, wall=None) -> list:
    v = lambda k: "?" if origin.get(k) is None else str(origin[k])  # noqa: E731
    profile = origin.get("profile") or ("full" if origin.get("recipe") else "?")
    wall = payload.get("wall_time_s") if wall is None else wall
    return [
        result,
        model,
        v("recipe"),
        profile,
        v("precision") + (f", stored {origin['storage']}" if origin.get("storage") not in (None, "float32") else ""),
        v("seed"),
        v("commit"),
        str(payload.get("git_commit") or "?"),
        str(payload.get("hardware") or "?"),
        "?" if wall is None else f"{float(wall):,.1f} s",
    ]


@dataclass
class _Found:
    """What a results directory holds: each file's path and content."""

    root: Path
    plan: dict
    runs: list
    centrals: list
    maps: list
    benches: list
    figures: list
    scans: list

    def rel(self, p) -> str:
        return str(Path(p).relative_to(self.root))


def _find(root: Path) -> _Found:
    """Every readable result file under ``root`` (a scan's runs are left to its own table)."""
    plan = _read(root / "plan.json") or {}
    read = lambda name, ok: [(p, d) for p, d in ((p, _read(p)) for p in _files(root, name)) if d and ok(d)]  # noqa: E731
    runs = read("run.json", lambda d: "recipe" in d)
    centrals = read("central.json", lambda d: "central" in d)
    maps = read("accuracy_map.json", lambda d: "radial_profile" in d)
    benches = read(
        "benchmark.json",
        lambda d: (
            isinstance(d.get("models"), dict)
            and isinstance(d.get("records"), list)
            and isinstance(d.get("contrasts"), list)
        ),
    )
    scans = _scans(root)
    scan_dirs = {Path(sc["dir"]) for sc in scans}
    runs = [(p, d) for p, d in runs if p.parent.parent not in scan_dirs]
    return _Found(root, plan, runs, centrals, maps, benches, _figures(root), scans)


def _intro_blocks(root: Path, plan: dict, title: str) -> list[dict]:
    """The title, what was run (study, profile, command) and how to read the Δ columns."""
    intro = []
    if plan:
        if plan.get("from_zoo"):
            how = " from the shipped models (`--from-zoo`)"
        else:
            how = f", profile `{plan['profile']}`" if plan.get("profile") else ", full recipes"
        digits = f", {plan['digits']} digits per cell" if plan.get("digits") else ""
        intro.append(f"Study `{plan.get('study')}`{how}{digits}.")
        if plan.get("profile"):
            intro.append(
                f"**Profile `{plan['profile']}`: a quick, labelled pass, not the published recipes; its "
                f"numbers are not comparable with the published ones.**"
            )
        if plan.get("only"):
            intro.append(f"Only: {', '.join(plan['only'])}.")
        if plan.get("command"):
            intro.append(f"Command: `{plan['command']}`.")
    intro.append(
        f"Results directory: `{root}`. Every number stands beside its published value; "
        f"Δ = ours − published, **bold** (red in the HTML) when beyond the tolerance: 1.96 combined "
        f"binomial standard errors of the two estimates (at least 0.01)."
    )
    return [{"type": "h1", "text": title}] + [{"type": "p", "text": t} for t in intro]


def _outcome_blocks(plan: dict) -> list[dict]:
    """The plan's failed trainings and steps, and what it left out."""
    blocks: list[dict] = []
    outcome = plan.get("outcome", {})
    failed = [r for r in outcome.get("trainings", []) + outcome.get("steps", []) if r.get("state") == "failed"]
    if failed:
        blocks += [
            {"type": "h2", "text": "Failures"},
            {"type": "list", "items": [f"`{f.get('run') or f.get('step')}`: {f.get('error', '?')}" for f in failed]},
        ]
    notes = [s for s in plan.get("steps", []) if s.get("note")]
    if notes or plan.get("skipped"):
        items = [f"`{s['name']}`: {s['note']}" for s in notes] + [str(x) for x in plan.get("skipped", [])]
        blocks += [{"type": "h2", "text": "Left out"}, {"type": "list", "items": items}]
    return blocks


def _final_test_acc(run_dir: Path) -> float | None:
    """The last ``test_acc`` of a run's ``metrics.csv`` (None if it has none)."""
    mpath = run_dir / "metrics.csv"
    if not mpath.is_file():
        return None
    with open(mpath, newline="") as fh:
        last = list(csv.DictReader(fh))[-1:]
    return float(last[0]["test_acc"]) if last and last[0].get("test_acc") not in (None, "") else None


def _training_blocks(found: _Found, made: list) -> list[dict]:
    """One row per training run: its recipe, budget and final test accuracy (published: standard tasks)."""
    from whatwhere.eval.published import STANDARD_TASKS

    if not found.runs:
        return []
    rows = []
    for p, d in found.runs:
        acc = _final_test_acc(p.parent)
        err = STANDARD_TASKS["error"].get(d.get("recipe"))
        pub = None if err is None else 1 - err
        precision = d.get("precision") or "fp32"
        rows.append(
            [
                d.get("recipe", "?"),
                d.get("profile") or "full",
                precision,
                str(d.get("seed", "?")),
                str(d.get("epochs", "?")),
                d.get("status", "?"),
                _f(acc),
                _em(_f(pub)) if pub is not None else "—",
                _delta(acc, pub),
                f"{float(d.get('wall_time_s') or 0):,.1f} s",
            ]
        )
        sit = (d.get("sittings") or [{}])[-1]
        origin = {k: d.get(k) for k in ("recipe", "profile", "seed")}
        origin.update(precision=precision, commit=sit.get("git_commit"))
        payload = {"git_commit": sit.get("git_commit"), "hardware": sit.get("hardware")}
        made.append(
            _made_row(
                f"{found.rel(p.parent)} (training)", d.get("recipe", "?"), origin, payload, wall=d.get("wall_time_s")
            )
        )
    header = [
        "recipe",
        "profile",
        "precision",
        "seed",
        "epochs",
        "status",
        "final test acc",
        "published",
        "Δ",
        "wall time",
    ]
    return [
        {"type": "h2", "text": "Trainings"},
        {
            "type": "p",
            "text": "The final test accuracy is the trainer's own evaluation (its recipe's "
            "test displays); published: " + STANDARD_TASKS["source"] + " (1 − error), for the standard tasks.",
        },
        {"type": "table", "header": header, "rows": rows},
    ]


def _central_blocks(found: _Found, made: list) -> list[dict]:
    """Central and general accuracy of the 28×28 models beside the published ones."""
    from whatwhere.eval.published import PUBLISHED

    if not found.centrals:
        return []
    rows = []
    for p, d in found.centrals:
        name = d.get("recipe") or p.parent.name
        pub = PUBLISHED.get(name, {})
        n = d.get("n_digits")
        rows.append(
            [
                name,
                _f(d["central"]),
                _em(_f(pub.get("central"))) if pub else "—",
                _delta(d["central"], pub.get("central"), n),
                _f(d.get("general")),
                _em(_f(pub.get("general"))) if pub else "—",
                _delta(d.get("general"), pub.get("general"), n),
                str(n or "?"),
            ]
        )
        made.append(_made_row(found.rel(p), name, _origin(_model_arg(d.get("command"), "central")), d))
    return [
        {"type": "h2", "text": "Central and general accuracy (28×28 models)"},
        {
            "type": "p",
            "text": "Central: the digit at the centre; general: shifted by N(0, 15 px) "
            "(`whatwhere eval central`). Published: " + "; ".join(f"{k}: {v['source']}" for k, v in PUBLISHED.items()),
        },
        {
            "type": "table",
            "header": ["model", "central", "published", "Δ", "general", "published", "Δ", "digits"],
            "rows": rows,
        },
    ]


def _map_blocks(found: _Found, made: list) -> list[dict]:
    """One radial profile of a shift-accuracy map per ``accuracy_map.json``, beside the published one."""
    from whatwhere.eval.published import PUBLISHED_RADIAL

    blocks: list[dict] = []
    for p, d in found.maps:
        name = d.get("recipe") or p.parent.name
        prof = d["radial_profile"]
        # read back from a file: strict=False keeps a hand-edited, uneven profile reportable (as before)
        ours = dict(zip(prof["radius_px"], prof["accuracy"], strict=False))
        ref = PUBLISHED_RADIAL.get(name)
        radii = list(ref[0]) if ref else [r for r in prof["radius_px"] if r % 5 == 0]
        pub = dict(zip(*ref, strict=True)) if ref else {}
        rows = [
            [
                str(r),
                _f(ours.get(r)),
                _em(_f(pub.get(r))) if r in pub else "—",
                _delta(ours.get(r), pub.get(r), d.get("n_digits")),
            ]
            for r in radii
        ]
        blocks += [
            {"type": "h2", "text": f"Shift-accuracy map of {name}: radial profile"},
            {
                "type": "p",
                "text": f"Accuracy against the digit's distance from the centre "
                f"({d.get('n_digits', '?')} digits per cell); plateau above 0.7 within "
                f"{_f(d.get('radius_above_0.7_px'), '.1f')} px.",
            },
            {"type": "table", "header": ["radius (px)", "ours", "published", "Δ"], "rows": rows},
        ]
        made.append(_made_row(found.rel(p), name, _origin(_model_arg(d.get("command"), "accuracy-map")), d))
    return blocks


def _benchmark_made_rows(result: str, d: dict) -> list[list]:
    """The made-by rows of a benchmark's models (an agent: one row per pathway)."""
    rows = []
    for name, m in d["models"].items():
        origin = m.get("origin") or {}
        parts = {name: origin} if "recipe" in origin or not origin else {f"{name}, {k}": o for k, o in origin.items()}
        for label, o in parts.items():
            o = dict(o or {})
            spec: str | None
            if label == name:
                spec = str(m.get("source") or "")
            elif label.endswith(", What"):
                spec = m.get("what")
            else:
                by_c = m.get("where_by_contrast") or {}
                spec = next((s for c, s in by_c.items() if label.endswith(f"contrast {float(c):g}")), None)
            o.setdefault("precision", _origin(spec).get("precision") if spec else None)
            rows.append(_made_row(result, label, o, d))
    return rows


def _made_by_blocks(made: list) -> list[dict]:
    """The provenance table of every number of the report."""
    if not made:
        return []
    header = [
        "result",
        "model",
        "recipe",
        "profile",
        "precision",
        "seed",
        "trained at",
        "computed at",
        "hardware",
        "wall time",
    ]
    return [
        {"type": "h2", "text": "Made by"},
        {
            "type": "p",
            "text": "Which recipe, profile, precision and seed made each model, at which "
            "commit it was trained, and at which commit, on which hardware and in how "
            "long each result was computed (the wall time of a benchmark covers all "
            "its models). *full*: the recipe without a profile; ?: not recorded.",
        },
        {"type": "table", "header": header, "rows": made},
    ]


def collect(results_dir: str | Path) -> dict:
    """The report of ``results_dir`` as a document: ``{"title", "blocks": [...], "figures": [Path]}``.

    Raises:
        UserError: the directory does not exist, or holds no results.
    """
    from whatwhere.eval.published import STN_BENCHMARK, WHERE_ECCENTRICITY

    root = Path(results_dir)
    if not root.is_dir():
        raise UserError(f"{root}: no such results directory")
    found = _find(root)
    if not (found.runs or found.centrals or found.maps or found.benches or found.figures or found.scans):
        raise UserError(
            f"{root}: no results to report (no run.json, central.json, accuracy_map.json, "
            f"benchmark.json, sweep.json or figure under it)"
        )
    title = found.plan.get("title") or f"Results of {root.resolve().name}"
    made: list[list] = []  # the "made by" rows, filled by each section
    blocks = _intro_blocks(root, found.plan, title) + _outcome_blocks(found.plan)
    blocks += _training_blocks(found, made) + _central_blocks(found, made) + _map_blocks(found, made)
    for p, d in found.benches:
        blocks += _benchmark_blocks(found.rel(p), d, WHERE_ECCENTRICITY, STN_BENCHMARK)
        made += _benchmark_made_rows(found.rel(p), d)
    figures = found.figures
    if found.scans:  # the scan figures go under the scan tables, not among the other figures
        scan_figs = [
            f for f in figures if f.parent.name == "figures" and (f.stem == "scan" or f.stem.startswith("scan_"))
        ]
        figures = [f for f in figures if f not in scan_figs]
        captioned = [{"type": "figure", "path": f, "caption": found.rel(f)} for f in scan_figs]
        blocks += _scan_blocks(found.scans, found.plan, captioned)
        made += [_scan_made_row(found.rel(Path(sc["dir"])), sc) for sc in found.scans]
    if figures:
        blocks.append({"type": "h2", "text": "Figures"})
        blocks += [{"type": "figure", "path": f, "caption": found.rel(f)} for f in figures]
    return {"title": title, "blocks": blocks + _made_by_blocks(made), "figures": figures}


_SCAN_METRIC = "one_saccade_random"


def _scans(root: Path) -> list[dict]:
    """The parameter scans under ``root``: sweeps over at most one key whose runs report
    :data:`_SCAN_METRIC`, each ``{"dir", "key", "manifest", "report"}`` (:func:`aggregate`), the
    default point (no key) first, then the published scan's order of parameters."""
    from whatwhere.eval.published import WHERE_SCAN
    from whatwhere.orchestration.sweep import aggregate

    found = []
    for path in _files(root, "sweep.json"):
        manifest = _read(path)
        if not manifest or not isinstance(manifest.get("grid"), dict) or len(manifest["grid"]) > 1:
            continue
        try:
            rep = aggregate(path.parent)
        except (OSError, ValueError, TypeError, KeyError, UserError):
            continue  # a sweep being written or a foreign one: not a scan of this report
        if not any(_SCAN_METRIC in pt["metrics"] for pt in rep["points"]) and rep["recipe"] != "where-scan":
            continue  # not a scan of a Where model (or one of where-scan with nothing finished yet)
        key = next(iter(manifest["grid"]), None)
        found.append({"dir": str(path.parent), "key": key, "manifest": manifest, "report": rep})
    order = list(WHERE_SCAN["scans"])
    return sorted(found, key=lambda sc: (sc["key"] is not None, order.index(sc["key"]) if sc["key"] in order else 99))


def _scan_blocks(scans: list[dict], plan: dict, figures: list[dict]) -> list[dict]:
    from whatwhere.eval.published import WHERE_SCAN, where_scan_published

    def stat(pt):
        return (pt or {}).get("metrics", {}).get(_SCAN_METRIC)

    base = next((sc for sc in scans if sc["key"] is None), None)
    ours0 = stat(base["report"]["points"][0]) if base and base["report"]["points"] else None
    pub0 = float(WHERE_SCAN["default"])
    rows = []
    profiles, digits = set(), set()
    for sc in scans:
        m = sc["manifest"]
        profiles.add(m.get("profile"))
        digits |= {(r.get("eval") or {}).get("digits", 500) for r in m.get("runs", [])}
        points = sorted(sc["report"]["points"], key=lambda pt: pt["values"].get(sc["key"], 0) if sc["key"] else 0)
        for pt in points:
            x = pt["values"].get(sc["key"]) if sc["key"] else None
            st = stat(pt)
            pub = where_scan_published(sc["key"], x)
            n_dig = max((r.get("eval") or {}).get("digits", 500) for r in m.get("runs", [{}]))
            cells: list = [sc["key"] or "default point", "—" if x is None else f"{x:g}", str(len(pt["seeds"]))]
            if st is None:
                cells += ["—", "—"]
            else:
                cells.append(_f(st["mean"]) + ("" if st["sd"] is None else f" ± {st['sd']:.3f}"))
                cells.append("—" if st["ci95"] is None else f"[{st['ci95'][0]:.3f}, {st['ci95'][1]:.3f}]")
            if pub is None:
                cells += ["—", "—"]
            else:
                cells.append(_em(("~" if pub[1] else "") + _f(pub[0])))
                if st is None:
                    cells.append("—")
                else:
                    d = st["mean"] - pub[0]
                    half = 0.0 if st["ci95"] is None else (st["ci95"][1] - st["ci95"][0]) / 2
                    tol = max(tolerance(st["mean"], n_dig * len(pt["seeds"]), pub[0], None), half)
                    cells.append({"text": f"{d:+.3f}", "flag": abs(d) > tol})
            if sc["key"] is None or st is None or ours0 is None:
                cells.append("—")
            else:
                cells.append(f"{st['mean'] - ours0['mean']:+.3f}")
            cells.append("—" if sc["key"] is None or pub is None else _em(f"{pub[0] - pub0:+.3f}"))
            rows.append(cells)
        if sc["report"]["missing"]:
            rows.append(
                [sc["key"] or "default point", "", "", f"not finished: {len(sc['report']['missing'])} run(s)"]
                + [""] * 5
            )
    profile = next(iter(profiles - {None}), None)
    recipe = scans[0]["manifest"].get("recipe", "?")
    text = (
        f"The What/Where paper's parameter scans ({WHERE_SCAN['source']}): one Where network per "
        f"value and seed (`{recipe}`: a labelled reduced training budget, below the paper's), scored by "
        f"its accuracy after one saccade on displays of its own training distribution "
        f"({', '.join(map(str, sorted(digits)))} digits per run). Ours: mean ± sd over the seeds "
        f"[95 % t interval]; *published*: one run per value, ~ interpolated linearly between the two "
        f"published values around it; Δ = ours − published, **bold** (red) when beyond both the "
        f"binomial tolerance and the seeds' 95 % half-width. The reduced budget lowers every accuracy: "
        f"compare the change from the default point (ours − default) with the published one."
    )
    blocks: list[dict] = [{"type": "h2", "text": "Parameter scans"}, {"type": "p", "text": text}]
    if profile:
        blocks.append(
            {
                "type": "p",
                "text": f"**Profile `{profile}`: a quick, labelled pass of the scans; its numbers are not "
                f"comparable with the published ones.**",
            }
        )
    blocks.append(
        {
            "type": "table",
            "header": [
                "parameter",
                "value",
                "seeds",
                "ours",
                "95 % interval",
                "published",
                "Δ",
                "ours − default",
                "published − default",
            ],
            "rows": rows,
        }
    )
    return blocks + figures


def _scan_made_row(result: str, sc: dict) -> list:
    """One "made by" row per scan: its recipe, profile, seeds, the commit and hardware of its runs
    and their summed training time."""
    recs = [
        _read(Path(sc["dir"]) / r["name"] / "run.json") or {}
        for r in sc["manifest"].get("runs", [])
        if isinstance(r, dict) and "name" in r
    ]
    recs = [r for r in recs if r]
    sits = [(r.get("sittings") or [{}])[-1] for r in recs]
    commits = sorted({str(x.get("git_commit")) for x in sits if x.get("git_commit")})
    hardware = sorted({str(x.get("hardware")) for x in sits if x.get("hardware")})
    seeds = sc["manifest"].get("seeds") or []
    wall = sum(float(r.get("wall_time_s") or 0) for r in recs) if recs else None
    origin = {
        "recipe": sc["manifest"].get("recipe"),
        "profile": sc["manifest"].get("profile"),
        "precision": (recs[0].get("precision") or "fp32") if recs else None,
        "seed": ", ".join(map(str, seeds)) or None,
        "commit": ", ".join(commits) or None,
    }
    payload = {"git_commit": ", ".join(commits) or None, "hardware": "; ".join(hardware) or None}
    return _made_row(
        f"{result} ({len(recs)} run(s), training)", f"scan {sc['key'] or 'default'}", origin, payload, wall=wall
    )


def _benchmark_blocks(name: str, d: dict, where_pub: dict, stn_pub: dict) -> list[dict]:
    from whatwhere.eval.metrics import wilson
    from whatwhere.eval.reports import published_row, row_label, series, series_cells

    ecc = d["eccentricities"]
    disp = d.get("display") or {}
    n = d.get("n_digits")
    out: list[dict] = [
        {"type": "h2", "text": f"Benchmark `{name}`"},
        {
            "type": "p",
            "text": f"Preset `{disp.get('preset')}` (clutter {disp.get('clutter')}), {n} MNIST-test "
            f"digits per cell, display seed {d.get('seed')}; every model saw the same displays. "
            f"Accuracy per eccentricity (px) and its mean (± Wilson 95 % half-width); "
            f"*published*: {where_pub['source']} ({where_pub['n_per_cell']} per cell) and "
            f"{stn_pub['source']} ({stn_pub['n_per_cell']} per cell).",
        },
    ]
    keys = {m.get("published") for m in d["models"].values()}
    clutter = disp.get("clutter")
    if "whatwhere" in keys and clutter != 1.0:
        out.append(
            {
                "type": "p",
                "text": f"Note: the published What/Where values were measured at clutter 1.0; "
                f"these displays have clutter {clutter}.",
            }
        )
    if keys & set(stn_pub["accuracy"]) and clutter != 0.75:
        out.append(
            {
                "type": "p",
                "text": f"Note: the published transformer values were measured at clutter 0.75; "
                f"these displays have clutter {clutter}.",
            }
        )
    for c in d["contrasts"]:
        rows: list[list] = []
        for model, s in series(d):
            recs = series_cells(d, model, s, c)
            if not recs:
                continue
            acc = [recs[e]["accuracy"] if e in recs else math.nan for e in ecc]
            tot = sum(recs[e]["total"] for e in ecc if e in recs)
            cor = sum(recs[e]["correct"] for e in ecc if e in recs)
            lo, hi = wilson(cor, tot) if tot else (math.nan, math.nan)
            mean = cor / tot if tot else math.nan
            rows.append([row_label(model, s), *(_f(a) for a in acc), f"{mean:.3f} ± {(hi - lo) / 2:.3f}"])
            pub = published_row(d, model, s, c)
            if pub is not None:
                m_pub = (
                    where_pub["n_per_cell"]
                    if d["models"][model].get("published") == "whatwhere"
                    else stn_pub["n_per_cell"]
                )
                known = [p for p in pub if math.isfinite(p)]
                pmean = sum(known) / len(known) if known else math.nan
                rows.append([_em("published"), *(_em(_f(p)) for p in pub), _em(_f(pmean))])
                rows.append(
                    [
                        _em("Δ"),
                        *(_delta(a, p if math.isfinite(p) else None, n, m_pub) for a, p in zip(acc, pub, strict=True)),
                        _delta(mean, pmean if math.isfinite(pmean) else None, tot, m_pub * len(known)),
                    ]
                )
        if rows:
            out += [
                {"type": "h3", "text": f"Contrast {c:g}"},
                {"type": "table", "header": ["model", *(f"{e:.2f}" for e in ecc), "mean"], "rows": rows},
            ]
    return out


# ----------------------------------------------------------------------------------- rendering


def _cell_md(c) -> str:
    if isinstance(c, dict):
        t = c["text"].replace("|", "\\|")
        return f"**{t}**" if c.get("flag") else (f"*{t}*" if c.get("em") else t)
    return str(c).replace("|", "\\|")


def _fig_name(caption: str) -> str:
    return caption.replace(os.sep, "__")


def render_markdown(doc: dict) -> str:
    """The document as Markdown; figures link to ``figures/<path with / as __>`` next to it."""
    lines: list[str] = []
    for b in doc["blocks"]:
        t = b["type"]
        if t in ("h1", "h2", "h3"):
            lines += ["#" * int(t[1]) + " " + b["text"], ""]
        elif t == "p":
            lines += [b["text"], ""]
        elif t == "list":
            lines += [f"- {x}" for x in b["items"]] + [""]
        elif t == "table":
            lines += ["| " + " | ".join(map(_cell_md, b["header"])) + " |", "|" + "---|" * len(b["header"])]
            lines += ["| " + " | ".join(map(_cell_md, r)) + " |" for r in b["rows"]] + [""]
        elif t == "figure":
            lines += [f"![{b['caption']}](figures/{_fig_name(b['caption'])})", "", f"*{b['caption']}*", ""]
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #eee}
h3{font-size:1.05em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right;white-space:nowrap}
th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
td.em{font-style:italic;color:#555}
td.off{font-weight:bold;color:#b00020;background:#fdecee}
code{background:#f5f5f5;padding:0 .2em;border-radius:3px}
figure{margin:1.2em 0}
figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
"""


def _inline_html(text: str) -> str:
    """Escape, then `code` and **bold** / *italic* of the (simple) Markdown used in paragraphs."""
    import re

    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    s = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)
    return re.sub(r"(?<![\w*])\*([^*]+)\*(?![\w*])", r"<em>\1</em>", s)


def _cell_html(c, tag="td") -> str:
    if isinstance(c, dict):
        cls = "off" if c.get("flag") else ("em" if c.get("em") else "")
        return f"<{tag}{f' class={chr(34)}{cls}{chr(34)}' if cls else ''}>{html.escape(c['text'])}</{tag}>"
    return f"<{tag}>{_inline_html(str(c))}</{tag}>"


def render_html(doc: dict) -> str:
    """The document as one self-contained HTML page (figures as ``data:`` URIs, CSS inline)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(doc['title'])}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for b in doc["blocks"]:
        t = b["type"]
        if t in ("h1", "h2", "h3"):
            parts.append(f"<{t}>{_inline_html(b['text'])}</{t}>")
        elif t == "p":
            parts.append(f"<p>{_inline_html(b['text'])}</p>")
        elif t == "list":
            parts.append("<ul>" + "".join(f"<li>{_inline_html(x)}</li>" for x in b["items"]) + "</ul>")
        elif t == "table":
            parts.append(
                "<table><thead><tr>" + "".join(_cell_html(h, "th") for h in b["header"]) + "</tr></thead><tbody>"
            )
            parts += ["<tr>" + "".join(map(_cell_html, r)) + "</tr>" for r in b["rows"]]
            parts.append("</tbody></table>")
        elif t == "figure":
            data = base64.b64encode(Path(b["path"]).read_bytes()).decode("ascii")
            cap = html.escape(b["caption"])
            parts.append(
                f'<figure><img alt="{cap}" src="data:image/png;base64,{data}"><figcaption>{cap}</figcaption></figure>'
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``index.html``, ``report.md`` and ``figures/`` (the Markdown's images) into ``out``
    (default ``RESULTS_DIR/report``), atomically: built in a temporary folder beside it, then
    renamed over the previous report.  Returns ``out``.

    Raises:
        UserError: a missing or empty results directory (:func:`collect`).
    """
    doc = collect(results_dir)
    out = Path(out) if out is not None else Path(results_dir) / "report"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "figures").mkdir(parents=True)
        for b in doc["blocks"]:
            if b["type"] == "figure":
                shutil.copyfile(b["path"], tmp / "figures" / _fig_name(b["caption"]))
        (tmp / "report.md").write_text(render_markdown(doc), encoding="utf-8")
        (tmp / "index.html").write_text(render_html(doc), encoding="utf-8")
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out
