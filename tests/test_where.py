"""The Where pathway, its training objective, the closed saccade loop and the eccentricity benchmark."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from whatwhere.data import DisplaySet, preset
from whatwhere.engine.checkpoints import load
from whatwhere.engine.zoo import zoo_path
from whatwhere.eval.benchmark import Entry, benchmark
from whatwhere.eval.metrics import wilson
from whatwhere.eval.protocols import ECCENTRICITIES
from whatwhere.models.agent import Agent as _Agent
from whatwhere.models.registry import MODELS, create_model
from whatwhere.models.where import Where, WhereNet
from whatwhere.ops.sampling import fovea, translate
from whatwhere.retina import Colliculus, Retina

N = 128


@pytest.fixture(scope="module")
def retina():
    return Retina()


@pytest.fixture(scope="module")
def colliculus(retina):
    return Colliculus(retina)


@pytest.fixture(autouse=True)
def _shared(retina, colliculus):
    """Agents and Where models of these tests share one retina and colliculus (each takes ~3 s to build)."""
    global SHARED
    SHARED = (retina, colliculus)


def Agent(what, where, **kw):
    retina, colliculus = SHARED
    return _Agent(what, where, retina=kw.pop("retina", retina), colliculus=kw.pop("colliculus", colliculus), **kw)


def eccentricity_benchmark(model, *, saccades=None, name="model", **kw):
    """The records of the unified benchmark for one model (the paper's display, clutter 1.0)."""
    entry = Entry(name, model, saccades=tuple(saccades) if saccades is not None else None)
    kw.setdefault("preset_name", "paper")
    kw.setdefault("clutter", 1.0)
    kw.setdefault("stopping_rule", saccades is not None)
    return benchmark([entry], batch=500, code_r2=False, **kw)["records"]


@pytest.fixture(scope="module")
def targets(colliculus):
    return colliculus.saccade_targets()


@pytest.fixture(scope="module")
def what():
    return load("what")  # the shipped What network (hash-checked)


MAP = zoo_path("what", "accuracy_map")


@pytest.fixture(scope="module")
def acc_map():
    return torch.as_tensor(np.load(MAP), dtype=torch.float32)


class OracleWhere(torch.nn.Module):
    """A stub Where head that knows the digits' offsets: its logits peak at the cell whose saccade
    target is nearest to the digit as seen from the current fixation (``sign=-1``: to the mirror
    image of the digit, i.e. it points away).  It tracks the fixation exactly as the agent moves it."""

    def __init__(self, targets, offsets, sign=1, max_fixation=50):
        super().__init__()
        self.targets, self.offsets, self.sign, self.M = targets, offsets, sign, max_fixation
        self.fix = torch.zeros_like(offsets)
        self.calls = 0

    def head(self, codes, *, dropout=None, generator=None):
        rel = self.sign * (self.offsets - self.fix)
        dist = torch.cdist(rel.double(), self.targets.double())              # (B, 240)
        cell = dist.argmin(1)
        self.fix = (self.fix + self.targets[cell]).clamp(-self.M, self.M)
        self.calls += 1
        return (-dist).float()


def _accuracy(logits, labels):
    return float((logits.argmax(-1) == labels).double().mean())


# ---------------------------------------------------------------------------- network


def test_where_net_shapes_params_and_dropout():
    net = WhereNet()
    assert sum(p.numel() for p in net.parameters()) == 4_122_240   # the paper's MLP, without the unused BN
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())
    x = torch.randn(5, 2880) * 10
    net.eval()
    assert net(x).shape == (5, 240)
    assert torch.equal(net(x), net(x))                              # eval: no dropout
    a = net(x, dropout=True, generator=torch.Generator().manual_seed(1))
    b = net(x, dropout=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, net(x))         # forced dropout, reproducible


def test_where_model_keeps_the_retina_out_of_the_state_dict(tmp_path, retina):
    assert MODELS["where"].input_size == 128
    m = create_model("where", retina=retina)
    assert isinstance(m, Where) and m.offset_clip
    assert set(m.state_dict()) == {f"net.fc{k}.{w}" for k in (1, 2, 3) for w in ("weight", "bias")}
    imgs = DisplaySet(torch.zeros(3, 28, 28, dtype=torch.uint8), torch.zeros(3, dtype=torch.long),
                      preset("paper"), seed=0).batch(0, 3).images
    m.eval()
    out = m(imgs)
    assert out.shape == (3, 240)
    assert torch.allclose(m.to("cpu")(imgs), out)
    assert torch.allclose(m(imgs[:, None]), out)                    # (B, 1, N, N) accepted


