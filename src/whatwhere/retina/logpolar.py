"""Log-polar grid geometry shared by every log-polar code.

Coordinates follow the project convention: row ``i`` grows downward, column ``j`` grows
rightward, the display centre is pixel ``(N // 2, N // 2)``, a position is an offset
``(di, dj)`` from it and the azimuth of an offset is ``atan2(dj, di)`` (0 = straight down).

The grid has ``n_rings`` rings (index ``ring``, inner to outer) and ``n_azimuths`` azimuths
(index ``azimuth``).  Ring ``ring`` sits at eccentricity

    ecc(ring) = ecc_max * rho ** -(n_rings - ring)          (a fraction of the half-diagonal)
    radius(ring) = (sqrt(2) * N / 2) * ecc(ring)             (pixels)

i.e. 2.33, 3.29, 4.63, 6.54, 9.21, 12.99, 18.32, 25.83, 36.42, 51.35 px for the published
10-ring grid at N = 128 (rho = 1.41, ecc_max = 0.8).  The outermost ring is *not* at
``ecc_max``: the exponent runs from ``-n_rings`` to ``-1``.  Azimuth ``a`` of ring ``ring`` is

    psi(a, ring) = 2 pi (a + stagger * (ring mod 2) / 2) / n_azimuths

so odd rings are rotated by half an azimuth step when ``stagger`` is true.  A (azimuth, ring)
cell has the flat index ``azimuth * n_rings + ring`` (the colliculus order).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

__all__ = ["LogPolarGrid"]


@dataclass(frozen=True)
class LogPolarGrid:
    """Geometry of a log-polar grid of ``n_azimuths x n_rings`` cells on an ``N x N`` display.

    Attributes:
        n_rings: number of rings (eccentricities), inner to outer.
        n_azimuths: number of azimuths per ring.
        N: display side in pixels; the centre pixel is ``(N // 2, N // 2)``.
        rho: ratio between successive ring radii.
        ecc_max: eccentricity scale, as a fraction of the half-diagonal ``sqrt(2) N / 2``.
        stagger: rotate odd rings by half an azimuth step.
    """

    n_rings: int = 10
    n_azimuths: int = 24
    N: int = 128
    rho: float = 1.41
    ecc_max: float = 0.8
    stagger: bool = True

    def __post_init__(self) -> None:
        for name in ("n_rings", "n_azimuths", "N"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"LogPolarGrid.{name} must be a positive int, got {value!r}")
        if not self.rho > 1.0:
            raise ValueError(f"LogPolarGrid.rho must be > 1, got {self.rho!r}")
        if not self.ecc_max > 0.0:
            raise ValueError(f"LogPolarGrid.ecc_max must be > 0, got {self.ecc_max!r}")

    @property
    def n_cells(self) -> int:
        """Number of (azimuth, ring) cells, ``n_azimuths * n_rings``."""
        return self.n_azimuths * self.n_rings

    @property
    def centre(self) -> int:
        """Row (= column) index of the display centre pixel, ``N // 2``."""
        return self.N // 2

    def to_dict(self) -> dict:
        """The parameters as a plain dict (for hashing and config files)."""
        return asdict(self)

    def eccentricities(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Ring eccentricities as a fraction of the half-diagonal; shape ``(n_rings,)``."""
        ring = torch.arange(self.n_rings, dtype=dtype)
        return self.ecc_max * torch.pow(torch.tensor(self.rho, dtype=dtype), ring - self.n_rings)

    def ring_radii(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Ring radii in pixels, ``sqrt(2) N / 2 * ecc``; shape ``(n_rings,)``."""
        return math.sqrt(2.0) * self.N / 2.0 * self.eccentricities(dtype)

    def azimuths(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Azimuth ``psi`` (radians, 0 = down, pi/2 = right) of every cell; ``(n_azimuths, n_rings)``."""
        a = torch.arange(self.n_azimuths, dtype=dtype)[:, None]
        ring = torch.arange(self.n_rings)[None, :]
        half = 0.5 * (ring % 2).to(dtype) if self.stagger else torch.zeros(1, self.n_rings, dtype=dtype)
        return 2.0 * math.pi * (a + half) / self.n_azimuths

    def positions(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Offsets ``(di, dj)`` in pixels of every cell centre; shape ``(n_azimuths, n_rings, 2)``.

        ``di = radius * cos(psi)`` (down), ``dj = radius * sin(psi)`` (right); add
        :attr:`centre` to get array indices (fractional in general).
        """
        psi = self.azimuths(dtype)
        r = self.ring_radii(dtype)[None, :]
        return torch.stack((r * torch.cos(psi), r * torch.sin(psi)), dim=-1)

    def cell_index(self, azimuth: int, ring: int) -> int:
        """Flat cell index ``azimuth * n_rings + ring`` (raises ValueError when out of range)."""
        if not (0 <= azimuth < self.n_azimuths and 0 <= ring < self.n_rings):
            raise ValueError(f"cell (azimuth={azimuth}, ring={ring}) outside a {self.n_azimuths} x {self.n_rings} grid")
        return azimuth * self.n_rings + ring
