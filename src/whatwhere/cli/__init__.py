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
_NO_COMPUTE = {"cmd_list", "cmd_verify", "cmd_fetch", "cmd_report", "cmd_convert"}

#: The subcommand modules, in the order ``--help`` lists them.
_COMMANDS = (
    "data",
    "train",
    "evaluate",
    "benchmark",
    "saccades",
    "diagnose",
    "figures",
    "sweep",
    "reproduce",
    "report",
    "zoo",
    "demo",
)


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


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, ``whatwhere: error: ...`` (exit status 2), like
    every other refusal of the command; ``--help`` shows the usage."""

    def error(self, message: str):
        cmd = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(2, f"whatwhere: error: {cmd}{_one_line(message)} (see `{self.prog} --help`)\n")


def _one_line(text: str) -> str:
    """``text`` with its lines joined: every message of the command is one line."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _crash_report(exc: BaseException, argv: list[str]) -> str:
    """Write the traceback of an unexpected error to the crash folder of the cache; the path (or
    why it could not be written)."""
    import time
    import traceback

    from whatwhere.utils.cache import cache_dir
    from whatwhere.utils.provenance import command_line

    try:
        import whatwhere

        version = getattr(whatwhere, "__version__", "?")
        folder = cache_dir("crash")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.txt"
        path.write_text(
            f"command: {command_line(argv)}\nwhatwhere {version}, Python {sys.version.split()[0]}, "
            f"{sys.platform}\n\n" + "".join(traceback.format_exception(exc)),
            encoding="utf-8",
        )
        return f"full traceback in {path}"
    except Exception as write_exc:  # noqa: BLE001 - the report must not hide the original error
        return f"the traceback could not be saved: {type(write_exc).__name__}: {write_exc}"


def build_parser() -> argparse.ArgumentParser:
    import importlib

    p = _Parser(
        prog="whatwhere",
        description="Foveated active vision: the What/Where model and spatial transformers on one "
        "cluttered-MNIST task. Run `whatwhere COMMAND --help` for each command.",
    )
    p.add_argument(
        "--threads", type=int, help="torch CPU threads (default: $OMP_NUM_THREADS, else the cores idle at start)"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"whatwhere.cli.{name}").add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``whatwhere`` console script; returns the exit status.

    No Python traceback reaches the user:

    * bad input (a ``ValueError`` such as :class:`whatwhere.utils.errors.UserError`, an MNIST
      error, a missing or unreadable file): one line ``whatwhere: error: ...``, exit status 2;
      a usage error (unknown option, a value of the wrong type) says the same from argparse,
      which exits (``SystemExit``) with status 2, as ``--help`` exits with 0;
    * Ctrl-C: one line, exit status 130;
    * anything else is a bug: one line ``whatwhere: internal error: ...`` naming the file that
      holds the traceback (``$XDG_CACHE_HOME/whatwhere/crash/``), exit status 1.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_process()
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv  # recorded in result files exactly as typed
        from whatwhere.data.mnist import MNISTError

        try:
            if args.func.__name__ not in _NO_COMPUTE:
                configure_process(args.threads, start=False)
            return int(args.func(args) or 0)
        except (ValueError, MNISTError, OSError) as exc:
            msg = _one_line(str(exc)) or type(exc).__name__
            print(f"whatwhere: error: {msg}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("whatwhere: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, the traceback in a file
        where = _crash_report(exc, argv)
        print(f"whatwhere: internal error: {type(exc).__name__}: {_one_line(str(exc))} ({where})", file=sys.stderr)
        return 1
