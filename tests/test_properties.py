"""Property tests (hypothesis, bounded examples): displays, the log-Gabor retina and the sampler.

Each property holds for every input the strategies draw; the examples are few and small so that
the file stays in the fast suite (about 20 s on one core).  With ``CI`` set, ``tests/conftest.py``
loads a derandomised profile (the same examples every run).
"""

import itertools
import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from whatwhere.data import DisplayConfig, DisplaySet, preset
from whatwhere.data.display import mask_disk
from whatwhere.ops.sampling import attention_theta, sample
from whatwhere.retina import Retina

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.integers(0, 2**31 - 1)


def square_digits(halves: list[int]) -> torch.Tensor:
    """28×28 uint8 'digits': a bright (255) square of half-side ``h`` centred on frame pixel (14, 14)."""
    imgs = torch.zeros(len(halves), 28, 28, dtype=torch.uint8)
    for k, h in enumerate(halves):
        imgs[k, 14 - h:15 + h, 14 - h:15 + h] = 255
    return imgs


def noise_digits(n: int, seed: int) -> torch.Tensor:
    """``n`` random uint8 28×28 frames (any digit-like input: the properties must not depend on it)."""
    return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def config_or_reject(**kw) -> DisplayConfig:
    """``preset(...)`` with changes; a combination the configuration refuses is not an example."""
    try:
        return preset(**kw)
    except ValueError:
        assume(False)
        raise  # unreachable


# ---------------------------------------------------------------------------- displays


@FAST
@given(name=st.sampled_from(["paper", "dabane2021"]), size=st.sampled_from([28, 128]),
       clutter=st.floats(0, 2), contrast=st.floats(0.05, 1), mixing=st.sampled_from(["opaque", "transparent"]),
       seed=SEEDS, epoch=st.integers(0, 3))
def test_display_values_are_in_the_unit_interval(name, size, clutter, contrast, mixing, seed, epoch):
    cfg = config_or_reject(name=name, size=size, clutter=clutter, contrast=contrast, mixing=mixing)
    d = DisplaySet(noise_digits(6, seed), torch.arange(6), cfg, seed=seed).batch(0, 6, epoch)
    assert d.images.shape == (6, size, size) and d.images.dtype == torch.float32
    assert torch.isfinite(d.images).all()
    assert d.images.min() >= 0 and d.images.max() <= 1


@FAST
@given(name=st.sampled_from(["paper", "dabane2021"]), size=st.sampled_from([28, 128]),
       placement=st.sampled_from(["polar", "cartesian", "eccentricity", "offset"]),
       ecc=st.floats(0, 40), di=st.integers(-45, 45), dj=st.integers(-45, 45),
       contrast=st.floats(0.1, 1), mixing=st.sampled_from(["opaque", "transparent"]),
       halves=st.lists(st.integers(1, 7), min_size=4, max_size=4), seed=SEEDS)
