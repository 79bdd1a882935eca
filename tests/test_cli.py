import json

import numpy as np
import pytest

from whatwhere.cli import main

RESULTS = __import__("pathlib").Path(__file__).resolve().parents[1] / "results"


@pytest.mark.usefixtures("mnist_test")
def test_data_sample_and_clutter_only(tmp_path):
    a, b = tmp_path / "d.npz", tmp_path / "c.npz"
    args = ["data", "sample", "--size", "128", "--n", "20", "--seed", "3", "--eccentricity", "20",
            "--contrast", "0.5", "--clutter", "0.8"]
    assert main(args + ["--out", str(a)]) == 0
    assert main(args + ["--clutter-only", "--out", str(b)]) == 0
    d, c = np.load(a), np.load(b)
    assert d["images"].shape == (20, 128, 128) and d["images"].dtype == np.float32
    assert d["labels"].shape == (20,) and d["offsets"].shape == (20, 2) and d["contrasts"].shape == (20,)
    assert np.all(np.abs(np.hypot(*d["offsets"].T) - 20) <= 1.5) and np.all(d["contrasts"] == np.float32(0.5))
    assert np.all(d["images"] >= c["images"]) and (d["images"] > c["images"]).any()
    meta = json.loads(str(d["meta"]))
    assert meta["config"]["clutter"] == 0.8 and meta["seed"] == 3
    again = tmp_path / "again.npz"
    assert main(args + ["--out", str(again)]) == 0
    assert np.array_equal(np.load(again)["images"], d["images"])


@pytest.mark.usefixtures("mnist_test")
def test_data_sample_28_and_show(tmp_path):
    out = tmp_path / "s.npz"
    assert main(["data", "sample", "--size", "28", "--n", "5", "--offset", "3", "-2",
                 "--contrast-range", "0.3", "0.7", "--mixing", "transparent", "--split", "train",
                 "--out", str(out)]) == 0
    d = np.load(out)
    assert d["images"].shape == (5, 28, 28) and d["offsets"].tolist() == [[3, -2]] * 5
    png = tmp_path / "grid.png"
    assert main(["data", "show", "--out", str(png), "--eccentricities", "0", "40"]) == 0
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("extra, message", [
    (["--eccentricity", "60"], "eccentricity"),
    (["--contrast", "1.5"], "contrast"),
    (["--clutter", "-1"], "clutter"),
    (["--contrast", "0.5", "--contrast-range", "0.3", "0.7"], "either"),
])
def test_data_sample_bad_input(tmp_path, capsys, extra, message):
    rc = main(["data", "sample", "--n", "3", "--out", str(tmp_path / "x.npz")] + extra)
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def _all_commands(parser, prefix=()):
    """Every (sub)command path of the parser."""
    import argparse

    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_commands(sub, (*prefix, name))


