"""The unified benchmark: every model on exactly the same displays, per contrast × eccentricity.

``whatwhere benchmark RUN... --out DIR`` (or :func:`benchmark` from Python) evaluates any mix of

* trained runs (a run or results directory with ``model.safetensors``): STN-128, ATN, the POLO
  models, the 28×28 What net or STN-28 (those classify the central 28×28 fovea), any registered
  user model;
* the What/Where agent: pass its Where run directories (one per contrast, as the paper); they are
  grouped into one entry whose What net is the one their recipe's accuracy map came from (or
  ``--what``), reported after 0, 1, 2 … saccades (``--saccades``);
* from Python, any ``nn.Module`` with the common interface ``model(images (B, 128, 128)) ->
  logits (B, 10)``, or an object with ``run``/``run_until_confident`` like
  :class:`whatwhere.agent.Agent`.

Displays: for each (contrast, eccentricity) cell, the first ``n_digits`` digits of a seeded
permutation of MNIST-test, each at exactly that eccentricity (random azimuth), fixed contrast
(the study's ``flexible=False``), the chosen preset's clutter.  The set is a pure function of
``seed`` and every model sees each batch in turn, so the comparison is paired.

Per cell the records give accuracy with a Wilson 95 % interval; for models that place a glimpse
(anything with ``localise``) and for the agent (its final fixation) also the *hit rate*: the
fraction of glimpse centres within ``hit_px`` of the digit.  Per model: input *bandwidth* (the
numbers the localiser / Where pathway sees: 16,384 pixels for STN-128/ATN, 768 or 2,560 code
coefficients for the POLO models, 2,880 retina coefficients for What/Where), trainable
parameters, inference throughput (displays/s, display generation excluded) and the θ spread
across inputs (≈ 0 means the localiser collapsed to one transform).

Outputs: ``benchmark.json`` (records, per-model summary, provenance), ``benchmark.md`` (one table
per contrast, the published values beside ours where they exist) and ``benchmark.png`` (accuracy
vs eccentricity, one panel per contrast, one line per model, published curves dashed).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from whatwhere.data import DisplaySet, mnist, preset
from whatwhere.protocols import ECCENTRICITIES, provenance, wilson, write_json

__all__ = ["Entry", "benchmark", "entries_from_runs", "write_report", "main"]


@dataclass
class Entry:
    """One benchmarked model.

    Attributes:
        name: the row name in tables and figures.
        model: an ``nn.Module`` ``(B, 128, 128) -> (B, 10)`` (``input_size == 28`` models get the
            central 28×28 fovea), an agent, or ``{contrast: agent}`` (one Where net per contrast).
        saccades: for agents, the fixed saccade counts to report (one run of the largest).
        published: key of :data:`whatwhere.published.BENCHMARK` to draw beside it (or None).
        bandwidth: numbers the localiser / Where pathway sees (None: not applicable or unknown).
        source: where it came from (run directory), for the record.
        notes: free text carried into the JSON (e.g. which Where net served which contrast).
    """

    name: str
    model: object
    saccades: tuple[int, ...] | None = None
    published: str | None = None
    bandwidth: int | None = None
    source: str = ""
    notes: dict = field(default_factory=dict)

    def for_contrast(self, c: float):
        if isinstance(self.model, Mapping):
            return self.model[min(self.model, key=lambda k: abs(k - c))]
        return self.model

    def modules(self) -> list:
        return list(self.model.values()) if isinstance(self.model, Mapping) else [self.model]


def is_agent(m) -> bool:
    return callable(getattr(m, "run", None)) and callable(getattr(m, "run_until_confident", None))


def count_parameters(m) -> int:
    """Trainable parameters (an agent: its What and Where networks)."""
    if not isinstance(m, torch.nn.Module):
        return 0
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def bandwidth_of(m) -> int | None:
    """Numbers the localiser / Where pathway of ``m`` sees, from its ``bandwidth`` attribute, or
    the retina size for an agent; None when unknown."""
    if is_agent(m):
        try:
            return int(m.retina("cpu").n_codes)
        except Exception:  # noqa: BLE001 - a user agent without a retina
            return getattr(m, "bandwidth", None)
    b = getattr(m, "bandwidth", None)
    return None if b is None else int(b)


def _to_entry(name: str, m) -> Entry:
    if isinstance(m, Entry):
        return m
    first = next(iter(m.values())) if isinstance(m, Mapping) else m
    agent = is_agent(first)
    return Entry(name=name, model=m, saccades=(0, 1, 2) if agent else None, bandwidth=bandwidth_of(first))


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


@torch.no_grad()
def _classify(m, images: torch.Tensor):
    """logits (B, 10) and, for glimpse models, the glimpse centre (B, 2) px and θ (B, 2, 3)."""
    from whatwhere.agent import fovea
    from whatwhere.models.stn import glimpse_centre

    if getattr(m, "input_size", 128) == 28:
        x = fovea(images, torch.zeros(len(images), 2, dtype=torch.int64, device=images.device))
        return m(x), None, None
    if callable(getattr(m, "forward_with_theta", None)):
        logits, theta = m.forward_with_theta(images)  # one localiser pass for the answer and the diagnostics
    else:
        logits = m(images)
        theta = m.localise(images) if callable(getattr(m, "localise", None)) else None
    if theta is None:
        return logits, None, None
    out = getattr(m, "out_size", images.shape[-1])
    return logits, glimpse_centre(theta, images.shape[-1], out_size=out), theta


@torch.no_grad()
def benchmark(models, *, contrasts=(0.7, 0.5, 0.3), eccentricities=ECCENTRICITIES, n_digits: int = 1000,
              seed: int = 0, preset_name: str = "dabane2021", noise: float | None = None, device="cpu",
              batch: int | None = None, hit_px: float = 5.0, stopping_rule: bool = False,
              mnist_dir=None, progress: bool = True) -> dict:
    """Benchmark several models on the same displays.

    Args:
        models: ``{name: model | agent | {contrast: agent} | Entry}`` (insertion order = table
            order) or a list of :class:`Entry`.
        contrasts, eccentricities: the grid (defaults: 0.7/0.5/0.3 and 4.44 … 40 px).
        n_digits: MNIST-test digits per cell (≤ 10,000).
        seed: the display set (same seed, same displays).
        preset_name / noise: the 128×128 display (``dabane2021``: clutter 0.75, the STN study's;
            ``paper``: clutter 1.0, the What/Where paper's); ``noise`` overrides the clutter.
        hit_px: radius of a glimpse "hit".
        stopping_rule: also report agents with the stopping rule (``saccades == "stop"``).

    Returns:
        ``{"records": [...], "models": {name: summary}, "display": {...}, "n_digits": n}``.
        A record: ``{"model", "saccades", "contrast", "eccentricity", "correct", "total",
        "accuracy", "ci95"}`` plus ``"hit_rate"`` for glimpse models and agents.
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    entries = list(models) if not isinstance(models, Mapping) else [_to_entry(k, v) for k, v in models.items()]
    if not entries:
        raise ValueError("nothing to benchmark")
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names}")
    contrasts = tuple(float(c) for c in contrasts)
    eccentricities = tuple(float(e) for e in eccentricities)
    if not contrasts or not eccentricities:
        raise ValueError("need at least one contrast and one eccentricity")
    for c in contrasts:
        if not 0 < c <= 1:
            raise ValueError(f"contrast must be in (0, 1], got {c}")
    dev = torch.device(device)
    batch = int(batch or (2000 if dev.type == "cuda" else 250))
    test = mnist.load("test", mnist_dir)
    n = min(int(n_digits), len(test))
    if n < 1:
        raise ValueError(f"n_digits must be >= 1, got {n_digits}")
    for e in entries:
        for m in e.modules():
            if isinstance(m, torch.nn.Module):
                m.to(dev).eval()
        if is_agent(e.for_contrast(contrasts[0])) and not e.saccades:
            e.saccades = (0, 1, 2)
    overrides = {} if noise is None else {"noise": float(noise)}
    records: list[dict] = []
    seconds = {e.name: 0.0 for e in entries}
    seen = {e.name: 0 for e in entries}
    thetas: dict[str, list[torch.Tensor]] = {e.name: [] for e in entries}
    cells = [(c, ecc) for c in contrasts for ecc in eccentricities]
    warm: set[int] = set()
    cfg0 = None
    for c, ecc in tqdm(cells, disable=None if progress else True, desc="benchmark", leave=False):
        cfg = preset(preset_name, 128, **overrides).replace(contrast=c, placement="eccentricity",
                                                            eccentricity=ecc, azimuth=None)
        cfg0 = cfg0 or cfg
        ds = DisplaySet(test.images, test.labels, cfg, seed=seed, shuffle=True, device=dev)
        tally: dict[tuple, list[int]] = {}
        for d in ds.epoch(0, batch, limit=n):
            offsets = d.offsets.to(torch.float32)
            for e in entries:
                m = e.for_contrast(c)
                if id(m) not in warm:  # first call builds retina/colliculus caches: keep it out of the timing
                    warm.add(id(m))
                    (m.run(d.images[:2], max(e.saccades)) if is_agent(m) else _classify(m, d.images[:2]))
                _sync(dev)
                t0 = time.perf_counter()
                if is_agent(m):
                    K = max(e.saccades)
                    tr = m.run(d.images, K)
                    ok = tr.predictions == d.labels[:, None]
                    err = (tr.fixations[:, -1].to(torch.float32) - offsets).norm(dim=1)
                    hits = int((err <= hit_px).sum())
                    for s in e.saccades:
                        t = tally.setdefault((e.name, s), [0, 0, 0])
                        t[0] += int(ok[:, s].sum())
                        t[1] += len(d)
                        t[2] += hits if s == K else int(((tr.fixations[:, s].to(torch.float32) - offsets)
                                                         .norm(dim=1) <= hit_px).sum())
                    if stopping_rule:
                        st = m.run_until_confident(d.images, K)
                        t = tally.setdefault((e.name, "stop"), [0, 0, 0, 0])
                        t[0] += int((st.final_predictions == d.labels).sum())
                        t[1] += len(d)
                        t[3] += int(st.n_saccades.sum())
                else:
                    logits, centre, theta = _classify(m, d.images)
                    t = tally.setdefault((e.name, None), [0, 0, 0])
                    t[0] += int((logits.argmax(-1) == d.labels).sum())
                    t[1] += len(d)
                    if centre is None:
                        t[2] = -1
                    else:
                        t[2] += int(((centre.to(torch.float32) - offsets).norm(dim=1) <= hit_px).sum())
                        thetas[e.name].append(theta.reshape(len(d), -1).float().cpu())
                _sync(dev)
                seconds[e.name] += time.perf_counter() - t0
                seen[e.name] += len(d)
        for (name, s), t in tally.items():
            rec = {"model": name, "saccades": s, "contrast": c, "eccentricity": ecc, "correct": t[0],
                   "total": t[1], "accuracy": t[0] / t[1], "ci95": list(wilson(t[0], t[1]))}
            if s != "stop" and t[2] >= 0:
                rec["hit_rate"] = t[2] / t[1]
            if s == "stop":
                rec["mean_saccades"] = t[3] / t[1]
            records.append(rec)
    summary = {}
    for e in entries:
        first = e.for_contrast(contrasts[0])
        info = {"params": count_parameters(first), "bandwidth": e.bandwidth,
                "throughput": seen[e.name] / seconds[e.name] if seconds[e.name] > 0 else None,
                "kind": "agent" if is_agent(first) else "model", "saccades": list(e.saccades or []),
                "published": e.published, "source": e.source, **e.notes}
        if is_agent(first):
            info["throughput_note"] = f"displays/s for the whole loop of {max(e.saccades)} saccades"
        if thetas[e.name]:
            th = torch.cat(thetas[e.name])
            info["theta_spread"] = float(th.std(0).mean())
            info["theta_mean"] = th.mean(0).tolist()
        rows = [r for r in records if r["model"] == e.name and "hit_rate" in r]
        if rows:
            last = [r for r in rows if r["saccades"] in (None, max(e.saccades or [0]))]
            info["hit_rate"] = sum(r["hit_rate"] * r["total"] for r in last) / sum(r["total"] for r in last)
        summary[e.name] = info
    display = {k: v for k, v in asdict(cfg0).items() if k not in ("contrast", "contrast_range", "eccentricity")}
    return {"records": records, "models": summary, "display": {"preset": preset_name, **_jsonable(display)},
            "contrasts": list(contrasts), "eccentricities": list(eccentricities), "n_digits": n, "seed": seed,
            "hit_px": hit_px, "benchmark_time_s": round(time.perf_counter() - t_start, 2)}


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


