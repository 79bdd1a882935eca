"""``whatwhere figures``: (re)draw figures from result files and trained models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from whatwhere.cli.common import check_args, run_recipe
from whatwhere.utils.errors import UserError
from whatwhere.utils.io import read_json


def cmd_figures(args) -> int:
    from whatwhere import viz

    check_args(
        args,
        positive=("n",),
        counts=("saccades",),
        nonnegative=("eccentricities", "eccentricity"),
        contrast=("contrast",),
    )
    if args.kind == "maps":
        from whatwhere.engine.objectives import load_accuracy_map
        from whatwhere.eval.published import PUBLISHED_RADIAL

        maps = [load_accuracy_map(str(p)).numpy() for p in args.inputs]
        names = args.labels or [Path(p).parent.name for p in args.inputs]
        if len(names) != len(maps):
            raise ValueError(f"--labels needs one name per map ({len(maps)}), got {len(names)}")
        refs = {f"{k} (published)": v for k, v in PUBLISHED_RADIAL.items()} if args.published else None
        print(f"wrote {viz.maps_side_by_side(maps, names, args.out, references=refs)}")
    elif args.kind == "curves":
        from whatwhere.engine.trainer import read_metrics

        run = Path(args.inputs[0])
        rows = read_metrics(run)
        need = ("epoch", "train_acc", "test_acc", "stage_name")
        if not rows or any(k not in rows[0] for k in need):
            raise UserError(f"{run / 'metrics.csv'}: no rows with {', '.join(need)} (an empty or foreign file)")
        print(f"wrote {viz.training_curves(rows, args.out, title=run.name)}")
    elif args.kind == "transformer":
        import torch

        from whatwhere.data import DisplaySet, mnist, preset
        from whatwhere.engine.checkpoints import load

        model: Any = load(args.inputs[0])  # duck-typed: a spatial transformer, checked here
        if not hasattr(model, "glimpse"):
            raise ValueError(f"{args.inputs[0]}: the model is not a spatial transformer")
        recipe = run_recipe(args.inputs[0])
        display = recipe.stages[-1].display if recipe else preset("dabane2021", model.input_size)
        test = mnist.load("test", args.mnist_dir)
        d = DisplaySet(test.images, test.labels, display, seed=args.seed).batch(0, args.n)
        with torch.no_grad():
            warped = model.glimpse(d.images)[:, 0].numpy()
            preds = model(d.images).argmax(1).numpy()
        path = viz.transformer_grid(d.images.numpy(), warped, d.labels.numpy(), preds, args.out, args.inputs[0])
        print(f"wrote {path}")
    elif args.kind == "where":
        from whatwhere.cli.saccades import where_figures

        records = [r for f in args.inputs for r in _records(f, ("contrast", "eccentricity", "saccades", "accuracy"))]
        for p in where_figures(records, args.out):
            print(f"wrote {p}")
    elif args.kind == "scanpaths":
        _scanpaths(args)
    elif args.kind == "scan":
        _scan(args)
    elif args.kind == "benchmark":
        result = read_json(args.inputs[0], what="benchmark result")
        _records(args.inputs[0], ("model", "saccades", "contrast", "eccentricity", "accuracy", "ci95"), result)
        for key in ("contrasts", "eccentricities"):
            if not isinstance(result.get(key), list):
                raise UserError(f"{args.inputs[0]}: no {key!r} list; not a `whatwhere benchmark` result file")
        print(f"wrote {viz.benchmark_figure(result, args.out)}")
    elif args.kind == "tradeoff":
        for path in _tradeoff(args):
            print(f"wrote {path}")
    return 0


def _records(path, keys, payload=None) -> list[dict]:
    """The ``records`` of a result file (``whatwhere saccades`` / ``benchmark`` JSON), each holding
    ``keys``; :class:`UserError` naming the file otherwise."""
    payload = read_json(path, what="result file") if payload is None else payload
    records = payload.get("records")
    if not isinstance(records, list) or not records:
        raise UserError(f"{path}: no 'records' list; not a result file of `whatwhere saccades` or `benchmark`")
    for r in records:
        if not isinstance(r, dict) or any(k not in r for k in keys):
            raise UserError(f"{path}: a record without {', '.join(keys)}: {str(r)[:80]}")
    return records


def _benchmark_result(path) -> dict:
    """A ``whatwhere benchmark`` result file of the contrast x eccentricity grid, checked."""
    result = read_json(path, what="benchmark result")
    _records(path, ("model", "saccades", "contrast", "eccentricity", "accuracy"), result)
    for key in ("contrasts", "eccentricities"):
        if not isinstance(result.get(key), list):
            raise UserError(f"{path}: no {key!r} list; not a `whatwhere benchmark` result file (a standard task's?)")
    if not isinstance(result.get("models"), dict) or not isinstance(result.get("display"), dict):
        raise UserError(f"{path}: no 'models' or 'display'; not a `whatwhere benchmark` result file")
    return result


def _tradeoff(args) -> list[Path]:
    """Accuracy at one eccentricity against the numbers read per decision, from benchmark files
    of the same displays: ``OUT`` (PNG), the same as PDF, and a Markdown table ``OUT.md``."""
    from whatwhere import viz
    from whatwhere.eval.tradeoff import (
        published_candidates,
        published_points,
        registry_reads,
        result_reads,
        same_displays,
        tradeoff_markdown,
        tradeoff_points,
    )
    from whatwhere.utils.io import write_text
    from whatwhere.utils.provenance import command_line

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: the trade-off figure is a .png (its .pdf and .md are written beside it)")
    results = [(str(f), _benchmark_result(f)) for f in args.inputs]
    first_path, first = results[0]
    for f, r in results[1:]:
        if not same_displays(r["display"], first["display"]):
            raise UserError(f"{f} was measured on other displays than {first_path} (its 'display' differs)")
    e = args.eccentricity if args.eccentricity is not None else max(max(r["eccentricities"]) for _, r in results)
    points: list[dict] = []
    for f, r in results:
        new = tradeoff_points(r, result_reads(r), eccentricity=e, source=f)
        have = {(p["label"], p["contrast"]): p["accuracy"] for p in points}
        clash = {p["model"] for p in new if (p["label"], p["contrast"]) in have}
        same = all(have[(p["label"], p["contrast"])] == p["accuracy"] for p in new if p["model"] in clash)
        if clash and same:  # the same model, benchmarked again on the same displays: once
            new = [p for p in new if p["model"] not in clash]
        elif clash:
            tag = Path(f).parent.name or Path(f).stem
            for p in new:
                if p["model"] in clash:
                    p["label"] = f"{p['label']} [{tag}]"
        points += new
    note = ""
    if not args.no_published:
        cands = published_candidates([r for _, r in results])
        reads = {(k, s): registry_reads(k, saccades=s) for k, s in cands}
        points += published_points(reads, sorted({c for _, r in results for c in r["contrasts"]}, reverse=True), e)
        if cands:
            note = (
                "Published rows (italics, hollow markers): models not benchmarked here, at the accuracy the study "
                "published on displays of the same clutter; their counts are those of the registry model's "
                "default architecture."
            )
    first_display = first["display"]
    title = (
        f"accuracy at {e:g} px vs numbers read per decision (preset {first_display.get('preset')}, clutter "
        f"{first_display.get('clutter')}, {first.get('n_digits', '?')} digits per cell)"
    )
    paths = [viz.tradeoff_figure(points, out, title=title)]
    paths.append(viz.tradeoff_figure(points, out.with_suffix(".pdf"), title=title))
    head = (
        f"Accuracy at {e:g} px against the numbers read per decision (retina or POLO code coefficients plus "
        f"glimpse pixels, over all glimpses; a model reading the whole display: its pixels, once), from "
        f"{', '.join(f'`{f}`' for f, _ in results)} (preset {first_display.get('preset')}, clutter "
        f"{first_display.get('clutter')}). Measured accuracies ± Wilson 95 % half-width."
    )
    md = f"{head}\n\n" + tradeoff_markdown(points, command=command_line(getattr(args, "argv", None)), note=note)
    paths.append(write_text(out.with_suffix(".md"), md))
    return paths


def _scanpaths(args) -> None:
    """The saccadic transformer's scan paths next to the What/Where agent's, on the same displays."""
    import numpy as np
    import torch

    from whatwhere import viz
    from whatwhere.data import DisplaySet, mnist, preset
    from whatwhere.engine.checkpoints import load
    from whatwhere.models.agent import Agent

    eccs = args.eccentricities or [10.0, 20.0, 30.0, 40.0]
    cfgs = [preset(args.preset, 128, placement="eccentricity", eccentricity=e, contrast=args.contrast) for e in eccs]
    model: Any = load(args.inputs[0])  # duck-typed: a saccadic transformer, checked here
    if not callable(getattr(model, "forward_trace", None)):
        raise ValueError(f"{args.inputs[0]}: not a saccadic transformer (no forward_trace)")
    agent = Agent(load(args.what), load(args.agent)).eval() if args.agent else None
    test = mnist.load("test", args.mnist_dir)
    imgs, offs, labs = [], [], []
    for k, cfg in enumerate(cfgs):
        d = DisplaySet(test.images, test.labels, cfg, seed=args.seed, shuffle=True).batch(k, k + 1)
        imgs.append(d.images)
        offs.append(d.offsets)
        labs.append(d.labels)
    images, offsets, labels = torch.cat(imgs), torch.cat(offs), torch.cat(labs)
    paths = {}
    with torch.no_grad():
        tr = model.forward_trace(images)
        K = tr.step_logits.shape[1]
        stops = getattr(model, "test_stop_confidence", None) is not None
        paths[f"{Path(args.inputs[0]).name} ({'up to ' if stops else ''}{K} glimpses)"] = {
            "fixations": tr.fixations.numpy(),
            "predictions": tr.logits.argmax(1).numpy(),
            "glimpses": tr.n_glimpses.numpy(),
        }
        if agent is not None:
            at = agent.run(images, args.saccades)
            paths[f"What/Where ({args.agent}, {args.saccades} saccades)"] = {
                "fixations": at.fixations.numpy(),
                "predictions": at.final_predictions.numpy(),
            }
    out = viz.scanpaths(
        images.numpy(),
        offsets.numpy(),
        labels.numpy(),
        paths,
        args.out,
        title=f"preset {args.preset}, contrast {args.contrast:g}, eccentricities "
        f"{', '.join(f'{e:g}' for e in eccs)} px (seed {args.seed})",
    )
    np.savez(
        Path(args.out).with_suffix(".npz"),
        offsets=offsets.numpy(),
        labels=labels.numpy(),
        **{f"fixations_{k}": v["fixations"] for k, v in enumerate(paths.values())},
    )
    print(f"wrote {out}")


def _scan(args) -> None:
    """The paper's parameter-scan figure from one-parameter sweeps, with the published values."""
    from whatwhere import viz
    from whatwhere.eval.published import WHERE_SCAN
    from whatwhere.orchestration.sweep import aggregate, recipe_value

    metric = args.metric or "one_saccade_random"
    default = None
    if args.default:  # a sweep of the default point (no grid): added to every panel at the recipe's value
        rep0 = aggregate(args.default)
        if rep0["grid"] or len(rep0["points"]) != 1:
            raise ValueError(f"--default {args.default}: expected a sweep without a grid")
        default = (rep0["recipe"], rep0["points"][0])
    panels = []
    for d in args.inputs:
        rep = aggregate(d)
        if len(rep["grid"]) != 1:
            raise ValueError(f"{d}: a scan panel needs a sweep over one key, got {list(rep['grid'])}")
        key = next(iter(rep["grid"]))
        pts = [p for p in rep["points"] if metric in p["metrics"]]
        x0 = None
        if default is not None:
            x0 = recipe_value(default[0], key)  # the recipe's value, else its display's (e.g. sf_0)
            if x0 is not None and metric in default[1]["metrics"]:
                pts.append({**default[1], "values": {key: x0}})
        pts = sorted(pts, key=lambda p: p["values"][key])
        stats = [p["metrics"][metric] for p in pts]
        panels.append(
            {
                "parameter": key,
                "x": [p["values"][key] for p in pts],
                "mean": [s["mean"] for s in stats],
                "ci95": [s["ci95"] or (s["mean"], s["mean"]) for s in stats],
                "seeds": [s["values"] for s in stats],
                "published": WHERE_SCAN["scans"].get(key),
                "default": x0,
            }
        )
    print(f"wrote {viz.scan_figure(panels, args.out, title=args.title or '')}")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "figures",
        help="draw figures: maps, training curves, transformer glimpses, the paper's Figs. 4/5B, the benchmark, "
        "the accuracy / numbers-read trade-off",
        description="(Re)draw a figure. maps: accuracy_map.npy files side by side with radial "
        "profiles; curves: a run's training curves; transformer: displays and glimpses "
        "of a spatial transformer (run or zoo name); where: Figs. 4 and 5B from "
        "`whatwhere saccades` JSON files (OUT is a directory); benchmark: the figure of "
        "a `whatwhere benchmark` JSON file; scanpaths: a saccadic transformer's "
        "fixations and glimpses beside the "
        "What/Where agent's, on the same displays; scan: the parameter-scan figure from "
        "one-parameter `whatwhere sweep` directories, with the published values; tradeoff: "
        "accuracy at the largest eccentricity (40 px) against the numbers each model reads per "
        "decision (codes + glimpse pixels, log axis), one panel per contrast, from `whatwhere "
        "benchmark` JSON files of the same displays, with the published models not benchmarked "
        "(hollow); OUT is a .png, its .pdf and a Markdown table OUT.md are written beside it.",
    )
    p.add_argument(
        "kind", choices=["maps", "curves", "transformer", "where", "benchmark", "scanpaths", "scan", "tradeoff"]
    )
    p.add_argument("inputs", nargs="+", help="accuracy_map.npy files, a run directory, a model, or JSON files")
    p.add_argument("--out", required=True, help="output file (a directory for `where`)")
    p.add_argument("--labels", nargs="+", help="maps: one name per map")
    p.add_argument("--published", action="store_true", help="maps: draw the published radial profiles dashed")
    p.add_argument("--n", type=int, default=8, help="transformer: displays in the grid")
    p.add_argument("--seed", type=int, default=0, help="transformer, scanpaths: display seed")
    p.add_argument("--agent", help="scanpaths: a Where model; its What/Where agent's scan paths are drawn alongside")
    p.add_argument("--what", default="what", help="scanpaths: the agent's What model (default: what)")
    p.add_argument("--saccades", type=int, default=2, help="scanpaths: the agent's saccades (default 2)")
    p.add_argument("--contrast", type=float, default=0.7, help="scanpaths: digit contrast (default 0.7)")
    p.add_argument("--preset", default="dabane2021", choices=["dabane2021", "paper"], help="scanpaths: display preset")
    p.add_argument(
        "--eccentricities", type=float, nargs="+", help="scanpaths: one display per value (default 10 20 30 40)"
    )
    p.add_argument("--metric", help="scan: the sweep metric to plot (default one_saccade_random)")
    p.add_argument("--title", help="scan: figure title")
    p.add_argument("--default", help="scan: a sweep of the recipe's default point, added to every panel")
    p.add_argument(
        "--eccentricity",
        type=float,
        help="tradeoff: the eccentricity (px) of the accuracy (default the largest of the files, 40)",
    )
    p.add_argument(
        "--no-published", action="store_true", help="tradeoff: leave out the published models not benchmarked here"
    )
    p.add_argument("--mnist-dir")
    p.set_defaults(func=cmd_figures)
