"""No Python traceback reaches the user: bad input on every command answers one line
``whatwhere: error: ...`` and exit status 2; a bug answers one ``whatwhere: internal error:`` line
(exit 1, the traceback in a crash file); Ctrl-C exits 130."""

from __future__ import annotations

import json
import re
import shutil
import signal

import numpy as np
import pytest
import torch

from whatwhere.cli import build_parser, main

#: Seconds a refusal may take: bad input is refused before any long computation starts.
REFUSE_WITHIN_S = 30


class _TooSlow(BaseException):
    """Raised by the alarm: the command computed instead of refusing its input."""


def run_cli(argv, capsys):
    """``main(argv)`` in-process: ``(exit status, stderr)``; argparse's exits count as returns."""
    def alarm(*_):
        raise _TooSlow(f"no refusal within {REFUSE_WITHIN_S} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(REFUSE_WITHIN_S)
    try:
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:
            rc = exc.code
        except KeyboardInterrupt as exc:  # would stop pytest itself
            raise AssertionError("KeyboardInterrupt escaped main()") from exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """Broken inputs of every kind, by name."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from whatwhere.engine.zoo import zoo_path

    d = tmp_path_factory.mktemp("bad")
    what = zoo_path("what")
    raw = what.read_bytes()
    with safe_open(str(what), framework="pt") as fh:
        meta = fh.metadata()
    state = load_file(str(what))
    rng = np.random.default_rng(0)
    f = {}

    def put(name, data: bytes):
        f[name] = d / name
        f[name].write_bytes(data)

    put("truncated.safetensors", raw[: len(raw) // 2])
    put("empty.safetensors", b"")
    put("random.safetensors", rng.bytes(4096))
    put("header.safetensors", (10**12).to_bytes(8, "little") + b"{}")  # a header longer than the file
    f["nometa.safetensors"] = d / "nometa.safetensors"
    save_file({"w": torch.zeros(3)}, f["nometa.safetensors"])
    for name, value in (("nan", float("nan")), ("inf", float("inf"))):
        s = {k: v.clone() for k, v in state.items()}
        first = next(k for k, v in s.items() if v.is_floating_point())
        s[first].view(-1)[0] = value
        f[f"{name}.safetensors"] = d / f"{name}.safetensors"
        save_file(s, f[f"{name}.safetensors"], metadata=meta)
    for name, m in (("badjson", {**meta, "model": "{not json"}), ("unknown", {**meta, "model": json.dumps("nosuch")}),
                    ("badargs", {**meta, "model_args": json.dumps({"bogus": 1})}),
                    ("argslist", {**meta, "model_args": json.dumps([1, 2])})):
        f[f"{name}.safetensors"] = d / f"{name}.safetensors"
        save_file(state, f[f"{name}.safetensors"], metadata=m)
    f["stn28meta_what.safetensors"] = d / "stn28meta_what.safetensors"  # What's weights, STN-28's metadata
    with safe_open(str(zoo_path("stn28")), framework="pt") as fh:
        save_file(state, f["stn28meta_what.safetensors"], metadata=fh.metadata())
    f["dir.safetensors"] = d / "dir.safetensors"
    f["dir.safetensors"].mkdir()
    # run directories
    f["noweights"] = d / "noweights"
    f["noweights"].mkdir()
    (f["noweights"] / "metrics.csv").write_text("epoch,test_acc\n1,0.5\n")
    f["badpointer"] = d / "badpointer"
    (f["badpointer"] / "checkpoints").mkdir(parents=True)
    (f["badpointer"] / "checkpoints" / "latest.json").write_text("{oops")
    f["lostcheckpoint"] = d / "lostcheckpoint"
    (f["lostcheckpoint"] / "checkpoints").mkdir(parents=True)
    (f["lostcheckpoint"] / "checkpoints" / "latest.json").write_text('{"stem": "epoch-3"}')
    for name, extra in (("badrecipe", {"recipe.yaml": "model: [what\n"}), ("badrunjson", {"run.json": "{oops"}),
                        ("nometrics", {}), ("badmetrics", {"metrics.csv": "epoch,test_acc\n1,abc\n"}),
                        ("emptymetrics", {"metrics.csv": ""})):
        f[name] = d / name
        f[name].mkdir()
        shutil.copyfile(what, f[name] / "model.safetensors")
        for fname, text in extra.items():
            (f[name] / fname).write_text(text)
    # arrays and JSON files
    for name, arr in (("vector.npy", np.zeros(55)), ("cube.npy", np.zeros((2, 55, 55))),
                      ("strings.npy", np.array(["a", "b"])), ("even.npy", np.zeros((4, 4)))):
        f[name] = d / name
        np.save(f[name], arr)
    f["arrays.npz"] = d / "arrays.npz"
    np.savez(f["arrays.npz"], a=np.zeros((55, 55)))
    put("random.npy", rng.bytes(500))
    put("empty.npy", b"")
    put("corrupt.json", b'{"records": [')
    put("nokey.json", b'{"model": "x"}')
    put("badrecords.json", b'{"records": [1, 2]}')
    put("list.json", b"[1, 2]")
    put("binary.json", rng.bytes(300))
    f["badsweep"] = d / "badsweep"
    f["badsweep"].mkdir()
    (f["badsweep"] / "sweep.json").write_text("{oops")
    f["oddsweep"] = d / "oddsweep"
    f["oddsweep"].mkdir()
    (f["oddsweep"] / "sweep.json").write_text('{"runs": [{"name": 1}]}')
    return {k: str(v) for k, v in f.items()}


E = ["eval", "central"]
EV = ["--digits", "10", "--no-progress", "--device", "cpu", "--out", "{tmp}/e"]
B = ["--digits", "5", "--contrasts", "0.7", "--eccentricities", "4.44", "--no-progress", "--no-figures",
     "--no-code-r2", "--device", "cpu", "--out", "{tmp}/b"]
S = ["--digits", "5", "--saccades", "1", "--no-figures", "--no-progress", "--device", "cpu", "--out", "{tmp}/s"]
DG = ["--n-fit", "30", "--n-val", "10", "--n-test", "20", "--device", "cpu"]
DF = ["--digits", "4", "--eccentricities", "40", "--device", "cpu"]
DS = ["data", "sample", "--n", "3", "--out", "{tmp}/x.npz"]
SHOW = ["data", "show", "--out", "{tmp}/x.png"]
O = ["--out", "{tmp}/o.png"]

#: (id, argv with {name} placeholders from the `bad` fixture and {tmp}, a word the message must hold)
CASES = [
    # weights files that cannot be used
    ("weights-truncated", [*E, "{truncated.safetensors}", *EV], "truncated.safetensors"),
    ("weights-empty", [*E, "{empty.safetensors}", *EV], "empty.safetensors"),
    ("weights-random-bytes", [*E, "{random.safetensors}", *EV], "random.safetensors"),
    ("weights-huge-header", [*E, "{header.safetensors}", *EV], "header.safetensors"),
    ("weights-no-metadata", [*E, "{nometa.safetensors}", *EV], "metadata"),
    ("weights-nan", [*E, "{nan.safetensors}", *EV], "NaN"),
    ("weights-inf", [*E, "{inf.safetensors}", *EV], "NaN"),
    ("weights-bad-json-metadata", [*E, "{badjson.safetensors}", *EV], "badjson.safetensors"),
    ("weights-unknown-model", [*E, "{unknown.safetensors}", *EV], "nosuch"),
    ("weights-bad-model-args", [*E, "{badargs.safetensors}", *EV], "bogus"),
    ("weights-model-args-not-a-dict", [*E, "{argslist.safetensors}", *EV], "model_args"),
    ("weights-of-another-model", [*E, "{stn28meta_what.safetensors}", *EV], "stn28"),
    ("weights-a-directory", [*E, "{dir.safetensors}", *EV], "model.safetensors"),
    ("run-without-weights", [*E, "{noweights}", *EV], "model.safetensors"),
    ("run-corrupt-checkpoint-pointer", [*E, "{badpointer}", *EV], "latest.json"),
    ("run-checkpoint-missing", [*E, "{lostcheckpoint}", *EV], "epoch-3"),
    ("run-corrupt-recipe", [*E, "{badrecipe}", *EV], "recipe.yaml"),
    ("path-nonexistent", [*E, "{tmp}/nope", *EV], "nope"),
    ("path-nonexistent-file", [*E, "{tmp}/nope.safetensors", *EV], "nope.safetensors"),
    ("zoo-name-unknown", [*E, "nosuchmodel", *EV], "nosuchmodel"),
    ("zoo-prefixed-name-unknown", [*E, "zoo:nosuchmodel", *EV], "nosuchmodel"),
    # each command given a bad or wrong model
    ("eval-where-model", [*E, "where-c0.7", *EV], "28"),
    ("eval-map-bad-model", ["eval", "accuracy-map", "{random.safetensors}", *EV], "random.safetensors"),
    ("benchmark-truncated", ["benchmark", "{truncated.safetensors}", *B], "truncated.safetensors"),
    ("benchmark-nonexistent", ["benchmark", "{tmp}/nope", *B], "nope"),
    ("benchmark-nan", ["benchmark", "{nan.safetensors}", *B], "NaN"),
    ("benchmark-corrupt-run-json", ["benchmark", "{badrunjson}", *B], "run.json"),
    ("benchmark-where-as-what", ["benchmark", "where-c0.7", "--what", "where-c0.7", *B], "What"),
    ("saccades-bad-where", ["saccades", "--where", "{empty.safetensors}", *S], "empty.safetensors"),
    ("saccades-bad-what", ["saccades", "--what", "{tmp}/nope", "--where", "where-c0.7", *S], "nope"),
    ("saccades-what-as-where", ["saccades", "--where", "what", *S], "Where"),
    ("saccades-where-as-what", ["saccades", "--what", "where-c0.7", "--where", "where-c0.7", *S], "What"),
    ("diagnose-bad-model", ["diagnose", "code", "{random.safetensors}", *DG], "random.safetensors"),
    ("diagnose-unknown-model", ["diagnose", "code", "nosuchmodel", *DG], "nosuchmodel"),
    ("diagnose-model-without-localiser", ["diagnose", "code", "what", *DG], "localiser"),
    ("diagnose-bad-model-arg", ["diagnose", "code", "polo_atn", "--model-arg", "bogus=1", *DG], "bogus"),
    ("diagnose-fixations-model-without-saccades", ["diagnose", "fixations", "what", *DF], "forward_trace"),
    ("figures-transformer-bad-model", ["figures", "transformer", "{truncated.safetensors}", *O],
     "truncated.safetensors"),
    ("figures-transformer-what", ["figures", "transformer", "what", *O], "transformer"),
    ("figures-scanpaths-what", ["figures", "scanpaths", "what", *O], "saccadic"),
    ("figures-scanpaths-what-as-agent", ["figures", "scanpaths", "saccadic_transformer", "--agent", "what", *O],
     "Where"),
    ("figures-curves-no-metrics", ["figures", "curves", "{nometrics}", *O], "metrics.csv"),
    ("figures-curves-bad-metrics", ["figures", "curves", "{badmetrics}", *O], "metrics.csv"),
    ("figures-curves-empty-metrics", ["figures", "curves", "{emptymetrics}", *O], "metrics.csv"),
    ("figures-curves-nonexistent", ["figures", "curves", "{tmp}/nope", *O], "nope"),
    ("zoo-verify-unknown", ["zoo", "verify", "nosuchmodel"], "nosuchmodel"),
    ("zoo-add-nonexistent", ["zoo", "add", "{tmp}/nope", "--name", "x"], "nope"),
    # out-of-range and wrongly typed values
    ("sample-contrast-negative", [*DS, "--contrast", "-0.2"], "contrast"),
    ("sample-contrast-above-1", [*DS, "--contrast", "1.5"], "contrast"),
    ("sample-contrast-range-reversed", [*DS, "--contrast-range", "0.8", "0.2"], "contrast"),
    ("sample-n-zero", ["data", "sample", "--n", "0", "--out", "{tmp}/x.npz"], "--n"),
    ("sample-n-negative", ["data", "sample", "--n", "-5", "--out", "{tmp}/x.npz"], "--n"),
    ("sample-n-too-many", ["data", "sample", "--n", "20000", "--out", "{tmp}/x.npz"], "--n"),
    ("sample-eccentricity-negative", [*DS, "--eccentricity", "-3"], "eccentricity"),
    ("sample-eccentricity-off-display", [*DS, "--eccentricity", "200"], "eccentricity"),
    ("sample-offset-off-display", [*DS, "--offset", "300", "0"], "offset"),
    ("sample-sigma-negative", [*DS, "--sigma", "-1"], "sigma"),
    ("sample-clutter-nan", [*DS, "--clutter", "nan"], "clutter"),
    ("sample-seed-not-int", [*DS, "--seed", "abc"], "--seed"),
    ("sample-seed-float", [*DS, "--seed", "1.5"], "--seed"),
    ("sample-bad-preset", [*DS, "--preset", "bogus"], "--preset"),
    ("sample-bad-size", [*DS, "--size", "64"], "--size"),
    ("sample-missing-n", ["data", "sample", "--out", "{tmp}/x.npz"], "--n"),
    ("show-contrast-above-1", [*SHOW, "--contrasts", "1.5"], "contrast"),
    ("show-contrast-zero", [*SHOW, "--contrasts", "0"], "contrast"),
    ("show-eccentricity-negative", [*SHOW, "--eccentricities", "-5"], "eccentricit"),
    ("show-eccentricity-off-display", [*SHOW, "--eccentricities", "100"], "eccentricit"),
    ("show-bad-preset", [*SHOW, "--preset", "bogus"], "--preset"),
    ("show-seed-float", [*SHOW, "--seed", "1.5"], "--seed"),
    ("show-clutter-negative", [*SHOW, "--clutter", "-1"], "clutter"),
    ("eval-digits-zero", [*E, "what", *EV, "--digits", "0"], "--digits"),
    ("eval-digits-negative", [*E, "what", *EV, "--digits", "-3"], "--digits"),
    ("eval-map-digits-zero", ["eval", "accuracy-map", "what", *EV, "--digits", "0"], "--digits"),
    ("eval-clutter-negative", [*E, "what", *EV, "--clutter", "-1"], "clutter"),
    ("eval-map-precision-unknown", ["eval", "accuracy-map", "what", *EV, "--precision", "fp8"], "precision"),
    ("eval-central-precision-bf16", [*E, "what", *EV, "--precision", "bf16"], "accuracy map only"),
    ("eval-seed-not-int", [*E, "what", *EV, "--seed", "abc"], "--seed"),
    ("benchmark-digits-zero", ["benchmark", "what", *B, "--digits", "0"], "digits"),
    ("benchmark-contrast-above-1", ["benchmark", "what", *B, "--contrasts", "1.5"], "contrast"),
    ("benchmark-contrast-negative", ["benchmark", "what", *B, "--contrasts", "-0.5"], "contrast"),
    ("benchmark-eccentricity-negative", ["benchmark", "what", *B, "--eccentricities", "-4"], "eccentricit"),
    ("benchmark-eccentricity-off-display", ["benchmark", "what", *B, "--eccentricities", "200"], "eccentricit"),
    ("benchmark-batch-zero", ["benchmark", "what", *B, "--batch", "0"], "batch"),
    ("benchmark-saccades-negative", ["benchmark", "where-c0.7", *B, "--saccades", "-1"], "saccades"),
    ("benchmark-hit-px-negative", ["benchmark", "what", *B, "--hit-px", "-1"], "hit"),
    ("saccades-count-negative", ["saccades", "--where", "where-c0.7", *S, "--saccades", "-1"], "saccades"),
    ("saccades-digits-zero", ["saccades", "--where", "where-c0.7", *S, "--digits", "0"], "digits"),
    ("saccades-contrast-zero", ["saccades", "--where", "where-c0.7", *S, "--contrast", "0"], "contrast"),
    ("saccades-batch-zero", ["saccades", "--where", "where-c0.7", *S, "--batch", "0"], "batch"),
    ("saccades-clutter-negative", ["saccades", "--where", "where-c0.7", *S, "--clutter", "-1"], "clutter"),
    ("diagnose-n-fit-zero", ["diagnose", "code", "polo_atn", *DG, "--n-fit", "0"], "n-fit"),
    ("diagnose-contrast-above-1", ["diagnose", "code", "polo_atn", *DG, "--contrast", "2"], "contrast"),
    ("diagnose-sigma-negative", ["diagnose", "code", "polo_atn", *DG, "--sigma", "-1"], "sigma"),
    ("diagnose-fixations-digits-zero", ["diagnose", "fixations", "saccadic_transformer", *DF, "--digits", "0"],
     "digits"),
    ("diagnose-fixations-eccentricity-negative", ["diagnose", "fixations", "saccadic_transformer", *DF,
                                                  "--eccentricities", "-1"], "eccentricities"),
    ("figures-transformer-n-zero", ["figures", "transformer", "stn28", "--n", "0", *O], "--n"),
    ("figures-scanpaths-saccades-negative", ["figures", "scanpaths", "saccadic_transformer", "--agent", "where-c0.7",
                                             "--saccades", "-1", *O], "saccades"),
    ("figures-scanpaths-eccentricity-off-display", ["figures", "scanpaths", "saccadic_transformer",
                                                    "--eccentricities", "100", *O], "eccentricit"),
    ("figures-scanpaths-contrast-above-1", ["figures", "scanpaths", "saccadic_transformer", "--contrast", "3", *O],
     "contrast"),
    ("train-seed-not-int", ["train", "what", "--seed", "abc", "--out", "{tmp}/r"], "--seed"),
    ("train-ensemble-zero", ["train", "what", "--profile", "quick", "--ensemble", "0", "--out", "{tmp}/r",
                             "--no-progress"], "ensemble"),
    ("train-init-nan", ["train", "what", "--profile", "quick", "--set", "init={nan.safetensors}", "--out", "{tmp}/r",
                        "--no-progress"], "NaN"),
    ("threads-zero", ["--threads", "0", *DS], "threads"),
    ("demo-map-digits-zero", ["demo", "--smoke", "--map-digits", "0", "--out", "{tmp}/demo"], "map-digits"),
    ("sweep-seeds-zero", ["sweep", "what", "--seeds", "0", "--dry-run", "--out", "{tmp}/sw"], "seeds"),
    ("sweep-eval-digits-zero", ["sweep", "what", "--eval-digits", "0", "--dry-run", "--out", "{tmp}/sw"], "digits"),
    # npy / npz / JSON inputs of the wrong shape or corrupted
    ("maps-random-bytes", ["figures", "maps", "{random.npy}", *O], "random.npy"),
    ("maps-empty-file", ["figures", "maps", "{empty.npy}", *O], "empty.npy"),
    ("maps-vector", ["figures", "maps", "{vector.npy}", *O], "shape"),
    ("maps-cube", ["figures", "maps", "{cube.npy}", *O], "shape"),
    ("maps-even-side", ["figures", "maps", "{even.npy}", *O], "shape"),
    ("maps-strings", ["figures", "maps", "{strings.npy}", *O], "strings.npy"),
    ("maps-npz", ["figures", "maps", "{arrays.npz}", *O], "arrays.npz"),
    ("maps-nonexistent", ["figures", "maps", "{tmp}/none.npy", *O], "none.npy"),
    ("where-corrupt-json", ["figures", "where", "{corrupt.json}", "--out", "{tmp}/w"], "corrupt.json"),
    ("where-json-without-records", ["figures", "where", "{nokey.json}", "--out", "{tmp}/w"], "records"),
    ("where-json-bad-records", ["figures", "where", "{badrecords.json}", "--out", "{tmp}/w"], "badrecords.json"),
    ("where-json-binary", ["figures", "where", "{binary.json}", "--out", "{tmp}/w"], "binary.json"),
    ("where-json-nonexistent", ["figures", "where", "{tmp}/none.json", "--out", "{tmp}/w"], "none.json"),
    ("benchmark-figure-corrupt-json", ["figures", "benchmark", "{corrupt.json}", *O], "corrupt.json"),
    ("benchmark-figure-json-list", ["figures", "benchmark", "{list.json}", *O], "list.json"),
    ("benchmark-figure-json-no-records", ["figures", "benchmark", "{nokey.json}", *O], "nokey.json"),
    ("scan-nonexistent", ["figures", "scan", "{tmp}/none", *O], "none"),
    ("scan-corrupt-sweep", ["figures", "scan", "{badsweep}", *O], "sweep.json"),
    ("sweep-report-nonexistent", ["sweep", "report", "{tmp}/none"], "none"),
    ("sweep-report-corrupt-manifest", ["sweep", "report", "{badsweep}"], "sweep.json"),
    ("sweep-report-odd-manifest", ["sweep", "report", "{oddsweep}"], "sweep.json"),
]


@pytest.mark.usefixtures("mnist_test")
@pytest.mark.parametrize("argv, word", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(bad, tmp_path, capsys, argv, word):
    names = {**bad, "tmp": str(tmp_path)}
    argv = [re.sub(r"\{([^{}]+)\}", lambda m: names[m[1]], a) for a in argv]
    rc, err = run_cli(argv, capsys)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert rc == 2, f"exit {rc}: {err[-500:]}"
    assert len(lines) == 1 and lines[0].startswith("whatwhere: error: "), err
    assert word in lines[0], lines[0]


@pytest.mark.parametrize("argv", [["data", "sample", "--n", "3", "--seed", "abc", "--out", "x.npz"],
                                  ["eval", "central", "{empty.safetensors}", "--device", "cpu"]],
                         ids=["usage", "weights"])
def test_console_script_prints_one_line(bad, tmp_path, argv):
    """The same through a real process, as a user sees it (``sys.exit(main())``)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    argv = [a.replace("{empty.safetensors}", bad["empty.safetensors"]) for a in argv]
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", "import sys; from whatwhere.cli import main; sys.exit(main())", *argv],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("whatwhere: error: "), proc.stderr


def _crash(exc):
    def cmd(args):
        raise exc
    return cmd


def test_internal_error_writes_a_crash_file(monkeypatch, tmp_path, capsys):
    import whatwhere.cli.zoo

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(whatwhere.cli.zoo, "cmd_list", _crash(RuntimeError("a bug\nsecond line")))
    rc, err = run_cli(["zoo", "list"], capsys)
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("whatwhere: internal error: RuntimeError: a bug"), lines[0]
    crashes = list((tmp_path / "cache" / "whatwhere" / "crash").glob("crash-*.txt"))
    assert len(crashes) == 1 and str(crashes[0]) in lines[0]
    text = crashes[0].read_text()
    assert "Traceback" in text and "RuntimeError: a bug" in text and "zoo list" in text


def test_ctrl_c_exits_130(monkeypatch, capsys):
    import whatwhere.cli.zoo

    monkeypatch.setattr(whatwhere.cli.zoo, "cmd_list", _crash(KeyboardInterrupt()))
    rc, err = run_cli(["zoo", "list"], capsys)
    lines = err.strip().splitlines()
    assert rc == 130 and len(lines) == 1 and "Traceback" not in err and lines[0].startswith("whatwhere: "), err


def _commands(parser, prefix=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _commands(sub, (*prefix, name))


@pytest.mark.parametrize("path", [(), *_commands(build_parser())], ids=lambda p: " ".join(p) or "whatwhere")
def test_help(path, capsys):
    rc, err = run_cli([*path, "--help"], capsys)
    assert rc == 0 and not err
