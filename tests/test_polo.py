"""The POLO log-polar code: geometry, shapes, bank, pyramid, encoding."""

import math

import pytest
import torch
from torch.nn import functional as F

from whatwhere.retina import (DualPoloCode, LogPolarGrid, PoloCode, PoloConfig, dual85, dual_nolowpass,
                              flatten_dual, polo95)
from whatwhere.retina.loggabor import _radius

N = 128


@pytest.fixture(scope="module")
def p95_bp():
    return polo95(filters="bandpass", dtype=torch.float64)


@pytest.fixture(scope="module")
def p95_1f():
    return polo95(dtype=torch.float64)  # the default: 1/f filters, as run in 2021


def _blob(pos, sigma, amplitude=0.5, grey=0.5):
    """A grey N x N display with a Gaussian blob centred at fractional pixel ``pos = (i, j)``."""
    idx = torch.arange(N, dtype=torch.float64)
    g = torch.exp(-((idx[:, None] - pos[0]) ** 2 + (idx[None, :] - pos[1]) ** 2) / (2 * sigma**2))
    return grey + amplitude * g


# ---------------------------------------------------------------------------- geometry and shapes


def test_ring_radii_sf0_and_grid():
    c = PoloConfig()
    assert c.r_min == 8 and c.r_max == 16
    assert torch.allclose(c.ring_radii(), torch.tensor([8.0, 8 * math.sqrt(2)], dtype=torch.float64))
    assert c.ring_radii()[1].item() == pytest.approx(11.31, abs=5e-3)
    assert torch.allclose(c.sf_0(), torch.tensor([0.361, 0.255], dtype=torch.float64), atol=1e-3)
    # the geometric case is a LogPolarGrid on the crop (same radii, same staggered azimuths)
    g = c.grid()
    assert isinstance(g, LogPolarGrid) and g.N == 32
    assert torch.allclose(g.ring_radii(), c.ring_radii())
    assert torch.allclose(g.positions(), c.offsets().transpose(0, 1))
    # odd ring rotated by half an azimuth step
    psi = c.azimuths()
    assert psi[1, 0].item() == pytest.approx(math.pi / 16) and psi[0, 1].item() == pytest.approx(2 * math.pi / 16)
    # "out" rings 16, 19.0, 22.6, 26.9; the 1280-d low-compression rings 11.3, 13.3 are not geometric
    out = PoloConfig(width=64, n_rings=4, n_azimuths=32)
    assert torch.allclose(out.ring_radii(), torch.tensor([16.0, 19.03, 22.63, 26.91], dtype=torch.float64),
                          atol=5e-3)
    low = PoloConfig(n_levels=5, base=math.sqrt(2), r_min=8 * math.sqrt(2))
    assert torch.allclose(low.ring_radii(), torch.tensor([11.31, 13.25], dtype=torch.float64), atol=5e-3)
    with pytest.raises(ValueError):
        low.grid()
    assert PoloCode(low).shape == (8, 10, 16)                  # 1280-d


def test_polo95_shapes_and_eccentricities(p95_bp):
    assert p95_bp.dim == 768 and p95_bp.shape == (8, 6, 16)
    assert p95_bp.kernels.shape == (32, 32, 2, 16, 8)
    ecc = torch.tensor([8, 11.31, 16, 22.63, 32, 45.25], dtype=torch.float64)
    assert torch.allclose(p95_bp.eccentricities_px, ecc, atol=5e-3)
    # exact positions: the crop centre of level l sits at (N/2^(l+1) + 0.5) 2^l - 0.5 (0, 0.5, 1.5 px off)
    centre = torch.tensor([64.0, 64.5, 65.5], dtype=torch.float64).repeat_interleave(2)
    d = p95_bp.positions_px - centre[:, None, None]
    assert torch.allclose(d.norm(dim=-1), ecc[:, None].expand(6, 16), atol=5e-3)
    # azimuth 0 of ring 0 is straight down (row + 8); odd rings rotated by half a step
    assert torch.allclose(d[0, 0], torch.tensor([8.0, 0.0], dtype=torch.float64))
    assert math.atan2(d[1, 0, 1], d[1, 0, 0]) == pytest.approx(math.pi / 16)
    assert p95_bp(torch.rand(3, N, N)).shape == (3, 8, 6, 16)
    assert p95_bp(torch.rand(3, 1, N, N)).shape == (3, 8, 6, 16)