def test_help_everywhere(capsys):
    from whatwhere.cli import build_parser

    paths = list(_all_commands(build_parser()))
    names = {p[0] for p in paths if p}
    assert names == {"data", "train", "eval", "benchmark", "saccades", "diagnose", "figures", "sweep", "reproduce",
                     "report", "zoo", "demo"}
    for path in paths:
        with pytest.raises(SystemExit) as exc:
            main([*path, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "usage" in out and len(out) > 100


def test_no_module_entry_points():
    """`whatwhere` is the only entry point: no `python -m whatwhere...` mains."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "whatwhere"
    assert not list(src.rglob("__main__.py"))
    assert not [p for p in src.rglob("*.py") if 'if __name__ == "__main__"' in p.read_text()]


@pytest.fixture(scope="module")
def tiny_what(tmp_path_factory, mnist_test):
    out = tmp_path_factory.mktemp("cli") / "what-tiny"
    argv = ["train", "what", "--profile", "quick", "--set", "train_limit=200", "--set", "eval_digits=50",
            "--set", "stages=[{sigma: 0, epochs: 1}, {sigma: 2, epochs: 1}]", "--seed", "7", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    return out


def _recorded(path):
    return json.loads(path.read_text())["command"]


def test_train_eval_and_recorded_commands(tiny_what, tmp_path):
    import shlex

    from whatwhere.engine.recipe import parse_recipe

    assert (tiny_what / "model.safetensors").exists() and (tiny_what / "metrics.csv").exists()
    recipe = parse_recipe(__import__("yaml").safe_load((tiny_what / "recipe.yaml").read_text()))
    assert recipe.seed == 7 and recipe.total_epochs == 2
    argv = ["eval", "central", str(tiny_what), "--digits", "100", "--out", str(tmp_path / "e")]
    assert main(argv) == 0
    res = json.loads((tmp_path / "e" / "central.json").read_text())
    assert res["command"] == shlex.join(["whatwhere", *argv]) and 0 <= res["central"] <= 1
    assert res["n_digits"] == 100 and res["display"]["clutter"] == 1.0
    argv = ["eval", "accuracy-map", "what", "--digits", "5", "--out", str(tmp_path / "m"), "--no-progress"]
    assert main(argv) == 0
    assert np.load(tmp_path / "m" / "accuracy_map.npy").shape == (55, 55)
    assert _recorded(tmp_path / "m" / "accuracy_map.json") == shlex.join(["whatwhere", *argv])
    # --resume of a finished run is refused with a clear message, as is a second run into the same folder
    assert main(["train", "what", "--out", str(tiny_what)]) == 2


@pytest.mark.usefixtures("mnist_test")
def test_benchmark_saccades_diagnose_figures(tiny_what, tmp_path):
    import shlex

    polo = str(RESULTS / "polo_atn-bandpass")  # a run directory with its weights (the band-pass ablation)
    argv = ["benchmark", "what", str(tiny_what), polo, "--digits", "10", "--contrasts", "0.7",
            "--eccentricities", "4.44", "40", "--out", str(tmp_path / "b"), "--no-progress"]
    assert main(argv) == 0
    payload = json.loads((tmp_path / "b" / "benchmark.json").read_text())
    assert payload["command"] == shlex.join(["whatwhere", *argv])
    assert {r["model"] for r in payload["records"]} == {"what", tiny_what.name, "polo_atn-bandpass"}
    assert "code_r2" in payload["models"]["polo_atn-bandpass"] and (tmp_path / "b" / "benchmark.png").exists()
    assert "code R²" in (tmp_path / "b" / "benchmark.md").read_text()

    argv = ["saccades", "--where", "where-c0.7", "--digits", "10", "--saccades", "1", "--out",
            str(tmp_path / "s"), "--no-progress"]
    assert main(argv) == 0
    payload = json.loads((tmp_path / "s" / "benchmark.json").read_text())
    assert payload["command"] == shlex.join(["whatwhere", *argv])
    assert {r["saccades"] for r in payload["records"]} == {0, 1, "stop"} and len(payload["records"]) == 27
    assert (tmp_path / "s" / "fig4_saccade_gain.png").exists() and (tmp_path / "s" / "fig3_example_c0.7.png").exists()

    out = tmp_path / "r2.json"
    argv = ["diagnose", "code", "polo_atn", "--n-fit", "300", "--n-val", "100", "--n-test", "200", "--out", str(out)]
    assert main(argv) == 0
    res = json.loads(out.read_text())
    assert res["dim"] == 768 and res["r2"] > 0.3 and res["command"] == shlex.join(["whatwhere", *argv])

    figs = tmp_path / "f"
    for argv, made in (
            (["figures", "maps", str(tmp_path / "none.npy")], None),
            (["figures", "curves", str(tiny_what), "--out", str(figs / "c.png")], figs / "c.png"),
            (["figures", "transformer", "stn28", "--n", "3", "--out", str(figs / "t.png")], figs / "t.png"),
            (["figures", "where", str(tmp_path / "s" / "benchmark.json"), "--out", str(figs / "w")],
             figs / "w" / "fig4_saccade_gain.png"),
            (["figures", "benchmark", str(tmp_path / "b" / "benchmark.json"), "--out", str(figs / "b.png")],
             figs / "b.png")):
        if made is None:
            with pytest.raises(SystemExit):  # --out is required
                main(argv)
            continue
        assert main(argv) == 0 and made.stat().st_size > 5_000


def test_zoo_commands(capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "what" in out and "where-c0.7" in out
    assert main(["zoo", "verify", "what", "stn28"]) == 0
    assert "ok   what weights" in capsys.readouterr().out


@pytest.mark.usefixtures("mnist_test")
def test_demo_smoke(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--smoke", "--out", str(out)]) == 0
    for name in ("displays.png", "maps.png", "results.md", "where_benchmark.md", "benchmark/benchmark.json"):
        assert (out / name).stat().st_size > 100, name