# ------------------------------------------------------------------------------------ runs


def _read_recipe(run: Path) -> dict:
    p = run / "recipe.yaml"
    return yaml.safe_load(p.read_text()) if p.exists() else {}


def _model_name(run: Path) -> str:
    from safetensors import safe_open

    p = run / "model.safetensors" if run.is_dir() else run
    if not p.exists():
        raise FileNotFoundError(f"{run}: no model.safetensors (train it first, or pass the run's directory)")
    with safe_open(str(p), framework="pt") as fh:
        meta = fh.metadata() or {}
    if "model" not in meta:
        raise ValueError(f"{p}: no model metadata; cannot rebuild the model")
    return json.loads(meta["model"])


def entries_from_runs(runs, *, what=None, device="cpu", saccades=(0, 1, 2), names=None) -> list[Entry]:
    """Build benchmark entries from run/results directories.

    Where runs (model ``where``) are grouped into one ``whatwhere`` entry: each serves the
    contrast it was trained at (others use the nearest).  Its What network is ``what``, or the
    directory of the accuracy map its recipe used.
    """
    from whatwhere.agent import Agent
    from whatwhere.train import load_model

    entries: list[Entry] = []
    where_nets: dict[float, tuple[Path, torch.nn.Module]] = {}
    what_dir = Path(what) if what else None
    names = dict(names or {})
    for run in map(Path, runs):
        if not run.exists():
            raise FileNotFoundError(f"{run} does not exist")
        kind = _model_name(run)
        model = load_model(run, device)
        recipe = _read_recipe(run if run.is_dir() else run.parent)
        if kind == "where":
            c = float((recipe.get("display") or {}).get("contrast", 0.7))
            if c in where_nets:
                raise ValueError(f"two Where networks for contrast {c}: {where_nets[c][0]} and {run}")
            where_nets[c] = (run, model)
            if what_dir is None:
                amap = (recipe.get("objective_args") or {}).get("accuracy_map")
                if amap:
                    what_dir = Path(amap).parent
            continue
        name = names.get(str(run), run.name if run.is_dir() else run.stem)
        entries.append(Entry(name=name, model=model, published=kind, bandwidth=bandwidth_of(model),
                             source=str(run), notes={"registry_model": kind}))
    if where_nets:
        if what_dir is None or not (what_dir / "model.safetensors").exists():
            raise FileNotFoundError(f"the What network for the Where runs was not found ({what_dir}); pass --what")
        what_net = load_model(what_dir, device)
        agents = {c: Agent(what_net, net).to(device).eval() for c, (_, net) in sorted(where_nets.items())}
        first = next(iter(agents.values()))
        entries.append(Entry(name=names.get("whatwhere", "whatwhere"), model=agents, saccades=tuple(saccades),
                             published="whatwhere", bandwidth=bandwidth_of(first),
                             source=", ".join(str(p) for p, _ in where_nets.values()),
                             notes={"what": str(what_dir),
                                    "where_by_contrast": {str(c): str(p) for c, (p, _) in where_nets.items()}}))
    return entries