def test_offset_clip_encoding_is_a_constant_shift(retina):
    """clip(whiten + 0.5) and plain whitening differ by 0.5 * (sum of each filter), up to clipping."""
    imgs = DisplaySet(torch.zeros(4, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.long),
                      preset("paper"), seed=1).batch(0, 4).images
    assert retina.offset_clip                                        # the default: the shipped nets' input
    clip, plain = retina.encode(imgs), retina.encode(imgs, offset_clip=False)
    shift = 0.5 * retina.bank.double().sum(1)
    assert float((clip.double() - plain.double() - shift).abs().max()) < 1e-2 * float(shift.abs().max())
    assert float(shift.abs().max()) > 20                             # the DC leak of the outer rings
    dense = retina.encode(imgs, method="dense")
    assert torch.allclose(dense, clip, rtol=1e-3, atol=1e-2)


# ---------------------------------------------------------------------------- target


def test_where_target_on_a_known_map_and_offset(colliculus, targets):
    """A peaked map: the best cell's saccade lands next to the digit, far cells get the baseline."""
    i = torch.arange(-27, 28, dtype=torch.float32)
    A = 0.1 + 0.8 * torch.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / (2 * 4.0**2))
    offsets = torch.tensor([[0, 20], [-25, -10], [30, 15], [3, 0]])
    a = colliculus.where_target(A, offsets)
    assert a.shape == (4, 240)
    best = targets[a.argmax(1)]
    gap = (best - offsets).double().norm(dim=1)                        # measured 1.4, 2.0, 6.3, 0 px
    nearest = torch.cdist(offsets.double(), targets.double()).min(1).values
    assert (gap <= nearest + 4.5).all() and gap.max() <= 7.0          # within the cell spacing
    assert a.min() >= 0.1 - 1e-4 and a.max() <= 0.9
    ring1 = torch.arange(24) * 10 + 1                                 # cells 3 px from the centre
    assert float(a[0, ring1].max()) < 0.11                            # digit 20 px away: baseline


