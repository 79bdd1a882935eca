"""The log-polar retina: grid geometry, log-Gabor bank, encoding, inverse, colliculus, Where target."""

import math

import numpy as np
import pytest
import torch

from whatwhere.data import DisplaySet, preset
from whatwhere.retina import Colliculus, LogPolarGrid, Retina, RetinaConfig, accuracy_field
from whatwhere.utils.cache import cache_dir as _cache_dir
from whatwhere.retina.loggabor import whitening_filter

N = 128
# the original retina's ring radii (px) and collicular kernel argmax distances (azimuth 0)
RING_RADII = [2.33, 3.29, 4.63, 6.54, 9.21, 12.99, 18.32, 25.83, 36.42, 51.35]
KERNEL_ARGMAX_AZ0 = [2.0, 3.0, 5.0, 6.1, 9.1, 12.2, 19.0, 27.1, 36.1, 55.3]


@pytest.fixture(scope="module")
def retina(tmp_path_factory):
    """One retina for the module, its inverse cached in a temporary XDG_CACHE_HOME."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))
    yield Retina(offset_clip=False)
    mp.undo()


def cache_dir():
    return _cache_dir("retina")


@pytest.fixture(scope="module")
def colliculus(retina):
    return Colliculus(retina)


@pytest.fixture(scope="module")
def displays(synthetic_digits):
    """24 cluttered 128x128 displays (paper preset, synthetic digits), float32 in [0, 1]."""
    imgs, labels = synthetic_digits
    return DisplaySet(imgs[:24], labels[:24], preset("paper"), seed=7).batch(0, 24).images


def _reference_filter(o, a, e, p):
    """One filter, float64 numpy, written independently from the formulas (centred FFT grid)."""
    fx, fy = np.mgrid[-N // 2:N // 2, -N // 2:N // 2] / N
    f = np.sqrt(fx**2 + fy**2)
    f[N // 2, N // 2] = 1e-6
    M = (1 - np.exp((f - 0.5) / 0.035)) * (f < 0.5) * (1 - np.exp(-0.5 * f**2 / (0.5 / N) ** 2))
    ecc = 0.8 * 1.41 ** -(10 - e)
    r = math.sqrt(2) * N / 2 * ecc
    psi = (a + 0.5 * (e % 2)) * 2 * math.pi / 24
    sf_0 = min(0.5 * 0.03 / ecc, 0.45)
    theta = o * math.pi / 6 + psi
    u, v = N / 2 + r * math.cos(psi), N / 2 + r * math.sin(psi)
    G = np.exp(-0.5 * np.log(f / sf_0) ** 2 / 0.4**2) / f * np.exp(np.cos(np.arctan2(fy, fx) - theta) / (math.pi / 12) ** 2)
    G = G * np.exp(-2j * math.pi * (u * fx + v * fy)) * M
    g = np.fft.ifft2(np.fft.ifftshift(G * np.exp(-1j * p * math.pi / 2))).real
    g -= np.median(g)
    return g / np.abs(g).max()


def _rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


# ---------------------------------------------------------------------------- grid


def test_ring_radii_and_azimuth_stagger():
    grid = LogPolarGrid()
    assert torch.allclose(grid.ring_radii(), torch.tensor(RING_RADII, dtype=torch.float64), atol=0.006)
    psi = grid.azimuths()
    assert psi.shape == (24, 10)
    step = 2 * math.pi / 24
    assert torch.allclose(psi[:, 0], torch.arange(24, dtype=torch.float64) * step)
    assert torch.allclose(psi[:, 1] - psi[:, 0], torch.full((24,), step / 2, dtype=torch.float64))
    assert torch.allclose(psi[:, 2], psi[:, 0])
    pos = grid.positions()
    assert pos.shape == (24, 10, 2)
    assert torch.allclose(pos[0, 0], torch.tensor([RING_RADII[0], 0.0], dtype=torch.float64), atol=0.006)  # down
    assert torch.allclose(pos[6, 0], torch.tensor([0.0, RING_RADII[0]], dtype=torch.float64), atol=0.006)  # right
    assert grid.cell_index(3, 7) == 37 and grid.n_cells == 240 and grid.centre == 64
    assert not LogPolarGrid(stagger=False).azimuths()[:, 1].sub(psi[:, 0]).abs().max() > 1e-12


@pytest.mark.parametrize("bad", [dict(n_rings=0), dict(rho=1.0), dict(ecc_max=-1.0), dict(N=12.5)])
def test_grid_rejects_bad_parameters(bad):
    with pytest.raises(ValueError):
        LogPolarGrid(**bad)


# ---------------------------------------------------------------------------- bank


def test_bank_matches_independent_float64_construction(retina):
    bank = retina.bank.view(6, 24, 10, 2, N * N)
    assert retina.bank.shape == (2880, N * N) and retina.bank.dtype == torch.float32
    for o, a, e, p in [(0, 0, 0, 0), (1, 3, 5, 1), (5, 23, 9, 0), (2, 7, 9, 1), (3, 11, 4, 0), (4, 17, 7, 1)]:
        ref = torch.from_numpy(_reference_filter(o, a, e, p).ravel())
        assert (bank[o, a, e, p].double() - ref).abs().max() < 2e-5, (o, a, e, p)


def test_bank_normalisation_and_dc_leak(retina):
    bank = retina.bank.double().view(6, 24, 10, 2, N * N)
    assert torch.allclose(bank.abs().amax(-1), torch.ones(6, 24, 10, 2, dtype=torch.float64))
    leak = bank.sum(-1).abs().mean(dim=(0, 1, 3))  # the original bank: .70, 1.92, 59.3 for rings 7-9
    assert 0.5 < leak[7] < 0.9 and 1.5 < leak[8] < 2.4 and 55 < leak[9] < 64
    assert leak[:6].max() < 0.01


def test_filter_centre_of_energy_at_its_position(retina):
    """Circular centre of energy of g^2 at the intended (fractional) position, all 2880 filters.

    Translation is applied exactly in the Fourier domain and the energy of a centred filter is
    point-symmetric, so the circular centroid (which tolerates the wrap-around of the ring-8/9
    filters) must be exact up to rounding; 0.05 px leaves room for float32."""
    energy = retina.bank.double().view(6, 24, 10, 2, N, N) ** 2
    phase = torch.exp(2j * math.pi * torch.arange(N, dtype=torch.float64) / N)
    centre = retina.grid.positions() + N / 2
    rows = torch.angle((energy.sum(-1) * phase).sum(-1)) * N / (2 * math.pi)
    cols = torch.angle((energy.sum(-2) * phase).sum(-1)) * N / (2 * math.pi)
    d_i = (rows - centre[None, :, :, None, 0] + N / 2) % N - N / 2
    d_j = (cols - centre[None, :, :, None, 1] + N / 2) % N - N / 2
    assert torch.sqrt(d_i**2 + d_j**2).max() < 0.05


def test_point_symmetry_of_the_bank(retina):
    """Azimuth a + 12 is the point reflection of azimuth a (what TruncatedBank relies on)."""
    g = retina.bank.view(-1, N, N)
    mirror = retina.config.code_mirror()
    reflected = torch.roll(torch.flip(g, dims=(1, 2)), shifts=(1, 1), dims=(1, 2))  # p -> -p about (64, 64)
    assert (g[mirror] - reflected).abs().max() < 1e-5


def test_whitening_filter():
    K = whitening_filter(half=False)
    assert abs(K.mean().item() - 1) < 1e-12
    assert K[0, 0] < 1e-6
    assert 1.75 < K.max().item() < 1.85  # the original filter: maximum ~1.80 near f = 0.31
    Kh = whitening_filter()
    assert Kh.shape == (N, N // 2 + 1) and torch.allclose(Kh, K[:, : N // 2 + 1])


# ---------------------------------------------------------------------------- encoding


def _float64_codes(retina, images, offset_clip=False):
    x = retina.whiten(images.double(), offset_clip=offset_clip).double()
    return x.reshape(len(x), -1) @ retina.bank.double().T


@pytest.mark.parametrize("method", ["dense", "truncated"])
def test_encode_is_linear_and_batch_independent(retina, displays, method):
    x, y = displays[:6], displays[6:12]
    a, b = 0.7, -1.3
    lhs = retina.encode(a * x + b * y, method=method)
    rhs = a * retina.encode(x, method=method) + b * retina.encode(y, method=method)
    assert _rel(lhs, rhs) < 1e-5
    batch = retina.encode(displays, method=method)
    assert batch.shape == (24, 2880) and batch.dtype == torch.float32
    single = torch.cat([retina.encode(displays[i], method=method) for i in range(24)])
    assert _rel(single, batch) < 2e-5  # float32 GEMMs of different shapes sum in different orders


def test_encode_matches_float64_reference(retina, displays):
    """Dense float32 is exact to rounding; the truncated CPU form within 1e-3 per ring."""
    ref = _float64_codes(retina, displays)
    assert _rel(retina.encode(displays, method="dense"), ref) < 1e-5
    assert _rel(retina.encode(displays, method="fp16"), ref) < 2e-3  # half-precision operands
    trunc = retina.encode(displays, method="truncated")
    ring = retina.config.code_rings()
    for e in range(10):
        assert _rel(trunc[:, ring == e], ref[:, ring == e]) < 1e-3, e
    assert torch.backends.cuda.matmul.allow_tf32 is False  # no global precision flag was touched
    assert retina.truncated_operator().macs < 2880 * N * N / 4


def test_offset_clip_encoding(retina, displays):
    clip = Retina()
    assert clip.offset_clip  # the default: the encoding the shipped Where networks were trained on
    ref = _float64_codes(retina, displays, offset_clip=True)
    for method in ("dense", "truncated"):
        assert _rel(clip.encode(displays, method=method), ref) < 1e-3
    plain = retina.encode(displays, method="dense")
    ring9 = retina.config.code_rings() == 9  # the +0.5 shifts ring-9 codes by ~0.5 * sum(g)
    assert _rel(plain[:, ring9], ref[:, ring9]) > 0.5


def test_encode_rejects_bad_input(retina):
    for bad in (torch.zeros(2, 64, 64), torch.zeros(2, 2, N, N), torch.zeros(2, N, N, dtype=torch.int64),
                np.zeros((N, N))):
        with pytest.raises(ValueError):
            retina.encode(bad)
    with pytest.raises(ValueError):
        retina.encode(torch.zeros(1, N, N), method="sparse")
    with pytest.raises(ValueError):
        retina.reconstruct(torch.zeros(2, 2879))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(retina, displays, colliculus):
    gpu = retina.to("cuda")
    cpu_codes = retina.encode(displays, method="dense")
    for method in ("dense", "truncated"):
        assert _rel(gpu.encode(displays.cuda(), method=method).cpu(), cpu_codes) < 1e-3
    gcol = Colliculus(gpu)
    assert torch.equal(gcol.saccade_targets().cpu(), colliculus.saccade_targets())
    maps = torch.rand(4, N, N, generator=torch.Generator().manual_seed(1))
    assert _rel(gcol.pool(maps.cuda()).cpu(), colliculus.pool(maps)) < 1e-5


# ---------------------------------------------------------------------------- inverse


def test_reconstruction_of_a_smooth_blob_and_cache(retina):
    i = torch.arange(N, dtype=torch.float32) - N // 2
    blob = torch.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / (2 * 8.0**2))[None]
    rec = retina.reconstruct(retina.encode(blob, method="dense"))
    assert rec.shape == (1, N, N)
    assert _rel(rec, retina.whiten(blob)) < 0.05  # measured 0.012 (rcond 1e-3)
    files = list(cache_dir().glob("pinv-*.safetensors"))
    assert len(files) == 1
    again = Retina(offset_clip=False)
    assert torch.equal(again.pseudo_inverse(), retina.pseudo_inverse())  # loaded from the cache
    assert len(list(cache_dir().glob("*"))) == 1  # no temporary file left behind


# ---------------------------------------------------------------------------- colliculus


def test_colliculus_kernels(colliculus):
    K = colliculus.kernels
    assert K.shape == (240, N * N)
    assert torch.allclose(K.sum(1), torch.ones(240), atol=1e-5)
    assert (K >= 0).all()
    dist = colliculus.saccade_targets().view(24, 10, 2).double().norm(dim=-1)
    assert torch.allclose(dist[0], torch.tensor(KERNEL_ARGMAX_AZ0, dtype=torch.float64), atol=0.06)
    cells = torch.rand(3, 240, generator=torch.Generator().manual_seed(0))
    assert _rel(colliculus.pool(colliculus.unpool(cells)), cells) < 1e-4


def test_unpooled_delta_lands_at_the_cell_target(colliculus):
    maps = colliculus.unpool(torch.eye(240), method="pinv").reshape(240, -1)
    flat = maps.argmax(1)
    landed = torch.stack((flat // N, flat % N), 1) - N // 2
    target = colliculus.saccade_targets(method="pinv")
    at_target = maps.gather(1, ((target[:, 0] + N // 2) * N + target[:, 1] + N // 2)[:, None])[:, 0]
    assert (at_target >= maps.amax(1) * (1 - 1e-6)).all()   # the argmax, up to exact ties
    assert ((landed - target).abs().sum(1) > 0).sum() <= 20
    # and close to the kernel-argmax targets: within a quarter of the ring radius + 1.5 px
    radius = LogPolarGrid().ring_radii().repeat(24)
    gap = (landed - colliculus.saccade_targets()).double().norm(dim=1)
    assert (gap <= 0.25 * radius + 1.5).all()
    transposed = colliculus.unpool(torch.eye(240)[:3], method="transpose")
    assert transposed.shape == (3, N, N) and transposed.min() >= 0


# ---------------------------------------------------------------------------- Where target


def test_accuracy_field_sign_convention():
    A = torch.arange(55 * 55, dtype=torch.float32).view(55, 55)
    d = torch.tensor([[5, -7]])
    field = accuracy_field(A, d, baseline=-1.0)[0]
    # fovea at offset t: the digit is at d - t from it -> A[d - t + 27]
    for t in [(0, 0), (5, -7), (10, 3), (-20, -30)]:
        assert field[64 + t[0], 64 + t[1]] == A[27 + 5 - t[0], 27 - 7 - t[1]]
    assert field[64 + 5 + 28, 64] == -1.0 and field[64, 64 - 7 - 28] == -1.0
    reflected = accuracy_field(A, d, baseline=-1.0, reflect=True)[0]  # the original (bug B8)
    assert reflected[64 + 10, 64 + 3] == A[27 + 10 - 5, 27 + 3 + 7]
    with pytest.raises(ValueError):
        accuracy_field(torch.zeros(54, 54), d)
    with pytest.raises(ValueError):
        accuracy_field(A, torch.tensor([[0.5, 1.0]]))


def test_where_target_peaks_at_the_digit(colliculus):
    """Map = 1 at zero shift only, baseline 0: with the digit at a cell's target pixel, the best
    cell saccades exactly there (inner cells share pixels, so compare targets, not indices)."""
    A = torch.zeros(55, 55)
    A[27, 27] = 1.0
    targets = colliculus.saccade_targets()
    a = colliculus.where_target(A, targets, baseline=0.0)           # (240 digits, 240 cells)
    assert torch.equal(targets[a.argmax(1)], targets)


def test_where_target_centred_digit(colliculus):
    s = torch.arange(55, dtype=torch.float32) - 27
    A = 0.1 + 0.7 * torch.exp(-(s[:, None] ** 2 + s[None, :] ** 2) / (2 * 8.0**2))
    a = colliculus.where_target(A, torch.tensor([[0, 0], [0, 20]]))
    assert a.shape == (2, 240) and a.min() >= 0.1 - 1e-6 and a.max() <= 0.8 + 1e-6
    by_ring = a[0].view(24, 10).mean(0)
    assert (by_ring[1:] < by_ring[:-1]).all()                          # decreasing outward
    assert colliculus.saccade_targets()[a[1].argmax()].tolist() in ([1, 19], [-1, 19])  # the original code: (1, 19)