def test_digit_is_where_the_offsets_say(name, size, placement, ecc, di, dj, contrast, mixing, halves, seed):
    """With no clutter the bright pixels of a display are exactly the synthetic square digit,
    centred on display pixel ``(N//2, N//2) + offset`` (in the 28×28 display: the frame itself is
    shifted and cropped), for every placement mode and the offset the batch records."""
    cfg = config_or_reject(name=name, size=size, clutter=0.0, contrast=contrast, mixing=mixing,
                           placement=placement, eccentricity=ecc, offset=(di, dj))
    d = DisplaySet(square_digits(halves), torch.arange(4), cfg, seed=seed).batch(0, 4)
    if placement == "offset":
        assert d.offsets.tolist() == [[di, dj]] * 4
    N = size
    ii = torch.arange(N)[:, None]
    jj = torch.arange(N)[None, :]
    for img, (oi, oj), h in zip(d.images, d.offsets.tolist(), halves):
        ci, cj = (14 + oi, 14 + oj) if N == 28 else (N // 2 + oi, N // 2 + oj)
        expected = ((ii - ci).abs() <= h) & ((jj - cj).abs() <= h)
        # clutter 0: background 0.5 (unmasked) or 0 after the min-max re-normalisation (masked);
        # the square is brighter by at least contrast/2 (unmasked) or is 1 (masked)
        bright = img > (0.5 + contrast / 4 if not cfg.masked else 0.75)
        assert torch.equal(bright, expected), (oi, oj, h)


@FAST
@given(size=st.sampled_from([28, 128]), n=st.integers(2, 24), chunk=st.integers(1, 9), sub=st.integers(1, 7),
       cuts=st.lists(st.integers(1, 23), max_size=4), seed=SEEDS, epoch=st.integers(0, 5),
       shuffle=st.booleans())
def test_displays_are_a_function_of_seed_epoch_and_position(size, n, chunk, sub, cuts, seed, epoch, shuffle):
    """The same (seed, epoch, positions) give identical displays however the range is sliced, by
    fresh sets or one reused (cached) set, whatever the sub-batch size."""
    cfg = preset("paper", size)
    digits, labels = noise_digits(n, seed), torch.arange(n) % 10
    whole = DisplaySet(digits, labels, cfg, seed=seed, chunk_size=chunk, shuffle=shuffle).batch(0, n, epoch)
    reused = DisplaySet(digits, labels, cfg, seed=seed, chunk_size=chunk, shuffle=shuffle, sub_batch=sub)
    bounds = sorted({0, n, *(c for c in cuts if c < n)})
    parts = []
    for a, b in reversed(list(itertools.pairwise(bounds))):  # out of order too
        parts.insert(0, reused.batch(a, b, epoch))
        fresh = DisplaySet(digits, labels, cfg, seed=seed, chunk_size=chunk, shuffle=shuffle).batch(a, b, epoch)
        assert torch.equal(fresh.images, parts[0].images)
    sliced = type(whole).cat(parts)
    for field in ("images", "labels", "offsets", "contrasts", "indices"):
        assert torch.equal(getattr(sliced, field), getattr(whole, field)), field
    other = DisplaySet(digits, labels, cfg, seed=seed, chunk_size=chunk, shuffle=shuffle).batch(0, n, epoch + 1)
    assert not torch.equal(other.images, whole.images)  # another epoch, other displays


@FAST
@given(size=st.sampled_from([32, 45, 64, 128]), clutter=st.floats(0, 2), seed=SEEDS,
       mixing=st.sampled_from(["opaque", "transparent"]))
def test_outside_the_disk_is_the_mask_background(size, clutter, seed, mixing):
    """Masked displays: every pixel outside the disk of radius N/2 around (N//2, N//2) is exactly
    0.5; the disk of :func:`mask_disk` is that set."""
    cfg = DisplayConfig(size=size, clutter=clutter, placement="offset", offset=(0, 0), mixing=mixing)
    assert cfg.masked
    d = DisplaySet(noise_digits(3, seed), torch.arange(3), cfg, seed=seed).batch(0, 3)
    r = torch.arange(size, dtype=torch.float64) - size // 2
    outside = (r[:, None] ** 2 + r[None, :] ** 2) >= (size / 2) ** 2
    assert torch.equal(mask_disk(size) == 0, outside)
    assert torch.all(d.images[:, outside] == 0.5)
    assert d.images.min() >= 0 and d.images.max() <= 1


# ---------------------------------------------------------------------------- retina


@pytest.fixture(scope="module")
def retina(tmp_path_factory):
    """The published retina with plain (linear) whitening; caches in a temporary XDG_CACHE_HOME."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))
    yield Retina(offset_clip=False)
    mp.undo()


def band_limited(n: int, seed: int, f_lo: float, f_hi: float, N: int = 128) -> torch.Tensor:
    """``n`` random real images whose spectrum lives in ``f_lo <= |f| <= f_hi`` (cycles/pixel)."""
    g = torch.Generator().manual_seed(seed)
    fx = torch.fft.fftfreq(N)[:, None]
    fy = torch.fft.rfftfreq(N)[None, :]
    f = torch.sqrt(fx**2 + fy**2)
    band = ((f >= f_lo) & (f <= f_hi)).to(torch.complex64)
    spec = torch.complex(torch.randn(n, N, N // 2 + 1, generator=g), torch.randn(n, N, N // 2 + 1, generator=g))
    return torch.fft.irfft2(spec * band, s=(N, N)).float()


@settings(FAST, max_examples=10)
@given(seed=SEEDS, a=st.floats(-3, 3), b=st.floats(-3, 3), method=st.sampled_from(["dense", "truncated"]),
       kind=st.sampled_from(["uniform", "displays"]))
def test_retina_encoding_is_linear(retina, seed, a, b, method, kind):
    """encode(a x + b y) = a encode(x) + b encode(y) (plain whitening; both encoders)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        x, y = torch.rand(2, 2, 128, 128, generator=g)
    else:
        ds = DisplaySet(noise_digits(4, seed), torch.arange(4), preset("paper", 128), seed=seed)
        x, y = ds.batch(0, 4).images.view(2, 2, 128, 128)
    ex, ey = retina.encode(x, method=method), retina.encode(y, method=method)
    lhs = retina.encode(a * x + b * y, method=method)
    rhs = a * ex + b * ey
    scale = abs(a) * ex.abs().max() + abs(b) * ey.abs().max() + 1e-6
    assert ((lhs - rhs).abs().max() / scale) < 1e-4


@FAST
@given(seed=SEEDS, f_lo=st.floats(2 / 128, 0.05), f_hi=st.floats(0.08, 0.2), amplitude=st.floats(1e-2, 1e2))
def test_dewhiten_inverts_whiten_on_band_limited_images(retina, seed, f_lo, f_hi, amplitude):
    """dewhiten(whiten(x)) = x for zero-mean images inside the pre-filter's pass band."""
    x = amplitude * band_limited(2, seed, f_lo, f_hi)
    back = retina.dewhiten(retina.whiten(x, offset_clip=False))
    assert (back - x).abs().max() / x.abs().max() < 2e-3


# ---------------------------------------------------------------------------- sampler


@FAST
@given(b=st.integers(1, 3), h=st.integers(1, 40), w=st.integers(1, 40), seed=SEEDS,
       dtype=st.sampled_from([torch.float32, torch.float64]), background=st.floats(-1, 1))
def test_identity_theta_returns_the_image(b, h, w, seed, dtype, background):
    """The identity theta at the input's own size returns the input, up to float rounding."""
    img = torch.randn(b, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    theta = attention_theta(torch.ones(b, dtype=dtype), torch.zeros(b, dtype=dtype), torch.zeros(b, dtype=dtype))
    out = sample(img, theta, (h, w), background=background)
    assert out.shape == (b, 1, h, w) and out.dtype == dtype
    # float rounding of the grid coordinates, about N·eps px, times the steepest pixel step
    eps = torch.finfo(dtype).eps
    step = max(img.diff(dim=1).abs().max().item() if h > 1 else 0.0, img.diff(dim=2).abs().max().item() if w > 1 else 0.0)
    tol = 2 * eps * max(h, w) * step + 4 * eps * img.abs().max().item()
    assert (out[:, 0] - img).abs().max() <= tol


@FAST
@given(b=st.integers(1, 3), n=st.integers(2, 40), out=st.integers(1, 30), scale=st.floats(0.05, 1),
       shift=st.floats(3.0, 5.0), angle=st.floats(0, 2 * math.pi), background=st.floats(0, 1), seed=SEEDS)
def test_sampling_outside_the_image_gives_the_background(b, n, out, scale, shift, angle, background, seed):
    """A glimpse whose whole grid lies outside the input is exactly the background level."""
    img = torch.rand(b, n, n, generator=torch.Generator().manual_seed(seed))
    tx = torch.full((b,), (shift + scale) * math.cos(angle))
    ty = torch.full((b,), (shift + scale) * math.sin(angle))
    res = sample(img, attention_theta(torch.tensor(scale), tx, ty), out, background=background)
    assert torch.all(res == torch.tensor(background, dtype=res.dtype))
