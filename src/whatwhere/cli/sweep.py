"""``whatwhere sweep``: seeds and parameter grids, run locally or on a Slurm cluster (submitit).

    whatwhere sweep RECIPE --grid KEY=V1,V2 [--grid ...] --seeds N --executor local|slurm --out DIR
    whatwhere sweep report DIR

Every (grid point, seed) is one training run (:mod:`whatwhere.orchestration.sweep`), evaluated when it
ends.  Runs are idempotent: resubmitting skips finished runs and resumes unfinished ones from
their checkpoints.  The local executor runs at most as many jobs at once as cores are idle (or
``--max-jobs``), one thread each; the Slurm executor submits one job array and returns (``--wait``
waits for it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any


def _executor(args, folder: Path):
    import submitit

    if args.executor == "local":
        ex = submitit.AutoExecutor(folder=folder, cluster="local")
        ex.update_parameters(timeout_min=args.time, gpus_per_node=args.gpus)
        return ex
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    params = dict(
        timeout_min=args.time,
        cpus_per_task=args.cpus_per_task,
        gpus_per_node=args.gpus,
        slurm_array_parallelism=args.max_jobs or 256,
        name="whatwhere-sweep",
    )
    if args.partition:
        params["slurm_partition"] = args.partition
    if args.mem_gb:
        params["mem_gb"] = args.mem_gb
    ex.update_parameters(**params)
    return ex


def run_local(specs: list[dict], executor, max_jobs: int, *, poll_s: float = 1.0, log=print) -> list[dict]:
    """Run the jobs with at most ``max_jobs`` at once; returns ``[{"run", "state", "error"}]``."""
    pending = list(specs)
    running: list[tuple[dict, Any]] = []  # (spec, job: a submitit or local job)
    results: list[dict] = []
    try:
        _loop(pending, running, results, executor, max_jobs, poll_s, log)
    except KeyboardInterrupt:
        log(
            f"interrupt: stopping {len(running)} running job(s); each saves a checkpoint, and resubmitting the "
            f"same sweep resumes them"
        )
        for _, job in running:
            job.cancel()
        t0 = time.time()
        while any(not job.done() for _, job in running) and time.time() - t0 < 60:
            time.sleep(0.5)
        raise
    return results


def _loop(pending, running, results, executor, max_jobs, poll_s, log) -> None:
    from whatwhere.orchestration.sweep import run_point

    while pending or running:
        while pending and len(running) < max_jobs:
            spec = pending.pop(0)
            running.append((spec, executor.submit(run_point, spec)))
            log(f"started {spec['name']} ({len(running)} running, {len(pending)} waiting)")
        time.sleep(poll_s)
        still = []
        for spec, job in running:
            if not job.done():
                still.append((spec, job))
                continue
            try:
                job.result()
                results.append({"run": spec["name"], "state": "done"})
                log(f"done    {spec['name']}")
            except Exception as exc:  # noqa: BLE001 - the report names it
                results.append({"run": spec["name"], "state": "failed", "error": str(exc).strip().splitlines()[-1]})
                log(f"FAILED  {spec['name']}: {results[-1]['error']}")
        running[:] = still


def cmd_sweep(args) -> int:
    if args.target[0] == "report":
        return cmd_report(args)
    if len(args.target) != 1:
        raise ValueError("give one RECIPE (or `report DIR`)")
    from whatwhere.cli.common import check_args

    check_args(
        args,
        positive=("seeds", "max_jobs", "cpus_per_task", "time", "eval_digits", "map_digits"),
        nonnegative=("gpus",),
    )
    from whatwhere.orchestration.sweep import expand, parse_grid, write_manifest
    from whatwhere.utils.device import free_cores
    from whatwhere.utils.provenance import command_line

    recipe = args.target[0]
    if not args.out:
        raise ValueError("--out DIR is required")
    grid = parse_grid(args.grid)
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else args.seeds
    runs = expand(recipe, grid, seeds, profile=args.profile, overrides=args.set, out=args.out)
    ev = {"digits": args.eval_digits, "map_digits": args.map_digits}
    runs = [r.__class__(**{**asdict(r), "eval": ev}) for r in runs]
    out = Path(args.out)
    if not args.dry_run:
        out.mkdir(parents=True, exist_ok=True)
    seed_values = sorted({r.seed for r in runs})
    write_manifest(
        out,
        recipe=recipe,
        grid=grid,
        seeds=seed_values,
        runs=runs,
        executor=args.executor,
        command=command_line(args.argv),
        profile=args.profile,
        dry_run=args.dry_run,
    )
    todo = [asdict(r) for r in runs if not (Path(r.dir) / "metrics.json").exists()]
    print(f"sweep of {recipe}: {len(runs)} runs ({len(runs) - len(todo)} already done) -> {out}")
    if args.dry_run:
        for r in todo:
            print(f"  {r['name']}: {' '.join(r['overrides'])}")
        return 0
    if not todo:
        print(f"nothing to run; `whatwhere sweep report {out}`")
        return 0
    os.environ["OMP_NUM_THREADS"] = str(args.cpus_per_task)  # the jobs' threads (read when they start)
    executor = _executor(args, out / "submitit")
    if args.executor == "local":
        limit = args.max_jobs or max(1, free_cores() // args.cpus_per_task)
        print(f"local executor: at most {limit} job(s) at once, {args.cpus_per_task} thread(s) each")
        try:
            results = run_local(todo, executor, limit)
        except KeyboardInterrupt:
            print(
                f"interrupted; resubmit the same command to resume (`whatwhere sweep report {out}` for what is done)",
                file=sys.stderr,
            )
            return 130
        bad = [r for r in results if r["state"] == "failed"]
        print(f"{len(results) - len(bad)} done, {len(bad)} failed; `whatwhere sweep report {out}`")
        return 1 if bad else 0
    from whatwhere.orchestration.sweep import run_point

    jobs = executor.map_array(run_point, todo)
    (out / "slurm_jobs.json").write_text(
        json.dumps({j.job_id: s["name"] for j, s in zip(jobs, todo, strict=True)}, indent=2)
    )
    print(f"submitted {len(jobs)} Slurm job(s): {jobs[0].job_id.split('_')[0]} (array); logs in {out / 'submitit'}")
    if args.wait:
        return _wait(out, todo, args.wait)
    return 0


def _wait(out: Path, todo: list[dict], timeout_s: float) -> int:
    """Wait for the runs' own status files (not the scheduler's accounting, which a minimal Slurm lacks)."""
    t0 = time.time()
    names = [s["name"] for s in todo]
    while time.time() - t0 < timeout_s:
        states = []
        for n in names:
            st = out / n / "status.json"
            states.append(json.loads(st.read_text())["state"] if st.is_file() else "pending")
        if all(s in ("done", "failed") for s in states):
            bad = states.count("failed")
            print(f"{len(states) - bad} done, {bad} failed")
            return 1 if bad else 0
        time.sleep(2)
    print(f"whatwhere: still running after {timeout_s:.0f} s", file=sys.stderr)
    return 1


def cmd_report(args) -> int:
    from whatwhere import viz
    from whatwhere.orchestration.sweep import aggregate, report_markdown
    from whatwhere.utils.io import write_json, write_text

    if len(args.target) != 2:
        raise ValueError("usage: whatwhere sweep report DIR")
    out = Path(args.target[1])
    report = aggregate(out)
    md = report_markdown(report, args.metric or None)
    write_json(out / "report.json", report)
    write_text(out / "report.md", md)
    print(md)
    for path in viz.sweep_figures(report, out, metrics=args.metric or None):
        print(f"wrote {path}")
    return 1 if report["failed"] else 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="seeds and parameter grids, locally or on Slurm; `sweep report DIR` aggregates",
        description="`whatwhere sweep RECIPE --grid KEY=V1,V2 --seeds N --out DIR`: one training run "
        "per (grid point, seed), trained, evaluated and summarised; resubmitting skips "
        "finished runs and resumes unfinished ones. `whatwhere sweep report DIR`: mean ± "
        "sd and a 95 % interval over seeds of every metric, a table and figures; failed "
        "runs are named with their error.",
    )
    p.add_argument("target", nargs="+", metavar="RECIPE | report DIR")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="a recipe key and its values (YAML), e.g. display.clutter=0.5,0.75,1.0; repeatable",
    )
    p.add_argument("--seeds", type=int, default=1, help="seeds per grid point: the recipe's seed, +1, ... (default 1)")
    p.add_argument("--seed-list", help="explicit seeds, e.g. 2019,2020,2021 (instead of --seeds)")
    p.add_argument("--profile", help="the recipe's named profile (e.g. quick)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override for every run")
    p.add_argument("--out", help="the sweep directory")
    p.add_argument("--executor", choices=["local", "slurm"], default="local", help="default: local")
    p.add_argument(
        "--max-jobs", type=int, help="jobs at once (local default: the idle cores; slurm: array parallelism)"
    )
    p.add_argument("--cpus-per-task", type=int, default=1, help="threads (and Slurm CPUs) per job (default 1)")
    p.add_argument("--gpus", type=int, default=0, help="GPUs per job (default 0)")
    p.add_argument("--partition", help="Slurm partition")
    p.add_argument("--time", type=int, default=24 * 60, help="time limit per job, minutes (default 1440)")
    p.add_argument("--mem-gb", type=int, help="Slurm memory per job (GB)")
    p.add_argument(
        "--wait", type=float, metavar="SECONDS", help="slurm: wait for the runs to finish, at most this long"
    )
    p.add_argument("--eval-digits", type=int, default=500, help="MNIST-test digits per evaluation cell (default 500)")
    p.add_argument("--map-digits", type=int, default=100, help="digits per cell of a 28x28 model's map (default 100)")
    p.add_argument("--metric", action="append", default=[], help="report: metrics to tabulate (default: the main ones)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.set_defaults(func=cmd_sweep)
