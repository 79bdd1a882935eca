"""Recipes: a YAML file -> a validated :class:`Recipe` (dataclasses; defaults = published values).

A recipe names a model, the display preset and overrides, an optimiser and schedule, and a
list of curriculum *stages*.  A stage may list several placement σ values (``sigma: [0, 1, 2]``)
which expands into one stage per value.  ``--set key=value`` overrides use dotted keys
(``optimizer.lr=0.01``, ``stages.*.epochs=1``) and are validated like the file.  A recipe may
carry named ``profiles`` (e.g. ``quick``): sets of overrides for small runs.

**Packaged recipes.**  The published trainings ship with the package (``whatwhere/recipes/``):
:func:`load_recipe` takes a file path or the name of a packaged recipe (``"what"``,
``"where-c0.5"``, ...); :func:`recipe_names` lists them.

**Inheritance.**  ``extends: NAME`` starts from another recipe (a file next to this one, or a
packaged recipe) and deep-merges this file over it: mappings merge key by key, lists and scalars
replace.  ``name`` is never inherited: it defaults to the file's stem.

**Weights and maps from the model zoo.**  ``init`` (start from trained weights) and the Where
objective's ``accuracy_map`` take a path or ``zoo:NAME``, an entry of the checked model zoo
(:mod:`whatwhere.engine.zoo`), so that packaged recipes work from any directory.

Unknown keys and bad values raise :class:`RecipeError` naming the key.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from whatwhere.data.display import DisplayConfig, check_display_keys, preset

__all__ = ["Recipe", "RecipeError", "Stage", "load_recipe", "parse_recipe", "apply_override", "recipe_names",
           "recipe_source", "parse_value", "ensemble_recipe"]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "step", "exponential")


class RecipeError(ValueError):
    """A recipe key is unknown or has a bad value (the message names the key)."""


@dataclass(frozen=True)
class Optimizer:
    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Schedule:
    name: str = "constant"
    step_size: int = 10  # epochs (step)
    gamma: float = 0.1  # step / exponential


@dataclass(frozen=True)
class Stage:
    """One curriculum stage: ``epochs`` epochs with the recipe's display changed by ``display``."""

    epochs: int
    display: DisplayConfig
    name: str = ""
    reset_optimizer: bool = False
    lr: float | None = None  # new learning rate when the optimiser is re-created
    schedule: "Schedule | None" = None  # new schedule when the optimiser is re-created (else the recipe's)


@dataclass(frozen=True)
class Recipe:
    name: str
    model: str
    stages: tuple[Stage, ...]
    source: str = ""
    model_args: dict = field(default_factory=dict)
    objective: str = "classification"
    objective_args: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    batch_size: int = 100
    train_limit: int | None = None  # use only the first N training digits (quick runs)
    eval_digits: int = 10000
    static: bool = False
    precision: str = "fp32"  # fp32 | bf16 (autocast forward, fp32 losses and weights; engine.precision)
    checkpoint_every_s: float = 600.0  # also checkpoint inside an epoch after this many seconds
    init: "str | dict | None" = None  # start from trained weights: a model spec, or {submodule: spec}
    preset: str = "paper"
    optimizer: Optimizer = Optimizer()
    schedule: Schedule = Schedule()
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    profile: str | None = field(default=None, compare=False)  # the profile applied (None: the full recipe)
    overrides: tuple = field(default=(), compare=False)       # the key=value overrides applied, in order

    @property
    def size(self) -> int:
        return self.stages[0].display.size

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages)

    def to_dict(self) -> dict:
        return copy.deepcopy(self.raw)


_TOP_KEYS = {"name", "model", "source", "model_args", "objective", "objective_args", "seed", "device", "batch_size", "train_limit",
             "eval_digits", "static", "precision", "checkpoint_every_s", "init", "preset", "size", "display", "optimizer", "schedule", "stages",
             "profiles"}
_STAGE_KEYS = {"epochs", "display", "name", "reset_optimizer", "lr", "schedule", "sigma", "contrast_range",
               "contrast", "eccentricity"}


