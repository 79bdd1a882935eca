"""``whatwhere zoo``: the shipped models (list, verify; ``add`` and ``convert`` for maintainers)."""

from __future__ import annotations

import json


def cmd_list(args) -> int:
    from whatwhere.engine.zoo import manifest

    models = manifest()["models"]
    if args.json:
        print(json.dumps(models, indent=2))
        return 0
    wn = max([4, *map(len, models)])  # columns as wide as their longest entry
    wm = max([5, *(len(e["model"]) for e in models.values())])
    wr = max([6, *(len(e["recipe"].get("name", "")) for e in models.values())])
    print(f"{'name':{wn}s} {'model':{wm}s} {'params':>10s} {'file':>8s} {'stored':7s} {'recipe':{wr}s} headline")
    for name, e in models.items():
        metrics = ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in list(e.get("metrics", {}).items())[:3]
        )
        size = f"{e['bytes'] / 1e6:.1f} MB" if isinstance(e.get("bytes"), int) else "?"
        stored = e.get("storage", "float32")  # absent: as trained
        print(
            f"{name:{wn}s} {e['model']:{wm}s} {e['params']:>10,d} {size:>8s} {stored:7s} "
            f"{e['recipe'].get('name', ''):{wr}s} {metrics}"
        )
    return 0


def cmd_verify(args) -> int:
    from whatwhere.engine.zoo import ZooError, zoo_entry, zoo_names, zoo_path, zoo_state
    from whatwhere.utils.errors import UserError

    bad = 0
    for name in args.names or zoo_names():
        for file in ["weights", *zoo_entry(name).get("files", {})]:
            try:
                zoo_path(name, file)
                print(f"ok   {name} {file}")
            except ZooError as exc:
                bad += 1
                print(f"FAIL {name} {file}: {exc}")
        parts = zoo_entry(name).get("parts") or {}
        if parts:  # the parts it refers to: found, verified, and giving the tensors it takes
            try:
                zoo_state(name)
                refs = ", ".join(f"{prefix} from {ref['model']}" for prefix, ref in parts.items())
                print(f"ok   {name} parts ({refs})")
            except (ZooError, UserError) as exc:
                bad += 1
                print(f"FAIL {name} parts: {exc}")
    return 1 if bad else 0


def cmd_add(args) -> int:
    from whatwhere.engine.checkpoints import count_parameters, load, recipe_of, weights_path
    from whatwhere.engine.zoo import add_to_zoo

    metrics = {}
    for item in args.metric:
        k, _, v = item.partition("=")
        metrics[k] = float(v)
    provenance = {}
    for item in args.provenance:
        k, _, v = item.partition("=")
        provenance[k] = v
    files = dict(item.split("=", 1) for item in args.file)
    model = load(args.run)
    entry = add_to_zoo(
        args.name,
        weights_path(args.run),
        recipe=recipe_of(args.run),
        params=count_parameters(model),
        metrics=metrics,
        provenance=provenance,
        files=files,
    )
    print(f"added {args.name}: {entry['file']} sha256 {entry['sha256'][:16]}…, {entry['params']:,} parameters")
    return 0


def cmd_convert(args) -> int:
    from whatwhere.engine.zoo import convert_zoo, manifest_path

    done = convert_zoo(args.names, args.dtype)
    for name in args.names:
        name = name.removeprefix("zoo:")
        if name not in done:
            continue
        r = done.pop(name)
        how = "unchanged (already so)" if r["unchanged"] else f"{r['bytes_before']:,d} -> {r['bytes']:,d} bytes"
        print(f"{name}: {r['file']} stored in {r['storage']}, {how}, sha256 {r['sha256'][:16]}…")
    for comp, prefix, part in done["repinned"]:
        print(f"{comp}: part {prefix!r} now pins {part}'s new sha256")
    print(f"wrote {manifest_path()}; check with `whatwhere zoo verify`")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "zoo",
        help="the shipped models: list, verify their hashes",
        description="The checked model zoo shipped with whatwhere: load any entry by name "
        '(`whatwhere.load("what")`, or a zoo name wherever a command takes a model).',
    )
    zsub = p.add_subparsers(dest="zoo_cmd", required=True)
    ls = zsub.add_parser("list", help="list the shipped models")
    ls.add_argument("--json", action="store_true", help="the whole manifest as JSON")
    ls.set_defaults(func=cmd_list)
    v = zsub.add_parser(
        "verify",
        help="check every shipped file against its SHA-256, fetching the missing ones, and the parts "
        "a composite model refers to (exit 1 on a mismatch or a failed download)",
    )
    v.add_argument("names", nargs="*", help="entries to check (default: all)")
    v.set_defaults(func=cmd_verify)
    a = zsub.add_parser(
        "add",
        help="(maintainers) add a trained run to the zoo of this checkout (its tensors bit-identical to a zoo "
        "entry of its recipe's init are referred to, not copied)",
    )
    a.add_argument("run", help="run directory (model.safetensors and recipe.yaml)")
    a.add_argument("--name", required=True, help="zoo name")
    a.add_argument("--metric", action="append", default=[], metavar="KEY=VALUE", help="headline metric; repeatable")
    a.add_argument(
        "--provenance",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="commit=..., hardware=..., command=...; repeatable",
    )
    a.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="KIND=PATH",
        help="an extra file, e.g. accuracy_map=results/what/accuracy_map.npy; repeatable",
    )
    a.set_defaults(func=cmd_add)
    c = zsub.add_parser(
        "convert",
        help="(maintainers) rewrite zoo entries' weights with their floating tensors stored in another dtype "
        "(loading casts them back to float32); updates the manifest and the parts references",
        description="Rewrite each named entry's own weights file (a composite's: only its own tensors) with its "
        'floating tensors stored in DTYPE, its metadata kept and "storage" recorded there and in the manifest, '
        "and update its manifest sha256/bytes and the pinned sha256 of every parts reference to it. The zoo "
        "rewritten is the manifest ($WHATWHERE_ZOO_MANIFEST, else the package's) and its folder, which must "
        "be the first searched ($WHATWHERE_ZOO_DIR, else the package's zoo/): to convert a copy, point both "
        "at it. Refused before anything is written: an unknown entry or dtype, a value beyond the dtype's range, "
        "a composite not named whose tensors taken from a named entry would change. All or nothing: a failure "
        "leaves the zoo as it was.",
    )
    c.add_argument("names", nargs="+", metavar="NAME", help="zoo entries to rewrite")
    c.add_argument(
        "--dtype",
        required=True,
        help="the storage dtype of their floating tensors: float16, bfloat16 or float32",
    )
    c.set_defaults(func=cmd_convert)
