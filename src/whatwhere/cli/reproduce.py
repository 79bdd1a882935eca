"""``whatwhere reproduce STUDY``: train a study's recipes, evaluate, benchmark, draw and report.

    whatwhere reproduce {paper, stn-study, standard-tasks, all} [--out DIR] [--profile NAME] [--from-zoo]
                        [--digits N] [--no-scans] [--scan-seeds N] [--executor local|slurm ...] [--dry-run]

The study's plan (:mod:`whatwhere.orchestration.reproduce`): its trainings, then its parameter
scans (the paper's), go through the sweep executors (finished runs are skipped, interrupted ones
resumed), then its evaluations, benchmarks and figures run here, and the report
(:mod:`whatwhere.orchestration.report`) ends the run: ``DIR/report/index.html`` and
``DIR/report/report.md``.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path


def cmd_reproduce(args) -> int:
    from whatwhere.cli.common import check_args
    from whatwhere.orchestration import reproduce as rp
    from whatwhere.utils.provenance import command_line, utc_iso

    check_args(args, positive=("digits", "max_jobs", "cpus_per_task", "time", "scan_seeds"), nonnegative=("gpus",))
    st = rp.study(args.study)
    if args.from_zoo and (args.profile or args.set):
        raise ValueError("--from-zoo trains nothing: --profile and --set apply to trainings only")
    only = [r.strip() for item in args.only for r in item.split(",") if r.strip()]
    out = Path(args.out or Path("reproduce") / st.name)
    t_start = time.perf_counter()
    runs, models, skipped = _models(args, st, rp.select(st.name, only), only, out)
    scans, scans_note = _scans(args, st, only, out)
    manifests = dict(executor=args.executor, command=command_line(args.argv), profile=args.profile)
    rp.write_scan_manifests(scans, **manifests, dry_run=True)  # another sweep in the way: refused now
    title = _scan_title(args, scans)
    plan_steps = rp.steps(
        st.name, models, digits=args.digits, out=out, curves=not args.from_zoo, scans=scans, title=title
    )
    print(
        rp.plan_text(
            st.name, runs, plan_steps, from_zoo=args.from_zoo, models=models, scans=scans, scans_note=scans_note
        )
    )
    if args.dry_run:
        return 0
    out.mkdir(parents=True, exist_ok=True)
    rp.write_scan_manifests(scans, **manifests)
    payload = rp.plan_payload(
        st.name,
        runs,
        plan_steps,
        scans,
        scan_seeds=args.scan_seeds if scans else None,
        from_zoo=args.from_zoo,
        profile=args.profile,
        only=only,
        overrides=list(args.set),
        digits=args.digits,
        executor=args.executor,
        command=command_line(args.argv),
        start=utc_iso(),
        skipped=skipped,
        outcome={"trainings": [], "steps": []},
    )
    rp.write_plan(out, payload)
    # 1. trainings, then the scans (one queue: the scans wait for the main trainings' free slots)
    failed_runs: list[dict] = []
    n_scan_runs = sum(len(sc.runs) for sc in scans)
    if runs or n_scan_runs:
        trained = _trainings(args, st.name, runs, scans, out, payload, title)
        if trained is None:
            return 130
        plan_steps, failed_runs = trained
    # 2. evaluations, benchmarks, figures
    bad_steps = _run_steps(args, plan_steps, out, payload)
    if bad_steps is None:
        return 130
    # 3. the report
    from whatwhere.orchestration.report import write_report

    payload["end"] = utc_iso()
    payload["wall_time_s"] = round(time.perf_counter() - t_start, 1)
    rp.write_plan(out, payload)
    report = write_report(out, out / "report")
    failed_scans = sum(str(r["run"]).startswith("scans/") for r in failed_runs)
    print(
        f"{st.name}: {len(runs)} training(s) ({len(failed_runs) - failed_scans} failed), "
        + (f"{n_scan_runs} scan run(s) ({failed_scans} failed), " if n_scan_runs else "")
        + f"{len(plan_steps)} step(s) ({bad_steps} failed) in {payload['wall_time_s']:.0f} s"
    )
    print(f"report: {report / 'index.html'} and {report / 'report.md'}")
    return 1 if failed_runs or bad_steps else 0


def _models(args, st, recipes, only, out: Path) -> tuple[list, dict, list[str]]:
    """The study's training runs, the model each recipe's steps use, and what is left out:
    with ``--from-zoo`` no runs and the shipped models (a recipe not shipped: None, noted)."""
    from whatwhere.orchestration import reproduce as rp

    if not args.from_zoo:
        runs = rp.training_runs(st.name, out, profile=args.profile, overrides=args.set, only=only)
        return runs, {r.name: r.dir for r in runs}, []
    from whatwhere.engine.zoo import zoo_names

    shipped = set(zoo_names())
    models = {r: (r if r in shipped else None) for r in recipes}
    if all(m is None for m in models.values()):
        raise ValueError(
            f"{st.name}: none of its models ships in the zoo ({', '.join(recipes)}); train them (leave out --from-zoo)"
        )
    return [], models, [f"{r}: not in the zoo (no shipped model)" for r in recipes if models[r] is None]


def _scans(args, st, only, out: Path) -> tuple[list, str]:
    """The study's parameter scans to run, and why there are none when it has some."""
    from whatwhere.orchestration import reproduce as rp

    if not rp.scan_names(st.name):
        return [], ""
    if args.from_zoo:
        return [], "--from-zoo trains nothing"
    if args.no_scans:
        return [], "--no-scans"
    scans = rp.scan_sweeps(
        st.name, out, profile=args.profile, overrides=args.set, seeds=args.scan_seeds, only=only, digits=args.digits
    )
    return scans, "" if scans else "--only names none (scans, scan-NAME)"


