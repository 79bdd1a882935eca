"""MotionClouds-equivalent clutter: static, isotropic, band-pass random textures.

This re-implements, batched in torch, the single static frame of the ``MotionClouds`` package
used by the What/Where task (``B_theta = inf``, ``alpha = 0``, log-Gabor radial envelope):

    E(f) = (1/f) · exp(-ln²(f/sf_0) / (2·ln²((sf_0 + B_sf)/sf_0))),   E(0) = 0,

with f the radial frequency in cycles/pixel on the N×N Fourier grid.  A random spectrum
E·X, with X a white complex random value per frequency (E|X|² = 1), is inverse-transformed and rectified to
Michelson contrast 1: ``z <- 0.5 * z / max|z| + 0.5`` (the mean is exactly 0 because the DC
term is 0).  Because of the 1/f factor the *power* peaks near 0.061 cycles/px, not at sf_0.

Difference from the package: MotionClouds draws a real Gaussian amplitude and a uniform phase
per frequency and keeps the real part; we draw independent zero-mean real and imaginary parts
(uniform, variance 1/2 each) on the half-plane of a real FFT.  Both have the same expected
power spectrum, and every pixel sums thousands of independent terms, so both are Gaussian
fields to test precision (``tests/test_clutter.py`` compares spectra and marginals with the
package when it is installed).  This law needs no logarithm or trigonometry, which halves the
cost of the CPU generator.
"""

from __future__ import annotations

import math

import torch

from whatwhere.utils.fourier import radial_frequency

__all__ = [
    "envelope",
    "envelope_half",
    "spectrum_uniform_count",
    "white_spectrum",
    "field_from_spectrum",
    "clutter_from_white",
    "motion_clouds",
]


def _check_params(N: int, sf_0: float, B_sf: float) -> None:
    if int(N) != N or N < 4:
        raise ValueError(f"N must be an integer >= 4, got {N}")
    if not sf_0 > 0:
        raise ValueError(f"sf_0 must be > 0 (cycles/pixel), got {sf_0}")
    if not B_sf > 0:
        raise ValueError(f"B_sf must be > 0 (cycles/pixel), got {B_sf}")


def envelope(N: int, sf_0: float = 0.1, B_sf: float = 0.1, *, half: bool = True, device=None) -> torch.Tensor:
    """The MotionClouds radial envelope E(f) on the unshifted FFT grid, float64, E(0) = 0.

    Shape ``(N, N//2+1)`` for ``half=True`` (matching ``torch.fft.rfft2``), else ``(N, N)``.
    """
    _check_params(N, sf_0, B_sf)
    f = radial_frequency(N, half=half, device=device)
    log_bw = math.log((sf_0 + B_sf) / sf_0)
    safe = torch.where(f > 0, f, torch.ones_like(f))
    env = torch.exp(-(torch.log(safe / sf_0) ** 2) / (2 * log_bw**2)) / safe
    return torch.where(f > 0, env, torch.zeros_like(env))


def spectrum_uniform_count(N: int) -> int:
    """How many uniform numbers one N×N clutter image consumes (two per half-plane frequency)."""
    return 2 * N * (N // 2 + 1)


def white_spectrum(u: torch.Tensor, envelope: torch.Tensor | None = None) -> torch.Tensor:
    """Uniforms ``(B, 2H)`` -> white complex spectra ``(B, 2H)`` laid out ``(B, H, 2)`` (re, im),
    times ``envelope`` ``(H,)`` if given.

    Each component is ``(u - 1/2)·√6``: zero mean, E|X|² = 1 like a standard complex Gaussian,
    in one fused pass (no logarithm or trigonometry: Box-Muller would double the generator's
    cost on CPU).  Every pixel is a sum over thousands of such terms, so the field is Gaussian
    to within the precision any test can see, with the MotionClouds power spectrum.
    """
    H2 = u.shape[1]
    scale = math.sqrt(6.0)
    if envelope is None:
        s = torch.full((H2,), scale, dtype=torch.float32, device=u.device)
    else:
        s = (envelope.to(torch.float32).reshape(-1, 1) * scale).expand(-1, 2).reshape(-1)
    return torch.addcmul(s * -0.5, u.to(torch.float32), s)


def envelope_half(N: int, sf_0: float = 0.1, B_sf: float = 0.1, device="cpu") -> torch.Tensor:
    """The envelope on the ``rfft2`` half-plane, flattened: ``(N*(N//2+1),)`` float32."""
    return envelope(N, float(sf_0), float(B_sf), device=device).to(torch.float32).reshape(-1)


def field_from_spectrum(spec: torch.Tensor, N: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """Zero-mean fields ``(B, N, N)`` from half-plane spectra ``(B, 2*N*(N//2+1))`` laid out
    ``(B, N, N//2+1, 2)`` (re, im) (the DC term must be 0, as the envelope makes it)."""
    B = spec.shape[0]
    if spec.shape[1:] != (spectrum_uniform_count(N),):
        raise ValueError(f"spectrum must have shape (B, {spectrum_uniform_count(N)}), got {tuple(spec.shape)}")
    c = torch.view_as_complex(spec.reshape(B, N, N // 2 + 1, 2))
    return torch.fft.irfft2(c, s=(N, N), out=out)


def clutter_from_white(
    white: torch.Tensor, N: int, sf_0: float = 0.1, B_sf: float = 0.1, *, rectify: bool = True
) -> torch.Tensor:
    """Clutter images from white spectra.

    Args:
        white: ``(B, 2*N*(N//2+1))`` float32, a ``(B, N, N//2+1, 2)`` (re, im) spectrum on the
            ``rfft2`` half-plane (from :func:`white_spectrum`); not modified.
        N: image side.
        rectify: apply the Michelson rectification (values in [0, 1], one extreme at 0 or 1).
            Otherwise return the zero-mean field z itself.

    Returns:
        ``(B, N, N)`` float32 on ``white``'s device.
    """
    _check_params(N, sf_0, B_sf)
    B = white.shape[0]
    if white.shape[1:] != (spectrum_uniform_count(N),):
        raise ValueError(f"white must have shape (B, {spectrum_uniform_count(N)}), got {tuple(white.shape)}")
    env = envelope_half(N, sf_0, B_sf, white.device)
    spec = (white.reshape(B, -1, 2) * env.reshape(1, -1, 1)).reshape(B, -1)
    z = field_from_spectrum(spec, N)
    if not rectify:
        return z
    flat = z.reshape(B, -1)
    zmin, zmax = flat.amin(1), flat.amax(1)  # (aminmax is much slower on CPU)
    peak = torch.maximum(zmax, -zmin).clamp_min_(torch.finfo(z.dtype).tiny)
    return z.mul_((0.5 / peak).reshape(B, 1, 1)).add_(0.5)


def motion_clouds(
    n: int,
    N: int = 128,
    sf_0: float = 0.1,
    B_sf: float = 0.1,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """``n`` fresh clutter images ``(n, N, N)`` in [0, 1] from an explicit generator or seed.

    Exactly one of ``generator`` / ``seed`` must be given (randomness is always explicit).
    """
    if (generator is None) == (seed is None):
        raise ValueError("give exactly one of generator= or seed=")
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n}")
    if generator is None:
        assert seed is not None  # exactly one of them was given
        generator = torch.Generator(device=device or "cpu").manual_seed(int(seed))
    dev = generator.device
    u = torch.rand(n, spectrum_uniform_count(N), generator=generator, device=dev)
    return clutter_from_white(white_spectrum(u), N, sf_0, B_sf)