def test_where_targets_table_equals_the_direct_targets(colliculus, acc_map):
    """The per-offset table gives Colliculus.where_target's values, for offsets seen for the first time, again,
    repeated in a batch, beyond its reach (computed directly) and with the original's reflected placement."""
    from whatwhere.retina import WhereTargets

    g = torch.Generator().manual_seed(0)
    for reflect, radius in ((False, None), (True, 20)):
        table = WhereTargets(colliculus, acc_map, baseline=0.1, reflect=reflect, radius=radius)
        for _ in range(3):  # the later batches reuse offsets the first ones filled in
            offsets = torch.randint(-70, 71, (64, 2), generator=g)
            offsets[1] = offsets[0]
            got = table(offsets)
            want = colliculus.where_target(acc_map, offsets, baseline=0.1, reflect=reflect)
            assert got.shape == (64, 240)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)  # GEMM sums in another order: 3.5e-6 seen
        assert 0 < int(table.filled.sum()) <= table.filled.numel()
    # a bf16 training step calls the objective under autocast: the targets stay float32 and equal
    table = WhereTargets(colliculus, acc_map, baseline=0.1)
    offsets = torch.randint(-70, 71, (32, 2), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = table(offsets)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, colliculus.where_target(acc_map, offsets, baseline=0.1), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="whole pixels"):
        table(torch.tensor([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="radius"):
        WhereTargets(colliculus, acc_map, radius=-1)


def test_where_objective(acc_map):
    from types import SimpleNamespace

    from whatwhere.engine.objectives import make_objective  # works whatever was imported before
    recipe = SimpleNamespace(objective="where", objective_args={"accuracy_map": "zoo:what"})
    objective = make_objective(recipe, "cpu")
    ds = DisplaySet(torch.zeros(6, 28, 28, dtype=torch.uint8), torch.zeros(6, dtype=torch.long),
                    preset("paper"), seed=2)
    d = ds.batch(0, 6)
    col = SHARED[1]
    target = col.where_target(acc_map, d.offsets)

    class Perfect(torch.nn.Module):   # logits = logit(target): the BCE floor, best cells all right
        retina = SHARED[0]

        def forward(self, images):
            return torch.logit(target)

    loss, correct = objective(Perfect(), d)
    ent = -(target * target.log() + (1 - target) * (1 - target).log()).mean()
    assert abs(float(loss) - float(ent)) < 1e-5 and int(correct) == 6
    with pytest.raises(ValueError, match="objective_args"):
        make_objective(SimpleNamespace(objective="where", objective_args={"map": "x"}), "cpu")
    with pytest.raises(FileNotFoundError, match="accuracy map"):
        make_objective(SimpleNamespace(objective="where", objective_args={"accuracy_map": "nope.npy"}), "cpu")


# ---------------------------------------------------------------------------- agent


def test_fovea_and_translate():
    img = torch.arange(2 * N * N, dtype=torch.float32).view(2, N, N) / (2 * N * N)
    fix = torch.tensor([[10, -20], [-50, 50]])
    f = fovea(img, fix)
    assert f.shape == (2, 28, 28)
    assert torch.equal(f[0], img[0, 64 + 10 - 14:64 + 10 + 14, 64 - 20 - 14:64 - 20 + 14])
    v = translate(img, fix)
    assert torch.equal(fovea(v, torch.zeros(2, 2, dtype=torch.long)), f)   # view centre = fovea
    far = fovea(img, torch.tensor([[70, 0], [0, 0]]))
    assert torch.all(far[0, 8:] == 0.5) and torch.equal(far[0, :8], img[0, 120:, 50:78])


@pytest.mark.usefixtures("mnist_test")
def test_agent_with_an_oracle_where_recovers_central_accuracy(mnist_test, what, targets):
    """Digits at exactly a saccade target; a Where that points at them gives, after one saccade,
    the What accuracy of centred digits; one that points away drops to chance."""
    n = 400
    t = targets[7 * 10 + 7]                                               # azimuth 7, ring 7: ~26 px
    base = preset("paper", contrast=0.7)
    imgs, labels = mnist_test.images[:n], mnist_test.labels[:n]
    d = DisplaySet(imgs, labels, base.replace(placement="offset", offset=tuple(t.tolist())), seed=5).batch(0, n)
    centred = DisplaySet(imgs, labels, base.replace(placement="offset", offset=(0, 0)), seed=5).batch(0, n)
    small = DisplaySet(imgs, labels, preset("paper", 28, contrast=0.7, placement="offset"), seed=5).batch(0, n)
    with torch.no_grad():
        acc_centred = _accuracy(what(fovea(centred.images, torch.zeros(n, 2, dtype=torch.long))), labels)
        acc_small = _accuracy(what(small.images), labels)

    oracle = OracleWhere(targets, d.offsets)
    tr = Agent(what, oracle).run(d.images, 1)
    assert torch.equal(tr.fixations[:, 1], d.offsets)                      # landed on the digit
    acc1 = _accuracy(tr.logits[:, 1], labels)
    assert _accuracy(tr.logits[:, 0], labels) < 0.2                        # digit 26 px out: chance
    # measured (n = 400): 1 saccade 0.878, centred 128 display 0.893, centred 28x28 display 0.853;
    # pointing away 0.143 (n = 2000: 0.864, 0.866, 0.835, 0.118)
    assert abs(acc1 - acc_centred) < 0.05
    assert abs(acc1 - acc_small) < 0.08
    away = Agent(what, OracleWhere(targets, d.offsets, sign=-1)).run(d.images, 1)
    assert (away.fixations[:, 1] + d.offsets).double().norm(dim=1).max() < 8   # went to the mirror point
    assert _accuracy(away.logits[:, 1], labels) < 0.2                     # chance is 0.11


@pytest.fixture(scope="module")
def random_where(retina):
    torch.manual_seed(0)
    return Where(retina=retina).eval()


@pytest.fixture(scope="module")
def displays(mnist_test):
    ds = DisplaySet(mnist_test.images[:6], mnist_test.labels[:6], preset("paper"), seed=3)
    return ds.batch(0, 6)


def test_batched_loop_equals_per_sample_loop(what, random_where, displays):
    for ior in (False, True):
        agent = Agent(what, random_where, inhibition_of_return=ior)
        batch = agent.run(displays.images, 3)
        stop = agent.run_until_confident(displays.images, 3)
        assert batch.logits.shape == (6, 4, 10) and batch.fixations.shape == (6, 4, 2)
        assert batch.confidence.shape == (6, 4) and batch.cells.shape == (6, 3)
        assert (batch.fixations.abs() <= 50).all() and (batch.n_saccades == 3).all()
        for k in range(6):
            one = agent.run(displays.images[k:k + 1], 3)
            assert torch.equal(one.fixations[0], batch.fixations[k])
            assert torch.allclose(one.logits[0], batch.logits[k], atol=1e-4)
            one = agent.run_until_confident(displays.images[k:k + 1], 3)
            assert torch.equal(one.fixations[0], stop.fixations[k]) and one.n_saccades[0] == stop.n_saccades[k]
    assert agent(displays.images).shape == (6, 10)                        # forward: 1 saccade
    assert torch.allclose(agent(displays.images), agent.run(displays.images, 1).final_logits)


class _ConstantWhat(torch.nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return self.scale * torch.arange(10, dtype=torch.float32).expand(x.shape[0], 10)


class _ConstantWhere(torch.nn.Module):
    def __init__(self, logit):
        super().__init__()
        self.logit = logit

    def head(self, codes, **kw):
        return torch.full((codes.shape[0], 240), self.logit)


def test_stopping_rule(what, random_where, displays):
    imgs = displays.images
    tr = Agent(what, random_where).run_until_confident(imgs, 4)
    assert (tr.n_saccades <= 4).all() and tr.fixations.shape == (6, 5, 2)
    for b in range(6):   # the eye stays where it stopped
        s = int(tr.n_saccades[b])
        assert (tr.fixations[b, s:] == tr.fixations[b, s]).all()
        assert torch.equal(tr.final_logits[b], tr.logits[b, s])
    half = _ConstantWhere(0.0)                                             # predicts 0.5 everywhere
    for value in ("cell", "pinv"):
        sure = Agent(_ConstantWhat(100.0), half, stop_value=value).run_until_confident(imgs, 4)   # conf. 1
        assert (sure.n_saccades == 0).all() and (sure.fixations == 0).all()
        assert torch.allclose(sure.where_confidence[:, 0], torch.tensor(0.5), atol=0.05)
        unsure = Agent(_ConstantWhat(0.0), half, stop_value=value).run_until_confident(imgs, 4)   # conf. 0.1
        assert (unsure.n_saccades == 4).all()
    unsure = Agent(_ConstantWhat(0.0), random_where, stop_value="cell").run_until_confident(imgs, 4)
    high = unsure.where_confidence > 0.1
    assert (unsure.n_saccades == high.long().cumprod(1).sum(1)).all()


def test_faithful_mode_dropout_and_reencoding(what, random_where, displays):
    imgs = displays.images
    a = Agent(what, random_where, faithful=True, seed=1)
    r1, r2 = a.run(imgs, 2), a.run(imgs, 2)
    assert torch.equal(r1.fixations, r2.fixations)                      # seeded dropout: reproducible
    fix = r1.fixations[:, 1]
    fixed = Agent(what, random_where)
    l_fixed = fixed.where_logits(imgs, fix, first=False)
    l_plain = a.where_logits(imgs, fix, first=False, gen=torch.Generator().manual_seed(0))
    assert not torch.allclose(l_fixed, l_plain, atol=1e-3)
    # the fixed loop's post-saccade view is a masked training-style view
    view = (translate(imgs, fix) - 0.5) * (torch.hypot(*torch.meshgrid(torch.arange(N) - 64., torch.arange(N) - 64.,
                                                                        indexing="ij")) < 64) + 0.5
    assert torch.allclose(l_fixed, random_where(view), atol=1e-4)


# ---------------------------------------------------------------------------- benchmark


def test_eccentricity_benchmark_is_paired_and_well_formed(what, random_where):
    agent = Agent(what, random_where)
    kw = dict(contrasts=(0.7,), eccentricities=(ECCENTRICITIES[0], ECCENTRICITIES[-1]), n_digits=40, seed=4,
              progress=False)
    recs = eccentricity_benchmark(agent, saccades=range(0, 3), name="agent", **kw)
    assert len(recs) == 2 * 4
    assert {r["saccades"] for r in recs} == {0, 1, 2, "stop"}
    for r in recs:
        assert set(r) >= {"model", "saccades", "contrast", "eccentricity", "correct", "total", "accuracy", "ci95"}
        assert r["total"] == 40 and r["accuracy"] == r["correct"] / 40 and r["model"] == "agent"
        assert r["ci95"][0] <= r["accuracy"] <= r["ci95"][1] and list(wilson(r["correct"], 40)) == r["ci95"]
    assert all(0 <= r["mean_saccades"] <= 2 for r in recs if r["saccades"] == "stop")
    plain = eccentricity_benchmark(what, name="whatnet", **kw)            # 28x28 model: central crop
    assert [r["saccades"] for r in plain] == [None, None] and plain[0]["model"] == "whatnet"
    zero = [r for r in recs if r["saccades"] == 0]
    assert [r["correct"] for r in zero] == [r["correct"] for r in plain]  # same displays
    assert eccentricity_benchmark(agent, saccades=range(0, 3), name="agent", **kw) == recs
    assert math.isclose(ECCENTRICITIES[0], 40 / 9) and ECCENTRICITIES[-1] == 40.0 and len(ECCENTRICITIES) == 9


# ---------------------------------------------------------------------------- training


@pytest.mark.usefixtures("mnist_test", "acc_map")
def test_quick_where_training_reduces_the_loss(tmp_path):
    from whatwhere.data import mnist
    from whatwhere.engine.recipe import load_recipe
    from whatwhere.utils.seeding import derive_seed
    from whatwhere.engine.objectives import make_objective
    from whatwhere.engine.trainer import evaluate, read_metrics, train

    recipe = load_recipe("where-c0.7", profile="quick",
                         overrides=["train_limit=600", "eval_digits=200", "stages.*.epochs=1", "device=cpu"])
    test = mnist.load("test")
    test_set = DisplaySet(test.images, test.labels, recipe.stages[0].display, seed=derive_seed(recipe.seed, "eval"))
    objective = make_objective(recipe, "cpu")
    with torch.random.fork_rng():
        torch.manual_seed(derive_seed(recipe.seed, "init"))                # the trainer's initialisation
        before, _ = evaluate(create_model("where", **recipe.model_args), test_set, n=200, objective=objective)
    run = train(recipe, tmp_path / "run", progress=False, log=lambda s: None)
    after, _ = evaluate(load(run), test_set, n=200, objective=objective)
    rows = read_metrics(run)
    assert len(rows) == 1 and math.isclose(rows[0]["test_loss"], after, rel_tol=1e-5)
    assert after < before - 0.02
    assert (run / "model.safetensors").stat().st_size < 20e6                # the MLP only, not the bank


def test_accuracy_map_runs_a_channels_last_copy_and_equals_the_plain_model(what):
    """The map runs on a copy of the What LeNet with channels-last weights and batches of 250: the
    caller's model is untouched, and the cells equal those of the plain model in batches of 1,000
    (the same displays, the logits differ by float rounding only)."""
    from whatwhere.eval.protocols import _accuracy, accuracy_map

    display = preset("paper", 28)
    w = what.classifier[0].weight.clone()
    conv = what.features[3].weight
    assert conv.is_contiguous()
    acc = accuracy_map(what, display, n_digits=300, radius=2, progress=False)
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(what.classifier[0].weight, w)
    from whatwhere.data import mnist

    test = mnist.load("test")
    ds = DisplaySet(test.images[:300], test.labels[:300], display.replace(placement="offset", offset=(0, 0)),
                    seed=0, chunk_size=300)
    with torch.no_grad():
        for di, dj in ((0, 0), (-2, 1), (2, -2)):
            c, t = _accuracy(what.eval(), ds, 300, 1000, offset=(di, dj))
            assert abs(acc[di + 2, dj + 2] * 300 - c) <= 1 and t == 300
    assert acc.shape == (5, 5) and acc[2, 2] > 0.5


def test_accuracy_map_in_bf16_is_close_to_fp32(what):
    """bf16 autocast changes a cell by a near-tie here and there, not the map; an unknown precision
    is refused before any work."""
    from whatwhere.engine.precision import PrecisionError
    from whatwhere.eval.protocols import accuracy_map

    display = preset("paper", 28)
    a = accuracy_map(what, display, n_digits=400, radius=3, progress=False)
    b = accuracy_map(what, display, n_digits=400, radius=3, progress=False, precision="bf16")
    assert np.abs(a - b).max() <= 0.02 and abs(a.mean() - b.mean()) <= 0.005
    with pytest.raises(PrecisionError, match="precision must be one of"):
        accuracy_map(what, display, n_digits=10, radius=1, progress=False, precision="fp16")
