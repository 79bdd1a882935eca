"""``whatwhere reproduce STUDY``: a study as a declarative plan, its trainings and its steps.

A study (:data:`STUDIES`) names the packaged recipes it trains and the evaluations, benchmarks and
figures that turn the trained models into its tables (:func:`steps`: ``whatwhere`` command lines,
the same commands the former ``scripts/reproduce_*.sh`` ran).  A reproduction is a directory::

    OUT/plan.json                 the study, its options and the plan (rewritten at every call)
    OUT/runs/<recipe>/            one training run per recipe (``whatwhere train``'s run directory)
    OUT/scans/<scan>/             the study's parameter scans: one ``whatwhere sweep`` directory each
    OUT/results/<name>/           the evaluations and benchmarks (central.json, benchmark.json, ...)
    OUT/figures/*.png             the figures
    OUT/report/                   index.html and report.md (:mod:`whatwhere.orchestration.report`)

Trainings are sweep runs (:class:`whatwhere.orchestration.sweep.SweepRun`, validated by
:func:`~whatwhere.orchestration.sweep.expand`) and go through the executors of ``whatwhere sweep`` (local
processes or Slurm).  :func:`train_point` is their job: it skips a run whose final weights exist,
resumes one that has a checkpoint, and trains the others; it does not evaluate (the sweep's own
job, :func:`~whatwhere.orchestration.sweep.run_point`, evaluates with the sweep metrics, which do not apply
to every study's displays): the study's steps do.  ``--from-zoo`` trains nothing and runs the
steps on the shipped models instead.

The paper study also runs the parameter scans of the What/Where paper (:data:`SCANS`): the default
point and one-parameter scans of ``where-scan`` (a labelled reduced budget), 3 seeds per point, as
sweeps (:func:`scan_sweeps`: ``OUT/scans/<scan>/sweep.json`` and one run per point and seed, whose
job is the sweep's own :func:`~whatwhere.orchestration.sweep.run_point`: train, then evaluate).
They queue after the main trainings, through the same executors; a run whose ``metrics.json``
exists is skipped, one with a checkpoint resumed.  The scan figure (``whatwhere figures scan``)
is the study's last step.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from whatwhere.orchestration import sweep
from whatwhere.utils.errors import UserError

__all__ = [
    "Study",
    "Step",
    "STUDIES",
    "study",
    "trainings",
    "training_runs",
    "run_state",
    "missing_profile",
    "select",
    "Scan",
    "SCANS",
    "SCAN_RECIPE",
    "SCAN_SEEDS",
    "scan_names",
    "select_scans",
    "scan_sweeps",
    "scan_state",
    "write_scan_manifests",
    "steps",
    "train_point",
    "run_trainings",
    "plan_text",
    "write_plan",
]


@dataclass(frozen=True)
class Study:
    """A study: its title, the packaged recipes it trains, and the display preset of its benchmark."""

    name: str
    title: str
    recipes: tuple[str, ...]
    parts: tuple[str, ...] = ()  # the studies a union is made of (``all``); empty for a study of its own
    preset: str | None = None


@dataclass(frozen=True)
class Step:
    """One evaluation, benchmark or figure: a ``whatwhere`` command line (``argv`` without the program)."""

    name: str
    kind: str  # "eval" | "benchmark" | "figure"
    argv: tuple[str, ...]
    needs: tuple[str, ...] = ()  # the recipes whose models it uses
    note: str = ""  # e.g. the models it leaves out (not shipped, training failed)
    outputs: tuple[str, ...] = field(default=(), compare=False)


#: the standard tasks (display presets) and the recipes trained for each: the RAM paper's table
#: (Mnih et al. 2014), the STN paper's translated cluttered task (Jaderberg et al. 2015), and our
#: saccadic transformer on the two cluttered RAM tasks
TASK_RECIPES: dict[str, tuple[str, ...]] = {
    "ram60-cluttered": ("ram60-cluttered", "fc60-cluttered", "conv60-cluttered", "saccadic60-cluttered"),
    "ram60-translated": ("ram60-translated",),
    "ram100-cluttered": ("ram100-cluttered", "saccadic100-cluttered"),
    "stn-tc": ("fcn-tc", "cnn-tc", "st-fcn-tc", "st-cnn-tc"),
}

STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "paper",
            "What/Where: Daucé, Albiges & Perrinet 2020 (J. Vision 20(8):22)",
            ("what", "where-c0.7", "where-c0.5-ft", "where-c0.3-ft"),
            preset="paper",
        ),
        Study(
            "stn-study",
            "Spatial transformers: Dabane, Perrinet & Daucé 2021/22 (the INT study)",
            ("stn28", "stn128", "atn", "polo_atn", "polo_atn85", "conv_polo_atn"),
            preset="dabane2021",
        ),
        Study(
            "standard-tasks",
            "Standard cluttered-MNIST tasks: Mnih, Heess, Graves & Kavukcuoglu 2014 (RAM)",
            tuple(dict.fromkeys(r for rs in TASK_RECIPES.values() for r in rs)),
        ),
    )
}
STUDIES["all"] = Study(
    "all",
    "Every study: " + ", ".join(STUDIES),
    tuple(dict.fromkeys(r for s in list(STUDIES.values()) for r in s.recipes)),
    parts=tuple(STUDIES),
)

#: Digits per cell (or per evaluation) of each kind of step when ``--digits`` is not given: the
#: counts of the former scripts (and of the published tables); ``scan``: the digits each scan run is
#: evaluated on (the sweep's evaluation: accuracy after one saccade, and the eccentricity benchmark).
DEFAULT_DIGITS = {"central": 10000, "map": 10000, "benchmark": 1000, "scan": 1000}

#: The recipe of the parameter scans (a labelled reduced Where budget) and the seeds per point.
SCAN_RECIPE = "where-scan"
SCAN_SEEDS = 3

#: The parameter scans of a study: (scan name, recipe key or None for the default point, values).
#: The paper's: the default point (clutter 0.75, sigma 30, sf_0 0.1, B_sf 0.1) and two values on
#: either side of it for each of four display parameters (Daucé, Albiges & Perrinet 2020, Fig.
#: "params"; the published values are :data:`whatwhere.eval.published.WHERE_SCAN`).
SCANS: dict[str, tuple[tuple[str, str | None, tuple], ...]] = {
    "paper": (
        ("default", None, ()),
        ("clutter", "display.clutter", (0.5, 1.0)),
        ("sigma", "display.sigma", (15, 47)),
        ("sf_0", "display.sf_0", (0.063, 0.159)),
        ("B_sf", "display.B_sf", (0.05, 0.2)),
    ),
}


def study(name: str) -> Study:
    """The study called ``name``; :class:`UserError` (one line, the known names) otherwise."""
    if name not in STUDIES:
        raise UserError(f"unknown study {name!r}; the studies are: {', '.join(STUDIES)}")
    return STUDIES[name]


def trainings(name: str) -> tuple[str, ...]:
    """The recipes a study trains, in order."""
    return study(name).recipes


def missing_profile(recipes, profile: str) -> list[str]:
    """The recipes among ``recipes`` that define no profile called ``profile``."""
    from whatwhere.engine.recipe import read_recipe

    return [r for r in recipes if profile not in (read_recipe(r).get("profiles") or {})]


def _is_scan(item: str) -> bool:
    return item == "scans" or item.startswith("scan-")


def select(name: str, only=None) -> tuple[str, ...]:
    """The study's recipes, or those of ``only`` (which must belong to it), in the study's order.
    ``only`` may also name scans (``scans``, ``scan-NAME``: :func:`select_scans`); an ``only``
    that names nothing but scans selects no recipe."""
    recipes = trainings(name)
    if not only:
        return recipes
    named = [r for r in only if not _is_scan(r)]
    foreign = [r for r in named if r not in recipes]
    if foreign:
        scans = scan_names(name)
        also = f"; or the scans: scans, {', '.join(f'scan-{s}' for s in scans)}" if scans else ""
        raise UserError(f"--only {','.join(foreign)}: not a recipe of {name} ({', '.join(recipes)}{also})")
    return tuple(r for r in recipes if r in named)


def scan_names(name: str) -> tuple[str, ...]:
    """The names of a study's parameter scans (those of its parts for ``all``), in order."""
    st = study(name)
    parts = st.parts or (st.name,)
    return tuple(dict.fromkeys(s for p in parts for s, _, _ in SCANS.get(p, ())))


