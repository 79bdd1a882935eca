"""``whatwhere eval``: central/general accuracy and the shift-accuracy map of a 28×28 model."""

from __future__ import annotations

import time
from pathlib import Path

from whatwhere.cli.common import add_import_arg, check_args, do_imports, run_recipe


def cmd_eval(args) -> int:
    import numpy as np

    from whatwhere import viz
    from whatwhere.data import preset
    from whatwhere.engine.checkpoints import load, read_meta, weights_path
    from whatwhere.eval import protocols
    from whatwhere.utils.device import pick_device
    from whatwhere.utils.io import write_json
    from whatwhere.utils.provenance import command_line, provenance

    check_args(args, positive=("digits",), nonnegative=("clutter",))
    if args.what == "central" and args.precision != "fp32":
        raise ValueError("--precision applies to the accuracy map only (central accuracy runs in fp32)")
    do_imports(args)
    device = pick_device(args.device)
    model = load(args.model, device)
    meta = read_meta(weights_path(args.model))
    kind, size = meta["model"], getattr(model, "input_size", None) or meta.get("input_size")
    if size != 28:
        raise ValueError(
            f"{args.model}: `whatwhere eval` evaluates 28x28 models (What, STN-28); this is a {kind!r} "
            f"model of {size}-px displays (use `whatwhere benchmark`)"
        )
    recipe = run_recipe(args.model)
    display = recipe.stages[-1].display if recipe is not None else preset(args.preset, 28)
    if args.clutter is not None:
        display = display.replace(clutter=args.clutter)
    name = args.name or (recipe.name if recipe is not None else Path(args.model).name)
    out = Path(args.out or (Path(args.model) / "eval" if Path(args.model).is_dir() else Path("eval") / name))
    t = time.perf_counter()
    prov = dict(model=kind, recipe=name, seed=args.seed, device=device, command=command_line(args.argv))
    if args.what == "central":
        res = protocols.central_general(
            model, display, n_digits=args.digits, seed=args.seed, device=device, mnist_dir=args.mnist_dir
        )
        if hasattr(model, "localise"):
            from whatwhere.data import DisplaySet, mnist

            test = mnist.load("test", args.mnist_dir)
            ds = DisplaySet(
                test.images,
                test.labels,
                display.replace(placement="cartesian", sigma=15.0, clip=25.0),
                seed=args.seed,
                device=device,
            )
            res["theta_sigma15"] = protocols.theta_diagnostics(model, ds, n=min(args.digits, 2000))
        res["display"] = {"preset": recipe.preset if recipe else args.preset, **display.to_dict()}
        res.update(provenance(wall_time_s=time.perf_counter() - t, **prov))
        path = write_json(out / "central.json", res)
        print(
            f"{name}: central {res['central']:.4f}  general {res['general']:.4f}  ({res['n_digits']} digits) -> {path}"
        )
    else:
        acc = protocols.accuracy_map(
            model,
            display,
            n_digits=args.digits,
            seed=args.seed,
            device=device,
            mnist_dir=args.mnist_dir,
            progress=not args.no_progress,
            precision=args.precision,
        )
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "accuracy_map.npy", acc.astype(np.float32))
        radii, prof = protocols.radial_profile(acc)
        res = {
            "n_digits": args.digits,
            "centre": float(acc[27, 27]),
            "max": float(acc.max()),
            "mean": float(acc.mean()),
            "radial_profile": {"radius_px": radii.tolist(), "accuracy": prof.tolist()},
            "radius_above_0.7_px": float(np.sqrt((acc > 0.7).sum() / np.pi)),
            "display": {"preset": recipe.preset if recipe else args.preset, **display.to_dict()},
            "precision": args.precision,
        }
        res.update(provenance(wall_time_s=time.perf_counter() - t, **prov))
        write_json(out / "accuracy_map.json", res)
        viz.accuracy_map(acc, out / "accuracy_map.png", title=f"{name}: shift accuracy ({args.digits} digits/cell)")
        print(
            f"{name}: map centre {res['centre']:.4f}, plateau > 0.7 within {res['radius_above_0.7_px']:.1f} px, "
            f"r=20: {prof[20]:.3f} -> {out}/accuracy_map.npy"
        )
    return 0


def add_parser(sub) -> None:
    e = sub.add_parser(
        "eval",
        help="central/general accuracy or the shift-accuracy map of a 28x28 model",
        description="Evaluate a trained 28x28 model (run directory or zoo name) on its recipe's "
        "display: central (shift 0) and general (shift σ 15) accuracy, or the 55x55 "
        "shift-accuracy map.",
    )
    e.add_argument("what", choices=["central", "accuracy-map"])
    e.add_argument("model", help="run directory, weights file or zoo name (e.g. what)")
    e.add_argument("--digits", type=int, default=10000, help="MNIST-test digits (per cell for the map)")
    e.add_argument("--seed", type=int, default=0, help="seed of the test displays")
    e.add_argument(
        "--preset",
        default="paper",
        choices=["paper", "dabane2021"],
        help="display preset when the model carries no recipe (default paper)",
    )
    e.add_argument("--clutter", type=float, help="override the clutter level")
    e.add_argument("--out", help="output directory (default RUN/eval, or eval/<name> for a zoo model)")
    e.add_argument("--name", help="name in the result files (default: the recipe name)")
    e.add_argument("--device", default="auto")
    e.add_argument(
        "--precision",
        default="fp32",
        help="accuracy-map: fp32 (default) or bf16 (autocast forward passes, about 1.8x faster on a CPU; "
        "cells within a fraction of a point of fp32's)",
    )
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.add_argument("--mnist-dir")
    add_import_arg(e)
    e.set_defaults(func=cmd_eval)
