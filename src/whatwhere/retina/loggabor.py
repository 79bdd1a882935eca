"""The 2880-coefficient log-polar log-Gabor retina, its whitening and its regularised inverse.

**Filters** (one per orientation ``o``, azimuth ``a``, ring ``e``, phase ``p``; defaults
6 x 24 x 10 x 2).  On the unshifted FFT grid (``fx`` along rows, ``fy`` along columns, cycles
per pixel, ``f = |(fx, fy)|`` with ``f(0) := 1e-6``, ``phi = atan2(fy, fx)``):

    G(f) = (1/f) exp(-ln^2(f / sf_0(e)) / (2 B_sf^2))          radial log-normal band
           * exp(cos(phi - theta) / B_theta^2)                  one von Mises lobe
           * exp(-2 pi i (u fx + v fy))                         centre (u, v), in pixels
           * M(f)                                               SLIP "retina" pre-filter
    M(f) = (1 - exp((f - 1/2) / (df/2))) [f < 1/2] (1 - exp(-f^2 / (2 (sigma/N)^2)))
    g    = Re(IFFT2(G e^{-i phase(p)}))  then  g <- g - median(g);  g <- g / max|g|

with ``(u, v) = (N/2, N/2) + radius(e) (cos psi, sin psi)`` (see :mod:`.logpolar`),
``theta = o pi / n_orientations + psi`` (orientation relative to the radial direction),
``sf_0(e) = min(sf_0_ref / (2 ecc(e)), sf_0_max)``, ``phase(p) = p pi / 2`` (phase 0 = even =
real part, pi/2 = odd = imaginary part).  The median is numpy's (mean of the two middle values).
The median subtraction is *not* DC-neutral: the ring-9 filters keep a pixel sum of about 59
(a "DC leak"), so adding a constant to an image moves their coefficients.

**Code order.**  The 2880-vector is the C-order flattening of ``(orientation, azimuth, ring,
phase)``: index ``((o * n_azimuths + a) * n_rings + e) * n_phases + p``, as in the original, so
that summing squared filters over ``o`` and ``p`` gives the 240 colliculus cells in
``a * n_rings + e`` order.

**Whitening** (SLIP's Olshausen filter): ``K(f) = f^alpha exp(-(f/f_0)^s)``
normalised to mean 1 over the full N x N Fourier grid (K(0) ~ 5e-8).  ``whiten(x) =
IFFT2(FFT2(x) K)``.  The original fed the Where network ``clip(whiten(x) + 0.5, 0, 1)`` during
training but re-encoded plain ``whiten(x)`` in the closed loop; here both are available through
``offset_clip`` (default True: the training input, everywhere).

**Fast CPU encoding.**  The bank is dense (2880 x 16384) but each ring is either spatially
compact (inner rings) or band-limited (outer rings), and azimuth ``a + 12`` is the point
reflection of azimuth ``a``.  :class:`TruncatedBank` keeps, per ring, a centred square of pixels
(plus one "far-field constant" weight on the image sum, which keeps the median offset exact) or
a disc of low Fourier frequencies, whichever is cheaper for a given error, and uses the point
symmetry to halve the work (even/odd parts): 9.1 M instead of 47.2 M multiply-adds per image.
Its relative error per ring is at most ``tol`` (2e-4) for inputs with natural-image spectra;
``benchmarks/bench_retina.py`` checks it on displays (about 2e-4 overall, <= 7e-4 on the worst
ring).  ``method="dense"`` is the exact float32 matmul (the default on CUDA).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from whatwhere.retina.logpolar import LogPolarGrid
from whatwhere.utils.cache import cache_dir
from whatwhere.utils.fourier import frequency_grid, radial_frequency
from whatwhere.utils.io import atomic_write

__all__ = ["RetinaConfig", "Retina", "TruncatedBank", "loggabor_bank", "whitening_filter", "PUBLISHED_N"]

PUBLISHED_N = 128  #: display side of the published retina (:meth:`RetinaConfig.for_size` scales from it)


@dataclass(frozen=True)
class RetinaConfig:
    """Every parameter of the log-Gabor retina (defaults = the published one: the original
    WhereIsMyMNIST retina).

    Attributes:
        grid: ring/azimuth geometry (10 rings x 24 azimuths at N = 128).
        n_orientations: orientations per (azimuth, ring), relative to the radial direction.
        n_phases: phases ``p pi / 2`` (1 = even only, 2 = even and odd).
        sf_0_ref: peak frequency scale, ``sf_0 = min(sf_0_ref / (2 ecc), sf_0_max)`` cycles/px.
        sf_0_max: cap on the peak frequency.
        B_sf: radial bandwidth (standard deviation of ln f).
        B_theta: orientation bandwidth; ``None`` means ``pi / (2 n_orientations)``.
        prefilter_df, prefilter_sigma: SLIP "retina" pre-filter M(f) (transition width at
            Nyquist, high-pass length in pixels).
        white_alpha, white_f_0, white_steepness: whitening ``K(f) = f^alpha exp(-(f/f_0)^s)``.
    """

    grid: LogPolarGrid = field(default_factory=LogPolarGrid)
    n_orientations: int = 6
    n_phases: int = 2
    sf_0_ref: float = 0.03
    sf_0_max: float = 0.45
    B_sf: float = 0.4
    B_theta: float | None = None
    prefilter_df: float = 0.07
    prefilter_sigma: float = 0.5
    white_alpha: float = 1.4
    white_f_0: float = 0.4
    white_steepness: float = 4.0

    def __post_init__(self) -> None:
        if not isinstance(self.grid, LogPolarGrid):
            raise ValueError(f"RetinaConfig.grid must be a LogPolarGrid, got {type(self.grid).__name__}")
        if not isinstance(self.n_orientations, int) or self.n_orientations < 1:
            raise ValueError(f"RetinaConfig.n_orientations must be a positive int, got {self.n_orientations!r}")
        if self.n_phases not in (1, 2):
            raise ValueError(f"RetinaConfig.n_phases must be 1 or 2, got {self.n_phases!r}")
        for name in ("sf_0_ref", "sf_0_max", "B_sf", "prefilter_df", "prefilter_sigma", "white_f_0"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RetinaConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.B_theta is not None and not self.B_theta > 0:
            raise ValueError(f"RetinaConfig.B_theta must be > 0 or None, got {self.B_theta!r}")

    @classmethod
    def for_size(cls, size: int, **grid_changes) -> RetinaConfig:
        """The published retina scaled to an ``size x size`` display (exactly ``RetinaConfig()`` at 128).

        **How the grid scales with N.**  The same 10 rings x 24 azimuths (so the same 2880 codes
        and 240 collicular cells, and the same Where architecture) with ``rho = 1.41`` and
        ``ecc_max = 0.8`` of the half-diagonal, so every ring radius scales with N (ring 0 / ring 9
        at 1.09 / 24.1 px for N = 60, 1.82 / 40.1 px for N = 100, 2.33 / 51.3 px for 128), and the
        peak frequencies scale inversely (``sf_0_ref = 0.03 * 128 / N``, still capped at
        ``sf_0_max`` cycles/px): the retina at N is the published one zoomed by N / 128, each
        filter keeping its size relative to its eccentricity.  ``grid_changes`` (e.g.
        ``n_rings``) change the grid.

        Raises:
            ValueError: ``size`` not an even integer >= 32 (the 28-px fovea and the point
                symmetry of the fast encoder), or a grid whose innermost ring would fall within
                half a pixel of the centre (the rings collapse onto the centre pixel).
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 32 or size % 2:
            raise ValueError(f"size (display side, px) must be an even integer >= 32 for the retina, got {size!r}")
        grid = replace(LogPolarGrid(), N=size, **grid_changes)
        r0 = float(grid.ring_radii()[0])
        if r0 < 0.5:
            raise ValueError(
                f"size={size}: the innermost ring of the log-polar grid ({grid.n_rings} rings, "
                f"rho={grid.rho}, ecc_max={grid.ecc_max}) would be {r0:.2f} px from the centre "
                f"(< 0.5 px: the rings collapse); use fewer rings or a larger display"
            )
        if size == PUBLISHED_N:
            return cls(grid=grid)
        return cls(grid=grid, sf_0_ref=cls.sf_0_ref * PUBLISHED_N / size)

    @property
    def N(self) -> int:
        """Display side in pixels."""
        return self.grid.N

    @property
    def b_theta(self) -> float:
        """The orientation bandwidth actually used (``B_theta`` or ``pi / (2 n_orientations)``)."""
        return self.B_theta if self.B_theta is not None else math.pi / (2 * self.n_orientations)

    @property
    def n_codes(self) -> int:
        """Length of the code vector, ``n_orientations * n_azimuths * n_rings * n_phases``."""
        g = self.grid
        return self.n_orientations * g.n_azimuths * g.n_rings * self.n_phases

    @property
    def code_shape(self) -> tuple[int, int, int, int]:
        """``(n_orientations, n_azimuths, n_rings, n_phases)``: the order of the code vector."""
        g = self.grid
        return (self.n_orientations, g.n_azimuths, g.n_rings, self.n_phases)

    def to_dict(self) -> dict:
        """All parameters as a plain (JSON-able) dict."""
        return asdict(self)

    def digest(self) -> str:
        """A stable hex hash of all parameters (used to key on-disk caches)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def code_mirror(self) -> torch.Tensor:
        """Index of the point-reflected filter of every code (azimuth ``a`` <-> ``a + n_azimuths/2``,
        same orientation, ring and phase); shape ``(n_codes,)`` int64.  Needs an even ``n_azimuths``."""
        nT, nA, nE, nP = self.code_shape
        if nA % 2:
            raise ValueError(f"the point symmetry needs an even number of azimuths, got {nA}")
        idx = torch.arange(self.n_codes).view(nT, nA, nE, nP)
        return idx.roll(nA // 2, dims=1).reshape(-1).clone()

    def code_rings(self) -> torch.Tensor:
        """Ring index of every code; shape ``(n_codes,)`` int64."""
        nT, nA, nE, nP = self.code_shape
        ring = torch.arange(nE).view(1, 1, nE, 1).expand(nT, nA, nE, nP)
        return ring.reshape(-1).clone()


# ---------------------------------------------------------------------------- Fourier grids


def _radius(N: int, *, half: bool, device=None) -> torch.Tensor:
    """Radial frequency (cycles/px) with the DC set to 1e-6, SLIP's convention; float64."""
    return radial_frequency(N, half=half, dc=1e-6, device=device)


