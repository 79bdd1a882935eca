"""The saccadic transformer's optional saccade policy (REINFORCE with a learned baseline, as the
recurrent attention model of Mnih et al. 2014; Williams 1992), off by default, and the
fixation-error diagnostic."""

import json
from types import SimpleNamespace

import pytest
import torch

from whatwhere.data import DisplaySet, preset
from whatwhere.engine.objectives import make_objective
from whatwhere.models import create_model
from whatwhere.retina import Retina


@pytest.fixture(scope="module")
def retina():
    return Retina()


@pytest.fixture(scope="module")
def displays(mnist_test):
    cfg = preset("dabane2021", eccentricity=30.0, placement="eccentricity")
    return DisplaySet(mnist_test.images, mnist_test.labels, cfg, seed=3).batch(0, 8)


def model(retina, **kw):
    torch.manual_seed(0)
    m = create_model("saccadic_transformer", retina=retina, end_to_end=False, **kw)
    torch.nn.init.normal_(m.where.fc3.weight, std=0.05)  # a non-flat map: gradients reach fc2 through fc3
    torch.nn.init.normal_(m.refine.weight, std=0.01)
    return m


def objective(**args):
    return make_objective(SimpleNamespace(objective="saccadic", objective_args=args), "cpu")


def run(m, obj, d, seed=1):
    """The loss and the gradients of one step, from a fixed seed (dropout and the policy's noise)."""
    m.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss, correct = obj(m, d)
    loss.backward()
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in m.named_parameters()}
    return loss.detach(), correct, grads


def test_off_by_default_nothing_changes(retina, displays):
    m = model(retina)
    assert m.policy_std == 0 and m.baseline is None
    assert not any(k.startswith("baseline") for k in m.state_dict())
    m.train()
    torch.manual_seed(1)
    tr = m.forward_trace(displays.images)
    assert tr.log_probs is None and tr.baselines is None
    # the default objective and policy_weight 0 are the same loss, gradients and random stream
    shipped = {"accuracy_map": "zoo:stn28", "glimpse_weight": 0.5, "map_weight": 1.0}
    a_loss, a_ok, a_grads = run(m, objective(**shipped), displays)
    a_rng = torch.get_rng_state()
    b_loss, b_ok, b_grads = run(m, objective(**shipped, policy_weight=0.0), displays)
    assert torch.equal(a_loss, b_loss) and a_ok == b_ok and torch.equal(a_rng, torch.get_rng_state())
    assert all((a_grads[n] is None and b_grads[n] is None) or torch.equal(a_grads[n], b_grads[n]) for n in a_grads)
    # a policy weight without a sampling model is refused in training (in eval there is no policy)
    with pytest.raises(ValueError, match="policy_std"):
        objective(map_weight=0.0, policy_weight=1.0)(m, displays)
    m.eval()
    objective(map_weight=0.0, policy_weight=1.0)(m, displays)


def test_eval_mode_is_deterministic_and_that_of_the_model_without_policy(retina, displays):
    on = model(retina, policy_std=4.0).eval()
    off = model(retina).eval()
    off.load_state_dict({k: v for k, v in on.state_dict().items() if not k.startswith("baseline")})
    a, b, c = (x.forward_trace(displays.images) for x in (on, on, off))
    assert a.log_probs is None and a.baselines is None
    assert torch.equal(a.logits, b.logits) and torch.equal(a.fixations, b.fixations)
    assert torch.equal(a.logits, c.logits) and torch.equal(a.fixations, c.fixations)


def test_training_samples_the_saccades_and_records_log_probs(retina, displays):
    m = model(retina, policy_std=4.0, p_dropout=0.0).train()
    torch.manual_seed(5)
    tr = m.forward_trace(displays.images)
    torch.manual_seed(5)
    again = m.forward_trace(displays.images)
    assert torch.equal(tr.fixations, again.fixations)  # the noise comes from torch's (seeded) generator
    assert tr.log_probs is not None and tr.baselines is not None
    assert tr.log_probs.shape == (8, 2) and tr.baselines.shape == (8, 2)
    assert torch.equal(tr.baselines, torch.zeros(8, 2))  # the baseline head starts at 0
    det = m.eval().forward_trace(displays.images).fixations
    step = tr.fixations[:, 1] - det[:, 1]  # the first saccade: from the centre in both
    assert 0 < step.std() < 12  # Gaussian noise of 4 px per axis
    # log π is the Gaussian log-density of the sample around the mean (one px⁻² per axis, two axes)
    lp_max = -2 * torch.log(torch.tensor(4.0 * (2 * torch.pi) ** 0.5))
    assert (tr.log_probs < lp_max + 1e-5).all() and tr.log_probs.requires_grad
    with pytest.raises(ValueError, match="end_to_end"):
        create_model("saccadic_transformer", retina=retina, policy_std=4.0)  # end_to_end defaults to True
    with pytest.raises(ValueError, match="policy_std"):
        create_model("saccadic_transformer", retina=retina, policy_std=-1.0, end_to_end=False)


