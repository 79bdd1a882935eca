"""Throughput on a busy machine: each workload idle, then beside one competing single-thread process.

On a small machine something else is always running.  When one of the cores is taken, the
OpenMP threads of a parallel region wait at every barrier for a sibling that the OS has
descheduled; with the default ("active") wait policy they spin while they wait, and the job can
slow down several-fold.  This benchmark measures, for three workloads

* ``displays``: 128×128 displays per second (``DisplaySet``, CPU);
* ``retina``: 2880-coefficient retina encodings per second (truncated CPU form);
* ``train``: a POLO-ATN training step (displays, code, glimpse, LeNet, SGD) in samples per second,

and five thread settings

* ``default``: torch's defaults (one thread per core, OpenMP's default wait policy);
* ``passive``: ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep instead of spinning);
* ``1 thread``: ``OMP_NUM_THREADS=1``;
* ``free cores``: as many threads as cores were idle when the process started;
* ``whatwhere (free cores + passive)``: both, what the ``whatwhere`` command does,

the throughput with the machine idle, with one competing busy process (a single-thread Python
loop) started before the job, and with the competitor started once the job is running (after it
chose its threads), each in a fresh process (the wait policy is read when the OpenMP runtime
starts).  Ratios are against the default setting's idle throughput: the target is >= 0.5 (at
least half the idle throughput with one competitor).

    python benchmarks/bench_busy.py [--seconds 6]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SETTINGS = {"default": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}, "1 thread": {"OMP_NUM_THREADS": "1"},
            "free cores": {"WW_FREE_CORES": "1"}, "whatwhere (free cores + passive)": {"WW_FREE_CORES": "1", "OMP_WAIT_POLICY": "PASSIVE"}}
WORKLOADS = ("displays", "retina", "train")


def child(workload: str, seconds: float) -> None:
    import torch

    if os.environ.get("WW_FREE_CORES"):  # what the whatwhere command does: threads = idle cores at start
        from whatwhere.utils.device import free_cores

        torch.set_num_threads(free_cores())

    from whatwhere.data import DisplaySet, mnist, preset

    test = mnist.load("test")
    cfg = preset("dabane2021", 128)
    ds = DisplaySet(test.images, test.labels, cfg, seed=0)
    if workload == "displays":
        def step(k):
            return ds.batch((k * 256) % 9000, (k * 256) % 9000 + 256, epoch=k // 30).images.shape[0]
    elif workload == "retina":
        from whatwhere.retina import Retina

        retina = Retina()
        images = ds.batch(0, 512).images

        def step(k):
            return retina.encode(images).shape[0]
    else:
        from whatwhere.engine.objectives import classification
        from whatwhere.models import create_model

        torch.manual_seed(0)
        model = create_model("polo_atn")
        opt = torch.optim.SGD(model.parameters(), lr=0.005)
        objective = classification()

        def step(k):
            d = ds.batch((k * 100) % 9900, (k * 100) % 9900 + 100, epoch=k // 99)
            loss, _ = objective(model, d)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return len(d)

    for k in range(3):  # warm-up
        step(k)
    print("timing", flush=True)
    n, k, t0 = 0, 3, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += step(k)
        k += 1
    print(json.dumps({"rate": n / (time.perf_counter() - t0), "threads": torch.get_num_threads()}))


def measure(workload: str, env: dict, seconds: float, busy: str | None) -> float:
    """Throughput of one child; ``busy``: None (idle), ``"start"`` (the competitor runs before the
    child starts) or ``"late"`` (it starts once the child is timing, after its threads were chosen)."""
    hog = None
    spawn = lambda: subprocess.Popen([sys.executable, "-c", "while True: pass"])  # noqa: E731
    if busy == "start":
        hog = spawn()
        time.sleep(0.5)
    try:
        full = {**os.environ, **env}
        for key in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "WW_FREE_CORES"):
            if key not in env:
                full.pop(key, None)
        child = subprocess.Popen([sys.executable, __file__, "--child", workload, "--seconds", str(seconds)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full)
        if busy == "late":
            line = child.stdout.readline()  # "timing" once the warm-up is done
            assert line.strip() == "timing", line
            hog = spawn()
        out, err = child.communicate()
        if child.returncode:
            raise RuntimeError(err)
        return json.loads(out.strip().splitlines()[-1])["rate"]
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="timed seconds per measurement (default 6)")
    ap.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.seconds)
        return
    print(f"{os.cpu_count()} cores; {a.seconds:g} s per measurement; competitor: one single-thread busy loop\n")
    print("| workload | setting | idle (/s) | busy from the start (/s) | busy / default idle | busy later (/s) | "
          "later / default idle |")
    print("|---|---|---|---|---|---|---|")
    for w in a.workloads:
        base = None
        for name, env in SETTINGS.items():
            idle = measure(w, env, a.seconds, busy=None)
            start = measure(w, env, a.seconds, busy="start")
            late = measure(w, env, a.seconds, busy="late")
            base = base or idle
            print(f"| {w} | {name} | {idle:,.0f} | {start:,.0f} | {start / base:.2f} | {late:,.0f} | {late / base:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
