"""The recipe key ``precision`` (fp32 | bf16) and mid-epoch checkpoints (``checkpoint_every_s``)."""

import json

import pytest
import torch

from whatwhere.engine.checkpoints import load as load_model
from whatwhere.engine.precision import PrecisionError, autocast, check_precision, prepare_model
from whatwhere.engine.recipe import RecipeError, parse_recipe
from whatwhere.engine.trainer import TrainingInterrupted, read_metrics, train

TINY = {
    "name": "tiny", "model": "what", "seed": 3, "preset": "paper", "size": 28, "device": "cpu",
    "display": {"clutter": 0.3, "contrast": 0.9, "placement": "cartesian", "clip": 25},
    "optimizer": {"name": "adam", "lr": 0.002}, "batch_size": 50, "train_limit": 1500, "eval_digits": 500,
    "stages": [{"sigma": [0, 1], "epochs": 1, "reset_optimizer": True}],
}
QUIET = {"progress": False, "log": lambda s: None}


def test_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(RecipeError, match=r"precision must be one of fp32, bf16, got 'fp16'"):
        parse_recipe(TINY, overrides=["precision=fp16"])
    with pytest.raises(PrecisionError, match="fp32, bf16"):
        check_precision("half")
    with pytest.raises(RecipeError, match="checkpoint_every_s"):
        parse_recipe(TINY, overrides=["checkpoint_every_s=0"])


def test_bf16_on_a_gpu_without_it_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Old GPU")
    with pytest.raises(PrecisionError, match="bf16 is not supported by Old GPU"):
        check_precision("bf16", "cuda")


def test_autocast_runs_matmuls_in_bf16_and_fp32_changes_nothing():
    lin = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with autocast("bf16", "cpu"):
        assert lin(x).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert lin(x).dtype == torch.float32


def test_prepare_model_puts_conv_kernels_in_channels_last_and_keeps_fp32():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 4, 3))
    prepare_model(conv, "bf16")
    w = conv[1].weight
    assert w.dtype == torch.float32 and w.is_contiguous(memory_format=torch.channels_last)
    first = prepare_model(torch.nn.Conv2d(1, 8, 5), "bf16").weight  # 1 channel: explicit strides
    assert first.stride() == (25, 1, 5, 1)
    plain = torch.nn.Conv2d(3, 8, 3)
    prepare_model(plain, "fp32")
    assert plain.weight.is_contiguous()


@pytest.mark.usefixtures("mnist_test")
def test_bf16_training_learns_like_fp32_and_is_recorded(tmp_path):
    fp32 = read_metrics(train(parse_recipe(TINY), tmp_path / "fp32", **QUIET))
    run = train(parse_recipe(TINY, overrides=["precision=bf16"]), tmp_path / "bf16", **QUIET)
    bf16 = read_metrics(run)
    assert bf16[-1]["test_acc"] > 0.5  # chance is 0.11
    assert abs(bf16[-1]["test_acc"] - fp32[-1]["test_acc"]) < 0.08
    rec = json.loads((run / "run.json").read_text())
    assert rec["precision"] == "bf16"
    model = load_model(run)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32


@pytest.mark.usefixtures("mnist_test")
def test_mid_epoch_checkpoint_resumes_exactly(tmp_path):
    """A run killed after a mid-epoch checkpoint (SIGKILL: nothing saved at the kill) resumes from
    it and ends equal to an uninterrupted run."""
    recipe = parse_recipe(TINY, overrides=["batch_size=10", "train_limit=1100", "eval_digits=200",
                                           "checkpoint_every_s=1e-6"])
    full = train(recipe, tmp_path / "full", **QUIET)
    cut = tmp_path / "cut"
    with pytest.raises(TrainingInterrupted):
        train(recipe, cut, stop_after_batches=60, **QUIET)
    ck = cut / "checkpoints"
    stems = sorted(p.name.split(".")[0] for p in ck.glob("*.safetensors"))
    assert stems == ["epoch-0000-batch-00050", "epoch-0000-batch-00060"]  # the timed one, then Ctrl-C's
    for p in ck.glob("epoch-0000-batch-00060.*"):  # as if killed before batch 60 was saved
        p.unlink()
    info = json.loads((ck / "latest.json").read_text())
    (ck / "latest.json").write_text(json.dumps({**info, "stem": "epoch-0000-batch-00050", "batch": 50}))
    train(recipe, cut, resume=True, **QUIET)
    drop = ("samples_per_s", "wall_s")
    assert ([{k: v for k, v in r.items() if k not in drop} for r in read_metrics(full)]
            == [{k: v for k, v in r.items() if k not in drop} for r in read_metrics(cut)])
    a, b = load_model(full).state_dict(), load_model(cut).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["conv_polo_atn", "polo_atn", "stn128", "atn", "saccadic_transformer", "ram"])
