"""Peak resident memory (RSS) of the ``whatwhere`` commands: the unified benchmark and each recipe's training.

Each command runs in a child process; its peak RSS is the kernel's ``ru_maxrss`` of that child
(``os.wait4``), so nothing is sampled and nothing is missed.  Workloads:

* ``baseline``: ``import torch, whatwhere.eval.benchmark`` and nothing else (the floor);
* ``benchmark``: ``whatwhere benchmark`` over every shipped model, as
  ``scripts/benchmark_all.sh`` runs it (the transformers, the saccadic transformer and the
  What/Where agent with one Where net per contrast, restricted to the names ``whatwhere zoo list``
  has, ``--what what``, preset ``dabane2021``, the report and figure written), at each
  ``--digits`` per cell: the benchmark streams, so the peak should not grow with the digits;
* ``train``: each packaged recipe (``whatwhere train --list``) for a few batches: the full recipe
  (or ``--profile``: model, objective, initialisation, batch size, precision) with
  ``train_limit`` 300 (three batches of 100), one stage of one epoch on the recipe's own display
  (``stages=[{epochs: 1}]``: later stages change the display parameters, not the sizes) and
  ``eval_digits`` 1000.  The peak is reached in the first batches and the first evaluation,
  which runs in batches of 1,000 displays whatever ``eval_digits`` is (so 1,000 gives the
  evaluation's full peak; 10,000 would only take longer).

    python benchmarks/bench_memory.py [--threads 1] [--digits 100 1000] [--recipes what where-c0.7 ...]
                                      [--no-benchmark] [--no-train] [--profile quick]

Prints a Markdown table (MiB = 2^20 bytes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = "import sys; from whatwhere.cli import main; sys.exit(main(sys.argv[1:]))"
#: scripts/benchmark_all.sh's MODELS and WHERE
MODELS = ("stn128", "atn", "polo_atn", "polo_atn85", "conv_polo_atn", "saccadic_transformer",
          "where-c0.7", "where-c0.5-ft", "where-c0.3-ft")


def _env(threads: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def peak_rss(argv: list[str], threads: int, log: Path) -> tuple[float, float, int]:
    """(peak RSS in MiB, wall seconds, exit status) of ``argv`` run as a child process."""
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=_env(threads), cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - t0, proc.returncode  # ru_maxrss: KiB on Linux


def ww(*args: str, threads: int) -> list[str]:
    return [sys.executable, "-c", CLI, "--threads", str(threads), *args]


def shipped(threads: int) -> list[str]:
    out = subprocess.run(ww("zoo", "list", threads=threads), env=_env(threads), cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return [ln.split()[0] for ln in out.splitlines()[1:] if ln.strip()]


def recipes(threads: int) -> list[str]:
    out = subprocess.run(ww("train", "--list", threads=threads), env=_env(threads), cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln and not ln[0].isspace()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads of each command (default 1)")
    p.add_argument("--digits", type=int, nargs="+", default=[100, 1000], help="benchmark digits per cell")
    p.add_argument("--recipes", nargs="+", help="recipes to train (default: every packaged one)")
    p.add_argument("--profile", help="train each recipe under this profile (where it has one)")
    p.add_argument("--train-limit", type=int, default=300)
    p.add_argument("--eval-digits", type=int, default=1000)
    p.add_argument("--no-benchmark", action="store_true")
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--keep", help="keep the outputs and logs in this directory (default: a temporary one)")
    args = p.parse_args()

    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_memory-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, float, float, int]] = []

    def measure(name: str, argv: list[str], shown: str) -> None:
        mib, wall, rc = peak_rss(argv, args.threads, work / f"{name}.log")
        rows.append((name, shown, mib, wall, rc))
        print(f"{name}: {mib:,.0f} MiB, {wall:.0f} s, exit {rc}", file=sys.stderr, flush=True)

    measure("baseline", [sys.executable, "-c", "import torch, whatwhere.eval.benchmark"],
            "python -c 'import torch, whatwhere.eval.benchmark'")
    if not args.no_benchmark:
        zoo = set(shipped(args.threads))
        models = [m for m in MODELS if m in zoo]
        for n in args.digits:
            cmd = ["benchmark", *models, "--what", "what", "--digits", str(n), "--preset", "dabane2021",
                   "--out", str(work / f"benchmark-{n}"), "--no-progress"]
            measure(f"benchmark, {n} digits", ww(*cmd, threads=args.threads), "whatwhere " + " ".join(cmd[:-3] + cmd[-1:]))
    if not args.no_train:
        for r in args.recipes or recipes(args.threads):
            cmd = ["train", r, "--out", str(work / f"train-{r}"), "--no-progress", "--set", f"train_limit={args.train_limit}",
                   "--set", "stages=[{epochs: 1}]", "--set", f"eval_digits={args.eval_digits}"]
            if args.profile:
                cmd += ["--profile", args.profile]
            measure(f"train {r}", ww(*cmd, threads=args.threads), "whatwhere " + " ".join(cmd[:2] + cmd[4:]).replace("stages=[{epochs: 1}]", "'stages=[{epochs: 1}]'"))

    import platform

    import torch

    print(f"\nPeak RSS, `--threads {args.threads}`, {platform.machine()} ({os.cpu_count()} cores), torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d')}.\n")
    print("| workload | peak RSS (MiB) | wall (s) | command |")
    print("|---|---:|---:|---|")
    for name, shown, mib, wall, rc in rows:
        flag = "" if rc == 0 else f" (exit {rc}, see {work / (name + '.log')})"
        print(f"| {name}{flag} | {mib:,.0f} | {wall:,.0f} | `{shown}` |")
    return 0 if all(r[4] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