def test_the_policy_term_trains_the_saccade_and_the_baseline_its_own_head(retina, displays):
    m = model(retina, policy_std=4.0).train()
    with torch.no_grad():
        m.baseline.bias.fill_(0.3)
    where = ["where.fc2.weight", "where.fc3.weight", "refine.weight", "log_temperature"]
    # classification losses only: the sampled saccade is detached, nothing reaches the Where MLP
    loss0, ok, g0 = run(m, objective(map_weight=0.0, glimpse_weight=0.5), displays)
    assert all(g0[n] is None or g0[n].abs().sum() == 0 for n in where) and g0["baseline.weight"] is None
    loss1, _, g1 = run(m, objective(map_weight=0.0, glimpse_weight=0.5, policy_weight=1.0), displays)
    loss2, _, g2 = run(m, objective(map_weight=0.0, glimpse_weight=0.5, policy_weight=2.0), displays)
    # the added loss is MSE(b, R) + w * mean_b sum_k -log π_k (R - b_k), from the same samples
    torch.manual_seed(1)
    tr = m.forward_trace(displays.images)
    R = (tr.logits.argmax(1) == displays.labels).float()[:, None]
    b = tr.baselines.detach()
    mse = ((b - R) ** 2).mean()
    pg = (-(tr.log_probs.detach() * (R - b)).sum(1)).mean()
    assert torch.allclose(loss1 - loss0, mse + pg, atol=1e-4) and torch.allclose(loss2 - loss0, mse + 2 * pg, atol=1e-4)
    assert int(ok) == int(R.sum())
    # the policy term reaches the Where MLP, the sub-cell head and the temperature through log π ...
    for n in where:
        assert g1[n].abs().sum() > 0, n
        assert torch.allclose(g2[n], 2 * g1[n], rtol=1e-4, atol=1e-9), n  # ... and only it (the MSE does not)
    assert m.where.fc1.weight.grad is not None  # (not frozen here)
    # the baseline learns from its MSE alone: the advantage is detached in the policy term
    assert g1["baseline.weight"].abs().sum() > 0
    assert torch.allclose(g1["baseline.weight"], g2["baseline.weight"]) and torch.allclose(
        g1["baseline.bias"], g2["baseline.bias"]
    )
    assert torch.allclose(g1["baseline.bias"], (2 * (b - R)).mean().reshape(1), atol=1e-6)
    # the stopping rule: a stopped display takes no decision
    stop = model(retina, policy_std=4.0, glimpses=3, stop_confidence=1e-6).train()
    assert (stop.forward_trace(displays.images).log_probs[:, 1:] == 0).all()
    # eval mode: no policy term
    m.eval()
    with torch.no_grad():
        e1 = objective(map_weight=0.0, policy_weight=1.0)(m, displays)[0]
        e0 = objective(map_weight=0.0)(m, displays)[0]
    assert torch.equal(e0, e1)


def test_the_retina_ablation_differs_from_the_shipped_recipe_by_its_periphery_only():
    """saccadic_transformer-retina (the recipe shipped before the POLO periphery, against which the
    K, map-loss, end-to-end and LeNet ablations were trained) is one factor away from the recipe:
    the periphery, with the Where MLP that goes with it (where-c0.7's, its first layer frozen)."""
    from whatwhere.engine.recipe import load_recipe, read_recipe

    retina, shipped = load_recipe("saccadic_transformer-retina"), load_recipe("saccadic_transformer")
    assert retina.model_args == {**shipped.model_args, "periphery": "retina", "freeze": ["where.fc1"]}
    assert shipped.model_args["periphery"] == "polo" and shipped.model_args["freeze"] == []
    assert retina.init == {"what": "zoo:stn28", "where": "zoo:where-c0.7"} and shipped.init == {"what": "zoo:stn28"}
    a, b = retina.to_dict(), shipped.to_dict()
    assert {k for k in a if a[k] != b[k]} == {"name", "source", "model_args", "init"}
    assert retina.precision == shipped.precision == "fp32"
    assert "policy_std" not in read_recipe("saccadic_transformer")["model_args"]


