import math

import numpy as np
import pytest
import torch

from whatwhere.data import DisplayConfig, DisplayEpoch, DisplaySet, preset
from whatwhere.data.display import mask_disk


def make_set(digits, cfg, **kw):
    imgs, labels = digits
    return DisplaySet(imgs, labels, cfg, seed=kw.pop("seed", 1), **kw)


def test_shapes_and_range(mnist_test):
    for size in (128, 28):
        ds = DisplaySet(mnist_test.images, mnist_test.labels, preset("paper", size), seed=0)
        d = ds.batch(0, 50)
        assert d.images.shape == (50, size, size) and d.images.dtype == torch.float32
        assert d.images.min() >= 0 and d.images.max() <= 1
        assert d.labels.tolist() == mnist_test.labels[:50].tolist()
        assert d.offsets.shape == (50, 2) and d.contrasts.shape == (50,)


def test_outside_mask_is_exactly_grey(mnist_test):
    ds = DisplaySet(mnist_test.images, mnist_test.labels, preset("paper", 128), seed=0)
    d = ds.batch(0, 64)
    outside = mask_disk(128) == 0
    assert torch.all(d.images[:, outside] == 0.5)
    inside = d.images[:, ~outside]
    assert inside.min() == 0 and inside.max() == 1  # min-max re-normalised inside


def test_digit_lands_where_asked(synthetic_digits):
    """Centre of mass of (display - clutter-only twin) is within 1 px of the requested offset."""
    offsets = [(0, 0), (20, 0), (0, -30), (-25, 25), (33, -17), (-40, 3), (7, 41)]
    for di, dj in offsets:
        cfg = preset("paper", 128, placement="offset", offset=(di, dj), contrast=1.0, clutter=0.3)
        ds = make_set(synthetic_digits, cfg)
        d = ds.batch(0, 16)
        twin = ds.batch(0, 16, clutter_only=True).images
        diff = (d.images - twin).clamp_min(0)
        ii, jj = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
        w = diff.sum((1, 2))
        com_i = (diff * ii).sum((1, 2)) / w - 64
        com_j = (diff * jj).sum((1, 2)) / w - 64
        assert torch.all((com_i - di).abs() < 1) and torch.all((com_j - dj).abs() < 1), (di, dj, com_i, com_j)
        assert d.offsets.tolist() == [[di, dj]] * 16


def test_eccentricity_and_azimuth(synthetic_digits):
    cfg = preset("paper", 128, placement="eccentricity", eccentricity=30.0, azimuth=None)
    d = make_set(synthetic_digits, cfg).batch(0, 64)
    ecc = d.offsets.double().norm(dim=1)
    assert torch.all(ecc <= 30) and torch.all(ecc > 28.5)  # trunc() toward zero, as the original
    az = torch.atan2(d.offsets[:, 1].double(), d.offsets[:, 0].double())
    assert az.std() > 1.0  # random azimuths
    down = make_set(synthetic_digits, cfg.replace(azimuth=0.0)).batch(0, 4)
    assert down.offsets.tolist() == [[30, 0]] * 4  # azimuth 0 = straight down


def test_polar_and_cartesian_placement_laws(mnist_test):
    ds = DisplaySet(mnist_test.images, mnist_test.labels, preset("paper", 128), seed=0)
    off = ds.batch(0, 1000).offsets.double()
    r = off.norm(dim=1)
    assert r.max() <= 40
    assert 0.12 < (r > 39).double().mean() < 0.25  # P(|N|·30 > 40) = 18.2 %, minus trunc losses
    ds28 = DisplaySet(mnist_test.images, mnist_test.labels, preset("paper", 28), seed=0)
    off28 = ds28.batch(0, 1000).offsets.double()
    assert off28.abs().max() <= 25
    assert off28.std(0).min() > 11 and off28.std(0).max() < 15.5  # σ=15 clipped at 25 and truncated


def test_contrast_bounds(mnist_test):
    cfg = preset("paper", 28, contrast_range=(0.3, 0.7))
    d = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=0).batch(0, 500)
    assert d.contrasts.min() >= 0.3 and d.contrasts.max() <= 0.7
    assert d.contrasts.max() - d.contrasts.min() > 0.35
    fixed = DisplaySet(mnist_test.images, mnist_test.labels, cfg.replace(contrast=0.5), seed=0).batch(0, 10)
    assert torch.all(fixed.contrasts == 0.5)
    # without clutter the digit strokes reach exactly 0.5 + c/2 in the 28 display
    clean = DisplaySet(mnist_test.images, mnist_test.labels, cfg.replace(contrast=0.6, clutter=0.0,
                                                                         placement="offset"), seed=0)
    assert clean.batch(0, 10).images.amax((1, 2)).sub(0.8).abs().max() < 1e-6


def test_same_seed_same_bytes_other_epoch_differs(mnist_test):
    cfg = preset("paper", 128)
    a = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=5).batch(0, 40, epoch=2)
    b = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=5).batch(0, 40, epoch=2)
    assert a.images.numpy().tobytes() == b.images.numpy().tobytes()
    assert torch.equal(a.offsets, b.offsets) and torch.equal(a.contrasts, b.contrasts)
    c = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=5).batch(0, 40, epoch=3)
    assert (a.images - c.images).abs().mean() > 0.05
    s1 = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=5, static=True).batch(0, 40, epoch=2)
    s2 = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=5, static=True).batch(0, 40, epoch=9)
    assert torch.equal(s1.images, s2.images)
    other_seed = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=6).batch(0, 40, epoch=2)
    assert (a.images - other_seed.images).abs().mean() > 0.05