# ---------------------------------------------------------------------------------- report


def _row_label(name: str, s) -> str:
    if s is None:
        return name
    if s == "stop":
        return f"{name}, stopping rule"
    return f"{name}, {s} saccade" + ("" if s == 1 else "s")


def _series(result: dict):
    """Ordered (model, saccades) pairs as they appear in the records."""
    seen = []
    for r in result["records"]:
        key = (r["model"], r["saccades"])
        if key not in seen:
            seen.append(key)
    return seen


def _published_row(result: dict, model: str, s, c: float):
    from whatwhere.published import published_curve

    key = result["models"].get(model, {}).get("published")
    if key is None:
        return None
    return published_curve(key, c, s, result["eccentricities"])


def _fmt_int(v) -> str:
    return "—" if v is None else f"{int(v):,}"


def _clutter_note(result: dict) -> list[str]:
    """A warning when published values were measured on another clutter level than these displays."""
    noise = result["display"].get("noise")
    keys = {m.get("published") for m in result["models"].values()}
    notes = []
    if "whatwhere" in keys and noise != 1.0:
        notes.append(f"Note: the published What/Where values were measured at clutter 1.0 (the paper's display); "
                     f"these displays have clutter {noise}.")
    if keys & {"stn128", "atn", "polo_atn", "polo_atn85", "conv_polo_atn"} and noise != 0.75:
        notes.append(f"Note: the published transformer values were measured at clutter 0.75; these displays have "
                     f"clutter {noise}.")
    return [*notes, ""] if notes else []