def whitening_filter(config: RetinaConfig | None = None, *, half: bool = True, device=None) -> torch.Tensor:
    """SLIP/Olshausen whitening filter ``K(f) = f^alpha exp(-(f/f_0)^steepness)``, mean 1.

    The mean is taken over the full ``N x N`` grid (as SLIP does), whatever ``half`` is.

    Returns:
        float64 ``(N, N//2 + 1)`` on the ``rfft2`` grid if ``half`` else ``(N, N)`` on the
        unshifted ``fft2`` grid.
    """
    c = config or RetinaConfig()
    N = c.N

    def K(f):
        return f**c.white_alpha * torch.exp(-((f / c.white_f_0) ** c.white_steepness))

    mean = K(_radius(N, half=False, device=device)).mean()
    return K(_radius(N, half=half, device=device)) / mean


def prefilter(config: RetinaConfig | None = None, *, half: bool = False, device=None) -> torch.Tensor:
    """SLIP's "retina" pre-filter ``M(f)`` (cut above Nyquist, soft high-pass); float64.

    Returns ``(N, N)`` on the unshifted ``fft2`` grid, or ``(N, N//2 + 1)`` if ``half``.
    """
    c = config or RetinaConfig()
    f = _radius(c.N, half=half, device=device)
    high = (1.0 - torch.exp((f - 0.5) / (0.5 * c.prefilter_df))) * (f < 0.5)
    low = 1.0 - torch.exp(-0.5 * f**2 / (c.prefilter_sigma / c.N) ** 2)
    return high * low


