"""A non-editable install in a fresh virtual environment, used from another directory: it trains a
packaged recipe and loads a model of the zoo by name.  The recipes and the zoo's manifest are
package data; the weights are not (a light wheel): they are fetched on first use from a server on
the loopback address (this checkout's zoo folder), checked and cached."""

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build_wheel(wheels: Path) -> Path:
    """A wheel of this checkout (offline: the test environment's setuptools), checked to be light:
    code, recipes and the zoo's manifest, no weights, under 5 MB."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(wheels), str(ROOT)], check=True, capture_output=True)
    wheel = next(wheels.glob("whatwhere-*.whl"))
    assert wheel.stat().st_size < 5_000_000, wheel.stat().st_size
    names = zipfile.ZipFile(wheel).namelist()
    assert "whatwhere/zoo/manifest.json" in names and any(n.startswith("whatwhere/recipes/") for n in names)
    assert not [n for n in names if n.endswith((".safetensors", ".npy"))]
    return wheel


def test_the_wheel_is_light(tmp_path):
    build_wheel(tmp_path)


@pytest.mark.slow  # a venv, a wheel, a short training and four fresh interpreters: 30-45 s on the 2-core machine
@pytest.mark.usefixtures("mnist_test")
def test_fresh_venv_install_trains_a_packaged_recipe_and_fetches_the_zoo(tmp_path, zoo_server):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # the heavy dependencies (torch, numpy, pooch...) come from the test environment's site-packages;
    # whatwhere itself is installed from a wheel built from this checkout
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = build_wheel(tmp_path / "wheels")
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}   # PYTHONPATH=src would look installed
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   env=clean)

    work = tmp_path / "elsewhere"
    work.mkdir()
    server = zoo_server(ROOT / "src" / "whatwhere" / "zoo")   # where the weights are published, on 127.0.0.1
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",) and not k.startswith("WHATWHERE_ZOO")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), WHATWHERE_ZOO_URL=server.url)
    cache = tmp_path / "cache" / "whatwhere" / "zoo"
    ww = venv / "bin" / "whatwhere"
    run = subprocess.run([str(ww), "train", "what", "--profile", "quick", "--set", "train_limit=200",
                          "--set", "eval_digits=50", "--set", "stages=[{sigma: 0, epochs: 1}]", "--out", "run",
                          "--no-progress"], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (work / "run" / "model.safetensors").exists()
    code = ("import json, whatwhere; m = whatwhere.load('what'); print(json.dumps({'file': whatwhere.__file__, "
            "'params': sum(p.numel() for p in m.parameters()), "
            "'recipes': len(whatwhere.engine.recipe.recipe_names())}))")
    check = subprocess.run([str(py), "-c", code], check=False, cwd=work, env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    info = json.loads(check.stdout)
    assert info["file"].startswith(str(venv)) and info["params"] == 431_080 and info["recipes"] >= 10
    # fetched from the server, checked, into the cache (nothing else left there)
    assert server.requests == ["/what.safetensors"] and "fetching zoo file what.safetensors" in check.stderr
    assert sorted(p.name for p in cache.iterdir()) == ["what.safetensors"]
    assert not (Path(info["file"]).parent / "zoo" / "what.safetensors").exists()
    # the second use reads the cache: no request
    again = subprocess.run([str(py), "-c", code], check=False, cwd=work, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and json.loads(again.stdout) == info, again.stderr
    assert server.requests == ["/what.safetensors"] and "fetching" not in again.stderr
    # offline: a local folder (WHATWHERE_ZOO_DIR) wins; a broken file there is refused by name
    local = tmp_path / "local"
    local.mkdir()
    (local / "what.safetensors").write_bytes((cache / "what.safetensors").read_bytes()[:-10])
    bad = subprocess.run([str(py), "-c", "import whatwhere; whatwhere.load('what')"], check=False, cwd=work,
                         env={**env, "WHATWHERE_ZOO_DIR": str(local)}, capture_output=True, text=True)
    assert bad.returncode != 0 and "what.safetensors" in bad.stderr and "truncated" in bad.stderr
    # no copy anywhere and no source: the CLI says how to set one, in one line
    none = subprocess.run([str(ww), "eval", "central", "stn28", "--digits", "10"], check=False, cwd=work,
                          env={**env, "WHATWHERE_ZOO_URL": ""}, capture_output=True, text=True)
    assert none.returncode == 2, none.stderr
    assert none.stderr.strip() == none.stderr.strip().splitlines()[0]
    assert none.stderr.startswith("whatwhere: error: zoo file stn28.safetensors is missing")
    assert "no weights source is configured: set WHATWHERE_ZOO_URL" in none.stderr
    assert server.requests == ["/what.safetensors"]