def test_fixation_errors_per_glimpse(retina, tmp_path):
    from whatwhere.cli import main
    from whatwhere.eval.diagnostics import fixation_errors

    m = model(retina).eval()
    torch.nn.init.zeros_(m.where.fc3.weight)  # a flat map: both fixations at the centre
    torch.nn.init.zeros_(m.refine.weight)
    rows = fixation_errors(m, preset("dabane2021", 128), [10.0, 40.0], n=6, batch=4)
    assert [r["eccentricity"] for r in rows] == [10.0, 40.0] and all(r["n"] == 6 for r in rows)
    for r, ecc in zip(rows, (10.0, 40.0), strict=True):
        assert len(r["median_error"]) == len(r["mean_error"]) == len(r["hit_rate"]) == len(r["accuracy"]) == 2
        assert all(abs(e - ecc) < 1.0 for e in r["median_error"] + r["mean_error"])  # offsets are whole px
        assert r["hit_rate"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="forward_trace"):
        fixation_errors(torch.nn.Linear(2, 2), preset("dabane2021", 128), [10.0], n=2)
    out = tmp_path / "fix.json"
    argv = [
        "diagnose",
        "fixations",
        "saccadic_transformer",
        "--eccentricities",
        "40",
        "--digits",
        "4",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    res = json.loads(out.read_text())
    # the shipped decision rule: up to 6 glimpses (test_glimpses in the zoo manifest), one row each
    assert res["eccentricities"][0]["eccentricity"] == 40.0 and len(res["eccentricities"][0]["median_error"]) == 6
    assert "untrained" not in res["model"]  # the zoo's trained model, not the registry's random one


def test_the_supervised_saccade_term_trains_the_saccade_towards_the_digit(retina, displays):
    """objective_args.saccade_weight: off by default; on, a Huber loss of where each saccade lands
    against the digit that reaches the sub-cell head and the temperature (nothing else does with the
    glimpse detached), linear in its weight, and a few steps on it bring the landings closer."""
    m = model(retina).train()
    base = {"accuracy_map": "zoo:stn28", "glimpse_weight": 0.5, "map_weight": 1.0}
    l0, _, g0 = run(m, objective(**base), displays)
    l0b, _, _ = run(m, objective(**base, saccade_weight=0.0), displays)
    assert torch.equal(l0, l0b)
    assert g0["refine.weight"] is None or not g0["refine.weight"].any()  # only the saccade term reaches it
    l1, _, g1 = run(m, objective(**base, saccade_weight=1.0), displays)
    l2, _, _ = run(m, objective(**base, saccade_weight=2.0), displays)
    assert float((l1 - l0).detach()) > 1.0  # errors of several px at 30 px eccentricity
    assert float(l2 - l1) == pytest.approx(float(l1 - l0), rel=1e-4)
    assert g1["refine.weight"].abs().sum() > 0 and g1["log_temperature"].abs() > 0
    with pytest.raises(ValueError, match="saccade_weight must be a finite number >= 0"):
        objective(saccade_weight=-1.0)

    # a small step against the gradient of the term alone lowers it: it moves the landings towards the digits
    # (one glimpse: the saccade starts from the centre, so the term is smooth in the parameters)
    m1 = model(retina, glimpses=1).train()
    params = [m1.refine.weight, m1.refine.bias, m1.log_temperature]

    def term():
        torch.manual_seed(1)
        on = objective(map_weight=0.0, glimpse_weight=0.0, saccade_weight=1.0)(m1, displays)[0]
        torch.manual_seed(1)
        return on - objective(map_weight=0.0, glimpse_weight=0.0)(m1, displays)[0]

    before = term()
    grads = torch.autograd.grad(before, params)
    norm = torch.cat([g.flatten() for g in grads]).norm()
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            p -= 1e-3 * g / norm
    after = float(term().detach())
    assert after < float(before.detach()) - 1e-4
