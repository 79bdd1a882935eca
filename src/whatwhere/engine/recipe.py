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

**Strict.**  Everything is checked before anything is built: an unknown key at any depth (sections,
stages, profiles, ``--set`` keys; ``model_args`` against the model factory's signature,
``objective_args`` against the args the objective registered) and the type of every value, also of
values given as text on the command line.  A problem raises :class:`RecipeError`, one line naming
the key, the nearest valid key (``unknown key 'optimiser' (did you mean 'optimizer'?)``) or the
expected type and the value; a YAML syntax error names the file and the line.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from whatwhere.data.display import PRESETS, RENAMED, DisplayConfig, preset
from whatwhere.utils.validation import did_you_mean, matches, one_line, show_key, show_value, suggest, type_problem

__all__ = [
    "Recipe",
    "RecipeError",
    "Stage",
    "load_recipe",
    "parse_recipe",
    "apply_override",
    "recipe_names",
    "recipe_source",
    "parse_value",
    "ensemble_recipe",
]

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
    #: ``{parameter-name prefix: factor}``: those parameters learn at ``factor`` times the lr (the longest
    #: matching prefix wins; a prefix that names no trainable parameter is an error at training time)
    lr_scale: dict[str, float] | None = None


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
    schedule: Schedule | None = None  # new schedule when the optimiser is re-created (else the recipe's)
    precision: str | None = None  # this stage's precision (else the recipe's): fp32 | bf16

    def precision_in(self, recipe: Recipe) -> str:
        """The precision this stage trains and evaluates in: its own, else the recipe's."""
        return self.precision or recipe.precision


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
    init: str | dict | None = None  # start from trained weights: a model spec, or {submodule: spec}
    preset: str = "paper"
    optimizer: Optimizer = Optimizer()
    schedule: Schedule = Schedule()
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    profile: str | None = field(default=None, compare=False)  # the profile applied (None: the full recipe)
    overrides: tuple = field(default=(), compare=False)  # the key=value overrides applied, in order

    @property
    def size(self) -> int:
        return self.stages[0].display.size

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages)

    def to_dict(self) -> dict:
        return copy.deepcopy(self.raw)


class _Section(dict):
    """The keys of a recipe mapping -> the type hint of each value (or a nested section, or
    ``[section]`` for a list of them); ``renamed``: old key -> message suffix naming the new one."""

    def __init__(self, keys: dict, renamed: dict | None = None) -> None:
        super().__init__(keys)
        self.renamed = renamed or {}


_FREE = dict | None  # an open mapping (model_args, objective_args, profiles): checked by its own rules


def _hints(cls) -> dict:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


_DISPLAY = _Section(_hints(DisplayConfig), {old: f"was renamed {{prefix}}{new}" for old, new in RENAMED.items()})
_OPTIMIZER = _Section(_hints(Optimizer))
_SCHEDULE = _Section(_hints(Schedule))
_STAGE = _Section(
    {
        "epochs": int,
        "display": _DISPLAY,
        "name": str | None,
        "reset_optimizer": bool,
        "lr": float | None,
        "schedule": _SCHEDULE,
        "precision": str | None,
        "sigma": float | list[float] | None,
        "contrast_range": _DISPLAY["contrast_range"],
        "contrast": _DISPLAY["contrast"],
        "eccentricity": _DISPLAY["eccentricity"],
    },
    {old: f"was renamed {{prefix}}display.{new}" for old, new in RENAMED.items()},
)
_TOP = _Section(
    {
        "name": str,
        "model": str,
        "source": str,
        "model_args": _FREE,
        "objective": str,
        "objective_args": _FREE,
        "seed": int,
        "device": str,
        "batch_size": int,
        "train_limit": int | None,
        "eval_digits": int,
        "static": bool,
        "precision": str,
        "checkpoint_every_s": float,
        "init": str | dict | None,
        "preset": str,
        "size": int,
        "display": _DISPLAY,
        "optimizer": _OPTIMIZER,
        "schedule": _SCHEDULE,
        "stages": [_STAGE],
        "profiles": _FREE,
    }
)


def _unknown(key: Any, section: _Section, prefix: str) -> RecipeError:
    """The error for a key that ``section`` does not have, with the nearest valid key."""
    if key in section.renamed:
        return RecipeError(f"{prefix}{key} {section.renamed[key].format(prefix=prefix)}")
    return RecipeError(f"unknown key {prefix + str(key)!r}{did_you_mean(key, section, prefix=prefix)}")


