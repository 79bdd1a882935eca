import json

import numpy as np
import pytest

from whatwhere.cli import main


@pytest.mark.usefixtures("mnist_test")
def test_data_sample_and_clutter_only(tmp_path):
    a, b = tmp_path / "d.npz", tmp_path / "c.npz"
    args = ["data", "sample", "--size", "128", "--n", "20", "--seed", "3", "--eccentricity", "20",
            "--contrast", "0.5", "--noise", "0.8"]
    assert main(args + ["--out", str(a)]) == 0
    assert main(args + ["--clutter-only", "--out", str(b)]) == 0
    d, c = np.load(a), np.load(b)
    assert d["images"].shape == (20, 128, 128) and d["images"].dtype == np.float32
    assert d["labels"].shape == (20,) and d["offsets"].shape == (20, 2) and d["contrasts"].shape == (20,)
    assert np.all(np.abs(np.hypot(*d["offsets"].T) - 20) <= 1.5) and np.all(d["contrasts"] == np.float32(0.5))
    assert np.all(d["images"] >= c["images"]) and (d["images"] > c["images"]).any()
    meta = json.loads(str(d["meta"]))
    assert meta["config"]["noise"] == 0.8 and meta["seed"] == 3
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
    (["--noise", "-1"], "noise"),
    (["--contrast", "0.5", "--contrast-range", "0.3", "0.7"], "either"),
])
def test_data_sample_bad_input(tmp_path, capsys, extra, message):
    rc = main(["data", "sample", "--n", "3", "--out", str(tmp_path / "x.npz")] + extra)
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_help_everywhere(capsys):
    for cmd in (["--help"], ["data", "--help"], ["data", "sample", "--help"], ["train", "--help"],
                ["eval", "--help"], ["plot", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(cmd)
        assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out
