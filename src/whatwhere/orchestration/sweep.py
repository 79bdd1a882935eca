"""Sweeps: one training run per (grid point, seed), each trained, evaluated and summarised.

A sweep is a directory::

    DIR/sweep.json                  the manifest: recipe, grid, seeds, every run's overrides
    DIR/<point>-seed<S>/            one run directory per (grid point, seed), as ``whatwhere train``
        metrics.json                its evaluation (flat name -> number), written when it is done
        status.json                 running | done | failed (with the error)
    DIR/report.json, report.md      :func:`aggregate`: mean ± sd and a 95 % interval over seeds

:func:`expand` turns ``--grid key=v1,v2`` options into runs and validates every resulting recipe
before anything is submitted.  :func:`run_point` is the job: it trains (or resumes from the run's
checkpoint, or skips a finished run), evaluates according to the model and writes
``metrics.json``; it is idempotent, so a sweep can be resubmitted at any time.  Executors (local
processes, Slurm) live in the command (``whatwhere sweep``).

This module trains (:mod:`whatwhere.engine.trainer`) and evaluates (:mod:`whatwhere.eval`), so it
sits in the orchestration layer, above both.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

from whatwhere.engine.recipe import parse_value
from whatwhere.eval.reports import main_sweep_metrics
from whatwhere.utils.errors import UserError
from whatwhere.utils.io import read_json

if TYPE_CHECKING:
    from whatwhere.retina import Retina

__all__ = [
    "GridError",
    "SweepRun",
    "parse_grid",
    "expand",
    "recipe_value",
    "run_point",
    "aggregate",
    "t_quantile",
    "evaluate_run",
]


class GridError(ValueError):
    """A bad ``--grid`` option (the message names it)."""


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: a grid point and a seed."""

    name: str
    point: str
    values: dict
    seed: int
    overrides: list
    recipe: str
    profile: str | None = None
    dir: str = ""
    eval: dict = field(default_factory=dict)


def parse_grid(items: list[str]) -> dict[str, list]:
    """``["display.clutter=0.5,1.0", "optimizer.lr=1e-4,1e-3"]`` -> ``{key: [values]}`` (YAML values;
    ``1e-3`` is a number).

    Raises:
        GridError: an item without ``=``, an empty key or value, a repeated key.
    """
    grid: dict[str, list] = {}
    for item in items:
        if "=" not in item:
            raise GridError(f"--grid {item!r} must look like KEY=V1,V2,...")
        key, _, values = item.partition("=")
        key = key.strip()
        if not key:
            raise GridError(f"--grid {item!r}: empty key")
        if key in grid:
            raise GridError(f"--grid: key {key!r} given twice")
        parts = [v.strip() for v in values.split(",")]
        if not values.strip() or any(not v for v in parts):
            raise GridError(f"--grid {key}: empty value in {values!r}")
        grid[key] = [parse_value(v) for v in parts]
    return grid


def _slug(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "_"


def expand(
    recipe: str,
    grid: dict[str, list],
    seeds: list[int] | int,
    *,
    profile: str | None = None,
    overrides: Sequence[str] = (),
    out: str | Path = ".",
) -> list[SweepRun]:
    """Every (grid point, seed) run, validated: each point's recipe is parsed with its overrides.

    Args:
        recipe: a packaged recipe name or YAML file.
        grid: from :func:`parse_grid` (may be empty: one point, the recipe itself).
        seeds: a list of seeds, or a count N (the recipe's seed, +1, ..., +N-1).

    Raises:
        GridError: a key unknown to the recipe or a bad value, with the key and the recipe's message.
    """
    from whatwhere.engine.recipe import RecipeError, load_recipe

    base = load_recipe(recipe, profile=profile, overrides=list(overrides))
    if isinstance(seeds, int):
        if seeds < 1:
            raise GridError(f"--seeds must be >= 1, got {seeds}")
        seeds = [base.seed + k for k in range(seeds)]
    if len(set(seeds)) != len(seeds):
        raise GridError(f"seeds must be distinct, got {seeds}")
    keys = list(grid)
    runs = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combo, strict=True))
        point_overrides = [*overrides, *(f"{k}={json.dumps(v)}" for k, v in values.items())]
        try:
            load_recipe(recipe, profile=profile, overrides=point_overrides)
        except (RecipeError, ValueError, TypeError) as exc:
            raise GridError(f"grid point {values}: {exc}") from None
        point = "__".join(f"{k}={_slug(v)}" for k, v in values.items()) or "base"
        for s in seeds:
            name = f"{point}-seed{s}"
            runs.append(
                SweepRun(
                    name=name,
                    point=point,
                    values=values,
                    seed=int(s),
                    overrides=[*point_overrides, f"seed={int(s)}"],
                    recipe=str(recipe),
                    profile=profile,
                    dir=str(Path(out) / name),
                )
            )
    return runs