def _check(value: Any, schema: Any, path: str) -> None:
    """Check ``value`` against a schema node (a section, ``[section]`` or a type hint)."""
    if isinstance(schema, _Section):
        if value is None:
            return
        if not isinstance(value, dict):
            raise RecipeError(f"{show_key(path)} must be a mapping, got {show_value(value)}")
        prefix = f"{path}." if path else ""
        for key in value:
            if key not in schema:
                raise _unknown(key, schema, prefix)
        for key, v in value.items():
            _check(v, schema[key], prefix + key)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            raise RecipeError(f"{show_key(path)} must be a list, got {show_value(value)}")
        for k, v in enumerate(value):
            _check(v, schema[0], f"{path}[{k}]")
    else:
        problem = type_problem(value, schema, path)
        if problem:
            raise RecipeError(problem)
        if schema is _FREE and value and not all(isinstance(k, str) for k in value):
            raise RecipeError(f"{show_key(path)} keys must be strings, got {show_value(list(value))}")


def _choice(value: Any, choices, key: str) -> None:
    """Refuse a value that is not one of ``choices``, suggesting the nearest."""
    if value not in choices:
        raise RecipeError(
            f"{key} must be one of {', '.join(map(str, choices))}, got {show_value(value)}"
            + (f" (did you mean {suggest(value, choices)!r}?)" if suggest(value, choices) else "")
        )


def _positive(d: dict, key: str, default, minimum, *, strict: bool = False, path: str = "") -> None:
    v = d.get(key, default)
    if v is not None and not (v > minimum if strict else v >= minimum):
        raise RecipeError(f"{path}{key} must be {'>' if strict else '>='} {minimum}, got {show_value(v)}")


def _factory_params(factory) -> tuple[dict, set, bool]:
    """A model factory's keyword parameters: ``({name: type hint}, required names, takes **kwargs)``."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return {}, set(), True
    target = inspect.unwrap(factory.__init__ if inspect.isclass(factory) else factory)
    globs = getattr(target, "__globals__", {})
    params, required, open_ = {}, set(), False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            open_ = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            hint = p.annotation
            if hint is p.empty:
                hint = Any
            elif isinstance(hint, str):  # postponed annotation: evaluate it where the factory lives
                try:
                    hint = eval(hint, dict(globs))  # the factory's own source
                except (NameError, AttributeError, SyntaxError, TypeError):
                    hint = Any
            params[p.name] = hint
            if p.default is p.empty:
                required.add(p.name)
    return params, required, open_


def _check_model_args(model: str, args: dict) -> None:
    """``model_args`` against the signature of the model's factory (``**kwargs``: any extra key)."""
    from whatwhere.models.registry import MODELS  # late import: models know nothing of recipes

    params, required, open_ = _factory_params(MODELS[model].factory)
    for key, value in args.items():
        if key not in params:
            if not open_:
                raise RecipeError(
                    f"unknown key {'model_args.' + key!r} for model {model!r}"
                    f"{did_you_mean(key, params, prefix='model_args.')}"
                )
            continue
        problem = type_problem(value, params[key], f"model_args.{key}")
        if problem:
            raise RecipeError(problem)
    missing = sorted(required - set(args))
    if missing:
        raise RecipeError(f"model {model!r} needs model_args.{missing[0]}")


def _check_objective_args(objective: str, args: dict) -> None:
    """``objective_args`` against the table the objective registered (``register_objective(args=...)``)."""
    from whatwhere.engine.objectives import OBJECTIVES, objective_args_types

    _choice(objective, sorted(OBJECTIVES), "objective")
    try:
        allowed = objective_args_types(objective, args)
    except ValueError as exc:
        raise RecipeError(str(exc)) from None
    if allowed is None:
        return
    for key, value in args.items():
        if key not in allowed:
            raise RecipeError(
                f"unknown key {'objective_args.' + key!r} for objective {objective!r}"
                f"{did_you_mean(key, allowed, prefix='objective_args.')}"
            )
        problem = type_problem(value, allowed[key], f"objective_args.{key}")
        if problem:
            raise RecipeError(problem)


def _display(base: DisplayConfig, changes: dict, where: str) -> DisplayConfig:
    try:
        return base.replace(**changes)
    except (ValueError, TypeError, OverflowError) as exc:
        raise RecipeError(f"{where}: {exc}") from exc


