"""`whatwhere reproduce STUDY` and `whatwhere report`: the plans of the studies, the dry run, a tiny
real run from the zoo and one with a training (skipped when called again), the report (tables
against the published values, embedded figures, written atomically) and the refusals."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from whatwhere.cli import main
from whatwhere.orchestration import reproduce as rp
from whatwhere.orchestration.report import collect, render_html, render_markdown, tolerance, write_report
from whatwhere.utils.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
# a training of a few seconds: the quick profile cut to one stage of 200 digits
TINY = ["--profile", "quick", "--set", "train_limit=200", "--set", "eval_digits=50",
        "--set", "stages=[{sigma: 0, epochs: 1}]"]


def test_study_plans(tmp_path):
    assert rp.trainings("paper") == ("what", "where-c0.7", "where-c0.5-ft", "where-c0.3-ft")
    assert rp.trainings("stn-study") == ("stn28", "stn128", "atn", "polo_atn", "polo_atn85", "conv_polo_atn")
    assert set(rp.trainings("standard-tasks")) == {"ram60-cluttered", "ram60-translated", "ram100-cluttered",
                                                   "fc60-cluttered", "conv60-cluttered", "saccadic60-cluttered",
                                                   "saccadic100-cluttered", "fcn-tc", "cnn-tc", "st-fcn-tc",
                                                   "st-cnn-tc"}
    assert rp.trainings("all") == rp.trainings("paper") + rp.trainings("stn-study") + rp.trainings("standard-tasks")
    runs = rp.training_runs("paper", tmp_path)
    assert [r.name for r in runs] == list(rp.trainings("paper"))
    assert runs[1].dir == str(tmp_path / "runs" / "where-c0.7") and runs[1].recipe == "where-c0.7"
    assert all(rp.run_state(r.dir) == "new" for r in runs)

    def commands(study, models):
        return [" ".join(s.argv) for s in rp.steps(study, models, out=tmp_path)]

    paper = commands("paper", {r.name: r.dir for r in runs})
    assert paper[0].startswith(f"eval central {tmp_path}/runs/what --digits 10000")
    assert any(c.startswith("eval accuracy-map") for c in paper)
    bench = next(c for c in paper if c.startswith("benchmark"))
    assert "--preset paper" in bench and f"--what {tmp_path}/runs/what" in bench and "--saccades 0 1 2 3 4 5" in bench
    assert sum(c.startswith("figures curves") for c in paper) == 4 and any(c.startswith("figures where") for c in paper)
    stn = commands("stn-study", {r: r for r in rp.trainings("stn-study")})
    assert any(c.startswith("figures transformer stn28") for c in stn)
    assert any(c.startswith("benchmark stn128 atn polo_atn polo_atn85 conv_polo_atn --preset dabane2021") for c in stn)
    tasks = commands("standard-tasks", {r: r for r in rp.trainings("standard-tasks")})
    assert sum(c.startswith("figures curves") for c in tasks) == len(rp.trainings("standard-tasks"))
    assert f"benchmark ram60-cluttered fc60-cluttered conv60-cluttered saccadic60-cluttered --preset ram60-cluttered --out {tmp_path}" in " ".join(tasks)
    assert sum(c.startswith("benchmark") and f"--summary {tmp_path}" in c for c in tasks) == 4  # one per task
    # a missing model: its steps are left out, the benchmark runs without it and says so
    steps = rp.steps("stn-study", {"stn28": None, "polo_atn": "polo_atn"}, out=tmp_path, curves=False)
    assert [s.name for s in steps] == ["benchmark-dabane2021", "tradeoff-dabane2021"] and "stn128" in steps[0].note
    assert any(c.startswith(f"figures tradeoff {tmp_path}/results/benchmark-dabane2021/benchmark.json") for c in stn)
    assert len(rp.steps("all", {r: r for r in rp.trainings("all")}, out=tmp_path)) == len(
        {s.name for s in rp.steps("all", {r: r for r in rp.trainings("all")}, out=tmp_path)})


def test_unknown_study_and_profiles_refused(tmp_path, capsys):
    with pytest.raises(UserError, match="unknown study 'nope'; the studies are: paper, stn-study"):
        rp.study("nope")
    assert main(["reproduce", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("whatwhere: error: unknown study 'nope'") and "\n" not in err
    # a profile some recipes lack: refused, naming them, before anything is written
    assert rp.missing_profile(rp.trainings("stn-study"), "quick") == ["stn128", "atn"]
    assert main(["reproduce", "stn-study", "--profile", "quick", "--out", str(tmp_path / "s")]) == 2
    assert "stn128, atn" in capsys.readouterr().err and not (tmp_path / "s").exists()
    assert main(["reproduce", "paper", "--only", "stn28", "--out", str(tmp_path / "s")]) == 2
    assert "not a recipe of paper" in capsys.readouterr().err
    assert main(["reproduce", "paper", "--from-zoo", "--profile", "quick", "--out", str(tmp_path / "s")]) == 2
    assert main(["reproduce", "standard-tasks", "--from-zoo", "--out", str(tmp_path / "s")]) == 2
    assert "none of its models ships" in capsys.readouterr().err


def test_dry_run_prints_the_plan(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["reproduce", "paper", "--dry-run", "--profile", "quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "study paper" in text and "trainings (4):" in text and f"where-c0.7: to train -> {out}/runs/where-c0.7" in text
    assert "--profile quick" in text and "[benchmark] whatwhere benchmark" in text and not out.exists()
    assert main(["reproduce", "stn-study", "--from-zoo", "--dry-run", "--digits", "5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "not shipped: stn128, atn" in text and "benchmark polo_atn polo_atn85 conv_polo_atn" in text
    assert "--digits 5" in text and not out.exists()


def test_paper_plan_has_the_parameter_scans(tmp_path, capsys):
    scans = rp.scan_sweeps("paper", tmp_path)
    assert [s.name for s in scans] == ["default", "clutter", "sigma", "sf_0", "B_sf"]
    assert [(s.key, s.values) for s in scans[1:]] == [("display.clutter", (0.5, 1.0)), ("display.sigma", (15, 47)),
                                                     ("display.sf_0", (0.063, 0.159)), ("display.B_sf", (0.05, 0.2))]
    runs = [r for s in scans for r in s.runs]
    assert len(runs) == 27 and len({r.dir for r in runs}) == 27  # 9 points x 3 seeds
    assert {r.recipe for r in runs} == {"where-scan"} and {r.seed for r in runs} == {2019, 2020, 2021}
    assert scans[1].runs[0].dir == str(tmp_path / "scans" / "clutter" / "display.clutter=0.5-seed2019")
    assert "display.clutter=0.5" in scans[1].runs[0].overrides and runs[0].eval == {"digits": 1000}
    assert all(rp.scan_state(r.dir) == "new" for r in runs)
    # the figure is the last step: every one-parameter scan, the default point beside them
    models = {r: str(tmp_path / "runs" / r) for r in rp.trainings("paper")}
    fig = rp.steps("paper", models, out=tmp_path, scans=scans)[-1]
    assert fig.name == "scan-figure" and fig.argv[:2] == ("figures", "scan") and not fig.note
    assert fig.argv[2:6] == tuple(str(tmp_path / "scans" / s) for s in ("clutter", "sigma", "sf_0", "B_sf"))
    assert fig.argv[6:8] == ("--default", str(tmp_path / "scans" / "default"))
    assert not any(s.name == "scan-figure" for s in rp.steps("paper", models, out=tmp_path))
    from whatwhere.orchestration.sweep import recipe_value  # the default point of each panel of the figure

    assert [recipe_value("where-scan", s.key) for s in scans[1:]] == [0.75, 30, 0.1, 0.1]
    assert rp.scan_names("all") == rp.scan_names("paper") and rp.scan_names("stn-study") == ()
    # --only: recipes and scans apart; the quick profile is where-scan's own (labelled, 10,000 displays)
    assert rp.select("paper", ["scan-clutter"]) == () and rp.select_scans("paper", ["what"]) == ()
    assert rp.select_scans("paper", ["scans"]) == rp.scan_names("paper")
    with pytest.raises(UserError, match="not a scan of paper"):
        rp.select_scans("paper", ["scan-contrast"])
    from whatwhere.engine.recipe import load_recipe

    quick = load_recipe("where-scan", profile="quick")
    assert quick.train_limit * quick.total_epochs == 10000
    assert {r.profile for s in rp.scan_sweeps("paper", tmp_path, profile="quick") for r in s.runs} == {"quick"}
    # the dry run lists every scan run, then the figure; --no-scans leaves them out
    out = tmp_path / "r"
    assert main(["reproduce", "paper", "--dry-run", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "scans (27 runs: 5 sweep(s) of where-scan x seeds 2019, 2020, 2021" in text
    assert text.count(": to run") == 27 and f"  sigma (display.sigma = 15, 47) -> {out}/scans/sigma" in text
    assert text.rstrip().splitlines()[-1].startswith(f"  [figure] whatwhere figures scan {out}/scans/clutter")
    assert not out.exists()
    assert main(["reproduce", "paper", "--dry-run", "--no-scans", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "scans: none (--no-scans)" in text and "figures scan" not in text and "seed2019" not in text
    assert main(["reproduce", "paper", "--dry-run", "--from-zoo", "--out", str(out)]) == 0
    assert "scans: none (--from-zoo trains nothing)" in capsys.readouterr().out
    assert main(["reproduce", "paper", "--dry-run", "--only", "scan-sigma", "--scan-seeds", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "trainings: none" in text and text.count(": to run") == 2 and "steps (1):" in text
    assert main(["reproduce", "paper", "--only", "scan-nope", "--out", str(out)]) == 2
    assert "not a scan of paper" in capsys.readouterr().err and not out.exists()


@pytest.mark.mnist
def test_tiny_scan_draws_its_figure_in_the_report(tmp_path, mnist_test, capsys):
    # one parameter, 2 values, 1 seed, the quick profile cut to 100 displays: the scan figure and
    # its table in the report
    out = tmp_path / "scan"
    args = ["reproduce", "paper", "--profile", "quick", "--set", "train_limit=100", "--set", "eval_digits=20",
            "--set", "stages.*.epochs=1", "--only", "scan-clutter", "--scan-seeds", "1", "--digits", "2",
            "--out", str(out), "--no-progress", "--poll", "0.2", "--max-jobs", "2"]
    assert main(args) == 0
    sweep_dir = out / "scans" / "clutter"
    assert json.loads((sweep_dir / "sweep.json").read_text())["grid"] == {"display.clutter": [0.5, 1.0]}
    for v in ("0.5", "1.0"):
        assert "one_saccade_random" in json.loads((sweep_dir / f"display.clutter={v}-seed2019" / "metrics.json").read_text())
    assert (out / "figures" / "scan.png").stat().st_size > 0
    html, md = _check_report(out / "report", tables=2, images=1)
    assert "## Parameter scans" in md and "![figures/scan.png](figures/figures__scan.png)" in md
    assert "| display.clutter | 0.5 | 1 |" in md and "*~0.690*" in md and "*~0.366*" in md  # interpolated
    assert "Profile `quick`: a quick, labelled pass of the scans" in md and "## Trainings" not in md
    assert "| scans/clutter (2 run(s), training) | scan display.clutter | where-scan | quick |" in md
    plan = json.loads((out / "plan.json").read_text())
    assert sorted(r["run"] for r in plan["outcome"]["trainings"]) == [
        "scans/clutter/display.clutter=0.5-seed2019", "scans/clutter/display.clutter=1.0-seed2019"]
    assert [s["step"] for s in plan["outcome"]["steps"]] == ["scan-figure"]
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0  # finished: skipped when called again
    assert capsys.readouterr().out.count(": done, skipped") == 2


def _check_report(report: Path, *, tables: int, images: int) -> tuple[str, str]:
    html, md = (report / "index.html").read_text(), (report / "report.md").read_text()
    assert html.count("<table>") >= tables and md.count("|---|") >= tables
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) >= images and all(len(u) > 1000 for u in uris)
    assert "http://" not in html.replace("http://www.w3.org", "") and "<script" not in html
    figs = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", md)
    assert len(figs) == len(uris) and all((report / f).stat().st_size > 0 for f in figs)
    assert "## Made by" in md and not list(report.parent.glob(f".{report.name}.*"))
    return html, md


@pytest.mark.mnist
def test_from_zoo_run_writes_the_report(tmp_path, mnist_test):
    out = tmp_path / "zoo"
    assert main(["reproduce", "paper", "--from-zoo", "--only", "what", "--digits", "2", "--out", str(out),
                 "--no-progress"]) == 0
    html, md = _check_report(out / "report", tables=3, images=2)
    assert "| what | " in md and "*0.804*" in md  # central accuracy beside the published 80.4 %
    plan = json.loads((out / "plan.json").read_text())
    assert plan["from_zoo"] and all(s["state"] == "done" for s in plan["outcome"]["steps"])


@pytest.mark.mnist
def test_training_run_then_skipped(tmp_path, mnist_test, capsys):
    out = tmp_path / "q"
    args = ["reproduce", "paper", *TINY, "--only", "what", "--digits", "2", "--out", str(out), "--no-progress",
            "--poll", "0.2"]
    assert main(args) == 0
    run = out / "runs" / "what"
    weights = (run / "model.safetensors").stat().st_mtime_ns
    assert json.loads((run / "run.json").read_text())["profile"] == "quick"
    _, md = _check_report(out / "report", tables=4, images=3)
    assert "## Trainings" in md and "| what | quick | fp32 | 2019 |" in md and "Profile `quick`" in md
    capsys.readouterr()
    assert main(args) == 0  # again: the finished run is skipped, the steps and the report are redone
    text = capsys.readouterr().out
    assert "what: done, skipped" in text and "1 already done" in text and "started what" not in text
    assert (run / "model.safetensors").stat().st_mtime_ns == weights
    assert len(json.loads((run / "run.json").read_text())["sittings"]) == 1


def test_report_of_the_repository_results(tmp_path):
    src = ROOT / "results" / "benchmark-paper"
    if not (src / "benchmark.json").is_file():
        pytest.skip("results/benchmark-paper/benchmark.json is not in this checkout")
    shutil.copytree(src, tmp_path / "res")
    assert main(["report", str(tmp_path / "res"), "--out", str(tmp_path / "rep")]) == 0
    html, md = _check_report(tmp_path / "rep", tables=2, images=1)
    assert "| *published* |" in md and "| *Δ* |" in md and "whatwhere, 1 saccade" in md
    assert 'class="off"' in html or "**" in md  # differences beyond the tolerance are marked


def test_report_errors_and_atomic_write(tmp_path, capsys, monkeypatch):
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("whatwhere: error:") and "no such results directory" in err and "\n" not in err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no results to report" in capsys.readouterr().err
    # a report that fails half-way leaves the previous one as it was, and no temporary folder
    res = tmp_path / "res"
    (res / "results" / "what").mkdir(parents=True)
    (res / "results" / "what" / "central.json").write_text(json.dumps(
        {"central": 0.79, "general": 0.33, "n_digits": 10000, "recipe": "what", "command": "whatwhere eval central what"}))
    first = write_report(res)
    assert "| what | 0.790 | *0.804* | **-0.014** | 0.330 | *0.337* | -0.007 |" in (first / "report.md").read_text()
    before = (first / "index.html").read_text()
    import whatwhere.orchestration.report as report_module

    monkeypatch.setattr(report_module, "render_html", lambda doc: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_report(res)
    assert (first / "index.html").read_text() == before and sorted(p.name for p in res.iterdir()) == ["report", "results"]


def test_tolerance_and_rendering(tmp_path):
    assert tolerance(0.8, 10000, 0.8, 10000) == pytest.approx(max(0.01, 1.96 * (2 * 0.16 / 10000) ** 0.5))
    assert tolerance(0.5, 20, 0.5, 1000) > 0.2
    doc = {"title": "t <x>", "blocks": [{"type": "h1", "text": "t <x>"}, {"type": "table", "header": ["a", "Δ"],
                                                                          "rows": [["x|y", {"text": "+0.5", "flag": True}]]}]}
    assert "**+0.5**" in render_markdown(doc) and "x\\|y" in render_markdown(doc)
    html = render_html(doc)
    assert "t &lt;x&gt;" in html and '<td class="off">+0.5</td>' in html
    (tmp_path / "notes.txt").write_text("no result here")
    with pytest.raises(UserError, match="no results"):
        collect(tmp_path)


# Appended to a copy of the page (the report itself has no script): once the page has loaded, it writes what the
# browser actually rendered into the DOM that `--dump-dom` prints: images decoded (naturalWidth > 0) and laid out,
# tables laid out with a height.
_RENDER_PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const decoded = imgs.filter(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0).length;
  const tables = [...document.querySelectorAll("table")];
  const laidOut = tables.filter(t => t.getBoundingClientRect().height > 0).length;
  const out = document.createElement("pre");
  out.id = "render-probe";
  out.textContent = JSON.stringify({images: imgs.length, decoded: decoded, tables: tables.length, laid_out: laidOut});
  document.body.appendChild(out);
});
</script>"""