def select_scans(name: str, only=None) -> tuple[str, ...]:
    """The scans of ``only`` (``scans``: all of them, ``scan-NAME``: one), all of the study's when
    ``only`` is empty, none when it names recipes only.

    Raises:
        UserError: a scan the study does not have (the message lists its scans).
    """
    scans = scan_names(name)
    if not only:
        return scans
    if "scans" in only:
        return scans
    named = [r[len("scan-") :] for r in only if r.startswith("scan-")]
    foreign = [s for s in named if s not in scans]
    if foreign:
        have = ", ".join(f"scan-{s}" for s in scans) or "none"
        raise UserError(f"--only {','.join('scan-' + s for s in foreign)}: not a scan of {name} (its scans: {have})")
    return tuple(s for s in scans if s in named)


def training_runs(
    name: str, out: str | Path, *, profile: str | None = None, overrides=(), only=None
) -> list[sweep.SweepRun]:
    """One validated sweep run per recipe of the study (or of ``only``), in ``OUT/runs/<recipe>``.

    Raises:
        UserError: ``profile`` is not defined by every recipe (the message lists those lacking it).
        GridError: a recipe does not accept ``overrides``.
    """
    recipes = select(name, only)
    if profile is not None:
        lacking = missing_profile(recipes, profile)
        if lacking:
            raise UserError(
                f"profile {profile!r} is not defined by {len(lacking)} recipe(s) of {name}: "
                f"{', '.join(lacking)}; no run is started (use a profile they all define, or none)"
            )
    runs = []
    for r in recipes:
        run = sweep.expand(r, {}, 1, profile=profile, overrides=list(overrides), out=Path(out) / "runs")[0]
        runs.append(replace(run, name=r, dir=str(Path(out) / "runs" / r)))
    return runs


