"""``whatwhere diagnose``: what a model's localiser can see, and where a saccadic model's glimpses land."""

from __future__ import annotations

import time
from pathlib import Path

from whatwhere.cli.common import add_import_arg, check_args, do_imports, run_recipe


def _model(args, *, prefer_trained: bool = False):
    """A trained model (run, file or zoo name) or, for a registry name, an untrained one.

    With ``prefer_trained`` a name that is both a registry model and a zoo entry (``saccadic_transformer``)
    gives the trained zoo model unless ``--model-arg`` asks for an untrained one: a diagnostic of what
    training taught (where the saccades land) means nothing on random weights."""
    import yaml

    from whatwhere.engine.checkpoints import load
    from whatwhere.engine.zoo import zoo_names
    from whatwhere.models.registry import MODELS, create_model

    kwargs = {}
    for item in args.model_arg:
        if "=" not in item:
            raise ValueError(f"--model-arg {item!r} must look like KEY=VALUE")
        k, v = item.split("=", 1)
        kwargs[k] = yaml.safe_load(v)
    spec = args.model
    if spec in MODELS and not Path(spec).exists() and (kwargs or not prefer_trained or spec not in zoo_names()):
        extra = "".join(f", {k}={v}" for k, v in kwargs.items())
        return create_model(spec, **kwargs), f"{spec} (untrained{extra})", False
    if kwargs:
        raise ValueError("--model-arg applies to a registry model name (an untrained model), not to a trained one")
    return load(spec), spec, True


def cmd_code(args) -> int:
    from whatwhere.data import preset
    from whatwhere.eval.diagnostics import code_r2
    from whatwhere.utils.device import pick_device
    from whatwhere.utils.io import write_json
    from whatwhere.utils.provenance import command_line, provenance

    check_args(
        args, positive=("n_fit", "n_val", "n_test"), nonnegative=("sigma", "clip", "clutter"), contrast=("contrast",)
    )
    do_imports(args)
    dev = pick_device(args.device)
    model, label, trained = _model(args)
    model = model.to(dev).eval()
    recipe = run_recipe(args.model) if trained else None
    display = recipe.stages[-1].display if recipe is not None else preset(args.preset, 128)
    display = display.replace(placement="polar", sigma=args.sigma, clip=args.clip, contrast=args.contrast)
    if args.clutter is not None:
        display = display.replace(clutter=args.clutter)
    t = time.perf_counter()
    res = code_r2(
        model,
        display,
        n_fit=args.n_fit,
        n_val=args.n_val,
        n_test=args.n_test,
        seed=args.seed,
        device=dev,
        features=args.features,
        mnist_dir=args.mnist_dir,
    )
    what = "the localiser input" if args.features == "linear" else "the energy (squares) of the localiser input"
    print(
        f"{label}: {what} ({res['dim']} numbers) explains R² = {res['r2']:.3f} of the digit offset "
        f"(ridge, λ = {res['lambda']:g} × mean eigenvalue, fit {res['n_fit']}, test {res['n_test']} displays; "
        f"contrast {display.contrast:g}, clutter {display.clutter:g}, "
        f"radius |N(0,1)|×{args.sigma:g} ≤ {args.clip:g} px)"
    )
    if args.out:
        res.update({"target": label, "display": display.to_dict()})
        res.update(
            provenance(
                model=label,
                recipe=recipe.name if recipe else "",
                seed=args.seed,
                device=dev,
                wall_time_s=time.perf_counter() - t,
                command=command_line(args.argv),
            )
        )
        print(f"wrote {write_json(args.out, res)}")
    return 0


def cmd_fixations(args) -> int:
    from whatwhere.data import preset
    from whatwhere.eval.diagnostics import fixation_errors
    from whatwhere.utils.device import pick_device
    from whatwhere.utils.io import write_json
    from whatwhere.utils.provenance import command_line, provenance

    check_args(
        args,
        positive=("digits", "batch"),
        nonnegative=("eccentricities", "clutter", "hit_px"),
        contrast=("contrast",),
    )
    do_imports(args)
    dev = pick_device(args.device)
    model, label, _ = _model(args, prefer_trained=True)
    model = model.to(dev).eval()
    display = preset(args.preset, 128).replace(contrast=args.contrast)
    if args.clutter is not None:
        display = display.replace(clutter=args.clutter)
    t = time.perf_counter()
    rows = fixation_errors(
        model,
        display,
        args.eccentricities,
        n=args.digits,
        seed=args.seed,
        device=dev,
        batch=args.batch,
        hit_px=args.hit_px,
        mnist_dir=args.mnist_dir,
    )
    K = len(rows[0]["median_error"])
    print(
        f"{label}: distance from the digit of the fixation after each glimpse (median | mean px; "
        f"{rows[0]['n']} digits per eccentricity, contrast {display.contrast:g}, clutter {display.clutter:g}, "
        f"seed {args.seed}: the benchmark's displays)"
    )
    print(
        "  ecc px | "
        + " | ".join(f"median {k}" for k in range(1, K + 1))
        + " | "
        + " | ".join(f"mean {k}" for k in range(1, K + 1))
        + " | "
        + " | ".join(f"≤{args.hit_px:g}px {k}" for k in range(1, K + 1))
        + " | "
        + " | ".join(f"acc {k}" for k in range(1, K + 1))
    )
    for r in rows:
        print(
            f"  {r['eccentricity']:6.2f} | "
            + " | ".join(f"{v:8.1f}" for v in r["median_error"])
            + " | "
            + " | ".join(f"{v:6.1f}" for v in r["mean_error"])
            + " | "
            + " | ".join(f"{v:7.3f}" for v in r["hit_rate"])
            + " | "
            + " | ".join(f"{v:5.3f}" for v in r["accuracy"])
        )
    if args.out:
        res = {"target": label, "display": display.to_dict(), "hit_px": args.hit_px, "eccentricities": rows}
        res.update(
            provenance(
                model=label,
                recipe="",
                seed=args.seed,
                device=dev,
                wall_time_s=time.perf_counter() - t,
                command=command_line(args.argv),
            )
        )
        print(f"wrote {write_json(args.out, res)}")
    return 0


