"""Cluttered-MNIST displays: the 128×128 What/Where display and the 28×28 What display.

Coordinates: row ``i`` grows downward, column ``j`` rightward; the display centre is pixel
``(N//2, N//2)``; a position is an offset ``(di, dj)`` from it; eccentricity = sqrt(di²+dj²);
azimuth = atan2(dj, di) (0 = straight down).  Images are float32 in [0, 1].

A display is built in four steps (Daucé, Albiges & Perrinet 2020, and the notebooks of
github.com/laurentperrinet/WhereIsMyMNIST):

1. **placement**: the 28×28 digit frame is pasted at the centre, translated by ``(di, dj)``
   (zero fill; in the 28×28 display the frame itself is shifted and cropped);
2. **contrast**: the digit is min-max normalised to F ∈ [0, 1] and mapped to 0.5 + c·(2F−1)/2;
3. **mixing** with the clutter layer B = n·(2z−1)/2 + 0.5 (z: :mod:`whatwhere.data.clutter`):
   opaque (digit pixels ≤ 0.5 ignored, ``max(digit, B)``) or transparent (B + c·F/2), clipped;
4. **mask** (field displays only): min-max re-normalise to [0, 1], then every pixel outside the
   disk of radius N/2 around the centre is set to exactly 0.5.

**Black displays** (``background="black"``: the standard cluttered-MNIST tasks of the attention
literature, presets ``ram60-translated``, ``ram60-cluttered``, ``ram100-cluttered``, ``stn-tc``)
follow DeepMind's ``mnist-cluttered`` generator (``mnist_cluttered.lua``, Mnih et al. 2014):
a black (0) display; ``crops`` pieces of ``crop_size``×``crop_size`` px, each cut at a uniform
position out of a uniformly drawn digit of the same set (with replacement, possibly the digit
itself) and *added* at a uniform position, the sum clipped at 1; then the 28×28 digit frame (raw
MNIST values / 255, times ``contrast``, 1.0 in the presets) added at its position and the result
clipped to [0, 1].  ``placement="uniform"`` puts the frame's top-left corner at a uniform integer
position with the frame fully inside the display (the reference's ``border=0``).  No clutter
field, no normalisation, no mask; ``clutter``, ``sf_0``, ``B_sf`` and ``mixing`` play no part.
The reference's digit sets are the first 50,000 MNIST training digits (its train split; the last
10,000 are its validation split) and the 10,000 test digits; the crops of a display come from its
own set.  The standard-task recipes train on that train split (``train_limit: 50000``) and test
on the test digits.

Randomness.  A :class:`DisplaySet` is a pure function of ``(seed, epoch, index)``: the random
numbers of the displays at positions ``[k·C, (k+1)·C)`` (``C = chunk_size``) come from one
generator seeded by ``(seed, epoch, k)``, so any batch, in any order, of any size, gives the same
display for the same position.  ``static=True`` ignores the epoch (the original code's frozen
augmentation).  The digit at a position is the MNIST index itself, or a seeded permutation of
it per epoch when ``shuffle=True``.  The clutter never depends on the digits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace

import torch

from whatwhere.data.clutter import envelope_half, field_from_spectrum, spectrum_uniform_count, white_spectrum
from whatwhere.utils.seeding import generator, uniform

__all__ = [
    "PLACEMENTS",
    "PRESETS",
    "DisplayConfig",
    "DisplayBatch",
    "DisplaySet",
    "DisplayEpoch",
    "preset",
    "render",
    "mask_disk",
    "check_display_keys",
    "render_black",
    "preset_size",
    "BACKGROUNDS",
    "grid_displays",
]

DIGIT = 28  #: side of an MNIST digit frame
INK = 20  #: side of the inked core of an MNIST digit (digits are size-normalised to 20×20)
PLACEMENTS = ("polar", "cartesian", "eccentricity", "offset", "uniform")
MIXINGS = ("opaque", "transparent")
BACKGROUNDS = ("motioncloud", "black")
MAX_CROPS = 100  #: most clutter crops per display
N_CROP = 5  # uniforms per clutter crop: source digit, source row, source column, target row, target column
N_SMALL = 4  # uniforms per display for placement and contrast: azimuth, normal 1, normal 2, contrast


@dataclass(frozen=True)
class DisplayConfig:
    """Everything that defines the display distribution (not the seed).

    Placement modes (``placement``):
      * ``"polar"``: radius r = min(|N(0,1)|·sigma, clip), uniform azimuth (Where training);
      * ``"cartesian"``: di, dj = trunc(clip(N(0,1)·sigma, ±clip)) per axis (What training);
      * ``"eccentricity"``: r = eccentricity, azimuth fixed (radians) or uniform if None;
      * ``"offset"``: fixed ``(di, dj)``;
      * ``"uniform"``: the frame's top-left corner uniform over the integer positions that keep
        the frame inside the display (the RAM / STN tasks); unmasked displays only.
    Polar/eccentricity offsets are ``trunc(r cos θ), trunc(r sin θ)`` as in the original code.

    Background (``background``): ``"motioncloud"`` (the MotionClouds clutter field of the
    What/Where studies) or ``"black"`` (the mnist-cluttered displays, module docstring) with
    ``crops`` added clutter pieces of ``crop_size``×``crop_size`` px (black background only).

    Contrast: ``contrast`` fixed, or ``contrast_range = (lo, hi)`` for U(lo, hi) per display.
    ``mask=None`` means: masked iff ``size > 28``.
    """

    size: int = 128
    clutter: float = 1.0
    sf_0: float = 0.1
    B_sf: float = 0.1
    contrast: float | None = 0.7
    contrast_range: tuple[float, float] | None = None
    placement: str = "polar"
    sigma: float = 30.0
    clip: float = 40.0
    eccentricity: float = 0.0
    azimuth: float | None = None
    offset: tuple[int, int] = (0, 0)
    mixing: str = "opaque"
    mask: bool | None = None
    background: str = "motioncloud"
    crops: int = 0
    crop_size: int = 8

    def __post_init__(self) -> None:
        if self.contrast_range is not None:
            object.__setattr__(self, "contrast_range", tuple(float(x) for x in self.contrast_range))
            object.__setattr__(self, "contrast", None)
        object.__setattr__(self, "offset", tuple(int(x) for x in self.offset))
        self.validate()

    # ------------------------------------------------------------------ validation
    @property
    def masked(self) -> bool:
        if self.mask is None:
            return self.size > DIGIT and self.background == "motioncloud"
        return bool(self.mask)

    @property
    def contrast_bounds(self) -> tuple[float, float]:
        if self.contrast_range is not None:
            return self.contrast_range
        return (float(self.contrast), float(self.contrast))  # type: ignore[arg-type]

    def max_offset_norm(self) -> float:
        """Largest eccentricity (px) at which a digit stays fully inside the display, any azimuth."""
        if self.size == DIGIT:
            return float(DIGIT - 1)
        half = self.size / 2
        if self.masked:  # the inked 20×20 core must stay inside the disk
            return min(half - INK / 2 * math.sqrt(2), half - DIGIT / 2)
        return half - DIGIT / 2

    def _fits(self, di: float, dj: float) -> bool:
        if self.size == DIGIT:
            return abs(di) <= DIGIT - 1 and abs(dj) <= DIGIT - 1
        half = self.size / 2
        if abs(di) + DIGIT / 2 > half or abs(dj) + DIGIT / 2 > half:
            return False
        if self.masked:
            return math.hypot(abs(di) + INK / 2, abs(dj) + INK / 2) <= half
        return True

    def validate(self) -> None:
        """Raise ``ValueError`` naming the parameter and its allowed range on impossible requests."""
        if int(self.size) != self.size or not (self.size == DIGIT or self.size >= 32):
            raise ValueError(f"size must be 28 (What display) or an integer >= 32, got {self.size}")
        if not self.clutter >= 0 or math.isinf(self.clutter):
            raise ValueError(f"clutter must be a finite number >= 0, got {self.clutter}")
        if not self.sf_0 > 0:
            raise ValueError(f"sf_0 must be > 0 (cycles/pixel), got {self.sf_0}")
        if not self.B_sf > 0:
            raise ValueError(f"B_sf must be > 0 (cycles/pixel), got {self.B_sf}")
        if self.contrast_range is not None:
            lo, hi = self.contrast_range
            if not (0 < lo <= 1 and 0 < hi <= 1 and lo <= hi):
                raise ValueError(f"contrast_range must satisfy 0 < lo <= hi <= 1, got {self.contrast_range}")
        elif self.contrast is None or not 0 < self.contrast <= 1:
            raise ValueError(f"contrast must be in (0, 1], got {self.contrast}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}")
        if self.mixing not in MIXINGS:
            raise ValueError(f"mixing must be one of {MIXINGS}, got {self.mixing!r}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if isinstance(self.crops, bool) or int(self.crops) != self.crops or not 0 <= self.crops <= MAX_CROPS:
            raise ValueError(
                f"crops (clutter pieces per display) must be an integer in [0, {MAX_CROPS}], got {self.crops}"
            )
        if (
            isinstance(self.crop_size, bool)
            or int(self.crop_size) != self.crop_size
            or not 1 <= self.crop_size <= DIGIT
        ):
            raise ValueError(
                f"crop_size must be an integer in [1, {DIGIT}] px (a piece of a 28x28 digit), got {self.crop_size}"
            )
        if self.crops and self.background != "black":
            raise ValueError(
                f"crops must be 0 unless background is 'black' (clutter pieces go on the black "
                f"display), got crops={self.crops} with background={self.background!r}"
            )
        if self.background == "black" and self.mask:
            raise ValueError(
                "mask must be false or None with background 'black' (the mask is a MotionClouds-display step)"
            )
        if self.placement == "uniform" and self.masked:
            raise ValueError(
                "placement 'uniform' needs an unmasked display (mask: false, or background: black): "
                "the digit would leave the mask"
            )
        limit = self.max_offset_norm()
        if self.placement == "polar":
            if not self.sigma >= 0:
                raise ValueError(f"sigma must be >= 0, got {self.sigma}")
            if not 0 <= self.clip <= limit:
                raise ValueError(
                    f"clip (maximum radius) must be in [0, {limit:.2f}] px for a "
                    f"{self.size}px display, got {self.clip}: the digit would leave the "
                    f"{'mask' if self.masked else 'display'}"
                )
        elif self.placement == "cartesian":
            if not self.sigma >= 0:
                raise ValueError(f"sigma must be >= 0, got {self.sigma}")
            ok = self.clip >= 0 and self._fits(self.clip, self.clip)
            if not ok:
                raise ValueError(
                    f"clip (maximum shift per axis) must keep the digit inside the "
                    f"{'mask' if self.masked else 'display'}, got {self.clip}"
                )
        elif self.placement == "eccentricity":
            if not 0 <= self.eccentricity <= limit:
                raise ValueError(
                    f"eccentricity must be in [0, {limit:.2f}] px for a {self.size}px "
                    f"display, got {self.eccentricity}: the digit would leave the "
                    f"{'mask' if self.masked else 'display'}"
                )
            if self.azimuth is not None and not math.isfinite(self.azimuth):
                raise ValueError(f"azimuth must be finite (radians) or None, got {self.azimuth}")
        elif self.placement == "offset":
            if not self._fits(*self.offset):
                raise ValueError(
                    f"offset {self.offset} puts the digit outside the "
                    f"{'mask' if self.masked else 'display'} of a {self.size}px display"
                )

    def replace(self, **changes) -> DisplayConfig:
        """A copy with some fields changed (validated)."""
        if "contrast" in changes and changes["contrast"] is not None and "contrast_range" not in changes:
            changes["contrast_range"] = None
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DisplayConfig:
        check_display_keys(d)
        return cls(**d)


#: Display parameters that were renamed: old name -> new name.
RENAMED = {"noise": "clutter"}


def check_display_keys(d, where: str = "display") -> None:
    """Raise ``ValueError`` naming any key of ``d`` that is not a :class:`DisplayConfig` field
    (and the new name of a renamed one)."""
    for old, new in RENAMED.items():
        if old in d:
            raise ValueError(f"{where}.{old} was renamed {where}.{new} (the clutter level n of the display)")
    known = {f.name for f in fields(DisplayConfig)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown {where} key(s) {sorted(unknown)}; known: {sorted(known)}")


#: Published display configurations, per display size.
PRESETS: dict[str, dict[int, DisplayConfig]] = {
    # Daucé, Albiges & Perrinet 2020 (the configuration that produced the paper's figures).
    "paper": {
        128: DisplayConfig(size=128, clutter=1.0, contrast=0.7, placement="polar", sigma=30.0, clip=40.0),
        28: DisplayConfig(
            size=28, clutter=1.0, contrast_range=(0.3, 0.7), placement="cartesian", sigma=15.0, clip=25.0
        ),
    },
    # Dabane, Perrinet & Daucé 2021/22 (the STN study): clutter 0.75, radius clipped at 40 px.
    "dabane2021": {
        128: DisplayConfig(size=128, clutter=0.75, contrast=0.7, placement="polar", sigma=40.0, clip=40.0),
        28: DisplayConfig(
            size=28, clutter=0.75, contrast_range=(0.3, 0.7), placement="cartesian", sigma=15.0, clip=25.0
        ),
    },
    # The standard tasks of the attention literature (black displays, module docstring).
    # Mnih, Heess, Graves & Kavukcuoglu 2014 (RAM), "60x60 translated MNIST": the digit at a
    # uniform position, nothing else.
    "ram60-translated": {
        60: DisplayConfig(size=60, background="black", clutter=0.0, contrast=1.0, placement="uniform", crops=0)
    },
    # RAM "60x60 cluttered translated MNIST": "4 pieces of clutter", "random 8 by 8 subpatches from
    # other random MNIST digits" (Mnih et al. 2014, sect. 4.1, both printings; 8 is also
    # mnist-cluttered's dist_w default).
    "ram60-cluttered": {
        60: DisplayConfig(
            size=60, background="black", clutter=0.0, contrast=1.0, placement="uniform", crops=4, crop_size=8
        )
    },
    # RAM "100x100 cluttered translated MNIST": "8 pieces of clutter" of 8x8 (Mnih et al. 2014,
    # sect. 4.1; mnist-cluttered's example.lua has the same megapatch_w=100, num_dist=8).
    "ram100-cluttered": {
        100: DisplayConfig(
            size=100, background="black", clutter=0.0, contrast=1.0, placement="uniform", crops=8, crop_size=8
        )
    },
    # Jaderberg et al. 2015 (STN), "translated cluttered MNIST (TC)": sect. 4.1 says only "60 x 60
    # images with translated MNIST digits and background clutter".  Crop size and count are
    # assumptions: 6x6 is the crop size of the paper's cluttered co-localisation data (appendix
    # A.2: 16 random 6x6 crops of MNIST training digits on 84x84), 6 crops the count that the
    # 60x60 data file of common reproductions is named after ("6distortions").
    "stn-tc": {
        60: DisplayConfig(
            size=60, background="black", clutter=0.0, contrast=1.0, placement="uniform", crops=6, crop_size=6
        )
    },
}


def preset_size(name: str, size: int | None = None) -> int:
    """``size``, or when None the default size of preset ``name`` (128 if it has one, else its
    only size)."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    if size is not None:
        return int(size)
    return 128 if 128 in PRESETS[name] else max(PRESETS[name])


