import csv

import pytest
import torch

from whatwhere.models.registry import MODELS, register_model
from whatwhere.models.what import WhatNet
from whatwhere.engine.recipe import RecipeError, load_recipe, parse_recipe
from whatwhere.engine.checkpoints import load as load_model
from whatwhere.engine.trainer import TrainingError, TrainingInterrupted, read_metrics, train

TINY = {
    "name": "tiny", "model": "what", "seed": 3, "preset": "paper", "size": 28, "device": "cpu",
    "display": {"clutter": 0.3, "contrast": 0.9, "placement": "cartesian", "clip": 25},
    "optimizer": {"name": "adam", "lr": 0.002}, "batch_size": 50, "train_limit": 1500, "eval_digits": 500,
    "stages": [{"sigma": [0, 1], "epochs": 1, "reset_optimizer": True}],
}


def metrics_rows(run):
    with open(run / "metrics.csv") as fh:
        return [{k: v for k, v in r.items() if k not in ("samples_per_s", "wall_s")} for r in csv.DictReader(fh)]


@pytest.mark.usefixtures("mnist_test")
def test_tiny_run_beats_chance_and_reloads(tmp_path):
    run = train(parse_recipe(TINY), tmp_path / "run", progress=False, log=lambda s: None)
    rows = read_metrics(run)
    assert len(rows) == 2 and rows[-1]["stage_name"] == "sigma=1"
    assert rows[-1]["test_acc"] > 0.5  # chance is 0.1135
    model = load_model(run)
    assert isinstance(model, WhatNet)
    assert (run / "model.json").exists() and (run / "recipe.yaml").exists()


@pytest.mark.usefixtures("mnist_test")
def test_resume_equals_uninterrupted(tmp_path):
    recipe = parse_recipe(TINY, overrides=["train_limit=600", "eval_digits=200"])
    full = train(recipe, tmp_path / "full", progress=False, log=lambda s: None)
    with pytest.raises(TrainingInterrupted):  # stop in the middle of the first epoch
        train(recipe, tmp_path / "cut", progress=False, log=lambda s: None, stop_after_batches=7)
    with pytest.raises(FileExistsError):
        train(recipe, tmp_path / "cut", progress=False, log=lambda s: None)
    with pytest.raises(TrainingInterrupted):  # and again at the start of the second
        train(recipe, tmp_path / "cut", resume=True, progress=False, log=lambda s: None, stop_after_batches=5)
    cut = train(recipe, tmp_path / "cut", resume=True, progress=False, log=lambda s: None)
    assert metrics_rows(full) == metrics_rows(cut)
    # run.json: one sitting per process, the refused start not among them
    import json
    rec = json.loads((cut / "run.json").read_text())
    assert [s["status"] for s in rec["sittings"]] == ["interrupted", "interrupted", "done"]
    assert [(s["from"], s["to"]) for s in rec["sittings"]] == [([0, 0], [0, 7]), ([0, 7], [0, 12]), ([0, 12], [2, 0])]
    assert rec["status"] == "done" and rec["profile"] is None and rec["seed"] == 3
    assert rec["overrides"] == ["train_limit=600", "eval_digits=200"]
    from whatwhere.engine.checkpoints import origin_of
    from whatwhere.utils.provenance import git_commit
    assert origin_of(cut) == {"recipe": "tiny", "profile": None, "seed": 3, "commit": git_commit()}
    assert rec["wall_time_s"] == pytest.approx(sum(s["wall_s"] for s in rec["sittings"]), abs=0.2)
    a, b = load_model(full).state_dict(), load_model(cut).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.usefixtures("mnist_test")
def test_nan_guard_keeps_last_good_checkpoint(tmp_path):
    class Exploding(WhatNet):
        calls = 0

        def forward(self, x):
            Exploding.calls += self.training
            out = super().forward(x)
            return out * float("nan") if Exploding.calls > 45 and self.training else out

    register_model("exploding-test", 28)(Exploding)
    try:
        recipe = parse_recipe(TINY | {"model": "exploding-test"}, overrides=["train_limit=1000", "stages.*.epochs=2"])
        with pytest.raises(TrainingError, match="non-finite loss in epoch 3"):
            train(recipe, tmp_path / "run", progress=False, log=lambda s: None)
    finally:
        MODELS.pop("exploding-test")
    rows = read_metrics(tmp_path / "run")
    assert len(rows) == 2  # the two good epochs; the bad one wrote nothing
    ck = (tmp_path / "run" / "checkpoints" / "latest.json").read_text()
    assert '"epoch": 2' in ck


