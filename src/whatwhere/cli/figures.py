"""``whatwhere figures``: (re)draw figures from result files and trained models."""

from __future__ import annotations

import json
from pathlib import Path

from whatwhere.cli.common import run_recipe


def cmd_figures(args) -> int:
    import numpy as np

    from whatwhere import viz

    if args.kind == "maps":
        from whatwhere.eval.published import PUBLISHED_RADIAL

        maps = [np.load(p) for p in args.inputs]
        names = args.labels or [Path(p).parent.name for p in args.inputs]
        if len(names) != len(maps):
            raise ValueError(f"--labels needs one name per map ({len(maps)}), got {len(names)}")
        refs = {f"{k} (published)": v for k, v in PUBLISHED_RADIAL.items()} if args.published else None
        print(f"wrote {viz.maps_side_by_side(maps, names, args.out, references=refs)}")
    elif args.kind == "curves":
        from whatwhere.engine.trainer import read_metrics

        run = Path(args.inputs[0])
        print(f"wrote {viz.training_curves(read_metrics(run), args.out, title=run.name)}")
    elif args.kind == "transformer":
        import torch

        from whatwhere.data import DisplaySet, mnist, preset
        from whatwhere.engine.checkpoints import load

        model = load(args.inputs[0])
        if not hasattr(model, "glimpse"):
            raise ValueError(f"{args.inputs[0]}: the model is not a spatial transformer")
        recipe = run_recipe(args.inputs[0])
        display = recipe.stages[-1].display if recipe else preset("dabane2021", model.input_size)
        test = mnist.load("test", args.mnist_dir)
        d = DisplaySet(test.images, test.labels, display, seed=args.seed).batch(0, args.n)
        with torch.no_grad():
            warped = model.glimpse(d.images)[:, 0].numpy()
            preds = model(d.images).argmax(1).numpy()
        print(f"wrote {viz.transformer_grid(d.images.numpy(), warped, d.labels.numpy(), preds, args.out, args.inputs[0])}")
    elif args.kind == "where":
        from whatwhere.cli.saccades import where_figures

        records = [r for f in args.inputs for r in json.loads(Path(f).read_text())["records"]]
        for p in where_figures(records, args.out):
            print(f"wrote {p}")
    elif args.kind == "benchmark":
        result = json.loads(Path(args.inputs[0]).read_text())
        print(f"wrote {viz.benchmark_figure(result, args.out)}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("figures", help="draw figures: maps, training curves, transformer glimpses, the paper's "
                                       "Figs. 4/5B, the benchmark",
                       description="(Re)draw a figure. maps: accuracy_map.npy files side by side with radial "
                                   "profiles; curves: a run's training curves; transformer: displays and glimpses "
                                   "of a spatial transformer (run or zoo name); where: Figs. 4 and 5B from "
                                   "`whatwhere saccades` JSON files (OUT is a directory); benchmark: the figure of "
                                   "a `whatwhere benchmark` JSON file.")
    p.add_argument("kind", choices=["maps", "curves", "transformer", "where", "benchmark"])
    p.add_argument("inputs", nargs="+", help="accuracy_map.npy files, a run directory, a model, or JSON files")
    p.add_argument("--out", required=True, help="output file (a directory for `where`)")
    p.add_argument("--labels", nargs="+", help="maps: one name per map")
    p.add_argument("--published", action="store_true", help="maps: draw the published radial profiles dashed")
    p.add_argument("--n", type=int, default=8, help="transformer: displays in the grid")
    p.add_argument("--seed", type=int, default=0, help="transformer: display seed")
    p.add_argument("--mnist-dir")
    p.set_defaults(func=cmd_figures)