def recipe_value(recipe: str, key: str, *, profile: str | None = None):
    """The value of the dotted ``key`` in ``recipe`` (e.g. the default point of a scan): as the recipe
    file says, else, for a ``display.*`` key, the display its last stage trains on (the preset's
    value, e.g. ``display.sf_0``); None when neither has it."""
    from whatwhere.engine.recipe import load_recipe, read_recipe

    node: Any = read_recipe(recipe)
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None and key.startswith("display.") and key.count(".") == 1:
        node = getattr(load_recipe(recipe, profile=profile).stages[-1].display, key.split(".")[1], None)
    return node


# ------------------------------------------------------------------------------------ the job


def _status(run_dir: Path, state: str, **extra) -> None:
    from whatwhere.utils.io import write_json
    from whatwhere.utils.provenance import utc_iso

    write_json(run_dir / "status.json", {"state": state, "time": utc_iso(), **extra})


def evaluate_run(
    run_dir: str | Path, *, digits: int = 500, map_digits: int = 100, device: str = "cpu", mnist_dir=None
) -> dict:
    """The sweep metrics of a trained run, by the kind of model:

    * every run: ``final_test_acc``, ``final_test_loss`` (last row of ``metrics.csv``);
    * a 28×28 classifier: ``central``, ``general`` (``digits`` MNIST-test digits), ``map_radius_0.7``
      and ``map_at_20px`` (a ``map_digits``-per-cell shift-accuracy map);
    * a Where model: ``one_saccade_random`` (the paper's scan metric: accuracy after one saccade on
      displays of its own training distribution) and the eccentricity benchmark at its contrast
      after 0, 1, 2 saccades (``mean_s{k}`` and cells ``bench/c{c}/e{e}/s{k}``);
    * another display classifier: the unified benchmark at contrasts 0.7, 0.5, 0.3
      (``mean_c{c}`` and cells ``bench/c{c}/e{e}``).
    """
    import numpy as np
    import torch

    from whatwhere.data import DisplaySet, mnist
    from whatwhere.engine.checkpoints import load, read_meta
    from whatwhere.engine.recipe import parse_recipe
    from whatwhere.engine.trainer import read_metrics
    from whatwhere.eval.benchmark import Entry, benchmark
    from whatwhere.eval.protocols import accuracy_map, central_general, radial_profile
    from whatwhere.models.agent import Agent

    run_dir = Path(run_dir)
    recipe = parse_recipe(yaml.safe_load((run_dir / "recipe.yaml").read_text()))
    rows = read_metrics(run_dir)
    out = {"final_test_acc": rows[-1]["test_acc"], "final_test_loss": rows[-1]["test_loss"]} if rows else {}
    model = load(run_dir, device)
    kind = read_meta(run_dir / "model.safetensors")["model"]
    display = recipe.stages[-1].display
    if getattr(model, "input_size", 128) == 28:
        cg = central_general(model, display, n_digits=digits, device=device, mnist_dir=mnist_dir)
        acc = accuracy_map(model, display, n_digits=map_digits, device=device, mnist_dir=mnist_dir, progress=False)
        _, prof = radial_profile(acc)
        out.update(
            central=cg["central"],
            general=cg["general"],
            map_at_20px=float(prof[20]),
            **{"map_radius_0.7": float(np.sqrt((acc > 0.7).sum() / np.pi))},
        )
        return out
    if kind == "where":
        amap = str(recipe.objective_args.get("accuracy_map", "zoo:what"))
        what = load(amap[4:] if amap.startswith("zoo:") else Path(amap).parent, device)
        agent = Agent(what, model, retina=cast("Retina", model.retina)).to(device).eval()  # a Where net's retina
        test = mnist.load("test", mnist_dir)
        ds = DisplaySet(test.images, test.labels, display, seed=0, device=device)
        correct = total = 0
        with torch.no_grad():
            for d in ds.epoch(0, 500, limit=digits):
                correct += int((agent.run(d.images, 1).predictions[:, 1] == d.labels).sum())
                total += len(d)
        out["one_saccade_random"] = correct / total
        res = benchmark(
            [Entry("agent", agent, saccades=(0, 1, 2))],
            contrasts=(display.contrast_bounds[0],),
            n_digits=digits,
            preset_name=recipe.preset,
            clutter=display.clutter,
            device=device,
            batch=500,
            code_r2=False,
            mnist_dir=mnist_dir,
            progress=False,
        )
    else:
        res = benchmark(
            {"model": model},
            contrasts=(0.7, 0.5, 0.3),
            n_digits=digits,
            preset_name=recipe.preset,
            clutter=display.clutter,
            device=device,
            code_r2=False,
            mnist_dir=mnist_dir,
            progress=False,
        )
    groups: dict[str, list[float]] = {}
    for r in res["records"]:
        s = r["saccades"]
        key = f"c{r['contrast']:g}" + ("" if s is None else f"/s{s}")
        out[f"bench/{key.split('/')[0]}/e{r['eccentricity']:.2f}" + ("" if s is None else f"/s{s}")] = r["accuracy"]
        groups.setdefault(key, []).append(r["accuracy"])
    for key, values in groups.items():
        c, _, s = key.partition("/")
        out[f"mean_{s}" if kind == "where" else f"mean_{c}"] = float(np.mean(values))
    return out


