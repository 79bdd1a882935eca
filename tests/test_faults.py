"""Faults: a sweep killed mid-way and resubmitted, writes that fail half-way (file-size limit, full
disk), corrupted checkpoints on ``--resume``.  Each ends in the same state as a run without the
fault, or in a clear error that leaves the previous files intact."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from whatwhere.engine.checkpoints import load as load_model
from whatwhere.engine.checkpoints import save_weights
from whatwhere.engine.recipe import parse_recipe
from whatwhere.engine.trainer import TrainingError, TrainingInterrupted, train
from whatwhere.models.what import WhatNet
from whatwhere.utils.io import WriteError, write_text

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")
TINY = {
    "name": "tiny", "model": "what", "seed": 3, "preset": "paper", "size": 28, "device": "cpu",
    "display": {"clutter": 0.3, "contrast": 0.9, "placement": "cartesian", "clip": 25},
    "optimizer": {"name": "adam", "lr": 0.002}, "batch_size": 50, "train_limit": 600, "eval_digits": 200,
    "stages": [{"sigma": [0, 1], "epochs": 1, "reset_optimizer": True}],
}
QUIET = {"progress": False, "log": lambda s: None}


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (relative name -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def debris(folder: Path) -> list:
    """Temporary files of :func:`whatwhere.utils.io.atomic_write` left under ``folder``."""
    return sorted(str(p) for p in folder.rglob("*.part"))


def metrics_rows(run):
    import csv

    with open(run / "metrics.csv") as fh:
        return [{k: v for k, v in r.items() if k not in ("samples_per_s", "wall_s")} for r in csv.DictReader(fh)]


def same_weights(a: Path, b: Path) -> bool:
    sa, sb = load_model(a).state_dict(), load_model(b).state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ------------------------------------------------------------------------- 1. a sweep killed mid-way

SWEEP = ["sweep", "what", "--profile", "quick", "--set", "train_limit=200", "--set", "eval_digits=50",
         "--set", "stages=[{sigma: 0, epochs: 4}]", "--eval-digits", "50", "--map-digits", "2",
         "--seeds", "1", "--max-jobs", "1"]
RUN = "base-seed2019"


def sweep_cmd(out: Path) -> list:
    argv = [*SWEEP, "--out", str(out)]
    return [sys.executable, "-c", f"import sys; from whatwhere.cli import main; sys.exit(main({argv!r}))"]


def sweep_env() -> dict:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def uninterrupted_sweep(tmp_path_factory, mnist_test):
    out = tmp_path_factory.mktemp("sweep") / "full"
    proc = subprocess.run(sweep_cmd(out), env=sweep_env(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _job_pids(pgid: int) -> list[int]:
    """The submitit worker processes (those running the sweep's job) of process group ``pgid``."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if os.getpgid(int(d.name)) == pgid and b"submitit.core._submit" in (d / "cmdline").read_bytes():
                pids.append(int(d.name))
        except (OSError, ProcessLookupError):
            continue
    return pids


@pytest.mark.slow  # two sweeps of a few processes each: about 40 s per case on the 2-core machine
@pytest.mark.parametrize("victim", ["job", "everything"])
def test_killed_sweep_resubmitted_ends_as_uninterrupted(tmp_path, uninterrupted_sweep, victim):
    """SIGKILL mid-training (after the first epoch's checkpoint) of the process running the job, or
    of the whole sweep (driver, submitit controller and job); resubmitting the same command resumes
    the run from its checkpoint and gives the same weights and metrics as an uninterrupted sweep."""
    out = tmp_path / "cut"
    run = out / RUN
    proc = subprocess.Popen(sweep_cmd(out), env=sweep_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    t0 = time.time()
    try:
        while not (run / "checkpoints" / "latest.json").exists():
            assert proc.poll() is None and time.time() - t0 < 300, "the sweep ended before its first checkpoint"
            time.sleep(0.02)
        if victim == "job":
            pids = _job_pids(proc.pid)
            assert pids, "no submitit worker found"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        assert not (run / "model.safetensors").exists(), "killed too late: the run had finished"
        log = proc.communicate(timeout=120)[0].decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if victim == "job":
        assert proc.returncode == 1 and "FAILED" in log, log  # the driver survives and reports the job
    assert not (run / "metrics.json").exists()
    position = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert [position["epoch"], position["batch"]] != [4, 0]            # really mid-way
    again = subprocess.run(sweep_cmd(out), env=sweep_env(), capture_output=True, text=True, timeout=600,
                           check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    full = uninterrupted_sweep / RUN
    assert metrics_rows(run) == metrics_rows(full)
    assert same_weights(run, full)
    a, b = (json.loads((r / "metrics.json").read_text()) for r in (run, full))
    a.pop("wall_time_s"), b.pop("wall_time_s")
    assert a == b
    assert json.loads((run / "status.json").read_text())["state"] == "done"
    assert json.loads((run / "run.json").read_text())["sittings"][-1]["command"].endswith("--resume")


# ------------------------------------------------------------------------- 2. writes that fail half-way


def half_then_enospc(write, path_arg: int = 1):
    """A writer that writes half of what ``write`` would, then fails as a full disk does
    (``path_arg``: the position of the file name among ``write``'s arguments)."""
    def failing(*args, **kwargs):
        write(*args, **kwargs)
        tmp = Path(args[path_arg])
        data = tmp.read_bytes()
        tmp.write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return failing


def test_failed_text_write_keeps_the_previous_file(tmp_path, monkeypatch):
    from whatwhere.utils.io import atomic_write

    target = tmp_path / "notes.json"
    write_text(target, "old content\n")
    monkeypatch.setattr(Path, "write_text", half_then_enospc(Path.write_text, 0))
    with pytest.raises(WriteError, match="the previous notes.json is kept") as info:
        write_text(target, "new content, longer than the old one\n")
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert target.read_text() == "old content\n" and debris(tmp_path) == []

    def broken(tmp):
        raise RuntimeError("writer broke")
    with pytest.raises(WriteError, match="new.json was not created"):
        atomic_write(tmp_path / "new.json", broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json"]


def test_failed_weights_write_keeps_the_previous_weights(tmp_path, monkeypatch):
    import safetensors.torch

    target = tmp_path / "model.safetensors"
    save_weights(WhatNet(), target, {"model": "what"})
    before = target.read_bytes()
    monkeypatch.setattr(safetensors.torch, "save_file", half_then_enospc(safetensors.torch.save_file))
    torch.manual_seed(1)
    with pytest.raises(WriteError, match="the previous model.safetensors is kept") as info:
        save_weights(WhatNet(), target, {"model": "what"})
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == before and debris(tmp_path) == []


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory, mnist_test):
    """A tiny run stopped after 5 then 3 more batches: two checkpoints (epoch 0, batches 5 and 8)."""
    recipe = parse_recipe(TINY)
    run = tmp_path_factory.mktemp("cut") / "run"
    with pytest.raises(TrainingInterrupted):
        train(recipe, run, stop_after_batches=5, **QUIET)
    with pytest.raises(TrainingInterrupted):
        train(recipe, run, resume=True, stop_after_batches=3, **QUIET)
    stems = sorted(p.name for p in (run / "checkpoints").glob("*.safetensors"))
    assert stems == ["epoch-0000-batch-00005.safetensors", "epoch-0000-batch-00008.safetensors"]
    return recipe, run


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory, mnist_test):
    return train(parse_recipe(TINY), tmp_path_factory.mktemp("full") / "run", **QUIET)


def test_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, interrupted_run, uninterrupted_run,
                                                               monkeypatch):
    """A full disk while the trainer writes its next checkpoint (the state file, after the weights):
    a clear error, the previous checkpoint byte-identical, no half checkpoint, no temp file; then
    --resume ends as the uninterrupted run."""
    recipe, src = interrupted_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    before = snapshot(run / "checkpoints")
    monkeypatch.setattr(torch, "save", half_then_enospc(torch.save))
    with pytest.raises(TrainingError, match="the previous checkpoint epoch-0000-batch-00008 is kept") as info:
        train(recipe, run, resume=True, stop_after_batches=1, **QUIET)
    monkeypatch.undo()
    assert "No space left on device" in str(info.value)
    assert snapshot(run / "checkpoints") == before and debris(run) == []
    done = train(recipe, run, resume=True, **QUIET)
    assert metrics_rows(done) == metrics_rows(uninterrupted_run) and same_weights(done, uninterrupted_run)


RLIMIT_CHILD = textwrap.dedent("""
    import resource, signal, sys
    from whatwhere.engine.recipe import parse_recipe
    from whatwhere.engine.trainer import TrainingError, train
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # fail the write with EFBIG instead of dying
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        train(parse_recipe({tiny!r}), sys.argv[1], resume=True, stop_after_batches=1, progress=False,
              log=lambda s: None)
    except TrainingError as exc:
        print(exc)
        sys.exit(3)
""")


def test_file_size_limit_mid_checkpoint_keeps_the_previous_checkpoint(tmp_path, interrupted_run):
    """The same under a real ``RLIMIT_FSIZE`` (a subprocess): the weights file cannot be written
    whole; the error says the previous checkpoint is kept, and it is, byte for byte."""
    _, src = interrupted_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    before = snapshot(run / "checkpoints")
    size = (run / "checkpoints" / "epoch-0000-batch-00008.safetensors").stat().st_size
    script = RLIMIT_CHILD.replace("{tiny!r}", repr(TINY))
    proc = subprocess.run([sys.executable, "-c", script, str(run), str(size // 2)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}, timeout=300, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "File too large" in proc.stdout and "the previous checkpoint epoch-0000-batch-00008 is kept" in proc.stdout
    assert snapshot(run / "checkpoints") == before and debris(run) == []


# ------------------------------------------------------------------------- 3. corrupted checkpoints


def truncate_weights(ck: Path):
    f = ck / "epoch-0000-batch-00008.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    return ["epoch-0000-batch-00008.safetensors.corrupt", "epoch-0000-batch-00008.state.pt.corrupt"]


def garble_state(ck: Path):
    (ck / "epoch-0000-batch-00008.state.pt").write_bytes(os.urandom(4096))
    return ["epoch-0000-batch-00008.safetensors.corrupt", "epoch-0000-batch-00008.state.pt.corrupt"]


def break_pointer(ck: Path):
    (ck / "latest.json").write_text('{"stem": "epoch-0000-ba')
    return ["latest.json.corrupt"]


@pytest.mark.parametrize("corrupt", [truncate_weights, garble_state, break_pointer])
def test_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path, interrupted_run, uninterrupted_run, corrupt):
    """A corrupt latest checkpoint is detected on --resume, renamed *.corrupt, and the run resumes
    from the previous intact checkpoint and ends equal to the uninterrupted run."""
    recipe, src = interrupted_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    ck = run / "checkpoints"
    renamed = corrupt(ck)
    messages = []
    done = train(recipe, run, resume=True, progress=False, log=messages.append)
    assert all((ck / name).exists() for name in renamed)
    assert any("corrupt" in m for m in messages)
    assert metrics_rows(done) == metrics_rows(uninterrupted_run) and same_weights(done, uninterrupted_run)
    sittings = json.loads((run / "run.json").read_text())["sittings"]
    fallback = [0, 5] if corrupt is not break_pointer else [0, 8]
    assert sittings[-1]["from"] == fallback and sittings[-1]["status"] == "done"


def test_no_intact_checkpoint_is_a_clear_error(tmp_path, interrupted_run):
    recipe, src = interrupted_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    ck = run / "checkpoints"
    for f in ck.glob("*.safetensors"):
        f.write_bytes(b"\0" * 100)
    sittings = json.loads((run / "run.json").read_text())["sittings"]
    with pytest.raises(TrainingError, match="no intact checkpoint in .*corrupt files renamed"):
        train(recipe, run, resume=True, **QUIET)
    assert sorted(p.name for p in ck.iterdir()) == [
        "epoch-0000-batch-00005.safetensors.corrupt", "epoch-0000-batch-00005.state.pt.corrupt",
        "epoch-0000-batch-00008.safetensors.corrupt", "epoch-0000-batch-00008.state.pt.corrupt", "latest.json"]
    assert json.loads((run / "run.json").read_text())["sittings"] == sittings  # a refused start: no new sitting


def test_fresh_start_drops_rows_of_a_run_killed_before_its_first_checkpoint(tmp_path, uninterrupted_run):
    """A run killed after writing a metrics row but before its checkpoint (no ``latest.json``) is
    started afresh (the sweep's resubmission does so): its stale rows must not stay."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(uninterrupted_run / "metrics.csv", run / "metrics.csv")
    done = train(parse_recipe(TINY), run, **QUIET)
    assert metrics_rows(done) == metrics_rows(uninterrupted_run)