def _check_schedule(sch: Schedule, where: str) -> None:
    _choice(sch.name, SCHEDULES, f"{where}.name")
    if not (sch.step_size >= 1 and sch.gamma > 0):
        raise RecipeError(f"{where}.step_size must be >= 1 and {where}.gamma > 0")


def _profiles(d: dict) -> dict:
    profiles = d.get("profiles") or {}
    _check(profiles, _FREE, "profiles")
    for name, changes in profiles.items():
        if not isinstance(changes, dict):
            raise RecipeError(
                f"profiles.{show_key(name)} must be a mapping of key: value overrides, got {show_value(changes)}"
            )
    return profiles


def parse_recipe(d: dict[str, Any], *, profile: str | None = None, overrides: Sequence[str] = ()) -> Recipe:
    """Validate a recipe mapping (after applying a profile and ``key=value`` overrides).

    Every key is checked (at any depth: sections, stages, ``model_args`` against the model's
    factory, ``objective_args`` against the objective's declared args) and every value's type,
    before anything is built; the recipe's other profiles are checked too.

    Raises:
        RecipeError: the first problem, on one line, naming the key (and the nearest valid key).
    """
    recipe = _parse(d, profile, overrides)
    for other in _profiles(d):
        if other != profile:
            try:
                _parse(d, other, ())
            except RecipeError as exc:
                context = f"profile {other!r}: "
                raise RecipeError(str(exc) if str(exc).startswith(context) else context + str(exc)) from None
    return recipe


def _apply_profile_and_overrides(d: dict[str, Any], profile: str | None, overrides) -> None:
    """Apply the named profile's overrides to ``d``, then the ``key=value`` overrides, in place."""
    profiles = _profiles(d)
    if profile is not None:
        if not isinstance(profile, str) or profile not in profiles:
            hint = suggest(profile, profiles)
            raise RecipeError(
                f"profile {show_value(profile)} is not defined in this recipe (profiles: "
                f"{', '.join(sorted(map(str, profiles))) or 'none'})" + (f" (did you mean {hint!r}?)" if hint else "")
            )
        for key, value in profiles[profile].items():
            try:
                apply_override(d, key, value)
            except RecipeError as exc:
                raise RecipeError(f"profile {profile!r}: {exc}") from None
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise RecipeError(f"override {show_value(item)} must look like key=value")
        key, value = item.split("=", 1)
        apply_override(d, key.strip(), parse_value(value))


def _parse_stage(st: Any, k: int, base: DisplayConfig) -> list[Stage]:
    """``stages[k]``: one :class:`Stage` per sigma of its list (one if it has a single sigma or none)."""
    where = f"stages[{k}]"
    if st is None or "epochs" not in st:
        raise RecipeError(f"{where}.epochs is required (an integer >= 0)")
    _positive(st, "epochs", 0, 0, path=f"{where}.")
    changes = dict(st.get("display") or {})
    for short in ("contrast_range", "contrast", "eccentricity"):
        if short in st:
            changes[short] = st[short]
    if "contrast" in changes and "contrast_range" not in changes:
        changes["contrast_range"] = None
    sigmas = st.get("sigma")
    sigmas = sigmas if isinstance(sigmas, list) else [sigmas] if sigmas is not None else [None]
    if not sigmas:
        raise RecipeError(f"{where}.sigma must be a number or a non-empty list of numbers, got []")
    displays = []
    for sigma in sigmas:
        ch = dict(changes)
        if sigma is not None:
            ch["sigma"] = sigma
        displays.append(_display(base, ch, where))
    _positive(st, "lr", None, 0, strict=True, path=f"{where}.")
    sch = None
    if st.get("schedule") is not None:
        sch = Schedule(**st["schedule"])
        _check_schedule(sch, f"{where}.schedule")
        if not st.get("reset_optimizer"):
            raise RecipeError(f"{where}.schedule needs reset_optimizer: true (it applies to the new optimiser)")
    if st.get("precision") is not None:
        from whatwhere.engine.precision import PRECISIONS

        _choice(st["precision"], PRECISIONS, f"{where}.precision")
    return [
        Stage(
            epochs=st["epochs"],
            display=disp,
            name=st.get("name") or (f"sigma={sigma:g}" if sigma is not None else f"stage{k}"),
            reset_optimizer=bool(st.get("reset_optimizer", False)),
            lr=st.get("lr"),
            schedule=sch,
            precision=st.get("precision"),
        )
        for sigma, disp in zip(sigmas, displays, strict=True)
    ]


