"""``whatwhere saccades``: the What/Where agent's eccentricity × saccades benchmark and figures."""

from __future__ import annotations

import math
import time
from pathlib import Path


def _print_table(records: list[dict]) -> None:
    """Accuracy per (contrast, saccades) x eccentricity, with the published value when known."""
    from whatwhere.eval.published import WHERE_ECCENTRICITY as PUB

    eccs = sorted({r["eccentricity"] for r in records})
    for c in sorted({r["contrast"] for r in records}):
        print(f"contrast {c:g}   ecc: " + " ".join(f"{e:6.2f}" for e in eccs))
        for s in sorted({r["saccades"] for r in records if r["contrast"] == c}, key=lambda s: (isinstance(s, str), s)):
            row = {r["eccentricity"]: r["accuracy"] for r in records if r["contrast"] == c and r["saccades"] == s}
            print(f"  saccades {s!s:>4}:  " + " ".join(f"{row.get(e, math.nan):6.3f}" for e in eccs))
            pub = PUB["accuracy"].get(c, {}).get(s)
            if pub is not None and len(eccs) == len(PUB["eccentricities"]):
                print("     published:  " + " ".join(f"{v:6.3f}" for v in pub))


def where_figures(records: list[dict], out, *, name: str | None = None) -> list[Path]:
    """Fig. 4 (0 vs 1 saccade per contrast) and Fig. 5B (0..3 saccades, each contrast)."""
    from whatwhere import viz

    out = Path(out)
    paths = [viz.where_fig4(records, out / "fig4_saccade_gain.png", model=name)]
    for c in sorted({r["contrast"] for r in records}):
        paths.append(viz.where_fig5b(records, out / f"fig5b_saccades_c{c:g}.png", contrast=c, model=name))
    return paths


def fig3(agent, contrast: float, clutter: float, seed: int, out: Path, device, mnist_dir=None) -> Path:
    """Fig. 3-style panel for one display of the training distribution (polar placement)."""
    import torch

    from whatwhere import viz
    from whatwhere.data import DisplaySet, mnist, preset
    from whatwhere.engine.objectives import load_accuracy_map
    from whatwhere.ops.sampling import fovea

    test = mnist.load("test", mnist_dir)
    cfg = preset("paper", 128, clutter=clutter, contrast=contrast)
    d = DisplaySet(test.images, test.labels, cfg, seed=seed, shuffle=True, device=device).batch(0, 16)
    k = int(torch.argmax((d.offsets.double().norm(dim=1) - 25).abs().neg()))  # a digit about 25 px out
    img = d.images[k : k + 1]
    with torch.no_grad():
        codes = agent.retina.encode(img, offset_clip=agent.offset_clip)
        recon = agent.retina.reconstruct(codes)[0]
        acc = load_accuracy_map().to(device)
        true_cells = agent.colliculus.where_target(acc, d.offsets[k : k + 1])
        tr = agent.run(img, 1)
        pred_cells = agent.where_logits(img, torch.zeros(1, 2, dtype=torch.long, device=device), first=True).sigmoid()
        fov = fovea(img, tr.fixations[:, 1])[0]
        col = agent.colliculus
        return viz.where_fig3(
            display=img[0].cpu().numpy(),
            reconstruction=recon.cpu().numpy(),
            true_map=col.unpool(true_cells, method="transpose")[0].cpu().numpy(),
            pred_map=col.unpool(pred_cells, method="transpose")[0].cpu().numpy(),
            fovea=fov.cpu().numpy(),
            label=int(d.labels[k]),
            prediction=int(tr.predictions[0, 1]),
            offset=(int(d.offsets[k, 0]), int(d.offsets[k, 1])),
            fixation=(int(tr.fixations[0, 1, 0]), int(tr.fixations[0, 1, 1])),
            out=out,
            title=f"contrast {contrast:g}",
        )


