"""The unified benchmark: every model on exactly the same displays, per contrast × eccentricity.

``whatwhere benchmark MODEL... --out DIR`` (or :func:`benchmark` from Python) evaluates any mix of

* trained models (a run directory, a weights file or a model-zoo name): STN-128, ATN, the POLO
  models, the 28×28 What net or STN-28 (those classify the central 28×28 fovea), any registered
  user model;
* the What/Where agent: pass its Where run directories (one per contrast, as the paper); they are
  grouped into one entry whose What net is the one their recipe's accuracy map came from (or
  ``--what``), reported after 0, 1, 2 … saccades (``--saccades``);
* from Python, any ``nn.Module`` with the common interface ``model(images (B, 128, 128)) ->
  logits (B, 10)``, or an object with ``run``/``run_until_confident`` like
  :class:`whatwhere.models.Agent`.

Displays: for each (contrast, eccentricity) cell, the first ``n_digits`` digits of a seeded
permutation of MNIST-test, each at exactly that eccentricity (random azimuth), fixed contrast
(the study's ``flexible=False``), the chosen preset's clutter.  The set is a pure function of
``seed`` and every model sees each batch in turn, so the comparison is paired.

Per cell the records give accuracy with a Wilson 95 % interval; for models that place a glimpse
(anything with ``localise``) and for the agent (its final fixation) also the *hit rate*: the
fraction of glimpse centres within ``hit_px`` of the digit.  Per model: input *bandwidth* (the
numbers the localiser / Where pathway sees: 16,384 pixels for STN-128/ATN, 768 or 2,560 code
coefficients for the POLO models, 2,880 retina coefficients for What/Where), trainable
parameters, the numbers read per decision (:func:`reads_of`: codes plus glimpse pixels over the
glimpses taken), inference throughput (displays/s, display generation excluded) and the θ spread
across inputs (≈ 0 means the localiser collapsed to one transform).

Reports: :mod:`whatwhere.eval.reports` writes ``benchmark.json`` (records, per-model summary,
provenance) and ``benchmark.md`` (one table per contrast, the published values beside ours where
they exist); :func:`whatwhere.viz.benchmark_figure` draws ``benchmark.png``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from whatwhere.data import DisplaySet, mnist, preset
from whatwhere.engine.checkpoints import (
    count_parameters,
    load,
    origin_of,
    read_meta,
    recipe_of,
    split_spec,
    weights_path,
)
from whatwhere.eval.diagnostics import code_r2 as ridge_code_r2
from whatwhere.eval.diagnostics import localiser_input
from whatwhere.eval.metrics import wilson
from whatwhere.eval.protocols import ECCENTRICITIES
from whatwhere.models.agent import Agent
from whatwhere.models.interface import is_glimpse_model, is_saccadic
from whatwhere.ops.sampling import FOVEA, fovea, glimpse_centre

if TYPE_CHECKING:
    from whatwhere.retina import Retina

__all__ = ["Entry", "benchmark", "entries_from_runs", "bandwidth_of", "Reads", "reads_of", "numbers_read"]


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
    model: Any  # an nn.Module, an agent, a {contrast: agent} mapping (or any callable classifier)
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


is_agent = is_saccadic


def _parameters(m) -> int:
    """Parameters, trained or frozen (an agent: its What and Where networks); 0 for non-modules."""
    return count_parameters(m) if isinstance(m, torch.nn.Module) else 0


def bandwidth_of(m) -> int | None:
    """Numbers the localiser / Where pathway of ``m`` sees per display (its ``bandwidth``
    attribute: the retina size for an agent), None when unknown."""
    b = getattr(m, "bandwidth", None)
    return None if b is None else int(b)


def _to_entry(name: str, m) -> Entry:
    if isinstance(m, Entry):
        return m
    first = next(iter(m.values())) if isinstance(m, Mapping) else m
    agent = is_agent(first)
    return Entry(name=name, model=m, saccades=(0, 1, 2) if agent else None, bandwidth=bandwidth_of(first))


class _Moments:
    """Running mean and variance of rows ``(B, D)`` fed batch by batch (Chan et al.'s pairwise
    update, float64 on the CPU): the benchmark's memory does not grow with the number of digits.

    Attributes:
        n: rows seen.
        mean: ``(D,)`` float64 (None before the first batch).
        m2: ``(D,)`` float64, the sum of squared deviations from ``mean``.
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, x: torch.Tensor) -> None:
        """Add the rows of ``x`` ``(B, D)``."""
        x = x.detach().to("cpu", torch.float64)
        nb = x.shape[0]
        if nb == 0:
            return
        mb = x.mean(0)
        m2b = (x - mb).square().sum(0)
        if self.n == 0:
            self.n, self.mean, self.m2 = nb, mb, m2b
            return
        assert self.mean is not None and self.m2 is not None  # set by the first batch
        n = self.n + nb
        delta = mb - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2b + delta.square() * (self.n * nb / n)
        self.n = n

    def std(self) -> torch.Tensor:
        """``(D,)`` the sample standard deviation (Bessel-corrected, as ``torch.std``; NaN for one row)."""
        assert self.m2 is not None, "no rows yet"
        return (self.m2 / (self.n - 1)).sqrt() if self.n > 1 else torch.full_like(self.m2, float("nan"))


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