def test_dual_shapes_and_flatten():
    for dual in (dual85(), dual_nolowpass()):
        assert isinstance(dual, DualPoloCode)
        assert dual.code_in.shape == (8, 4, 16) and dual.code_in.dim == 512
        assert dual.code_out.shape == (8, 8, 32) and dual.code_out.dim == 2048
        assert dual.code_out.kernels.shape == (64, 64, 4, 32, 8)
        assert dual.dim == 2560
        x = torch.rand(2, N, N)
        cin, cout = dual(x)
        assert cin.shape == (2, 8, 4, 16) and cout.shape == (2, 8, 8, 32)
        flat = flatten_dual((cin, cout))
        assert flat.shape == (2, 2560)
        assert torch.equal(flat[:, :512], cin.flatten(1)) and torch.equal(flat[:, 512:], cout.flatten(1))
    d85 = dual85()
    assert torch.allclose(d85.code_in.eccentricities_px,
                          torch.tensor([8, 11.31, 16, 22.63], dtype=torch.float64), atol=5e-3)
    assert torch.allclose(d85.code_out.eccentricities_px,
                          torch.tensor([16, 19.03, 22.63, 26.91, 32, 38.05, 45.25, 53.82], dtype=torch.float64),
                          atol=5e-3)
    assert dual_nolowpass().code_in.config.n_levels == 3 and dual_nolowpass().code_in.config.drop_lowpass
    assert dual85().code_out.config.filters == "1/f"
    assert dual85(filters="bandpass").code_out.config.filters == "bandpass"


# ---------------------------------------------------------------------------- the pyramid


def _reference_levels(x, width, n_levels, base=2.0):
    """All levels, straight from the definition (band-pass crops then the low-pass image)."""
    out, img = [], x[:, None]
    for _ in range(n_levels - 1):
        down = F.interpolate(img, scale_factor=1 / base, mode="bilinear")
        res = img - F.interpolate(down, size=img.shape[-2:], mode="bilinear")
        lo = res.shape[-1] // 2 - width // 2
        out.append(res[:, 0, lo:lo + width, lo:lo + width])
        img = down
    out.append(img[:, 0])
    return out


def test_pyramid_levels():
    x = torch.rand(2, N, N, dtype=torch.float64)
    p = polo95(dtype=torch.float64)
    crops = p.pyramid(x)
    ref = _reference_levels(x, 32, 3)
    assert crops.shape == (2, 3, 32, 32)
    assert torch.equal(crops[:, 0], ref[0]) and torch.equal(crops[:, 1], ref[1])
    assert ref[2].shape[-1] == 32 and torch.equal(crops[:, 2], ref[2])     # whole field at 1/4
    # dual "in": 2 levels, level 1 = centre 32 of the 64 px low-pass image; "out" level 1 = whole 64 px field
    d = dual85(dtype=torch.float64)
    ref2 = _reference_levels(x, 32, 2)
    c_in = d.code_in.pyramid(x)
    assert torch.equal(c_in[:, 1], ref2[1][:, 16:48, 16:48])
    assert torch.equal(d.code_out.pyramid(x)[:, 1], _reference_levels(x, 64, 2)[1])
    # band-pass variant: the two band-pass levels, low-pass dropped
    db = dual_nolowpass(dtype=torch.float64)
    ref3 = _reference_levels(x, 64, 3)
    assert torch.equal(db.code_out.pyramid(x), torch.stack(ref3[:2], 1))
    # a constant display: band-pass crops vanish, the code vanishes (zero-mean filters)
    grey = torch.full((1, N, N), 0.5, dtype=torch.float64)
    assert p.pyramid(grey)[:, :2].abs().max() < 1e-12
    assert torch.allclose(p.pyramid(grey)[:, 2], torch.full((1, 32, 32), 0.5, dtype=torch.float64))
    assert p(grey).abs().max() < 1e-10
    assert db.code_in(grey).abs().max() < 1e-10


