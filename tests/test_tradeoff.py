"""The accuracy / numbers-read trade-off: every registry model's count against a hand count, the
points of a benchmark result, the published models, the figure and the command."""

import json

import pytest

from whatwhere.cli import main
from whatwhere.eval.benchmark import Reads, reads_of
from whatwhere.eval.tradeoff import (
    published_candidates,
    published_points,
    registry_reads,
    result_reads,
    tradeoff_markdown,
    tradeoff_points,
)
from whatwhere.models.registry import MODELS, create_model

RETINA = 6 * 24 * 10 * 2  # orientations x azimuths x rings x phases of the What/Where retina: 2880
FOVEA = 28 * 28  # the 784 pixels of the fovea or a 28 x 28 glimpse
DISPLAY = 128 * 128  # 16,384 pixels

#: registry model -> numbers read per decision with its default arguments, counted by hand
HAND = {
    "what": FOVEA,  # the central 28 x 28 fovea
    "stn28": FOVEA,  # its localiser and its warp both work on that fovea
    "ensemble": FOVEA,  # three What nets on the same fovea
    "stn128": DISPLAY,  # a pixel localiser on the whole display; its 128 x 128 view resamples it
    "atn": DISPLAY,  # the same; its 28 x 28 glimpse is taken from pixels already read
    "polo_atn": 8 * 6 * 16 + FOVEA,  # POLO-95 code (8 orientations x 6 rings x 16 azimuths) + the glimpse
    "polo_atn85": 8 * 4 * 16 + 8 * 8 * 32 + FOVEA,  # dual code, in (512) + out (2048), + the glimpse
    "conv_polo_atn": 8 * 4 * 16 + 8 * 8 * 32 + FOVEA,  # the dual code without its low-pass level
    "saccadic_transformer": 2 * (RETINA + FOVEA),  # 2 glimpses, each a retina code and a fovea
    "where": RETINA + FOVEA,  # the What/Where agent after 1 saccade (checked for 0, 1, 2 below)
    "ram": 8 * 3 * 12 * 12,  # 8 glimpses x 3 scales x 12 x 12 patches (60 px displays)
    "fc": 60 * 60,  # the standard tasks' full-display models read the 60 x 60 display
    "conv": 60 * 60,
    "cnn": 60 * 60,
    "st_cnn": 60 * 60,  # the ST nets' 30 x 30 view resamples the display they read
    "st_fcn": 60 * 60,
}


def test_every_registry_model_has_a_hand_count():
    assert set(HAND) == set(MODELS)


@pytest.mark.parametrize("name", sorted(set(HAND) - {"where", "saccadic_transformer"}))
def test_registry_reads_match_the_hand_count(name):
    r = registry_reads(name)
    assert r.total == HAND[name] and r.glimpses == (8 if name == "ram" else 1)
    assert r.codes + r.pixels == r.total


def test_agent_and_saccadic_transformer_counts():
    """The agent reads a retina code before each saccade and answers from the final fovea; the
    saccadic transformer a code and a glimpse per glimpse (its own K, or the mean K taken)."""
    from whatwhere.models.agent import Agent

    assert registry_reads("where", saccades=1).total == HAND["where"]
    agent = Agent(create_model("what"), create_model("where"))
    assert [reads_of(agent, saccades=k).total for k in (0, 1, 2)] == [FOVEA, RETINA + FOVEA, 2 * RETINA + FOVEA]
    assert reads_of(agent, saccades=2) == Reads(3.0, 2.0 * RETINA, FOVEA, f"2 × {RETINA} + {FOVEA}")
    sacc = create_model("saccadic_transformer")
    assert reads_of(sacc) == Reads(2.0, 2.0 * RETINA, 2.0 * FOVEA, f"2 × ({RETINA} + {FOVEA})")
    assert reads_of(sacc).total == HAND["saccadic_transformer"]
    assert reads_of(sacc, glimpses=1.5).total == 1.5 * (RETINA + FOVEA)
    assert registry_reads("saccadic_transformer", model_args={"glimpses": 3}).total == 3 * (RETINA + FOVEA)
    assert registry_reads("saccadic_transformer", model_args={"periphery": "polo"}).total == 2 * (768 + FOVEA)