def _check_keys(d: dict, allowed: set, where: str) -> None:
    if not isinstance(d, dict):
        raise RecipeError(f"{where} must be a mapping, got {type(d).__name__}")
    unknown = set(d) - allowed
    if unknown:
        raise RecipeError(f"unknown key(s) {', '.join(f'{where}.{k}'.lstrip('.') for k in sorted(unknown))}; "
                          f"allowed: {', '.join(sorted(allowed))}")


def _typed(cls, d: dict, where: str):
    _check_keys(d, {f.name for f in fields(cls)}, where)
    try:
        return cls(**d)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: {exc}") from exc


def _display(base: DisplayConfig, changes: dict, where: str) -> DisplayConfig:
    try:
        check_display_keys(changes, where)
    except ValueError as exc:
        raise RecipeError(str(exc)) from None
    try:
        return base.replace(**changes)
    except (ValueError, TypeError) as exc:
        raise RecipeError(f"{where}: {exc}") from exc


def _check_schedule(sch: Schedule, where: str) -> None:
    if sch.name not in SCHEDULES:
        raise RecipeError(f"{where}.name must be one of {SCHEDULES}, got {sch.name!r}")
    if not (sch.step_size >= 1 and sch.gamma > 0):
        raise RecipeError(f"{where}.step_size must be >= 1 and {where}.gamma > 0")


