"""What every result file says about how it was made: command, hardware, commit, seed, time."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

__all__ = ["hardware", "git_commit", "provenance", "command_line", "utc_iso"]


def hardware(device: str | torch.device = "cpu") -> str:
    """A one-line description of the machine that ran the computation."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} (CUDA), torch {torch.__version__}"
    return (
        f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}"
    )


def git_commit(path: str | Path | None = None) -> str | None:
    """The short commit of the checkout this package runs from (``None`` for an installed copy),
    with ``-dirty`` appended when the package's tracked files differ from that commit (as ``git
    describe --dirty``): a record then does not claim code that did not make it.  ``path``: another
    folder of a checkout to describe (default: this package's)."""
    package = Path(path) if path is not None else Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, cwd=package
        )
        commit = out.stdout.strip() or None
        if commit is None or out.returncode != 0:
            return None
        diff = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "."], capture_output=True, timeout=10, cwd=package
        )
        return commit + "-dirty" if diff.returncode == 1 else commit
    except (OSError, subprocess.SubprocessError):
        return None


def command_line(argv: list[str] | None = None, prog: str = "whatwhere") -> str:
    """The command as the user typed it: ``prog`` followed by ``argv`` (default ``sys.argv[1:]``),
    shell-quoted so that it can be pasted back."""
    return shlex.join([prog, *(sys.argv[1:] if argv is None else argv)])


def utc_iso(t: float | None = None) -> str:
    """``t`` (seconds since the epoch; default now) as an ISO-8601 UTC timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def provenance(
    *, model: str, recipe: str, seed: int, device="cpu", wall_time_s: float, command: str | None = None
) -> dict:
    """The fields every result file carries: ``model``, ``recipe``, ``command``, ``hardware``,
    ``wall_time_s``, ``git_commit``, ``seed`` and ``date`` (UTC)."""
    return {
        "model": model,
        "recipe": recipe,
        "command": command or command_line(),
        "hardware": hardware(device),
        "wall_time_s": round(wall_time_s, 2),
        "git_commit": git_commit(),
        "seed": seed,
        "date": utc_iso(),
    }
