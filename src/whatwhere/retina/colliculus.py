"""The 240-cell "collicular" map: full-field maps <-> log-polar cells, saccade targets, Where target.

Cell ``k = azimuth * n_rings + ring`` has the kernel

    C[k] = sum over orientations o and phases p of bank[o, azimuth, ring, p]^2,  normalised to sum 1

(the local quadrature energy of the retina filters; roughly isotropic blobs, not Gaussians,
as in the original WhereIsMyMNIST code).  ``pool`` takes kernel-weighted means, ``C @ map``; ``unpool`` goes back with
the pseudo-inverse ``C+`` (well conditioned: condition number about 540) or with the normalised
transpose.  The kernels are built on the circular FFT grid, so the outer-ring ones wrap around the
display border, as in the original.

**Saccade targets.**  The saccade to cell ``k`` moves the fovea to the argmax pixel of
``C[k]`` (the original's default) or of ``C+ e_k`` (the paper's description); offsets ``(di, dj)``
from the display centre, 2 to 55 px for the published grid (the agent clips them).

**Where target** (the paper's Where training target).  The What network's accuracy map ``A`` (``(2h+1)^2``,
element ``[di + h, dj + h]`` = accuracy when the digit sits at ``(di, dj)`` from the fovea
centre; h = 27) is laid on the full field around the digit at offset ``d``, baseline 0.1
elsewhere, and pooled.  With the fovea moved to pixel offset ``t`` the digit sits at ``d - t``
from it, so the field at ``t`` is ``A[d - t]`` (default).  The original wrote ``A[t - d]``
instead, the point reflection (a defect of the original code; ``reflect=True`` reproduces it).
"""

from __future__ import annotations

import torch
from torch import nn

from whatwhere.retina.loggabor import Retina, RetinaConfig, loggabor_bank

__all__ = ["Colliculus", "accuracy_field", "where_target"]