def _parse_optimizer(d: dict[str, Any]) -> tuple[Optimizer, Schedule]:
    """The recipe's optimiser and lr schedule, checked."""
    opt = Optimizer(**(d.get("optimizer") or {}))
    _choice(opt.name, OPTIMIZERS, "optimizer.name")
    if not opt.lr > 0:
        raise RecipeError(f"optimizer.lr must be > 0, got {opt.lr}")
    _positive(d.get("optimizer") or {}, "momentum", 0.0, 0, path="optimizer.")
    _positive(d.get("optimizer") or {}, "weight_decay", 0.0, 0, path="optimizer.")
    for prefix, factor in (opt.lr_scale or {}).items():
        if not isinstance(prefix, str) or not prefix:
            raise RecipeError(f"optimizer.lr_scale keys must be parameter-name prefixes, got {show_value(prefix)}")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < float("inf"):
            raise RecipeError(f"optimizer.lr_scale.{prefix} must be a number > 0, got {show_value(factor)}")
    sch = Schedule(**(d.get("schedule") or {}))
    _check_schedule(sch, "schedule")
    return opt, sch


def _check_init_and_device(d: dict[str, Any]) -> None:
    """``init``: a model spec or a non-empty ``{submodule: spec}``; ``device``: auto, cpu, cuda or cuda:N."""
    init = d.get("init")
    if isinstance(init, dict):
        bad = {k: v for k, v in init.items() if not isinstance(k, str) or not isinstance(v, str) or not v}
        if bad or not init:
            raise RecipeError(f"init as a mapping must map submodule names to model specs, got {show_value(init)}")
    elif init is not None and not init:
        raise RecipeError(
            f"init must be a model spec (run directory, weights file, zoo:NAME) or a mapping "
            f"{{submodule: spec}}, got {show_value(init)}"
        )
    device = d.get("device", "auto")
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise RecipeError(f"device must be auto, cpu, cuda or cuda:N, got {show_value(device)}")


def _parse(d: dict[str, Any], profile: str | None, overrides) -> Recipe:
    if not isinstance(d, dict):
        raise RecipeError(f"a recipe must be a mapping (key: value lines), got {show_value(d)}")
    d = copy.deepcopy(d)
    for key in d:
        if key not in _TOP:
            raise _unknown(key, _TOP, "")
    _apply_profile_and_overrides(d, profile, overrides)
    for key in ("name", "model", "stages"):
        if key not in d:
            raise RecipeError(f"missing required key {key!r}")
    _check(d, _TOP, "")
    from whatwhere.models.registry import MODELS  # late import: models know nothing of recipes

    _choice(d["model"], sorted(MODELS), "model")
    _check_model_args(d["model"], d.get("model_args") or {})
    _check_objective_args(d.get("objective", "classification"), d.get("objective_args") or {})
    _choice(d.get("preset", "paper"), sorted(PRESETS), "preset")
    try:
        base = preset(d.get("preset", "paper"), d.get("size", 28))
    except ValueError as exc:
        raise RecipeError(f"preset/size: {exc}") from exc
    base = _display(base, d.get("display") or {}, "display")
    if not d["stages"]:
        raise RecipeError("stages must be a non-empty list")
    stages = [s for k, st in enumerate(d["stages"]) for s in _parse_stage(st, k, base)]
    opt, sch = _parse_optimizer(d)
    for key in ("batch_size", "eval_digits", "train_limit"):
        _positive(d, key, None, 1)
    from whatwhere.engine.precision import PRECISIONS

    _choice(d.get("precision", "fp32"), PRECISIONS, "precision")
    _positive(d, "checkpoint_every_s", 600.0, 0, strict=True)
    _check_init_and_device(d)
    resolved = {k: v for k, v in d.items() if k != "profiles"}
    return Recipe(
        name=str(d["name"]),
        model=d["model"],
        stages=tuple(stages),
        source=str(d.get("source", "")),
        model_args=dict(d.get("model_args") or {}),
        objective=str(d.get("objective", "classification")),
        objective_args=dict(d.get("objective_args") or {}),
        seed=d.get("seed", 0),
        device=d.get("device", "auto"),
        batch_size=d.get("batch_size", 100),
        train_limit=d.get("train_limit"),
        eval_digits=d.get("eval_digits", 10000),
        static=bool(d.get("static", False)),
        init=d.get("init"),
        precision=d.get("precision", "fp32"),
        checkpoint_every_s=float(d.get("checkpoint_every_s", 600.0)),
        preset=d.get("preset", "paper"),
        optimizer=opt,
        schedule=sch,
        raw=resolved,
        profile=profile,
        overrides=tuple(overrides),
    )