def markdown(result: dict) -> str:
    """The benchmark as Markdown: per-model summary, then one accuracy table per contrast."""
    ecc = result["eccentricities"]
    disp = result["display"]
    lines = [f"Displays: preset `{disp['preset']}` (clutter {disp.get('noise')}), {result['n_digits']} MNIST-test "
             f"digits per cell, seed {result['seed']}; every model saw the same displays. Accuracy with Wilson "
             f"95 % half-width in the mean column; *published* rows are the original studies' values.", "",
             *_clutter_note(result),
             "| model | bandwidth | parameters | displays/s | θ spread | hit rate (≤ "
             f"{result['hit_px']:g} px) |", "|---|---|---|---|---|---|"]
    for name, m in result["models"].items():
        spread = "—" if m.get("theta_spread") is None else f"{m['theta_spread']:.3f}"
        hit = "—" if m.get("hit_rate") is None else f"{m['hit_rate']:.1%}"
        tp = "—" if m.get("throughput") is None else f"{m['throughput']:,.0f}"
        lines.append(f"| {name} | {_fmt_int(m.get('bandwidth'))} | {_fmt_int(m.get('params'))} | {tp} | {spread} | {hit} |")
    for c in result["contrasts"]:
        lines += ["", f"**Contrast {c:g}**", "",
                  "| model | " + " | ".join(f"{e:.2f}" for e in ecc) + " | mean |",
                  "|---|" + "---|" * (len(ecc) + 1)]
        for name, s in _series(result):
            rows = {r["eccentricity"]: r for r in result["records"]
                    if r["model"] == name and r["saccades"] == s and abs(r["contrast"] - c) < 1e-9}
            if not rows:
                continue
            acc = [rows[e]["accuracy"] if e in rows else math.nan for e in ecc]
            tot = sum(rows[e]["total"] for e in ecc if e in rows)
            cor = sum(rows[e]["correct"] for e in ecc if e in rows)
            lo, hi = wilson(cor, tot)
            lines.append(f"| {_row_label(name, s)} | " + " | ".join(f"{a:.3f}" for a in acc)
                         + f" | {cor / tot:.3f} ± {(hi - lo) / 2:.3f} |")
            pub = _published_row(result, name, s, c)
            if pub is not None:
                lines.append(f"| *{_row_label(name, s)}, published* | "
                             + " | ".join("—" if math.isnan(p) else f"*{p:.3f}*" for p in pub)
                             + f" | *{np.nanmean(pub):.3f}* |")
    return "\n".join(lines) + "\n"


