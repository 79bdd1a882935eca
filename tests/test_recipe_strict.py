"""Strict recipes: unknown keys at any depth and badly typed values are refused, with the key, the
nearest valid key and the value, on one line; property and fuzz tests of the parser."""

import copy
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whatwhere.engine.objectives import OBJECTIVE_ARGS, OBJECTIVES, register_objective
from whatwhere.engine.recipe import (RecipeError, apply_override, load_recipe, parse_recipe, parse_value,
                                     read_recipe, recipe_names)
from whatwhere.models.registry import MODELS, register_model

TINY = {"name": "tiny", "model": "what", "size": 28, "display": {"clutter": 0.3, "placement": "cartesian"},
        "optimizer": {"name": "adam", "lr": 0.002}, "stages": [{"sigma": [0, 1], "epochs": 1}]}


def refused(message: str, *, recipe="where-c0.7", d=None, profile=None, overrides=()):
    """Parse, expect a RecipeError whose one-line message contains ``message``; return it."""
    with pytest.raises(RecipeError) as info:
        if d is not None:
            parse_recipe(d, profile=profile, overrides=list(overrides))
        else:
            load_recipe(recipe, profile=profile, overrides=list(overrides))
    text = str(info.value)
    assert message in text and "\n" not in text, text
    return text


@pytest.mark.parametrize("item, message", [
    ("optimiser.lr=0.1", "override 'optimiser.lr': unknown key 'optimiser' (did you mean 'optimizer'?)"),
    ("optimizer.lrr=0.1", "unknown key 'optimizer.lrr' (did you mean 'optimizer.lr'?)"),
    ("schedule.gama=0.5", "unknown key 'schedule.gama' (did you mean 'schedule.gamma'?)"),
    ("display.clutr=0.5", "unknown key 'display.clutr' (did you mean 'display.clutter'?)"),
    ("display.noise=0.5", "display.noise was renamed display.clutter"),
    ("stages.*.epoch=1", "unknown key 'stages.*.epoch' (did you mean 'stages.*.epochs'?)"),
    ("stages.0.display.contrst=0.5", "unknown key 'stages.0.display.contrst' (did you mean 'stages.0.display.contrast'?)"),
    ("stages.0.schedule.gama=0.5", "unknown key 'stages.0.schedule.gama' (did you mean 'stages.0.schedule.gamma'?)"),
    ("batchsize=10", "unknown key 'batchsize' (did you mean 'batch_size'?)"),
    ("model_args.dim3=10", "unknown key 'model_args.dim3' for model 'where' (did you mean 'model_args.dim"),
    ("objective_args.baselin=0.2", "unknown key 'objective_args.baselin' for objective 'where' "
                                   "(did you mean 'objective_args.baseline'?)"),
    ("stages.7.epochs=1", "bad list index '7'"),
    ("batch_size.x=1", "batch_size takes a value, not keys"),
    ("model=wher", "got 'wher' (did you mean 'where'?)"),
    ("objective=saccadc", "got 'saccadc' (did you mean 'saccadic'?)"),
    ("optimizer.name=adma", "optimizer.name must be one of sgd, adam, got 'adma' (did you mean 'adam'?)"),
    ("precision=fp16", "precision must be one of fp32, bf16, got 'fp16'"),
    ("optimizer.lr", "must look like key=value"),
])
def test_unknown_keys_in_overrides_name_the_key_and_the_nearest(item, message):
    refused(message, overrides=[item])


