"""The shared sampler: every way a model reads part of a display.

* :func:`sample` — bilinear affine resampling (the spatial transformers' glimpse), padded with
  the display's background level 0.5 rather than 0;
* :func:`attention_theta`, :func:`glimpse_centre` — the attention transform and where a glimpse
  lands, in display pixels;
* :func:`fovea` — the 28×28 crop centred at a fixation (integer pixels, the saccade loop's fovea);
* :func:`translate` — the display re-centred on a fixation (what the retina sees after a saccade).

Conventions.  ``theta`` is a ``(B, 2, 3)`` affine map in PyTorch's normalised coordinates, from
the output grid to the input: row 0 gives the input ``x`` (columns, rightward), row 1 the input
``y`` (rows, downward); the input spans [−1, 1], so a translation of 1.0 is N/2 pixels.  With
``align_corners=False`` (our explicit default, also PyTorch's since 1.3 and what the original
notebooks ran with) the normalised coordinate ``u`` is pixel ``((u + 1)·N − 1) / 2``.  Offsets and
fixations are ``(di, dj)`` pixels from the display centre pixel ``(N//2, N//2)``, rows down,
columns right.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "BACKGROUND",
    "GLIMPSE_SCALE",
    "FOVEA",
    "as_nchw",
    "sample",
    "attention_theta",
    "glimpse_centre",
    "fovea",
    "translate",
]

FOVEA = 28  #: side of the fovea (an MNIST digit frame)


def as_nchw(x: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Return images as ``(B, 1, H, W)``.

    Args:
        x: ``(B, H, W)`` or ``(B, 1, H, W)`` images.
        size: if given, ``H`` and ``W`` must both equal it.
    """
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"expected images (B, H, W) or (B, 1, H, W), got shape {tuple(x.shape)}")
    if size is not None and (x.shape[-2] != size or x.shape[-1] != size):
        raise ValueError(f"expected {size}×{size} images, got {x.shape[-2]}×{x.shape[-1]}")
    return x


BACKGROUND = 0.5
GLIMPSE_SCALE = 0.2  # ATN / POLO-ATN scale: 28×28 output ≈ 25.6 px of the 128 px display


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


# --------------------------------------------------------------------------- sampler + geometry


def sample(
    images: torch.Tensor,
    theta: torch.Tensor,
    out_size: int | tuple[int, int],
    *,
    align_corners: bool = False,
    background: float = BACKGROUND,
) -> torch.Tensor:
    """Bilinear affine resampling with the background level outside the input.

    Args:
        images: ``(B, 1, H, W)`` or ``(B, H, W)``.
        theta: ``(B, 2, 3)`` output→input affine map in normalised coordinates (module doc).
        out_size: ``h`` or ``(h, w)`` of the output grid.
        align_corners: passed to both ``affine_grid`` and ``grid_sample``; False (default) means
            the normalised extremes ±1 are the outer edges of the border pixels.
        background: value of every point sampled outside the input (0.5 = display grey).
            Implemented as ``grid_sample(images − background, zero padding) + background``, so
            points fully outside are exactly ``background`` and points in between blend smoothly.

    Returns:
        ``(B, 1, h, w)``, same dtype as ``images``.  At the identity ``theta`` with
        ``(h, w) == (H, W)`` it equals the input up to the float rounding of the grid coordinates
        (about ``N·eps`` px: at most ~2e-5 × the largest step between neighbouring pixels in
        float32 at N = 128).
    """
    x = as_nchw(images)
    h, w = _pair(out_size)
    theta = theta.to(x.dtype)
    grid = F.affine_grid(theta, [x.shape[0], 1, h, w], align_corners=align_corners)
    out = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners)
    return out + background


def attention_theta(scale: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """Isotropic scale + translation: ``[[s, 0, tx], [0, s, ty]]``.

    Args:
        scale, tx, ty: ``(B,)`` (``scale`` may also be a scalar tensor, broadcast).

    Returns:
        theta ``(B, 2, 3)``.
    """
    scale = scale.expand_as(tx)
    zero = torch.zeros_like(tx)
    return torch.stack([torch.stack([scale, zero, tx], -1), torch.stack([zero, scale, ty], -1)], 1)


def glimpse_centre(theta: torch.Tensor, N: int, out_size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Where the output grid's centre lands in the ``N×N`` input, as ``(di, dj)`` pixels from the
    display centre pixel ``(N//2, N//2)`` (``align_corners=False`` geometry).

    Args:
        theta: ``(B, 2, 3)``.
        N: input size.
        out_size: None (default): the geometric centre of the grid (normalised 0), i.e.
            ``((t + 1)·N − 1)/2 − N//2`` with ``t`` the translation — −0.5 px at the identity for
            even ``N`` (the geometric centre lies between pixels N/2−1 and N/2).  Given
            ``(h, w)``: the output pixel ``(h//2, w//2)``, the same convention as the display's
            digit offsets (frame pixel 14 at display pixel 64 + offset), so a 28×28 glimpse of
            scale 28/128 centred on a digit with offset ``(di, dj)`` gives exactly ``(di, dj)``.

    Returns:
        ``(B, 2)`` float: ``(di, dj)``, rows down, columns right.
    """
    if out_size is None:
        xo = yo = 0.0
    else:
        h, w = _pair(out_size)
        xo, yo = (2 * (w // 2) + 1) / w - 1, (2 * (h // 2) + 1) / h - 1
    u = theta[:, 0, 0] * xo + theta[:, 0, 1] * yo + theta[:, 0, 2]  # input x (columns)
    v = theta[:, 1, 0] * xo + theta[:, 1, 1] * yo + theta[:, 1, 2]  # input y (rows)
    to_px = lambda t: ((t + 1) * N - 1) / 2 - N // 2  # noqa: E731
    return torch.stack([to_px(v), to_px(u)], -1)


def _take(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, fill: float) -> torch.Tensor:
    """``out[b, r, c] = images[b, rows[b, r], cols[b, c]]``, ``fill`` where out of range."""
    N = images.shape[-1]
    ok = ((rows >= 0) & (rows < N))[:, :, None] & ((cols >= 0) & (cols < N))[:, None, :]
    b = torch.arange(images.shape[0], device=images.device)[:, None, None]
    out = images[b, rows.clamp(0, N - 1)[:, :, None], cols.clamp(0, N - 1)[:, None, :]]
    return torch.where(ok, out, torch.full_like(out, fill))


def fovea(images: torch.Tensor, fixations: torch.Tensor, size: int = FOVEA, fill: float = 0.5) -> torch.Tensor:
    """The ``size x size`` crops centred at ``fixations``: ``(B, N, N)``, ``(B, 2)`` -> ``(B, size, size)``.

    Crop rows are ``N//2 + gi - size//2 ... N//2 + gi + size//2 - 1`` (the frame a digit at offset
    ``(gi, gj)`` occupies); pixels outside the display are ``fill``.
    """
    N = images.shape[-1]
    ar = torch.arange(size, device=images.device) + N // 2 - size // 2
    fix = fixations.to(images.device).long()
    return _take(images, fix[:, :1] + ar, fix[:, 1:] + ar, fill)


def translate(images: torch.Tensor, fixations: torch.Tensor, fill: float = 0.5) -> torch.Tensor:
    """Displays translated so that ``fixations`` land on the centre: ``view[i, j] = img[i + gi, j + gj]``."""
    N = images.shape[-1]
    ar = torch.arange(N, device=images.device)
    fix = fixations.to(images.device).long()
    return _take(images, fix[:, :1] + ar, fix[:, 1:] + ar, fill)
