"""Sweeps: grid expansion and naming, idempotent resubmission, statistics, the local executor's
core limit, refused bad grids, and a real single-node Slurm cluster."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from whatwhere.cli import main
from whatwhere.orchestration.sweep import GridError, aggregate, expand, parse_grid, summarise, t_quantile

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--profile", "quick", "--set", "train_limit=200", "--set", "eval_digits=50",
        "--set", "stages=[{sigma: 0, epochs: 1}]", "--eval-digits", "100", "--map-digits", "3"]


def test_grid_expansion_and_naming(tmp_path):
    grid = parse_grid(["display.clutter=0.5,1.0", "optimizer.lr=1e-3,2e-3,4e-3"])
    assert grid == {"display.clutter": [0.5, 1.0], "optimizer.lr": [1e-3, 2e-3, 4e-3]}
    runs = expand("what", grid, 2, out=tmp_path)
    assert len(runs) == 2 * 3 * 2 and len({r.name for r in runs}) == 12
    assert runs[0].name == "display.clutter=0.5__optimizer.lr=0.001-seed2019" and runs[1].seed == 2020
    assert runs[0].overrides[-1] == "seed=2019" and "optimizer.lr=0.001" in runs[0].overrides
    assert [r.name for r in expand("what", {}, [7], out=tmp_path)] == ["base-seed7"]


@pytest.mark.parametrize("items, message", [
    (["display.clutter"], "KEY=V1"), (["=1,2"], "empty key"), (["display.clutter="], "empty value"),
    (["display.clutter=0.5,,1"], "empty value"), (["a=1", "a=2"], "twice"),
])
def test_bad_grid_syntax_is_refused(items, message):
    with pytest.raises(GridError, match=message):
        parse_grid(items)


@pytest.mark.parametrize("items, message", [
    (["display.noize=0.5"], "noize"), (["optimizer.lr=fast"], "lr"), (["display.clutter=-1"], "clutter"),
    (["batch_size=0,100"], "batch_size"),
])
def test_bad_grid_values_are_refused_before_anything_runs(tmp_path, items, message):
    with pytest.raises(GridError, match=message):
        expand("what", parse_grid(items), 1, out=tmp_path)
    rc = main(["sweep", "what", *[a for i in items for a in ("--grid", i)], "--out", str(tmp_path / "s")])
    assert rc == 2 and not (tmp_path / "s").exists()


def test_dry_run_lists_the_runs_and_writes_nothing(tmp_path, capsys):
    assert main(["sweep", "what", "--grid", "optimizer.lr=0.001,0.002", "--seeds", "2", "--dry-run",
                 "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert out.count("-seed") == 4 and not (tmp_path / "s").exists()


def test_statistics_on_known_inputs():
    assert t_quantile(1) == pytest.approx(12.7062, abs=1e-3)
    assert t_quantile(2) == pytest.approx(4.3027, abs=1e-3)
    assert t_quantile(30) == pytest.approx(2.0423, abs=1e-3)
    s = summarise([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["sd"] == pytest.approx(1.0) and s["n"] == 3
    assert s["ci95"] == pytest.approx([2 - 4.3027 / 3**0.5, 2 + 4.3027 / 3**0.5], abs=1e-3)
    one = summarise([0.4])
    assert one["sd"] is None and one["ci95"] is None


def test_report_on_known_run_files_names_failures(tmp_path):
    from dataclasses import asdict

    from whatwhere.orchestration.sweep import write_manifest

    runs = expand("what", parse_grid(["display.clutter=0.5,1.0"]), 2, out=tmp_path)
    write_manifest(tmp_path, recipe="what", grid={"display.clutter": [0.5, 1.0]}, seeds=[2019, 2020], runs=runs,
                   executor="local", command="test", profile=None)
    values = {runs[0].name: 0.5, runs[1].name: 0.7, runs[2].name: 0.9}
    for name, v in values.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"central": v, "general": v / 2}))
    (tmp_path / runs[3].name).mkdir()
    (tmp_path / runs[3].name / "status.json").write_text(json.dumps({"state": "failed", "error": "ValueError: boom"}))
    rep = aggregate(tmp_path)
    first = rep["points"][0]["metrics"]["central"]
    assert first["mean"] == pytest.approx(0.6) and first["values"] == [0.5, 0.7] and first["n"] == 2
    assert rep["points"][1]["metrics"]["central"]["n"] == 1
    assert rep["failed"] == [{"run": runs[3].name, "error": "ValueError: boom"}]
    assert main(["sweep", "report", str(tmp_path)]) == 1            # a failed run: non-zero exit
    assert "boom" in (tmp_path / "report.md").read_text()
    assert asdict(runs[0])["values"] == {"display.clutter": 0.5}


def test_local_sweep_is_idempotent_and_resumes(tmp_path, mnist_test):
    out = tmp_path / "sweep"
    argv = ["sweep", "what", *TINY, "--grid", "display.clutter=0.5,1.0", "--seeds", "1", "--out", str(out),
            "--max-jobs", "2"]
    assert main(argv) == 0
    done = sorted(p.name for p in out.glob("*/metrics.json") for p in [p.parent])
    assert done == ["display.clutter=0.5-seed2019", "display.clutter=1.0-seed2019"]
    stamp = {p: p.stat().st_mtime_ns for p in out.glob("*/model.safetensors")}
    assert main(argv) == 0                                            # resubmitted: everything skipped
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/model.safetensors")} == stamp
    # a killed run: its final weights and metrics gone, a checkpoint left -> resumed, not restarted
    run = out / "display.clutter=0.5-seed2019"
    (run / "metrics.json").unlink()
    (run / "model.safetensors").unlink()
    assert (run / "checkpoints" / "latest.json").exists()
    assert main(argv) == 0
    assert (run / "metrics.json").exists()
    sittings = json.loads((run / "run.json").read_text())["sittings"]
    assert sittings[0]["command"].startswith(f"whatwhere train what --out {run} --profile quick --set")
    assert "seed=2019" in sittings[0]["command"] and sittings[-1]["command"].endswith("--resume")
    assert main(["sweep", "report", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [p["point"] for p in report["points"]] == ["display.clutter=0.5", "display.clutter=1.0"]


def test_local_executor_never_runs_more_jobs_than_the_limit(tmp_path, monkeypatch):
    from whatwhere.cli.sweep import run_local

    class Job:
        def __init__(self, spec, log):
            self.spec, self.t, self.log = spec, time.time(), log

        def done(self):
            return time.time() - self.t > 0.3

        def result(self):
            return {}

    class Executor:
        def __init__(self):
            self.live, self.peak = [], 0

        def submit(self, fn, spec):
            self.live = [j for j in self.live if not j.done()]
            job = Job(spec, None)
            self.live.append(job)
            self.peak = max(self.peak, len(self.live))
            return job

    ex = Executor()
    results = run_local([{"name": f"r{k}"} for k in range(7)], ex, 2, poll_s=0.05, log=lambda s: None)
    assert len(results) == 7 and all(r["state"] == "done" for r in results) and ex.peak == 2


def _can_run_slurm():
    return os.geteuid() == 0 or shutil.which("sbatch") is not None


@pytest.fixture(scope="module")
def slurm():
    script = ROOT / "scripts" / "slurm_local.sh"
    if not _can_run_slurm():
        pytest.skip("starting a local Slurm needs root (CI runs as root)")
    was_up = subprocess.run([str(script), "status"], capture_output=True).returncode == 0
    proc = subprocess.run([str(script), "start"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield
    if not was_up:
        subprocess.run([str(script), "stop"], capture_output=True, timeout=120)


def test_sweep_through_a_real_slurm(slurm, tmp_path, mnist_test):
    out = tmp_path / "slurm-sweep"
    argv = ["sweep", "what", *TINY, "--grid", "display.clutter=0.5,1.0", "--seeds", "2", "--out", str(out),
            "--executor", "slurm", "--partition", "debug", "--time", "20", "--wait", "900"]
    assert main(argv) == 0
    jobs = json.loads((out / "slurm_jobs.json").read_text())
    assert len(jobs) == 4 and all("_" in j for j in jobs)            # one array of 4 tasks
    assert main(["sweep", "report", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert len(report["points"]) == 2 and not report["failed"] and not report["missing"]
    assert all(p["metrics"]["central"]["n"] == 2 for p in report["points"])
    assert (out / "report.md").exists() and (out / "sweep_display_clutter.png").exists()
