"""The unified benchmark: paired displays, the expected table, diagnostics, user models, the CLI."""

import hashlib
import json
from pathlib import Path
import sys
import textwrap

import pytest
import torch
from torch import nn

from whatwhere.eval.benchmark import Entry, benchmark
from whatwhere.eval.reports import markdown, write_report
from whatwhere.models.registry import MODELS, create_model, register_model
from whatwhere.models.stn import ATN
from whatwhere.eval.published import published_curve


class Constant(nn.Module):
    """Always answers ``digit``; remembers a hash of every batch it saw."""

    input_size = 128

    def __init__(self, digit: int) -> None:
        super().__init__()
        self.digit = digit
        self.seen: list[str] = []
        self.labels_seen: list[int] = []

    def forward(self, images):
        self.seen.append(hashlib.sha1(images.numpy().tobytes()).hexdigest())
        out = torch.full((len(images), 10), -1.0)
        out[:, self.digit] = 1.0
        return out


ECC = (4.44, 40.0)


@pytest.fixture(scope="module")
def stub_result(mnist_test):
    a, b = Constant(1), Constant(7)
    res = benchmark({"ones": a, "sevens": b}, contrasts=(0.7, 0.3), eccentricities=ECC, n_digits=60, seed=3,
                    batch=25, progress=False)
    return res, a, b


def test_stub_models_see_identical_displays(stub_result):
    res, a, b = stub_result
    assert a.seen == b.seen                      # paired: the same batches, in the same order
    assert len(a.seen) == 1 + 2 * 2 * 3          # one untimed warm-up call, then 2 contrasts x 2 eccentricities
    assert len(set(a.seen[1:])) == len(a.seen) - 1  # x 60/25 -> 3 batches; the cells differ from each other


def test_stub_table_is_the_label_frequency(stub_result, mnist_test):
    res, _, _ = stub_result
    recs = {(r["model"], r["contrast"], r["eccentricity"]): r for r in res["records"]}
    assert len(recs) == 2 * 2 * 2 and res["n_digits"] == 60
    # every cell shows the same 60 digits (only position/contrast change): a constant answer
    # scores the frequency of its digit among them, identically in every cell
    for model in ("ones", "sevens"):
        accs = {round(recs[(model, c, e)]["accuracy"], 9) for c in (0.7, 0.3) for e in ECC}
        assert len(accs) == 1
    ones = recs[("ones", 0.7, 4.44)]
    sevens = recs[("sevens", 0.7, 4.44)]
    assert ones["total"] == 60 and 0 < ones["correct"] < 60 and ones["correct"] != sevens["correct"]
    lo, hi = ones["ci95"]
    assert lo < ones["accuracy"] < hi
    assert "hit_rate" not in ones               # no glimpse, no hit rate
    # numbers read per decision: a model without localiser or fovea reads the whole display
    assert res["models"]["ones"]["reads"] == [{"saccades": None, "glimpses": 1.0, "codes": 0.0, "pixels": 16384.0,
                                               "total": 16384.0, "formula": "16384"}]
    md = markdown(res)
    assert f"| ones | {ones['accuracy']:.3f} | {ones['accuracy']:.3f} |" in md
    assert "**Contrast 0.3**" in md and "| sevens |" in md


def test_glimpse_diagnostics_of_an_untrained_atn(mnist_test):
    torch.manual_seed(0)
    res = benchmark({"atn0": ATN()}, contrasts=(0.7,), eccentricities=(4.44, 40.0), n_digits=20, progress=False)
    hit = {r["eccentricity"]: r["hit_rate"] for r in res["records"]}
    assert hit == {4.44: 1.0, 40.0: 0.0}         # the initial glimpse is centred
    m = res["models"]["atn0"]
    assert m["theta_spread"] == pytest.approx(0.0, abs=1e-6)  # identical theta for every input
    assert m["bandwidth"] == 128 * 128 and m["params"] == 766_571 and m["throughput"] > 0


def test_register_and_benchmark_a_user_model(mnist_test, tmp_path, monkeypatch):
    src = textwrap.dedent('''
        import torch
        from whatwhere.models.registry import register_model

        @register_model("user_centre_mean", input_size=128)
        class CentreMean(torch.nn.Module):
            """A user model: logits from the mean of four central patches (toy)."""
            bandwidth = 4
            def __init__(self, k: int = 4):
                super().__init__()
                self.k = k
                self.lin = torch.nn.Linear(4, 10)
            def forward(self, images):
                x = images.reshape(-1, 128, 128)
                c = x[:, 60:68, 60:68]
                feats = torch.stack([c[:, :4, :4].mean((1, 2)), c[:, :4, 4:].mean((1, 2)),
                                     c[:, 4:, :4].mean((1, 2)), c[:, 4:, 4:].mean((1, 2))], 1)
                return self.lin(feats)
    ''')
    (tmp_path / "user_models_ww.py").write_text(src)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.import_module("user_models_ww")
    try:
        model = create_model("user_centre_mean", k=4)
        from whatwhere.engine.recipe import parse_recipe
        from whatwhere.engine.checkpoints import save_weights
        from whatwhere.engine.trainer import model_meta

        recipe = parse_recipe({"name": "user", "model": "user_centre_mean", "size": 128, "model_args": {"k": 4},
                               "stages": [{"epochs": 1}]})
        run = tmp_path / "run"
        run.mkdir()
        save_weights(model, run / "model.safetensors", model_meta(recipe))
        # the CLI, in a fresh interpreter: --import registers the model before the run is loaded
        import subprocess

        out = tmp_path / "bench"
        proc = subprocess.run([str(Path(sys.executable).parent / "whatwhere"), "benchmark", str(run), "--import",
                               "user_models_ww", "--digits", "10", "--contrasts", "0.7", "--eccentricities", "4.44",
                               "--out", str(out), "--no-progress", "--no-figures"],
                              capture_output=True, text=True, env={**__import__("os").environ,
                                                                    "PYTHONPATH": str(tmp_path) + ":" +
                                                                    __import__("os").environ.get("PYTHONPATH", "")})
        assert proc.returncode == 0, proc.stderr
        payload = json.loads((out / "benchmark.json").read_text())
        assert payload["models"]["run"]["bandwidth"] == 4 and payload["models"]["run"]["params"] == 50
        assert [r["total"] for r in payload["records"]] == [10]
        md = (out / "benchmark.md").read_text()
        assert md.count("| run |") == 3  # summary, made-by (unknown: no recipe.yaml) and the contrast table
        assert "| run | ? | ? | ? | ? |" in md
    finally:
        MODELS.pop("user_centre_mean", None)


