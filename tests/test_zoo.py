"""The checked model zoo and packaged recipes."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

import whatwhere
from whatwhere.engine import zoo
from whatwhere.engine.checkpoints import load, read_weights, weights_path
from whatwhere.engine.recipe import RecipeError, load_recipe, read_recipe, recipe_names
from whatwhere.engine.zoo import ZooError, manifest, zoo_path
from whatwhere.utils.errors import UserError


def test_every_shipped_model_is_listed_hashed_and_loadable():
    m = manifest()["models"]
    assert {"what", "stn28", "where-c0.7"} <= set(m)
    for name, e in m.items():
        assert set(e) >= {"file", "sha256", "bytes", "model", "params", "recipe", "metrics", "provenance"}
        assert len(e["sha256"]) == 64 and e["recipe"].get("name")
        assert zoo.sha256_of(zoo_path(name)) == e["sha256"]
    what = whatwhere.load("what")
    assert sum(p.numel() for p in what.parameters()) == m["what"]["params"] == 431_080
    assert not what.training
    assert torch.equal(load("zoo:what").classifier[0].weight, what.classifier[0].weight)


#: the full state dict of saccadic_transformer-retina (shipped as saccadic_transformer until the POLO
#: periphery replaced it) as loaded (float32), hashed by state_hash.  It was
#: 8346a695... from its single 18.2 MB float32 file (SHA-256 745062f6...), before that file referred to
#: where-c0.7 for the Where's frozen fc1; since both files are stored in float16 it is that state with
#: every floating tensor rounded to float16 and back (checked when they were converted).
SACCADIC_STATE = "00b8b23250797603073976573b9fb16495cfcb0c4e479c7c86d2562cca1f50d7"
#: the same for the shipped saccadic_transformer (the POLO periphery): its trained weights
#: (results/saccadic-polo/model.safetensors, float32) with every tensor rounded to float16 and back.
POLO_STATE = "dd148588fc4b278ec283c70e65384306ec5a7d28b7891725a52d2f70991d8091"


def state_hash(state):
    """SHA-256 of a state dict: names, dtypes, shapes and raw bytes, in name order."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def test_the_retina_saccadic_transformer_refers_to_its_where_and_loads_bit_identical():
    m = manifest()["models"]
    e = m["saccadic_transformer-retina"]
    assert e["parts"] == {"where.": {"model": "where-c0.7", "sha256": m["where-c0.7"]["sha256"], "from": "net.",
                                     "tensors": ["fc1.bias", "fc1.weight"]}}
    own = read_weights(zoo_path("saccadic_transformer-retina"))
    assert "where.fc1.weight" not in own and "where.fc2.weight" in own and e["bytes"] < 7_000_000
    state = zoo.zoo_state("saccadic_transformer-retina")
    assert state_hash(state) == SACCADIC_STATE
    model = whatwhere.load("saccadic_transformer-retina")
    assert state_hash(model.state_dict()) == SACCADIC_STATE
    assert not model.where.fc1.weight.requires_grad   # the frozen part
    with pytest.raises(UserError, match="2 tensor.* missing.*holds only the own tensors of zoo entry 'saccadic_tr"):
        load(zoo_path("saccadic_transformer-retina"))                                   # its file alone, by path
    # what `whatwhere zoo add` would write for it now: the same split
    again, parts = zoo.split_parts(state, e["recipe"]["init"])
    assert parts == e["parts"] and sorted(again) == sorted(own)


def test_the_saccadic_transformer_ships_its_test_time_rule_in_the_manifest():
    """The manifest's model_args build the shipped model (a decision rule changed without new
    weights); brackets override them; the weights are the same either way."""
    e = manifest()["models"]["saccadic_transformer"]
    assert (e["model_args"]["test_glimpses"], e["model_args"]["test_stop_confidence"]) == (6, 0.95)
    assert e["model_args"]["test_inhibition"] == 10
    shipped = whatwhere.load("saccadic_transformer")
    assert (shipped.glimpses, shipped.test_glimpses, shipped.test_stop_confidence) == (2, 6, 0.95)
    assert shipped.test_inhibition == 10
    trained = load("saccadic_transformer[test_glimpses=2,test_stop_confidence=null,test_inhibition=0]")
    assert (trained.test_glimpses, trained.test_stop_confidence, trained.test_inhibition) == (2, None, 0)
    assert state_hash(trained.state_dict()) == state_hash(shipped.state_dict()) == POLO_STATE
    assert e["recipe"]["model_args"] == read_recipe("saccadic_transformer")["model_args"] == e["model_args"]