@pytest.mark.parametrize("change, message", [
    ({"optimiser": {"lr": 0.1}}, "unknown key 'optimiser' (did you mean 'optimizer'?)"),
    ({"optimizer": {"name": "adam", "lrat": 0.1}}, "unknown key 'optimizer.lrat' (did you mean 'optimizer.lr'?)"),
    ({"optimizer": {"learning_rate": 0.1}}, "unknown key 'optimizer.learning_rate' (allowed: lr, lr_scale, momentum, name, weight_decay)"),
    ({"stages": [{"epochs": 1, "sigmaa": 2}]}, "unknown key 'stages[0].sigmaa' (did you mean 'stages[0].sigma'?)"),
    ({"stages": [{"epochs": 1, "reset_optimizer": True, "schedule": {"nam": "step"}}]},
     "unknown key 'stages[0].schedule.nam' (did you mean 'stages[0].schedule.name'?)"),
    ({"stages": [{"epochs": 1, "display": {"clip": 3, "sigam": 1}}]},
     "unknown key 'stages[0].display.sigam' (did you mean 'stages[0].display.sigma'?)"),
    ({"profiles": {"quick": {"optimizer.lrr": 0.1}}},
     "profile 'quick': override 'optimizer.lrr': unknown key 'optimizer.lrr' (did you mean 'optimizer.lr'?)"),
    ({"profiles": {"quick": {"batch_size": "many"}}}, "profile 'quick': batch_size must be an integer, got 'many'"),
    ({"model_args": {"dim": 3}}, "unknown key 'model_args.dim' for model 'what' (none allowed)"),
    ({"objective_args": {"baseline": 0.1}}, "unknown key 'objective_args.baseline' for objective 'classification'"),
    ({"a\nb": 1}, "unknown key 'a\\nb'"),
])
def test_unknown_keys_in_a_recipe_at_any_depth(change, message):
    refused(message, d=TINY | change)