def test_report_files_and_published_curves(stub_result, tmp_path):
    res, _, _ = stub_result
    from whatwhere.viz import benchmark_figure

    paths = write_report(res, tmp_path, command="test", wall_time_s=1.0)
    assert [p.name for p in paths] == ["benchmark.json", "benchmark.md"]
    assert benchmark_figure(res, tmp_path / "benchmark.png").stat().st_size > 10_000
    payload = json.loads(paths[0].read_text())
    assert payload["command"] == "test" and payload["records"] == res["records"]
    assert published_curve("stn128", 0.7, None, (4.44, 40.0)) == [0.9715, 0.9558]
    assert published_curve("whatwhere", 0.5, 1, (4.44, 40.0)) == [0.833, 0.422]
    assert published_curve("stn128", 0.6, None, (4.44,)) is None
    assert published_curve("mine", 0.7, None, (4.44,)) is None


def test_bad_input_is_refused(mnist_test):
    with pytest.raises(ValueError, match="unique"):
        benchmark([Entry("a", Constant(1)), Entry("a", Constant(2))], n_digits=5, progress=False)
    with pytest.raises(ValueError, match="contrast"):
        benchmark({"a": Constant(1)}, contrasts=(1.5,), n_digits=5, progress=False)
    with pytest.raises(ValueError, match="nothing"):
        benchmark({}, progress=False)


def test_readme_example_runs(mnist_test, tmp_path, monkeypatch):
    """The "Benchmark your own model" example of docs/api.md, as written (fewer digits)."""
    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "api.md").read_text()
    code = text.split("<!-- example: benchmark -->\n```python\n", 1)[1].split("```", 1)[0]
    code = code.replace("n_digits=200", "n_digits=10").replace('"bench-mine"', repr(str(tmp_path / "b")))
    monkeypatch.chdir(root)
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    finally:
        MODELS.pop("centre_crop", None)
    payload = json.loads((tmp_path / "b" / "benchmark.json").read_text())
    assert set(payload["models"]) == {"centre crop", "stn28 (fovea)"}
    assert len(payload["records"]) == 2 * 2 * 9


class Glimpser(nn.Module):
    """A stub glimpse model (constant answer, identity-scale θ); at each call it counts the live
    tensors of the process, so a test can see whether the benchmark keeps something per display."""

    input_size = 128
    out_size = 28

    def __init__(self) -> None:
        super().__init__()
        self.live: list[int] = []

    def forward_with_theta(self, images):
        import gc

        self.live.append(sum(issubclass(type(o), torch.Tensor) for o in gc.get_objects()))
        theta = torch.zeros(len(images), 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 28 / 128
        theta[:, :, 2] = images.reshape(len(images), 2, -1).mean(-1)  # varies across displays: a θ spread
        return torch.zeros(len(images), 10), theta

    def forward(self, images):
        return self.forward_with_theta(images)[0]


def test_benchmark_memory_does_not_grow_with_digits(mnist_test):
    """The benchmark streams: 10x the digits per cell keeps no more tensors alive (the old code kept
    every display's θ until the end: one more tensor per batch)."""
    import tracemalloc

    def run(n):
        g = Glimpser()
        tracemalloc.start()
        res = benchmark({"g": g}, contrasts=(0.7,), eccentricities=(4.44, 40.0), n_digits=n, batch=10,
                        code_r2=False, progress=False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return g.live, peak, res

    few, peak_few, _ = run(20)      # 2 batches per cell
    many, peak_many, res = run(200)  # 20 batches per cell
    assert len(many) == 1 + 2 * 20
    assert max(many[1:]) - max(few[1:]) <= 1, (few, many)
    assert peak_many - peak_few < 256 * 1024, (peak_few, peak_many)
    assert res["models"]["g"]["theta_spread"] > 0 and len(res["models"]["g"]["theta_mean"]) == 6


def test_running_theta_moments_match_torch():
    from whatwhere.eval.benchmark import _Moments

    x = torch.randn(103, 6, dtype=torch.float64) * 3 + 1
    m = _Moments()
    for chunk in x.split(25):
        m.update(chunk)
    assert m.n == 103
    assert torch.allclose(m.mean, x.mean(0)) and torch.allclose(m.std(), x.std(0))
