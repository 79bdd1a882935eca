"""The standard cluttered-MNIST tasks (black displays of mnist-cluttered) and the RAM / FC / conv
models of Mnih et al. 2014."""

import hashlib
import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from whatwhere.data import DisplayConfig, DisplaySet, preset
from whatwhere.data.display import PRESETS, preset_size
from whatwhere.models import create_model, register_model

NEW = {"ram60-translated": (60, 0, 8), "ram60-cluttered": (60, 4, 8), "ram100-cluttered": (100, 8, 8),
       "stn-tc": (60, 6, 6)}


def test_existing_presets_bit_identical(mnist_test):
    """Hashes computed before the black displays were added (positions 250..262 cross a chunk)."""
    pinned = {("paper", 128): ("93de56d0c3d04be4", 43), ("paper", 28): ("8804bd65e018d4c1", -111),
              ("dabane2021", 128): ("f76f70a71cda2312", 59), ("dabane2021", 28): ("7b2f08b4263f75b8", -111)}
    for (name, size), (digest, off_sum) in pinned.items():
        d = DisplaySet(mnist_test.images, mnist_test.labels, preset(name, size), seed=3).batch(250, 262, epoch=1)
        assert hashlib.sha256(d.images.numpy().tobytes()).hexdigest()[:16] == digest, (name, size)
        assert int(d.offsets.sum()) == off_sum


@pytest.mark.parametrize("name", sorted(NEW))
def test_preset_shapes_range_offsets(mnist_test, name):
    size, crops, crop_size = NEW[name]
    cfg = preset(name, size)
    assert preset_size(name) == size and list(PRESETS[name]) == [size]
    assert (cfg.background, cfg.crops, cfg.crop_size, cfg.placement, cfg.masked) == ("black", crops, crop_size,
                                                                                      "uniform", False)
    d = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=0).batch(0, 300)
    assert d.images.shape == (300, size, size) and d.images.dtype == torch.float32
    assert d.images.min() == 0 and d.images.max() <= 1
    half = (size - 28) // 2
    assert d.offsets.min() >= -half and d.offsets.max() <= half
    assert d.offsets.min() <= -half + 3 and d.offsets.max() >= half - 3  # the whole range is used
    # the digit is where the offsets say: the frame holds the digit (plus clutter), clipped
    r0 = size // 2 - 14 + d.offsets[:, 0]
    c0 = size // 2 - 14 + d.offsets[:, 1]
    for k in range(20):
        frame = d.images[k, r0[k]:r0[k] + 28, c0[k]:c0[k] + 28]
        digit = mnist_test.images[k].float() / 255
        assert torch.all(frame >= digit - 1e-6)
        if crops == 0:
            assert torch.equal(frame, digit) and d.images[k].sum() == pytest.approx(float(digit.sum()), rel=1e-5)


def test_black_determinism_and_pure_function(mnist_test):
    cfg = preset("ram60-cluttered", 60)
    ds = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=5, shuffle=True)
    a = ds.batch(0, 300, epoch=2)
    b = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=5, shuffle=True).batch(0, 300, epoch=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.offsets, b.offsets)
    part = ds.batch(250, 270, epoch=2)  # across the chunk boundary, any batch size
    assert torch.equal(part.images, a.images[250:270]) and torch.equal(part.offsets, a.offsets[250:270])
    assert not torch.equal(ds.batch(0, 300, epoch=3).images, a.images)
    other = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=6, shuffle=True).batch(0, 300, epoch=2)
    assert not torch.equal(other.images, a.images)


def test_crop_count_and_clutter_layer(mnist_test):
    """The clutter layer grows with the number of crops; no crops, no clutter; crops fit their size."""
    base = preset("ram60-cluttered", 60)
    ink = []
    for crops in (0, 2, 4, 8, 16):
        ds = DisplaySet(mnist_test.images, mnist_test.labels, base.replace(crops=crops), seed=0)
        layer = ds.batch(0, 200, clutter_only=True).images
        ink.append(float(layer.sum()))
        if crops == 0:
            assert layer.abs().max() == 0
        if crops == 2:  # two 8x8 pieces cover at most 128 pixels
            assert int((layer > 0).sum((1, 2)).max()) <= 2 * 64
    assert all(a < b for a, b in itertools.pairwise(ink)), ink
    # the display is the clipped sum of the clutter layer and the digit
    ds = DisplaySet(mnist_test.images, mnist_test.labels, base, seed=0)
    full, layer = ds.batch(0, 50), ds.batch(0, 50, clutter_only=True)
    assert torch.all(full.images >= layer.images) and torch.equal(full.offsets, layer.offsets)


