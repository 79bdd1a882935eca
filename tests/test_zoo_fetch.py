"""Fetching zoo files that are not in the package (a wheel install): a tiny zoo built in a tmp
folder, served on the loopback address (127.0.0.1) only, the cache under a tmp XDG_CACHE_HOME."""

import json
import shutil

import numpy as np
import pytest
import torch

from whatwhere.engine import zoo
from whatwhere.engine.checkpoints import load, model_meta, read_weights, save_weights
from whatwhere.engine.objectives import load_accuracy_map
from whatwhere.engine.zoo import ZooError, zoo_path
from whatwhere.models import create_model


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A zoo of one tiny model ("tiny": an FC net, 3 kB of weights, and a 5x5 accuracy map): the
    files in ``served/``, its manifest in ``WHATWHERE_ZOO_MANIFEST``, the cache in ``tmp/cache``."""
    served = tmp_path / "served"
    served.mkdir()
    args = {"size": 28, "hidden": [4]}
    model = create_model("fc", **args)
    save_weights(model, served / "tiny.safetensors", model_meta("fc", args, "tiny"))
    np.save(served / "tiny.accuracy_map.npy", np.full((5, 5), 0.5, np.float32))

    def rec(f):
        return {"file": f, "sha256": zoo.sha256_of(served / f), "bytes": (served / f).stat().st_size}

    entry = {**rec("tiny.safetensors"), "model": "fc", "model_args": args, "input_size": 28,
             "params": sum(p.numel() for p in model.parameters()), "recipe": {"name": "tiny"}, "provenance": {},
             "metrics": {}, "files": {"accuracy_map": rec("tiny.accuracy_map.npy")}}
    man = tmp_path / "manifest.json"
    man.write_text(json.dumps({"format": 1, "base_url": None, "models": {"tiny": entry}}))
    for var in ("WHATWHERE_ZOO_DIR", "WHATWHERE_ZOO_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WHATWHERE_ZOO_MANIFEST", str(man))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return served


def cached(tmp_path):
    d = tmp_path / "cache" / "whatwhere" / "zoo"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_fetch_checks_and_caches(tiny, tmp_path, zoo_server, monkeypatch):
    server = zoo_server(tiny)
    monkeypatch.setenv("WHATWHERE_ZOO_URL", server.url + "/")
    assert zoo.zoo_names() == ["tiny"]
    p = zoo_path("tiny")
    assert p == tmp_path / "cache" / "whatwhere" / "zoo" / "tiny.safetensors"
    assert p.read_bytes() == (tiny / "tiny.safetensors").read_bytes()
    assert server.requests == ["/tiny.safetensors"]
    # the second call (and every loader) reads the cache: no request
    assert zoo_path("tiny") == p and type(load("zoo:tiny")).__name__ == "FCNet"
    assert server.requests == ["/tiny.safetensors"]
    # an extra file through objectives.load_accuracy_map, fetched once too
    assert float(load_accuracy_map("zoo:tiny")[2, 2]) == 0.5
    assert float(load_accuracy_map("zoo:tiny").sum()) == 12.5
    assert server.requests == ["/tiny.safetensors", "/tiny.accuracy_map.npy"]
    assert cached(tmp_path) == ["tiny.accuracy_map.npy", "tiny.safetensors"]   # nothing else left
    # a damaged cached file is fetched again, atomically replaced
    p.write_bytes(p.read_bytes()[:100])
    assert zoo_path("tiny") == p and zoo.sha256_of(p) == zoo.sha256_of(tiny / "tiny.safetensors")
    assert len(server.requests) == 3 and cached(tmp_path) == ["tiny.accuracy_map.npy", "tiny.safetensors"]


def test_the_manifest_base_url_is_used_without_the_env_var(tiny, tmp_path, zoo_server, monkeypatch):
    server = zoo_server(tiny)
    man = json.loads(zoo.manifest_path().read_text())
    man["base_url"] = server.url
    zoo.manifest_path().write_text(json.dumps(man))
    assert zoo.base_url() == server.url
    assert zoo_path("tiny").parent == tmp_path / "cache" / "whatwhere" / "zoo"
    assert server.requests == ["/tiny.safetensors"]
    monkeypatch.setenv("WHATWHERE_ZOO_URL", "http://elsewhere.invalid")   # the env var overrides it
    assert zoo.base_url() == "http://elsewhere.invalid"


def test_failed_downloads_are_one_line_errors_and_leave_nothing(tiny, tmp_path, zoo_server, closed_port_url,
                                                                  monkeypatch, capsys):
    from whatwhere.cli import main

    server = zoo_server(tiny)
    monkeypatch.setenv("WHATWHERE_ZOO_URL", server.url)
    good = (tiny / "tiny.safetensors").read_bytes()
    msgs = {}
    # truncated on the server (fewer bytes than the manifest says)
    (tiny / "tiny.safetensors").write_bytes(good[:-10])
    with pytest.raises(ZooError, match=r"could not download .* got \d+ bytes, expected \d+ \(truncated") as e:
        zoo_path("tiny")
    msgs["truncated"] = str(e.value)
    # the transfer broken off half-way (Content-Length says more)
    (tiny / "tiny.safetensors").write_bytes(good)
    server.cut.add("tiny.safetensors")
    with pytest.raises(ZooError, match="broke off.*truncated") as e:
        zoo_path("tiny")
    msgs["cut"] = str(e.value)
    server.cut.clear()
    # right size, one bit flipped
    (tiny / "tiny.safetensors").write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(ZooError, match="SHA-256") as e:
        zoo_path("tiny")
    msgs["hash"] = str(e.value)
    # not on the server
    (tiny / "tiny.safetensors").unlink()
    with pytest.raises(ZooError, match="HTTP 404") as e:
        zoo_path("tiny")
    msgs["404"] = str(e.value)
    assert cached(tmp_path) == []   # no half-written or wrong file was kept
    # no server there
    monkeypatch.setenv("WHATWHERE_ZOO_URL", closed_port_url)
    with pytest.raises(ZooError, match="connection refused") as e:
        zoo_path("tiny")
    msgs["unreachable"] = str(e.value)
    # no source at all
    monkeypatch.delenv("WHATWHERE_ZOO_URL")
    with pytest.raises(ZooError, match="missing.*no weights source is configured: set WHATWHERE_ZOO_URL") as e:
        zoo_path("tiny")
    msgs["none"] = str(e.value)
    monkeypatch.setenv("WHATWHERE_ZOO_URL", "ftp://example.org/zoo")
    with pytest.raises(ZooError, match="not an http"):
        zoo_path("tiny")
    for m in msgs.values():
        assert "\n" not in m and "tiny.safetensors" in m, m
    capsys.readouterr()
    # the CLI says it in one line
    monkeypatch.setenv("WHATWHERE_ZOO_URL", closed_port_url)
    assert main(["eval", "central", "zoo:tiny", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("whatwhere: fetching zoo file tiny.safetensors (0.0 MB) from http")
    assert err[1].startswith("whatwhere: error: could not download zoo file tiny.safetensors")
    assert "connection refused" in err[1]


def test_sources_order_zoo_dir_package_cache_url(tiny, tmp_path, zoo_server, monkeypatch):
    server = zoo_server(tiny)
    monkeypatch.setenv("WHATWHERE_ZOO_URL", server.url)
    in_cache = zoo_path("tiny")                                  # fetched: now in the cache
    assert server.requests == ["/tiny.safetensors"]
    package, mine = tmp_path / "package", tmp_path / "mine"
    for d in (package, mine):
        d.mkdir()
        shutil.copy(tiny / "tiny.safetensors", d)
    monkeypatch.setattr(zoo, "zoo_dir", lambda: package)
    assert zoo_path("tiny") == package / "tiny.safetensors"      # the package folder beats the cache
    monkeypatch.setenv("WHATWHERE_ZOO_DIR", str(mine))
    assert zoo_path("tiny") == mine / "tiny.safetensors"         # WHATWHERE_ZOO_DIR wins
    assert len(server.requests) == 1
    # a local copy that fails its check is refused by name, not skipped
    (mine / "tiny.safetensors").write_bytes(b"x" * 10)
    with pytest.raises(ZooError, match=r"mine/tiny.safetensors has 10 bytes.*unset WHATWHERE_ZOO_DIR"):
        zoo_path("tiny")
    (mine / "tiny.safetensors").unlink()                         # a folder without the file is passed over
    assert zoo_path("tiny") == package / "tiny.safetensors"
    (package / "tiny.safetensors").unlink()
    assert zoo_path("tiny") == in_cache and len(server.requests) == 1


def test_a_bad_manifest_override_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("WHATWHERE_ZOO_MANIFEST", str(tmp_path / "none.json"))
    with pytest.raises(ZooError, match="WHATWHERE_ZOO_MANIFEST=.*no such file"):
        zoo.zoo_names()
    (tmp_path / "bad.json").write_text("{not json")
    monkeypatch.setenv("WHATWHERE_ZOO_MANIFEST", str(tmp_path / "bad.json"))
    with pytest.raises(ZooError, match="not valid JSON"):
        zoo.zoo_entry("what")


@pytest.fixture
def combo(tiny, tmp_path, monkeypatch):
    """A composite "combo" added by ``add_to_zoo`` beside "tiny": the same FC net, its first layer
    tiny's (bit-identical, as a frozen submodule initialised from the zoo), its second layer its
    own.  All files served from ``served/``; afterwards the package folder is empty (a wheel)."""
    args = {"size": 28, "hidden": [4]}
    model = create_model("fc", **args)
    first = read_weights(tiny / "tiny.safetensors")
    model.load_state_dict({**model.state_dict(), "net.1.weight": first["net.1.weight"],
                           "net.1.bias": first["net.1.bias"]})
    save_weights(model, tmp_path / "combo.safetensors", model_meta("fc", args, "combo"))
    shutil.copy(zoo.manifest_path(), tiny / "manifest.json")      # add_to_zoo writes the package's manifest
    monkeypatch.setenv("WHATWHERE_ZOO_MANIFEST", str(tiny / "manifest.json"))
    monkeypatch.setattr(zoo, "zoo_dir", lambda: tiny)
    entry = zoo.add_to_zoo("combo", tmp_path / "combo.safetensors", params=sum(p.numel() for p in model.parameters()),
                           recipe={"name": "combo", "init": {"net": "zoo:tiny"}})
    (tmp_path / "package").mkdir()
    monkeypatch.setattr(zoo, "zoo_dir", lambda: tmp_path / "package")
    return model.state_dict(), entry


def test_a_composite_refers_to_its_parts_and_is_assembled_when_fetched(combo, tiny, tmp_path, zoo_server,
                                                                        monkeypatch, capsys):
    from whatwhere.cli import main

    state, entry = combo
    assert entry["parts"] == {"net.": {"model": "tiny", "sha256": zoo.sha256_of(tiny / "tiny.safetensors"),
                                       "from": "net.", "tensors": ["1.bias", "1.weight"]}}
    assert sorted(read_weights(tiny / "combo.safetensors")) == ["net.3.bias", "net.3.weight"]   # only its own
    assert zoo.zoo_entry("combo") == entry
    server = zoo_server(tiny)
    monkeypatch.setenv("WHATWHERE_ZOO_URL", server.url)
    got = load("zoo:combo").state_dict()
    assert sorted(got) == sorted(state) and all(zoo._identical(got[k], state[k]) for k in state)
    assert server.requests == ["/combo.safetensors", "/tiny.safetensors"]
    assert cached(tmp_path) == ["combo.safetensors", "tiny.safetensors"]
    assert main(["zoo", "verify", "combo"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ok   combo weights", "ok   combo parts (net. from tiny)"]
    assert len(server.requests) == 2
    assert not zoo._identical(torch.tensor([0.0]), torch.tensor([-0.0]))   # bits, not values


def test_a_missing_or_mismatched_part_is_a_one_line_error(combo, tiny, tmp_path, zoo_server, monkeypatch,
                                                          capsys):
    from whatwhere.cli import main

    server = zoo_server(tiny)
    monkeypatch.setenv("WHATWHERE_ZOO_URL", server.url)
    good = (tiny / "tiny.safetensors").read_bytes()
    msgs = []
    # the part is not on the server
    (tiny / "tiny.safetensors").unlink()
    head = r"zoo entry 'combo', part 'net.' \(tiny\): "
    with pytest.raises(ZooError, match=head + "could not download zoo file tiny.safetensors .*HTTP 404") as e:
        load("zoo:combo")
    msgs.append(str(e.value))
    assert main(["zoo", "verify", "combo"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok   combo weights" and len(out) == 2
    assert out[1].startswith("FAIL combo parts: zoo entry 'combo', part 'net.' (tiny): could not download")
    # the part file altered on the server (its SHA-256 no longer the manifest's)
    (tiny / "tiny.safetensors").write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(ZooError, match=head + "could not download .* fails its SHA-256 check") as e:
        load("zoo:combo")
    msgs.append(str(e.value))
    assert cached(tmp_path) == ["combo.safetensors"]
    (tiny / "tiny.safetensors").write_bytes(good)
    # the manifest's reference does not match the part entry (the part was replaced since)
    man = json.loads(zoo.manifest_path().read_text())
    for change, pattern in [
        ({"sha256": "0" * 64}, "built on tiny with SHA-256 0{64}, but the zoo's tiny has [0-9a-f]{64}"),
        ({"model": "nope"}, "refers to zoo entry 'nope', which is not in the manifest"),
        ({"tensors": ["1.weight", "9.weight"]}, "tiny has no tensor 'net.9.weight'"),
        ({"tensors": ["3.weight"]}, "tensor 'net.3.weight' is both in the file and in the part"),
        ({"sha256": None}, "needs 'model' and 'sha256'"),
    ]:
        bad = json.loads(json.dumps(man))
        bad["models"]["combo"]["parts"]["net."].update(change)
        zoo.manifest_path().write_text(json.dumps(bad))
        with pytest.raises(ZooError, match=r"zoo entry 'combo', part 'net.'.*" + pattern) as e:
            load("zoo:combo")
        msgs.append(str(e.value))
    zoo.manifest_path().write_text(json.dumps(man))
    assert load("zoo:combo") is not None and cached(tmp_path) == ["combo.safetensors", "tiny.safetensors"]
    for m in msgs:
        assert "\n" not in m and "combo" in m, m