@dataclass(frozen=True)
class Scan:
    """One parameter scan of a study: a sweep of :data:`SCAN_RECIPE` over one key (none for the
    default point), in ``dir``, with its validated runs (one per value and seed)."""

    name: str
    key: str | None
    values: tuple
    dir: str
    runs: tuple[sweep.SweepRun, ...]

    @property
    def grid(self) -> dict:
        return {self.key: list(self.values)} if self.key else {}


def scan_sweeps(
    name: str,
    out: str | Path,
    *,
    profile: str | None = None,
    overrides=(),
    seeds: int = SCAN_SEEDS,
    only=None,
    digits: int | None = None,
) -> list[Scan]:
    """The study's parameter scans (or those of ``only``), each a sweep in ``OUT/scans/<scan>`` whose
    runs are validated (:func:`~whatwhere.orchestration.sweep.expand`) and evaluated on ``digits``
    digits (default :data:`DEFAULT_DIGITS` ``["scan"]``).

    Raises:
        UserError: ``profile`` is not defined by :data:`SCAN_RECIPE`, or ``only`` names a scan the
            study lacks.
        GridError: the recipe does not accept ``overrides`` at some point of a scan.
    """
    chosen = select_scans(name, only)
    if not chosen:
        return []
    if profile is not None and missing_profile([SCAN_RECIPE], profile):
        raise UserError(
            f"profile {profile!r} is not defined by {SCAN_RECIPE}, the recipe of {name}'s parameter scans; no "
            f"run is started (use a profile it defines, or --no-scans)"
        )
    st = study(name)
    table = {s: (k, v) for p in (st.parts or (st.name,)) for s, k, v in SCANS.get(p, ())}
    ev = {"digits": int(digits if digits is not None else DEFAULT_DIGITS["scan"])}
    result = []
    for s in chosen:
        key, values = table[s]
        d = Path(out) / "scans" / s
        grid = {key: list(values)} if key else {}
        runs = sweep.expand(SCAN_RECIPE, grid, seeds, profile=profile, overrides=list(overrides), out=d)
        result.append(Scan(s, key, tuple(values), str(d), tuple(replace(r, eval=ev) for r in runs)))
    return result


