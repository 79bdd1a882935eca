"""Models: parameter counts against the original code, shapes, identity initialisation, sampler geometry."""

import pytest
import torch
from torch import nn

from whatwhere.models import ATN, STN28, STN128, ConvPoloATN, PoloATN, WhatNet
from whatwhere.ops import attention_theta, glimpse_centre, sample
from whatwhere.models.stn import AzimuthConv

ID = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


class FakePolo(nn.Module):
    """Parameter-free stand-in for the POLO encoder: average pooling to a code of the right size."""

    def __init__(self, shape=(8, 6, 16)):
        super().__init__()
        self.shape = shape
        self.register_buffer("w", torch.randn(128 * 128, int(torch.tensor(shape).prod()),
                                              generator=torch.Generator().manual_seed(0)) / 128)

    def forward(self, x):  # (B, 128, 128) -> (B, *shape)
        return (x.reshape(x.shape[0], -1) @ self.w).reshape(x.shape[0], *self.shape)


def dual_encoder(x):
    return FakePolo((8, 4, 16))(x), FakePolo((8, 8, 32))(x)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {"what": WhatNet(), "stn28": STN28(), "stn128": STN128(), "atn": ATN(),
            "polo": PoloATN(FakePolo()), "convpolo": ConvPoloATN(dual_encoder)}


def test_parameter_counts(models):
    assert n_params(models["what"]) == 431_080
    assert n_params(models["stn28"]) == 436_600
    assert n_params(models["stn28"].localiser) == 5_520
    assert n_params(models["stn128"]) == 11_152_428
    assert n_params(models["stn128"].localiser) == 335_590
    assert n_params(models["atn"]) == 766_571
    assert n_params(models["polo"]) == 455_754
    assert n_params(models["polo"].localiser) == 24_674
    assert n_params(models["convpolo"]) == 667_652


@pytest.mark.parametrize("name", ["what", "stn28", "stn128", "atn", "polo", "convpolo"])
def test_shapes(models, name):
    m = models[name]
    N = m.input_size
    x = torch.rand(3, N, N)
    assert m(x).shape == (3, 10)
    assert m(x[:, None]).shape == (3, 10)
    with pytest.raises(ValueError):
        m(torch.rand(3, N + 1, N + 1))
    if name != "what":
        assert m.localise(x).shape == (3, 2, 3)
        assert m.glimpse(x).shape == (3, 1, m.out_size, m.out_size)


@pytest.mark.parametrize("N", [28, 128])
def test_sampler_identity(N):
    """Identity θ reproduces the input: no half-pixel shift, no blur.  In float32 grid_sample's
    own unnormalisation ((u+1)·N−1)/2 rounds to ~N·6e-8 px, hence ~1e-5; in float64 ~1e-13."""
    x = torch.rand(4, N, N)
    out = sample(x, ID.expand(4, 2, 3), N)
    assert out.shape == (4, 1, N, N)
    assert (out[:, 0] - x).abs().max() < 1e-5
    x64 = x.double()
    assert (sample(x64, ID.expand(4, 2, 3), N)[:, 0] - x64).abs().max() < 1e-12


def test_sampler_background_outside():
    x = torch.rand(2, 1, 128, 128)
    th = ID.expand(2, 2, 3).clone()
    th[:, 0, 2] = 3.0
    out = sample(x, th, 28)
    assert torch.equal(out, torch.full_like(out, 0.5))


def test_sampler_integer_shift_and_fill():
    """tx = 2k/N moves the view k columns right; uncovered columns are 0.5 (not 0)."""
    N, k = 28, 5
    x = torch.rand(1, N, N)
    th = ID.expand(1, 2, 3).clone()
    th[:, 0, 2] = 2 * k / N
    out = sample(x, th, N)[0, 0]
    torch.testing.assert_close(out[:, : N - k], x[0, :, k:], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, N - k:], torch.full((N, k), 0.5), atol=1e-5, rtol=0)
    th = ID.expand(1, 2, 3).clone()
    th[:, 1, 2] = -2 * k / N  # rows: view moves up
    out = sample(x, th, N)[0, 0]
    torch.testing.assert_close(out[k:], x[0, : N - k], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["stn28", "stn128"])
def test_stn_identity_at_init(models, name):
    m = models[name]
    x = torch.rand(2, m.input_size, m.input_size)
    torch.testing.assert_close(m.localise(x), ID.expand(2, 2, 3), atol=0, rtol=0)
    assert (m.glimpse(x)[:, 0] - x).abs().max() < 1e-5  # float32 rounding, see test_sampler_identity


@pytest.mark.parametrize("name", ["atn", "polo", "convpolo"])
def test_attention_centred_at_init(models, name):
    m = models[name]
    th = m.localise(torch.rand(3, 128, 128))
    torch.testing.assert_close(th, attention_theta(torch.tensor(0.2), torch.zeros(3), torch.zeros(3)))
    assert glimpse_centre(th, 128, 28).abs().max() < 0.05  # output pixel (14, 14) ≈ display (64, 64)
    torch.testing.assert_close(glimpse_centre(th, 128), torch.full((3, 2), -0.5))  # geometric centre