@torch.no_grad()
def _classify(m, images: torch.Tensor):
    """logits (B, 10) and, for glimpse models, the glimpse centre (B, 2) px, θ (B, 2, 3) and, for
    models that report it (``forward_trace``), the glimpses taken (B,)."""
    if getattr(m, "input_size", 128) == 28:
        x = fovea(images, torch.zeros(len(images), 2, dtype=torch.int64, device=images.device))
        return m(x), None, None, None
    if not is_glimpse_model(m):
        return m(images), None, None, None
    n_glimpses = None
    if callable(getattr(m, "forward_trace", None)):
        tr = m.forward_trace(images)
        logits, theta, n_glimpses = tr.logits, tr.theta, tr.n_glimpses
    else:
        logits, theta = m.forward_with_theta(images)  # one localiser pass for the answer and the diagnostics
    out = getattr(m, "out_size", images.shape[-1])
    return logits, glimpse_centre(theta, images.shape[-1], out_size=out), theta, n_glimpses


@dataclass
class _Costs:
    """What the benchmark accumulates per model across cells, beside the accuracy records.

    Attributes:
        seconds: inference time (display generation and each model's first call excluded).
        seen: displays classified.
        thetas: running moments of θ (its spread across inputs), nothing kept per display.
        warm: ``id`` of the models already called once (their retina/colliculus caches built).
    """

    seconds: dict[str, float]
    seen: dict[str, int]
    thetas: dict[str, _Moments]
    warm: set[int] = field(default_factory=set)


def _warm_up(e: Entry, m, images: torch.Tensor, warm: set[int]) -> None:
    """Run a model once on two displays before its first timed batch: its first call builds the
    retina/colliculus caches, which must stay out of the throughput."""
    if id(m) in warm:
        return
    warm.add(id(m))
    if is_agent(m):
        assert e.saccades  # an agent's entry always has saccade counts
        m.run(images[:2], max(e.saccades))
    else:
        _classify(m, images[:2])


def _prepare_entries(models) -> list[Entry]:
    """``models`` (a mapping or a list of :class:`Entry`) as entries in table order, names unique."""
    entries = list(models) if not isinstance(models, Mapping) else [_to_entry(k, v) for k, v in models.items()]
    if not entries:
        raise ValueError("nothing to benchmark")
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names}")
    return entries