def test_uniform_offset_override_and_eccentricity(mnist_test):
    cfg = preset("ram100-cluttered", 100)
    ds = DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=0)
    d = ds.batch(0, 10, offset=(20, -30))
    assert d.offsets.tolist() == [[20, -30]] * 10
    e = DisplaySet(mnist_test.images, mnist_test.labels, cfg.replace(placement="eccentricity", eccentricity=36.0),
                   seed=0).batch(0, 50)
    assert torch.all(e.offsets.abs() <= 36)


@pytest.mark.parametrize("changes, match", [
    ({"crops": -1}, r"crops .*\[0, 100\]"), ({"crops": 101}, r"crops .*\[0, 100\]"), ({"crops": 2.5}, "crops"),
    ({"crop_size": 0}, r"crop_size .*\[1, 28\]"), ({"crop_size": 29}, r"crop_size .*\[1, 28\]"),
    ({"background": "grey"}, "background must be one of"), ({"mask": True}, "mask must be false"),
    ({"size": 20}, "size must be 28"), ({"placement": "offset", "offset": (17, 0)}, "outside"),
])
def test_bad_black_parameters(changes, match):
    with pytest.raises(ValueError, match=match):
        preset("ram60-cluttered", 60).replace(**changes)


def test_bad_combinations():
    with pytest.raises(ValueError, match="crops must be 0 unless background is 'black'"):
        DisplayConfig(size=60, crops=3)
    with pytest.raises(ValueError, match="placement 'uniform' needs an unmasked display"):
        DisplayConfig(size=128, placement="uniform")
    with pytest.raises(ValueError, match="exists for sizes"):
        preset("ram60-cluttered", 128)
    with pytest.raises(ValueError, match="preset must be one of"):
        preset("ram42")
    DisplayConfig(size=128, placement="uniform", mask=False)  # an unmasked MotionClouds display is fine


@pytest.mark.parametrize("name, kwargs", [("ram", {}), ("ram", {"glimpses": 3, "scales": 2}), ("fc", {}),
                                          ("fc", {"hidden": [64, 64]}), ("conv", {})])
@pytest.mark.parametrize("size", [60, 100, 128])
def test_model_shapes(name, kwargs, size):
    torch.manual_seed(0)
    m = create_model(name, size=size, **kwargs)
    assert m.input_size == size
    x = torch.rand(3, size, size)
    assert m(x).shape == (3, 10) and m(x.unsqueeze(1)).shape == (3, 10)
    with pytest.raises(ValueError, match=f"{size}×{size}"):
        m(torch.rand(3, size + 4, size + 4))


