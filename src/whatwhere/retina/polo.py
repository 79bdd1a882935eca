"""POLO: the compressed log-polar code seen by the localisers of the POLO-ATN models.

POLO (Dabane, Perrinet & Daucé 2021/22, "What you see is what you transform"; notebooks
stn_128x128-POLO-*.ipynb of github.com/dabane-ghassan/int-lab-book) encodes a ``N x N`` display
(``N = 128``) in two steps:

1. **Cropped Laplacian pyramid.**  For levels ``l = 0 .. n_levels - 2`` the current image is
   downsampled by ``base`` with bilinear ``interpolate`` (no anti-alias filter, PyTorch's
   ``align_corners=False``), upsampled back to its size, and the centre ``width x width`` crop of
   the residual ``image - up(down(image))`` is kept; the last level keeps the remaining low-pass
   image, centred in a ``width x width`` array (cropped when larger, zero-padded when smaller).
   Level ``l`` has resolution ``base ** -l``.  For ``N = 128``, ``width = 32``, 3 levels: level 0
   is the central 32 x 32 px at full resolution, level 1 the central 64 x 64 px at 1/2, level 2
   the whole field at 1/4 (low-pass).
2. **One log-Gabor bank for every level** (multi-resolution trick): ``K`` of shape
   ``(width, width, n_rings, n_azimuths, n_orientations)``; each level's crop is contracted with
   ``K`` over its two pixel axes (one batched matmul for all samples and levels).

The code has shape ``(B, n_orientations, n_kept_levels * n_rings, n_azimuths)``, rows ordered
level-major (finest level first) then ring, e.g. ``(8, 6, 16) = 768`` for POLO-95.

**Filters.**  Ring ``r`` (Di Carlo's warp: ``b = ln(ratio) / (r_max - r_min)``,
``a = (r_max - r_min) / (exp(b (r_max - r_min)) - 1)``, ``c = r_min - a``,
``r_ref = r_min + r (r_max - r_min) / n_rings``) has

    radius(r) = a exp(b (r_ref - r_min)) + c                       (crop pixels)
    sf_0(r)   = 1 / ((4 width / 32) a b exp(b (r_ref - r_min)))     (cycles / crop pixel)

i.e. radii 8.0 and 11.31 px and sf_0 = 0.361 and 0.255 for ``width = 32``.  The filter of
(ring ``r``, azimuth ``k``, orientation ``j``) is centred at crop pixel
``(width // 2, width // 2) + radius (cos psi, sin psi)`` (row down, column right; azimuth of an
offset ``(di, dj)`` is ``atan2(dj, di)``), with ``psi = 2 pi (k + (r mod 2) / 2) / n_azimuths``
(odd rings rotated by half a step) and orientation ``theta = j pi / n_orientations + psi``
(relative to the radial direction).  On the unshifted ``width x width`` FFT grid (``fx`` along
rows, ``fy`` along columns, ``f = |(fx, fy)|``, ``phi = atan2(fy, fx)``):

    G(f) = R(f) exp((cos(phi - theta) - 1) / B_theta^2) M(f)^2 exp(-2 pi i (u fx + v fy))
    R(f) = 1 / f                                            (filters="1/f", the default: B_sf = infinity)
    R(f) = exp(-ln^2(f / sf_0) / (2 B_sf^2)) / f           (filters="bandpass": finite log-normal band)
    g    = Re(IFFT2(G));  g <- g - mean(g);  g <- g / max|g|      (phase 0, real part)

``M`` is SLIP's "retina" frequency mask (cut at Nyquist, high-pass over ~``width`` px; see
:func:`whatwhere.retina.loggabor.prefilter`), applied twice as in the original (once by
LogGabor's ``loggabor``, once more by SLIP's ``normalize``, whose pre-processing re-filters the
filter before removing its mean); with it the ``filters="1/f"`` bank has min/max -0.3125 / 1.0,
the values of the bank as run in 2021 (a single mask gives -0.304).  ``(u, v)`` is the filter centre.  As run in 2021
the notebooks passed a LogGabor object whose ``B_sf`` was infinite, so the radial envelope
degenerated to ``1/f * M(f)`` and ``sf_0`` had no effect.  That is the default here
(``filters="1/f"``), because it is what the published POLO models were trained with, and it
matters: with 1/f filters a bright digit shows as a blob in the low-frequency end of every ring
(strongest in the low-pass level), and a linear read-out of the 768-d code recovers the digit's
offset (ridge R^2 about 0.8 at contrast 0.7, clutter 0.75); with the band-pass bank the design
intended (``filters="bandpass"``, ``B_sf = 0.6``) that cue is gone (R^2 about 0.1) and the
localisers of the POLO-ATN models barely learn (``whatwhere diagnose code``).  The DC component
of every filter is exactly removed by the mean subtraction.

**Geometry in display pixels.**  Ring ``r`` of level ``l`` sits at the nominal eccentricity
``radius(r) * base ** l`` (8, 11.3, 16, 22.6, 32, 45.3 px for POLO-95: a log-polar grid with
ratio sqrt(2) and 16 azimuths).  The exact display position of a filter centre also carries the
half-pixel shift of the ``align_corners=False`` resampling: level pixel ``p`` is display
coordinate ``(p + 0.5) base^l - 0.5``, so the crop centre of levels 1 and 2 lies 0.5 and 1.5 px
below/right of the display centre ``(N // 2, N // 2)``; :attr:`PoloCode.positions_px` gives the
exact positions.

**Relation to** :class:`.logpolar.LogPolarGrid`.  The ring radii are geometric (ratio
``log_density_ratio ** (1 / n_rings)``) only when ``r_max = log_density_ratio * r_min`` (then
``c = 0``), which holds for every published configuration but the 1280-d "low-compression" one
(radii 11.3, 13.3).  The radii are therefore computed with Di Carlo's formula here, and
:meth:`PoloConfig.grid` returns the equivalent ``LogPolarGrid`` (``N = width``, staggered
azimuths, same azimuth formula) when the radii are geometric.

**Difference from the 2880-d What/Where retina** (:mod:`.loggabor`): that
retina applies 2880 log-Gabor filters (6 orientations x 24 azimuths x 10 rings x 2 phases,
rings 2.3-51 px, ``B_sf = 0.4``, ``sf_0`` from the eccentricity) directly to the *whitened* full
128 x 128 display, with median-centred filters.  POLO has no whitening (the Laplacian pyramid
provides the band-pass), 768 coefficients, one phase, 8 orientations, 16 azimuths, six rings from
8 to 45 px (nothing inside 8 px, nothing beyond ~45 px except the low-pass level), and reuses one
32 x 32 bank at every scale; its coefficients are not normalised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import nn
from torch.nn import functional as F

from whatwhere.retina.loggabor import RetinaConfig, _radius, prefilter
from whatwhere.retina.logpolar import LogPolarGrid
from whatwhere.utils.fourier import frequency_grid

__all__ = ["PoloConfig", "PoloCode", "DualPoloCode", "polo95", "dual85", "dual_nolowpass", "flatten_dual"]

#: The intended radial bandwidth (standard deviation of ln f): the ``B_sf`` of the LogGabor
#: parameters that ``PYramid2.py`` (the POLO module) itself sets.
DEFAULT_B_SF = 0.6

#: The two filter banks: ``"1/f"`` (as run in 2021, the default) and ``"bandpass"`` (as designed).
FILTERS = ("1/f", "bandpass")


@dataclass(frozen=True)
class PoloConfig:
    """Parameters of one POLO code (defaults: POLO-95).

    Attributes:
        width: side of every pyramid crop and of the filters (crop pixels), even.
        n_levels: pyramid levels (the last one is the low-pass image).
        base: down-sampling factor between levels (> 1).
        n_rings: rings ("sublevels") of the bank per level.
        n_azimuths: azimuths per ring.
        n_orientations: orientations per (ring, azimuth), relative to the radial direction.
        r_min, r_max: Di Carlo warp range in crop pixels; ``None`` means ``width / 4`` and
            ``width / 2``.  Requires ``0 < r_min < r_max <= width / 2``.
        log_density_ratio: ratio ``radius(r_max) / radius(r_min)`` of the warp (> 1).
        B_theta: orientation bandwidth (radians) of the von Mises envelope.
        B_sf: radial bandwidth (standard deviation of ``ln f``) of the log-normal envelope of the
            ``"bandpass"`` filters.  The default 0.6 is the value ``PYramid2.py``'s own LogGabor
            parameters specify, i.e. the bandwidth the POLO bank was designed with (its FWHM is
            about 2 octaves, so one ring covers the octave of a base-2 Laplacian level without
            leaking to DC).  Ignored by the ``"1/f"`` filters.
        filters: ``"1/f"`` (default) = the filters as run in 2021: infinite radial bandwidth,
            the radial envelope is ``1/f`` times SLIP's frequency mask and ``sf_0`` has no effect;
            ``"bandpass"`` = the intended log-normal radial envelope of bandwidth ``B_sf``.
        drop_lowpass: drop the last (low-pass) pyramid level from the code (the "norm"/conv
            dual variants).  Needs ``n_levels >= 2``.
        N: display side in pixels (the input images are ``N x N``).
        dtype: ``torch.float32`` or ``torch.float64`` (the original ran in float64).
    """

    width: int = 32
    n_levels: int = 3
    base: float = 2.0
    n_rings: int = 2
    n_azimuths: int = 16
    n_orientations: int = 8
    r_min: float | None = None
    r_max: float | None = None
    log_density_ratio: float = 2.0
    B_theta: float = math.pi / 12
    B_sf: float = DEFAULT_B_SF
    filters: str = "1/f"
    drop_lowpass: bool = False
    N: int = 128
    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        def positive_int(name):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PoloConfig.{name} must be a positive int, got {value!r}")

        for name in ("width", "n_levels", "n_rings", "n_azimuths", "n_orientations", "N"):
            positive_int(name)
        if self.width % 2 or self.width < 4:
            raise ValueError(f"PoloConfig.width must be an even int >= 4, got {self.width!r}")
        for name in ("base", "log_density_ratio", "B_theta", "B_sf"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"PoloConfig.{name} must be a finite number, got {value!r}")
        if not self.base > 1:
            raise ValueError(f"PoloConfig.base must be > 1, got {self.base!r}")
        if not self.log_density_ratio > 1:
            raise ValueError(f"PoloConfig.log_density_ratio must be > 1, got {self.log_density_ratio!r}")
        if not self.B_theta > 0:
            raise ValueError(f"PoloConfig.B_theta must be > 0, got {self.B_theta!r}")
        if not self.B_sf > 0:
            raise ValueError(
                f"PoloConfig.B_sf must be > 0 (use filters='1/f' for an infinite bandwidth), got {self.B_sf!r}"
            )
        if self.filters not in FILTERS:
            raise ValueError(f"PoloConfig.filters must be one of {FILTERS}, got {self.filters!r}")
        if not isinstance(self.drop_lowpass, bool):
            raise ValueError(f"PoloConfig.drop_lowpass must be a bool, got {self.drop_lowpass!r}")
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"PoloConfig.dtype must be torch.float32 or torch.float64, got {self.dtype!r}")
        if self.r_min is None:
            object.__setattr__(self, "r_min", self.width / 4)
        if self.r_max is None:
            object.__setattr__(self, "r_max", self.width / 2)
        for name in ("r_min", "r_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"PoloConfig.{name} must be a finite number or None, got {value!r}")
        r_min, r_max = self._radii()
        if not 0 < r_min:
            raise ValueError(f"PoloConfig.r_min must be > 0, got {self.r_min!r}")
        if not r_min < r_max <= self.width / 2:
            raise ValueError(
                f"PoloConfig.r_max must satisfy r_min < r_max <= width / 2 "
                f"(= {self.width / 2}), got r_min={self.r_min!r}, r_max={self.r_max!r}"
            )
        if self.drop_lowpass and self.n_levels < 2:
            raise ValueError(f"PoloConfig.n_levels must be >= 2 with drop_lowpass, got {self.n_levels!r}")
        if min(self.level_sizes()) < 1:
            raise ValueError(
                f"PoloConfig.n_levels={self.n_levels} is too many for N={self.N} "
                f"and base={self.base}: a level would be empty"
            )

    # ------------------------------------------------------------------ derived geometry

    def _radii(self) -> tuple[float, float]:
        """``(r_min, r_max)``, never None once ``__post_init__`` has filled in the defaults."""
        assert self.r_min is not None and self.r_max is not None
        return self.r_min, self.r_max

    @property
    def n_kept_levels(self) -> int:
        """Levels in the code: ``n_levels``, minus one with ``drop_lowpass``."""
        return self.n_levels - int(self.drop_lowpass)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Code shape per sample, ``(n_orientations, n_kept_levels * n_rings, n_azimuths)``."""
        return (self.n_orientations, self.n_kept_levels * self.n_rings, self.n_azimuths)

    @property
    def dim(self) -> int:
        """Code length per sample (768 for POLO-95)."""
        o, r, a = self.shape
        return o * r * a

    def level_sizes(self) -> list[int]:
        """Side in pixels of the image at every level (128, 64, 32 for POLO-95)."""
        sizes = [self.N]
        for _ in range(self.n_levels - 1):
            sizes.append(int(math.floor(sizes[-1] * (1.0 / self.base))))  # as F.interpolate
        return sizes

    def _warp(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Ring radii (crop px) and the Di Carlo derivative ``a b exp(b (r_ref - r_min))``; float64."""
        r_min, r_max = self._radii()
        span = r_max - r_min
        b = math.log(self.log_density_ratio) / span
        a = span / (math.exp(b * span) - 1.0)
        c = r_min - a
        r_ref = r_min + torch.arange(self.n_rings, dtype=torch.float64) * span / self.n_rings
        grow = torch.exp(b * (r_ref - r_min))
        return a * grow + c, a * b * grow

    def ring_radii(self) -> torch.Tensor:
        """Ring radii in crop pixels, ``(n_rings,)`` float64 (8.0, 11.31 for ``width = 32``)."""
        return self._warp()[0]

    def sf_0(self) -> torch.Tensor:
        """Nominal peak frequency of every ring, ``(n_rings,)`` float64 cycles/crop px (0.361, 0.255)."""
        return 1.0 / ((4.0 * self.width / 32.0) * self._warp()[1])

    def azimuths(self) -> torch.Tensor:
        """Azimuth ``psi`` (radians, 0 = down, pi/2 = right) of every filter, ``(n_rings, n_azimuths)``."""
        ring = torch.arange(self.n_rings, dtype=torch.float64)[:, None]
        k = torch.arange(self.n_azimuths, dtype=torch.float64)[None, :]
        return 2.0 * math.pi * (k + 0.5 * (ring % 2)) / self.n_azimuths

    def offsets(self) -> torch.Tensor:
        """Filter-centre offsets ``(di, dj)`` from the crop centre, crop px; ``(n_rings, n_azimuths, 2)``."""
        psi = self.azimuths()
        r = self.ring_radii()[:, None]
        return torch.stack((r * torch.cos(psi), r * torch.sin(psi)), dim=-1)

    def grid(self) -> LogPolarGrid:
        """The equivalent :class:`LogPolarGrid` on the ``width x width`` crop.

        Raises:
            ValueError: when the radii are not geometric (``r_max != log_density_ratio * r_min``).
        """
        r_min, r_max = self._radii()
        if not math.isclose(r_max, self.log_density_ratio * r_min, rel_tol=1e-12):
            raise ValueError(
                "the POLO radii are geometric (a LogPolarGrid) only when r_max == log_density_ratio * r_min"
            )
        rho = self.log_density_ratio ** (1.0 / self.n_rings)
        ecc_max = r_min * rho**self.n_rings / (math.sqrt(2.0) * self.width / 2.0)
        return LogPolarGrid(
            n_rings=self.n_rings, n_azimuths=self.n_azimuths, N=self.width, rho=rho, ecc_max=ecc_max, stagger=True
        )


# ---------------------------------------------------------------------------- the bank


def polo_bank(config: PoloConfig | None = None) -> torch.Tensor:
    """The POLO filter bank ``K`` (formulas in the module docstring).

    Returns:
        ``(width, width, n_rings, n_azimuths, n_orientations)`` tensor of ``config.dtype``;
        every filter (a ``width x width`` slice) has zero mean and ``max |.| = 1``.
    """
    c = config or PoloConfig()
    w = c.width
    nR, nO = c.n_rings, c.n_orientations  # nA = c.n_azimuths below
    f = _radius(w, half=False)  # (w, w), f[0, 0] = 1e-6
    fx, fy = frequency_grid(w, half=False)
    phi = torch.atan2(fy, fx)
    mask = prefilter(RetinaConfig(grid=LogPolarGrid(N=w)))  # SLIP's f_mask, (w, w)
    if c.filters == "1/f":
        band = (1.0 / f)[None].expand(nR, w, w)
    else:
        sf_0 = c.sf_0()[:, None, None]
        band = torch.exp(-0.5 * torch.log(f / sf_0) ** 2 / c.B_sf**2) / f
    band = band * mask**2  # SLIP applies its mask twice (loggabor, then normalize)
    band[:, 0, 0] = 0.0  # the DC term: removed exactly by the mean subtraction anyway
    psi = c.azimuths()  # (nR, nA)
    centre = c.offsets() + w // 2  # (nR, nA, 2)
    freqs = torch.fft.fftfreq(w, dtype=torch.float64)
    shift_i = torch.exp(-2j * math.pi * centre[..., 0, None] * freqs)  # (nR, nA, w)
    shift_j = torch.exp(-2j * math.pi * centre[..., 1, None] * freqs)
    theta = psi[..., None] + torch.arange(nO, dtype=torch.float64) * math.pi / nO  # (nR, nA, nO)
    theta = theta[..., None, None]
    lobe = torch.exp((torch.cos(phi - theta) - 1.0) / c.B_theta**2)  # (nR, nA, nO, w, w)
    G = lobe * band[:, None, None] * (shift_i[..., None, :, None] * shift_j[..., None, None, :])
    g = torch.fft.ifft2(G).real
    g = g - g.mean(dim=(-2, -1), keepdim=True)
    g = g / g.abs().amax(dim=(-2, -1), keepdim=True)
    return g.permute(3, 4, 0, 1, 2).contiguous().to(c.dtype)


# ---------------------------------------------------------------------------- the pyramid


def _centre_crop(x: torch.Tensor, width: int) -> torch.Tensor:
    """Centre ``width x width`` window of ``(B, 1, h, h)``: cropped at ``h // 2 - width // 2`` when
    larger, zero-padded (image placed at ``width // 2 - h // 2``) when smaller; ``(B, width, width)``."""
    h = x.shape[-1]
    if h >= width:
        lo = h // 2 - width // 2
        return x[:, 0, lo : lo + width, lo : lo + width]
    lo = width // 2 - h // 2
    return F.pad(x[:, 0], (lo, width - h - lo, lo, width - h - lo))


def cropped_pyramid(images: torch.Tensor, config: PoloConfig) -> torch.Tensor:
    """The cropped Laplacian pyramid of ``(B, 1, N, N)`` images (module docstring, step 1).

    Returns:
        ``(B, n_kept_levels, width, width)``: band-pass levels then, unless ``drop_lowpass``,
        the low-pass level.
    """
    c = config
    crops = []
    x = images
    for level in range(c.n_kept_levels):
        if level == c.n_levels - 1:  # the low-pass level
            crops.append(_centre_crop(x, c.width))
            break
        down = F.interpolate(x, scale_factor=1.0 / c.base, mode="bilinear")
        up = F.interpolate(down, size=x.shape[-2:], mode="bilinear")
        crops.append(_centre_crop(x - up, c.width))
        x = down
    return torch.stack(crops, dim=1)


# ---------------------------------------------------------------------------- the codes


class PoloCode(nn.Module):
    """The POLO encoder: ``(B, N, N)`` or ``(B, 1, N, N)`` images -> ``(B, *config.shape)`` codes.

    The code is ``code[b, o, l * n_rings + r, k] = <crop_l(images[b]), K[:, :, r, k, o]>`` for
    kept level ``l`` (finest first), ring ``r``, azimuth ``k``, orientation ``o``.  It is linear in
    the images and differentiable; inputs are cast to the bank's dtype.  Use ``.to(device)`` like
    any module (the bank is a buffer).

    Attributes:
        config: the :class:`PoloConfig`.
        kernels: the bank, ``(width, width, n_rings, n_azimuths, n_orientations)``.
        dim: code length per sample (768 for POLO-95).
        shape: ``(n_orientations, n_kept_levels * n_rings, n_azimuths)``.
        eccentricities_px: nominal eccentricity (display px) of each code row,
            ``radius(r) * base ** l``, ``(n_kept_levels * n_rings,)`` float64
            (8, 11.3, 16, 22.6, 32, 45.3 for POLO-95).
        positions_px: exact display position ``(i, j)`` (row, column; fractional) of every filter
            centre, ``(n_kept_levels * n_rings, n_azimuths, 2)`` float64 (module docstring).
    """

    kernels: torch.Tensor

    def __init__(self, config: PoloConfig | None = None) -> None:
        super().__init__()
        c = config or PoloConfig()
        if not isinstance(c, PoloConfig):
            raise ValueError(f"config must be a PoloConfig, got {type(c).__name__}")
        self.config = c
        self.register_buffer("kernels", polo_bank(c), persistent=False)
        self.shape = c.shape
        self.dim = c.dim
        scale = c.base ** torch.arange(c.n_kept_levels, dtype=torch.float64)
        self.eccentricities_px = (scale[:, None] * c.ring_radii()[None, :]).reshape(-1)
        sizes = torch.tensor(c.level_sizes()[: c.n_kept_levels], dtype=torch.float64)
        centre = (torch.div(sizes, 2, rounding_mode="floor") + 0.5) * scale - 0.5  # crop centre, display px
        pos = centre[:, None, None, None] + scale[:, None, None, None] * c.offsets()[None]
        self.positions_px = pos.reshape(c.n_kept_levels * c.n_rings, c.n_azimuths, 2)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, dim={self.dim}, filters={self.config.filters!r}"

    def pyramid(self, images: torch.Tensor) -> torch.Tensor:
        """The kept pyramid crops, ``(B, n_kept_levels, width, width)`` (inputs as in :meth:`forward`)."""
        return cropped_pyramid(self._check(images), self.config)

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        N = self.config.N
        if images.dim() == 3:
            images = images[:, None]
        if images.dim() != 4 or images.shape[1] != 1 or images.shape[-2:] != (N, N):
            raise ValueError(f"images must be (B, {N}, {N}) or (B, 1, {N}, {N}), got {tuple(images.shape)}")
        return images.to(self.kernels.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode ``(B, N, N)`` or ``(B, 1, N, N)`` float images; returns ``(B, *self.shape)``."""
        c = self.config
        crops = self.pyramid(images)  # (B, L, w, w)
        B, L = crops.shape[:2]
        K = self.kernels.reshape(c.width * c.width, -1)  # (w*w, R*A*O)
        z = crops.reshape(B * L, -1) @ K  # one matmul for all samples & levels
        z = z.view(B, L, c.n_rings, c.n_azimuths, c.n_orientations)
        return z.permute(0, 4, 1, 2, 3).reshape(B, *self.shape)


class DualPoloCode(nn.Module):
    """Two POLO codes of the same display (the 85 % dual models): returns ``(code_in, code_out)``.

    ``code_in`` is ``(B, *config_in.shape)`` and ``code_out`` ``(B, *config_out.shape)``; the FC
    localiser sees :func:`flatten_dual` of the pair, the conv localiser the two arrays.

    Attributes:
        code_in, code_out: the two :class:`PoloCode` modules.
        dim: total length ``code_in.dim + code_out.dim`` (2560 for the presets).
    """

    def __init__(self, config_in: PoloConfig, config_out: PoloConfig) -> None:
        super().__init__()
        if config_in.N != config_out.N:
            raise ValueError(f"the two codes must read the same display size, got N={config_in.N} and N={config_out.N}")
        self.code_in = PoloCode(config_in)
        self.code_out = PoloCode(config_out)
        self.dim = self.code_in.dim + self.code_out.dim

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, N, N)`` or ``(B, 1, N, N)`` -> ``(code_in (B, 8, 4, 16), code_out (B, 8, 8, 32))``
        for the presets."""
        return self.code_in(images), self.code_out(images)


def flatten_dual(codes: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Flatten and concatenate a dual code, "in" first: ``(B, dim_in + dim_out)`` (2560 for the presets)."""
    code_in, code_out = codes
    return torch.cat((code_in.flatten(1), code_out.flatten(1)), dim=1)


# ---------------------------------------------------------------------------- presets


def _config(base: dict, filters: str, overrides: dict) -> PoloConfig:
    names = {f.name for f in fields(PoloConfig)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown PoloConfig parameter(s): {sorted(unknown)}")
    return PoloConfig(**{**base, **overrides, "filters": filters})


def polo95(filters: str = "1/f", **overrides) -> PoloCode:
    """POLO-95 (stn_128x128-POLO-tests.ipynb): width 32, 3 levels (base 2, last low-pass), 2 rings (8 -> 16),
    16 azimuths, 8 orientations; code ``(B, 8, 6, 16)`` = 768."""
    return PoloCode(_config({}, filters, overrides))


_IN = dict(width=32, n_rings=2, n_azimuths=16, n_orientations=8)  # rings 8 -> 16 px
_OUT = dict(width=64, n_rings=4, n_azimuths=32, n_orientations=8)  # rings 16 -> 32 px


def dual85(filters: str = "1/f", **overrides) -> DualPoloCode:
    """POLO_ATN_85 % FC model (stn_128x128-POLO-DUAL-LOW-COMPRESSION.ipynb): "in" = width 32, 2 levels
    (the last low-pass), 2 rings 8 -> 16, 16 azimuths: ``(B, 8, 4, 16)`` = 512; "out" = width 64, 2 levels (last
    low-pass), 4 rings 16 -> 32, 32 azimuths: ``(B, 8, 8, 32)`` = 2048.  ``overrides`` apply to
    both codes."""
    return DualPoloCode(
        _config({**_IN, "n_levels": 2}, filters, overrides), _config({**_OUT, "n_levels": 2}, filters, overrides)
    )


def dual_nolowpass(filters: str = "1/f", **overrides) -> DualPoloCode:
    """The "norm" / convPOLO dual code (...-norm-conv.ipynb): as :func:`dual85` but each code is a
    3-level pyramid with its low-pass level dropped, so both kept levels are band-pass; same
    shapes ``(B, 8, 4, 16)`` and ``(B, 8, 8, 32)``."""
    return DualPoloCode(
        _config({**_IN, "n_levels": 3, "drop_lowpass": True}, filters, overrides),
        _config({**_OUT, "n_levels": 3, "drop_lowpass": True}, filters, overrides),
    )
