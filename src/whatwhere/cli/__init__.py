"""The ``whatwhere`` command: every user action is a subcommand (``whatwhere --help``).

The command, and only the command, configures the process: the OpenMP wait policy and thread
count (before torch starts its thread pool) and matplotlib's non-interactive backend.  Library
code never does.
"""

from __future__ import annotations

import argparse
import os
import sys

#: The subcommand modules, in the order ``--help`` lists them.
_COMMANDS = ("data", "train", "evaluate", "benchmark", "saccades", "diagnose", "figures", "zoo", "demo")


def configure_process(threads: int | None = None) -> None:
    """Process-wide settings of the command (never called by the library).

    * ``OMP_WAIT_POLICY=PASSIVE`` unless the user set one: OpenMP threads then sleep at barriers
      instead of spinning, so a busy machine (another process on a core) does not make the
      threads of one parallel region wait for a descheduled sibling (``benchmarks/bench_busy.py``
      measures it).  Effective only before torch is first imported.
    * ``threads``: ``torch.set_num_threads``.
    * ``MPLBACKEND=Agg`` unless set: figures are written to files, never shown.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("MPLBACKEND", "Agg")
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    p = argparse.ArgumentParser(
        prog="whatwhere",
        description="Foveated active vision: the What/Where model and spatial transformers on one "
                    "cluttered-MNIST task. Run `whatwhere COMMAND --help` for each command.")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice, one per core)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"whatwhere.cli.{name}").add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``whatwhere`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_process()
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded in result files exactly as typed
    from whatwhere.data.mnist import MNISTError

    try:
        configure_process(args.threads)
        return int(args.func(args) or 0)
    except (ValueError, MNISTError, FileNotFoundError, FileExistsError) as exc:
        print(f"whatwhere: error: {exc}", file=sys.stderr)
        return 2

