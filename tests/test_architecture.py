"""The package's shape: one-way layers without cycles, pure models, no global state set on import."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_import_cycle_between_modules():
    import grimp

    graph = grimp.build_graph("whatwhere")
    modules = sorted(m for m in graph.modules if m.startswith("whatwhere"))
    for a in modules:
        for b in graph.find_modules_directly_imported_by(a):
            if b.startswith("whatwhere") and b != a and not a.startswith(b + "."):
                chain = graph.find_shortest_chain(importer=b, imported=a)
                assert chain is None or (b.startswith(a + ".")), f"cycle: {a} -> {' -> '.join(chain)}"


def test_layers_contract_holds():
    proc = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 kept, 0 broken" in proc.stdout


def test_import_sets_no_global_state():
    """Importing the whole library leaves torch's seeds, flags and thread count, the environment
    (OMP_WAIT_POLICY, OMP_NUM_THREADS...) and matplotlib's backend alone."""
    code = """
import os
import matplotlib, torch
backend = matplotlib.get_backend.__module__ and matplotlib.rcParams._get_backend_or_none()
state = torch.get_rng_state().clone(); tf32 = torch.backends.cuda.matmul.allow_tf32
threads, interop, env = torch.get_num_threads(), torch.get_num_interop_threads(), dict(os.environ)
import whatwhere, whatwhere.cli, whatwhere.viz, whatwhere.eval, whatwhere.engine, whatwhere.models
import whatwhere.orchestration.sweep
from whatwhere.retina import Retina
Retina()
whatwhere.configure_threads, whatwhere.benchmark  # the lazy public names: importing them sets nothing either
assert matplotlib.rcParams._get_backend_or_none() == backend, matplotlib.rcParams._get_backend_or_none()
assert torch.equal(torch.get_rng_state(), state) and torch.backends.cuda.matmul.allow_tf32 == tf32
assert (torch.get_num_threads(), torch.get_num_interop_threads()) == (threads, interop)
assert dict(os.environ) == env, set(os.environ.items()) ^ set(env.items())
assert "matplotlib.pyplot" not in __import__("sys").modules
print("ok")
"""
    env = {"PATH": "/usr/bin:/bin", "MPLBACKEND": "", "PYTHONPATH": str(ROOT / "src")}  # this tree, not an install
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_training_leaves_the_callers_random_state(tmp_path, mnist_test):
    import torch

    from whatwhere.engine.recipe import parse_recipe
    from whatwhere.engine.trainer import train

    recipe = parse_recipe({"name": "t", "model": "what", "size": 28, "device": "cpu", "train_limit": 100,
                           "eval_digits": 50, "stages": [{"epochs": 1}]})
    torch.manual_seed(123)
    before = torch.get_rng_state().clone()
    train(recipe, tmp_path / "run", progress=False, log=lambda s: None)
    assert torch.equal(torch.get_rng_state(), before)


def test_models_are_pure_and_comments_cite_papers():
    """Models import nothing from training; no comment cites documents that users cannot see."""
    src = ROOT / "src" / "whatwhere"
    for f in (src / "models").glob("*.py"):
        imports = [ln.strip() for ln in f.read_text().splitlines() if ln.strip().startswith(("from ", "import "))]
        assert not [ln for ln in imports if "whatwhere.engine" in ln or "whatwhere.eval" in ln], f
    offenders = [str(f.relative_to(src)) for f in src.rglob("*.py")
                 if any(k in f.read_text() for k in ("DESIGN", "spec §", "spec section", "whatwhere-spec", "stn-spec"))]
    offenders += [str(f.relative_to(src)) for f in (src / "recipes").glob("*.yaml")
                  if any(k in f.read_text() for k in ("spec §", "whatwhere-spec", "stn-spec"))]
    assert not offenders, offenders