@pytest.mark.parametrize("change, match", [
    ({"optimizer": {"name": "rmsprop"}}, "optimizer.name"),
    ({"optimizer": {"lr": -1}}, "optimizer.lr"),
    ({"optimizer": {"learning_rate": 0.1}}, "optimizer.learning_rate"),
    ({"batchsize": 10}, "batchsize"),
    ({"model": "resnet"}, "model"),
    ({"display": {"clutter": -1}}, "clutter"), ({"display": {"noise": 0.5}}, "renamed display.clutter"),
    ({"display": {"contrast": 2}}, "contrast"),
    ({"stages": [{"epochs": -1}]}, "stages\\[0\\].epochs"),
    ({"stages": [{"epochs": 1, "sigmaa": 2}]}, "stages\\[0\\].sigmaa"),
    ({"schedule": {"name": "cosine"}}, "schedule.name"),
    ({"preset": "nature"}, "preset"),
])
def test_recipe_validation_names_the_key(change, match):
    with pytest.raises(RecipeError, match=match):
        parse_recipe(TINY | change)


def test_overrides_and_profiles(tmp_path):
    r = load_recipe("what")
    assert r.total_epochs == 80 and len(r.stages) == 16 and r.stages[15].display.sigma == 15
    assert r.optimizer.name == "adam" and r.optimizer.lr == 0.005 and all(s.reset_optimizer for s in r.stages)
    q = load_recipe("what", profile="quick", overrides=["optimizer.lr=0.001", "stages.*.epochs=2"])
    assert q.total_epochs == 32 and q.optimizer.lr == 0.001 and q.train_limit is not None
    with pytest.raises(RecipeError, match="profile"):
        load_recipe("what", profile="huge")
    with pytest.raises(RecipeError, match="key=value"):
        load_recipe("what", overrides=["optimizer.lr"])
    s = load_recipe("stn28")
    assert s.total_epochs == 160 and s.optimizer.name == "sgd" and s.stages[0].display.clutter == 0.75


@pytest.mark.usefixtures("mnist_test")
def test_init_starts_from_trained_weights(tmp_path):
    first = train(parse_recipe(TINY, overrides=["train_limit=600", "eval_digits=200"]), tmp_path / "a",
                  progress=False, log=lambda s: None)
    # zero epochs: the "fine-tuned" model is exactly the weights it started from
    same = train(parse_recipe({**TINY, "init": str(first), "stages": [{"epochs": 0}]}), tmp_path / "b",
                 progress=False, log=lambda s: None)
    a, b = load_model(first).state_dict(), load_model(same).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(FileNotFoundError, match="init"):
        train(parse_recipe({**TINY, "init": str(tmp_path / "nowhere")}), tmp_path / "c", progress=False,
              log=lambda s: None)
    with pytest.raises(ValueError, match="init"):
        train(parse_recipe({**TINY, "init": str(first), "model": "stn28"}), tmp_path / "d", progress=False,
              log=lambda s: None)
    with pytest.raises(RecipeError, match="init"):
        parse_recipe({**TINY, "init": 3})


@pytest.mark.usefixtures("mnist_test")
@pytest.mark.parametrize("recipe_schedule, stage_schedule", [
    ({"name": "constant"}, {"name": "step", "step_size": 1, "gamma": 0.5}),
    ({"name": "step", "step_size": 1, "gamma": 0.5}, {"name": "constant"}),  # STN-128's contrast stages
])
def test_resume_inside_a_stage_with_its_own_schedule(tmp_path, recipe_schedule, stage_schedule):
    """A checkpoint written under a stage's own optimiser and schedule resumes into the same kind
    (it used to be loaded into the recipe's: a KeyError, or silently the wrong schedule)."""
    d = {**TINY, "schedule": recipe_schedule, "optimizer": {"name": "sgd", "lr": 0.05},
         "stages": [{"sigma": 0, "epochs": 2},
                    {"sigma": 1, "epochs": 3, "reset_optimizer": True, "lr": 0.02, "schedule": stage_schedule}]}
    recipe = parse_recipe(d, overrides=["train_limit=300", "eval_digits=100"])
    full = train(recipe, tmp_path / "full", progress=False, log=lambda s: None)
    cut = tmp_path / "cut"
    with pytest.raises(TrainingInterrupted):  # in the middle of the stage's second epoch
        train(recipe, cut, progress=False, log=lambda s: None, stop_after_batches=2 * 6 + 6 + 3)
    with pytest.raises(TrainingInterrupted):  # and exactly at the end of its second epoch
        train(recipe, cut, resume=True, progress=False, log=lambda s: None, stop_after_batches=3)
    train(recipe, cut, resume=True, progress=False, log=lambda s: None)
    assert metrics_rows(full) == metrics_rows(cut)
    assert [r["lr"] for r in metrics_rows(full)][2:] == (
        ["0.02", "0.01", "0.005"] if stage_schedule["name"] == "step" else ["0.02"] * 3)


