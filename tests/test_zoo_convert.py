"""`whatwhere zoo convert`: zoo entries stored in float16, loaded as float32 (issue 20).  A tiny
zoo built in a tmp folder (WHATWHERE_ZOO_DIR and WHATWHERE_ZOO_MANIFEST point at it; the
package's zoo is never touched), served on the loopback address for the fetch path."""

import errno
import json

import pytest
import torch
from safetensors import safe_open

import whatwhere.utils.io
from whatwhere.cli import main
from whatwhere.engine import zoo
from whatwhere.engine.checkpoints import load, model_meta, read_state, read_weights, save_weights
from whatwhere.engine.zoo import ZooError, convert_zoo, zoo_path, zoo_state
from whatwhere.models import create_model
from whatwhere.utils.io import WriteError

ARGS = {"size": 28, "hidden": [4]}


def fc(seed):
    torch.manual_seed(seed)
    return create_model("fc", **ARGS)


@pytest.fixture
def tz(tmp_path, monkeypatch):
    """A zoo in ``zoo/``: "tiny" (an FC net), "combo" (the same net, its first layer tiny's:
    a composite written by ``add_to_zoo``) and "other" (unrelated).  Returns the folder and the
    full fp32 state dicts they were made from."""
    d = tmp_path / "zoo"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"format": 1, "base_url": None, "models": {}}))
    monkeypatch.delenv("WHATWHERE_ZOO_URL", raising=False)
    monkeypatch.setenv("WHATWHERE_ZOO_DIR", str(d))
    monkeypatch.setenv("WHATWHERE_ZOO_MANIFEST", str(d / "manifest.json"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(zoo, "zoo_dir", lambda: d)  # add_to_zoo writes into the package folder: this one
    states = {}
    for name, seed in (("tiny", 1), ("other", 2)):
        model = fc(seed)
        save_weights(model, tmp_path / f"{name}.safetensors", model_meta("fc", ARGS, name))
        zoo.add_to_zoo(name, tmp_path / f"{name}.safetensors", params=64, recipe={"name": name})
        states[name] = model.state_dict()
    model = fc(3)
    first = read_weights(d / "tiny.safetensors")
    model.load_state_dict({**model.state_dict(), "net.1.weight": first["net.1.weight"],
                           "net.1.bias": first["net.1.bias"]})
    save_weights(model, tmp_path / "combo.safetensors", model_meta("fc", ARGS, "combo"))
    zoo.add_to_zoo("combo", tmp_path / "combo.safetensors", params=64,
                   recipe={"name": "combo", "init": {"net": "zoo:tiny"}})
    states["combo"] = model.state_dict()
    (tmp_path / "package").mkdir()
    monkeypatch.setattr(zoo, "zoo_dir", lambda: tmp_path / "package")  # the package folder: empty (a wheel)
    return d, states


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def stored(path):
    with safe_open(str(path), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, fh.metadata()


def half(state):
    return {k: v.half().float() for k, v in state.items()}


def same(a, b):
    return sorted(a) == sorted(b) and all(zoo._identical(a[k], b[k]) for k in a)


def test_converted_entries_load_as_float32_with_their_fp16_values_and_the_pins_follow(tz, capsys):
    d, states = tz
    before = json.loads((d / "manifest.json").read_text())["models"]
    other = (d / "other.safetensors").read_bytes()
    assert main(["zoo", "convert", "tiny", "zoo:combo", "--dtype", "float16"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("tiny: tiny.safetensors stored in float16, ")
    assert out[2] == "combo: part 'net.' now pins tiny's new sha256"
    m = json.loads((d / "manifest.json").read_text())["models"]
    for name, keys in (("tiny", ["net.1.bias", "net.1.weight", "net.3.bias", "net.3.weight"]),
                       ("combo", ["net.3.bias", "net.3.weight"])):
        tensors, meta = stored(d / f"{name}.safetensors")
        assert sorted(tensors) == keys and {t.dtype for t in tensors.values()} == {torch.float16}
        assert json.loads(meta["storage"]) == "float16" and json.loads(meta["model"]) == "fc"
        assert json.loads(meta["model_args"]) == ARGS and json.loads(meta["recipe"]) == name   # metadata kept
        e = m[name]
        assert e["storage"] == "float16" and list(e)[:4] == ["file", "sha256", "bytes", "storage"]
        assert e["sha256"] == zoo.sha256_of(d / e["file"]) and e["bytes"] == (d / e["file"]).stat().st_size
        assert e["bytes"] < before[name]["bytes"] and e["sha256"] != before[name]["sha256"]
        assert {k: v for k, v in e.items() if k not in ("sha256", "bytes", "storage", "parts")} == \
            {k: v for k, v in before[name].items() if k not in ("sha256", "bytes", "parts")}
    assert m["combo"]["parts"] == {"net.": {**before["combo"]["parts"]["net."], "sha256": m["tiny"]["sha256"]}}
    assert m["other"] == before["other"] and (d / "other.safetensors").read_bytes() == other
    # every loader gives float32: the fp16 values, cast up
    for name in ("tiny", "combo"):
        got = load(f"zoo:{name}").state_dict()
        assert same(got, half(states[name])) and not same(got, states[name])
        assert same(zoo_state(name), half(states[name])) and same(read_state(name), half(states[name]))
    assert {t.dtype for t in zoo_state("combo", stored=True).values()} == {torch.float16}
    assert same(read_state(d / "tiny.safetensors"), half(states["tiny"]))          # by path too
    assert same(load(d / "tiny.safetensors").state_dict(), half(states["tiny"]))
    assert main(["zoo", "verify"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "ok   tiny weights"
    # the list says how each is stored
    assert main(["zoo", "list"]) == 0
    rows = {r.split()[0]: r for r in capsys.readouterr().out.splitlines()[1:]}
    assert " float16 " in rows["tiny"] and " float32 " in rows["other"]
    # the provenance the benchmark keeps, and the report's "made by" row, say so
    from whatwhere.engine.checkpoints import origin_of
    from whatwhere.orchestration.report import _made_row

    assert origin_of("tiny")["storage"] == "float16" and "storage" not in origin_of("other")
    assert _made_row("b", "tiny", {**origin_of("tiny"), "precision": "fp32"}, {})[4] == "fp32, stored float16"
    assert _made_row("b", "other", {**origin_of("other"), "precision": "fp32"}, {})[4] == "fp32"
    # again: nothing changes
    again = snapshot(d)
    assert main(["zoo", "convert", "tiny", "combo", "--dtype", "float16"]) == 0
    assert "unchanged" in capsys.readouterr().out and snapshot(d) == again


def test_a_composite_and_its_part_in_different_dtypes_assemble_in_float32(tz, capsys):
    d, states = tz
    mixed = {**half(states["combo"]), "net.1.weight": states["combo"]["net.1.weight"],
             "net.1.bias": states["combo"]["net.1.bias"]}
    convert_zoo(["combo"], "float16")                # its own tensors float16, the part's float32
    assert zoo.manifest()["models"]["combo"]["parts"]["net."]["sha256"] == zoo.manifest()["models"]["tiny"]["sha256"]
    assert same(load("zoo:combo").state_dict(), mixed) and same(zoo_state("combo"), mixed)
    # its part alone: refused, the composite's tensors taken from it would change
    with pytest.raises(ZooError, match=r"zoo entry 'combo' takes net.1.bias, net.1.weight from tiny: stored in "
                                       r"float16 they would no longer match .* name combo in the same command"):
        convert_zoo(["tiny"], "float16")
    convert_zoo(["tiny", "combo"], "float16")
    convert_zoo(["combo"], "float32")                # the other way: own float32 (fp16 values), part float16
    tensors, meta = stored(d / "combo.safetensors")
    assert {t.dtype for t in tensors.values()} == {torch.float32} and json.loads(meta["storage"]) == "float32"
    assert zoo.manifest()["models"]["combo"]["storage"] == "float32"
    assert same(load("zoo:combo").state_dict(), half(states["combo"]))
    assert {zoo_state("combo", stored=True)[k].dtype for k in ("net.1.weight", "net.3.weight")} == \
        {torch.float16, torch.float32}
    assert main(["zoo", "verify"]) == 0


def test_refusals_are_one_line_and_leave_the_zoo_as_it_was(tz, tmp_path, monkeypatch, capsys):
    d, states = tz
    was = snapshot(d)
    for argv, pattern in [
        (["nope", "--dtype", "float16"], "'nope' is not in the model zoo; shipped models: combo, other, tiny"),
        (["tiny", "--dtype", "float8"], "unsupported storage dtype 'float8': one of float32, float16, bfloat16"),
        (["tiny", "--dtype", "float16"], "zoo entry 'combo' takes net.1.bias, net.1.weight from tiny"),
    ]:
        assert main(["zoo", "convert", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("whatwhere: error: ") and pattern in err, err
        assert snapshot(d) == was
    with pytest.raises(SystemExit):                                                 # no name: a usage error
        main(["zoo", "convert", "--dtype", "float16"])
    assert "required: NAME" in capsys.readouterr().err
    # a stale pin: the composite no longer matches its part
    man = json.loads((d / "manifest.json").read_text())
    man["models"]["combo"]["parts"]["net."]["sha256"] = "0" * 64
    (d / "manifest.json").write_text(json.dumps(man))
    stale = snapshot(d)
    for names in (["tiny", "combo"], ["combo"]):
        with pytest.raises(ZooError, match="built on tiny with SHA-256 0{64}, but the zoo's tiny has"):
            convert_zoo(names, "float16")
        assert snapshot(d) == stale
    (d / "manifest.json").write_bytes(was["manifest.json"])
    # a value float16 cannot hold
    big = fc(4)
    with torch.no_grad():
        big.net[1].weight[0, 0] = 1e6
    save_weights(big, d / "other.safetensors", model_meta("fc", ARGS, "other"))
    man["models"]["other"].update(sha256=zoo.sha256_of(d / "other.safetensors"))
    man["models"]["combo"]["parts"]["net."]["sha256"] = man["models"]["tiny"]["sha256"]
    (d / "manifest.json").write_text(json.dumps(man))
    was = snapshot(d)
    with pytest.raises(ZooError, match=r"'other': tensor 'net.1.weight' has values beyond the range of float16 "
                                       r"\(largest \|value\| 1e\+06\)"):
        convert_zoo(["other"], "float16")
    convert_zoo(["other"], "bfloat16")                                              # bfloat16 holds it
    assert load("zoo:other").net[1].weight[0, 0] == torch.tensor(1e6).bfloat16().float() and snapshot(d) != was
    # a manifest whose folder is not the one searched first: the new files would not be found
    monkeypatch.setenv("WHATWHERE_ZOO_DIR", str(tmp_path))
    was = snapshot(d)
    with pytest.raises(ZooError, match=r"written beside the manifest .*zoo/manifest.json, but zoo files are looked "
                                       r"for first in .*: set WHATWHERE_ZOO_DIR to"):
        convert_zoo(["tiny", "combo"], "float16")
    monkeypatch.delenv("WHATWHERE_ZOO_DIR")                                         # the package folder first
    with pytest.raises(ZooError, match="looked for first in .*package"):
        convert_zoo(["tiny", "combo"], "float16")
    assert snapshot(d) == was


@pytest.mark.parametrize("where", ["manifest", "read back"])
def test_a_failure_while_writing_puts_everything_back(tz, monkeypatch, where):
    d, states = tz
    was = snapshot(d)
    if where == "manifest":
        def full(path, payload):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(whatwhere.utils.io, "write_json", full)
        with pytest.raises(WriteError, match=r"zoo convert failed \(OSError: .*No space left.*\); nothing was "
                                             r"converted, the zoo is as it was") as e:
            convert_zoo(["tiny", "combo"], "float16")
        assert e.value.errno == errno.ENOSPC
    else:
        def broken(name, device="cpu", *, stored=False):
            raise ZooError(f"{name}: cannot be read back")

        monkeypatch.setattr(zoo, "zoo_state", broken)    # after the files and the manifest are written
        with pytest.raises(ZooError, match="cannot be read back; nothing was converted, the zoo is as it was"):
            convert_zoo(["tiny", "combo"], "float16")
    assert snapshot(d) == was                            # the same files, the same bytes, no debris
    monkeypatch.undo()


@pytest.mark.mnist
@pytest.mark.usefixtures("mnist_test")
def test_a_model_started_from_a_float16_part_is_float32_and_refers_to_it(tz, tmp_path, monkeypatch):
    from whatwhere.engine.recipe import parse_recipe
    from whatwhere.engine.trainer import train

    d, states = tz
    convert_zoo(["tiny", "combo"], "float16")
    recipe = {"name": "from-half", "model": "fc", "model_args": ARGS, "seed": 3, "preset": "paper", "size": 28,
              "device": "cpu", "display": {"contrast": 0.9}, "batch_size": 50, "train_limit": 100,
              "eval_digits": 50, "init": {"net": "zoo:tiny"}, "stages": [{"epochs": 0}]}
    run = train(parse_recipe(recipe), tmp_path / "run", progress=False, log=lambda s: None)
    weights = read_weights(run / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32} and same(weights, half(states["tiny"]))
    # `zoo add`: the tensors are tiny's (fp16 values in float32), referred to, not copied
    monkeypatch.setattr(zoo, "zoo_dir", lambda: d)      # add_to_zoo writes into the package folder: this one
    entry = zoo.add_to_zoo("from-half", run / "model.safetensors", params=64, recipe=recipe)
    assert entry["parts"] == {"net.": {"model": "tiny", "sha256": zoo.zoo_entry("tiny")["sha256"], "from": "net."}}
    assert read_weights(d / "from-half.safetensors") == {}
    assert same(load("zoo:from-half").state_dict(), half(states["tiny"]))


def test_split_parts_matches_float32_tensors_holding_a_float16_parts_values(tz):
    d, states = tz
    convert_zoo(["tiny", "combo"], "float16")
    model = fc(5)        # its first layer frozen at the fp16 part's values, cast up; the second its own
    sd = {**model.state_dict(), "net.1.weight": half(states["tiny"])["net.1.weight"],
          "net.1.bias": half(states["tiny"])["net.1.bias"]}
    own, parts = zoo.split_parts(sd, {"net": "zoo:tiny"})
    assert sorted(own) == ["net.3.bias", "net.3.weight"]
    assert parts == {"net.": {"model": "tiny", "sha256": zoo.zoo_entry("tiny")["sha256"], "from": "net.",
                              "tensors": ["1.bias", "1.weight"]}}
    # the original float32 values are not the part's: not representable in float16, no reference
    own, parts = zoo.split_parts({**sd, "net.1.weight": states["tiny"]["net.1.weight"]}, {"net": "zoo:tiny"})
    assert parts["net."]["tensors"] == ["1.bias"] and "net.1.weight" in own
    assert not zoo._matches(torch.tensor([1.0], dtype=torch.float16), torch.tensor([1.0 + 2**-20]))
    assert zoo._matches(torch.tensor([1.0], dtype=torch.float16), torch.tensor([1.0]))
    assert not zoo._matches(torch.tensor([0.0], dtype=torch.float16), torch.tensor([-0.0]))   # bits, not values


def test_a_float16_entry_and_its_composite_are_fetched_and_checked(tz, tmp_path, zoo_server, monkeypatch, capsys):
    d, states = tz
    convert_zoo(["tiny", "combo"], "float16")
    monkeypatch.delenv("WHATWHERE_ZOO_DIR")            # a wheel: the files only on the server
    server = zoo_server(d)
    monkeypatch.setenv("WHATWHERE_ZOO_URL", server.url)
    got = load("zoo:combo")
    assert {p.dtype for p in got.parameters()} == {torch.float32}
    assert same(got.state_dict(), half(states["combo"]))
    assert server.requests == ["/combo.safetensors", "/tiny.safetensors"]
    cache = tmp_path / "cache" / "whatwhere" / "zoo"
    assert zoo_path("tiny") == cache / "tiny.safetensors"
    assert (cache / "tiny.safetensors").read_bytes() == (d / "tiny.safetensors").read_bytes()
    assert main(["zoo", "verify", "tiny", "combo"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ok   tiny weights", "ok   combo weights",
                                                    "ok   combo parts (net. from tiny)"]
    assert len(server.requests) == 2
