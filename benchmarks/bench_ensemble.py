"""Seeds in one process: a vectorised ensemble of K members against K models stepped in turn.

Both train K independently initialised copies of a model on their own displays (batch 100 each,
Adam), display generation included; the sequential baseline steps the K models one after the
other in the same process (what K runs on one device do, minus the process overhead), the
ensemble (``whatwhere.models.ensemble.Ensemble``, ``whatwhere train RECIPE --ensemble K``) does one
vectorised step for all.  Printed: samples/s (summed over members) and the ratio.

    python benchmarks/bench_ensemble.py [--k 3] [--steps 30] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from whatwhere.data import DisplaySet, mnist, preset
from whatwhere.engine.objectives import OBJECTIVES
from whatwhere.models import create_model


def _objective(name, member_objective=None):
    from types import SimpleNamespace

    args = {"member_objective": member_objective} if member_objective else {}
    return OBJECTIVES[name](SimpleNamespace(objective=name, objective_args=args), "cpu")


def bench(member: str, size: int, objective: str, k: int, steps: int, device: str) -> tuple[float, float]:
    train = mnist.load("train")
    cfg = preset("paper", size)
    sets = [DisplaySet(train.images, train.labels, cfg, seed=s, shuffle=True, device=device) for s in range(k)]
    torch.manual_seed(0)
    models = [create_model(member).to(device).train() for _ in range(k)]
    if member == "where":  # one retina serves every sequential model too (as the ensemble's shared stem)
        for m in models[1:]:
            m.retina = models[0].retina
    opts = [torch.optim.Adam(m.parameters(), lr=1e-4) for m in models]
    obj = _objective(objective)

    def seq_step(i):
        for m, o, ds in zip(models, opts, sets):
            d = ds.batch((i * 100) % 59000, (i * 100) % 59000 + 100)
            loss, _ = obj(m, d)
            o.zero_grad()
            loss.backward()
            o.step()

    ens = create_model("ensemble", member=member, n=k).to(device).train()
    eopt = torch.optim.Adam(ens.parameters(), lr=1e-4)
    eobj = _objective("ensemble", objective)
    big = DisplaySet(train.images, train.labels, cfg, seed=99, shuffle=True, device=device)

    def ens_step(i):
        d = big.batch((i * 100 * k) % 59000, (i * 100 * k) % 59000 + 100 * k)
        loss, _ = eobj(ens, d)
        eopt.zero_grad()
        loss.backward()
        eopt.step()

    rates = []
    for step in (seq_step, ens_step):
        for i in range(2):
            step(i)   # warm-up
        t0 = time.perf_counter()
        for i in range(2, 2 + steps):
            step(i)
        if device == "cuda":
            torch.cuda.synchronize()
        rates.append(steps * 100 * k / (time.perf_counter() - t0))
    return rates[0], rates[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", nargs="+", default=["what", "where"], choices=["what", "where", "stn28"])
    a = ap.parse_args()
    print(f"{a.k} members, {a.steps} steps of batch 100 per member, device {a.device}, {torch.get_num_threads()} threads\n")
    print("| model | sequential (samples/s) | ensemble (samples/s) | ratio |")
    print("|---|---|---|---|")
    spec = {"what": (28, "classification"), "stn28": (28, "classification"), "where": (128, "where")}
    for m in a.models:
        size, objective = spec[m]
        seq, ens = bench(m, size, objective, a.k, a.steps, a.device)
        print(f"| {m} | {seq:,.0f} | {ens:,.0f} | {ens / seq:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
