"""scripts/lanes.sh park / start: unfinished runs outlive a machine through parked/.

No training runs here: the run directories are made by hand with the trainer's layout
(checkpoints/latest.json pointing to a ``{stem}.safetensors`` + ``{stem}.state.pt`` pair)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

LANES = Path(__file__).resolve().parents[1] / "scripts" / "lanes.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run_dir(root: Path, name: str, epoch: int, batch: int, finished: bool = False) -> Path:
    run = root / name
    ck = run / "checkpoints"
    ck.mkdir(parents=True)
    for e, b in ((epoch - 1, 0), (epoch, batch)):  # the trainer keeps its newest two
        stem = f"epoch-{e:04d}-batch-{b:05d}"
        (ck / f"{stem}.safetensors").write_bytes(f"weights {e} {b}".encode())
        (ck / f"{stem}.state.pt").write_bytes(f"state {e} {b}".encode())
    stem = f"epoch-{epoch:04d}-batch-{batch:05d}"
    (ck / "latest.json").write_text(json.dumps({"stem": stem, "epoch": epoch, "batch": batch, "seen": 1}))
    (run / "metrics.csv").write_text("epoch,test_acc\n1,0.5\n")
    (run / "recipe.yaml").write_text("name: x\n")
    if finished:
        (run / "model.safetensors").write_bytes(b"final")
    return run


def _lanes(tmp: Path, *args: str, **extra_env: str) -> str:
    env = {
        **os.environ,
        **extra_env,
        "QUEUE": str(tmp / "queue"),
        "RUNS": str(tmp / "runs"),
        "PARKED": str(tmp / "parked"),
        "LANES_HOME": str(LANES.parents[1]),
    }
    out = subprocess.run(["bash", str(LANES), *args], env=env, capture_output=True, text=True, check=True)
    return out.stdout


@pytest.fixture
def lanes_home(tmp_path: Path) -> Path:
    (tmp_path / "queue").write_text(
        "# a comment\nA alpha atn --set precision=bf16\nB beta conv_polo_atn\nB gamma what\n"
    )
    _run_dir(tmp_path / "runs", "alpha", epoch=7, batch=300)
    _run_dir(tmp_path / "runs", "beta", epoch=3, batch=0, finished=True)
    return tmp_path


def test_park_copies_only_the_newest_checkpoint_of_unfinished_runs(lanes_home: Path) -> None:
    said = _lanes(lanes_home, "park")
    parked = lanes_home / "parked"
    assert "parked alpha at epoch-0007-batch-00300" in said
    assert sorted(p.name for p in (parked / "alpha" / "checkpoints").iterdir()) == [
        "epoch-0007-batch-00300.safetensors",
        "epoch-0007-batch-00300.state.pt",
        "latest.json",
    ]
    assert (parked / "alpha" / "metrics.csv").read_text() == "epoch,test_acc\n1,0.5\n"
    assert not (parked / "beta").exists()  # finished: its weights are shipped, not parked
    assert not (parked / "gamma").exists()  # never started: nothing to park


def test_start_restores_a_parked_run_that_the_machine_lacks(lanes_home: Path) -> None:
    _lanes(lanes_home, "park")
    shutil.rmtree(lanes_home / "runs")  # a fresh machine
    (lanes_home / "runs").mkdir()
    said = _lanes(lanes_home, "unpark")
    assert "restored parked alpha" in said
    restored = lanes_home / "runs" / "alpha" / "checkpoints"
    assert json.loads((restored / "latest.json").read_text())["epoch"] == 7
    assert (restored / "epoch-0007-batch-00300.safetensors").read_bytes() == b"weights 7 300"


def test_start_keeps_a_local_run_newer_than_the_parked_one(lanes_home: Path) -> None:
    _lanes(lanes_home, "park")
    shutil.rmtree(lanes_home / "runs" / "alpha")
    _run_dir(lanes_home / "runs", "alpha", epoch=9, batch=0)
    said = _lanes(lanes_home, "unpark")
    assert said == ""
    latest = json.loads((lanes_home / "runs" / "alpha" / "checkpoints" / "latest.json").read_text())
    assert latest["epoch"] == 9


def test_every_queued_run_parses_with_the_strict_recipe_parser() -> None:
    """A typo in scripts/lanes.queue would only show when its lane reaches it, hours later: every run
    line must be valid `whatwhere train` arguments for a valid recipe, and each follower (F) must
    follow a queued run."""
    import shlex

    from whatwhere.cli import build_parser
    from whatwhere.engine.recipe import load_recipe

    queue = Path(__file__).resolve().parents[1] / "scripts" / "lanes.queue"
    names, followed = [], []
    for line in queue.read_text().splitlines():
        parts = shlex.split(line, comments=True)
        if not parts:
            continue
        if parts[0] == "F":
            assert len(parts) == 4 and parts[3].isdigit(), line
            followed.append(parts[1])
            continue
        assert len(parts) >= 3 and parts[0].isalpha(), line
        names.append(parts[1])
        args = build_parser().parse_args(["train", *parts[2:]])
        load_recipe(args.recipe, profile=args.profile, overrides=args.set)
    assert len(names) == len(set(names)), "a run name queued twice"
    assert set(followed) <= set(names)


def test_park_leaves_out_a_checkpoint_too_big_to_commit(lanes_home: Path) -> None:
    alpha = lanes_home / "runs" / "alpha" / "checkpoints"
    (alpha / "epoch-0007-batch-00300.safetensors").write_bytes(b"\0" * (2 * 1024 * 1024))
    out = _lanes(lanes_home, "park", PARK_MAX_MB="1")
    assert "not parking alpha: its checkpoint is 2 MB (> PARK_MAX_MB=1)" in out
    assert not (lanes_home / "parked" / "alpha").exists()
    assert "parked alpha" in _lanes(lanes_home, "park")  # the default limit (20 MB) takes it


def test_start_runs_only_the_named_lanes_with_the_asked_threads(lanes_home: Path) -> None:
    """`THREADS=2 lanes.sh start B` trains lane B's unfinished runs with two threads each and leaves lane A alone."""
    import time

    fake = lanes_home / "fake-python"  # stands in for the venv's python: records each training it is asked for
    fake.write_text(f'#!/usr/bin/env bash\necho "$OMP_NUM_THREADS ${{*: -5}}" >> {lanes_home / "calls"}\n')
    fake.chmod(0o755)
    said = _lanes(lanes_home, "start", "B", THREADS="2", PY=str(fake), CODE=str(LANES.parents[1]))
    assert "lane B started" in said and "lane A" not in said
    pid = int((lanes_home / "runs" / ".lane-B").read_text())
    for _ in range(200):  # the lane runs in the background: wait for it to work through its queue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    calls = (lanes_home / "calls").read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("2 ") and "/runs/gamma" in calls[0]  # beta is done, alpha on A
    assert not (lanes_home / "runs" / ".lane-A").exists()
