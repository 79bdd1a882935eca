"""Several seeds in one process: the vectorised ensemble."""

import torch

from whatwhere.models import create_model


def test_members_are_independent_models():
    torch.manual_seed(0)
    e = create_model("ensemble", member="what", n=3)
    x = torch.rand(6, 28, 28)
    e.eval()
    out = e(x)
    assert out.shape == (3, 6, 10)
    for k in range(3):
        assert torch.allclose(e.member(k)(x), out[k], atol=1e-5)
    assert not torch.allclose(out[0], out[1])                        # different initialisations
    # training: the batch is split; member k's loss moves only member k's parameters
    e.train()
    y = e(torch.rand(9, 28, 28))
    assert y.shape == (3, 3, 10)
    y[1].sum().backward()
    grads = [p.grad for p in e.parameters()]
    assert all(g[0].abs().sum() == 0 and g[2].abs().sum() == 0 and g[1].abs().sum() > 0 for g in grads)


def test_where_ensemble_shares_one_retina():
    e = create_model("ensemble", member="where", n=2).eval()
    assert not any("retina" in k or "bank" in k for k in e.state_dict())
    x = torch.rand(2, 128, 128)
    assert torch.allclose(e.member(1)(x), e(x)[1], atol=1e-4)


def test_train_an_ensemble_and_export_its_members(tmp_path, mnist_test):
    from whatwhere.cli import main
    from whatwhere.engine.checkpoints import load
    from whatwhere.engine.recipe import RecipeError, ensemble_recipe, load_recipe

    out = tmp_path / "ens"
    argv = ["train", "what", "--profile", "quick", "--set", "train_limit=300", "--set", "eval_digits=100",
            "--set", "stages=[{sigma: 0, epochs: 1, reset_optimizer: true}]", "--ensemble", "2", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    members = [load(out / f"member-{k}") for k in range(2)]
    assert all(type(m).__name__ == "WhatNet" for m in members)
    assert (out / "member-0" / "recipe.yaml").read_text().count("member 0 of the ensemble") == 1
    d = ensemble_recipe(load_recipe("polo_atn").to_dict(), 3)
    assert d["batch_size"] == 300 and d["stages"][0]["epochs"] == 30 and d["schedule"]["step_size"] == 30
    try:
        ensemble_recipe(load_recipe("saccadic_transformer").to_dict(), 2)
        raise AssertionError("saccadic ensembles must be refused")
    except RecipeError:
        pass
