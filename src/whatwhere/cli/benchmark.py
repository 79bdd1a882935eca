"""``whatwhere benchmark``: every model on the same displays, per contrast × eccentricity."""

from __future__ import annotations

import time

from whatwhere.cli.common import add_import_arg, check_args, do_imports

STANDARD_TASKS = ("ram60-translated", "ram60-cluttered", "ram100-cluttered", "stn-tc")  # eval.benchmark's


def cmd_benchmark(args) -> int:
    from whatwhere import viz
    from whatwhere.eval.benchmark import benchmark, entries_from_runs
    from whatwhere.eval.reports import markdown, write_report
    from whatwhere.utils.device import pick_device
    from whatwhere.utils.provenance import command_line

    check_args(
        args,
        positive=("digits", "batch"),
        counts=("saccades",),
        nonnegative=("eccentricities", "hit_px", "clutter", "bins"),
        contrast=("contrasts",),
    )
    do_imports(args)
    dev = pick_device(args.device)
    t0 = time.perf_counter()
    entries = entries_from_runs(args.models, what=args.what, device=dev, saccades=tuple(sorted(set(args.saccades))))
    if args.preset in STANDARD_TASKS:
        return _standard_task(args, entries, dev, t0)
    if args.summary or args.bins:
        raise ValueError(f"--summary and --bins need a standard task (--preset {'|'.join(STANDARD_TASKS)})")
    result = benchmark(
        entries,
        contrasts=args.contrasts,
        eccentricities=args.eccentricities,
        n_digits=args.digits or 1000,
        seed=args.seed,
        preset_name=args.preset,
        clutter=args.clutter,
        device=dev,
        batch=args.batch,
        hit_px=args.hit_px,
        stopping_rule=args.stopping_rule,
        code_r2=not args.no_code_r2,
        mnist_dir=args.mnist_dir,
        progress=not args.no_progress,
    )
    wall = time.perf_counter() - t0
    paths = write_report(result, args.out, command=command_line(args.argv), wall_time_s=wall, device=dev)
    if not args.no_figures:
        paths.append(viz.benchmark_figure(result, f"{args.out}/benchmark.png"))
    for p in paths:
        print(f"wrote {p}")
    print(markdown(result))
    return 0


def _standard_task(args, entries, dev, t0) -> int:
    """``--preset TASK`` of the standard tasks: error rate over the task's test displays, accuracy
    per eccentricity bin, benchmark.json / benchmark.md in ``--out``, ``--summary`` merged."""
    import json
    from pathlib import Path

    from whatwhere.eval.benchmark import (
        benchmark_task,
        merge_summary,
        task_markdown,
        task_summary,
    )
    from whatwhere.utils.io import write_text
    from whatwhere.utils.provenance import command_line

    result = benchmark_task(
        entries,
        args.preset,
        n_digits=args.digits or 10000,
        seed=args.seed,
        device=dev,
        batch=args.batch,
        bins=args.bins,
        hit_px=args.hit_px,
        mnist_dir=args.mnist_dir,
        progress=not args.no_progress,
    )
    result["command"] = command_line(args.argv)
    result["wall_time_s"] = round(time.perf_counter() - t0, 2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = task_markdown(result)
    for path, text in ((out / "benchmark.json", json.dumps(result, indent=1) + "\n"), (out / "benchmark.md", md)):
        write_text(path, text)
        print(f"wrote {path}")
    if args.summary:
        merge_summary(args.summary, task_summary(result))
        print(f"merged into {args.summary}")
    print(md)
    return 0


def add_parser(sub) -> None:
    from whatwhere.eval.protocols import ECCENTRICITIES

    p = sub.add_parser(
        "benchmark",
        help="every model on the same displays: accuracy per contrast x eccentricity",
        description="Benchmark trained models side by side on the same displays (accuracy per "
        "contrast x eccentricity, Wilson 95 % CIs, bandwidth, parameters, throughput, "
        "θ spread, glimpse hit rate, code R²). Where models are grouped into one "
        "What/Where agent.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="run directories, weights files or zoo names")
    p.add_argument("--out", required=True, help="output directory (benchmark.json, .md, .png)")
    p.add_argument("--contrasts", type=float, nargs="+", default=[0.7, 0.5, 0.3], help="default 0.7 0.5 0.3")
    p.add_argument(
        "--eccentricities",
        type=float,
        nargs="+",
        default=list(ECCENTRICITIES),
        help="px (default 4.44 … 40, the studies' 9)",
    )
    p.add_argument(
        "--digits",
        type=int,
        help="MNIST-test digits per cell (default 1000; a standard task: all 10000 test digits, one display each)",
    )
    p.add_argument(
        "--saccades",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="saccade counts reported for What/Where (default 0 1 2)",
    )
    p.add_argument("--stopping-rule", action="store_true", help="also the What/Where stopping rule")
    p.add_argument("--what", help="What model for the Where models (default: the one their accuracy map came from)")
    p.add_argument(
        "--preset",
        default="dabane2021",
        choices=["dabane2021", "paper", *STANDARD_TASKS],
        help="display preset: dabane2021 (clutter 0.75, the STN study) or paper (clutter 1.0); or "
        "a standard task of the attention literature (ram60-translated, ram60-cluttered, "
        "ram100-cluttered, stn-tc): error rate over its test displays (uniform placement) "
        "and accuracy per eccentricity bin",
    )
    p.add_argument(
        "--summary", help="standard tasks: merge {task: {model: {error, glimpses, numbers_read}}} into this JSON file"
    )
    p.add_argument(
        "--bins",
        type=float,
        nargs="+",
        help="standard tasks: eccentricity bin edges in px (default: 5 equal bins up to the corner)",
    )
    p.add_argument("--clutter", type=float, help="override the clutter level")
    p.add_argument("--seed", type=int, default=0, help="display seed (default 0)")
    p.add_argument("--hit-px", type=float, default=5.0, help="glimpse hit radius in px (default 5)")
    p.add_argument("--no-code-r2", action="store_true", help="skip the code R² diagnostic")
    add_import_arg(p)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--batch", type=int, help="displays per batch (default 250 on CPU, 2000 on CUDA)")
    p.add_argument("--mnist-dir", help="directory with the MNIST IDX files")
    p.add_argument("--no-figures", action="store_true", help="skip benchmark.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_benchmark)
