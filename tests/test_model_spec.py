"""Model arguments in brackets: ``NAME[key=value,...]`` loads the same weights into a model built
with those arguments changed (whatwhere.engine.checkpoints.split_spec)."""

import pytest
import torch

from whatwhere.engine.checkpoints import load, origin_of, read_state, save_weights, split_spec, weights_path
from whatwhere.models import create_model
from whatwhere.retina import Retina
from whatwhere.utils.errors import UserError


@pytest.fixture(scope="module")
def retina():
    return Retina()


@pytest.mark.parametrize(
    ("spec", "base", "args"),
    [
        ("what", "what", {}),
        ("saccadic_transformer[test_glimpses=6]", "saccadic_transformer", {"test_glimpses": 6}),
        ("runs/x[test_glimpses=6, test_stop_confidence=0.95]", "runs/x", {"test_glimpses": 6, "test_stop_confidence": 0.95}),
        ("zoo:s[test_stop_confidence=null]", "zoo:s", {"test_stop_confidence": None}),
        ("s[freeze=[where.fc1, what],glimpses=3]", "s", {"freeze": ["where.fc1", "what"], "glimpses": 3}),
    ],
)
def test_split_spec(spec, base, args):
    assert split_spec(spec) == (base, args)


@pytest.mark.parametrize("spec", ["s[", "s[]", "s[glimpses]", "s[=2]", "s[glimpses=2]x", "s[a=1][b=2]", "s[1x=2]"])
def test_malformed_brackets_are_one_line_errors(spec):
    with pytest.raises(UserError, match=r"key=value"):
        split_spec(spec)


def test_an_existing_path_with_brackets_is_a_path(tmp_path):
    f = tmp_path / "odd[name=1]"
    f.mkdir()
    assert split_spec(str(f)) == (str(f), {})


def test_the_same_weights_in_a_model_built_with_other_arguments(tmp_path, retina):
    torch.manual_seed(0)
    m = create_model("saccadic_transformer", glimpses=2, retina=retina)
    save_weights(m, tmp_path / "model.safetensors", {"model": "saccadic_transformer", "model_args": {"glimpses": 2}})
    spec = f"{tmp_path}[test_glimpses=5,test_stop_confidence=0.9]"
    got = load(spec)
    assert (got.glimpses, got.test_glimpses, got.test_stop_confidence) == (2, 5, 0.9)
    assert load(tmp_path).test_glimpses is None
    assert weights_path(spec) == tmp_path / "model.safetensors"
    ref = read_state(tmp_path)
    assert all(torch.equal(v, ref[k]) for k, v in got.state_dict().items())
    assert origin_of(spec)["model_args"] == {"test_glimpses": 5, "test_stop_confidence": 0.9}
    assert "model_args" not in origin_of(tmp_path)


def test_an_unknown_or_bad_argument_names_itself(tmp_path, retina):
    torch.manual_seed(0)
    m = create_model("saccadic_transformer", retina=retina)
    save_weights(m, tmp_path / "model.safetensors", {"model": "saccadic_transformer", "model_args": {}})
    with pytest.raises(ValueError, match="test_glimpsez"):
        load(f"{tmp_path}[test_glimpsez=3]")
    with pytest.raises(ValueError, match="test_stop_confidence"):
        load(f"{tmp_path}[test_stop_confidence=2]")
    with pytest.raises(ValueError, match="do not fit|size mismatch|dim1"):  # an argument that changes the weights
        load(f"{tmp_path}[dim1=10]")
