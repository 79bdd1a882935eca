"""The saccadic transformer's fovea against the fovea it started from.

A saccadic transformer's foveal classifier (STN-28) is fine-tuned by its classification loss on the
glimpses its loop takes (both recipes train it: saccadic_transformer, the POLO periphery, and
saccadic_transformer-retina).  This measures whether that fine-tuning lifted the cap the fovea puts on accuracy: both
classifiers read the central 28x28 fovea of the same displays, the digit at 0 ... 8 px from its
centre (the error of a glimpse that lands near the digit), at the benchmark's three contrasts.

    OMP_NUM_THREADS=1 python results/saccadic-fovea/fovea_cap.py --digits 2000
"""

import argparse
import json
import pathlib

import torch

import whatwhere
from whatwhere.eval.benchmark import benchmark

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--digits", type=int, default=2000, help="MNIST-test digits per cell")
p.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).parent)
args = p.parse_args()
torch.set_num_threads(1)
models = {
    "stn28 (zoo, the start)": whatwhere.load("stn28"),
    # the retina model, shipped as saccadic_transformer until 2026-12-07 (its fovea's row of the first measurement)
    "saccadic_transformer-retina.what (fine-tuned)": whatwhere.load("saccadic_transformer-retina").what.eval(),
    # the shipped model (POLO periphery): its fovea was trained on the glimpses of its own saccades
    "saccadic_transformer.what (fine-tuned)": whatwhere.load("saccadic_transformer").what.eval(),
}
r = benchmark(models, eccentricities=(0.0, 2.0, 4.0, 6.0, 8.0), n_digits=args.digits, code_r2=False, progress=False)
acc = {}
for rec in r["records"]:
    acc.setdefault(rec["model"], {}).setdefault(rec["contrast"], {})[rec["eccentricity"]] = rec["accuracy"]
lines = [
    "# The saccadic transformer's fovea after fine-tuning on its own glimpses",
    "",
    f"`python results/saccadic-fovea/fovea_cap.py --digits {args.digits}` (one thread, torch {torch.__version__}); "
    "preset dabane2021 (clutter 0.75), seed 0, the digit at the given offset from the fovea's centre.",
    "",
    "| fovea | contrast | " + " | ".join(f"{e:g} px" for e in (0, 2, 4, 6, 8)) + " |",
    "|---|---|" + "---|" * 5,
]
for name, per in acc.items():
    for c in sorted(per, reverse=True):
        lines.append(f"| {name} | {c:g} | " + " | ".join(f"{per[c][e]:.3f}" for e in sorted(per[c])) + " |")
args.out.mkdir(parents=True, exist_ok=True)
(args.out / "fovea_cap.md").write_text("\n".join(lines) + "\n")
(args.out / "fovea_cap.json").write_text(json.dumps(acc, indent=1))
print("\n".join(lines))
