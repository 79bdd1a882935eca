"""Device choice: ``auto`` means CUDA when present, else the CPU."""

from __future__ import annotations

import torch

__all__ = ["pick_device", "free_cores"]


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; any other name is checked.

    Raises:
        ValueError: a CUDA device was asked for on a machine without CUDA.
    """
    if isinstance(name, torch.device):
        dev = name
    elif name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(name)
        except RuntimeError as exc:
            raise ValueError(f"unknown device {name!r} (use auto, cpu or cuda)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name} requested but CUDA is not available on this machine")
    return dev


def free_cores(sample_s: float = 0.25) -> int:
    """How many cores are idle right now (at least 1): the idle share of the CPU time over
    ``sample_s`` seconds (Linux ``/proc/stat``) times the number of cores this process may use;
    elsewhere, that number of cores."""
    import os
    import time

    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1

    def ticks():
        with open("/proc/stat") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    try:
        idle0, total0 = ticks()
        time.sleep(sample_s)
        idle1, total1 = ticks()
    except (OSError, ValueError, IndexError):
        return n
    total_cores = os.cpu_count() or n
    idle = (idle1 - idle0) / max(total1 - total0, 1e-9) * total_cores
    return max(1, min(n, int(idle + 0.5)))