def test_glimpse_centre_translation():
    th = attention_theta(torch.tensor(0.2), torch.tensor([20 / 128]), torch.tensor([-12 / 128]))
    torch.testing.assert_close(glimpse_centre(th, 128), torch.tensor([[-6.5, 9.5]]))
    c = glimpse_centre(th, 128, 28)
    assert abs(c[0, 0] + 6) < 0.05 and abs(c[0, 1] - 10) < 0.05


def test_glimpse_centre_matches_sampled_pixel():
    """At scale 28/128 the glimpse is pixel-aligned: output pixel (14, 14) is display pixel
    (64 + di, 64 + dj), and glimpse_centre(θ, 128, 28) returns (di, dj) exactly."""
    di, dj = 7, -11
    x = torch.full((1, 128, 128), 0.5)
    x[0, 64 + di, 64 + dj] = 1.0
    th = attention_theta(torch.tensor(28 / 128), torch.tensor([2 * dj / 128]), torch.tensor([2 * di / 128]))
    g = sample(x, th, 28)[0, 0]
    assert g[14, 14] > 0.999 and (g - 0.5).abs().sum() < 0.5 + 1e-4
    torch.testing.assert_close(glimpse_centre(th, 128, 28), torch.tensor([[float(di), float(dj)]]))


@pytest.mark.parametrize("name", ["stn28", "stn128", "atn", "polo", "convpolo"])
def test_gradient_reaches_localiser(models, name):
    m = models[name]
    m.zero_grad()
    x = torch.rand(4, m.input_size, m.input_size)
    nn.functional.cross_entropy(m(x), torch.arange(4)).backward()
    last = m.localiser[-1][-1] if name in ("stn28", "stn128", "atn") else m.localiser[-1]
    assert last.weight.grad is not None and last.weight.grad.abs().sum() > 0
    assert last.bias.grad.abs().sum() > 0
    m.zero_grad()


def test_circular_azimuth_padding():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 4, 16)
    conv = AzimuthConv(8, 5, circular=True)
    torch.testing.assert_close(conv(x.roll(3, -1)), conv(x).roll(3, -1))
    conv0 = AzimuthConv(8, 5, circular=False)
    assert not torch.allclose(conv0(x.roll(3, -1)), conv0(x).roll(3, -1))


def test_polo_code_checks_and_precomputed_code(models):
    m = models["polo"]
    x = torch.rand(2, 128, 128)
    code = m.encoder(x)
    torch.testing.assert_close(m(x), m(x, code=code))
    with pytest.raises(ValueError):
        PoloATN(FakePolo((8, 5, 16)))(x)


@pytest.mark.parametrize("name,params,bandwidth", [("polo_atn", 455_754, 768), ("polo_atn85", 513_098, 2560),
                                                    ("conv_polo_atn", 667_652, 2560)])
def test_registered_polo_models_with_the_real_code(name, params, bandwidth):
    """The recipe-built POLO models: the original parameter counts, the code's size as bandwidth, a centred
    28×28 glimpse at initialisation whatever the display, no code kernels in the weights."""
    from whatwhere.models.registry import create_model

    torch.manual_seed(0)
    m = create_model(name)
    assert sum(p.numel() for p in m.parameters() if p.requires_grad) == params
    assert m.bandwidth == bandwidth
    assert not any("kernels" in k for k in m.state_dict())
    x = torch.rand(3, 128, 128)
    assert m(x).shape == (3, 10)
    centre = glimpse_centre(m.localise(x), 128, out_size=28)
    assert torch.allclose(centre, torch.zeros_like(centre), atol=0.1)
    assert create_model(name, filters="bandpass").bandwidth == bandwidth


def test_stage_schedule_in_a_recipe():
    from whatwhere.engine.recipe import RecipeError, load_recipe, parse_recipe

    r = load_recipe("conv_polo_atn")
    assert r.total_epochs == 270 and r.stages[-1].schedule.gamma == 0.5 and r.schedule.gamma == 0.9
    r = load_recipe("conv_polo_atn", profile="cpu")
    assert r.total_epochs == 90 + 10 + 10 + 20 and r.train_limit == 20000
    for name in ("stn128", "atn", "polo_atn", "polo_atn85"):
        r = load_recipe(name)
        assert r.total_epochs == 110 and r.model == name and r.stages[9].reset_optimizer
        assert [round(s.display.sigma, 2) for s in r.stages[:9]] == [4.44, 8.89, 13.33, 17.78, 22.22, 26.67,
                                                                      31.11, 35.56, 40.0]
    with pytest.raises(RecipeError, match="reset_optimizer"):
        parse_recipe({"name": "x", "model": "what", "stages": [{"epochs": 1, "schedule": {"name": "step"}}]})
