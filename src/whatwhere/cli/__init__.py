"""The ``whatwhere`` command: every user action is a subcommand (``whatwhere --help``).

The command, and only the command, configures the process: the OpenMP wait policy and thread
count (before torch starts its thread pool) and matplotlib's non-interactive backend.  Library
code never does.
"""

from __future__ import annotations

import argparse
import os
import sys

#: Commands that compute nothing (no need to measure the idle cores).
_NO_COMPUTE = {"cmd_list", "cmd_verify", "cmd_fetch"}

#: The subcommand modules, in the order ``--help`` lists them.
_COMMANDS = ("data", "train", "evaluate", "benchmark", "saccades", "diagnose", "figures", "sweep", "zoo", "demo")


def configure_process(threads: int | None = None, *, start: bool = True) -> None:
    """Process-wide settings of the command (never called by the library).

    ``start=True`` (before torch is imported): ``OMP_WAIT_POLICY=PASSIVE`` unless the user set
    one (:func:`whatwhere.utils.threads.passive_wait_policy`) and ``MPLBACKEND=Agg`` unless set
    (figures are written to files, never shown).

    ``start=False`` (after parsing): the thread count, ``--threads``, else ``$OMP_NUM_THREADS``,
    else the cores idle now: :func:`whatwhere.utils.threads.configure_threads`, the same policy
    as ``whatwhere.configure_threads()`` from Python (its module documents the measurements).
    """
    from whatwhere.utils.threads import configure_threads, passive_wait_policy

    if start:
        passive_wait_policy()
        os.environ.setdefault("MPLBACKEND", "Agg")
        return
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    configure_threads(threads)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    p = argparse.ArgumentParser(
        prog="whatwhere",
        description="Foveated active vision: the What/Where model and spatial transformers on one "
                    "cluttered-MNIST task. Run `whatwhere COMMAND --help` for each command.")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: $OMP_NUM_THREADS, else the cores idle "
                                               "at start)")
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
        if args.func.__name__ not in _NO_COMPUTE:
            configure_process(args.threads, start=False)
        return int(args.func(args) or 0)
    except (ValueError, MNISTError, FileNotFoundError, FileExistsError) as exc:
        print(f"whatwhere: error: {exc}", file=sys.stderr)
        return 2