def preset(name: str, size: int = 128, **changes) -> DisplayConfig:
    """The display configuration of a published study (``"paper"``, ``"dabane2021"``) or of a
    standard task of the attention literature (``"ram60-translated"``, ``"ram60-cluttered"``,
    ``"ram100-cluttered"``, ``"stn-tc"``: their one size only)."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    if size not in PRESETS[name]:
        raise ValueError(f"preset {name!r} exists for sizes {sorted(PRESETS[name])}, got size={size}")
    cfg = PRESETS[name][size]
    return cfg.replace(**changes) if changes else cfg


# ---------------------------------------------------------------------- rendering


@dataclass
class DisplayBatch:
    """A batch of displays.

    Attributes:
        images: ``(B, N, N)`` float32 in [0, 1].
        labels: ``(B,)`` int64 digit classes.
        offsets: ``(B, 2)`` int64 realised (di, dj) of the digit frame centre, pixels.
        contrasts: ``(B,)`` float32.
        indices: ``(B,)`` int64 MNIST indices of the digits.
    """

    images: torch.Tensor
    labels: torch.Tensor
    offsets: torch.Tensor
    contrasts: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, idx) -> DisplayBatch:
        """The displays ``idx`` (a slice or an index tensor) as a batch."""
        return DisplayBatch(*(getattr(self, f.name)[idx] for f in fields(DisplayBatch)))

    def to(self, device) -> DisplayBatch:
        return DisplayBatch(
            *(t.to(device) for t in (self.images, self.labels, self.offsets, self.contrasts, self.indices))
        )

    @staticmethod
    def cat(parts: Sequence[DisplayBatch]) -> DisplayBatch:
        return DisplayBatch(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(DisplayBatch)))


def mask_disk(N: int, device="cpu") -> torch.Tensor:
    """``(N, N)`` float32: 1 inside the disk of radius N/2 around pixel (N//2, N//2), else 0."""
    r = torch.arange(N, dtype=torch.float64, device=device) - N // 2
    return ((r[:, None] ** 2 + r[None, :] ** 2) < (N / 2) ** 2).to(torch.float32)


def _contrasts(cfg: DisplayConfig, small: torch.Tensor) -> torch.Tensor:
    """Each display's digit contrast ``(B,)`` float32, uniform in the config's bounds, drawn from
    column 3 of the per-display uniforms ``small``."""
    lo_c, hi_c = cfg.contrast_bounds
    contrasts = (lo_c + (hi_c - lo_c) * small[:, 3].double()).to(torch.float32)
    if hi_c == lo_c:
        contrasts.fill_(lo_c)
    return contrasts


def _offsets(cfg: DisplayConfig, u: torch.Tensor) -> torch.Tensor:
    """(B, 2) int64 offsets from the (B, N_SMALL) placement uniforms."""
    B = u.shape[0]
    eps = 1e-7
    if cfg.placement == "uniform":  # top-left corner uniform in [0, N - 28], as an offset from the centre
        n_pos = cfg.size - DIGIT + 1
        corner = (u[:, 1:3].double() * n_pos).floor().clamp(max=n_pos - 1)
        return (corner - (cfg.size // 2 - DIGIT // 2)).to(torch.int64)
    if cfg.placement == "offset":
        return torch.tensor(cfg.offset, dtype=torch.int64, device=u.device).expand(B, 2).clone()
    if cfg.placement == "cartesian":
        z = torch.special.ndtri(u[:, 1:3].double().clamp(eps, 1 - eps))
        return torch.trunc((z * cfg.sigma).clamp(-cfg.clip, cfg.clip)).to(torch.int64)
    theta = u[:, 0].double() * (2 * math.pi)
    if cfg.placement == "eccentricity":
        if cfg.azimuth is not None:
            theta = torch.full_like(theta, float(cfg.azimuth))
        r = torch.full_like(theta, float(cfg.eccentricity))
    else:  # polar
        z = torch.special.ndtri(u[:, 1].double().clamp(eps, 1 - eps)).abs()
        r = (z * cfg.sigma).clamp(max=cfg.clip)
    return torch.stack([torch.trunc(r * torch.cos(theta)), torch.trunc(r * torch.sin(theta))], 1).to(torch.int64)


def _digit_layer(digits: torch.Tensor, offsets: torch.Tensor, cfg: DisplayConfig) -> torch.Tensor:
    """Normalised digit frames F ∈ [0, 1], (B, 28, 28) float32 (shifted and cropped for size 28)."""
    d = digits.to(torch.float32)
    if cfg.size == DIGIT:  # shift inside the frame, zero fill, then normalise what is left
        ar = torch.arange(DIGIT, device=d.device)
        rows = ar[None, :] - offsets[:, :1]  # (B, 28) source rows
        cols = ar[None, :] - offsets[:, 1:]
        valid = ((rows >= 0) & (rows < DIGIT))[:, :, None] & ((cols >= 0) & (cols < DIGIT))[:, None, :]
        b = torch.arange(d.shape[0], device=d.device)[:, None, None]
        d = d[b, rows.clamp(0, DIGIT - 1)[:, :, None], cols.clamp(0, DIGIT - 1)[:, None, :]] * valid
    peak = d.amax(dim=(1, 2), keepdim=True)
    return d / torch.where(peak > 0, peak, torch.ones_like(peak))


def _as_unit(d: torch.Tensor) -> torch.Tensor:
    """Digit frames as float32 in [0, 1]: uint8 / 255 (the reference's division by the data's
    maximum), floats as they are."""
    return d.to(torch.float32) / 255 if d.dtype == torch.uint8 else d.to(torch.float32)


def render_black(
    digits: torch.Tensor,
    small: torch.Tensor,
    cfg: DisplayConfig,
    *,
    crop_digits: torch.Tensor | None = None,
    crop_u: torch.Tensor | None = None,
    clutter_only: bool = False,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render black displays (``cfg.background == "black"``; the mnist-cluttered generator).

    Args:
        digits: ``(B, 28, 28)`` uint8 or float digit frames.
        small: ``(B, 4)`` uniforms for placement and contrast (as :func:`render`).
        crop_digits: ``(B, K, 28, 28)`` the digits the K clutter crops are cut from (K = cfg.crops).
        crop_u: ``(B, K, 4)`` uniforms: source row, source column, target row, target column.
        clutter_only: return the clutter layer (crops only) of exactly these displays.
        out: optional ``(B, N, N)`` float32 buffer.

    Returns:
        images ``(B, N, N)`` float32 in [0, 1], offsets ``(B, 2)`` int64, contrasts ``(B,)`` float32.
    """
    N, K, s = cfg.size, cfg.crops, cfg.crop_size
    B = digits.shape[0]
    dev = small.device
    offsets = _offsets(cfg, small)
    contrasts = _contrasts(cfg, small)
    img = torch.zeros(B, N, N, dtype=torch.float32, device=dev) if out is None else out.zero_()
    bi = torch.arange(B, device=dev)[:, None, None]
    if K:
        if crop_digits is None or crop_u is None or crop_u.shape[1] != K:
            raise ValueError(f"render_black: {K} crops need crop_digits (B, {K}, 28, 28) and crop_u (B, {K}, 4)")
        ar = torch.arange(s, device=dev)
        src = (crop_u[..., :2].double() * (DIGIT - s + 1)).floor().clamp(max=DIGIT - s).long()  # (B, K, 2)
        dst = (crop_u[..., 2:].double() * (N - s + 1)).floor().clamp(max=N - s).long()
        pieces = _as_unit(crop_digits.to(dev))
        for k in range(K):  # one crop at a time, in order: no colliding writes, same sums on every device
            piece = pieces[bi, k, (src[:, k, :1] + ar)[:, :, None], (src[:, k, 1:] + ar)[:, None, :]]  # (B, s, s)
            ri = (dst[:, k, :1] + ar)[:, :, None]
            ci = (dst[:, k, 1:] + ar)[:, None, :]
            img[bi, ri, ci] += piece
        img.clamp_(max=1.0)
    if clutter_only:
        return img, offsets, contrasts
    D = _as_unit(digits.to(dev)) * contrasts.reshape(B, 1, 1)
    ar = torch.arange(DIGIT, device=dev)
    if N == DIGIT:  # the frame itself shifted, zero fill, cropped (as the MotionClouds 28 display)
        rows = ar[None, :] - offsets[:, :1]  # (B, 28) source rows
        cols = ar[None, :] - offsets[:, 1:]
        ok = ((rows >= 0) & (rows < DIGIT))[:, :, None] & ((cols >= 0) & (cols < DIGIT))[:, None, :]
        img += D[bi, rows.clamp(0, DIGIT - 1)[:, :, None], cols.clamp(0, DIGIT - 1)[:, None, :]] * ok
    else:  # validation keeps the frame inside the display
        ri = (N // 2 - DIGIT // 2 + offsets[:, :1] + ar)[:, :, None]
        ci = (N // 2 - DIGIT // 2 + offsets[:, 1:] + ar)[:, None, :]
        img[bi, ri, ci] += D
    img.clamp_(0.0, 1.0)
    return img, offsets, contrasts


def render(
    digits: torch.Tensor,
    small: torch.Tensor,
    spectra: torch.Tensor,
    cfg: DisplayConfig,
    *,
    clutter_only: bool = False,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render displays from digits and uniform random numbers (the pure core of the generator).

    Args:
        digits: ``(B, 28, 28)`` uint8 or float digit frames.
        small: ``(B, 4)`` uniforms in [0, 1) for placement (azimuth, two normals) and contrast.
        spectra: ``(B, 2*N*(N//2+1))`` clutter spectra: white spectra times the
            envelope (:func:`whatwhere.data.clutter.white_spectrum` with ``envelope``).
        cfg: the display configuration.
        clutter_only: return the clutter layer of exactly these displays (same normalisation and
            mask) without the digit, so that ``display - clutter_only`` is the digit's footprint.
        out: optional ``(B, N, N)`` float32 buffer to render into.

    Returns:
        images ``(B, N, N)`` float32, offsets ``(B, 2)`` int64, contrasts ``(B,)`` float32.
    """
    if cfg.background != "motioncloud":
        raise ValueError(f"render draws MotionClouds displays; background {cfg.background!r} is drawn by render_black")
    N = cfg.size
    B = digits.shape[0]
    dev = spectra.device
    offsets = _offsets(cfg, small)
    contrasts = _contrasts(cfg, small)

    z = field_from_spectrum(spectra, N, out=out)  # zero-mean clutter field
    flat = z.reshape(B, -1)
    zmin, zmax = flat.amin(1), flat.amax(1)
    peak = torch.maximum(zmax, -zmin).clamp_min_(torch.finfo(z.dtype).tiny)
    # Michelson rectification (0.5 z/peak + 0.5) and clutter level n: B = n (z/(2 peak)) + 0.5.
    scale = cfg.clutter * 0.5 / peak
    img = z.mul_(scale.reshape(B, 1, 1)).add_(0.5)
    if cfg.clutter > 1:
        img.clamp_(0, 1)
    b_min = (zmin * scale + 0.5).clamp(0, 1)
    b_max = (zmax * scale + 0.5).clamp(0, 1)

    F = _digit_layer(digits.to(dev), offsets, cfg)  # (B, 28, 28)
    c = contrasts.reshape(B, 1, 1)
    if N == DIGIT:
        r0 = torch.zeros(B, dtype=torch.int64, device=dev)
        c0 = r0
    else:
        r0 = N // 2 - DIGIT // 2 + offsets[:, 0]
        c0 = N // 2 - DIGIT // 2 + offsets[:, 1]
    ar = torch.arange(DIGIT, device=dev)
    bi = torch.arange(B, device=dev)[:, None, None]
    ri = (r0[:, None] + ar[None, :])[:, :, None]
    ci = (c0[:, None] + ar[None, :])[:, None, :]
    window = img[bi, ri, ci]  # (B, 28, 28) clutter under the digit frame
    if cfg.mixing == "opaque":
        D = 0.5 + c * (2 * F - 1) / 2
        mixed = torch.where(D > 0.5, torch.maximum(D, window), window)
    else:
        mixed = window + c * F / 2
    mixed = mixed.clamp(0, 1)

    if not cfg.masked:
        if not clutter_only:
            img[bi, ri, ci] = mixed
        return img, offsets, contrasts

    # min-max re-normalisation over the whole mixed image, then the mask.  Mixing only raises
    # pixels, so the max is max(B, window) and the min is B's min unless the digit covered it.
    hi = torch.maximum(b_max, mixed.reshape(B, -1).amax(1))
    lo = b_min
    covered = (mixed > window).reshape(B, -1)
    wmin_raised = (window.reshape(B, -1) <= b_min[:, None] + 0) & covered
    redo = wmin_raised.any(1)
    img[bi, ri, ci] = mixed
    if bool(redo.any()):  # rare: the clutter minimum was under the digit
        lo = lo.clone()
        lo[redo] = img[redo].reshape(int(redo.sum()), -1).amin(1)
    if clutter_only:
        img[bi, ri, ci] = window
    span = (hi - lo).clamp_min(1e-12)
    m = mask_disk(N, dev)
    img.sub_(lo.reshape(B, 1, 1)).mul_((1 / span).reshape(B, 1, 1)).sub_(0.5).mul_(m).add_(0.5)
    return img, offsets, contrasts


# ---------------------------------------------------------------------- seeded sets


class DisplaySet:
    """A seeded set of displays over the digits of one MNIST split.

    ``set.batch(start, stop, epoch)`` returns positions ``[start, stop)`` as :class:`DisplayBatch`;
    ``set.epoch(e, batch_size)`` iterates over one epoch; ``DisplayEpoch(set, e)`` is a torch
    ``Dataset`` view.  See the module docstring for the reproducibility contract.

    Args:
        images: ``(n, 28, 28)`` uint8 digits; labels: ``(n,)`` int64.
        config: the display configuration.
        seed: the seed (an int; required: randomness is explicit).
        shuffle: permute the digits with a seeded permutation per epoch (training order).
        static: ignore the epoch (same displays every epoch, as the original code).
        device: where displays are generated (``"cpu"``, ``"cuda"``, ...).
        chunk_size: displays per random stream; part of the reproducibility key (default 256 on
            CPU, 4096 on other devices).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        config: DisplayConfig,
        *,
        seed: int,
        shuffle: bool = False,
        static: bool = False,
        device: str | torch.device = "cpu",
        chunk_size: int | None = None,
        sub_batch: int | None = None,
    ) -> None:
        if images.ndim != 3 or tuple(images.shape[1:]) != (DIGIT, DIGIT):
            raise ValueError(f"images must have shape (n, 28, 28), got {tuple(images.shape)}")
        if labels.shape[0] != images.shape[0]:
            raise ValueError("images and labels must have the same length")
        if int(seed) != seed:
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.config = config
        self.seed = int(seed)
        self.shuffle = shuffle
        self.static = static
        # CPU: small chunks (random access stays cheap); GPU: large ones (few, large kernels)
        self.chunk_size = int(chunk_size or (256 if self.device.type == "cpu" else 4096))
        # CPU: small sub-batches stay in cache; GPU: render whole requests at once.
        self.sub_batch = sub_batch or (64 if self.device.type == "cpu" else 8192)
        self._black = config.background == "black"
        self._envelope = None if self._black else envelope_half(config.size, config.sf_0, config.B_sf, self.device)
        self._chunk_cache: tuple[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] | None = None
        self._order_cache: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def _epoch_key(self, epoch: int) -> int:
        return 0 if self.static else int(epoch)

    def order(self, epoch: int = 0) -> torch.Tensor:
        """``(n,)`` MNIST index of the digit at each position of this epoch."""
        e = self._epoch_key(epoch)
        if not self.shuffle:
            return torch.arange(len(self), device=self.device)
        if self._order_cache is None or self._order_cache[0] != e:
            g = generator(self.seed, "order", e)
            self._order_cache = (e, torch.randperm(len(self), generator=g).to(self.device))
        return self._order_cache[1]

    def _chunk(self, epoch: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random numbers of chunk ``k``: placement/contrast uniforms ``(C, 4)`` and clutter
        uniforms ``(C, 2N(N/2+1))`` (black displays: crop uniforms ``(C, 5·crops)``), a pure
        function of ``(seed, epoch, k)``."""
        key = (self._epoch_key(epoch), k)
        if self._chunk_cache is not None and self._chunk_cache[0] == key:
            return self._chunk_cache[1]
        C, dev = self.chunk_size, self.device
        small = uniform(C, N_SMALL, self.seed, "placement", key[0], k, device=dev)
        if self._black:  # per crop: source digit, source corner, target corner (a stream of its own)
            u = uniform(C, N_CROP * self.config.crops, self.seed, "crops", key[0], k, device=dev)
            self._chunk_cache = (key, (small, u))
            return small, u
        # clutter uniforms; the white spectrum and the envelope are made per sub-batch (cache-friendly)
        u = uniform(
            C,
            spectrum_uniform_count(self.config.size),
            self.seed,
            "clutter",
            key[0],
            k,
            device=dev,
            coarse=dev.type == "cpu",
        )
        self._chunk_cache = (key, (small, u))
        return small, u

    def random_numbers(self, start: int, stop: int, epoch: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The random numbers of positions ``[start, stop)`` (see :meth:`_chunk`)."""
        parts = []
        C = self.chunk_size
        for k in range(start // C, (stop - 1) // C + 1):
            lo, hi = max(start, k * C) - k * C, min(stop, (k + 1) * C) - k * C
            small, u = self._chunk(epoch, k)
            parts.append((small[lo:hi], u[lo:hi]))
        if len(parts) == 1:
            return parts[0]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def batch(
        self,
        start: int,
        stop: int,
        epoch: int = 0,
        *,
        clutter_only: bool = False,
        offset: tuple[int, int] | None = None,
    ) -> DisplayBatch:
        """DisplayBatch at positions ``[start, stop)`` of ``epoch``.

        ``offset``: place every digit at this fixed (di, dj) instead of the configured placement
        (same clutter, contrasts and digits: used by the accuracy map).
        """
        cfg = self.config if offset is None else self.config.replace(placement="offset", offset=offset)
        if not 0 <= start < stop <= len(self):
            raise IndexError(f"positions [{start}, {stop}) out of range for a set of {len(self)}")
        idx = self.order(epoch)[start:stop]
        N = self.config.size
        images = torch.empty(stop - start, N, N, dtype=torch.float32, device=self.device)
        offsets = torch.empty(stop - start, 2, dtype=torch.int64, device=self.device)
        contrasts = torch.empty(stop - start, dtype=torch.float32, device=self.device)
        for s in range(start, stop, self.sub_batch):
            e = min(stop, s + self.sub_batch)
            small, u = self.random_numbers(s, e, epoch)
            a, b = s - start, e - start
            if self._black:
                K, n = self.config.crops, len(self)
                cu = u.reshape(e - s, K, N_CROP)
                src = (cu[..., 0].double() * n).floor().clamp(max=n - 1).long()  # (b, K) digits of the set
                _, offsets[a:b], contrasts[a:b] = render_black(
                    self.images[idx[a:b]],
                    small,
                    cfg,
                    crop_digits=self.images[src],
                    crop_u=cu[..., 1:],
                    clutter_only=clutter_only,
                    out=images[a:b],
                )
                continue
            spectra = white_spectrum(u, self._envelope)
            _, offsets[a:b], contrasts[a:b] = render(
                self.images[idx[a:b]], small, spectra, cfg, clutter_only=clutter_only, out=images[a:b]
            )
        return DisplayBatch(images, self.labels[idx], offsets, contrasts, idx)

    def epoch(
        self, epoch: int = 0, batch_size: int = 100, *, limit: int | None = None, offset: tuple[int, int] | None = None
    ) -> Iterator[DisplayBatch]:
        """Iterate over one epoch in batches (the last one may be smaller)."""
        n = len(self) if limit is None else min(limit, len(self))
        for s in range(0, n, batch_size):
            yield self.batch(s, min(n, s + batch_size), epoch, offset=offset)

    def with_config(self, config: DisplayConfig) -> DisplaySet:
        """The same digits, seed and order with another display configuration."""
        return DisplaySet(
            self.images,
            self.labels,
            config,
            seed=self.seed,
            shuffle=self.shuffle,
            static=self.static,
            device=self.device,
            chunk_size=self.chunk_size,
            sub_batch=self.sub_batch,
        )


def grid_displays(
    images: torch.Tensor,
    labels: torch.Tensor,
    base: DisplayConfig,
    eccentricities: Sequence[float],
    contrasts: Sequence[float],
    *,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One display per (eccentricity, contrast), random azimuth, each of a different digit.

    Returns images ``(R, C, N, N)``, labels ``(R, C)`` and offsets ``(R, C, 2)`` with
    ``R = len(eccentricities)`` rows and ``C = len(contrasts)`` columns (for figures).
    """
    imgs, labs, offs = [], [], []
    for r, e in enumerate(eccentricities):
        for k, c in enumerate(contrasts):
            cfg = base.replace(placement="eccentricity", eccentricity=e, azimuth=None, contrast=c)
            pos = r * len(contrasts) + k
            d = DisplaySet(images, labels, cfg, seed=seed).batch(pos, pos + 1)
            imgs.append(d.images[0])
            labs.append(d.labels[0])
            offs.append(d.offsets[0])
    R, C = len(eccentricities), len(contrasts)
    return (
        torch.stack(imgs).reshape(R, C, *imgs[0].shape),
        torch.stack(labs).reshape(R, C),
        torch.stack(offs).reshape(R, C, 2),
    )


class DisplayEpoch(torch.utils.data.Dataset):
    """A map-style ``Dataset`` view of one epoch of a :class:`DisplaySet`.

    Items are ``(image (1, N, N), label)``.  Sequential access is efficient (chunks are cached);
    prefer :meth:`DisplaySet.epoch` for training.
    """

    def __init__(self, displays: DisplaySet, epoch: int = 0) -> None:
        self.displays = displays
        self.epoch = epoch
        self._cache: tuple[int, DisplayBatch] | None = None

    def __len__(self) -> int:
        return len(self.displays)

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        C = self.displays.chunk_size
        k = i // C
        if self._cache is None or self._cache[0] != k:
            self._cache = (k, self.displays.batch(k * C, min(len(self), (k + 1) * C), self.epoch))
        d = self._cache[1]
        j = i - k * C
        return d.images[j].unsqueeze(0), int(d.labels[j])
