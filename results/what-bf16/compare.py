"""bf16 against fp32 on the What recipe: the learning curves at every stage end and the final central /
general accuracy, the bf16 run beside the three fp32 seeds of `whatwhere sweep what --seeds 3`
(results/what-seeds).  The bf16 run has seed 2021, so its displays, order and initialisation are
those of the fp32 seed-2021 run: only the precision differs.

    python results/what-bf16/compare.py > results/what-bf16/compare.md
"""

import csv
import json
from pathlib import Path

here = Path(__file__).resolve().parent
seeds = here.parent / "what-seeds"
runs = {f"fp32 seed {s}": seeds / f"seed{s}" for s in (2019, 2020, 2021)} | {"bf16 seed 2021": here}


def curve(path: Path) -> dict[int, float]:
    with open(path / "metrics.csv") as fh:
        return {int(r["epoch"]): float(r["test_acc"]) for r in csv.DictReader(fh)}


curves = {k: curve(p) for k, p in runs.items()}
central = {k: json.loads((p / "central.json").read_text()) for k, p in runs.items()}
names = list(runs)
print("Test accuracy at the end of each σ stage (10,000 test displays of that stage):\n")
print("| epoch | σ | " + " | ".join(names) + " | bf16 − fp32 (seed 2021) | fp32 seeds' range |")
print("|---|---|" + "---|" * (len(names) + 2))
inside = 0
for e in range(5, 81, 5):
    vals = [curves[k][e] for k in names]
    fp = vals[:3]
    ok = min(fp) - 0.01 <= vals[3] <= max(fp) + 0.01
    inside += ok
    print(f"| {e} | {e // 5 - 1} | " + " | ".join(f"{v:.3f}" for v in vals)
          + f" | {vals[3] - vals[2]:+.3f} | {min(fp):.3f}–{max(fp):.3f}{'' if ok else ' (outside)'} |")
print(f"\nbf16 within the fp32 seeds' range ±1 point at {inside} of 16 stage ends.\n")
print("| run | central (10,000 digits) | general (σ 15) |")
print("|---|---|---|")
for k in names:
    c = central[k]
    print(f"| {k} | {c['central']:.3f} | {c['general']:.3f} |")
fp = [central[k]["central"] for k in names[:3]]
m = sum(fp) / 3
sd = (sum((x - m) ** 2 for x in fp) / 2) ** 0.5
print(f"\nfp32 seeds: central {m:.3f} ± {sd:.3f} (sd); bf16: {central[names[3]]['central']:.3f} "
      f"({(central[names[3]]['central'] - m) / sd:+.1f} sd from the fp32 mean).")
