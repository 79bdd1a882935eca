"""``whatwhere train``: a recipe (packaged name or YAML file) -> a run directory."""

from __future__ import annotations

import sys
from pathlib import Path


def cmd_train(args) -> int:
    from whatwhere.engine.recipe import load_recipe, recipe_names, recipe_source
    from whatwhere.engine.trainer import TrainingError, TrainingInterrupted, train

    if args.list:
        for name in recipe_names():
            first = recipe_source(name).read_text().splitlines()[:1]
            print(f"{name:22s} {first[0].lstrip('# ')[:90] if first else ''}")
        return 0
    from whatwhere.cli.common import check_args

    check_args(args, positive=("ensemble",))
    if args.recipe is None:
        raise ValueError("give a RECIPE (a packaged name, see --list, or a YAML file)")
    overrides = list(args.set) + ([f"seed={args.seed}"] if args.seed is not None else [])
    recipe = load_recipe(args.recipe, profile=args.profile, overrides=overrides)
    if args.ensemble:
        from whatwhere.engine.recipe import ensemble_recipe, parse_recipe

        single = recipe
        recipe = parse_recipe(ensemble_recipe(single.to_dict(), args.ensemble))
    default = (
        recipe.name
        + (f"-{args.profile}" if args.profile else "")
        + (f"-seed{args.seed}" if args.seed is not None else "")
    )
    out = Path(args.out or Path("runs") / default)
    print(
        f"training {recipe.name} ({recipe.model}, {len(recipe.stages)} stages, {recipe.total_epochs} epochs) -> {out}"
    )
    try:
        train(
            recipe, out, resume=args.resume, device=args.device, mnist_dir=args.mnist_dir, progress=not args.no_progress
        )
    except TrainingInterrupted as exc:
        print(f"whatwhere: {exc}", file=sys.stderr)
        return 130
    except TrainingError as exc:
        print(f"whatwhere: training stopped: {exc}", file=sys.stderr)
        return 1
    print(f"done: {out}/model.safetensors")
    if args.ensemble:
        from whatwhere.engine.trainer import export_members

        for path in export_members(out, single):
            print(f"member: {path}")
    return 0


def add_parser(sub) -> None:
    t = sub.add_parser(
        "train",
        help="train a recipe into a run directory",
        description="Train a recipe (a packaged name such as `what` or `where-c0.7`, or a YAML "
        "file) into a run directory; Ctrl-C saves a checkpoint and --resume continues "
        "exactly where it stopped.",
    )
    t.add_argument("recipe", nargs="?", help="packaged recipe name (see --list) or YAML file")
    t.add_argument("--list", action="store_true", help="list the packaged recipes and exit")
    t.add_argument("--out", help="run directory (default runs/<recipe name>[-<profile>][-seed<N>])")
    t.add_argument("--profile", help="named profile of the recipe, e.g. quick (a small CPU run)")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key (dotted, e.g. optimizer.lr=0.01, stages.*.epochs=1); repeatable",
    )
    t.add_argument(
        "--seed", type=int, help="the run's seed (initialisation, display stream, order); default: the recipe's"
    )
    t.add_argument(
        "--ensemble",
        type=int,
        metavar="N",
        help="train N seeds of the recipe's model in this one process, vectorised (What, Where, "
        "STN-28...); each member is then written as RUN/member-K, a run of its own",
    )
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--device", help="auto, cpu or cuda (default: the recipe's, auto)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--mnist-dir", help="directory holding the MNIST IDX files")
    t.set_defaults(func=cmd_train)