def _check_grid(contrasts, eccentricities) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The grid as tuples of floats; at least one of each, contrasts in (0, 1]."""
    contrasts = tuple(float(c) for c in contrasts)
    eccentricities = tuple(float(e) for e in eccentricities)
    if not contrasts or not eccentricities:
        raise ValueError("need at least one contrast and one eccentricity")
    for c in contrasts:
        if not 0 < c <= 1:
            raise ValueError(f"contrast must be in (0, 1], got {c}")
    return contrasts, eccentricities


def _ready(entries: list[Entry], dev: torch.device, first_contrast: float) -> None:
    """Every module on ``dev`` in eval mode; an agent without saccade counts reports 0, 1, 2."""
    for e in entries:
        for m in e.modules():
            if isinstance(m, torch.nn.Module):
                m.to(dev).eval()
        if is_agent(e.for_contrast(first_contrast)) and not e.saccades:
            e.saccades = (0, 1, 2)


def _tally_agent(e: Entry, m, d, offsets: torch.Tensor, tally: dict, *, hit_px: float, stopping_rule: bool) -> None:
    """One batch through an agent: correct answers and fixation hits after each reported saccade
    count (one run of the largest), and with ``stopping_rule`` the stopping rule's answers and
    saccades.  ``tally[(name, saccades)]`` is ``[correct, total, hits]``, ``tally[(name, "stop")]``
    ``[correct, total, 0, saccades made]``."""
    assert e.saccades  # an agent's entry always has saccade counts (_ready)
    K = max(e.saccades)
    tr = m.run(d.images, K)
    ok = tr.predictions == d.labels[:, None]
    err = (tr.fixations[:, -1].to(torch.float32) - offsets).norm(dim=1)
    hits = int((err <= hit_px).sum())
    for s in e.saccades:
        t = tally.setdefault((e.name, s), [0, 0, 0])
        t[0] += int(ok[:, s].sum())
        t[1] += len(d)
        t[2] += hits if s == K else int(((tr.fixations[:, s].to(torch.float32) - offsets).norm(dim=1) <= hit_px).sum())
    if stopping_rule:
        st = m.run_until_confident(d.images, K)
        t = tally.setdefault((e.name, "stop"), [0, 0, 0, 0])
        t[0] += int((st.final_predictions == d.labels).sum())
        t[1] += len(d)
        t[3] += int(st.n_saccades.sum())


def _tally_model(e: Entry, m, d, offsets: torch.Tensor, tally: dict, *, hit_px: float, thetas: _Moments) -> None:
    """One batch through a classifier: correct answers, glimpses taken (models that report them)
    and, for glimpse models, glimpse hits (``-1``: no glimpse) and θ into ``thetas``.
    ``tally[(name, None)]`` is ``[correct, total, hits, glimpses]``."""
    logits, centre, theta, n_glimpses = _classify(m, d.images)
    t = tally.setdefault((e.name, None), [0, 0, 0, 0])
    if n_glimpses is not None:
        t[3] += int(n_glimpses.sum())
    t[0] += int((logits.argmax(-1) == d.labels).sum())
    t[1] += len(d)
    if centre is None:
        t[2] = -1
    else:
        t[2] += int(((centre.to(torch.float32) - offsets).norm(dim=1) <= hit_px).sum())
        thetas.update(theta.reshape(len(d), -1))


def _cell(
    entries: list[Entry],
    ds: DisplaySet,
    c: float,
    *,
    n: int,
    batch: int,
    dev: torch.device,
    hit_px: float,
    stopping_rule: bool,
    costs: _Costs,
) -> dict[tuple, list[int]]:
    """Every entry on the displays of one (contrast ``c``, eccentricity) cell, batch by batch (each
    batch seen by every model in turn: a paired comparison), timed into ``costs``.  Returns the
    tallies by ``(model, saccades)``."""
    tally: dict[tuple, list[int]] = {}
    for d in ds.epoch(0, batch, limit=n):
        offsets = d.offsets.to(torch.float32)
        for e in entries:
            m = e.for_contrast(c)
            _warm_up(e, m, d.images, costs.warm)
            _sync(dev)
            t0 = time.perf_counter()
            if is_agent(m):
                _tally_agent(e, m, d, offsets, tally, hit_px=hit_px, stopping_rule=stopping_rule)
            else:
                _tally_model(e, m, d, offsets, tally, hit_px=hit_px, thetas=costs.thetas[e.name])
            _sync(dev)
            costs.seconds[e.name] += time.perf_counter() - t0
            costs.seen[e.name] += len(d)
    return tally


def _cell_records(tally: dict[tuple, list[int]], c: float, ecc: float) -> list[dict]:
    """The records of one cell: accuracy with its Wilson interval, and the hit rate, mean
    saccades (stopping rule) or mean glimpses where they apply."""
    records = []
    for (name, s), t in tally.items():
        rec = {
            "model": name,
            "saccades": s,
            "contrast": c,
            "eccentricity": ecc,
            "correct": t[0],
            "total": t[1],
            "accuracy": t[0] / t[1],
            "ci95": list(wilson(t[0], t[1])),
        }
        if s != "stop" and t[2] >= 0:
            rec["hit_rate"] = t[2] / t[1]
        if s == "stop":
            rec["mean_saccades"] = t[3] / t[1]
        elif s is None and t[3] > 0:
            rec["mean_glimpses"] = t[3] / t[1]
        records.append(rec)
    return records


def _summarise(
    e: Entry,
    records: list[dict],
    costs: _Costs,
    *,
    contrasts: tuple[float, ...],
    code_r2: bool,
    preset_name: str,
    overrides: dict,
    seed: int,
    dev: torch.device,
    mnist_dir,
) -> dict:
    """The per-model summary: parameters, bandwidth, throughput, kind, θ spread, mean glimpses,
    the numbers read per decision (``reads``: one row per reported saccade count, :func:`reads_of`
    as a dict plus ``saccades``; the mean glimpses taken for a glimpse model), the hit rate over
    all cells (after the most saccades for an agent) and, with ``code_r2``, the code R² of its
    localiser's input."""
    first = e.for_contrast(contrasts[0])
    info = {
        "params": _parameters(first),
        "bandwidth": e.bandwidth,
        "throughput": costs.seen[e.name] / costs.seconds[e.name] if costs.seconds[e.name] > 0 else None,
        "kind": "agent" if is_agent(first) else "model",
        "saccades": list(e.saccades or []),
        "published": e.published,
        "source": e.source,
        **e.notes,
    }
    if is_agent(first):
        assert e.saccades  # an agent's entry always has saccade counts (_ready)
        info["throughput_note"] = f"displays/s for the whole loop of {max(e.saccades)} saccades"
    thetas = costs.thetas[e.name]
    if thetas.n:
        assert thetas.mean is not None  # set by the first batch
        info["theta_spread"] = float(thetas.std().mean())
        info["theta_mean"] = thetas.mean.tolist()
    counted = [r for r in records if r["model"] == e.name and "mean_glimpses" in r]
    if counted:
        info["mean_glimpses"] = sum(r["mean_glimpses"] * r["total"] for r in counted) / sum(r["total"] for r in counted)
    counts: tuple[int | None, ...] = tuple(e.saccades or (0,)) if is_agent(first) else (None,)
    info["reads"] = [
        {"saccades": s, **reads_of(first, 128, saccades=s, glimpses=info.get("mean_glimpses")).as_dict()}
        for s in counts
    ]
    rows = [r for r in records if r["model"] == e.name and "hit_rate" in r]
    if rows:
        last = [r for r in rows if r["saccades"] in (None, max(e.saccades or [0]))]
        info["hit_rate"] = sum(r["hit_rate"] * r["total"] for r in last) / sum(r["total"] for r in last)
    if code_r2 and localiser_input(first) is not None and getattr(first, "input_size", 128) != 28:
        cfg_r2 = preset(preset_name, 128, **overrides).replace(
            contrast=contrasts[0], placement="polar", sigma=40.0, clip=40.0
        )
        r2 = ridge_code_r2(first, cfg_r2, seed=seed, device=dev, mnist_dir=mnist_dir)
        info["code_r2"] = r2["r2"]
    return info