def run_point(spec: dict) -> dict:
    """The job of one sweep run (idempotent): skip it when ``metrics.json`` exists; otherwise train
    (resuming from the run's checkpoint if it has one), evaluate and write ``metrics.json``.

    ``spec`` is :class:`SweepRun` as a dict.  Returns the metrics.  A failure is recorded in
    ``status.json`` (with the traceback's last line) and re-raised.
    """
    from whatwhere.engine.recipe import load_recipe
    from whatwhere.engine.trainer import train
    from whatwhere.utils.io import write_json

    run = SweepRun(**spec)
    run_dir = Path(run.dir)
    done = run_dir / "metrics.json"
    if done.exists():
        return json.loads(done.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        _status(run_dir, "running")
        recipe = load_recipe(run.recipe, profile=run.profile, overrides=run.overrides)
        if not (run_dir / "model.safetensors").exists():
            resume = (run_dir / "checkpoints" / "latest.json").exists()
            from whatwhere.utils.provenance import command_line

            argv = [
                "train",
                run.recipe,
                "--out",
                str(run_dir),
                *(["--profile", run.profile] if run.profile else []),
                *(a for o in run.overrides for a in ("--set", o)),
                *(["--resume"] if resume else []),
            ]
            train(recipe, run_dir, resume=resume, progress=False, log=lambda s: None, command=command_line(argv))
        metrics = evaluate_run(run_dir, **run.eval)
    except BaseException as exc:  # noqa: BLE001 - recorded for the report, then re-raised
        from whatwhere.engine.trainer import TrainingInterrupted

        interrupted = isinstance(exc, (TrainingInterrupted, KeyboardInterrupt))
        _status(
            run_dir,
            "interrupted" if interrupted else "failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc().splitlines()[-3:],
        )
        raise
    metrics["wall_time_s"] = round(time.perf_counter() - t0, 1)
    write_json(done, metrics)
    _status(run_dir, "done")
    return metrics


# ------------------------------------------------------------------------------- aggregation


def t_quantile(df: int, p: float = 0.975) -> float:
    """Student's t quantile (two-sided 95 % by default), by bisection on the regularised incomplete
    beta function (no SciPy needed); ``df`` >= 1."""
    if df < 1:
        raise ValueError("df must be >= 1")

    def cdf(t):
        x = df / (df + t * t)
        return 1.0 - 0.5 * _betainc(df / 2.0, 0.5, x) if t > 0 else 0.5 * _betainc(df / 2.0, 0.5, x)

    lo, hi = 0.0, 1e3
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) (continued fraction, Numerical Recipes' scheme)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log(1 - x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1 - x)
    f, c, d = 1.0, 1.0, 0.0
    for i in range(200):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > 1e-30 else 1e-30)
        c = 1.0 + num / (c if abs(c) > 1e-30 else 1e-30)
        f *= c * d
        if abs(1.0 - c * d) < 1e-12:
            break
    return front * (f - 1.0) / a


def summarise(values: list[float]) -> dict:
    """``{"n", "mean", "sd", "ci95": [lo, hi], "values"}`` (t interval; sd and interval None for n = 1)."""
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return {"n": 1, "mean": mean, "sd": None, "ci95": None, "values": values}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci95": [mean - half, mean + half], "values": values}