def _trainings(args, study: str, runs, scans, out: Path, payload: dict, title: str):
    """Train what is not done (the study's runs, then its scans' runs), record the outcome in the
    plan, and re-plan the steps on the runs that finished.  Returns ``(steps, failed runs)``, or
    None when interrupted (the same command resumes)."""
    from whatwhere.orchestration import reproduce as rp

    scan_runs = [(sc, r) for sc in scans for r in sc.runs]
    todo = [asdict(r) for r in runs if rp.run_state(r.dir) != "done"]
    todo_scans = [asdict(r) for _, r in scan_runs if rp.scan_state(r.dir) != "done"]
    print(f"trainings: {len(runs)} run(s), {len(runs) - len(todo)} already done")
    if scan_runs:
        print(f"scans: {len(scan_runs)} run(s), {len(scan_runs) - len(todo_scans)} already done")
    results = [{"run": r.name, "state": "done", "skipped": True} for r in runs if rp.run_state(r.dir) == "done"]
    results += [
        {"run": r.name, "state": "done", "skipped": True} for _, r in scan_runs if rp.scan_state(r.dir) == "done"
    ]
    if todo or todo_scans:
        try:
            results += _train(args, todo + todo_scans, len(runs) + len(scan_runs), out, {s["dir"] for s in todo_scans})
        except KeyboardInterrupt:
            print("interrupted; the same command resumes the trainings from their checkpoints", file=sys.stderr)
            return None
    scan_of = {r.name: sc.name for sc, r in scan_runs}
    for r in results:  # a scan run by its sweep: scans/clutter/display.clutter=0.5-seed2019
        if r["run"] in scan_of:
            r["run"] = f"scans/{scan_of[r['run']]}/{r['run']}"
    payload["outcome"]["trainings"] = results
    # the steps use the runs that have their final weights, and the scans that have a finished run
    models = {r.name: (r.dir if rp.run_state(r.dir) == "done" else None) for r in runs}
    payload["skipped"] = [f"{r}: training failed, its steps are left out" for r in models if models[r] is None]
    drawn = [sc for sc in scans if any(rp.scan_state(r.dir) == "done" for r in sc.runs)]
    payload["skipped"] += [
        f"scans/{sc.name}: no run finished, left out of the figure" for sc in scans if sc not in drawn
    ]
    plan_steps = rp.steps(study, models, digits=args.digits, out=out, curves=True, scans=drawn, title=title)
    payload["steps"] = [asdict(s) for s in plan_steps]
    return plan_steps, [r for r in results if r["state"] == "failed"]


def _run_steps(args, plan_steps, out: Path, payload: dict) -> int | None:
    """Run the evaluations, benchmarks and figures in this process, recording each outcome in the
    plan as it ends.  Returns how many failed, or None when one was interrupted (Ctrl-C)."""
    from whatwhere.cli import main as whatwhere_main
    from whatwhere.orchestration import reproduce as rp

    bad_steps = 0
    for k, s in enumerate(plan_steps, 1):
        print(f"[{k}/{len(plan_steps)}] whatwhere {shlex.join(s.argv)}", flush=True)
        t0 = time.perf_counter()
        argv = list(s.argv)
        if args.device and s.kind in ("eval", "benchmark"):
            argv += ["--device", args.device]
        if args.mnist_dir and s.argv[0] in ("eval", "benchmark", "figures"):
            argv += ["--mnist-dir", args.mnist_dir]
        rc = whatwhere_main(argv)
        if rc == 130:  # Ctrl-C in a step: stop here (the same command runs the steps again)
            payload["outcome"]["steps"].append({"step": s.name, "state": "interrupted"})
            rp.write_plan(out, payload)
            return None
        bad_steps += rc != 0
        error = {} if rc == 0 else {"error": f"exit status {rc} (see the output above)"}
        payload["outcome"]["steps"].append(
            {
                "step": s.name,
                "state": "done" if rc == 0 else "failed",
                "wall_s": round(time.perf_counter() - t0, 1),
                **error,
            }
        )
        rp.write_plan(out, payload)
    return bad_steps


