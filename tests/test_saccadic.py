"""The foveated saccadic transformer (whatwhere.models.saccadic)."""

import pytest
import torch
import torch.nn.functional as F

from whatwhere.data import DisplaySet, preset
from whatwhere.models import create_model, is_glimpse_model
from whatwhere.ops import fovea, glimpse_centre
from whatwhere.retina import Retina


@pytest.fixture(scope="module")
def retina():
    return Retina()


@pytest.fixture(scope="module")
def displays(mnist_test):
    return DisplaySet(mnist_test.images, mnist_test.labels, preset("dabane2021", eccentricity=20.0,
                                                                    placement="eccentricity"), seed=1).batch(0, 8)


def model(retina, **kw):
    torch.manual_seed(0)
    return create_model("saccadic_transformer", retina=retina, **kw)


def test_shapes_parameters_and_protocol(retina, displays):
    m = model(retina, glimpses=3).eval()
    # Where MLP 4,122,240 + sub-cell head 2,002 + temperature 1 + What LeNet 431,080 (+ STN-28's localiser)
    assert sum(p.numel() for p in m.parameters()) == 4_122_240 + 2_002 + 1 + 431_080
    assert sum(p.numel() for p in model(retina, fovea="stn28").parameters()) == 4_122_240 + 2_002 + 1 + 436_600
    assert m.bandwidth == 2880 and is_glimpse_model(m)
    assert not any(k.startswith(("retina", "colliculus")) for k in m.state_dict())
    tr = m.forward_trace(displays.images)
    assert tr.logits.shape == (8, 10) and tr.step_logits.shape == (8, 3, 10) and tr.evidence.shape == (8, 3, 10)
    assert tr.where_logits.shape == (8, 3, 240) and tr.fixations.shape == (8, 4, 2) and tr.theta.shape == (8, 2, 3)
    assert (tr.n_glimpses == 3).all()
    logits, theta = m.forward_with_theta(displays.images)
    assert torch.allclose(logits, tr.logits) and torch.allclose(theta, tr.theta)
    polo = model(retina, periphery="polo")
    assert polo.bandwidth == 768 and polo.localiser_input(displays.images).shape == (8, 768)
    with pytest.raises(ValueError, match="periphery"):
        model(retina, periphery="eyes")
    with pytest.raises(ValueError, match="freeze"):
        model(retina, freeze=["nowhere"])


def test_first_fixation_is_the_centre_at_initialisation(retina, displays):
    tr = model(retina).eval().forward_trace(displays.images)
    assert tr.fixations[:, 0].abs().max() == 0
    assert tr.fixations[:, 1].norm(dim=1).max() < 0.5      # a flat map: the mean of symmetric targets


def test_soft_fixation_lands_on_a_planted_peak(retina):
    m = model(retina)
    for cell in (7 * 10 + 7, 3 * 10 + 5, 20 * 10 + 8):
        logits = torch.full((1, 240), -5.0)
        logits[0, cell] = 5.0
        fix = m.saccade(logits, torch.zeros(1, 1000))
        assert torch.allclose(fix[0], m.targets[cell], atol=1e-3)
    two = torch.full((1, 240), -5.0)
    two[0, [75, 76]] = 5.0                                      # two equal peaks: half way, sub-cell
    assert torch.allclose(m.saccade(two, torch.zeros(1, 1000))[0], m.targets[[75, 76]].mean(0), atol=1e-3)


def test_glimpse_is_the_fovea_at_whole_pixels(retina, displays):
    m = model(retina)
    fix = torch.tensor([[5.0, -9.0]]).expand(8, 2)
    g, theta = m.glimpse_at(displays.images, fix)
    assert torch.allclose(g[:, 0], fovea(displays.images, fix.long()), atol=1e-5)
    assert torch.allclose(glimpse_centre(theta, 128, 28), fix, atol=1e-4)