def test_pure_function_of_position(mnist_test):
    """Any batching, order or cache state gives the same display for the same position."""
    cfg = preset("paper", 128)
    ds = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=2, shuffle=True)
    whole = ds.batch(0, 600, epoch=1)
    fresh = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=2, shuffle=True)
    parts = [fresh.batch(s, min(600, s + 97), epoch=1) for s in range(0, 600, 97)]
    assert torch.equal(whole.images, torch.cat([p.images for p in parts]))
    assert torch.equal(whole.indices, torch.cat([p.indices for p in parts]))
    late = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=2, shuffle=True).batch(513, 514, epoch=1)
    assert torch.equal(late.images[0], whole.images[513])
    view = DisplayEpoch(fresh, epoch=1)
    img, label = view[300]
    assert torch.equal(img[0], whole.images[300]) and label == int(whole.labels[300])
    # shuffle permutes the digits per epoch; sequential keeps MNIST order
    assert whole.indices.tolist() != list(range(600))
    assert sorted(ds.order(0).tolist()) == list(range(len(ds)))
    assert not torch.equal(ds.order(0), ds.order(1))


def test_clutter_does_not_depend_on_digits(mnist_test):
    cfg = preset("paper", 128)
    ds = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=3)
    other = DisplaySet(mnist_test.images.flip(0), mnist_test.labels.flip(0), cfg, seed=3)
    a, b = ds.batch(0, 20), other.batch(0, 20)
    ta, tb = ds.batch(0, 20, clutter_only=True), other.batch(0, 20, clutter_only=True)
    assert torch.equal(a.offsets, b.offsets)
    # the clutter layers agree up to each display's own affine min-max normalisation
    for x, y in zip(ta.images, tb.images):
        m = mask_disk(128) > 0
        xs, ys = x[m], y[m]
        corr = np.corrcoef(xs.numpy(), ys.numpy())[0, 1]
        assert corr > 0.999


def test_opaque_mixing_never_darkens(mnist_test):
    for size in (128, 28):
        cfg = preset("paper", size)
        ds = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=4)
        d, twin = ds.batch(0, 100), ds.batch(0, 100, clutter_only=True)
        assert torch.all(d.images >= twin.images)
        assert (d.images > twin.images).any()


def test_transparent_mixing(synthetic_digits):
    cfg = preset("paper", 28, mixing="transparent", placement="offset", offset=(0, 0), contrast=0.6)
    ds = make_set(synthetic_digits, cfg)
    d, twin = ds.batch(0, 8), ds.batch(0, 8, clutter_only=True)
    diff = d.images - twin.images  # c·F/2 on the digit, 0 elsewhere (before clipping)
    inside = synthetic_digits[0][:8] > 0
    assert torch.allclose(diff[inside], torch.full_like(diff[inside], 0.3), atol=0.31)
    assert torch.all(diff[~inside] == 0)


def test_28_display_crops_shifted_digit(synthetic_digits):
    cfg = preset("paper", 28, placement="offset", offset=(20, -20), clutter=0.0, contrast=1.0)
    d = make_set(synthetic_digits, cfg).batch(0, 4)
    # the square (half-width <= 7 around pixel 14) moved to rows >= 27 - ..., columns <= ...
    bright = d.images > 0.75
    rows = bright.any(2)
    cols = bright.any(1)
    assert rows[:, :20 + 14 - 7].sum() == 0 and cols[:, -20 + 14 + 8:].sum() == 0
    assert bright.any()


@pytest.mark.parametrize("changes, match", [
    (dict(placement="eccentricity", eccentricity=52.0), "eccentricity"),
    (dict(placement="offset", offset=(48, 25)), "offset"),
    (dict(clip=60.0), "clip"),
    (dict(contrast=0.0), "contrast"),
    (dict(contrast=1.2), "contrast"),
    (dict(contrast_range=(0.5, 1.5)), "contrast_range"),
    (dict(clutter=-0.1), "clutter"),
    (dict(sf_0=0.0), "sf_0"),
    (dict(sf_0=-0.1), "sf_0"),
    (dict(B_sf=0.0), "B_sf"),
    (dict(placement="spiral"), "placement"),
    (dict(mixing="add"), "mixing"),
])
def test_bad_inputs_raise(changes, match):
    with pytest.raises(ValueError, match=match):
        preset("paper", 128, **changes)


def test_bad_preset_and_keys():
    with pytest.raises(ValueError, match="preset"):
        preset("nature2025")
    with pytest.raises(ValueError, match="unknown display key"):
        DisplayConfig.from_dict({"size": 128, "noize": 1.0})
    assert preset("dabane2021").clutter == 0.75 and preset("paper").clip == 40
    # the largest legal eccentricity keeps the inked core inside the disk
    limit = DisplayConfig().max_offset_norm()
    assert 49 < limit < 50
    preset("paper", 128, placement="eccentricity", eccentricity=limit)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_contract(mnist_test):
    cfg = preset("paper", 128)
    ds = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=0, device="cuda")
    a, b = ds.batch(0, 300, 1), ds.batch(0, 300, 1)
    assert torch.equal(a.images, b.images)
    assert torch.all(a.images[:, mask_disk(128, "cuda") == 0] == 0.5)