def parse_value(text: str) -> Any:
    """A command-line value: YAML, except that numbers YAML 1.1 reads as text (``1e-3``) are numbers.

    Raises:
        RecipeError: text that is not YAML (one line, the text quoted).
    """
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:  # also: a date like 2020-13-45
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(f"value {show_value(text)} is not valid YAML: {one_line(problem)}") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_override(d: dict, key: str, value: Any) -> None:
    """Set a dotted ``key`` in a nested mapping; ``*`` in a list position means every element.

    The key must exist in the recipe schema (``optimizer.lr``, ``stages.*.epochs``, ...): below
    ``model_args``, ``objective_args`` and ``profiles`` any key is accepted here and checked when
    the recipe is parsed.  Values are checked when the recipe is parsed.

    Raises:
        RecipeError: an unknown key (with the nearest valid one), a bad list index, or a path
            through a value that is not a mapping.
    """
    if not isinstance(key, str):
        raise RecipeError(f"override key must be a string, got {show_value(key)}")
    parts = key.split(".")

    def fail(message: str) -> RecipeError:
        return RecipeError(f"override {show_value(key)}: {message}")

    def rec(node, schema, i):
        p = parts[i]
        last = i == len(parts) - 1
        here = ".".join(parts[:i]) or "the recipe"
        if isinstance(schema, list):
            if not isinstance(node, list):
                raise fail(f"{show_key(here)} is not a list")
            targets: Sequence[int]
            if p == "*":
                targets = range(len(node))
            else:
                try:
                    targets = [int(p)]
                    node[targets[0]]
                except (ValueError, IndexError):
                    raise fail(f"bad list index {show_value(p)}") from None
            for t in targets:
                if last:
                    node[t] = value
                else:
                    rec(node[t], schema[0], i + 1)
            return
        if not isinstance(node, dict):
            raise fail(f"{show_key(here)} is not a mapping")
        if isinstance(schema, _Section):
            if p not in schema:
                raise fail(str(_unknown(p, schema, ".".join(parts[:i]) + "." if i else "")))
            sub = schema[p]
        else:
            sub = Any  # inside an open mapping
        if last:
            node[p] = value
            return
        if not isinstance(sub, (_Section, list)) and not matches({}, sub):
            raise fail(f"{show_key('.'.join(parts[: i + 1]))} takes a value, not keys")
        if node.get(p) is None:
            node[p] = {}
        rec(node[p], sub, i + 1)

    rec(d, _TOP, 0)


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
    raise RecipeError(
        f"recipe {str(spec)!r} is neither a file nor a packaged recipe; packaged: {', '.join(recipe_names())}"
    )


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _load_yaml(path: Path) -> dict:
    """The mapping in a YAML file; a syntax error or a non-mapping is a one-line ``FILE: line N: ...``."""
    try:
        with open(path, encoding="utf-8") as fh:
            d = yaml.safe_load(fh)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = (exc.problem or type(exc).__name__) + (f" ({exc.context})" if exc.context else "")
        raise RecipeError(f"{path}: {line}{one_line(problem)}") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:  # also: not UTF-8, a date like 2020-13-45
        raise RecipeError(f"{path}: not a valid YAML recipe: {one_line(exc)}") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise RecipeError(
            f"{path}: line 1: a recipe must be a mapping (key: value lines), got {type(d).__name__} {show_value(d, 60)}"
        )
    return d


def read_recipe(spec: str | Path, _chain: tuple = ()) -> dict:
    """The recipe mapping of a file or packaged name, with ``extends`` resolved (not validated)."""
    path = recipe_source(spec)
    key = str(path.resolve())
    if key in _chain:
        raise RecipeError(f"recipe {path} extends itself (through {' -> '.join(_chain)})")
    d = _load_yaml(path)
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
    if d.get("objective", "classification") in ("saccadic", "ensemble", "ram"):
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


def load_recipe(spec: str | Path, *, profile: str | None = None, overrides: Sequence[str] = ()) -> Recipe:
    """Load and validate a recipe: a YAML file or the name of a packaged recipe."""
    return parse_recipe(read_recipe(spec), profile=profile, overrides=overrides)