def test_lowpass_smaller_than_width_is_centred():
    c = PoloConfig(width=32, n_levels=4)                       # last level 16 x 16 inside 32 x 32
    x = torch.rand(1, N, N, dtype=torch.float32)
    crops = PoloCode(c).pyramid(x)
    assert crops.shape == (1, 4, 32, 32)
    border = crops[0, 3].clone()
    border[8:24, 8:24] = 0
    assert border.abs().max() == 0 and crops[0, 3, 8:24, 8:24].abs().min() > 0


# ---------------------------------------------------------------------------- the bank


def test_bank_normalisation_and_original_values(p95_bp, p95_1f):
    for K in (p95_bp.kernels, p95_1f.kernels):
        flat = K.reshape(32 * 32, -1)
        assert torch.allclose(flat.abs().amax(0), torch.ones(256, dtype=torch.float64))
        assert flat.sum(0).abs().max() < 1e-10                  # zero DC response per filter
    # the values reported for the bank as run (the original bank)
    assert p95_1f.kernels.min().item() == pytest.approx(-0.3125, abs=5e-4)
    assert p95_1f.kernels.max().item() == 1.0
    assert not torch.allclose(p95_bp.kernels, p95_1f.kernels, atol=1e-2)
    # float32 default = float64 bank rounded
    assert torch.allclose(polo95(filters="bandpass").kernels.double(), p95_bp.kernels, atol=1e-6)


def test_bank_centres_of_energy(p95_bp, p95_1f):
    c, w = p95_bp.config, 32
    target = c.offsets() + w // 2                               # (R, A, 2) crop pixels
    idx = torch.arange(w, dtype=torch.float64)
    phase = torch.exp(2j * math.pi * idx / w)
    for K in (p95_bp.kernels, p95_1f.kernels):
        E = K**2
        # circular centre of energy (the filters are circularly translated): exact
        for axis, sl in ((0, (slice(None), None)), (1, (None, slice(None)))):
            z = (E * phase[sl][..., None, None, None]).sum((0, 1))
            centre = (torch.angle(z) % (2 * math.pi)) * w / (2 * math.pi)
            assert torch.allclose(centre, target[..., axis, None].expand_as(centre), atol=1e-6)
    # the band-pass bank is compact: its plain centre of energy is within 0.6 px too
    E = p95_bp.kernels**2
    ci = (E * idx[:, None, None, None, None]).sum((0, 1)) / E.sum((0, 1))
    cj = (E * idx[None, :, None, None, None]).sum((0, 1)) / E.sum((0, 1))
    err = torch.sqrt((ci - target[..., 0, None]) ** 2 + (cj - target[..., 1, None]) ** 2)
    assert err.max() < 0.6


def test_bandwidth_bandpass_finite_1f_broad(p95_bp, p95_1f):
    f = _radius(32, half=False)
    logf = torch.log(f)
    logf[0, 0] = 0.0

    def stats(K):
        P = torch.fft.fft2(K.permute(2, 3, 4, 0, 1)).abs() ** 2
        P = P / P.sum((-2, -1), keepdim=True)
        mu = (P * logf).sum((-2, -1))
        sd = torch.sqrt((P * logf**2).sum((-2, -1)) - mu**2)
        low = (P * (f < 1 / 8)).sum((-2, -1))                    # energy below 1/8 cycle/px
        return mu, sd, low

    mu, sd, low = stats(p95_bp.kernels)
    mu_o, sd_o, low_o = stats(p95_1f.kernels)
    assert low.max() < 0.1 and low_o.mean() > 0.3
    assert sd.max() < 0.45 and sd_o.mean() > 0.6
    # with a finite bandwidth sf_0 matters: ring 0 (sf_0 0.36) is tuned higher than ring 1 (0.26)
    assert mu[0].mean() > mu[1].mean() + 0.1
    assert abs(mu_o[0].mean() - mu_o[1].mean()) < 0.05        # 1/f: sf_0 has no effect