def figure(result: dict, out) -> Path:
    """Accuracy vs eccentricity, one panel per contrast, one line (with its 95 % band) per model and
    saccade count; the published curves of the same models dashed in the same colour."""
    from whatwhere.plots import plt, _save

    contrasts = result["contrasts"]
    series = _series(result)
    colors = plt.cm.tab10(np.arange(len(series)) % 10)
    fig, axes = plt.subplots(1, len(contrasts), figsize=(4.4 * len(contrasts), 3.8), squeeze=False, sharey=True)
    for ax, c in zip(axes[0], contrasts):
        for (name, s), col in zip(series, colors):
            rows = sorted((r for r in result["records"] if r["model"] == name and r["saccades"] == s
                           and abs(r["contrast"] - c) < 1e-9), key=lambda r: r["eccentricity"])
            if not rows:
                continue
            e = np.array([r["eccentricity"] for r in rows])
            a = np.array([r["accuracy"] for r in rows])
            ax.plot(e, a, "-o", ms=3, color=col, label=_row_label(name, s))
            ax.fill_between(e, [r["ci95"][0] for r in rows], [r["ci95"][1] for r in rows], color=col, alpha=0.15,
                            lw=0)
            pub = _published_row(result, name, s, c)
            if pub is not None:
                ax.plot(result["eccentricities"], pub, "--", color=col, lw=1)
        ax.axhline(0.1135, color="grey", lw=0.8, ls=":")
        ax.set_ylim(0, 1)
        ax.set_xlabel("eccentricity (px)")
        ax.set_title(f"contrast {c:g}", fontsize=9)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].plot([], [], "k--", lw=1, label="published (same colour)")
    axes[0, -1].legend(fontsize=6.5, loc="lower left")
    return _save(fig, out)


