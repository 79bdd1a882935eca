"""``whatwhere.configure_threads``: the command's CPU thread policy as one explicit call."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import whatwhere


def test_configure_threads_sets_and_returns_the_count():
    before, policy = torch.get_num_threads(), os.environ.get("OMP_WAIT_POLICY")
    try:
        got = whatwhere.configure_threads(1)
        assert got == {"threads": 1, "wait_policy": None}  # torch is imported: the policy could not take effect
        assert torch.get_num_threads() == 1
        assert os.environ.get("OMP_WAIT_POLICY") == policy
        with pytest.raises(ValueError, match="threads must be >= 1"):
            whatwhere.configure_threads(0)
    finally:
        torch.set_num_threads(before)


def test_before_torch_it_sets_the_passive_wait_policy_and_the_command_uses_it():
    """Called before torch is imported it also sets OMP_WAIT_POLICY=PASSIVE (a policy the user set
    is kept); without a count it takes $OMP_NUM_THREADS; the command goes through it."""
    code = """
import os, sys
import whatwhere
assert "torch" not in sys.modules
got = whatwhere.configure_threads()
import torch
assert got == {"threads": 2, "wait_policy": "PASSIVE"}, got
assert torch.get_num_threads() == 2 and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
import whatwhere.utils.threads as t
assert whatwhere.configure_threads is t.configure_threads
print("ok")
"""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "2",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}  # this tree, not an install
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    keep = code.replace('"PASSIVE"}', 'None}').replace('== "PASSIVE"', '== "ACTIVE"')
    proc = subprocess.run([sys.executable, "-c", keep], check=False, capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_the_command_applies_the_same_policy(monkeypatch):
    import whatwhere.utils.threads
    from whatwhere.cli import configure_process

    calls = []
    monkeypatch.setattr(whatwhere.utils.threads, "configure_threads", lambda threads=None: calls.append(threads))
    configure_process(3, start=False)
    configure_process(None, start=False)
    assert calls == [3, None]