def scan_state(run_dir: str | Path) -> str:
    """A scan run's state: ``done`` (evaluated: ``metrics.json``), ``evaluate`` (trained, not yet
    evaluated), ``resume`` (a checkpoint) or ``new``."""
    d = Path(run_dir)
    if (d / "metrics.json").is_file():
        return "done"
    if (d / "model.safetensors").is_file():
        return "evaluate"
    if (d / "checkpoints" / "latest.json").is_file():
        return "resume"
    return "new"


def write_scan_manifests(scans: list[Scan], *, executor: str, command: str, profile: str | None, dry_run=False):
    """Each scan's ``sweep.json`` (:func:`~whatwhere.orchestration.sweep.write_manifest`), so that
    ``whatwhere sweep report`` and ``figures scan`` read it; ``dry_run``: only check that an
    existing one holds the same sweep (a ValueError otherwise, before anything runs)."""
    for sc in scans:
        d = Path(sc.dir)
        if not dry_run:
            d.mkdir(parents=True, exist_ok=True)
        sweep.write_manifest(
            d,
            recipe=SCAN_RECIPE,
            grid=sc.grid,
            seeds=sorted({r.seed for r in sc.runs}),
            runs=list(sc.runs),
            executor=executor,
            command=command,
            profile=profile,
            dry_run=dry_run,
        )


def run_state(run_dir: str | Path) -> str:
    """``done`` (final weights present), ``resume`` (a checkpoint), or ``new``."""
    d = Path(run_dir)
    if (d / "model.safetensors").is_file():
        return "done"
    if (d / "checkpoints" / "latest.json").is_file():
        return "resume"
    return "new"


# ------------------------------------------------------------------------------------- steps


def _digits(digits: int | None, kind: str) -> str:
    return str(digits if digits is not None else DEFAULT_DIGITS[kind])


@dataclass(frozen=True)
class _Where:
    """Where a study's steps read and write: the models, the folders and the digits per cell."""

    models: dict[str, str | None]
    res: Path
    fig: Path
    digits: int | None

    def digits_for(self, kind: str) -> str:
        return _digits(self.digits, kind)


def _eval_steps(w: _Where, recipe: str, label: str) -> list[Step]:
    """Central accuracy, the shift-accuracy map and its figure of a 28×28 model (none without a model)."""
    model = w.models.get(recipe)
    if model is None:
        return []
    out = w.res / recipe
    fig = w.fig / f"maps_{recipe}.png"
    return [
        Step(
            f"central-{recipe}",
            "eval",
            ("eval", "central", model, "--digits", w.digits_for("central"), "--out", str(out), "--name", recipe),
            (recipe,),
            outputs=(str(out / "central.json"),),
        ),
        Step(
            f"map-{recipe}",
            "eval",
            (
                "eval",
                "accuracy-map",
                model,
                "--digits",
                w.digits_for("map"),
                "--out",
                str(out),
                "--name",
                recipe,
                "--no-progress",
            ),
            (recipe,),
            outputs=(str(out / "accuracy_map.npy"),),
        ),
        Step(
            f"maps-{recipe}",
            "figure",
            ("figures", "maps", str(out / "accuracy_map.npy"), "--labels", label, "--published", "--out", str(fig)),
            (recipe,),
            outputs=(str(fig),),
        ),
    ]


