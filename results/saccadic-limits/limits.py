"""What limits the shipped saccadic transformer at large eccentricities: the saccade or the fovea.

For every cell of the benchmark (9 eccentricities x 3 contrasts, the benchmark's seeded displays:
the first DIGITS digits of MNIST-test, seed 0, preset dabane2021, clutter 0.75) it runs the shipped
model with its shipped decision rule (up to 6 glimpses, stop at a posterior of 0.95) and reports:

* ``acc``: its accuracy (equal to results/benchmark's at --digits 1000);
* ``hit``: the fraction of displays whose last fixation is within 5 px of the digit, with the
  accuracy on those (``acc | hit``) and on the others (``acc | miss``);
* ``oracle``: the accuracy of the same model's fovea given one glimpse centred on the digit's
  true position (a perfect saccade), on the same displays.

The oracle is the accuracy the model would have if its saccades were perfect; the gap between it
and ``acc`` is what the saccades cost.  A second table varies one factor of the decision rule at
test time, without retraining: the soft-argmax temperature of the saccade (the learned one times
1, 0.5, 0.25, 0.1, and 0: the collicular map's argmax cell), at 31 and 40 px.

    OMP_NUM_THREADS=1 python results/saccadic-limits/limits.py --digits 1000
"""

import argparse
import json
import pathlib
import time
import types

import torch
from tqdm import tqdm

import whatwhere
from whatwhere.data import DisplaySet, mnist, preset
from whatwhere.eval.benchmark import ECCENTRICITIES

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--digits", type=int, default=1000, help="MNIST-test digits per cell (the benchmark's first DIGITS)")
p.add_argument("--batch", type=int, default=250)
p.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).parent)
args = p.parse_args()
if not 1 <= args.digits <= 10_000:
    p.error("--digits must be in 1..10000")
torch.set_num_threads(1)
t0 = time.perf_counter()
test = mnist.load("test")
model = whatwhere.load("saccadic_transformer-retina").eval()  # shipped as saccadic_transformer until 2026-12-07
T0 = float(model.temperature.detach())
learned_saccade = model.saccade


def cells(contrasts, eccentricities):
    for c in contrasts:
        for e in eccentricities:
            cfg = preset("dabane2021", 128).replace(contrast=c, placement="eccentricity", eccentricity=float(e), azimuth=None)
            yield c, e, DisplaySet(test.images, test.labels, cfg, seed=0, shuffle=True)


@torch.no_grad()
def measure(ds, oracle=True):
    n = hit = ok = ok_hit = ok_miss = ok_oracle = 0
    for d in ds.epoch(0, args.batch, limit=args.digits):
        tr = model.forward_trace(d.images)
        last = tr.fixations.gather(1, tr.n_glimpses.view(-1, 1, 1).expand(-1, 1, 2))[:, 0]  # after the last glimpse taken
        h = (last.float() - d.offsets.float()).norm(dim=-1) <= 5.0
        right = tr.logits.argmax(-1) == d.labels
        n += len(right)
        hit += int(h.sum())
        ok += int(right.sum())
        ok_hit += int((right & h).sum())
        ok_miss += int((right & ~h).sum())
        if oracle:  # one glimpse at the digit's true position
            x = d.images if d.images.dim() == 3 else d.images[:, 0]
            g, _ = model.glimpse_at(x, d.offsets.to(x.dtype))
            ok_oracle += int((model.what(g).argmax(-1) == d.labels).sum())
    return {"n": n, "acc": ok / n, "hit": hit / n, "acc_hit": ok_hit / max(hit, 1),
            "acc_miss": ok_miss / max(n - hit, 1), "oracle": ok_oracle / n if oracle else None}


def with_temperature(mult):
    def saccade(self, logits, hidden):  # the shipped model's refine head is zero (never trained: end_to_end false)
        if mult == 0:
            w = torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
        else:
            w = torch.softmax(logits / (T0 * mult), dim=-1)
        return w @ self.targets + self.max_shift * torch.tanh(self.refine(hidden))
    return types.MethodType(saccade, model)


contrasts = (0.7, 0.5, 0.3)
rows = {}
grid = list(cells(contrasts, ECCENTRICITIES))
for c, e, ds in tqdm(grid, desc="limits (shipped rule)"):
    rows[f"{c}/{e:.2f}"] = {"contrast": c, "eccentricity": e, **measure(ds)}
temps = {}
for mult in (1.0, 0.5, 0.25, 0.1, 0.0):
    model.saccade = with_temperature(mult)
    for c, e, ds in cells(contrasts, (31.1111, 40.0)):
        temps[f"{mult}/{c}/{e:.2f}"] = {"mult": mult, "contrast": c, "eccentricity": e, **measure(ds, oracle=False)}
model.saccade = learned_saccade

lines = [
    "# What limits the saccadic transformer: its saccades, not its fovea",
    "",
    f"`python results/saccadic-limits/limits.py --digits {args.digits}` (one thread, torch {torch.__version__}, "
    f"{time.perf_counter() - t0:.0f} s); the shipped `saccadic_transformer` with its shipped rule (up to 6 glimpses, "
    f"stop at 0.95); the benchmark's displays (preset dabane2021, clutter 0.75, seed 0, {args.digits} digits per cell).",
    "",
    "acc: accuracy; hit: last fixation within 5 px of the digit; oracle: the same model's fovea given one glimpse "
    "centred on the digit (a perfect saccade).",
    "",
    "| contrast | eccentricity px | acc | oracle | hit | acc given hit | acc given miss |",
    "|---|---|---|---|---|---|---|",
]
for r in rows.values():
    lines.append(f"| {r['contrast']:g} | {r['eccentricity']:.1f} | {r['acc']:.3f} | {r['oracle']:.3f} | {r['hit']:.3f} "
                 f"| {r['acc_hit']:.3f} | {r['acc_miss']:.3f} |")
lines += ["", f"## The saccade's temperature at test time (learned T = {T0:.3f}; x 0: the argmax cell)", "",
          "| T multiplier | " + " | ".join(f"{c:g}, {e:.0f} px" for c in contrasts for e in (31.1111, 40.0)) + " |",
          "|---|" + "---|" * 6]
for mult in (1.0, 0.5, 0.25, 0.1, 0.0):
    lines.append(f"| {mult:g} | " + " | ".join(f"{temps[f'{mult}/{c}/{e:.2f}']['acc']:.3f}" for c in contrasts
                                                for e in (31.1111, 40.0)) + " |")
args.out.mkdir(parents=True, exist_ok=True)
(args.out / "limits.md").write_text("\n".join(lines) + "\n")
(args.out / "limits.json").write_text(json.dumps({"cells": rows, "temperature": temps, "digits": args.digits}, indent=1))
print("\n".join(lines))
