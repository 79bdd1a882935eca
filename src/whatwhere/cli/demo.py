"""``whatwhere demo``: the whole pipeline on a small CPU profile, in a few minutes.

Writes into ``--out`` (default ``demo/``):

* ``displays.png`` / ``displays_28.png`` — display grids (rows: eccentricity, columns: contrast);
* ``runs/what-quick``, ``runs/stn28-quick`` — the quick profiles of the What and STN-28 recipes;
* ``maps.png`` — their shift-accuracy maps (few digits per cell) beside the maps of the shipped
  full-recipe models;
* ``results.md`` — a central/general accuracy table (quick, shipped, published);
* ``runs/where-c0.7-quick``, ``where_benchmark.md`` and ``where_fig4_*.png`` — a quick Where network
  (contrast 0.7) driving the saccade loop with the shipped What network, benchmarked at three
  eccentricities before and after one saccade, next to the shipped full-recipe Where network;
* ``benchmark/`` — the unified benchmark of the shipped models (transformers and What/Where), at
  contrasts 0.7 and 0.3, 200 digits per cell.

Everything comes from the packaged recipes and the model zoo, so it runs from any directory.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

#: The shipped models the demo benchmarks (those present in the zoo).
SHIPPED = (
    "stn128",
    "atn",
    "polo_atn",
    "polo_atn85",
    "conv_polo_atn",
    "saccadic_transformer",
    "where-c0.7",
    "where-c0.5-ft",
    "where-c0.3-ft",
)


def _display_grid(out: Path, size: int, seed: int = 0) -> Path:
    from whatwhere import viz
    from whatwhere.data import mnist, preset
    from whatwhere.data.display import grid_displays

    test = mnist.load("test")
    eccs = [0.0, 10.0, 20.0, 30.0, 40.0] if size == 128 else [0.0, 3.0, 6.0, 9.0, 12.0]
    contrasts = [0.3, 0.5, 0.7]
    imgs, labels, offs = grid_displays(test.images, test.labels, preset("paper", size), eccs, contrasts, seed=seed)
    return viz.display_grid(
        imgs.numpy(),
        labels.numpy(),
        offs.numpy(),
        [f"ecc {e:g}px" for e in eccs],
        [f"contrast {c:g}" for c in contrasts],
        out,
        title=f"preset paper, {size}×{size} (seed {seed})",
    )


def _train_quick(recipe, run: Path, log) -> Path:
    """Train ``recipe`` into ``run`` unless a finished run is already there."""
    from whatwhere.engine.trainer import train

    if (run / "model.safetensors").exists():
        log(f"[demo] {run} already trained, reusing it")
        return run
    if run.exists():  # an unfinished earlier demo run
        shutil.rmtree(run)
    log(f"[demo] training {recipe.name} (quick profile: {recipe.total_epochs} epochs of {recipe.train_limit} displays)")
    t = time.perf_counter()
    train(recipe, run, progress=False, log=lambda s: None)
    log(f"[demo]   {time.perf_counter() - t:.0f} s")
    return run


#: ``--smoke``: the same steps on a few hundred displays (a test of the pipeline, not a result).
SMOKE = ["train_limit=300", "eval_digits=100", "stages.*.epochs=1"]


def run_demo(
    out: str | Path = "demo", *, map_digits: int = 100, eval_digits: int = 2000, smoke: bool = False, log=print
) -> Path:
    """Run the demo into ``out`` (module docstring) and return it; ``smoke`` shrinks every step."""
    import numpy as np

    from whatwhere import viz
    from whatwhere.engine.checkpoints import load
    from whatwhere.engine.recipe import load_recipe
    from whatwhere.engine.trainer import read_metrics
    from whatwhere.engine.zoo import zoo_names, zoo_path
    from whatwhere.eval import protocols
    from whatwhere.eval.published import PUBLISHED, PUBLISHED_RADIAL

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    extra = SMOKE if smoke else []
    if smoke:
        map_digits, eval_digits = min(map_digits, 5), min(eval_digits, 100)
    log(
        f"[demo] display grids -> {_display_grid(out / 'displays.png', 128)}, "
        f"{_display_grid(out / 'displays_28.png', 28)}"
    )
    shipped = set(zoo_names())
    rows, maps, names = [], [], []
    for name in ("what", "stn28"):
        recipe = load_recipe(name, profile="quick", overrides=["device=cpu", *extra])
        run = _train_quick(recipe, out / "runs" / f"{name}-quick", log)
        viz.training_curves(read_metrics(run), out / f"curves_{name}.png", title=f"{name} (quick)")
        display = recipe.stages[-1].display
        cg = protocols.central_general(load(run), display, n_digits=eval_digits)
        acc = protocols.accuracy_map(load(run), display, n_digits=map_digits, progress=False)
        np.save(out / f"accuracy_map_{name}.npy", acc)
        rows.append((f"{name} (quick profile, this demo)", display.clutter, cg))
        maps.append(acc)
        names.append(f"{name} quick")
        if name in shipped:
            rows.append(
                (
                    f"{name} (full recipe, shipped)",
                    display.clutter,
                    protocols.central_general(load(name), display, n_digits=eval_digits),
                )
            )
            try:
                maps.append(np.load(zoo_path(name, "accuracy_map")))
                names.append(f"{name} full (shipped)")
            except ValueError:
                pass
    viz.maps_side_by_side(
        maps,
        names,
        out / "maps.png",
        title=f"shift-accuracy maps (quick: {map_digits} digits per cell)",
        references={f"{k} (published)": v for k, v in PUBLISHED_RADIAL.items()},
    )
    lines = ["| model | clutter | central (σ=0) | general (σ=15) | digits |", "|---|---|---|---|---|"]
    for label, clutter, cg in rows:
        lines.append(f"| {label} | {clutter:g} | {cg['central']:.3f} | {cg['general']:.3f} | {cg['n_digits']} |")
    for k, v in PUBLISHED.items():
        lines.append(
            f"| {k} (published: {v['source']}) | {'1.0' if k == 'what' else '0.75'} | "
            f"{v['central']:.3f} | {v['general']:.3f} | 10000 |"
        )
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    log(table)
    if "what" in shipped:
        _where_demo(out, log, shipped, extra, digits=30 if smoke else 300)
    _benchmark_demo(out, log, shipped, digits=10 if smoke else 200)
    log(f"[demo] done in {time.perf_counter() - t0:.0f} s -> {out}/")
    return out


def _where_demo(out: Path, log, shipped: set, extra: list, digits: int = 300) -> None:
    """Quick Where training (contrast 0.7) and the 0/1-saccade benchmark at three eccentricities."""
    from whatwhere import viz
    from whatwhere.engine.checkpoints import load
    from whatwhere.engine.recipe import load_recipe
    from whatwhere.eval.benchmark import Entry, benchmark
    from whatwhere.models.agent import Agent
    from whatwhere.models.where import Where

    recipe = load_recipe("where-c0.7", profile="quick", overrides=["device=cpu", *extra])
    run = _train_quick(recipe, out / "runs" / "where-c0.7-quick", log)
    what = load("what")
    quick = load(run)
    assert isinstance(quick, Where)  # a where-c0.7 run
    agents = {"where quick (this demo)": Agent(what, quick)}
    if "where-c0.7" in shipped:
        agents["where full (shipped)"] = Agent(what, load("where-c0.7"), retina=quick.retina)
    eccs = (4.44, 17.78, 31.11)
    result = benchmark(
        [Entry(n, a, saccades=(0, 1)) for n, a in agents.items()],
        contrasts=(0.7,),
        eccentricities=eccs,
        n_digits=digits,
        preset_name="paper",
        clutter=1.0,
        batch=500,
        code_r2=False,
        progress=False,
    )
    records = result["records"]
    lines = ["| agent | eccentricity (px) | 0 saccade | 1 saccade |", "|---|---|---|---|"]
    for name in agents:
        for e in eccs:
            acc = {r["saccades"]: r["accuracy"] for r in records if r["model"] == name and r["eccentricity"] == e}
            lines.append(f"| {name} | {e:g} | {acc[0]:.3f} | {acc[1]:.3f} |")
    table = "\n".join(lines)
    (out / "where_benchmark.md").write_text(table + f"\n\n(contrast 0.7, {digits} MNIST-test digits per cell)\n")
    log(table)
    for name in agents:
        tag = "quick" if "quick" in name else "full"
        viz.where_fig4(records, out / f"where_fig4_{tag}.png", model=name, title=f"{name}, contrast 0.7")


def _benchmark_demo(out: Path, log, shipped: set, digits: int = 200) -> None:
    """The unified benchmark of the shipped full-recipe models."""
    from whatwhere import viz
    from whatwhere.eval.benchmark import benchmark, entries_from_runs
    from whatwhere.eval.reports import markdown, write_report

    models = [m for m in SHIPPED if m in shipped]
    if not models:
        log("[demo] no shipped 128x128 models: skipping the unified benchmark")
        return
    log(f"[demo] unified benchmark of {', '.join(models)} ({digits} digits per cell) ...")
    t = time.perf_counter()
    entries = entries_from_runs(models, what="what")
    result = benchmark(entries, contrasts=(0.7, 0.3), n_digits=digits, code_r2=False, progress=False)
    write_report(
        result,
        out / "benchmark",
        command=f"whatwhere demo (unified benchmark, {digits} digits per cell)",
        wall_time_s=time.perf_counter() - t,
    )
    viz.benchmark_figure(result, out / "benchmark" / "benchmark.png")
    log(markdown(result))


def cmd_demo(args) -> int:
    from whatwhere.cli.common import check_args

    check_args(args, positive=("map_digits",))
    run_demo(args.out, map_digits=args.map_digits, smoke=args.smoke)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    dm = sub.add_parser(
        "demo",
        help="the whole pipeline on a small CPU profile (figures + tables)",
        description="Train the quick profiles of What, STN-28 and Where on the CPU, draw their maps "
        "and figures beside the shipped full-recipe models, and run the unified "
        "benchmark of the shipped models (a few minutes on 2 cores).",
    )
    dm.add_argument("--out", default="demo", help="output directory (default demo/)")
    dm.add_argument("--map-digits", type=int, default=100, help="digits per cell of the quick maps")
    dm.add_argument(
        "--smoke",
        action="store_true",
        help="every step on a few hundred displays: checks the pipeline in about a minute",
    )
    dm.set_defaults(func=cmd_demo)
