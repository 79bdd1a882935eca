"""Frequency grids of the unshifted discrete Fourier transform, in cycles per pixel.

One convention for the whole package: ``fi`` varies along the rows (axis -2, the image's ``i``,
downward) and ``fj`` along the columns (axis -1, ``j``, rightward).  With ``half=True`` the grid is
that of ``torch.fft.rfft2`` (``(N, N // 2 + 1)``: the last axis is halved), otherwise that of
``torch.fft.fft2`` (``(N, N)``).
"""

from __future__ import annotations

import torch

__all__ = ["frequency_grid", "radial_frequency"]


def frequency_grid(N: int, *, half: bool, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fi, fj)``: the row and column frequencies, each ``(N, N)`` or ``(N, N // 2 + 1)``."""
    fi = torch.fft.fftfreq(N, dtype=dtype, device=device)
    fj = torch.fft.rfftfreq(N, dtype=dtype, device=device) if half else fi
    return fi[:, None].expand(N, fj.numel()), fj[None, :].expand(N, fj.numel())


def radial_frequency(N: int, *, half: bool, dc: float = 0.0, dtype=torch.float64, device=None) -> torch.Tensor:
    """``f = sqrt(fi^2 + fj^2)`` with the DC term set to ``dc`` (SLIP's filters use 1e-6)."""
    fi, fj = frequency_grid(N, half=half, dtype=dtype, device=device)
    f = torch.sqrt(fi**2 + fj**2)
    f[0, 0] = dc
    return f