def test_gradients_reach_the_where_head_through_the_sampler(retina, displays):
    m = model(retina, glimpses=1)
    torch.nn.init.normal_(m.where.fc3.weight, std=0.01)        # a non-flat map
    loss = F.cross_entropy(m(displays.images), displays.labels)  # classification loss only
    loss.backward()
    assert m.where.fc3.weight.grad.abs().sum() > 0 and m.where.fc1.weight.grad.abs().sum() > 0
    assert m.refine.weight.grad.abs().sum() > 0 and m.log_temperature.grad is not None
    cut = model(retina, glimpses=1, end_to_end=False)
    torch.nn.init.normal_(cut.where.fc3.weight, std=0.01)
    F.cross_entropy(cut(displays.images), displays.labels).backward()
    assert cut.where.fc3.weight.grad is None or cut.where.fc3.weight.grad.abs().sum() == 0
    frozen = model(retina, freeze=["where.fc1"])
    assert not frozen.where.fc1.weight.requires_grad and frozen.where.fc2.weight.requires_grad


def test_one_glimpse_equals_the_single_glimpse_classifier(retina, displays):
    m = model(retina, glimpses=1).eval()
    tr = m.forward_trace(displays.images)
    single = m.what(m.glimpse_at(displays.images, tr.fixations[:, 1])[0])
    assert torch.allclose(tr.logits, F.log_softmax(single, -1), atol=1e-6)
    assert torch.equal(tr.logits.argmax(1), single.argmax(1))
    # evidence accumulates: two glimpses add their log-posteriors
    tr2 = model(retina, glimpses=2).eval().forward_trace(displays.images)
    assert torch.allclose(tr2.logits, F.log_softmax(tr2.step_logits, -1).sum(1), atol=1e-5)


def test_stopping_when_confident(retina, displays):
    m = model(retina, glimpses=3, stop_confidence=1e-6).eval()   # always confident after one glimpse
    tr = m.forward_trace(displays.images)
    assert (tr.n_glimpses == 1).all() and torch.equal(tr.fixations[:, 2], tr.fixations[:, 1])
    assert torch.allclose(tr.logits, tr.evidence[:, 0])


def test_test_time_glimpses_and_stop_apply_in_eval_mode_only(retina, displays):
    m = model(retina, glimpses=2, test_glimpses=4, test_stop_confidence=1e-6)
    m.eval()
    tr = m.forward_trace(displays.images)  # eval: up to 4 glimpses, stopped after the first
    assert tr.step_logits.shape[1] == 4 and (tr.n_glimpses == 1).all()
    m.train()
    torch.manual_seed(0)
    tr = m.forward_trace(displays.images)  # train: the training glimpses, no stop
    assert tr.step_logits.shape[1] == 2 and (tr.n_glimpses == 2).all()
    # without a test stop the eval loop takes every test glimpse; the first two are the training loop's
    plain = model(retina, glimpses=2).eval()
    more = model(retina, glimpses=2, test_glimpses=3).eval()
    more.load_state_dict(plain.state_dict())
    a, b = plain.forward_trace(displays.images), more.forward_trace(displays.images)
    assert (b.n_glimpses == 3).all() and torch.allclose(a.evidence, b.evidence[:, :2], atol=1e-5)
    assert torch.allclose(b.logits, F.log_softmax(b.step_logits, -1).sum(1), atol=1e-5)
    # a test stop replaces the training one in eval mode only
    s = model(retina, glimpses=3, stop_confidence=1e-6, test_stop_confidence=1.0).eval()
    assert (s.forward_trace(displays.images).n_glimpses == 3).all()


@pytest.mark.parametrize(("kw", "key"), [({"test_glimpses": 0}, "test_glimpses"), ({"test_glimpses": 2.5}, "test_glimpses"),
                                        ({"test_stop_confidence": 1.5}, "test_stop_confidence"),
                                        ({"test_stop_confidence": 0.0}, "test_stop_confidence"),
                                        ({"test_inhibition": -1.0}, "test_inhibition"),
                                        ({"test_inhibition": float("inf")}, "test_inhibition")])