def test_a_record_names_a_modified_checkout_dirty(tmp_path):
    import subprocess

    from whatwhere.utils.provenance import git_commit

    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    clean = git_commit(tmp_path)
    assert clean and len(clean) >= 7 and not clean.endswith("-dirty")
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    assert git_commit(tmp_path) == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == clean + "-dirty"
    assert git_commit(tmp_path.parent / "nowhere") is None


@pytest.mark.usefixtures("mnist_test")
def test_every_stage_end_checkpoint_is_kept(tmp_path):
    """Beside the newest two, the checkpoint at the end of each stage survives, so that a later
    stage can be re-run from where the previous one left the model; mid-epoch ones are pruned."""
    recipe = parse_recipe(TINY, overrides=["train_limit=600", "eval_digits=100", "batch_size=5",
                                           "checkpoint_every_s=1e-9", "stages=[{sigma: [0, 1, 2, 3], epochs: 1}]"])
    run = train(recipe, tmp_path / "run", progress=False, log=lambda s: None)
    stems = sorted(p.name.split(".")[0] for p in (run / "checkpoints").glob("*.safetensors"))
    # the four stage ends (the last one beside model.safetensors) and the newest two, of the last epoch
    ends = [f"epoch-000{e}-batch-00000" for e in (1, 2, 3, 4)]
    assert stems == sorted(ends + ["epoch-0003-batch-00050", "epoch-0003-batch-00100"])
    with pytest.raises(TrainingInterrupted):  # mid-epoch checkpoints come and go; stage ends stay
        train(recipe, tmp_path / "cut", progress=False, log=lambda s: None, stop_after_batches=120 + 110)
    stems = sorted(p.name.split(".")[0] for p in (tmp_path / "cut" / "checkpoints").glob("*.safetensors"))
    assert stems == ["epoch-0001-batch-00000", "epoch-0001-batch-00100", "epoch-0001-batch-00110"]


@pytest.mark.usefixtures("mnist_test")
def test_lr_scale_trains_named_parameters_at_their_own_rate_and_resumes_exactly(tmp_path):
    """optimizer.lr_scale {prefix: factor}: those parameters learn at factor x the lr (plain SGD: a
    step of exactly factor x the full-rate step); an interrupted run with it resumes exactly; a
    prefix that names no trainable parameter, or a bad factor, is refused."""
    from whatwhere.engine.trainer import _make_optimizer

    quiet = {"progress": False, "log": lambda s: None}
    sgd = ["optimizer={name: sgd, lr: 0.1}"]
    recipe = parse_recipe(TINY, overrides=sgd + ["optimizer.lr_scale={features: 0.25}"])
    torch.manual_seed(0)
    model = WhatNet()
    opt = _make_optimizer(recipe, model, 0.1)
    lrs = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert {n: lrs[id(p)] for n, p in model.named_parameters()} == {
        n: (0.025 if n.startswith("features.") else 0.1) for n, _ in model.named_parameters()
    }
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
    full = _make_optimizer(parse_recipe(TINY, overrides=sgd), WhatNet(), 0.1)  # the same step at full rate
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.nn.functional.cross_entropy(model(x), y).backward()
    steps = {n: -0.1 * p.grad for n, p in model.named_parameters()}
    opt.step()
    for n, p in model.named_parameters():
        factor = 0.25 if n.startswith("features.") else 1.0
        assert torch.allclose(p.detach() - before[n], factor * steps[n], atol=1e-7), n
    assert len(full.param_groups) == 1
    # resume: the optimiser's groups come back as they were
    short = parse_recipe(TINY, overrides=sgd + ["optimizer.lr_scale={features: 0.25}", "train_limit=600",
                                                "eval_digits=200"])
    whole = train(short, tmp_path / "whole", **quiet)
    with pytest.raises(TrainingInterrupted):
        train(short, tmp_path / "cut", stop_after_batches=7, **quiet)
    cut = train(short, tmp_path / "cut", resume=True, **quiet)
    assert metrics_rows(whole) == metrics_rows(cut)
    with pytest.raises(ValueError, match="lr_scale: 'feature' names no trainable parameter.*classifier"):
        train(parse_recipe(TINY, overrides=["optimizer.lr_scale={feature: 0.5}"]), tmp_path / "typo", **quiet)
    for bad, msg in (("{features: 0}", "lr_scale.features must be a number > 0"),
                     ("{features: fast}", "lr_scale.features must be a number > 0"), ("[1]", "lr_scale")):
        with pytest.raises(RecipeError, match=msg):
            parse_recipe(TINY, overrides=[f"optimizer.lr_scale={bad}"])