def _as_batch(x: torch.Tensor, tail: tuple[int, ...], name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point torch.Tensor")
    if x.ndim == len(tail):
        x = x[None]
    if x.ndim != len(tail) + 1 or tuple(x.shape[1:]) != tail:
        raise ValueError(f"{name} must have shape (B, {', '.join(map(str, tail))}), got {tuple(x.shape)}")
    return x


def _check_offsets(offsets: torch.Tensor) -> torch.Tensor:
    if not isinstance(offsets, torch.Tensor):
        offsets = torch.as_tensor(offsets)
    if offsets.ndim == 1:
        offsets = offsets[None]
    if offsets.ndim != 2 or offsets.shape[1] != 2:
        raise ValueError(f"digit offsets must have shape (B, 2), got {tuple(offsets.shape)}")
    if offsets.is_floating_point():
        if not torch.equal(offsets, offsets.round()):
            raise ValueError("digit offsets must be whole pixels")
    return offsets.long()


def accuracy_field(
    accuracy_map: torch.Tensor, offsets: torch.Tensor, N: int = 128, *, baseline: float = 0.1, reflect: bool = False
) -> torch.Tensor:
    """The What accuracy map laid on the full field around each digit (before pooling).

    Pixel at offset ``t`` from the centre ``(N//2, N//2)`` gets ``A[d - t + h]`` (``A[t - d + h]``
    with ``reflect``) when that index is inside the map, else ``baseline``.

    Args:
        accuracy_map: ``(M, M)`` float, ``M = 2h + 1`` odd (55 for the What map).
        offsets: ``(B, 2)`` or ``(2,)`` integer digit offsets ``(di, dj)``.
        N: display side.
        baseline: value outside the map (0.1 in the original).
        reflect: the original's point-reflected placement (bug B8).
    Returns:
        ``(B, N, N)`` float32 on the map's device.
    """
    if (
        not isinstance(accuracy_map, torch.Tensor)
        or accuracy_map.ndim != 2
        or accuracy_map.shape[0] != accuracy_map.shape[1]
        or accuracy_map.shape[0] % 2 == 0
    ):
        raise ValueError(
            f"accuracy_map must be a square (M, M) tensor with M odd, got {getattr(accuracy_map, 'shape', None)}"
        )
    M = accuracy_map.shape[0]
    h = M // 2
    d = _check_offsets(offsets).to(accuracy_map.device)
    t = torch.arange(N, device=d.device) - N // 2  # (N,)
    s = (t[None, :, None] - d[:, None, :]) if reflect else (d[:, None, :] - t[None, :, None])  # (B, N, 2)
    inside = s.abs() <= h
    idx = (s + h).clamp(0, M - 1)
    field = accuracy_map.float()[idx[:, :, None, 0], idx[:, None, :, 1]]  # (B, N, N)
    ok = inside[:, :, None, 0] & inside[:, None, :, 1]
    return torch.where(ok, field, torch.full_like(field, float(baseline)))


class Colliculus(nn.Module):
    """The collicular transform of a retina (240 cells for the published one).

    An ``nn.Module`` whose kernels are a non-persistent buffer (no parameters, nothing in a
    ``state_dict``; moves with ``.to(device)``).

    Args:
        retina: the retina whose filters define the kernels (or ``None``: build the bank of
            ``config``).
        config: used when ``retina`` is ``None``.
        device: where the kernels are built (defaults to the retina's device).

    Attributes:
        kernels: ``(n_cells, N*N)`` float32, rows sum to 1, cell ``azimuth * n_rings + ring``.
    """

    kernels: torch.Tensor

    def __init__(
        self,
        retina: Retina | None = None,
        *,
        config: RetinaConfig | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        if retina is not None:
            self.config = retina.config
            bank = retina.bank
        else:
            self.config = config or RetinaConfig()
            bank = loggabor_bank(self.config, device=device)
        nT, nA, nE, nP = self.config.code_shape
        energy = (bank.double().view(nT, nA, nE, nP, -1) ** 2).sum(dim=(0, 3)).reshape(nA * nE, -1)
        kernels = (energy / energy.sum(1, keepdim=True)).float()
        self.register_buffer("kernels", kernels if device is None else kernels.to(device), persistent=False)
        self._pinv: torch.Tensor | None = None  # (n_cells, N*N), i.e. C+ transposed

    def _apply(self, fn, recurse: bool = True):
        self._pinv = None  # rebuilt on the new device on first use
        return super()._apply(fn, recurse)

    def extra_repr(self) -> str:
        return f"n_cells={self.n_cells}, N={self.N}"

    @property
    def N(self) -> int:
        """Display side in pixels."""
        return self.config.N

    @property
    def n_cells(self) -> int:
        """Number of cells (``n_azimuths * n_rings``)."""
        return self.config.grid.n_cells

    def pseudo_inverse(self) -> torch.Tensor:
        """``C+`` transposed, ``(n_cells, N*N)`` float32 (float64 SVD, no cut-off needed)."""
        if self._pinv is None:
            self._pinv = torch.linalg.pinv(self.kernels.double()).T.float().contiguous()
        return self._pinv

    def pool(self, maps: torch.Tensor) -> torch.Tensor:
        """Kernel-weighted means of full-field maps.

        Args:
            maps: ``(B, N, N)`` or ``(N, N)`` float.
        Returns:
            ``(B, n_cells)`` float32.
        """
        x = _as_batch(maps, (self.N, self.N), "maps")
        return x.reshape(x.shape[0], -1).float() @ self.kernels.to(x.device).T

    def unpool(self, cells: torch.Tensor, *, method: str = "pinv") -> torch.Tensor:
        """Full-field maps from cell values.

        ``"pinv"``: the least-squares map ``C+ a`` (can be negative, smooth); ``"transpose"``:
        ``C^T a / C^T 1``, at each pixel the kernel-weighted average of the cell values.

        Args:
            cells: ``(B, n_cells)`` or ``(n_cells,)`` float.
        Returns:
            ``(B, N, N)`` float32.
        """
        a = _as_batch(cells, (self.n_cells,), "cells").float()
        if method == "pinv":
            out = a @ self.pseudo_inverse().to(a.device)
        elif method == "transpose":
            C = self.kernels.to(a.device)
            out = (a @ C) / C.sum(0).clamp_min(torch.finfo(torch.float32).tiny)
        else:
            raise ValueError(f"method must be 'pinv' or 'transpose', got {method!r}")
        return out.view(-1, self.N, self.N)

    def saccade_targets(self, *, method: str = "kernel") -> torch.Tensor:
        """Where the fovea lands for each cell: offsets ``(di, dj)`` from the display centre.

        ``"kernel"``: argmax pixel of the cell's kernel (the original's choice); ``"pinv"``:
        argmax of the pseudo-inverse image of a one-hot cell vector.  Maxima equal to a relative
        1e-6 (kernels symmetric about an axis or a diagonal: 20 cells, tied to ~1e-7 by float32
        rounding) go to the first pixel in row-major order; the original's float64 rounding broke
        some of these ties the other way (e.g. cell (azimuth 6, ring 6): original (1, 19), here
        (-1, 19)).

        Returns:
            ``(n_cells, 2)`` int64.
        """
        if method == "kernel":
            maps = self.kernels
        elif method == "pinv":
            maps = self.pseudo_inverse()
        else:
            raise ValueError(f"method must be 'kernel' or 'pinv', got {method!r}")
        # Kernels of cells on a symmetry axis or diagonal have two maxima equal up to rounding
        # noise; take the first one in row-major order, deterministically.
        maps = maps.double()
        near_max = maps >= maps.amax(dim=1, keepdim=True) * (1.0 - 1e-6)
        flat = near_max.to(torch.uint8).argmax(dim=1)
        return torch.stack((flat // self.N, flat % self.N), dim=1) - self.N // 2

    def where_target(
        self, accuracy_map: torch.Tensor, offsets: torch.Tensor, *, baseline: float = 0.1, reflect: bool = False
    ) -> torch.Tensor:
        """The Where network's target: :func:`accuracy_field` pooled by the kernels.

        Args:
            accuracy_map: ``(M, M)`` What accuracy map (M = 55), element ``[di + h, dj + h]``.
            offsets: ``(B, 2)`` integer digit offsets ``(di, dj)`` from the display centre.
            baseline: field value away from the digit (0.1 in the original).
            reflect: reproduce the original's point-reflected placement (bug B8).
        Returns:
            ``(B, n_cells)`` float32 in ``[min(A, baseline), max(A, baseline)]``.
        """
        field = accuracy_field(
            accuracy_map.to(self.kernels.device), offsets, self.N, baseline=baseline, reflect=reflect
        )
        return self.pool(field)


class WhereTargets:
    """The Where targets of one colliculus, accuracy map and baseline, each digit offset's computed once.

    A target is a pure function of the digit's whole-pixel offset, and a training run meets the same offsets again
    and again (at most ``(N + 1)^2`` of them), while computing one costs a full-field map and its pooling (16,384 x
    240 multiply-adds for the published colliculus: about 14 % of a Where training step on one CPU core).  So the
    targets are kept in a table of every offset within ``radius`` of the centre per axis, filled as offsets first
    occur; an offset outside it is computed directly.  The values are :meth:`Colliculus.where_target`'s,
    computed by it a few offsets at a time (so to float32 rounding: the pooling sums run in another order, within
    1e-5).

    Args:
        colliculus: the colliculus (its device holds the table: ``(2 radius + 1)^2 x n_cells`` float32, 16 MB at
            N = 128 and the default radius).
        accuracy_map, baseline, reflect: as in :meth:`Colliculus.where_target`.
        radius: the table's reach in pixels per axis (default ``N // 2``: every digit offset of a display; offsets
            seen from a fixation reach up to ``N``).
    """

    def __init__(
        self,
        colliculus: Colliculus,
        accuracy_map: torch.Tensor,
        *,
        baseline: float = 0.1,
        reflect: bool = False,
        radius: int | None = None,
    ) -> None:
        self.colliculus = colliculus
        self.accuracy_map = accuracy_map.to(colliculus.kernels.device)
        self.baseline, self.reflect = float(baseline), bool(reflect)
        self.radius = colliculus.N // 2 if radius is None else int(radius)
        if self.radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        side = 2 * self.radius + 1
        dev = colliculus.kernels.device
        self.table = torch.empty(side * side, colliculus.n_cells, dtype=torch.float32, device=dev)
        self.filled = torch.zeros(side * side, dtype=torch.bool, device=dev)

    def _direct(self, offsets: torch.Tensor) -> torch.Tensor:
        # float32 whatever the caller's autocast (a bf16 training step calls the objective under it)
        with torch.autocast(device_type=self.table.device.type, enabled=False):
            return self.colliculus.where_target(
                self.accuracy_map, offsets, baseline=self.baseline, reflect=self.reflect
            )

    def __call__(self, offsets: torch.Tensor) -> torch.Tensor:
        """``(B, 2)`` integer digit offsets ``(di, dj)`` -> ``(B, n_cells)`` float32 targets."""
        d = _check_offsets(offsets).to(self.table.device)
        r, side = self.radius, 2 * self.radius + 1
        inside = (d.abs() <= r).all(1)
        idx = (d[:, 0].clamp(-r, r) + r) * side + (d[:, 1].clamp(-r, r) + r)
        missing = idx[inside & ~self.filled[idx]].unique()
        if len(missing):
            self.table[missing] = self._direct(torch.stack([missing // side - r, missing % side - r], 1))
            self.filled[missing] = True
        out = self.table[idx]
        if not bool(inside.all()):  # beyond the table: computed directly
            out[~inside] = self._direct(d[~inside])
        return out


def where_target(
    colliculus: Colliculus,
    accuracy_map: torch.Tensor,
    offsets: torch.Tensor,
    *,
    baseline: float = 0.1,
    reflect: bool = False,
) -> torch.Tensor:
    """Functional form of :meth:`Colliculus.where_target`; returns ``(B, n_cells)`` float32."""
    return colliculus.where_target(accuracy_map, offsets, baseline=baseline, reflect=reflect)