def test_bad_test_time_settings_are_refused(retina, kw, key):
    with pytest.raises(ValueError, match=key):
        model(retina, **kw)


def test_a_tiny_training_run_beats_chance(tmp_path, mnist_test):
    from whatwhere.engine.recipe import load_recipe
    from whatwhere.engine.trainer import read_metrics, train

    recipe = load_recipe("saccadic_transformer", overrides=[
        "train_limit=300", "eval_digits=200", "stages=[{sigma: 10, epochs: 1}]", "device=cpu"])
    run = train(recipe, tmp_path / "run", progress=False, log=lambda s: None)
    rows = read_metrics(run)
    assert rows[-1]["test_acc"] > 0.5        # chance is 0.11; it starts from the shipped pathways


def test_inhibition_of_return_sends_the_next_saccade_elsewhere_at_test_time_only(retina, displays):
    """test_inhibition (px): in eval mode a map cell whose saccade would land near a fixation already
    taken is left out; a map that keeps pointing at the centre then moves the eye away; training,
    0, and a radius that inhibits every cell leave the loop as it was."""
    def centred(**kw):
        m = model(retina, glimpses=3, **kw)
        with torch.no_grad():  # a map that always prefers a saccade of about 2 px up and to the right
            m.where.fc3.bias.copy_(-(m.targets - torch.tensor([-2.0, 1.0])).norm(dim=1))
        return m

    plain = centred().eval().forward_trace(displays.images)
    plain_step = (plain.fixations[:, 1:] - plain.fixations[:, :-1]).norm(dim=-1)
    assert plain_step.max() < 3.0  # small steps, each near the last fixation
    m = centred(test_inhibition=6.0).eval()
    tr = m.forward_trace(displays.images)
    step = (tr.fixations[:, 1:] - tr.fixations[:, :-1]).norm(dim=-1)  # (B, 3)
    assert step.min() > 3.0  # every saccade leaves the neighbourhood of the fixations already taken
    # eval only: in train mode (the same dropout draws) the loop is the plain one
    m.train()
    torch.manual_seed(5)
    a = m.forward_trace(displays.images).fixations
    torch.manual_seed(5)
    b = centred().train().forward_trace(displays.images).fixations
    assert torch.equal(a, b)
    # 0 is off, and a radius that covers every landing point inhibits nothing
    for r in (0.0, 500.0):
        assert torch.equal(centred(test_inhibition=r).eval().forward_trace(displays.images).fixations, plain.fixations)


def test_scan_paths_draw_only_the_glimpses_taken(monkeypatch, tmp_path):
    """A model that stops early repeats its last fixation up to K: the figure draws the glimpses
    each display took (and says how many), not K stacked boxes."""
    import numpy as np
    from matplotlib.patches import Rectangle

    from whatwhere.viz import saccades

    figs = []
    monkeypatch.setattr(saccades, "save", lambda fig, out: figs.append(fig) or out)
    fixations = np.array([[[0, 0], [5, 5], [5, 5], [5, 5]], [[0, 0], [5, 5], [9, -3], [20, 1]]], dtype=float)
    paths = {"m": {"fixations": fixations, "predictions": np.array([1, 2]), "glimpses": np.array([1, 3])},
             "all": {"fixations": fixations, "predictions": np.array([1, 2])}}
    saccades.scanpaths(np.zeros((2, 128, 128)), np.array([[5, 5], [20, 1]]), np.array([1, 3]), paths, tmp_path / "s.png")
    axes = np.array(figs[0].axes).reshape(2, 2)
    boxes = [[sum(isinstance(p, Rectangle) for p in ax.patches) for ax in row] for row in axes]
    assert boxes == [[1, 3], [3, 3]]
    assert axes[0, 0].get_title().endswith("1 glimpse") and axes[1, 0].get_title().endswith("3 glimpses")
    assert "glimpse" not in axes[0, 1].get_title()