def test_every_registry_model_takes_a_bf16_step(name):
    """prepare_model and autocast work on every kind of model (convPOLO holds 5-D filter banks)."""
    from whatwhere.models.registry import MODELS, create_model

    model = prepare_model(create_model(name), "bf16")
    n = MODELS[name].input_size
    x = torch.rand(2, n, n)
    with autocast("bf16", "cpu"):
        out = model(x)
    out.float().sum().backward()
    assert out.shape == (2, 10)


@pytest.mark.usefixtures("mnist_test")
def test_a_stage_can_set_its_own_precision(tmp_path):
    """``stages[k].precision`` overrides the recipe's for that stage (convPOLO retrains in fp32
    after a bf16 curriculum): the first epoch is the all-bf16 run's, the second is not, and
    run.json lists the precision of every stage."""
    two = "stages=[{sigma: 0, epochs: 1}, {sigma: 0, epochs: 1, precision: fp32}]"
    mixed = parse_recipe(TINY, overrides=["precision=bf16", two])
    assert [st.precision_in(mixed) for st in mixed.stages] == ["bf16", "fp32"]
    run = train(mixed, tmp_path / "mixed", **QUIET)
    rec = json.loads((run / "run.json").read_text())
    assert rec["precision"] == "bf16" and rec["stage_precisions"] == ["bf16", "fp32"]
    # the same first epoch in bf16, then the second in fp32 or in bf16: only the second differs
    allbf16 = read_metrics(train(parse_recipe(TINY, overrides=["precision=bf16", two.replace(", precision: fp32", "")]),
                                 tmp_path / "bf16", **QUIET))
    m = read_metrics(run)
    assert m[0]["train_loss"] == allbf16[0]["train_loss"] and m[1]["train_loss"] != allbf16[1]["train_loss"]
    with pytest.raises(RecipeError, match=r"stages\[1\]\.precision must be one of fp32, bf16, got 'fp16'"):
        parse_recipe(TINY, overrides=[two.replace("precision: fp32", "precision: fp16")])
    assert "stage_precisions" not in json.loads((tmp_path / "bf16" / "run.json").read_text())


@pytest.mark.usefixtures("mnist_test")
def test_precision_arms_branch_a_run_at_a_stage_end(tmp_path, capsys):
    """scripts/precision_arms.py: two arms from a run's stage-end checkpoint train the next stage
    on the same batches, one in each precision; the fp32 arm repeats the run itself exactly."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "precision_arms", Path(__file__).resolve().parents[1] / "scripts" / "precision_arms.py"
    )
    arms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arms)
    two = "stages=[{sigma: 0, epochs: 1}, {sigma: 0, epochs: 2, reset_optimizer: true, lr: 0.001}]"
    run = train(parse_recipe(TINY, overrides=[two]), tmp_path / "run", **QUIET)
    assert (run / "checkpoints" / "epoch-0001-batch-00000.safetensors").is_file()  # the stage end, kept
    assert arms.main([str(run), "1", "2", str(tmp_path / "arms")]) == 0
    table = capsys.readouterr().out
    whole = read_metrics(run)
    fp32, bf16 = read_metrics(tmp_path / "arms" / "fp32"), read_metrics(tmp_path / "arms" / "bf16")
    assert [r["epoch"] for r in fp32] == [r["epoch"] for r in bf16] == [1, 2, 3]
    assert [r["train_loss"] for r in fp32] == [r["train_loss"] for r in whole]  # the same batches, exactly
    assert bf16[0] == whole[0] and bf16[1]["train_loss"] != whole[1]["train_loss"]
    assert "| bf16 | 3 |" in table and "| fp32 | 2 |" in table
    with pytest.raises(SystemExit, match="no checkpoint epoch-0007-batch-00000 .*kept: epoch-0001"):
        arms.main([str(run), "7", "1", str(tmp_path / "other")])
    assert not (tmp_path / "other").exists()