# ---------------------------------------------------------------------------- the bank


def _median_last(x: torch.Tensor) -> torch.Tensor:
    """numpy-style median over the last dim (mean of the two middle values for even length)."""
    n = x.shape[-1]
    lo = x.median(dim=-1, keepdim=True).values  # torch returns the lower middle value
    if n % 2:
        return lo
    n_le = (x <= lo).sum(dim=-1, keepdim=True)
    above = torch.where(x > lo, x, torch.full_like(x, float("inf"))).amin(dim=-1, keepdim=True)
    hi = torch.where(n_le > n // 2, lo, above)
    return 0.5 * (lo + hi)


def loggabor_bank(
    config: RetinaConfig | None = None, *, dtype: torch.dtype = torch.float32, device=None
) -> torch.Tensor:
    """Build the spatial log-Gabor filters (see the module docstring for the formulas).

    The filters are built in the Fourier domain, one orientation at a time (all azimuths and
    rings batched), with one complex inverse FFT giving both phases.  About 0.5-1 s on 2 CPU
    cores in float32.

    Returns:
        ``(n_codes, N*N)`` tensor (2880 x 16384 by default), row order
        ``(orientation, azimuth, ring, phase)``, each row a flattened ``N x N`` filter
        (row-major: pixel ``(i, j)`` at ``i * N + j``), median-centred and max-normalised.
    """
    c = config or RetinaConfig()
    g, N = c.grid, c.N
    nT, nA, nE, nP = c.code_shape
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    f = _radius(N, half=False, device=device)
    fx, fy = frequency_grid(N, half=False, device=device)
    phi = torch.atan2(fy, fx)
    sf_0 = torch.clamp(0.5 * c.sf_0_ref / g.eccentricities().to(f.device), max=c.sf_0_max)
    band = torch.exp(-0.5 * torch.log(f / sf_0[:, None, None]) ** 2 / c.B_sf**2) / f
    band = (band * prefilter(c, device=device)).to(dtype)  # (nE, N, N)
    psi = g.azimuths().to(f.device)  # (nA, nE)
    centre = g.positions().to(f.device) + N / 2.0  # (nA, nE, 2)
    freqs = torch.fft.fftfreq(N, dtype=torch.float64, device=f.device)
    shift_i = torch.exp(-2j * math.pi * centre[..., 0, None] * freqs).to(cdtype)  # (nA, nE, N)
    shift_j = torch.exp(-2j * math.pi * centre[..., 1, None] * freqs).to(cdtype)
    cos_phi, sin_phi = torch.cos(phi).to(dtype), torch.sin(phi).to(dtype)
    inv_b2 = 1.0 / c.b_theta**2
    phases = [p * math.pi / 2 for p in range(nP)]

    out = torch.empty(nT, nA, nE, nP, N * N, dtype=dtype, device=f.device)
    for o in range(nT):
        theta = (o * math.pi / nT + psi).to(dtype)[..., None, None]  # (nA, nE, 1, 1)
        # von Mises lobe, divided by its peak exp(1/B^2) (a constant: removed by max-normalising)
        lobe = torch.exp((cos_phi * torch.cos(theta) + sin_phi * torch.sin(theta) - 1.0) * inv_b2)
        G = (lobe * band) * shift_i[..., :, None] * shift_j[..., None, :]
        z = torch.fft.ifft2(G).reshape(nA, nE, N * N)
        filt = torch.stack([math.cos(p) * z.real + math.sin(p) * z.imag for p in phases], dim=2)
        filt = filt - _median_last(filt)
        out[o] = filt / filt.abs().amax(dim=-1, keepdim=True)
    return out.reshape(nT * nA * nE * nP, N * N)


# ---------------------------------------------------------------------------- fast form


def _fourier_weights(N: int, device=None) -> torch.Tensor:
    """Multiplicity of each ``rfft2`` bin in the full spectrum: 1 for columns 0 and N/2, else 2."""
    w = torch.full((N // 2 + 1,), 2.0, dtype=torch.float64, device=device)
    w[0] = 1.0
    if N % 2 == 0:
        w[-1] = 1.0
    return w


class TruncatedBank:
    """``codes = flat_images @ bank.T`` on a truncated support, using the bank's point symmetry.

    **Symmetry.**  The filter at azimuth ``a + n_azimuths/2`` is the point reflection
    ``g'(p) = g(-p)`` of the filter at ``a`` about the centre pixel (exactly: its Fourier
    transform is the complex conjugate).  For such a pair, with ``P = <g, (x + x(-.))/2>`` and
    ``Q = <g, (x - x(-.))/2>``, the codes are ``P + Q`` and ``P - Q``; ``P`` needs only the even
    part of the filter and of the image (half the pixels, or the real parts of the Fourier
    bins) and ``Q`` the odd parts (the imaginary parts), which halves the multiply-adds.

    **Truncation.**  Each group of rows (a ring) is evaluated on the cheaper of

    * **spatial**: the centred square ``|i - N/2|, |j - N/2| <= h`` (h <= N/2 - 1) plus one
      weight on the image sum holding the mean filter value outside the square (the far field
      is approximated by a constant, which keeps the median offset of the filters exact);
    * **Fourier**: the ``rfft2`` bins with ``|f| <= f_c``, by Parseval
      (``<g, x> = sum_bins m Re(conj(G) X) / N^2``, ``m`` the bin multiplicity).

    Pixels are stored ordered by square shells and bins by radius, so every group reads a prefix
    of one gathered input; groups whose prefixes differ by less than 10 % share one GEMM.
    ``h`` / ``f_c`` are the smallest whose relative error over the group,

        e^2 = sum_k sum_{f != 0} |Delta G_k(f)|^2 S(f) / sum_k sum_{f != 0} |G_k(f)|^2 S(f),

    is at most ``tol``, ``S(f)`` being the assumed input power spectrum (DC excluded: both
    forms are exact at DC): ``1 / f^2`` (natural images, clutter) for raw images, ``K^2 / f^2``
    for whitened ones.

    Args:
        bank: ``(F, N*N)`` float filters, rows flattened row-major, N even.
        groups: ``(F,)`` int group (ring) of each row; rows of a group are truncated together.
        mirror: ``(F,)`` int, ``mirror[k]`` = the row that is the point reflection of row ``k``
            (an involution without fixed points; checked).
        spectrum: ``(N, N//2+1)`` assumed input power spectrum on the ``rfft2`` grid.
        tol: relative error bound per group (see above).
    """

    def __init__(
        self, bank: torch.Tensor, groups: torch.Tensor, mirror: torch.Tensor, spectrum: torch.Tensor, tol: float
    ) -> None:
        if not 0 <= tol < 1:
            raise ValueError(f"tol must be in [0, 1), got {tol!r}")
        F, P = bank.shape
        N = math.isqrt(P)
        if N * N != P or N % 2 or groups.shape != (F,) or mirror.shape != (F,) or spectrum.shape != (N, N // 2 + 1):
            raise ValueError(
                "TruncatedBank: bank (F, N*N) with N even, groups (F,), mirror (F,) and spectrum (N, N//2+1) expected"
            )
        dev = bank.device
        groups, mirror = groups.cpu(), mirror.cpu()
        if not torch.equal(mirror[mirror], torch.arange(F)) or (mirror == torch.arange(F)).any():
            raise ValueError("mirror must pair every row with another row")
        self.N, self.tol, self.n_out = N, float(tol), F
        S = spectrum.double().cpu().clone()
        S[0, 0] = 0.0
        mult = _fourier_weights(N)
        c = N // 2

        # pixel offsets, one of each (p, -p) pair ("half"), ordered by square shell
        di, dj = torch.meshgrid(torch.arange(N) - c, torch.arange(N) - c, indexing="ij")
        shell = torch.maximum(di.abs(), dj.abs()).reshape(-1)
        half = ((di > 0) | ((di == 0) & (dj > 0))).reshape(-1) & (shell < c)
        pos = torch.nonzero(half).squeeze(1)
        pos = pos[torch.sort(shell[pos], stable=True).indices]
        neg = ((c - di.reshape(-1)[pos]) % N) * N + (c - dj.reshape(-1)[pos]) % N
        self._shell = shell
        shell_pos = shell[pos]
        # rfft2 bins ordered by radius (the filters carry no energy at f >= 1/2)
        self._bins = torch.sort(_radius(N, half=True).reshape(-1), stable=True).indices
        bin_mult = mult.repeat(N)[self._bins] / N**2

        chosen = []  # (domain, length, lo rows, We, Wo)
        for gid in torch.unique(groups).tolist():
            rows = torch.nonzero((groups == gid) & (torch.arange(F) < mirror)).squeeze(1)
            g = bank[rows].double().cpu().view(-1, N, N)
            G = torch.fft.rfft2(g)
            power = (G.abs() ** 2 * S * mult).sum(0).reshape(-1)[self._bins]
            tail = (power.sum() - torch.cumsum(power, 0)).clamp_min(0) / power.sum()
            ok = torch.nonzero(tail <= tol**2)
            n_bins = int(ok[0]) + 1 if len(ok) else len(power)
            # the smallest square that beats the Fourier cost and meets tol, if any
            h_max = c - 1
            while h_max >= 0 and 2 + 2 * int((shell_pos <= h_max).sum()) > 2 * n_bins:
                h_max -= 1
            h = None
            if h_max >= 0 and self._spatial_error(g, G, S, mult, h_max) <= tol:
                lo, hi = 0, h_max
                while lo < hi:
                    mid = (lo + hi) // 2
                    lo, hi = (lo, mid) if self._spatial_error(g, G, S, mult, mid) <= tol else (mid + 1, hi)
                h = lo
            flat = g.reshape(len(rows), -1)
            if h is not None:
                n = int((shell_pos <= h).sum())
                far = flat[:, shell > h].mean(1, keepdim=True)
                inner = flat - far
                even = 0.5 * (inner[:, pos[:n]] + inner[:, neg[:n]])
                odd = 0.5 * (inner[:, pos[:n]] - inner[:, neg[:n]])
                We = torch.cat([far, inner[:, c * N + c, None], even], 1)
                chosen.append(("spatial", n, rows, We, odd))
            else:
                Gs = G.reshape(len(rows), -1)[:, self._bins[:n_bins]] * bin_mult[:n_bins]
                chosen.append(("fourier", n_bins, rows, Gs.real, Gs.imag))

        # merge groups of a domain whose prefixes are within 10 %; zero-pad their weights
        self.plan = []  # (domain, prefix n, lo rows)
        self._weights = []  # (even (Le, k), odd (Lo, k)) float32
        order_lo, order_hi = [], []
        for dom in ("spatial", "fourier"):
            items = sorted((x for x in chosen if x[0] == dom), key=lambda x: -x[1])
            while items:
                n = items[0][1]
                batch = [x for x in items if x[1] >= 0.9 * n]
                items = [x for x in items if x[1] < 0.9 * n]
                pad = 2 if dom == "spatial" else 0
                We = torch.cat([torch.nn.functional.pad(x[3], (0, n + pad - x[3].shape[1])) for x in batch])
                Wo = torch.cat([torch.nn.functional.pad(x[4], (0, n - x[4].shape[1])) for x in batch])
                rows = torch.cat([x[2] for x in batch])
                self.plan.append((dom, n, rows))
                self._weights.append((We.T.float().contiguous().to(dev), Wo.T.float().contiguous().to(dev)))
                order_lo.append(rows)
                order_hi.append(mirror[rows])
        self._perm = torch.argsort(torch.cat(order_lo + order_hi)).to(dev)
        n_pix = max([n for d, n, _ in self.plan if d == "spatial"], default=0)
        n_bin = max([n for d, n, _ in self.plan if d == "fourier"], default=0)
        self._pos, self._neg = pos[:n_pix].to(dev), neg[:n_pix].to(dev)
        self._centre = c * N + c
        self._re = (2 * self._bins[:n_bin]).to(dev)
        self._im = (2 * self._bins[:n_bin] + 1).to(dev)

    def _spatial_error(self, g, G, S, mult, h) -> float:
        inside = (self._shell <= h).view(g.shape[-2:])
        far = g[:, ~inside].mean(1)[:, None, None]
        D = torch.fft.rfft2(torch.where(inside, g, far) - g)
        return float(((D.abs() ** 2 * S * mult).sum() / (G.abs() ** 2 * S * mult).sum()).sqrt())

    @property
    def macs(self) -> int:
        """Multiply-adds per image in the GEMMs."""
        return sum(w.shape[0] * w.shape[1] for pair in self._weights for w in pair)

    def describe(self) -> str:
        """One entry per GEMM pair: domain, prefix length, rows (pairs)."""
        return "; ".join(f"{d} {n} x {len(r)}" for d, n, r in self.plan)

    def __call__(self, images: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """``(B, N, N)`` float32 -> ``(B, F)`` float32, in chunks of ``chunk`` images (default
        128 on CPU, where that keeps the working set in cache, and the whole batch elsewhere)."""
        B = images.shape[0]
        chunk = chunk or (128 if images.device.type == "cpu" else max(B, 1))
        out = torch.empty(B, self.n_out, dtype=torch.float32, device=images.device)

        def take(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:  # t[:, idx], faster than index_select
            return torch.gather(t, 1, idx.expand(t.shape[0], -1))

        for s in range(0, B, chunk):
            x = images[s : s + chunk]
            b = x.shape[0]
            flat = x.reshape(b, -1)
            inputs = {}
            if len(self._pos):
                xp, xn = take(flat, self._pos), take(flat, self._neg)
                inputs["spatial"] = (
                    torch.cat([flat.sum(1, keepdim=True), flat[:, self._centre, None], xp + xn], 1),
                    xp - xn,
                )
            if len(self._re):
                spec = torch.view_as_real(torch.fft.rfft2(x)).reshape(b, -1)
                inputs["fourier"] = (take(spec, self._re), take(spec, self._im))
            lo, hi = [], []
            for (dom, _, _), (We, Wo) in zip(self.plan, self._weights, strict=True):
                even, odd = inputs[dom]
                p = even[:, : We.shape[0]] @ We
                q = odd[:, : Wo.shape[0]] @ Wo
                lo.append(p + q)
                hi.append(p - q)
            out[s : s + b] = take(torch.cat(lo + hi, 1), self._perm)
        return out


# ---------------------------------------------------------------------------- the retina


def _check_images(images: torch.Tensor, N: int) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or tuple(images.shape[1:]) != (N, N):
        raise ValueError(
            f"images must have shape (B, {N}, {N}), (B, 1, {N}, {N}) or ({N}, {N}), got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor, got {images.dtype}")
    return images.float().contiguous()


METHODS = ("auto", "dense", "truncated", "fp16")
_CACHE_FORMAT = 1  # bump when the cached inverse's definition changes


class Retina(nn.Module):
    """The log-polar log-Gabor retina: whitening, encoding into 2880 codes, reconstruction.

    An ``nn.Module`` whose tensors are non-persistent buffers: it has no parameters, adds nothing
    to a model's ``state_dict`` and moves with ``.to(device)``.  Operators derived from the bank
    (the truncated CPU form, the inverse) are built on first use and dropped when the module
    moves.

    Args:
        config: all filter parameters (:class:`RetinaConfig`, defaults = the published retina).
        offset_clip: encode ``clip(whiten(x) + 0.5, 0, 1)`` (default; the input the published
            Where networks were trained on) or plain ``whiten(x)`` (what the original closed
            loop re-encoded).  Because of the DC leak of the outer rings the two give very
            different ring-7..9 codes.  :meth:`encode` can override it per call.
        method: ``"auto"`` (truncated on CPU, dense on CUDA), ``"dense"`` (exact float32
            matmul), ``"truncated"`` (see :class:`TruncatedBank`) or ``"fp16"`` (the dense
            matmul on half-precision operands with float32 accumulation: tensor cores on a GPU,
            relative error about 5e-4; no global precision flag is touched).
        tol: relative error bound per ring of the truncated form.
        rcond: cut-off of the regularised inverse, relative to the largest singular value of
            the bank (eigenvalues of the Gram matrix below ``rcond**2 * max`` are dropped).
        device: where the buffers are built (the module can be moved afterwards).

    Attributes:
        bank: ``(n_codes, N*N)`` float32 filters, row order (orientation, azimuth, ring, phase).
        whitening: ``(N, N//2+1)`` float32 whitening filter on the ``rfft2`` grid.
    """

    bank: torch.Tensor
    whitening: torch.Tensor

    def __init__(
        self,
        config: RetinaConfig | None = None,
        *,
        offset_clip: bool = True,
        method: str = "auto",
        tol: float = 2e-4,
        rcond: float = 1e-3,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if not 0 < rcond < 1:
            raise ValueError(f"rcond must be in (0, 1), got {rcond!r}")
        if not 0 <= tol < 1:
            raise ValueError(f"tol must be in [0, 1), got {tol!r}")
        self.config = config or RetinaConfig()
        self.offset_clip = bool(offset_clip)
        self.method = method
        self.tol = float(tol)
        self.rcond = float(rcond)
        self.register_buffer("bank", loggabor_bank(self.config, device=device), persistent=False)
        self.register_buffer("whitening", whitening_filter(self.config, device=device).float(), persistent=False)
        self._truncated: TruncatedBank | None = None
        self._half: torch.Tensor | None = None
        self._pinv: torch.Tensor | None = None

    def _apply(self, fn, recurse: bool = True):
        # derived operators are rebuilt for the new device / dtype on first use
        self._truncated = self._half = self._pinv = None
        return super()._apply(fn, recurse)

    def extra_repr(self) -> str:
        return f"n_codes={self.n_codes}, offset_clip={self.offset_clip}, method={self.method!r}"

    @property
    def device(self) -> torch.device:
        """Where the buffers live."""
        return self.bank.device

    @property
    def N(self) -> int:
        """Display side in pixels."""
        return self.config.N

    @property
    def grid(self) -> LogPolarGrid:
        """The log-polar grid."""
        return self.config.grid

    @property
    def n_codes(self) -> int:
        """Length of a code vector (2880 by default)."""
        return self.config.n_codes

    # -- whitening

    def whiten(self, images: torch.Tensor, *, offset_clip: bool | None = None) -> torch.Tensor:
        """Whitened images ``IFFT2(FFT2(x) K)``; with ``offset_clip`` then ``clip(. + 0.5, 0, 1)``.

        Args:
            images: ``(B, N, N)``, ``(B, 1, N, N)`` or ``(N, N)`` float.
            offset_clip: override the retina's setting.
        Returns:
            ``(B, N, N)`` float32.
        """
        x = _check_images(images, self.N)
        clip = self.offset_clip if offset_clip is None else offset_clip
        out = torch.empty_like(x)
        step = 64 if x.device.type == "cpu" else len(x)  # CPU FFTs are 6x faster in cache-sized batches
        for s in range(0, len(x), max(step, 1)):
            w = torch.fft.irfft2(torch.fft.rfft2(x[s : s + step]) * self.whitening, s=(self.N, self.N))
            out[s : s + step] = (w + 0.5).clamp_(0.0, 1.0) if clip else w
        return out

    def dewhiten(self, images: torch.Tensor) -> torch.Tensor:
        """Inverse whitening ``IFFT2(FFT2(x) M / K)`` (SLIP's de-whitening then pre-filter).

        The DC (mean) is set to 0, since ``K(0) ~ 0`` makes it unrecoverable.
        ``(B, N, N)`` -> ``(B, N, N)`` float32.
        """
        x = _check_images(images, self.N)
        inv = prefilter(self.config, half=True, device=x.device) / whitening_filter(self.config, device=x.device)
        inv[0, 0] = 0.0
        return torch.fft.irfft2(torch.fft.rfft2(x) * inv.float(), s=(self.N, self.N))

    # -- encoding

    def _resolve(self, method: str | None, device: torch.device) -> str:
        m = method or self.method
        if m not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {m!r}")
        if m == "auto":
            m = "dense" if device.type == "cuda" else "truncated"
        return m

    def truncated_operator(self) -> TruncatedBank:
        """The :class:`TruncatedBank` used by ``method="truncated"`` (built on first use, < 1 s)."""
        if self._truncated is None:
            K = whitening_filter(self.config, device=self.device)
            S = K**2 / _radius(self.N, half=True, device=self.device) ** 2  # whitened natural images
            self._truncated = TruncatedBank(self.bank, self.config.code_rings(), self.config.code_mirror(), S, self.tol)
        return self._truncated

    def encode(
        self, images: torch.Tensor, *, offset_clip: bool | None = None, method: str | None = None
    ) -> torch.Tensor:
        """Retina codes of full-field images: the bank applied to ``whiten(images)``.

        Args:
            images: ``(B, N, N)``, ``(B, 1, N, N)`` or ``(N, N)`` float on the retina's device
                (values in [0, 1] for displays; any real values are accepted).
            offset_clip: override the retina's encoding (module docstring).
            method: override the retina's ``method``.
        Returns:
            ``(B, n_codes)`` float32; code ``((o * n_az + a) * n_rings + e) * n_phases + p``.
        """
        x = _check_images(images, self.N)
        if x.device != self.bank.device:
            raise ValueError(f"images are on {x.device} but the retina is on {self.bank.device}")
        w = self.whiten(x, offset_clip=offset_clip)
        m = self._resolve(method, x.device)
        flat = w.reshape(w.shape[0], -1)
        if m == "dense":
            return flat @ self.bank.T
        if m == "fp16":
            if self._half is None:
                self._half = self.bank.T.contiguous().half()
            return (flat.half() @ self._half).float()
        return self.truncated_operator()(w)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, N, N)`` -> codes ``(B, n_codes)`` with the retina's own encoding."""
        return self.encode(images)

    # -- reconstruction

    def _cache_path(self) -> Path:
        key = {
            "config": self.config.to_dict(),
            "rcond": self.rcond,
            "format": _CACHE_FORMAT,
            "kind": "pinv",
            "bank_dtype": "float32",
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        return cache_dir("retina") / f"pinv-{digest}.safetensors"

    def pseudo_inverse(self) -> torch.Tensor:
        """Regularised least-squares inverse ``R+ = R^T V diag(1/lambda) V^T`` of the bank ``R``.

        ``R R^T = V diag(lambda) V^T`` (float64 Gram matrix and ``eigh``); eigenvalues below
        ``rcond^2 * max(lambda)`` are dropped (singular values below ``rcond * max``).  Computed
        once (about 10 s on 2 CPU cores) and cached as safetensors in the ``retina`` cache
        directory (:func:`whatwhere.utils.cache.cache_dir`), keyed by a hash of every
        parameter, written atomically.

        Returns:
            ``(n_codes, N*N)`` float32 (stored transposed: ``images_flat = codes @ R+^T``).
        """
        if self._pinv is None:
            from safetensors.torch import load_file, save_file

            path = self._cache_path()
            shape = (self.n_codes, self.N * self.N)
            if path.exists():
                try:
                    loaded = load_file(str(path))["pinv_T"]
                    if tuple(loaded.shape) == shape and loaded.dtype == torch.float32:
                        self._pinv = loaded.to(self.device)
                except Exception:  # unreadable cache file: rebuild it below
                    self._pinv = None
            if self._pinv is None:
                R = self.bank.double()
                lam, V = torch.linalg.eigh(R @ R.T)
                keep = lam > (self.rcond**2) * lam.max()
                V, lam = V[:, keep], lam[keep]
                pinv_T = (((V / lam) @ V.T) @ R).float().contiguous()  # (n_codes, N*N)
                meta = {
                    "config": json.dumps(self.config.to_dict(), sort_keys=True),
                    "rcond": repr(self.rcond),
                    "components": str(int(keep.sum())),
                    "format": str(_CACHE_FORMAT),
                }
                atomic_write(path, lambda tmp: save_file({"pinv_T": pinv_T.cpu()}, tmp, metadata=meta))
                self._pinv = pinv_T
        return self._pinv

    def reconstruct(self, codes: torch.Tensor, *, dewhiten: bool = False) -> torch.Tensor:
        """Least-squares image from codes, ``R+ codes`` (see :meth:`pseudo_inverse`).

        What comes back is the image the bank saw: the whitened image (plus 0.5, clipped, with
        ``offset_clip``).  ``dewhiten=True`` applies :meth:`dewhiten` (plain whitening only).

        Args:
            codes: ``(B, n_codes)`` or ``(n_codes,)`` float.
        Returns:
            ``(B, N, N)`` float32.
        """
        if not isinstance(codes, torch.Tensor) or not codes.is_floating_point():
            raise ValueError("codes must be a floating-point torch.Tensor")
        if codes.ndim == 1:
            codes = codes[None]
        if codes.ndim != 2 or codes.shape[1] != self.n_codes:
            raise ValueError(f"codes must have shape (B, {self.n_codes}), got {tuple(codes.shape)}")
        img = (codes.float() @ self.pseudo_inverse().to(codes.device)).view(-1, self.N, self.N)
        if dewhiten:
            if self.offset_clip:
                raise ValueError("dewhiten=True needs offset_clip=False (the clip is not invertible)")
            img = self.dewhiten(img)
        return img