def _scan_title(args, scans) -> str:
    from whatwhere.orchestration.reproduce import SCAN_RECIPE

    if not scans:
        return ""
    seeds = len({r.seed for r in scans[0].runs})
    budget = f"profile {args.profile}, a quick labelled pass" if args.profile else "reduced, labelled budget"
    return f"Parameter scans of the What/Where paper: {SCAN_RECIPE} ({budget}), {seeds} seed(s) per point"


def _train(args, todo: list[dict], total: int, out: Path, scan_dirs=frozenset()) -> list[dict]:
    """Run the training jobs with the sweep's executors (local processes or Slurm): a study's
    training (:func:`~whatwhere.orchestration.reproduce.train_point`) or, for a run in
    ``scan_dirs``, a scan run (the sweep's job, :func:`~whatwhere.orchestration.sweep.run_point`:
    train, then evaluate)."""
    from whatwhere.cli.sweep import _executor
    from whatwhere.orchestration.reproduce import run_trainings, train_point
    from whatwhere.orchestration.sweep import run_point
    from whatwhere.utils.device import free_cores

    os.environ["OMP_NUM_THREADS"] = str(args.cpus_per_task)  # the jobs' threads (read when they start)
    executor = _executor(args, out / "submitit")
    if args.executor == "local":
        limit = args.max_jobs or max(1, free_cores() // args.cpus_per_task)
        print(
            f"local executor: at most {limit} training(s) at once, {args.cpus_per_task} thread(s) each; logs in "
            f"{out / 'submitit'}"
        )
    else:
        limit = args.max_jobs or len(todo)
        print(f"Slurm executor: {len(todo)} job(s); logs in {out / 'submitit'}")
    return run_trainings(
        todo,
        lambda spec: executor.submit(run_point if spec["dir"] in scan_dirs else train_point, spec),
        max_jobs=limit,
        total=total,
        progress=not args.no_progress,
        poll_s=args.poll,
    )


def add_parser(sub) -> None:
    import argparse

    from whatwhere.orchestration.reproduce import STUDIES

    p = sub.add_parser(
        "reproduce",
        help="a whole study: its trainings, evaluations, benchmarks, figures and report",
        description="Reproduce a study: train its packaged recipes (through the sweep executors; "
        "finished runs are skipped, interrupted ones resumed), run its evaluations, "
        "benchmarks and figures, and write DIR/report/index.html and report.md with "
        "every table against the published values. The paper study also runs the paper's "
        "parameter scans (default point; clutter, sigma, sf_0, B_sf at two values each; 3 seeds: "
        "27 runs of where-scan, about 5 min each on one core; --no-scans leaves them out). Studies: "
        + "; ".join(f"{s.name}: {', '.join(s.recipes)}" for s in STUDIES.values())
        + ".",
    )
    p.add_argument("study", help=f"one of: {', '.join(STUDIES)}")
    p.add_argument("--out", help="the reproduction directory (default reproduce/STUDY)")
    p.add_argument(
        "--profile",
        help="train every recipe with this named profile (e.g. quick): a quick, labelled "
        "pass; refused when a recipe lacks it",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an override for every training (e.g. train_limit=500); repeatable",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="RECIPE[,RECIPE]",
        help="only these recipes of the study (and the steps that use them); `scans` or "
        "scan-NAME (paper: scan-default, scan-clutter, scan-sigma, scan-sf_0, scan-B_sf) for its "
        "parameter scans; repeatable",
    )
    p.add_argument("--from-zoo", action="store_true", help="train nothing: evaluate and benchmark the shipped models")
    p.add_argument(
        "--no-scans",
        action="store_true",
        help="paper: leave out the parameter scans (27 runs of where-scan, about 5 min each on one core)",
    )
    p.add_argument(
        "--scan-seeds", type=int, default=3, help="paper: seeds per point of the parameter scans (default 3)"
    )
    p.add_argument(
        "--digits",
        type=int,
        help="MNIST-test digits per cell of every evaluation and benchmark "
        "(default: 10,000 for central accuracy and the maps, 1,000 for benchmarks)",
    )
    p.add_argument(
        "--executor",
        choices=["local", "slurm"],
        default="local",
        help="trainings: local processes (default) or Slurm (this command then waits for the jobs)",
    )
    p.add_argument("--max-jobs", type=int, help="trainings at once (local default: the idle cores)")
    p.add_argument("--cpus-per-task", type=int, default=1, help="threads (and Slurm CPUs) per training (default 1)")
    p.add_argument("--gpus", type=int, default=0, help="GPUs per training (default 0)")
    p.add_argument("--partition", help="Slurm partition")
    p.add_argument("--time", type=int, default=24 * 60, help="time limit per training, minutes (default 1440)")
    p.add_argument("--mem-gb", type=int, help="Slurm memory per training (GB)")
    p.add_argument("--device", help="evaluations and benchmarks: auto, cpu or cuda (default: theirs, auto)")
    p.add_argument("--mnist-dir", help="directory with the MNIST IDX files (evaluations)")
    p.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    p.set_defaults(func=cmd_reproduce, wait=None)