def aggregate(sweep_dir: str | Path) -> dict:
    """Collect every run of a sweep: per grid point and metric, :func:`summarise` over seeds.

    Returns ``{"recipe", "grid", "points": [{"point", "values", "seeds", "metrics": {name: summary}}],
    "failed": [{"run", "error"}], "missing": [run names not finished]}``.
    """
    sweep_dir = Path(sweep_dir)
    manifest_path = sweep_dir / "sweep.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{sweep_dir} is not a sweep (no sweep.json)")
    manifest = read_json(manifest_path, what="sweep manifest")
    if any(k not in manifest for k in ("recipe", "grid", "seeds", "runs")) or not isinstance(manifest["runs"], list):
        raise UserError(f"{manifest_path}: not a sweep manifest (it needs recipe, grid, seeds and a list of runs)")
    points: dict[str, dict] = {}
    failed, missing = [], []
    for spec in manifest["runs"]:
        try:
            run = SweepRun(**spec)
            run_dir = sweep_dir / run.name
        except TypeError as exc:
            raise UserError(f"{manifest_path}: a run entry that is not a sweep run ({exc}): {str(spec)[:80]}") from exc
        p = points.setdefault(run.point, {"point": run.point, "values": run.values, "seeds": [], "raw": {}})
        metrics_file = run_dir / "metrics.json"
        status_file = run_dir / "status.json"
        if metrics_file.is_file():
            p["seeds"].append(run.seed)
            for k, v in read_json(metrics_file, what="run metrics").items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    p["raw"].setdefault(k, []).append(float(v))
        elif status_file.is_file() and read_json(status_file, what="run status").get("state") == "failed":
            st = read_json(status_file, what="run status")
            failed.append({"run": run.name, "error": st.get("error", "unknown error")})
        else:
            missing.append(run.name)
    out_points = []
    for p in points.values():
        out_points.append(
            {
                "point": p["point"],
                "values": p["values"],
                "seeds": p["seeds"],
                "metrics": {k: summarise(v) for k, v in sorted(p["raw"].items())},
            }
        )
    return {
        "recipe": manifest["recipe"],
        "grid": manifest["grid"],
        "seeds": manifest["seeds"],
        "points": out_points,
        "failed": failed,
        "missing": missing,
    }


def report_markdown(report: dict, metrics: list[str] | None = None) -> str:
    """A table per sweep: one row per grid point, mean ± sd [95 % interval] of the main metrics."""
    keys = metrics or main_sweep_metrics(report)
    lines = [
        f"Sweep of `{report['recipe']}`: {len(report['points'])} grid point(s) × seeds "
        f"{report['seeds']}; mean ± sd over seeds [95 % t interval].",
        "",
    ]
    grid_keys = list(report["grid"])
    lines.append("| " + " | ".join(grid_keys + ["seeds"] + keys) + " |")
    lines.append("|" + "---|" * (len(grid_keys) + 1 + len(keys)))
    for p in report["points"]:
        cells = [
            json.dumps(p["values"][k]) if not isinstance(p["values"][k], str) else p["values"][k] for k in grid_keys
        ] + [str(len(p["seeds"]))]
        for k in keys:
            s = p["metrics"].get(k)
            if s is None:
                cells.append("—")
            elif s["sd"] is None:
                cells.append(f"{s['mean']:.3f}")
            else:
                cells.append(f"{s['mean']:.3f} ± {s['sd']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]")
        lines.append("| " + " | ".join(cells) + " |")
    if report["failed"]:
        lines += ["", "**Failed runs:**", ""] + [f"- `{f['run']}`: {f['error']}" for f in report["failed"]]
    if report["missing"]:
        lines += ["", f"Not finished: {', '.join(report['missing'])}"]
    return "\n".join(lines) + "\n"


def write_manifest(
    sweep_dir: Path,
    *,
    recipe: str,
    grid: dict,
    seeds: list[int],
    runs: list[SweepRun],
    executor: str,
    command: str,
    profile: str | None,
    dry_run: bool = False,
) -> Path:
    """Write (or extend) ``sweep.json``; a resubmission with the same runs keeps it as it is.
    ``dry_run``: only check that the runs fit the sweep already in ``sweep_dir``; write nothing."""
    from whatwhere.utils.io import write_json

    path = sweep_dir / "sweep.json"
    payload = {
        "recipe": recipe,
        "profile": profile,
        "grid": grid,
        "seeds": seeds,
        "executor": executor,
        "command": command,
        "runs": [asdict(r) for r in runs],
    }
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("recipe") != recipe or old.get("profile") != profile:
            raise ValueError(
                f"{sweep_dir} holds a sweep of {old.get('recipe')!r} (profile {old.get('profile')}); use another --out"
            )
        if list(old.get("grid", {})) != list(grid):
            raise ValueError(
                f"{sweep_dir} holds a sweep over {list(old['grid'])}; a grid over {list(grid)} needs another --out"
            )
        known = {r["name"] for r in old["runs"]}
        old["runs"] += [asdict(r) for r in runs if r.name not in known]
        for k, values in grid.items():
            old["grid"][k] += [v for v in values if v not in old["grid"][k]]
        old["seeds"] = sorted(set(old["seeds"]) | set(seeds))
        old.setdefault("commands", []).append(command)
        payload = old
    if dry_run:
        return path
    return write_json(path, payload)