@pytest.mark.parametrize("item, message", [
    ("batch_size=abc", "batch_size must be an integer, got 'abc'"),
    ("batch_size=true", "batch_size must be an integer, got True"),
    ("batch_size=0", "batch_size must be >= 1, got 0"),
    ("optimizer.lr=fast", "optimizer.lr must be a number, got 'fast'"),
    ("optimizer.lr=-1", "optimizer.lr must be > 0"),
    ("static=maybe", "static must be true or false, got 'maybe'"),
    ("static=1", "static must be true or false, got 1"),
    ("stages.*.epochs=1.5", "stages[0].epochs must be an integer, got 1.5"),
    ("stages.*.reset_optimizer=0", "stages[0].reset_optimizer must be true or false, got 0"),
    ("stages.*.sigma=[]", "stages[0].sigma must be a number or a non-empty list of numbers"),
    ("seed=1.5", "seed must be an integer, got 1.5"),
    ("train_limit=ten", "train_limit must be an integer or null, got 'ten'"),
    ("checkpoint_every_s=0", "checkpoint_every_s must be > 0, got 0"),
    ("checkpoint_every_s=soon", "checkpoint_every_s must be a number, got 'soon'"),
    ("display.contrast_range=[0.1]", "display.contrast_range must be a list of 2 numbers or null, got [0.1]"),
    ("display.clutter=[1]", "display.clutter must be a number, got [1]"),
    ("display=3", "display must be a mapping, got 3"),
    ("model_args.dim1=1000.0", "model_args.dim1 must be an integer, got 1000.0"),
    ("model_args.offset_clip=1", "model_args.offset_clip must be true or false, got 1"),
    ("objective_args.reflect=yes please", "objective_args.reflect must be true or false, got 'yes please'"),
    ("device=gpu", "device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("name=[1, 2", "value '[1, 2' is not valid YAML"),
    ("name=2020-13-45", "value '2020-13-45' is not valid YAML"),
    ("optimizer.lr=a\nb: c", "value 'a\\nb: c' is not valid YAML: mapping values are not allowed here"),
])
def test_values_are_type_checked_before_anything_is_built(item, message):
    refused(message, overrides=[item])


def test_keys_and_values_with_newlines_stay_on_one_line():
    refused("unknown key 'na\\nme'", overrides=["na\nme=1"])
    refused("batch_size must be an integer, got '1\\n2'", d=TINY | {"batch_size": "1\n2"})
    refused("optimizer.lr must be a number", overrides=["optimizer.lr='x\ny'"])


def test_model_args_follow_the_factory_signature():
    # a factory with **code_args (POLO models) accepts any extra key; its named ones are typed
    assert load_recipe("polo_atn", overrides=["model_args.n_theta=4"]).model_args == {"filters": "1/f", "n_theta": 4}
    refused("model_args.filters must be a string, got 3", recipe="polo_atn", overrides=["model_args.filters=3"])
    refused("model_args.circular must be true or false", recipe="conv_polo_atn", overrides=["model_args.circular=0"])

    @register_model("strict-test", 28)
    def factory(width: int, depth: "int | None" = None, extra: "NoSuchType" = None):  # noqa: F821
        raise AssertionError("never built by the parser")

    try:
        d = TINY | {"model": "strict-test"}
        refused("model 'strict-test' needs model_args.width", d=d)
        assert parse_recipe(d | {"model_args": {"width": 3, "depth": None, "extra": object()}}).model_args["width"] == 3
        refused("model_args.depth must be an integer or null, got 'deep'", d=d | {"model_args": {"width": 3, "depth": "deep"}})
        refused("unknown key 'model_args.widht' for model 'strict-test' (did you mean 'model_args.width'?)",
                d=d | {"model_args": {"widht": 3}})
        refused("model_args keys must be strings", d=d | {"model_args": {1: 3}})
    finally:
        MODELS.pop("strict-test")


def test_objective_args_follow_the_objective_table():
    assert OBJECTIVE_ARGS["classification"] == {}
    ens = TINY | {"model": "ensemble", "objective": "ensemble"}
    ok = parse_recipe(ens | {"objective_args": {"member_objective": "where", "baseline": 0.2, "reflect": True}})
    assert ok.objective_args["baseline"] == 0.2
    refused("unknown key 'objective_args.glimpse_weight' for objective 'ensemble'",
            d=ens | {"objective_args": {"member_objective": "where", "glimpse_weight": 1.0}})
    refused("unknown key 'objective_args.baseline'", d=ens | {"objective_args": {"baseline": 0.1}})  # classification members
    refused("objective_args.member_objective must be one of classification, where, got 'saccadic'",
            d=ens | {"objective_args": {"member_objective": "saccadic"}})
    refused("objective_args.member_objective must be one of", d=ens | {"objective_args": {"member_objective": [1]}})
    refused("objective_args.map_weight must be a number, got 'high'", recipe="saccadic_transformer",
            overrides=["objective_args.map_weight=high"])

    @register_objective("strict-test")  # no declared args: any are accepted
    def anything(recipe=None, device=None):
        raise AssertionError("never built by the parser")

    try:
        assert parse_recipe(TINY | {"objective": "strict-test", "objective_args": {"x": 1}}).objective_args == {"x": 1}
    finally:
        OBJECTIVES.pop("strict-test")
        OBJECTIVE_ARGS.pop("strict-test")


def test_malformed_yaml_gives_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: what\nstages: [{epochs: 1}\noptimizer: {lr: 0.1}\n")
    text = str(pytest.raises(RecipeError, load_recipe, bad).value)
    assert re.fullmatch(rf"{re.escape(str(bad))}: line 4: expected ',' or '\]', but got .*", text), text
    bad.write_text("name: x\n  model: what\n")
    text = str(pytest.raises(RecipeError, load_recipe, bad).value)
    assert text.startswith(f"{bad}: line 2: ") and "\n" not in text, text
    bad.write_text("- name: x\n- model: what\n")
    assert str(pytest.raises(RecipeError, load_recipe, bad).value).startswith(f"{bad}: line 1: a recipe must be a mapping")
    bad.write_bytes(b"name: \xff\xfe\n")
    assert str(pytest.raises(RecipeError, load_recipe, bad).value).startswith(f"{bad}: ")
    refused("a recipe must be a mapping", d=[1, 2])


def test_every_packaged_recipe_and_profile_resolves():
    for name in recipe_names():
        d = read_recipe(name)
        for profile in [None, *(d.get("profiles") or {})]:
            assert parse_recipe(d, profile=profile).name == name
    refused("profile 'quik' is not defined in this recipe (profiles: quick) (did you mean 'quick'?)", recipe="what",
            profile="quik")


# ------------------------------------------------------------------ properties and fuzzing

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=10)  # PyYAML: no NEL, ...
numbers = st.floats(min_value=0.0, max_value=5.0, allow_nan=False).map(lambda x: round(x, 3))
valid_stage = st.fixed_dictionaries(
    {"epochs": st.integers(0, 5)},
    optional={"sigma": numbers | st.lists(numbers, min_size=1, max_size=3), "name": text,
              "contrast": st.floats(0.1, 1.0), "reset_optimizer": st.booleans(), "lr": st.floats(1e-5, 1.0)})
valid_recipe = st.fixed_dictionaries(
    {"name": text.filter(bool), "model": st.sampled_from(["what", "stn28"]),
     "stages": st.lists(valid_stage, min_size=1, max_size=3)},
    optional={"size": st.just(28), "preset": st.sampled_from(["paper", "dabane2021"]), "seed": st.integers(-5, 10**6),
              "batch_size": st.integers(1, 512), "train_limit": st.none() | st.integers(1, 60000),
              "static": st.booleans(), "precision": st.sampled_from(["fp32", "bf16"]),
              "checkpoint_every_s": st.floats(0.5, 1e5), "device": st.sampled_from(["auto", "cpu", "cuda:1"]),
              "source": text,
              "optimizer": st.fixed_dictionaries({}, optional={"name": st.sampled_from(["sgd", "adam"]),
                                                               "lr": st.floats(1e-6, 1.0),
                                                               "momentum": st.floats(0.0, 0.99)}),
              "schedule": st.fixed_dictionaries({}, optional={"name": st.sampled_from(["constant", "step"]),
                                                              "step_size": st.integers(1, 30),
                                                              "gamma": st.floats(0.01, 1.0)}),
              "display": st.fixed_dictionaries({}, optional={"clutter": st.floats(0.0, 2.0),
                                                             "contrast_range": st.tuples(st.just(0.3), st.floats(0.3, 1.0)).map(list),
                                                             "clip": st.floats(0.0, 20.0)})})


@FAST
@given(valid_recipe)
def test_yaml_round_trip_of_a_valid_recipe(tmp_path_factory, d):
    path = tmp_path_factory.mktemp("rt") / "r.yaml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True))
    assert load_recipe(path) == parse_recipe(d)
    assert load_recipe(path).to_dict() == parse_recipe(d).to_dict()


def deep_merge(base, over):
    """Mappings merge key by key; everything else is replaced (the documented ``extends`` rule)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


@FAST
@given(valid_recipe, valid_recipe.map(lambda c: {k: v for k, v in c.items() if k not in ("name", "model")}))
def test_extends_is_a_deep_merge(tmp_path_factory, parent, child):
    where = tmp_path_factory.mktemp("ext")
    (where / "parent.yaml").write_text(yaml.safe_dump(parent))
    (where / "child.yaml").write_text(yaml.safe_dump({"extends": "parent", **child}))
    expected = deep_merge({k: v for k, v in parent.items() if k != "name"}, child) | {"name": "child"}
    assert read_recipe(where / "child.yaml") == expected
    assert load_recipe(where / "child.yaml") == parse_recipe(expected)


KEYS = ["name", "model", "stages", "optimizer", "schedule", "display", "lr", "epochs", "sigma", "clutter", "name",
        "model_args", "objective", "objective_args", "profiles", "init", "size", "preset", "batch_size", "static",
        "contrast_range", "reset_optimizer", "member_objective", "baseline", "step_size", "gamma", "precision"]
keys = st.sampled_from(KEYS) | st.text(max_size=6)
scalars = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=8)
           | st.sampled_from(["what", "where", "ensemble", "sgd", "step", "paper", "zoo:what", "fp32", "1e-3"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=12)
dotted = st.lists(st.sampled_from(KEYS + ["*", "0", "1"]) | st.text(max_size=4), min_size=1, max_size=4).map(".".join)
set_items = (st.tuples(dotted, st.text(max_size=10) | st.sampled_from(["1.5", "true", "[1,", "{a: 1}", "- x", "null"]))
             .map("=".join) | st.text(max_size=12))


def only_recipe_errors(d, overrides=(), profile=None):
    try:
        parse_recipe(d, profile=profile, overrides=list(overrides))
    except RecipeError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys, values, max_size=6), st.lists(set_items, max_size=3))
def test_fuzz_random_mappings_raise_only_recipe_errors(d, overrides):
    only_recipe_errors(d, overrides)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["what", "where-c0.7", "stn128", "saccadic_transformer", "conv_polo_atn"]),
       st.lists(st.tuples(dotted, values), max_size=3), st.lists(set_items, max_size=3))
def test_fuzz_mutated_recipes_raise_only_recipe_errors(name, changes, overrides):
    d = read_recipe(name)
    for key, value in changes:  # random changes anywhere, through the override machinery when the key exists
        try:
            apply_override(d, key, value)
        except RecipeError:
            d[key] = value
    profiles = d.get("profiles")
    profile = next(iter(profiles), None) if isinstance(profiles, dict) and len(changes) % 2 else None
    only_recipe_errors(d, overrides, profile=profile)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20))
def test_parse_value_raises_only_recipe_errors(text):
    try:
        parse_value(text)
    except RecipeError as exc:
        assert "\n" not in str(exc)