def add_parser(sub) -> None:
    from whatwhere.eval.protocols import ECCENTRICITIES

    p = sub.add_parser(
        "diagnose",
        help="diagnostics: how much of the digit position a localiser's input carries, where glimpses land",
        description="Diagnostics of a model's localiser.",
    )
    dsub = p.add_subparsers(dest="diagnose_cmd", required=True)
    c = dsub.add_parser(
        "code",
        help="ridge R² of the digit offset from the localiser's input code",
        description="How much of the digit's offset (di, dj) the localiser's (or Where pathway's) "
        "input explains linearly: a ridge regression fitted on some displays, its "
        "penalty chosen on others, R² reported on held-out ones. MODEL is a run, weights "
        "file or zoo name, or a registry model name (its untrained code: the POLO codes "
        "are fixed, so their R² does not depend on training).",
    )
    c.add_argument("model", help="run directory, weights file, zoo name, or registry model name")
    c.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="argument of an untrained registry model, e.g. filters=bandpass; repeatable",
    )
    c.add_argument(
        "--features",
        choices=["linear", "energy"],
        default="linear",
        help="regress on the code (linear, default) or on its squares (energy: what a non-linear "
        "localiser such as convPOLO's can read)",
    )
    c.add_argument("--contrast", type=float, default=0.7, help="digit contrast (default 0.7)")
    c.add_argument("--sigma", type=float, default=40.0, help="radius σ of the placement (default 40)")
    c.add_argument("--clip", type=float, default=40.0, help="largest radius (default 40)")
    c.add_argument(
        "--preset",
        default="dabane2021",
        choices=["dabane2021", "paper"],
        help="display preset when the model carries no recipe (default dabane2021)",
    )
    c.add_argument("--clutter", type=float, help="override the clutter level")
    c.add_argument("--n-fit", type=int, default=3000, help="displays to fit on (default 3000)")
    c.add_argument("--n-val", type=int, default=1000, help="displays to choose the penalty on (default 1000)")
    c.add_argument("--n-test", type=int, default=2000, help="held-out displays (default 2000)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", help="write the result as JSON to this file")
    c.add_argument("--device", default="auto")
    c.add_argument("--mnist-dir")
    add_import_arg(c)
    c.set_defaults(func=cmd_code)

    f = dsub.add_parser(
        "fixations",
        help="where a saccadic model's glimpses land: distance from the digit after each glimpse",
        description="Per eccentricity of the digit, the median and mean distance between the digit "
        "and the fixation after each glimpse, the fraction within --hit-px, and the accuracy after "
        "each glimpse, of a model with traced saccades (the saccadic transformer), in eval mode, on "
        "the displays of the benchmark's cells (same seed, contrast and --digits: the same displays).",
    )
    f.add_argument(
        "model",
        help="run directory, weights file or zoo name (a zoo name wins over the registry model of the same "
        "name); a registry model name gives its untrained code",
    )
    f.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="argument of an untrained registry model; repeatable",
    )
    f.add_argument(
        "--eccentricities",
        type=float,
        nargs="+",
        default=list(ECCENTRICITIES),
        help="px (default 4.44 … 40, the benchmark's 9)",
    )
    f.add_argument("--contrast", type=float, default=0.7, help="digit contrast (default 0.7)")
    f.add_argument(
        "--preset",
        default="dabane2021",
        choices=["dabane2021", "paper"],
        help="display preset (default dabane2021)",
    )
    f.add_argument("--clutter", type=float, help="override the clutter level")
    f.add_argument("--digits", type=int, default=1000, help="MNIST-test digits per eccentricity (default 1000)")
    f.add_argument("--hit-px", type=float, default=5.0, help="hit radius in px (default 5)")
    f.add_argument("--seed", type=int, default=0, help="display seed (default 0, the benchmark's)")
    f.add_argument("--batch", type=int, default=250, help="displays per batch (default 250)")
    f.add_argument("--out", help="write the result as JSON to this file")
    f.add_argument("--device", default="auto")
    f.add_argument("--mnist-dir")
    add_import_arg(f)
    f.set_defaults(func=cmd_fixations)