def test_the_shipped_saccadic_transformer_is_the_polo_run_in_float16():
    """The zoo's saccadic_transformer is the committed POLO-periphery run, stored in float16 (no
    parts: nothing of it is frozen), and the packaged recipe is the one that trained it."""
    e = manifest()["models"]["saccadic_transformer"]
    assert e["model_args"]["periphery"] == "polo" and e["storage"] == "float16" and "parts" not in e
    run = read_weights(Path(__file__).resolve().parents[1] / "results" / "saccadic-polo" / "model.safetensors")
    state = zoo.zoo_state("saccadic_transformer")
    assert sorted(state) == sorted(run) and state_hash(state) == POLO_STATE
    assert all(torch.equal(state[k], run[k].half().float()) for k in run)
    model = whatwhere.load("saccadic_transformer")
    assert model.bandwidth == 768 and model.code is not None
    packaged, trained = read_recipe("saccadic_transformer"), e["recipe"]
    assert {k for k in packaged if packaged[k] != trained.get(k)} <= {"source", "profiles"}


def test_altered_or_truncated_files_are_refused(tmp_path, monkeypatch):
    for var in ("WHATWHERE_ZOO_DIR", "WHATWHERE_ZOO_URL", "WHATWHERE_ZOO_MANIFEST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))   # no cached copy, no download source
    fake = tmp_path / "zoo"
    shutil.copytree(zoo.zoo_dir(), fake, ignore=shutil.ignore_patterns("where-*"))
    monkeypatch.setattr(zoo, "zoo_dir", lambda: fake)
    assert zoo_path("what").parent == fake
    data = (fake / "what.safetensors").read_bytes()
    (fake / "what.safetensors").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))    # one bit flipped
    with pytest.raises(ZooError, match="SHA-256"):
        zoo_path("what")
    (fake / "what.safetensors").write_bytes(data[:1000])                             # truncated
    with pytest.raises(ZooError, match="truncated"):
        load("what")
    (fake / "what.safetensors").unlink()
    with pytest.raises(ZooError, match="missing .* no weights source is configured"):
        zoo_path("what")
    with pytest.raises(ZooError, match=r"entry 'saccadic_transformer-retina', part 'where.' \(where-c0.7\): zoo file "
                                       r"where-c0.7.safetensors is missing .* no weights source"):
        zoo.zoo_state("saccadic_transformer-retina")                                 # a part not there
    with pytest.raises(ZooError, match="accuracy_map|no 'nope'"):
        zoo_path("stn28", "nope")
    with pytest.raises(FileNotFoundError, match="not in the model zoo"):
        load("no-such-model")
    with pytest.raises(ZooError, match="shipped models"):
        load("zoo:no-such-model")


def test_run_directories_and_files_load_too(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(zoo_path("stn28"), run / "model.safetensors")
    assert weights_path(run) == run / "model.safetensors"
    assert type(load(run)).__name__ == "STN28" and type(load(run / "model.safetensors")).__name__ == "STN28"
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "empty-dir-that-does-not-exist")


def test_packaged_recipes_and_extends(tmp_path):
    names = recipe_names()
    assert {"what", "stn28", "where-c0.7", "where-c0.5", "polo_atn", "conv_polo_atn"} <= set(names)
    base, child = load_recipe("where-c0.7"), load_recipe("where-c0.5")
    assert child.name == "where-c0.5" and child.stages[0].display.contrast == 0.5
    assert child.optimizer == base.optimizer and child.model_args == base.model_args
    ft = load_recipe("where-c0.3-ft")
    assert ft.init == "zoo:where-c0.7" and ft.stages[0].display.contrast == 0.3
    # a user's recipe next to its base, overriding a nested key
    (tmp_path / "mine.yaml").write_text("extends: where-c0.5\noptimizer: {lr: 0.001}\n")
    r = load_recipe(tmp_path / "mine.yaml")
    assert r.name == "mine" and r.optimizer.lr == 0.001 and r.optimizer.name == "adam"
    assert r.stages[0].display.contrast == 0.5
    (tmp_path / "loop.yaml").write_text("extends: loop\n")
    with pytest.raises(RecipeError, match="extends itself"):
        read_recipe(tmp_path / "loop.yaml")
    with pytest.raises(RecipeError, match="packaged"):
        load_recipe("no-such-recipe")
    (tmp_path / "old.yaml").write_text("extends: what\ndisplay: {noise: 0.5}\n")
    with pytest.raises(RecipeError, match="renamed display.clutter"):
        load_recipe(tmp_path / "old.yaml")


def test_zoo_where_models_record_their_contrast():
    for name in ("where-c0.7", "where-c0.5", "where-c0.3"):
        recipe = manifest()["models"][name]["recipe"]
        assert recipe["display"]["contrast"] == float(name[-3:])
        assert recipe["objective_args"]["accuracy_map"] == "zoo:what"
    assert json.dumps(manifest())  # plain JSON


def test_zoo_models_say_which_recipe_seed_and_commit_made_them():
    from whatwhere.engine.checkpoints import origin_of

    assert origin_of("polo_atn") == {"recipe": "polo_atn", "profile": None, "seed": 2021, "commit": "e775652"}
    for name in manifest()["models"]:  # every shipped model has a known recipe, seed and commit
        o = origin_of(name)
        assert o["recipe"] and o["seed"] is not None and o["commit"], (name, o)
    assert origin_of("no-such-model") == {"recipe": None, "profile": None, "seed": None, "commit": None}