def _benchmark_steps(w: _Where, recipes, tag: str, preset: str, extra=()) -> list[Step]:
    """The eccentricity benchmark of the recipes that have a model, and its trade-off figure
    (accuracy at 40 px against the numbers each model reads per decision); none if no model."""
    present = [r for r in recipes if w.models.get(r) is not None]
    absent = [r for r in recipes if w.models.get(r) is None]
    if not present:
        return []
    note = f"without {', '.join(absent)} (no model: not shipped, not trained or left out)" if absent else ""
    what_model = w.models.get("what")
    what = ("--what", what_model) if what_model is not None and any(r.startswith("where-") for r in present) else ()
    needs = tuple(present) + (("what",) if what else ())
    out = w.res / f"benchmark-{tag}"
    fig = w.fig / f"tradeoff_{tag}.png"
    models = (cast(str, w.models[r]) for r in present)  # present: not None
    return [
        Step(
            f"benchmark-{tag}",
            "benchmark",
            (
                "benchmark",
                *models,
                *what,
                "--preset",
                preset,
                "--digits",
                w.digits_for("benchmark"),
                *extra,
                "--out",
                str(out),
                "--no-progress",
            ),
            needs,
            note,
            outputs=(str(out / "benchmark.json"),),
        ),
        Step(
            f"tradeoff-{tag}",
            "figure",
            ("figures", "tradeoff", str(out / "benchmark.json"), "--out", str(fig)),
            needs,
            outputs=(str(fig),),
        ),
    ]


def _paper_steps(w: _Where) -> list[Step]:
    """What/Where 2020: the What network's evaluations, the Where benchmark over 0-5 saccades, its figures."""
    result = _eval_steps(w, "what", "What (paper, clutter 1.0)")
    bench = _benchmark_steps(
        w,
        ["where-c0.7", "where-c0.5-ft", "where-c0.3-ft"],
        "paper",
        "paper",
        ("--saccades", "0", "1", "2", "3", "4", "5"),
    )
    result += bench
    if any(s.name == "benchmark-paper" for s in bench):
        result.append(
            Step(
                "where-figures",
                "figure",
                ("figures", "where", str(w.res / "benchmark-paper" / "benchmark.json"), "--out", str(w.fig / "where")),
                ("where-c0.7",),
                outputs=(str(w.fig / "where"),),
            )
        )
    return result


def _stn_study_steps(w: _Where) -> list[Step]:
    """The INT study: STN-28's evaluations and transformer grid, the benchmark of the transformers."""
    result = _eval_steps(w, "stn28", "STN-28 (clutter 0.75)")
    if (stn28 := w.models.get("stn28")) is not None:
        grid = w.fig / "transformer_grid_stn28.png"
        result.append(
            Step(
                "transformer-stn28",
                "figure",
                ("figures", "transformer", stn28, "--out", str(grid)),
                ("stn28",),
                outputs=(str(grid),),
            )
        )
    return result + _benchmark_steps(
        w, ["stn128", "atn", "polo_atn", "polo_atn85", "conv_polo_atn"], "dabane2021", "dabane2021"
    )


def _standard_task_steps(w: _Where) -> list[Step]:
    """Each standard task's models benchmarked on its own displays (error rate, accuracy per
    eccentricity bin), merged into one ``summary.json``."""
    result = []
    for task, recipes in TASK_RECIPES.items():
        present = [r for r in recipes if w.models.get(r) is not None]
        if not present:
            continue
        absent = [r for r in recipes if w.models.get(r) is None]
        out = w.res / f"benchmark-{task}"
        digits = ("--digits", str(w.digits)) if w.digits is not None else ()  # default: the whole test split
        result.append(
            Step(
                f"benchmark-{task}",
                "benchmark",
                (
                    "benchmark",
                    *(cast(str, w.models[r]) for r in present),
                    "--preset",
                    task,
                    *digits,
                    "--out",
                    str(out),
                    "--summary",
                    str(w.res / "summary.json"),
                    "--no-progress",
                ),
                tuple(present),
                f"without {', '.join(absent)} (no model)" if absent else "",
                outputs=(str(out / "benchmark.json"),),
            )
        )
    return result


