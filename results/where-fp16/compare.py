"""Do the Where MLPs survive fp16 storage?  (the zoo's weight files, not the arithmetic)

Writes a temporary zoo whose Where networks (and the saccadic transformer's own tensors, among
them its fine-tuned Where layers) are stored in fp16, benchmarks it (WHATWHERE_ZOO_DIR,
WHATWHERE_ZOO_MANIFEST) beside the shipped fp32 zoo on the same seeded displays (1,000 digits
per cell), and writes compare.md: the largest change of any cell's accuracy and the change of
each model's mean.  The models compute in fp32 either way
(loading casts the stored fp16 back), so only the rounding of the stored weights differs.

    OMP_NUM_THREADS=1 python results/where-fp16/compare.py [--digits 1000]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from whatwhere.engine.zoo import ENV_DIR, ENV_MANIFEST, sha256_of, zoo_dir

HERE = Path(__file__).resolve().parent
SETS = {  # preset: the models of that benchmark (as in results/benchmark and results/benchmark-paper)
    "dabane2021": ["saccadic_transformer", "where-c0.7", "where-c0.5-ft", "where-c0.3-ft"],
    "paper": ["where-c0.7", "where-c0.5", "where-c0.3"],
}


WHERES = ["where-c0.7", "where-c0.5", "where-c0.3", "where-c0.5-ft", "where-c0.3-ft"]
HALVED = [*WHERES, "saccadic_transformer"]  # the composite's own file: its fine-tuned Where layers


def half_zoo(folder: Path) -> dict:
    """A zoo in ``folder`` whose Where entries (and the saccadic transformer's own tensors) are
    stored in fp16, with its manifest; the other entries are found in the package's zoo."""
    man = json.loads((zoo_dir() / "manifest.json").read_text())
    for name in HALVED:
        rec = man["models"][name]
        src = zoo_dir() / rec["file"]
        with safe_open(str(src), "pt") as f:
            meta = f.metadata()
            state = {k: f.get_tensor(k) for k in f.keys()}
        state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
        out = folder / rec["file"]
        save_file(state, str(out), metadata=meta)
        rec["sha256"], rec["bytes"] = sha256_of(out), out.stat().st_size
    for rec in man["models"].values():  # references pin their part's hash
        for part in (rec.get("parts") or {}).values():
            part["sha256"] = man["models"][part["model"]]["sha256"]
    (folder / "manifest.json").write_text(json.dumps(man, indent=2))
    return man


def bench(models: list[str], preset: str, digits: int, out: Path, env: dict) -> dict:
    cli = "import sys; from whatwhere.cli import main; sys.argv[0] = 'whatwhere'; sys.exit(main())"
    cmd = [
        sys.executable,
        "-c",
        cli,
        "benchmark",
        *models,
        "--what",
        "what",
        "--digits",
        str(digits),
        "--preset",
        preset,
        "--out",
        str(out),
        "--no-progress",
        "--no-figures",
    ]
    subprocess.run(cmd, check=True, env={**os.environ, **env})
    return json.loads((out / "benchmark.json").read_text())


def cells(result: dict) -> dict:
    """(model, saccades, contrast, eccentricity) -> accuracy"""
    rows = result["records"] if "records" in result else result["results"]
    return {(r["model"], r.get("saccades"), r["contrast"], r["eccentricity"]): r["accuracy"] for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits", type=int, default=1000)
    args = ap.parse_args()
    lines = [
        "# The Where MLPs stored in fp16",
        "",
        f"`python results/where-fp16/compare.py --digits {args.digits}` (one thread); fp32 zoo weights against",
        "fp16 copies of the same weights, the same seeded displays, `--what what`.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        half = tmp / "zoo-fp16"
        half.mkdir()
        man = half_zoo(half)
        fp16 = {ENV_DIR: str(half), ENV_MANIFEST: str(half / "manifest.json")}
        for preset, models in SETS.items():
            a = cells(bench(models, preset, args.digits, tmp / f"{preset}-fp32", {}))
            b = cells(bench(models, preset, args.digits, tmp / f"{preset}-fp16", fp16))
            assert a.keys() == b.keys(), "the two benchmarks measured different cells"
            lines += [
                f"## preset {preset}",
                "",
                "| model | saccades | cells | mean fp32 | mean fp16 | Δ mean (points) |"
                " largest |Δ| of a cell (points) |",
                "|---|---|---|---|---|---|---|",
            ]
            groups: dict = {}
            for k in a:
                groups.setdefault(k[:2], []).append(k)
            for (model, sacc), ks in sorted(groups.items(), key=lambda g: (g[0][0], str(g[0][1]))):
                ma = sum(a[k] for k in ks) / len(ks)
                mb = sum(b[k] for k in ks) / len(ks)
                worst = max(abs(a[k] - b[k]) for k in ks)
                lines.append(
                    f"| {model} | {sacc} | {len(ks)} | {ma:.4f} | {mb:.4f} | {100 * (mb - ma):+.2f} |"
                    f" {100 * worst:.2f} |"
                )
            lines.append("")
    lines += ["## File sizes", "", "| entry | fp32 bytes | fp16 bytes |", "|---|---|---|"]
    lines += [
        f"| {m} | {(zoo_dir() / man['models'][m]['file']).stat().st_size:,} | {man['models'][m]['bytes']:,} |"
        for m in HALVED
    ]
    lines += ["", f"torch {torch.__version__}"]
    (HERE / "compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