def cmd_saccades(args) -> int:
    from whatwhere.cli.common import check_args
    from whatwhere.engine.checkpoints import load
    from whatwhere.eval.benchmark import Entry, benchmark
    from whatwhere.models.agent import Agent
    from whatwhere.utils.device import pick_device
    from whatwhere.utils.io import write_json
    from whatwhere.utils.provenance import command_line, provenance

    check_args(
        args, positive=("digits", "batch"), counts=("saccades",), nonnegative=("clutter",), contrast=("contrast",)
    )
    dev = pick_device(args.device)
    what = load(args.what, dev)
    where = load(args.where, dev)
    agent = Agent(what, where, faithful=args.faithful, inhibition_of_return=args.ior).to(dev).eval()
    name = args.name or ("whatwhere-faithful" if args.faithful else "whatwhere")
    t0 = time.perf_counter()
    # the batch stays 500 / 5000: a faithful agent draws its dropout masks per batch
    result = benchmark(
        [Entry(name, agent, saccades=tuple(range(args.saccades + 1)))],
        contrasts=args.contrast,
        n_digits=args.digits,
        seed=args.seed,
        preset_name="paper",
        clutter=args.clutter,
        device=dev,
        batch=args.batch or (5000 if dev.type == "cuda" else 500),
        stopping_rule=not args.no_stop,
        code_r2=False,
        mnist_dir=args.mnist_dir,
        progress=not args.no_progress,
    )
    records = result["records"]
    wall = time.perf_counter() - t0
    out = Path(args.out)
    payload = provenance(
        model=name, recipe=out.name, seed=args.seed, device=dev, wall_time_s=wall, command=command_line(args.argv)
    )
    payload.update(
        {
            "what": str(args.what),
            "where": str(args.where),
            "faithful": args.faithful,
            "inhibition_of_return": args.ior,
            "n_digits": args.digits,
            "display": result["display"],
            "stopping_rule": None if args.no_stop else {"max_saccades": args.saccades, "value": agent.stop_value},
            "records": records,
        }
    )
    path = write_json(out / "benchmark.json", payload)
    print(f"wrote {path} ({len(records)} records, {wall:.1f} s)")
    _print_table(records)
    if not args.no_figures:
        for p in where_figures(records, out, name=name):
            print(f"wrote {p}")
        for c in args.contrast:
            path = fig3(agent, c, args.clutter, args.seed, out / f"fig3_example_c{c:g}.png", dev, args.mnist_dir)
            print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "saccades",
        help="the What/Where agent: accuracy per eccentricity after 0..K saccades",
        description="Eccentricity x contrast benchmark of the What/Where saccade loop (0..K saccades "
        "and the stopping rule), written to OUT/benchmark.json with the paper's Figs. 3, "
        "4 and 5B.",
    )
    p.add_argument("--what", default="what", help="What model: zoo name, run directory or weights (default: what)")
    p.add_argument("--where", required=True, help="Where model: zoo name (e.g. where-c0.7), run or weights")
    p.add_argument("--contrast", type=float, nargs="+", default=[0.7], help="digit contrast(s) (default 0.7)")
    p.add_argument("--digits", type=int, default=1000, help="MNIST-test digits per cell (default 1000, as the paper)")
    p.add_argument("--saccades", type=int, default=5, help="largest fixed number of saccades (default 5)")
    p.add_argument("--no-stop", action="store_true", help="skip the stopping-rule condition")
    p.add_argument("--faithful", action="store_true", help="reproduce the original loop's two defects")
    p.add_argument("--ior", action="store_true", help="inhibition of return")
    p.add_argument("--clutter", type=float, default=1.0, help="clutter level (default 1.0, the paper's)")
    p.add_argument("--seed", type=int, default=0, help="display seed (default 0)")
    p.add_argument("--batch", type=int, default=None, help="displays per batch (default 500 CPU, 5000 GPU)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--name", default=None, help="model name in the records (default whatwhere[-faithful])")
    p.add_argument("--out", required=True, help="output directory (benchmark.json, figures)")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures")
    p.add_argument("--mnist-dir", default=None, help="directory holding the MNIST IDX files")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_saccades)
