"""A non-editable install in a fresh virtual environment, used from another directory: it trains a
packaged recipe and loads a model of the zoo by name (recipes and weights are package data)."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.usefixtures("mnist_test")
def test_fresh_venv_install_trains_a_packaged_recipe_and_loads_the_zoo(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # the heavy dependencies (torch, numpy, ...) come from the test environment's site-packages;
    # whatwhere itself is installed from a wheel built from this checkout
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(wheels), str(ROOT)], check=True)
    wheel = next(wheels.glob("whatwhere-*.whl"))
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    ww = venv / "bin" / "whatwhere"
    run = subprocess.run([str(ww), "train", "what", "--profile", "quick", "--set", "train_limit=200",
                          "--set", "eval_digits=50", "--set", "stages=[{sigma: 0, epochs: 1}]", "--out", "run",
                          "--no-progress"], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (work / "run" / "model.safetensors").exists()
    check = subprocess.run([str(py), "-c", "import json, whatwhere; m = whatwhere.load('what'); "
                            "print(json.dumps({'file': whatwhere.__file__, 'params': sum(p.numel() for p in "
                            "m.parameters()), 'recipes': len(whatwhere.engine.recipe.recipe_names())}))"],
                           cwd=work, env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    info = json.loads(check.stdout)
    assert info["file"].startswith(str(venv)) and info["params"] == 431_080 and info["recipes"] >= 10
    # a broken zoo file is refused by name
    shipped = Path(info["file"]).parent / "zoo" / "what.safetensors"
    shipped.write_bytes(shipped.read_bytes()[:-10])
    bad = subprocess.run([str(py), "-c", "import whatwhere; whatwhere.load('what')"], cwd=work, env=env,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "what.safetensors" in bad.stderr and "truncated" in bad.stderr