def _curve_steps(w: _Where, recipes) -> list[Step]:
    """The training curves of each recipe's model."""
    result = []
    for r in recipes:
        if (model := w.models.get(r)) is not None:
            fig = w.fig / f"curves_{r}.png"
            result.append(
                Step(
                    f"curves-{r}", "figure", ("figures", "curves", model, "--out", str(fig)), (r,), outputs=(str(fig),)
                )
            )
    return result


def _scan_figure_steps(w: _Where, name: str, scans: Sequence[Scan], title: str) -> list[Step]:
    """The scan figure of the study's scans that vary a parameter (none if none has a finished run)."""
    own = [sc for sc in scans if sc.name in {n for n, _, _ in SCANS.get(name, ())}]
    panels = [sc for sc in own if sc.key]
    if not panels:
        return []
    default = next((sc for sc in own if not sc.key), None)
    fig = w.fig / "scan.png"
    argv = (
        "figures",
        "scan",
        *(sc.dir for sc in panels),
        *(("--default", default.dir) if default else ()),
        "--out",
        str(fig),
        *(("--title", title) if title else ()),
    )
    note = "" if default else "without the default point (not run or not finished)"
    return [Step("scan-figure", "figure", argv, (SCAN_RECIPE,), note, outputs=(str(fig),))]


def steps(
    name: str,
    models: dict[str, str | None],
    *,
    digits: int | None = None,
    out: str | Path = ".",
    curves: bool = True,
    scans: Sequence[Scan] = (),
    title: str = "",
) -> list[Step]:
    """The evaluations, benchmarks and figures of a study.

    Args:
        models: recipe -> the model to use (a run directory or a zoo name), None when there is none
            (not shipped, training failed): a step that needs it is left out, a benchmark runs
            without it (its note says so).
        digits: MNIST-test digits per cell of every step (default :data:`DEFAULT_DIGITS`).
        curves: add each run's training curves (for trained runs, not zoo models).
        scans: the parameter scans to draw (:func:`scan_sweeps`; those with a finished run): the
            last step is their figure, when one of them scans a parameter.
        title: the scan figure's title.
    """
    st = study(name)
    if st.parts:  # a union of studies: each part's steps, once each
        seen, out_steps = set(), []
        for part in st.parts:
            for s in steps(part, models, digits=digits, out=out, curves=curves, scans=scans, title=title):
                if s.name not in seen:
                    seen.add(s.name)
                    out_steps.append(s)
        return out_steps
    m = {r: models.get(r) for r in st.recipes}
    if models.get("what") is not None:
        m.setdefault("what", models["what"])
    w = _Where(m, Path(out) / "results", Path(out) / "figures", digits)
    by_study = {"paper": _paper_steps, "stn-study": _stn_study_steps, "standard-tasks": _standard_task_steps}
    result = by_study[name](w) if name in by_study else []
    if curves:
        result += _curve_steps(w, st.recipes)
    return result + _scan_figure_steps(w, name, scans, title)


# ---------------------------------------------------------------------------------- trainings


def train_point(spec: dict) -> str:
    """The job of one training run (idempotent): nothing when its final weights exist, otherwise
    train it, from its checkpoint when it has one.  Returns the run's state before the job
    (``done`` / ``resume`` / ``new``).  The run's ``status.json`` says running / done / failed /
    interrupted, as a sweep run's does."""
    from whatwhere.engine.recipe import load_recipe
    from whatwhere.engine.trainer import TrainingInterrupted, train
    from whatwhere.utils.provenance import command_line

    run = sweep.SweepRun(**spec)
    run_dir = Path(run.dir)
    state = run_state(run_dir)
    if state == "done":
        return state
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        sweep._status(run_dir, "running")
        recipe = load_recipe(run.recipe, profile=run.profile, overrides=run.overrides)
        argv = [
            "train",
            run.recipe,
            "--out",
            str(run_dir),
            *(["--profile", run.profile] if run.profile else []),
            *(a for o in run.overrides for a in ("--set", o)),
            *(["--resume"] if state == "resume" else []),
        ]
        train(recipe, run_dir, resume=state == "resume", progress=False, log=lambda s: None, command=command_line(argv))
    except BaseException as exc:  # noqa: BLE001 - recorded for the report, then re-raised
        interrupted = isinstance(exc, (TrainingInterrupted, KeyboardInterrupt))
        sweep._status(
            run_dir,
            "interrupted" if interrupted else "failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc().splitlines()[-3:],
        )
        raise
    sweep._status(run_dir, "done")
    return state