def test_ram_defaults_trace_and_eval_determinism():
    m = create_model("ram", size=100)
    assert (m.scales, m.patch, m.glimpses) == (4, 12, 8)
    assert create_model("ram").scales == 3
    x = torch.rand(4, 100, 100)
    tr = m.forward_trace(x, sample=True, generator=torch.Generator().manual_seed(0))
    assert tr.logits.shape == (4, 10) and tr.log_probs.shape == (4, 7) and tr.baselines.shape == (4, 7)
    assert tr.locations.shape == (4, 8, 2) and torch.all(tr.locations[:, 0] == 0) and tr.locations.abs().max() <= 1
    tr2 = m.forward_trace(x, sample=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(tr.locations, tr2.locations)
    m.eval()
    assert torch.equal(m(x), m(x))
    assert torch.equal(m.forward_trace(x).locations[:, 1:], m.forward_trace(x).means)


@pytest.mark.parametrize("kwargs, match", [({"glimpses": 0}, "glimpses"), ({"std": 0}, "std"), ({"size": 30}, "size"),
                                           ({"scales": 9}, "scales")])
def test_ram_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_model("ram", **kwargs)


def test_register_model_sizes():
    for ok in (28, 60, 100, 128):
        register_model(f"_probe{ok}", ok)(lambda: None)
    for bad in (27, 30, 0, 60.5, True):
        with pytest.raises(ValueError, match="input_size must be 28 or an integer >= 32"):
            register_model("_probe_bad", bad)
    from whatwhere.models.registry import MODELS

    for k in [k for k in MODELS if k.startswith("_probe")]:
        del MODELS[k]


def test_reinforce_reaches_the_location_network(mnist_test):
    """One step of the ram objective changes the location network's weights; without the
    REINFORCE term it does not (its only gradient is REINFORCE)."""
    from whatwhere.engine.objectives import ram

    d = DisplaySet(mnist_test.images, mnist_test.labels, preset("ram60-cluttered", 60), seed=0).batch(0, 32)
    changed = {}
    for w in (1.0, 0.0):
        torch.manual_seed(0)
        m = create_model("ram", size=60, glimpses=4)
        before = m.locator.weight.detach().clone()
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        loss, correct = ram(SimpleNamespace(objective_args={"reinforce_weight": w}))(m, d)
        assert loss.ndim == 0 and torch.isfinite(loss) and 0 <= int(correct) <= 32
        opt.zero_grad()
        loss.backward()
        opt.step()
        changed[w] = not torch.equal(before, m.locator.weight)
        assert m.baseline.weight.grad.abs().sum() > 0
    assert changed == {1.0: True, 0.0: False}
    with pytest.raises(ValueError, match="unknown objective_args"):
        ram(SimpleNamespace(objective_args={"gamma": 1}))


@pytest.mark.parametrize("name, model, size", [("ram60-cluttered", "ram", 60), ("ram60-translated", "ram", 60),
                                               ("ram100-cluttered", "ram", 100), ("fc60-cluttered", "fc", 60),
                                               ("conv60-cluttered", "conv", 60)])
def test_recipes_parse(name, model, size):
    from whatwhere.engine.recipe import load_recipe

    r = load_recipe(name, profile="quick")
    assert r.model == model and r.size == size and r.stages[0].display.background == "black"
    assert create_model(r.model, **r.model_args).input_size == size
    assert r.source.startswith("Mnih")


def test_tiny_ram_training_beats_chance(tmp_path):
    """A few hundred REINFORCE steps on ram60-translated (about 20 s on one core) clearly beat
    chance (0.1) on 1,000 held-out displays.  RAM learns slowly: 2 glimpses, Adam 3e-3."""
    import csv

    from whatwhere.engine.recipe import load_recipe
    from whatwhere.engine.trainer import train

    r = load_recipe("ram60-translated", profile="quick",
                    overrides=["model_args.glimpses=2", "train_limit=9600", "batch_size=64", "stages.*.epochs=4",
                               "optimizer.lr=0.003", "eval_digits=1000"])
    train(r, tmp_path / "run", device="cpu", progress=False, log=lambda s: None)
    with open(tmp_path / "run" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert float(rows[-1]["test_acc"]) > 0.2, rows


def test_cli_sample_and_show(tmp_path):
    from whatwhere.cli import main

    out = tmp_path / "d.npz"
    assert main(["data", "sample", "--preset", "ram60-cluttered", "--n", "12", "--out", str(out)]) == 0
    z = np.load(out)
    assert z["images"].shape == (12, 60, 60) and z["offsets"].shape == (12, 2)
    png = tmp_path / "g.png"
    assert main(["data", "show", "--preset", "stn-tc", "--out", str(png)]) == 0 and png.stat().st_size > 0


def test_weights_of_a_100px_model_record_its_size(tmp_path):
    from whatwhere.engine.checkpoints import load, model_meta, read_meta, save_weights
    from whatwhere.models.registry import create_model

    args = {"size": 100, "glimpses": 2, "scales": 4}
    path = save_weights(create_model("ram", **args), tmp_path / "ram.safetensors", model_meta("ram", args, "t"))
    assert read_meta(path)["input_size"] == 100
    assert load(path).input_size == 100


def _reference_display(digit, crops, corner, size, crop_size):
    """One display as DeepMind's mnist-cluttered builds it (its nextExample), written out in numpy:
    the crops added one by one at their target corners on a black canvas, every value >= 1 set to 1,
    then the digit added at its corner and that window clipped to [0, 1].  ``crops``: (source digit,
    source row, source column, target row, target column) per crop."""
    obs = np.zeros((size, size), np.float32)
    s = crop_size
    for src, sy, sx, ty, tx in crops:
        obs[ty:ty + s, tx:tx + s] += src[sy:sy + s, sx:sx + s]
    obs[obs >= 1] = 1
    y, x = corner
    obs[y:y + 28, x:x + 28] = np.clip(obs[y:y + 28, x:x + 28] + digit, 0, 1)
    return obs


@pytest.mark.parametrize("name", sorted(NEW))
def test_black_displays_are_the_reference_generator(mnist_test, name):
    """Driven by the same uniforms, the reference's algorithm gives our displays: crop sources
    drawn from the whole set (uniform, with replacement), source corner uniform in [0, 28 - s],
    target corner uniform in [0, N - s], the crops' sum clipped at 1 before the digit, the digit's
    top-left corner uniform in [0, N - 28], the result clipped to [0, 1], digits / 255."""
    size, K, s = NEW[name]
    ds = DisplaySet(mnist_test.images, mnist_test.labels, preset(name, size), seed=11)
    n, B = len(ds), 40
    got = ds.batch(250, 250 + B, epoch=1)  # across a chunk boundary
    small, u = ds.random_numbers(250, 250 + B, epoch=1)
    digits = mnist_test.images.numpy().astype(np.float32) / 255
    n_pos = size - 28 + 1
    for b in range(B):
        corner = [min(int(float(v) * n_pos), n_pos - 1) for v in small[b, 1:3].double()]
        crops = []
        for k in range(K):
            c = u[b, 5 * k:5 * k + 5].double()
            src = min(int(float(c[0]) * n), n - 1)
            sy, sx = (min(int(float(v) * (28 - s + 1)), 28 - s) for v in c[1:3])
            ty, tx = (min(int(float(v) * (size - s + 1)), size - s) for v in c[3:5])
            crops.append((digits[src], sy, sx, ty, tx))
        ref = _reference_display(digits[250 + b], crops, corner, size, s)
        np.testing.assert_allclose(got.images[b].numpy(), ref, rtol=0, atol=1e-6)
        assert got.offsets[b].tolist() == [corner[0] - (size // 2 - 14), corner[1] - (size // 2 - 14)]


def test_standard_task_recipes_train_on_the_reference_split():
    """Every packaged recipe on a standard task trains on the first 50,000 MNIST training digits:
    RAM's "effective training set size was 50000" (Mnih et al. 2014, sect. 4.1) and mnist-cluttered's
    train split (its last 10,000 training digits are the validation split)."""
    from whatwhere.engine.recipe import load_recipe, recipe_names

    on_task = []
    for name in recipe_names():
        r = load_recipe(name)
        if r.stages[0].display.background == "black":
            on_task.append(name)
            assert r.train_limit == 50000, name
            assert r.eval_digits == 10000, name  # the whole MNIST test set
    assert {"ram60-translated", "ram60-cluttered", "ram100-cluttered", "fc60-cluttered", "conv60-cluttered",
            "fcn-tc", "cnn-tc", "st-fcn-tc", "st-cnn-tc", "where60-cluttered"} <= set(on_task)


def test_published_standard_task_errors():
    """The targets are the NIPS 27 proceedings' rows at each recipe's configuration (RAM with 8
    glimpses, FC 2 x 256, conv), not arXiv v1's, and the STN paper's TC errors."""
    from whatwhere.engine.recipe import recipe_names
    from whatwhere.eval.published import RAM_TABLES, STANDARD_TASKS, STN_TC

    err = STANDARD_TASKS["error"]
    assert err["ram60-translated"] == 0.012 and err["ram60-cluttered"] == 0.0404
    assert err["ram100-cluttered"] == 0.0811 and err["fc60-cluttered"] == 0.1196
    assert err["conv60-cluttered"] == 0.0809
    assert [err[k] for k in ("fcn-tc", "cnn-tc", "st-fcn-tc", "st-cnn-tc")] == [0.132, 0.035, 0.02, 0.017]
    assert set(err) <= set(recipe_names())
    v1, nips = RAM_TABLES["arxiv_v1"], RAM_TABLES["nips2014"]
    assert (v1["cluttered60"]["ram8"], v1["cluttered100"]["ram8"], v1["translated60"]["ram8"]) == (5.23, 10.83, 1.84)
    for task in nips:  # the two printings share their rows' names, and differ in every printed RAM cell
        assert set(nips[task]) == set(v1[task])
        assert all(nips[task][k] != v1[task][k] for k in nips[task] if k.startswith("ram"))
    assert STN_TC == {"fcn": 13.2, "cnn": 3.5, "st_fcn": 2.0, "st_cnn": 1.7}