def _result(clutter=0.75, reads=True):
    """A tiny synthetic `whatwhere benchmark` result: a pixel model, an agent after 0 and 1
    saccades (and its stopping rule), and a glimpse model that took 2 then 1 glimpses."""

    def rec(model, s, c, e, acc, **kw):
        return {
            "model": model,
            "saccades": s,
            "contrast": c,
            "eccentricity": e,
            "accuracy": acc,
            "correct": int(acc * 100),
            "total": 100,
            "ci95": [acc - 0.05, acc + 0.05],
            **kw,
        }

    records = []
    for c in (0.7, 0.3):
        for e in (4.44, 40.0):
            records += [
                rec("pix", None, c, e, 0.9 * c),
                rec("ww", 0, c, e, 0.1),
                rec("ww", 1, c, e, 0.6 * c),
                rec("ww", "stop", c, e, 0.5, mean_saccades=0.8),
                rec("gl", None, c, e, 0.8 * c, mean_glimpses=2.0 if c == 0.7 else 1.0),
            ]
    models = {
        "pix": {
            "kind": "model",
            "bandwidth": DISPLAY,
            "published": "stn128",
            "registry_model": "stn128",
            "source": "nowhere/stn128",
        },
        "ww": {"kind": "agent", "saccades": [0, 1], "bandwidth": RETINA, "published": "whatwhere"},
        "gl": {
            "kind": "model",
            "bandwidth": RETINA,
            "published": "saccadic_transformer",
            "registry_model": "saccadic_transformer",
            "mean_glimpses": 1.5,
        },
    }
    if reads:
        models["pix"]["reads"] = [
            {"saccades": None, "glimpses": 1.0, "codes": 0.0, "pixels": DISPLAY, "total": DISPLAY, "formula": "16384"}
        ]
        models["ww"]["reads"] = [
            {
                "saccades": k,
                "glimpses": k + 1.0,
                "codes": k * RETINA,
                "pixels": FOVEA,
                "total": k * RETINA + FOVEA,
                "formula": f"{k} × {RETINA} + {FOVEA}" if k else "784",
            }
            for k in (0, 1)
        ]
        models["gl"]["reads"] = [
            {
                "saccades": None,
                "glimpses": 1.5,
                "codes": 1.5 * RETINA,
                "pixels": 1.5 * FOVEA,
                "total": 1.5 * (RETINA + FOVEA),
                "formula": f"1.5 × ({RETINA} + {FOVEA})",
            }
        ]
    return {
        "records": records,
        "models": models,
        "contrasts": [0.7, 0.3],
        "eccentricities": [4.44, 40.0],
        "display": {"preset": "dabane2021", "size": 128, "clutter": clutter},
        "n_digits": 100,
    }


def test_tradeoff_points_of_a_result():
    res = _result()
    pts = tradeoff_points(res, result_reads(res), source="r.json")
    assert len(pts) == 2 * 4  # 2 contrasts x (pix, ww 0, ww 1, gl); the stopping rule is left out
    by = {(p["label"], p["contrast"]): p for p in pts}
    assert by[("pix", 0.7)]["numbers_read"] == DISPLAY and by[("pix", 0.7)]["accuracy"] == pytest.approx(0.63)
    assert by[("ww, 1 saccade", 0.3)]["numbers_read"] == RETINA + FOVEA
    assert by[("ww, 0 saccades", 0.3)]["numbers_read"] == FOVEA
    # the glimpse model reads in proportion to the glimpses it took in the cell
    assert by[("gl", 0.7)]["numbers_read"] == 2 * (RETINA + FOVEA) and by[("gl", 0.7)]["formula"].startswith("2 × ")
    assert by[("gl", 0.3)]["numbers_read"] == RETINA + FOVEA and by[("gl", 0.3)]["glimpses"] == 1.0
    assert all(p["eccentricity"] == 40.0 and not p["published"] and p["source"] == "r.json" for p in pts)
    assert {p["accuracy"] for p in tradeoff_points(res, result_reads(res), eccentricity=4.44)} >= {0.1}
    with pytest.raises(ValueError, match="not in the result's grid"):
        tradeoff_points(res, result_reads(res), eccentricity=20)


def test_result_reads_rebuilt_from_the_architecture():
    """A result without recorded counts: each model rebuilt from its weights' metadata (a zoo
    model here), else from its registry defaults; a rebuilt model of another bandwidth refused."""
    res = _result(reads=False)
    res["records"] = [r for r in res["records"] if r["model"] != "gl"]
    res["models"].pop("gl")
    res["models"]["polo"] = {"kind": "model", "bandwidth": 768, "source": "polo_atn", "registry_model": "polo_atn"}
    res["records"].append(
        {"model": "polo", "saccades": None, "contrast": 0.7, "eccentricity": 40.0, "accuracy": 0.3, "ci95": [0.2, 0.4]}
    )
    rd = result_reads(res)
    assert rd["polo"]["rows"][None]["total"] == 768 + FOVEA and rd["polo"]["how"] == "the architecture of polo_atn"
    assert rd["pix"]["rows"][None]["total"] == DISPLAY and rd["pix"]["how"].startswith("registry defaults of stn128")
    assert rd["ww"]["rows"][1]["total"] == RETINA + FOVEA and rd["ww"]["how"].startswith("registry defaults of where")
    res["models"]["polo"]["bandwidth"] = 2560
    with pytest.raises(ValueError, match="recorded 2560"):
        result_reads(res)