def _browser() -> str | None:
    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.slow
@pytest.mark.mnist
def test_report_renders_in_headless_chromium(tmp_path, mnist_test):
    """The report opened in a real browser: its tables laid out, every image decoded, no console error.

    `make test-all` installs Debian's chromium where it can and sets WHATWHERE_REQUIRE_BROWSER=1, so that a missing
    browser fails there instead of skipping."""
    browser = _browser()
    if browser is None:
        if os.environ.get("WHATWHERE_REQUIRE_BROWSER") == "1":
            pytest.fail("WHATWHERE_REQUIRE_BROWSER=1 but no chromium on PATH (`apt-get install -y chromium`)")
        pytest.skip("no chromium on this machine (`apt-get install -y chromium`)")
    out = tmp_path / "zoo"
    assert main(["reproduce", "paper", "--from-zoo", "--only", "what", "--digits", "2", "--out", str(out),
                 "--no-progress"]) == 0
    page = out / "report" / "index.html"
    html = page.read_text()
    assert "<script" not in html  # self-contained and static: the probe below is the only script the browser runs
    probed = page.with_name("probed.html")
    probed.write_text(html.replace("</body>", _RENDER_PROBE + "</body>"))
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}",
                           "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert dom.count("<table>") >= 3 and "<th>central</th>" in dom and "Made by" in dom
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', dom)
    assert len(uris) >= 2 and all(len(u) > 1000 for u in uris)
    probe = re.search(r'<pre id="render-probe">(.*?)</pre>', dom)
    assert probe is not None, "the load-time probe did not run"
    seen = json.loads(probe.group(1))
    assert seen["images"] == len(uris) and seen["decoded"] == seen["images"], seen
    assert seen["tables"] >= 3 and seen["laid_out"] == seen["tables"], seen
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