def parse_recipe(d: dict[str, Any], *, profile: str | None = None, overrides: list[str] = ()) -> Recipe:
    """Validate a recipe mapping (after applying a profile and ``key=value`` overrides)."""
    d = copy.deepcopy(d)
    _check_keys(d, _TOP_KEYS, "")
    if profile is not None:
        profiles = d.get("profiles") or {}
        if profile not in profiles:
            raise RecipeError(f"profile {profile!r} is not defined in this recipe (profiles: {sorted(profiles)})")
        for key, value in profiles[profile].items():
            apply_override(d, key, value)
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        apply_override(d, key.strip(), parse_value(value))
    for key in ("name", "model", "stages"):
        if key not in d:
            raise RecipeError(f"missing required key {key!r}")
    try:
        base = preset(d.get("preset", "paper"), int(d.get("size", 28)))
    except ValueError as exc:
        raise RecipeError(f"preset/size: {exc}") from exc
    base = _display(base, d.get("display") or {}, "display")
    stages: list[Stage] = []
    if not isinstance(d["stages"], list) or not d["stages"]:
        raise RecipeError("stages must be a non-empty list")
    for k, st in enumerate(d["stages"]):
        where = f"stages[{k}]"
        _check_keys(st, _STAGE_KEYS, where)
        if "epochs" not in st or not isinstance(st["epochs"], int) or st["epochs"] < 0:
            raise RecipeError(f"{where}.epochs must be an integer >= 0, got {st.get('epochs')!r}")
        changes = dict(st.get("display") or {})
        for old, new in (("noise", "clutter"),):
            if old in st:
                raise RecipeError(f"{where}.{old} was renamed {where}.display.{new}")
        for short in ("contrast_range", "contrast", "eccentricity"):
            if short in st:
                changes[short] = st[short]
        if "contrast" in changes and "contrast_range" not in changes:
            changes["contrast_range"] = None
        sigmas = st.get("sigma")
        sigmas = sigmas if isinstance(sigmas, list) else [sigmas] if sigmas is not None else [None]
        for j, sigma in enumerate(sigmas):
            ch = dict(changes)
            if sigma is not None:
                ch["sigma"] = sigma
            disp = _display(base, ch, where)
            name = st.get("name") or (f"sigma={sigma:g}" if sigma is not None else f"stage{k}")
            lr = st.get("lr")
            if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
                raise RecipeError(f"{where}.lr must be > 0, got {lr!r}")
            sch = None
            if st.get("schedule") is not None:
                sch = _typed(Schedule, st["schedule"], f"{where}.schedule")
                _check_schedule(sch, f"{where}.schedule")
                if not st.get("reset_optimizer"):
                    raise RecipeError(f"{where}.schedule needs reset_optimizer: true (it applies to the new optimiser)")
            stages.append(Stage(epochs=st["epochs"], display=disp, name=name,
                                reset_optimizer=bool(st.get("reset_optimizer", False)),
                                lr=lr, schedule=sch))
    opt = _typed(Optimizer, d.get("optimizer") or {}, "optimizer")
    if opt.name not in OPTIMIZERS:
        raise RecipeError(f"optimizer.name must be one of {OPTIMIZERS}, got {opt.name!r}")
    if not opt.lr > 0:
        raise RecipeError(f"optimizer.lr must be > 0, got {opt.lr}")
    sch = _typed(Schedule, d.get("schedule") or {}, "schedule")
    _check_schedule(sch, "schedule")
    for key, typ, ok in (("batch_size", int, lambda v: v >= 1), ("eval_digits", int, lambda v: v >= 1),
                         ("seed", int, lambda v: True)):
        v = d.get(key, getattr(Recipe, key, None))
        if not isinstance(v, typ) or not ok(v):
            raise RecipeError(f"{key} must be a positive {typ.__name__}, got {v!r}")
    from whatwhere.engine.precision import PRECISIONS

    if d.get("precision", "fp32") not in PRECISIONS:
        raise RecipeError(f"precision must be one of {', '.join(PRECISIONS)}, got {d.get('precision')!r}")
    ce = d.get("checkpoint_every_s", 600.0)
    if isinstance(ce, bool) or not isinstance(ce, (int, float)) or not ce > 0:
        raise RecipeError(f"checkpoint_every_s must be a number of seconds > 0, got {ce!r}")
    tl = d.get("train_limit")
    if tl is not None and (not isinstance(tl, int) or tl < 1):
        raise RecipeError(f"train_limit must be a positive integer or null, got {tl!r}")
    init = d.get("init")
    if isinstance(init, dict):
        bad = {k: v for k, v in init.items() if not isinstance(k, str) or not isinstance(v, str) or not v}
        if bad or not init:
            raise RecipeError(f"init as a mapping must map submodule names to model specs, got {init!r}")
    elif init is not None and (not isinstance(init, str) or not init):
        raise RecipeError(f"init must be a model spec (run directory, weights file, zoo:NAME) or a mapping "
                          f"{{submodule: spec}}, got {init!r}")
    if d.get("device", "auto") not in ("auto", "cpu", "cuda") and not str(d.get("device")).startswith("cuda:"):
        raise RecipeError(f"device must be auto, cpu or cuda, got {d.get('device')!r}")
    from whatwhere.models.registry import MODELS  # late import: models know nothing of recipes

    if d["model"] not in MODELS:
        raise RecipeError(f"model must be one of {sorted(MODELS)}, got {d['model']!r}")
    resolved = {k: v for k, v in d.items() if k != "profiles"}
    return Recipe(name=str(d["name"]), model=d["model"], stages=tuple(stages), source=str(d.get("source", "")),
                  model_args=dict(d.get("model_args") or {}), objective=str(d.get("objective", "classification")),
                  objective_args=dict(d.get("objective_args") or {}), seed=d.get("seed", 0),
                  device=d.get("device", "auto"), batch_size=d.get("batch_size", 100), train_limit=tl,
                  eval_digits=d.get("eval_digits", 10000), static=bool(d.get("static", False)), init=init,
                  precision=d.get("precision", "fp32"), checkpoint_every_s=float(ce),
                  preset=d.get("preset", "paper"), optimizer=opt, schedule=sch, raw=resolved,
                  profile=profile, overrides=tuple(overrides))