def test_published_models_not_benchmarked():
    res = _result()
    assert published_candidates([res]) == [
        ("atn", None),
        ("polo_atn", None),
        ("polo_atn85", None),
        ("conv_polo_atn", None),
    ]
    assert published_candidates([_result(clutter=1.0)]) == []  # What/Where was benchmarked
    assert published_candidates([_result(), _result(clutter=1.0)]) == []  # mixed displays: none
    pts = published_points({("atn", None): Reads(1.0, 0.0, DISPLAY, "16384")}, [0.7, 0.5, 0.3], 40.0)
    assert [(p["contrast"], p["accuracy"]) for p in pts] == [(0.7, 0.9456), (0.5, 0.9264), (0.3, 0.6111)]
    assert all(p["published"] and p["ci95"] is None and p["label"] == "atn (published)" for p in pts)
    ww = published_points({("whatwhere", 2): Reads(3.0, 2 * RETINA, FOVEA, "")}, [0.7], 40.0)
    assert ww[0]["accuracy"] == 0.703 and ww[0]["label"] == "whatwhere, 2 saccades (published)"
    assert published_points({("atn", None): Reads(1.0, 0.0, DISPLAY, "")}, [0.7], 20.0) == []  # not published there


def test_figure_and_table_of_a_synthetic_result(tmp_path):
    from whatwhere.viz import tradeoff_figure

    res = _result()
    pts = tradeoff_points(res, result_reads(res), source="r.json")
    pts += published_points({("atn", None): Reads(1.0, 0.0, DISPLAY, "16384")}, [0.7, 0.3], 40.0)
    for suffix in (".png", ".pdf"):
        assert tradeoff_figure(pts, tmp_path / f"t{suffix}").stat().st_size > 5_000
    md = tradeoff_markdown(pts, command="whatwhere figures tradeoff r.json --out t.png")
    assert "`whatwhere figures tradeoff r.json --out t.png`" in md
    assert "| ww, 1 saccade | 3,664 | 1 × 2880 + 784 | 0.420 ± 0.050 | 0.180 ± 0.050 |" in md
    assert "| *atn (published)* | 16,384 | 16384 | *0.946* | *0.611* |" in md
    with pytest.raises(ValueError, match="no points"):
        tradeoff_figure([], tmp_path / "none.png")


def test_tradeoff_command(tmp_path, capsys):
    a, b = tmp_path / "a" / "benchmark.json", tmp_path / "b" / "benchmark.json"
    for f, res in ((a, _result()), (b, _result())):
        f.parent.mkdir()
        f.write_text(json.dumps(res))
    out = tmp_path / "fig" / "tradeoff.png"
    assert main(["figures", "tradeoff", str(a), str(b), "--out", str(out), "--no-published"]) == 0
    assert out.stat().st_size > 5_000 and out.with_suffix(".pdf").exists()
    md = out.with_suffix(".md").read_text()
    assert md.count("| ww, 1 saccade |") == 1  # the same model on the same displays: once
    assert f"whatwhere figures tradeoff {a} {b} --out {out} --no-published" in md and "published)" not in md
    other = _result(clutter=1.0)
    b.write_text(json.dumps(other))
    assert main(["figures", "tradeoff", str(a), str(b), "--out", str(out)]) == 2
    assert "other displays" in capsys.readouterr().err
    # a file written before a display parameter existed: the same displays when the new one holds its default
    newer = _result()
    b.write_text(json.dumps({**newer, "display": {**newer["display"], "crops": 0, "background": "motioncloud"}}))
    assert main(["figures", "tradeoff", str(a), str(b), "--out", str(out), "--no-published"]) == 0
    b.write_text(json.dumps({**newer, "display": {**newer["display"], "crops": 4}}))
    assert main(["figures", "tradeoff", str(a), str(b), "--out", str(out)]) == 2
    assert "other displays" in capsys.readouterr().err
    assert main(["figures", "tradeoff", str(a), "--out", str(tmp_path / "t.pdf")]) == 2
    assert ".png" in capsys.readouterr().err
