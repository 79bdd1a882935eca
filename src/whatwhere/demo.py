"""``whatwhere demo``: the whole pipeline on a small CPU profile, in a few minutes.

Writes into ``--out`` (default ``demo/``):

* ``displays.png`` / ``displays_28.png`` — display grids (rows: eccentricity, columns: contrast);
* ``bench_displays.md`` — the display-generator benchmark (quick settings);
* ``runs/what-quick``, ``runs/stn28-quick`` — the quick profiles of the What and STN-28 recipes;
* ``maps.png`` — their shift-accuracy maps side by side (few digits per cell) with the maps of the
  shipped full-recipe models (``results/``) when present;
* ``results.md`` — a central/general accuracy table;
* ``runs/where-c0.7-quick`` and ``where_fig4.png`` / ``where_benchmark.md`` — a quick Where network
  (contrast 0.7) driving the saccade loop with the shipped What network, benchmarked at three
  eccentricities before and after one saccade, next to the shipped full-recipe Where network
  (``results/where-c0.7``) when present and the published values;
* ``benchmark/`` — the unified benchmark (``whatwhere benchmark``) of the shipped models in
  ``results/`` (transformers and What/Where), at contrasts 0.7 and 0.3, 200 digits per cell.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from whatwhere import plots, protocols
from whatwhere.data import mnist, preset
from whatwhere.data.display import grid_displays
from whatwhere.recipe import load_recipe
from whatwhere.train import load_model, read_metrics, train

ROOT = Path(__file__).resolve().parents[2]  # the repository (configs/, benchmarks/, results/)


def _display_grid(out: Path, size: int, seed: int = 0) -> Path:
    test = mnist.load("test")
    eccs = [0.0, 10.0, 20.0, 30.0, 40.0] if size == 128 else [0.0, 3.0, 6.0, 9.0, 12.0]
    contrasts = [0.3, 0.5, 0.7]
    imgs, labels, offs = grid_displays(test.images, test.labels, preset("paper", size), eccs, contrasts, seed=seed)
    return plots.display_grid(imgs.numpy(), labels.numpy(), offs.numpy(), [f"ecc {e:g}px" for e in eccs],
                              [f"contrast {c:g}" for c in contrasts], out,
                              title=f"preset paper, {size}×{size} (seed {seed})")


def _train_quick(recipe, run: Path, log) -> Path:
    """Train ``recipe`` into ``run`` unless a finished run is already there."""
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


def run_demo(out: str | Path = "demo", *, map_digits: int = 100, eval_digits: int = 2000, log=print) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log(f"[demo] display grids -> {_display_grid(out / 'displays.png', 128)}, "
        f"{_display_grid(out / 'displays_28.png', 28)}")

    bench = ROOT / "benchmarks" / "bench_displays.py"
    if bench.exists():
        log("[demo] display-generator benchmark (quick settings) ...")
        res = subprocess.run([sys.executable, str(bench), "--n", "2048", "--n-ref", "150", "--repeats", "1",
                              "--no-cuda"], capture_output=True, text=True)
        (out / "bench_displays.md").write_text(res.stdout)
        log(res.stdout.strip() or res.stderr.strip())

    rows, maps, names = [], [], []
    for name in ("what", "stn28"):
        recipe = load_recipe(ROOT / "configs" / f"{name}.yaml", profile="quick", overrides=["device=cpu"])
        run = _train_quick(recipe, out / "runs" / f"{name}-quick", log)
        plots.training_curves(read_metrics(run), out / f"curves_{name}.png", title=f"{name} (quick)")
        model = load_model(run)
        display = recipe.stages[-1].display
        cg = protocols.central_general(model, display, n_digits=eval_digits)
        acc = protocols.accuracy_map(model, display, n_digits=map_digits, progress=False)
        np.save(out / f"accuracy_map_{name}.npy", acc)
        rows.append((f"{name} (quick profile, this demo)", display.noise, cg))
        maps.append(acc)
        names.append(f"{name} quick")
        shipped = ROOT / "results" / name
        if (shipped / "model.safetensors").exists():
            full = load_model(shipped)
            rows.append((f"{name} (full recipe, shipped weights)", display.noise,
                         protocols.central_general(full, display, n_digits=eval_digits)))
            if (shipped / "accuracy_map.npy").exists():
                maps.append(np.load(shipped / "accuracy_map.npy"))
                names.append(f"{name} full (results/)")
    from whatwhere.published import PUBLISHED, PUBLISHED_RADIAL

    plots.maps_side_by_side(maps, names, out / "maps.png", title="shift-accuracy maps (quick: "
                            f"{map_digits} digits per cell)",
                            references={f"{k} (published)": v for k, v in PUBLISHED_RADIAL.items()})
    lines = ["| model | clutter | central (σ=0) | general (σ=15) | digits |", "|---|---|---|---|---|"]
    for label, noise, cg in rows:
        lines.append(f"| {label} | {noise:g} | {cg['central']:.3f} | {cg['general']:.3f} | {cg['n_digits']} |")
    for k, v in PUBLISHED.items():
        lines.append(f"| {k} (published: {v['source']}) | {'1.0' if k == 'what' else '0.75'} | "
                     f"{v['central']:.3f} | {v['general']:.3f} | 10000 |")
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    log(table)
    if (ROOT / "results" / "what" / "model.safetensors").exists():
        _where_demo(out, log)
    _benchmark_demo(out, log)
    log(f"[demo] done in {time.perf_counter() - t0:.0f} s -> {out}/")
    return out


def _where_demo(out: Path, log, digits: int = 300) -> None:
    """Quick Where training (contrast 0.7) and the 0/1-saccade benchmark at three eccentricities."""
    from whatwhere.agent import Agent

    recipe = load_recipe(ROOT / "configs" / "where-c0.7.yaml", profile="quick",
                         overrides=["device=cpu", f"objective_args.accuracy_map={ROOT / 'results/what/accuracy_map.npy'}"])
    run = _train_quick(recipe, out / "runs" / "where-c0.7-quick", log)
    what = load_model(ROOT / "results" / "what")
    agents = {"where quick (this demo)": Agent(what, load_model(run))}
    if (ROOT / "results" / "where-c0.7" / "model.safetensors").exists():
        agents["where full (results/)"] = Agent(what, load_model(ROOT / "results" / "where-c0.7"))
    records = []
    for name, agent in agents.items():
        records += protocols.eccentricity_benchmark(agent, contrasts=(0.7,), eccentricities=(4.44, 17.78, 31.11),
                                                    n_digits=digits, saccades=(0, 1), stopping_rule=False,
                                                    name=name, progress=False)
    lines = ["| agent | eccentricity (px) | 0 saccade | 1 saccade |", "|---|---|---|---|"]
    for name in agents:
        for e in (4.44, 17.78, 31.11):
            acc = {r["saccades"]: r["accuracy"] for r in records if r["model"] == name and r["eccentricity"] == e}
            lines.append(f"| {name} | {e:g} | {acc[0]:.3f} | {acc[1]:.3f} |")
    table = "\n".join(lines)
    (out / "where_benchmark.md").write_text(table + f"\n\n(contrast 0.7, {digits} MNIST-test digits per cell)\n")
    log(table)
    for name in agents:
        tag = "quick" if "quick" in name else "full"
        plots.where_fig4(records, out / f"where_fig4_{tag}.png", model=name, title=f"{name}, contrast 0.7")


SHIPPED = ("stn128", "atn", "polo_atn", "polo_atn85", "conv_polo_atn", "where-c0.7", "where-c0.5", "where-c0.3")


def _benchmark_demo(out: Path, log, digits: int = 200) -> None:
    """The unified benchmark of the shipped full-recipe models (whatever ``results/`` holds)."""
    from whatwhere.benchmark import benchmark, entries_from_runs, markdown, write_report

    runs = [ROOT / "results" / r for r in SHIPPED if (ROOT / "results" / r / "model.safetensors").exists()]
    if not runs:
        log("[demo] no shipped models in results/: skipping the unified benchmark")
        return
    log(f"[demo] unified benchmark of {', '.join(r.name for r in runs)} ({digits} digits per cell) ...")
    t = time.perf_counter()
    entries = entries_from_runs(runs, what=ROOT / "results" / "what")
    result = benchmark(entries, contrasts=(0.7, 0.3), n_digits=digits, progress=False)
    write_report(result, out / "benchmark", command=f"whatwhere demo (unified benchmark, {digits} digits per cell)",
                 wall_time_s=time.perf_counter() - t)
    log(markdown(result))