# ---------------------------------------------------------------------------- encoding


def test_linearity_and_batch(p95_bp):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 4, N, N, generator=g, dtype=torch.float64)
    a, b = 0.7, -1.3
    assert torch.allclose(p95_bp(a * x + b * y), a * p95_bp(x) + b * p95_bp(y), atol=1e-10)
    single = torch.cat([p95_bp(x[k:k + 1]) for k in range(4)])
    assert torch.allclose(p95_bp(x), single, atol=1e-12)
    p32 = polo95()
    x32 = x.float()
    assert torch.allclose(p32(x32), torch.cat([p32(x32[k:k + 1]) for k in range(4)]), rtol=1e-4, atol=1e-4)
    assert p32(x32).dtype == torch.float32
    # rows: level-major then ring; entries = <crop_l, K[:, :, r, k, o]>
    crops = p95_bp.pyramid(x[:1])
    z = p95_bp(x[:1])
    for (o, l, r, k) in ((3, 0, 1, 5), (0, 2, 0, 15), (7, 1, 1, 0)):
        want = (crops[0, l] * p95_bp.kernels[:, :, r, k, o]).sum()
        assert z[0, o, l * 2 + r, k].item() == pytest.approx(want.item(), abs=1e-10)


@pytest.mark.parametrize("row,k", [(0, 3), (1, 10), (2, 7), (3, 0), (4, 12), (5, 5)])
def test_blob_peaks_in_its_cell(p95_bp, row, k):
    level = row // 2
    pos = p95_bp.positions_px[row, k]
    for sigma in (0.5 * 2**level, 1.0 * 2**level):
        energy = (p95_bp(_blob(pos, sigma)[None])[0] ** 2).sum(0)      # (6, 16)
        assert divmod(int(energy.argmax()), 16) == (row, k)


def test_blob_original_bank(p95_1f):
    for row, k in ((0, 3), (3, 9), (5, 14)):
        pos = p95_1f.positions_px[row, k]
        energy = (p95_1f(_blob(pos, 2**(row // 2))[None])[0] ** 2).sum(0)
        assert divmod(int(energy.argmax()), 16) == (row, k)


def test_dual_blob():
    d = dual_nolowpass(dtype=torch.float64)
    pos = d.code_out.positions_px[5, 20]
    _, cout = d(_blob(pos, 2.0)[None])
    energy = (cout[0] ** 2).sum(0)
    assert divmod(int(energy.argmax()), 32) == (5, 20)


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs,name", [
    (dict(width=31), "width"), (dict(width=0), "width"), (dict(n_levels=0), "n_levels"),
    (dict(base=1.0), "base"), (dict(n_rings=0), "n_rings"), (dict(n_azimuths=2.5), "n_azimuths"),
    (dict(n_orientations=-1), "n_orientations"), (dict(r_min=0.0), "r_min"),
    (dict(r_min=10.0, r_max=9.0), "r_max"), (dict(r_max=17.0), "r_max"),
    (dict(log_density_ratio=1.0), "log_density_ratio"), (dict(B_theta=0.0), "B_theta"),
    (dict(B_sf=float("inf")), "B_sf"), (dict(B_sf=-0.1), "B_sf"), (dict(filters="original"), "filters"), (dict(filters=1), "filters"),
    (dict(n_levels=1, drop_lowpass=True), "n_levels"), (dict(n_levels=9), "n_levels"),
    (dict(dtype=torch.float16), "dtype"),
])
def test_bad_config_raises(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PoloConfig(**kwargs)


def test_bad_inputs_raise(p95_bp):
    with pytest.raises(ValueError):
        p95_bp(torch.rand(2, 64, 64))
    with pytest.raises(ValueError):
        p95_bp(torch.rand(2, 3, N, N))
    with pytest.raises(ValueError, match="unknown"):
        polo95(widht=32)
