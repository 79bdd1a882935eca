"""ST-CNN / ST-FCN and the CNN / FCN baselines of the STN paper's translated cluttered MNIST task
(Jaderberg et al. 2015; preset stn-tc, recipes st-cnn-tc, st-fcn-tc, cnn-tc, fcn-tc)."""

import csv

import pytest
import torch
import torch.nn.functional as F

from whatwhere.data import DisplaySet, preset
from whatwhere.engine.precision import autocast, prepare_model
from whatwhere.models import create_model
from whatwhere.models.interface import is_glimpse_model

N_PARAMS = {("st_cnn", 60): 522_594, ("st_cnn", 100): 802_594, ("st_fcn", 60): 531_760, ("st_fcn", 100): 941_360,
            ("cnn", 60): 1_872_490, ("cnn", 100): 5_149_290}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", ["st_cnn", "st_fcn", "cnn"])
@pytest.mark.parametrize("size", [60, 100])
def test_shapes_and_parameter_counts(name, size):
    m = create_model(name, size=size)
    assert m.input_size == size and n_params(m) == N_PARAMS[(name, size)]
    x = torch.rand(3, size, size)
    assert m(x).shape == m(x[:, None]).shape == (3, 10)
    if name != "cnn":
        assert is_glimpse_model(m) and m.out_size == 30
        logits, theta = m.forward_with_theta(x)
        assert logits.shape == (3, 10) and theta.shape == (3, 2, 3)
        assert m.glimpse(x).shape == (3, 1, 30, 30)
    with pytest.raises(ValueError, match="60×60|100×100"):
        m(torch.rand(2, size + 4, size + 4))


def test_parts_and_arguments():
    m = create_model("st_cnn")
    assert (n_params(m.localiser), n_params(m.classifier)) == (91_896, 430_698)
    f = create_model("st_fcn")
    assert (n_params(f.localiser), n_params(f.classifier)) == (232_742, 299_018)
    assert create_model("st_cnn", out=60).glimpse(torch.rand(1, 60, 60)).shape == (1, 1, 60, 60)
    assert isinstance(create_model("st_fcn", localiser="cnn").localiser[1], torch.nn.Conv2d)
    for kwargs, match in [({"classifier": "rnn"}, "classifier must be one of"), ({"out": 0}, "out must be"),
                          ({"size": 30}, "size must be"), ({"localiser": "x"}, "localiser must be")]:
        with pytest.raises(ValueError, match=match):
            create_model("st_cnn", **kwargs)


@pytest.mark.parametrize("name", ["st_cnn", "st_fcn"])
def test_identity_theta_at_init_returns_the_resized_display(mnist_test, name):
    d = DisplaySet(mnist_test.images, mnist_test.labels, preset("stn-tc", 60), seed=0).batch(0, 8)
    m = create_model(name)
    theta = m.localise(d.images)
    assert torch.equal(theta, torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(8, 2, 3))
    # 30x30 of 60x60 at the identity: every output point lies between 4 pixels, a 2x2 average
    torch.testing.assert_close(m.glimpse(d.images), F.avg_pool2d(d.images[:, None], 2), atol=5e-5, rtol=0)
    big = create_model(name, size=100)
    x = torch.rand(4, 100, 100, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(x[:, None], size=(30, 30), mode="bilinear", align_corners=False)
    torch.testing.assert_close(big.glimpse(x), ref, atol=5e-5, rtol=0)
    # at the identity the same size gives the display back, black (pad 0) outside
    same = create_model(name, out=60)
    torch.testing.assert_close(same.glimpse(d.images), d.images[:, None], atol=5e-5, rtol=0)
    shifted = torch.tensor([[1.0, 0, 1.5], [0, 1, 0]]).expand(8, 2, 3)  # 3/4 of the view beyond the right edge
    assert float(same._view(d.images[:, None], shifted)[..., 40:].abs().max()) < 1e-6


@pytest.mark.parametrize("name, model", [("st-cnn-tc", "st_cnn"), ("st-fcn-tc", "st_fcn"), ("cnn-tc", "cnn"),
                                         ("fcn-tc", "fc")])
def test_recipes_parse_strictly(name, model):
    from whatwhere.engine.recipe import load_recipe, recipe_source

    for profile in (None, "quick"):
        r = load_recipe(name, profile=profile)
        assert r.model == model and r.size == 60 and r.preset == "stn-tc"
        assert (r.stages[0].display.crops, r.stages[0].display.crop_size, r.stages[0].display.background) == (6, 6,
                                                                                                             "black")
        assert r.optimizer.name == "sgd" and r.source.startswith("Jaderberg")
        assert create_model(r.model, **r.model_args).input_size == 60
    assert load_recipe(name, profile="quick").total_epochs == 1
    header = [ln for ln in recipe_source(name).read_text().splitlines() if ln.startswith("#")]
    assert any('"Spatial Transformer Networks"' in ln for ln in header)


def test_bf16_step():
    for name in ("st_cnn", "st_fcn", "cnn"):
        model = prepare_model(create_model(name), "bf16")
        x = torch.rand(2, 60, 60)
        with autocast("bf16", "cpu"):
            out = model(x)
        out.float().sum().backward()
        assert out.shape == (2, 10) and torch.isfinite(out.float()).all()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_quick_st_cnn_training_beats_chance(tmp_path):
    """200 Adam steps of ST-CNN on stn-tc (about 30 s on one core) clearly beat chance (0.1) on
    1,000 held-out displays (about 0.5 when written).  The recipe's SGD starts more slowly."""
    from whatwhere.engine.recipe import load_recipe
    from whatwhere.engine.trainer import train

    r = load_recipe("st-cnn-tc", profile="quick",
                    overrides=["train_limit=6400", "batch_size=64", "stages.*.epochs=2", "eval_digits=1000",
                               "optimizer.name=adam", "optimizer.lr=0.001"])
    train(r, tmp_path / "run", device="cpu", progress=False, log=lambda s: None)
    with open(tmp_path / "run" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    assert float(rows[-1]["test_acc"]) > 0.3, rows


def test_standard_benchmark_runs_them(mnist_test):
    """benchmark_task on stn-tc: every model reads the whole display (the ST models' 30x30 view
    resamples pixels their localiser has read)."""
    from whatwhere.eval.benchmark import benchmark_task, task_summary

    models = {name: create_model(name).eval() for name in ("st_cnn", "st_fcn", "cnn")}
    table = task_summary(benchmark_task(models, "stn-tc", n_digits=40, bins=[0, 10, 23], progress=False))["stn-tc"]
    assert {k: v["numbers_read"] for k, v in table.items()} == {"st_cnn": 3600, "st_fcn": 3600, "cnn": 3600}
    assert all(0 <= v["error"] <= 1 for v in table.values())
