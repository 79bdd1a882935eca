"""scripts/gpu_sitting.py, the sitting on a lent GPU: what can be checked without one (packing a run,
splitting it under the size of a file that comes back, collecting it into parked/, trimming the tree
that travels).  The sitting itself (three trainings at once, SIGINT at a deadline, resume) was run on
the CPU with tiny overrides; see docs/cli.md, "Training on a lent GPU"."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_sitting.py"


@pytest.fixture
def gs(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_sitting", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "PARKED", tmp_path / "parked")
    return mod


def fake_run(run: Path, epoch: int, batch: int, done: bool = False) -> Path:
    ck = run / "checkpoints"
    ck.mkdir(parents=True, exist_ok=True)
    for e in (epoch - 1, epoch):  # the trainer keeps two checkpoints; only the newest travels
        stem = f"epoch-{e:04d}-batch-{batch:05d}"
        (ck / f"{stem}.safetensors").write_bytes(bytes(range(256)) * 40 + bytes([e]))
        (ck / f"{stem}.state.pt").write_bytes(b"state" + bytes([e]))
    (ck / "latest.json").write_text(json.dumps({"stem": stem, "epoch": epoch, "batch": batch}))
    for f in ("recipe.yaml", "metrics.csv", "train.log"):
        (run / f).write_text(f"{f} at {epoch}\n")
    (run / "run.json").write_text(json.dumps({"sittings": [{"git_commit": None, "hardware": "H100", "end": "x"}]}))
    if done:
        (run / "model.safetensors").write_bytes(b"final")
    return run


def test_pack_split_collect(gs, monkeypatch, tmp_path):
    monkeypatch.setattr(gs, "untrim", lambda quiet=False: 0)  # collect untrims: not this checkout's index
    run = fake_run(tmp_path / "work" / "atn-gpu", epoch=3, batch=7)
    gs.fill_commit(run / "run.json", "abc1234")
    assert json.loads((run / "run.json").read_text())["sittings"][0]["git_commit"] == "abc1234"
    out = tmp_path / "out"
    out.mkdir()
    parts = gs.put_out(gs.pack(run, tmp_path / "work" / "atn-gpu.tgz"), out, part=1000)
    assert len(parts) > 1 and all(p.stat().st_size <= 1000 for p in parts)
    assert [p.name for p in parts][:2] == ["atn-gpu.tgz.00", "atn-gpu.tgz.01"]
    assert gs.collect(type("A", (), {"dir": str(out)})) == 0
    parked = tmp_path / "parked" / "atn-gpu"
    assert sorted(str(p.relative_to(parked)) for p in parked.rglob("*") if p.is_file()) == [
        "checkpoints/epoch-0003-batch-00007.safetensors",
        "checkpoints/epoch-0003-batch-00007.state.pt",
        "checkpoints/latest.json",
        "metrics.csv",
        "recipe.yaml",
        "run.json",
        "train.log",
    ]
    for f in ("checkpoints/epoch-0003-batch-00007.safetensors", "metrics.csv"):
        assert (parked / f).read_bytes() == (run / f).read_bytes()
    # an older sitting collected later leaves the parked run alone
    older = tmp_path / "older"
    older.mkdir()
    gs.put_out(gs.pack(fake_run(tmp_path / "w2" / "atn-gpu", epoch=2, batch=0), tmp_path / "w2" / "atn-gpu.tgz"), older)
    gs.collect(type("A", (), {"dir": str(older)}))
    assert json.loads((parked / "checkpoints" / "latest.json").read_text())["epoch"] == 3


def test_done_run_travels_without_its_checkpoint_weights(gs, tmp_path):
    run = fake_run(tmp_path / "stn128-gpu", epoch=110, batch=0, done=True)
    names = [str(p) for p in gs.run_files(run)]
    assert "model.safetensors" in names and not any(n.endswith(".safetensors") and "/" in n for n in names)


def test_unpack_refuses_foreign_members(gs, tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"x"
        info = tarfile.TarInfo("../evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="unexpected member"):
        gs.unpack(buf.getvalue(), tmp_path, "atn-gpu")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_trim_untrim_restores_the_index(gs, monkeypatch, tmp_path):
    repo = tmp_path / "repo"
    (repo / "src" / "pkg").mkdir(parents=True)
    (repo / "src" / "pkg" / "big.py").write_text("x = 1\n" * 20000)  # code: kept whatever its size
    (repo / "results").mkdir()
    (repo / "results" / "fig [1].png").write_bytes(b"\0" * 100_000)
    (repo / "small.txt").write_text("small")

    def git(*a):
        return subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("add", "-A")
    (repo / "untracked.bin").write_bytes(b"\1" * 100_000)
    monkeypatch.setattr(gs, "ROOT", repo)
    index = git("ls-files", "-s")
    hidden = gs.trim(min_kb=64)
    assert sorted(hidden) == ["results/fig [1].png", "untracked.bin"]
    assert sorted(f for f, _ in gs.travelling()) == ["small.txt", "src/pkg/big.py"]
    assert (repo / "results" / "fig [1].png").is_file()
    assert gs.untrim(quiet=True) == 1
    assert git("ls-files", "-s") == index
    assert "untracked.bin" in git("status", "--porcelain")
    assert "gpu_sitting" not in (repo / ".git" / "info" / "exclude").read_text()