def write_report(result: dict, out, *, command: str | None = None, wall_time_s: float | None = None,
                 device="cpu", figures: bool = True) -> list[Path]:
    """Write ``benchmark.json``, ``benchmark.md`` and (``figures``) ``benchmark.png`` into ``out``.

    ``command`` defaults to this process's command line; ``wall_time_s`` to the benchmark's own time.
    """
    out = Path(out)
    command = command or " ".join([Path(sys.argv[0]).name or "python"] + sys.argv[1:])
    wall_time_s = result.get("benchmark_time_s", 0.0) if wall_time_s is None else wall_time_s
    payload = provenance(model=", ".join(result["models"]), recipe="benchmark", seed=result["seed"],
                         device=device, wall_time_s=wall_time_s, command=command)
    payload.update(result)
    paths = [write_json(out / "benchmark.json", payload)]
    md = out / "benchmark.md"
    md.write_text(f"<!-- {payload['command']} | {payload['hardware']} | {wall_time_s:.0f} s | "
                  f"commit {payload['git_commit']} -->\n" + markdown(result))
    paths.append(md)
    if figures:
        paths.append(figure(result, out / "benchmark.png"))
    return paths


# ------------------------------------------------------------------------------------- CLI


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="whatwhere benchmark")
    p.description = ("Benchmark trained runs side by side on the same displays (accuracy per contrast × "
                     "eccentricity, Wilson 95 % CIs, bandwidth, parameters, throughput, θ/glimpse diagnostics). "
                     "Where runs are grouped into one What/Where agent.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run or results directories (model.safetensors inside)")
    p.add_argument("--out", required=True, help="output directory (benchmark.json, .md, .png)")
    p.add_argument("--contrasts", type=float, nargs="+", default=[0.7, 0.5, 0.3], help="default 0.7 0.5 0.3")
    p.add_argument("--eccentricities", type=float, nargs="+", default=list(ECCENTRICITIES),
                   help="px (default 4.44 … 40, the studies' 9)")
    p.add_argument("--digits", type=int, default=1000, help="MNIST-test digits per cell (default 1000)")
    p.add_argument("--saccades", type=int, nargs="+", default=[0, 1, 2],
                   help="saccade counts reported for What/Where (default 0 1 2)")
    p.add_argument("--stopping-rule", action="store_true", help="also the What/Where stopping rule")
    p.add_argument("--what", help="What run for the Where runs (default: the one their accuracy map came from)")
    p.add_argument("--preset", default="dabane2021", choices=["dabane2021", "paper"],
                   help="display preset: dabane2021 (clutter 0.75, the STN study) or paper (clutter 1.0)")
    p.add_argument("--noise", type=float, help="override the clutter amplitude")
    p.add_argument("--seed", type=int, default=0, help="display seed (default 0)")
    p.add_argument("--hit-px", type=float, default=5.0, help="glimpse hit radius in px (default 5)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a Python module first (one that registers your models); repeatable")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--batch", type=int, help="displays per batch (default 250 on CPU, 2000 on CUDA)")
    p.add_argument("--mnist-dir", help="directory with the MNIST IDX files")
    p.add_argument("--no-figures", action="store_true", help="skip benchmark.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run_cli(a: argparse.Namespace, argv: list[str]) -> int:
    from whatwhere.train import pick_device

    for mod in a.imports:
        importlib.import_module(mod)
    dev = pick_device(a.device)
    t0 = time.perf_counter()
    entries = entries_from_runs(a.runs, what=a.what, device=dev, saccades=tuple(sorted(set(a.saccades))))
    result = benchmark(entries, contrasts=a.contrasts, eccentricities=a.eccentricities, n_digits=a.digits,
                       seed=a.seed, preset_name=a.preset, noise=a.noise, device=dev, batch=a.batch,
                       hit_px=a.hit_px, stopping_rule=a.stopping_rule, mnist_dir=a.mnist_dir,
                       progress=not a.no_progress)
    wall = time.perf_counter() - t0
    for p in write_report(result, a.out, command=" ".join(["whatwhere benchmark"] + argv), wall_time_s=wall,
                          device=dev, figures=not a.no_figures):
        print(f"wrote {p}")
    print(markdown(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_cli(build_parser().parse_args(argv), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
