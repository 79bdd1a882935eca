"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse


def add_display_args(p: argparse.ArgumentParser, size_default: int = 128) -> None:
    """Flags that build a :class:`~whatwhere.data.DisplayConfig` from a preset."""
    from whatwhere.data.display import PRESETS

    p.add_argument(
        "--preset",
        default="paper",
        choices=sorted(PRESETS),
        help="published display parameters to start from (default: paper); ram60-translated, "
        "ram60-cluttered, ram100-cluttered, stn-tc: the standard black cluttered-MNIST tasks",
    )
    p.add_argument(
        "--size",
        type=int,
        default=None,
        choices=[28, 60, 100, 128],
        help=f"128: the What/Where display; 28: the What training display (default {size_default}, "
        "or the preset's only size)",
    )
    p.set_defaults(size_default=size_default)
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
    p.add_argument("--clutter", type=float, help="clutter level n >= 0 (1.0 in the paper, 0.75 in the STN study)")
    p.add_argument("--mixing", choices=["opaque", "transparent"])
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--mnist-dir", help="directory holding the MNIST IDX files")


def display_config(args):
    """The :class:`~whatwhere.data.DisplayConfig` of :func:`add_display_args` flags."""
    from whatwhere.data import preset

    changes = {}
    if args.clutter is not None:
        changes["clutter"] = args.clutter
    if args.contrast is not None and args.contrast_range is not None:
        raise ValueError("give either --contrast or --contrast-range, not both")
    if args.contrast is not None:
        changes.update(contrast=args.contrast, contrast_range=None)
    if args.contrast_range is not None:
        changes["contrast_range"] = tuple(args.contrast_range)
    if args.mixing is not None:
        changes["mixing"] = args.mixing
    if args.eccentricity is not None and args.offset is not None:
        raise ValueError("give at most one of --eccentricity / --offset")
    if args.eccentricity is not None:
        changes.update(placement="eccentricity", eccentricity=args.eccentricity, azimuth=args.azimuth)
    elif args.offset is not None:
        changes.update(placement="offset", offset=tuple(args.offset))
    if args.sigma is not None:
        changes["sigma"] = args.sigma
    if args.clip is not None:
        changes["clip"] = args.clip
    return preset(args.preset, display_size(args), **changes)


def display_size(args) -> int:
    """``--size``, or the default: ``size_default`` if the preset has it, else the preset's only size."""
    from whatwhere.data.display import PRESETS

    if args.size is not None:
        return args.size
    default = getattr(args, "size_default", 128)
    return default if default in PRESETS[args.preset] else max(PRESETS[args.preset])


def add_import_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a Python module first (one that registers your models); repeatable",
    )


def do_imports(args) -> None:
    import importlib

    for mod in getattr(args, "imports", []) or []:
        importlib.import_module(mod)


def run_recipe(spec):
    """The resolved recipe of a trained model (run directory or zoo name), or None."""
    from whatwhere.engine.checkpoints import recipe_of
    from whatwhere.engine.recipe import parse_recipe

    d = recipe_of(spec)
    return parse_recipe(d) if d else None


def check_args(args, *, positive=(), counts=(), nonnegative=(), contrast=()) -> None:
    """Refuse out-of-range option values before any work starts (``ValueError`` naming the option).

    Each name is an attribute of ``args`` (``n_fit`` is the option ``--n-fit``); ``None`` (not
    given) passes, a list (``nargs``) is checked element by element.

    Args:
        positive: integers that must be >= 1 (counts of digits, displays, batch sizes).
        counts: integers that must be >= 0 (saccade counts).
        nonnegative: numbers that must be finite and >= 0 (saccade counts, eccentricities, radii).
        contrast: digit contrasts, in (0, 1].
    """
    import math

    rules = (
        [(n, "an integer >= 1", lambda v: v >= 1) for n in positive]
        + [(n, "an integer >= 0", lambda v: v >= 0) for n in counts]
        + [(n, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0) for n in nonnegative]
        + [(n, "in (0, 1]", lambda v: 0 < v <= 1) for n in contrast]
    )
    for name, rule, ok in rules:
        value = getattr(args, name, None)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None and not ok(v):
                raise ValueError(f"--{name.replace('_', '-')} must be {rule}, got {v:g}")
