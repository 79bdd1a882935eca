"""Device choice: ``auto`` means CUDA when present, else the CPU."""

from __future__ import annotations

import torch

__all__ = ["pick_device"]


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