def parse_value(text: str) -> Any:
    """A command-line value: YAML, except that numbers YAML 1.1 reads as text (``1e-3``) are numbers."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_override(d: dict, key: str, value: Any) -> None:
    """Set a dotted ``key`` in a nested mapping; ``*`` in a list position means every element."""
    parts = key.split(".")

    def rec(node, i):
        p = parts[i]
        last = i == len(parts) - 1
        if isinstance(node, list):
            if p == "*":
                targets = range(len(node))
            else:
                try:
                    targets = [int(p)]
                    node[targets[0]]
                except (ValueError, IndexError):
                    raise RecipeError(f"override {key!r}: bad list index {p!r}") from None
            for t in targets:
                if last:
                    node[t] = value
                else:
                    rec(node[t], i + 1)
            return
        if not isinstance(node, dict):
            raise RecipeError(f"override {key!r}: {'.'.join(parts[:i])} is not a mapping")
        if last:
            node[p] = value
        else:
            rec(node.setdefault(p, {}), i + 1)

    rec(d, 0)


def _packaged_dir() -> Path:
    from importlib.resources import files

    return Path(str(files("whatwhere") / "recipes"))


def recipe_names() -> list[str]:
    """Names of the packaged recipes (``whatwhere/recipes/*.yaml``)."""
    return sorted(p.stem for p in _packaged_dir().glob("*.yaml"))


def recipe_source(spec: str | Path) -> Path:
    """The YAML file of a recipe given as a path or a packaged name.

    Raises:
        RecipeError: neither an existing file nor a packaged recipe (the message lists them).
    """
    p = Path(spec)
    if p.is_file():
        return p
    if p.suffix not in (".yaml", ".yml") and p.name == str(spec):
        packaged = _packaged_dir() / f"{spec}.yaml"
        if packaged.is_file():
            return packaged
    raise RecipeError(f"recipe {str(spec)!r} is neither a file nor a packaged recipe; packaged: "
                      f"{', '.join(recipe_names())}")


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_recipe(spec: str | Path, _chain: tuple = ()) -> dict:
    """The recipe mapping of a file or packaged name, with ``extends`` resolved (not validated)."""
    path = recipe_source(spec)
    key = str(path.resolve())
    if key in _chain:
        raise RecipeError(f"recipe {path} extends itself (through {' -> '.join(_chain)})")
    with open(path) as fh:
        d = yaml.safe_load(fh) or {}
    if not isinstance(d, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping, got {type(d).__name__}")
    parent = d.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str) or not parent:
            raise RecipeError(f"{path}: extends must be a recipe name or file, got {parent!r}")
        sibling = path.parent / (parent if parent.endswith((".yaml", ".yml")) else f"{parent}.yaml")
        base = read_recipe(sibling if sibling.is_file() else parent, (*_chain, key))
        base.pop("name", None)  # the name is never inherited
        d = _merge(base, d)
    d.setdefault("name", path.stem)
    return d


def ensemble_recipe(d: dict, n: int) -> dict:
    """The recipe mapping that trains ``n`` seeds of ``d``'s model in one process
    (:class:`~whatwhere.models.ensemble.Ensemble`), each member seeing as many displays and
    optimiser steps as a run of ``d``: the batch and the epochs are multiplied by ``n`` (every
    batch is split among the members), and so are step-schedule periods."""
    if not isinstance(n, int) or n < 2:
        raise RecipeError(f"an ensemble needs at least 2 members, got {n!r}")
    if d.get("objective", "classification") in ("saccadic", "ensemble"):
        raise RecipeError(f"objective {d.get('objective')!r} cannot be trained as an ensemble")
    e = copy.deepcopy(d)
    e["model"] = "ensemble"
    e["model_args"] = {"member": d["model"], "n": n, "member_args": dict(d.get("model_args") or {})}
    e["objective"] = "ensemble"
    e["objective_args"] = {"member_objective": d.get("objective", "classification"), **(d.get("objective_args") or {})}
    e["batch_size"] = int(d.get("batch_size", 100)) * n
    for st in e["stages"]:
        st["epochs"] = int(st["epochs"]) * n
        if isinstance(st.get("schedule"), dict) and "step_size" in st["schedule"]:
            st["schedule"]["step_size"] = int(st["schedule"]["step_size"]) * n
    if isinstance(e.get("schedule"), dict) and "step_size" in e["schedule"]:
        e["schedule"]["step_size"] = int(e["schedule"]["step_size"]) * n
    if e.get("init") is not None:
        raise RecipeError("init is not supported for ensembles")
    e["name"] = f"{d['name']}-ensemble{n}"
    e.pop("profiles", None)
    return e


def load_recipe(spec: str | Path, *, profile: str | None = None, overrides: list[str] = ()) -> Recipe:
    """Load and validate a recipe: a YAML file or the name of a packaged recipe."""
    return parse_recipe(read_recipe(spec), profile=profile, overrides=overrides)
