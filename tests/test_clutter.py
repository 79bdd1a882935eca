import math

import numpy as np
import pytest
import torch

from whatwhere.data.clutter import envelope, motion_clouds, radial_frequency


def radial_power(images: np.ndarray, n_bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Mean power per radial-frequency bin (up to 0.5 cycles/px) over a stack of images."""
    N = images.shape[-1]
    x = images - images.mean(axis=(-2, -1), keepdims=True)
    P = (np.abs(np.fft.fft2(x)) ** 2).mean(0)
    f = radial_frequency(N, half=False).numpy()
    bins = np.linspace(0, 0.5, n_bins + 1)
    idx = np.digitize(f, bins) - 1
    power = np.array([P[idx == b].mean() for b in range(n_bins)])
    return 0.5 * (bins[1:] + bins[:-1]), power


def test_envelope_analytic():
    N, sf_0, B_sf = 128, 0.1, 0.1
    E = envelope(N, sf_0, B_sf, half=False)
    f = radial_frequency(N, half=False)
    assert E[0, 0] == 0
    # at f = sf_0 the Gaussian factor is 1: E = 1/sf_0
    k = int(round(sf_0 * N))  # f = k/N on the axis, not exactly sf_0 -> use the formula at that f
    fk = k / N
    expected = math.exp(-math.log(fk / sf_0) ** 2 / (2 * math.log(2) ** 2)) / fk
    assert E[0, k].item() == pytest.approx(expected, rel=1e-12)
    # one octave above sf_0 the log-Gaussian factor is exp(-1/2)
    assert envelope(64, 0.125, 0.125, half=False)[0, 16].item() == pytest.approx(math.exp(-0.5) / 0.25, rel=1e-12)
    # isotropic: equal on the four axes
    assert E[0, 5] == E[5, 0] == E[0, -5] == E[-5, 0]
    # the power E² peaks at sf_0·exp(-ln²2) ≈ 0.0618 cycles/px, not at sf_0
    fine = torch.linspace(0.01, 0.3, 20001, dtype=torch.float64)
    e2 = (torch.exp(-torch.log(fine / sf_0) ** 2 / (2 * math.log(2) ** 2)) / fine) ** 2
    assert fine[e2.argmax()].item() == pytest.approx(sf_0 * math.exp(-math.log(2) ** 2), abs=1e-4)
    assert torch.equal(envelope(N, sf_0, B_sf)[:, : N // 2 + 1], E[:, : N // 2 + 1])
    assert f.shape == E.shape


def test_spectrum_follows_envelope():
    imgs = motion_clouds(400, 128, seed=3).numpy()
    fc, power = radial_power(imgs)
    E = envelope(128, half=False).numpy()
    f = radial_frequency(128, half=False).numpy()
    bins = np.linspace(0, 0.5, len(fc) + 1)
    idx = np.digitize(f, bins) - 1
    expected = np.array([(E[idx == b] ** 2).mean() for b in range(len(fc))])
    sel = (fc > 0.02) & (fc < 0.45)
    r = np.corrcoef(np.log(power[sel]), np.log(expected[sel]))[0, 1]
    assert r > 0.999
    # the peak of the measured power is near 0.06 cycles/px
    assert 0.04 < fc[np.argmax(power)] < 0.09


def test_rectification_and_marginals():
    z = motion_clouds(200, 128, seed=0)
    assert z.shape == (200, 128, 128) and z.dtype == torch.float32
    flat = z.reshape(200, -1)
    assert torch.all(flat.min(1).values >= 0) and torch.all(flat.max(1).values <= 1)
    # Michelson contrast 1: one extreme touches 0 or 1 exactly (to float precision)
    dev = (flat - 0.5).abs().max(1).values
    assert torch.allclose(dev, torch.full_like(dev, 0.5), atol=1e-6)
    assert flat.mean().item() == pytest.approx(0.5, abs=2e-3)
    assert 0.10 < flat.std().item() < 0.16


def test_seeded_and_device_arguments():
    a = motion_clouds(3, 32, seed=7)
    b = motion_clouds(3, 32, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, motion_clouds(3, 32, seed=8))
    with pytest.raises(ValueError, match="exactly one"):
        motion_clouds(3, 32)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sf_0=0.0), "sf_0"), (dict(sf_0=-1.0), "sf_0"), (dict(B_sf=0.0), "B_sf"), (dict(N=2), "N"),
])
def test_bad_parameters(kwargs, match):
    args = dict(N=32, sf_0=0.1, B_sf=0.1) | kwargs
    with pytest.raises(ValueError, match=match):
        envelope(**args)


def test_parity_with_motionclouds():
    """Radially averaged power spectrum and pixel statistics match the MotionClouds package."""
    mc = pytest.importorskip("MotionClouds", reason="the MotionClouds package (test oracle) is not installed")
    N, n = 128, 300
    fx, fy, ft = mc.get_grids(N, N, 1)
    env = mc.envelope_gabor(fx, fy, ft, sf_0=0.1, B_sf=0.1, B_theta=np.inf, V_X=0.0, V_Y=0.0, B_V=0)
    ref = np.stack([mc.rectif(mc.random_cloud(env, seed=1000 + k))[:, :, 0] for k in range(n)])
    ours = motion_clouds(n, N, seed=1).numpy().astype(np.float64)
    fc, p_ref = radial_power(ref)
    _, p_ours = radial_power(ours)
    sel = (fc > 0.02) & (fc < 0.45)
    assert np.corrcoef(p_ref[sel], p_ours[sel])[0, 1] > 0.999
    assert np.corrcoef(np.log(p_ref[sel]), np.log(p_ours[sel]))[0, 1] > 0.999
    assert p_ours.sum() / p_ref.sum() == pytest.approx(1.0, abs=0.05)
    assert ours.mean() == pytest.approx(ref.mean(), abs=3e-3)
    assert ours.std() == pytest.approx(ref.std(), rel=0.05)
    # marginal distribution: deciles agree
    q = np.linspace(0.1, 0.9, 9)
    np.testing.assert_allclose(np.quantile(ours, q), np.quantile(ref, q), atol=0.01)