def _epochs_done(run_dir: Path) -> int:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return 0
    with open(path) as fh:
        return max(0, sum(1 for line in fh if line.strip()) - 1)


def _total_epochs(spec: dict) -> int:
    from whatwhere.engine.recipe import load_recipe

    return load_recipe(spec["recipe"], profile=spec.get("profile"), overrides=spec.get("overrides", [])).total_epochs


def _job_state(spec: dict, job) -> tuple[str | None, str | None]:
    """(``done`` | ``failed`` | None while running, the error): the job's own answer, else the run's
    ``status.json`` (a Slurm without accounting cannot tell submitit when a job ended)."""
    if job.done():
        try:
            job.result()
            return "done", None
        except Exception as exc:  # noqa: BLE001 - the report names it
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            return "failed", lines[-1]
    status = Path(spec["dir"]) / "status.json"
    try:
        st = json.loads(status.read_text()) if status.is_file() else {}
    except ValueError:  # being written
        st = {}
    if st.get("state") == "done" and run_state(spec["dir"]) == "done":
        return "done", None
    if st.get("state") in ("failed", "interrupted") and time.time() - status.stat().st_mtime > 30:
        return "failed", st.get("error", "unknown error")
    return None, None


def run_trainings(
    specs: list[dict],
    submit,
    *,
    max_jobs: int,
    total: int | None = None,
    poll_s: float = 1.0,
    progress: bool = True,
    log=print,
) -> list[dict]:
    """Run the training jobs ``specs`` with at most ``max_jobs`` at once; ``submit(spec)`` returns a
    job (``done()``, ``result()``, ``cancel()``: a submitit job).  Progress: one bar over all the
    study's runs (``total``, finished ones included) and one per running run (its epochs).
    Returns ``[{"run", "state": "done" | "failed", "error"?}]``; Ctrl-C cancels the running jobs
    (each saves a checkpoint; the next call resumes them) and re-raises.
    """
    from tqdm.auto import tqdm

    total = len(specs) if total is None else total
    overall = tqdm(
        total=total,
        initial=total - len(specs),
        desc="runs",
        unit="run",
        disable=None if progress else True,
        position=0,
        dynamic_ncols=True,
    )
    pending = list(specs)
    running: list[tuple[dict, Any, Any]] = []  # (spec, job, its tqdm bar)
    results: list[dict] = []
    try:
        while pending or running:
            while pending and len(running) < max_jobs:
                spec = pending.pop(0)
                (Path(spec["dir"]) / "status.json").unlink(missing_ok=True)  # a previous attempt's
                bar = tqdm(
                    total=_total_epochs(spec),
                    desc=spec["name"],
                    unit="epoch",
                    leave=False,
                    position=len(running) + 1,
                    disable=None if progress else True,
                    dynamic_ncols=True,
                )
                running.append((spec, submit(spec), bar))
                log(f"started {spec['name']} ({len(running)} running, {len(pending)} waiting)")
            time.sleep(poll_s)
            still = []
            for spec, job, bar in running:
                bar.n = _epochs_done(Path(spec["dir"]))
                bar.refresh()
                state, error = _job_state(spec, job)
                if state is None:
                    still.append((spec, job, bar))
                    continue
                bar.close()
                overall.update(1)
                results.append({"run": spec["name"], "state": state, **({"error": error} if error else {})})
                log(f"done    {spec['name']}" if state == "done" else f"FAILED  {spec['name']}: {error}")
            running[:] = still
    except KeyboardInterrupt:
        log(
            f"interrupt: stopping {len(running)} running training(s); each saves a checkpoint, and the same "
            f"command resumes them"
        )
        for _, job, _ in running:
            job.cancel()
        t0 = time.time()
        while any(not job.done() for _, job, _ in running) and time.time() - t0 < 60:
            time.sleep(0.5)
        raise
    finally:
        for _, _, bar in running:
            bar.close()
        overall.close()
    return results