@torch.no_grad()
def benchmark(
    models,
    *,
    contrasts=(0.7, 0.5, 0.3),
    eccentricities=ECCENTRICITIES,
    n_digits: int = 1000,
    seed: int = 0,
    preset_name: str = "dabane2021",
    clutter: float | None = None,
    device="cpu",
    batch: int | None = None,
    hit_px: float = 5.0,
    stopping_rule: bool = False,
    code_r2: bool = True,
    mnist_dir=None,
    progress: bool = True,
) -> dict:
    """Benchmark several models on the same displays.

    Args:
        models: ``{name: model | agent | {contrast: agent} | Entry}`` (insertion order = table
            order) or a list of :class:`Entry`.
        contrasts, eccentricities: the grid (defaults: 0.7/0.5/0.3 and 4.44 … 40 px).
        n_digits: MNIST-test digits per cell (≤ 10,000).
        seed: the display set (same seed, same displays).
        preset_name / clutter: the 128×128 display (``dabane2021``: clutter 0.75, the STN study's;
            ``paper``: clutter 1.0, the What/Where paper's); ``clutter`` overrides its level.
        hit_px: radius of a glimpse "hit".
        stopping_rule: also report agents with the stopping rule (``saccades == "stop"``).
        code_r2: also report, per model with a localiser input, how much of the digit's offset
            that input explains linearly (:func:`whatwhere.eval.diagnostics.code_r2`, on displays
            of the preset's training placement, radius ``|N(0, 1)| × 40`` clipped at 40 px, at
            the first contrast; 3,000 / 1,000 / 2,000 displays to fit / choose / test, as
            ``whatwhere diagnose code``).

    Returns:
        ``{"records": [...], "models": {name: summary}, "display": {...}, "n_digits": n}``.
        A record: ``{"model", "saccades", "contrast", "eccentricity", "correct", "total",
        "accuracy", "ci95"}`` plus ``"hit_rate"`` for glimpse models and agents.  A summary:
        ``params``, ``bandwidth``, ``throughput``, ``kind``, ``reads`` (numbers read per decision,
        one row per saccade count, :func:`reads_of`), ...
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    entries = _prepare_entries(models)
    contrasts, eccentricities = _check_grid(contrasts, eccentricities)
    dev = torch.device(device)
    batch = int(batch or (2000 if dev.type == "cuda" else 250))
    test = mnist.load("test", mnist_dir)
    n = min(int(n_digits), len(test))
    if n < 1:
        raise ValueError(f"n_digits must be >= 1, got {n_digits}")
    _ready(entries, dev, contrasts[0])
    overrides = {} if clutter is None else {"clutter": float(clutter)}
    records: list[dict] = []
    costs = _Costs(
        seconds={e.name: 0.0 for e in entries},
        seen={e.name: 0 for e in entries},
        thetas={e.name: _Moments() for e in entries},
    )
    cells = [(c, ecc) for c in contrasts for ecc in eccentricities]
    cfg0 = None
    for c, ecc in tqdm(cells, disable=None if progress else True, desc="benchmark", leave=False):
        cfg = preset(preset_name, 128, **overrides).replace(
            contrast=c, placement="eccentricity", eccentricity=ecc, azimuth=None
        )
        cfg0 = cfg0 or cfg
        ds = DisplaySet(test.images, test.labels, cfg, seed=seed, shuffle=True, device=dev)
        tally = _cell(
            entries, ds, c, n=n, batch=batch, dev=dev, hit_px=hit_px, stopping_rule=stopping_rule, costs=costs
        )
        records += _cell_records(tally, c, ecc)
    summary = {
        e.name: _summarise(
            e,
            records,
            costs,
            contrasts=contrasts,
            code_r2=code_r2,
            preset_name=preset_name,
            overrides=overrides,
            seed=seed,
            dev=dev,
            mnist_dir=mnist_dir,
        )
        for e in entries
    }
    assert cfg0 is not None  # _check_grid: at least one cell
    display = {k: v for k, v in asdict(cfg0).items() if k not in ("contrast", "contrast_range", "eccentricity")}
    return {
        "records": records,
        "models": summary,
        "display": {"preset": preset_name, **_jsonable(display)},
        "contrasts": list(contrasts),
        "eccentricities": list(eccentricities),
        "n_digits": n,
        "seed": seed,
        "hit_px": hit_px,
        "benchmark_time_s": round(time.perf_counter() - t_start, 2),
    }


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


# ------------------------------------------------------------------------------------ runs


def _what_of(recipe: dict) -> str | None:
    """The What network whose accuracy map a Where recipe trained against (a zoo name or run)."""
    amap = str((recipe.get("objective_args") or {}).get("accuracy_map") or "zoo:what")
    return amap[len("zoo:") :] if amap.startswith("zoo:") else str(Path(amap).parent)


def entries_from_runs(runs, *, what=None, device="cpu", saccades=(0, 1, 2), names=None) -> list[Entry]:
    """Build benchmark entries from run directories, weights files or model-zoo names.

    Where models are grouped into one ``whatwhere`` entry: each serves the contrast it was
    trained at (others use the nearest).  Its What network is ``what``, or the one whose
    accuracy map the Where recipe trained against.
    """
    entries: list[Entry] = []
    where_nets: dict[float, tuple[str, torch.nn.Module]] = {}
    what_spec = str(what) if what else None
    names = dict(names or {})
    for run in map(str, runs):
        kind = read_meta(weights_path(run))["model"]
        model = load(run, device)
        recipe = recipe_of(run)
        if kind == "where":
            display = recipe.get("display") or {}
            c = float(display.get("contrast", 0.7))
            if c in where_nets:
                raise ValueError(f"two Where networks for contrast {c}: {where_nets[c][0]} and {run}")
            where_nets[c] = (run, model)
            what_spec = what_spec or _what_of(recipe)
            continue
        base, overrides = split_spec(run)
        bracket = f"[{run[len(str(base)) + 1 : -1]}]" if overrides else ""
        name = names.get(run, (Path(base).name if Path(base).is_dir() else Path(base).stem) + bracket)
        entries.append(
            Entry(
                name=name,
                model=model,
                published=kind,
                bandwidth=bandwidth_of(model),
                source=run,
                notes={"registry_model": kind, "origin": origin_of(run)},
            )
        )
    if where_nets:
        what_net = load(what_spec or "what", device)
        first_where = next(iter(where_nets.values()))[1]
        retina = cast("Retina", first_where.retina)  # one retina (and colliculus) serves every agent
        agents = {
            c: Agent(what_net, net, retina=retina).to(device).eval() for c, (_, net) in sorted(where_nets.items())
        }
        first = next(iter(agents.values()))
        entries.append(
            Entry(
                name=names.get("whatwhere", "whatwhere"),
                model=agents,
                saccades=tuple(saccades),
                published="whatwhere",
                bandwidth=bandwidth_of(first),
                source=", ".join(str(p) for p, _ in where_nets.values()),
                notes={
                    "what": str(what_spec or "what"),
                    "origin": {
                        "What": origin_of(what_spec or "what"),
                        **{f"Where at contrast {c:g}": origin_of(p) for c, (p, _) in sorted(where_nets.items())},
                    },
                    "where_by_contrast": {str(c): str(p) for c, (p, _) in where_nets.items()},
                },
            )
        )
    return entries


# ------------------------------------------------------------------- the standard tasks

#: The standard cluttered-MNIST tasks of the attention literature (display presets, black displays).
STANDARD_TASKS = ("ram60-translated", "ram60-cluttered", "ram100-cluttered", "stn-tc")


def eccentricity_bins(N: int, n_bins: int = 5) -> list[float]:
    """Edges ``(n_bins + 1,)`` in px of equal-width bins of the digit's distance from the display
    centre, from 0 to the largest distance of a uniform placement, ``sqrt(2) (N - 28) / 2``
    (rounded up; 22.63 -> 23 px at N = 60, 50.9 -> 51 px at N = 100)."""
    import math

    top = math.ceil(math.sqrt(2.0) * (N - 28) / 2)
    return [round(top * k / n_bins, 6) for k in range(n_bins + 1)]


@dataclass(frozen=True)
class Reads:
    """The numbers a model reads per decision (one display, one answer), :func:`reads_of`.

    Attributes:
        glimpses: fixations or glimpses the answer depends on (1 for a one-pass model, K + 1 for
            an agent after K saccades, the glimpses taken for a glimpse model).
        codes: code coefficients read, all glimpses together: the retina or POLO code a Where
            pathway or code localiser reads (0 for a model that reads pixels only).
        pixels: pixels read from the display, all glimpses together: the fovea or glimpses, or
            the whole display for a model whose localiser or classifier reads it.
        formula: how the total is counted, e.g. ``"2 × 2880 + 784"``.
    """

    glimpses: float
    codes: float
    pixels: float
    formula: str

    @property
    def total(self) -> float:
        """``codes + pixels``."""
        return self.codes + self.pixels

    def as_dict(self) -> dict:
        """``{"glimpses", "codes", "pixels", "total", "formula"}``."""
        return {**asdict(self), "total": self.total}


def reads_of(m, N: int | None = None, *, saccades: int | None = None, glimpses: float | None = None) -> Reads:
    """How many numbers model ``m`` reads from an ``N x N`` display to give one answer.

    The count is of what the model's *sensor* delivers, the numbers the answer depends on: a code
    computed from the display counts its coefficients (as a retina sends its code, not the
    pixels it integrates), a glimpse its pixels; a pixel localiser reads the whole display, and
    a glimpse it then takes resamples pixels already read (not counted again).  Every count
    comes from the model object (``bandwidth``, ``out_size``, ``glimpses``, ...):

    * What/Where agent after ``saccades`` = K saccades (Daucé, Albiges & Perrinet 2020): K + 1
      fixations, K retina codes (``bandwidth``, 2880: one before each saccade) and the 28 x 28
      fovea the answer is read from (What answers from the final fixation alone);
    * glimpse models with a periphery code (the saccadic transformer): per glimpse its
      ``bandwidth`` code + the ``out_size``² glimpse (``glimpses``: the mean number taken, else
      the most its eval mode takes, ``m.test_glimpses`` or ``m.glimpses``);
    * RAM (Mnih et al. 2014): per glimpse ``scales x patch²``;
    * 28 x 28 models (What, STN-28): the central fovea, ``input_size``²;
    * glimpse models whose localiser reads a code (POLO-ATN, convPOLO-ATN; Dabane, Perrinet &
      Daucé 2022): ``bandwidth`` + the ``out_size``² glimpse;
    * any other model (STN-128, ATN, the standard tasks' FC, CNN and ST nets; Jaderberg et al.
      2015): the whole display, ``N``² (``N``: ``m.input_size`` when not given).
    """
    N = int(N if N is not None else getattr(m, "input_size", 128))
    if is_agent(m):
        K = int(saccades or 0)
        code, f = int(m.bandwidth), FOVEA * FOVEA
        return Reads(float(K + 1), float(K * code), float(f), f"{K} × {code} + {f}" if K else f"{f}")
    size = getattr(m, "input_size", N)
    if size == FOVEA:
        return Reads(1.0, 0.0, float(size * size), f"{size * size}")
    if all(hasattr(m, a) for a in ("patch", "scales", "glimpses")):  # RAM
        k, s, p = int(m.glimpses), int(m.scales), int(m.patch)
        return Reads(float(k), 0.0, float(k * s * p * p), f"{k} × {s} × {p}²")
    raw = getattr(m, "bandwidth", None)
    band = None if raw is None else int(raw)
    out = int(getattr(m, "out_size", FOVEA)) ** 2
    if band is not None and hasattr(m, "glimpses") and hasattr(m, "forward_trace"):
        g = float(glimpses if glimpses is not None else getattr(m, "test_glimpses", None) or m.glimpses)
        return Reads(g, g * band, g * out, f"{g:g} × ({band} + {out})")
    if band is not None and band < N * N and is_glimpse_model(m):
        return Reads(1.0, float(band), float(out), f"{band} + {out}")
    return Reads(1.0, 0.0, float(N * N), f"{N * N}")


def numbers_read(m, N: int, saccades: int | None = None, glimpses: float | None = None) -> tuple[float, float]:
    """``(glimpses, numbers read per decision)`` of model ``m`` on ``N x N`` displays
    (:func:`reads_of`)."""
    r = reads_of(m, N, saccades=saccades, glimpses=glimpses)
    return r.glimpses, r.total


class _BinTally:
    """Correct answers, displays and glimpse hits per eccentricity bin, per (model, saccades)."""

    def __init__(self, edges: list[float]):
        self.edges = edges
        self.nb = len(edges) - 1
        self.counts: dict[tuple, list] = {}  # (name, saccades) -> [correct, total, hits or None], each (nb,)

    def add(self, key, ok: torch.Tensor, b: torch.Tensor, hit: torch.Tensor | None) -> None:
        nb = self.nb
        t = self.counts.setdefault(key, [torch.zeros(nb, dtype=torch.int64), torch.zeros(nb, dtype=torch.int64), None])
        t[0] += torch.bincount(b[ok], minlength=nb).cpu()
        t[1] += torch.bincount(b, minlength=nb).cpu()
        if hit is not None:
            t[2] = (t[2] if t[2] is not None else 0) + torch.bincount(b[hit], minlength=nb).cpu()

    def records(self) -> list[dict]:
        """One record per (model, saccades, non-empty bin)."""
        out = []
        for (name, s), (c, t, h) in self.counts.items():
            for k in range(self.nb):
                correct, total = int(c[k]), int(t[k])
                if total == 0:
                    continue
                rec = {
                    "model": name,
                    "saccades": s,
                    "ecc_lo": self.edges[k],
                    "ecc_hi": self.edges[k + 1],
                    "correct": correct,
                    "total": total,
                    "accuracy": correct / total,
                    "ci95": list(wilson(correct, total)),
                }
                if h is not None:
                    rec["hit_rate"] = int(h[k]) / total
                out.append(rec)
        return out


def _task_edges(bins, N: int) -> list[float]:
    """The eccentricity bin edges (default :func:`eccentricity_bins`), checked increasing and >= 0."""
    edges = [float(b) for b in (bins if bins is not None else eccentricity_bins(N))]
    if len(edges) < 2 or any(b >= a for a, b in zip(edges[1:], edges[:-1], strict=True)) or edges[0] < 0:
        raise ValueError(f"bins must be >= 2 increasing edges >= 0 px, got {edges}")
    return edges


def _task_entries(models, task: str, N: int, dev: torch.device) -> list:
    """The benchmark entries on ``dev`` in eval mode, each checked to take ``N`` px (or 28 px) displays;
    an agent without saccade counts reports after 0, 1 and 2."""
    entries = _prepare_entries(models)
    for e in entries:
        for m in e.modules():
            if isinstance(m, torch.nn.Module):
                m.to(dev).eval()
            size = getattr(m, "input_size", N)
            if size not in (N, 28):
                raise ValueError(f"model {e.name!r} takes {size}px displays but task {task!r} has {N}px ones")
        if is_agent(e.for_contrast(1.0)) and not e.saccades:
            e.saccades = (0, 1, 2)
    return entries


def _task_model_summary(e, m, tally: _BinTally, N: int, n: int, seconds: float, glimpses: float) -> dict:
    """A model's summary over all bins (an agent's: at its largest saccade count, and ``by_saccades``)."""
    info = {
        "params": _parameters(m),
        "bandwidth": e.bandwidth,
        "throughput": n / seconds if seconds > 0 else None,
        "kind": "agent" if is_agent(m) else "model",
        "source": e.source,
        **e.notes,
    }
    sacc: tuple[int, ...] = tuple(e.saccades) if is_agent(m) else ()
    keys: tuple[int | None, ...] = sacc if is_agent(m) else (None,)
    per: dict[int | None, dict[str, object]] = {}
    for sk in keys:
        c, t, _ = tally.counts[(e.name, sk)]
        correct, total = int(c.sum()), int(t.sum())
        mean_g = glimpses / total if glimpses > 0 else None
        g, read = numbers_read(m, N, saccades=sk, glimpses=mean_g)
        per[sk] = {
            "error": 1.0 - correct / total,
            "accuracy": correct / total,
            "ci95": list(wilson(correct, total)),
            "correct": correct,
            "total": total,
            "glimpses": g,
            "numbers_read": read,
        }
    info.update(per[max(sacc)] if is_agent(m) else per[None])
    if is_agent(m):
        info["saccades"] = max(sacc)
        info["by_saccades"] = {str(s): v for s, v in per.items()}
    return info


@torch.no_grad()
def benchmark_task(
    models,
    task: str,
    *,
    n_digits: int = 10000,
    seed: int = 0,
    device="cpu",
    batch: int | None = None,
    bins: list[float] | None = None,
    hit_px: float = 5.0,
    mnist_dir=None,
    progress: bool = True,
) -> dict:
    """Every model on the test displays of a standard task (``STANDARD_TASKS``), the papers' way.

    The first ``n_digits`` digits of MNIST-test (all 10,000 by default), one display each with
    the task's own uniform placement and clutter (seed ``seed``): the error rate
    ``1 - accuracy`` over all of them (the papers' metric) and the accuracy per eccentricity bin
    of the digit (distance of its recorded offset from the display centre, :func:`eccentricity_bins`).

    Args:
        models: as :func:`benchmark` (agents report after each count of ``Entry.saccades``).
        task: a display preset of ``STANDARD_TASKS`` (or any preset with a single size).
        bins: eccentricity bin edges in px (default :func:`eccentricity_bins`); the last bin is closed.

    Returns:
        ``{"task", "size", "records": [...], "models": {name: summary}, "eccentricity_bins",
        "n_digits", "seed", "display"}``.  A record: ``{"model", "saccades", "ecc_lo", "ecc_hi",
        "correct", "total", "accuracy", "ci95"}`` (and ``"hit_rate"`` where a glimpse centre
        is known).  A summary: ``error``, ``accuracy``, ``ci95``, ``glimpses``, ``numbers_read``
        (:func:`numbers_read`), ``params``, ``bandwidth``, ``throughput`` (displays/s) and, for
        agents, ``by_saccades`` (the same per saccade count; the top level is the largest).
    """
    from tqdm.auto import tqdm

    from whatwhere.data.display import preset_size

    N = preset_size(task)
    cfg = preset(task, N)
    edges = _task_edges(bins, N)
    dev = torch.device(device)
    batch = int(batch or (2000 if dev.type == "cuda" else 250))
    test = mnist.load("test", mnist_dir)
    n = min(int(n_digits), len(test))
    if n < 1:
        raise ValueError(f"n_digits must be >= 1, got {n_digits}")
    entries = _task_entries(models, task, N, dev)
    ds = DisplaySet(test.images, test.labels, cfg, seed=seed, device=dev)
    edges_t = torch.tensor(edges[1:-1], dtype=torch.float32, device=dev)
    tally = _BinTally(edges)
    seconds = {e.name: 0.0 for e in entries}
    glimpses_taken = {e.name: 0.0 for e in entries}
    warm: set[int] = set()
    for d in tqdm(list(ds.epoch(0, batch, limit=n)), disable=None if progress else True, desc=task, leave=False):
        offsets = d.offsets.to(torch.float32)
        b = torch.bucketize(offsets.norm(dim=1), edges_t, right=True)
        for e in entries:
            m = e.model if not isinstance(e.model, Mapping) else e.for_contrast(1.0)
            _warm_up(e, m, d.images, warm)
            _sync(dev)
            t0 = time.perf_counter()
            if is_agent(m):
                assert e.saccades
                tr = m.run(d.images, max(e.saccades))
                for s in e.saccades:
                    hit = (tr.fixations[:, s].to(torch.float32) - offsets).norm(dim=1) <= hit_px
                    tally.add((e.name, s), tr.predictions[:, s] == d.labels, b, hit)
            else:
                logits, centre, _, n_glimpses = _classify(m, d.images)
                hit = None if centre is None else (centre.to(torch.float32) - offsets).norm(dim=1) <= hit_px
                tally.add((e.name, None), logits.argmax(-1) == d.labels, b, hit)
                if n_glimpses is not None:
                    glimpses_taken[e.name] += float(n_glimpses.sum())
            _sync(dev)
            seconds[e.name] += time.perf_counter() - t0
    summary = {}
    for e in entries:
        m = e.model if not isinstance(e.model, Mapping) else e.for_contrast(1.0)
        summary[e.name] = _task_model_summary(e, m, tally, N, n, seconds[e.name], glimpses_taken[e.name])
    return {
        "task": task,
        "size": N,
        "records": tally.records(),
        "models": summary,
        "eccentricity_bins": edges,
        "n_digits": n,
        "seed": seed,
        "hit_px": hit_px,
        "display": {"preset": task, **_jsonable(asdict(cfg))},
    }


def task_summary(results) -> dict:
    """``{task: {model: {"error", "glimpses", "numbers_read"}}}`` from :func:`benchmark_task`
    results (one result or a list of them)."""
    results = [results] if isinstance(results, Mapping) else list(results)
    out: dict = {}
    for r in results:
        out.setdefault(r["task"], {}).update(
            {
                name: {"error": s["error"], "glimpses": s["glimpses"], "numbers_read": s["numbers_read"]}
                for name, s in r["models"].items()
            }
        )
    return out


def merge_summary(path, summary: dict) -> dict:
    """Merge ``summary`` (:func:`task_summary`) into the JSON file ``path`` (created if missing;
    entries of the same task and model are replaced) and return the merged table."""
    from whatwhere.utils.io import write_text

    p = Path(path)
    merged = json.loads(p.read_text()) if p.exists() else {}
    if not isinstance(merged, dict):
        raise ValueError(f"{p} is not a summary ({{task: {{model: ...}}}})")
    for task, rows in summary.items():
        merged.setdefault(task, {}).update(rows)
    write_text(p, json.dumps(merged, indent=1, sort_keys=True) + "\n")
    return merged


def task_markdown(result: dict) -> str:
    """A markdown table of a :func:`benchmark_task` result: error, glimpses, numbers read, and
    accuracy per eccentricity bin, one row per model (agents: per saccade count)."""
    edges = result["eccentricity_bins"]
    bins = [f"{a:g}-{b:g} px" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    lines = [
        f"### {result['task']} ({result['size']}x{result['size']}, {result['n_digits']} test digits, "
        f"seed {result['seed']})",
        "",
        "| model | error % | glimpses | numbers read | " + " | ".join(bins) + " |",
        "|---|---|---|---|" + "---|" * len(bins),
    ]
    for name, s in result["models"].items():
        rows = (
            [(f"{name} ({k} sacc.)", int(k), v) for k, v in s["by_saccades"].items()]
            if "by_saccades" in s
            else [(name, None, s)]
        )
        for label, sacc, v in rows:
            acc = {
                (r["ecc_lo"], r["ecc_hi"]): r["accuracy"]
                for r in result["records"]
                if r["model"] == name and r["saccades"] == sacc
            }
            cells = [
                f"{100 * acc[(a, b)]:.1f}" if (a, b) in acc else "-" for a, b in zip(edges[:-1], edges[1:], strict=True)
            ]
            lines.append(
                f"| {label} | {100 * v['error']:.2f} | {v['glimpses']:g} | {v['numbers_read']:g} | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join(lines) + "\n"