# -------------------------------------------------------------------------------------- plan


def plan_text(
    name: str,
    runs: list[sweep.SweepRun],
    plan_steps: list[Step],
    *,
    from_zoo: bool,
    models: dict | None = None,
    scans: Sequence[Scan] = (),
    scans_note: str = "",
) -> str:
    """The plan as text (``--dry-run``): every training with its state, every scan run with its
    state, then every step's command.  ``scans_note``: why there are none (e.g. ``--no-scans``)."""
    import shlex

    st = study(name)
    lines = [f"study {name}: {st.title}"]
    if from_zoo:
        models = models or {}
        shipped = [r for r, m in models.items() if m is not None]
        absent = [r for r, m in models.items() if m is None]
        lines.append(
            f"trainings: none (--from-zoo: the shipped models {', '.join(shipped)}"
            + (f"; not shipped: {', '.join(absent)}" if absent else "")
            + ")"
        )
    elif not runs:
        lines.append("trainings: none (--only names none of the study's recipes)")
    else:
        lines.append(f"trainings ({len(runs)}):")
        for r in runs:
            state = run_state(r.dir)
            what = {"done": "done, skipped", "resume": "interrupted, resumes from its checkpoint", "new": "to train"}[
                state
            ]
            extra = f" --profile {r.profile}" if r.profile else ""
            extra += "".join(f" --set {o}" for o in r.overrides if not o.startswith("seed="))
            lines.append(f"  {r.name}: {what} -> {r.dir}{extra}")
    if scans:
        n = sum(len(sc.runs) for sc in scans)
        seeds = sorted({r.seed for sc in scans for r in sc.runs})
        first = scans[0].runs[0]
        extra = f", --profile {first.profile}" if first.profile else ""
        extra += "".join(f", --set {o}" for o in first.overrides[: -1 - len(scans[0].grid)])
        lines.append(
            f"scans ({n} runs: {len(scans)} sweep(s) of {SCAN_RECIPE} x seeds {', '.join(map(str, seeds))}; "
            f"{first.eval.get('digits')} digits per evaluation{extra}):"
        )
        label = {"done": "done, skipped", "evaluate": "trained, to evaluate"}
        label.update(resume="interrupted, resumes from its checkpoint", new="to run")
        for sc in scans:
            what = f"{sc.key} = {', '.join(map(str, sc.values))}" if sc.key else "the default point"
            lines.append(f"  {sc.name} ({what}) -> {sc.dir}")
            for r in sc.runs:
                lines.append(f"    {r.name}: {label[scan_state(r.dir)]}")
    elif scans_note:
        lines.append(f"scans: none ({scans_note})")
    lines.append(f"steps ({len(plan_steps)}):")
    for s in plan_steps:
        lines.append(f"  [{s.kind}] whatwhere {shlex.join(s.argv)}" + (f"  ({s.note})" if s.note else ""))
    return "\n".join(lines)


def write_plan(out: Path, payload: dict) -> Path:
    """``OUT/plan.json``: the study, the options, the trainings and steps, and what came of them."""
    from whatwhere.utils.io import write_json

    return write_json(Path(out) / "plan.json", payload)


def plan_payload(name: str, runs, plan_steps, scans=(), **extra) -> dict:
    st = study(name)
    return {
        "study": name,
        "title": st.title,
        "recipes": list(st.recipes),
        "trainings": [asdict(r) for r in runs],
        "scans": [
            {"name": sc.name, "recipe": SCAN_RECIPE, "key": sc.key, "values": list(sc.values), "dir": sc.dir}
            | {"runs": [r.name for r in sc.runs]}
            for sc in scans
        ],
        "steps": [asdict(s) for s in plan_steps],
        **extra,
    }


def read_plan(out: str | Path) -> dict | None:
    path = Path(out) / "plan.json"
    return json.loads(path.read_text()) if path.is_file() else None
