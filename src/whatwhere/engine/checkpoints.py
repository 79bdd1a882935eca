"""Weights on disk: safetensors files with the model's name and arguments in their metadata.

:func:`load` rebuilds a trained model from a run directory, a weights file or a model-zoo name;
nothing is ever unpickled.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from whatwhere.engine.weightfiles import read_meta, read_weights, save_weights
from whatwhere.engine.zoo import PREFIX, ZooError, upcast, zoo_entry, zoo_names, zoo_path, zoo_state
from whatwhere.models.registry import MODELS, create_model
from whatwhere.utils.errors import UserError
from whatwhere.utils.io import read_json

__all__ = [
    "split_spec",
    "resolved_meta",
    "save_weights",
    "read_meta",
    "read_weights",
    "read_state",
    "weights_path",
    "load",
    "model_meta",
    "count_parameters",
]


def count_parameters(model: torch.nn.Module) -> int:
    """Every parameter of the model, trained or frozen (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def model_meta(model: str, model_args: dict, recipe: str) -> dict:
    """The metadata stored in every weights file: how to rebuild the model."""
    size = MODELS[model].input_size
    if model == "ensemble":
        size = MODELS[model_args.get("member", "what")].input_size
    if isinstance(model_args.get("size"), int):  # a model built for the display size it is given (RAM, FC, conv)
        size = model_args["size"]
    return {"model": model, "model_args": model_args, "input_size": size, "recipe": recipe}


def _mismatch(path: Path, kind: str, model: torch.nn.Module, state: dict) -> str | None:
    """Why ``state`` does not fit ``model`` (one line), or None when it does."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    sizes = [
        f"{k} is {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the model"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensor(s) missing (e.g. {', '.join(missing[:3])})")
    if extra:
        parts.append(f"{len(extra)} unexpected (e.g. {', '.join(extra[:3])})")
    if sizes:
        parts.append(f"{len(sizes)} of another shape ({'; '.join(sizes[:2])})")
    if not parts:
        return None
    return (
        f"{path}: the weights do not fit a {kind!r} model, as its metadata says: {', '.join(parts)} "
        f"(the weights of another model?)"
    )


_SPEC = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<args>[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*)\]$")


def split_spec(spec: str | Path) -> tuple[str | Path, dict]:
    """``(spec, {})``, or for ``"NAME[key=value,...]"`` (a run, file or zoo name followed by
    model arguments in brackets) ``("NAME", {key: value})``: the same weights, a model built with
    those ``model_args`` changed (for settings that change no weight: the saccadic transformer's
    ``test_glimpses`` or ``test_stop_confidence``, for instance).  Values are YAML scalars or
    flow lists (``2``, ``0.95``, ``null``, ``[a, b]``).  A path that exists is never split.

    Raises:
        UserError: brackets that do not hold ``key=value`` pairs.
    """
    text = str(spec)
    m = _SPEC.match(text)
    if m is None or Path(text).exists():
        if "[" in text and not Path(text).exists():
            raise UserError(f"{text}: model arguments go in one trailing [key=value,...], e.g. NAME[test_glimpses=2]")
        return spec, {}
    import yaml

    body = m.group("args").strip()
    pairs, n_keys = re.subn(r"(^|,)\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", r"\1 \2: ", body)
    try:
        args = yaml.safe_load("{" + pairs + "}") if body else None
    except yaml.YAMLError:
        args = None
    if not isinstance(args, dict) or not args or len(args) != n_keys or not all(isinstance(k, str) for k in args):
        raise UserError(f"{text}: model arguments go in one trailing [key=value,...], e.g. NAME[test_glimpses=2]")
    return m.group("base"), args


def _zoo_name(spec: str | Path) -> str | None:
    """The zoo name ``spec`` stands for (``None``: a path), as :func:`weights_path` reads it."""
    text = str(spec)
    if text.startswith(PREFIX):
        return text[len(PREFIX) :]
    if not Path(spec).exists() and "/" not in text and not text.endswith(".safetensors"):
        return text
    return None


def read_state(spec: str | Path, device: str | torch.device = "cpu", *, checkpoint: bool = False) -> dict:
    """The full state dict named by ``spec`` (as :func:`weights_path`): a zoo entry's assembled
    with its parts (:func:`whatwhere.engine.zoo.zoo_state`), else the file's tensors; float16 or
    bfloat16 stored tensors (``whatwhere zoo convert``) cast up to float32, as models compute."""
    spec, _ = split_spec(spec)
    path = weights_path(spec, checkpoint=checkpoint)
    name = _zoo_name(spec)
    return zoo_state(name, str(device)) if name is not None else upcast(read_weights(path, device))


def weights_path(spec: str | Path, *, checkpoint: bool = False) -> Path:
    """The weights file named by ``spec``: a run directory (its ``model.safetensors``, or with
    ``checkpoint=True`` / for an unfinished run its newest checkpoint), a ``.safetensors`` file,
    or a model-zoo name (``"what"`` or ``"zoo:what"``, hash-checked; a composite entry's file
    holds only the tensors that are not in its parts: read it with :func:`read_state`); model
    arguments in brackets (:func:`split_spec`) name the same file."""
    spec, _ = split_spec(spec)
    p = Path(spec)
    text = str(spec)
    if _zoo_name(spec) is not None:
        if not text.startswith(PREFIX) and text not in zoo_names():
            raise FileNotFoundError(
                f"{text}: no such run directory or file, and not in the model zoo (shipped "
                f"models: {', '.join(zoo_names()) or 'none'})"
            )
        return zoo_path(text)
    if p.is_dir():
        if checkpoint or not (p / "model.safetensors").exists():
            ptr = p / "checkpoints" / "latest.json"
            if not ptr.exists():
                raise FileNotFoundError(f"{p} holds neither model.safetensors nor a checkpoint")
            stem = read_json(ptr, what="checkpoint pointer").get("stem")
            if not isinstance(stem, str) or not stem or "/" in stem:
                raise UserError(f"checkpoint pointer {ptr}: no valid 'stem' (corrupted?)")
            f = p / "checkpoints" / (stem + ".safetensors")
            if not f.is_file():
                raise FileNotFoundError(f"{ptr} names checkpoint {f}, which does not exist")
            return f
        return p / "model.safetensors"
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist")
    return p


def _composite_hint(path: Path) -> str:
    """For the file of a zoo entry that refers to parts, loaded by its path: what to do instead."""
    try:
        names = [n for n in zoo_names() if zoo_entry(n).get("parts") and zoo_entry(n).get("file") == path.name]
    except ZooError:
        return ""
    return f"; {path.name} holds only the own tensors of zoo entry {names[0]!r}: load it by that name" if names else ""


def resolved_meta(spec: str | Path, *, checkpoint: bool = False) -> dict:
    """The metadata of the weights ``spec`` names (:func:`read_meta`) with the ``model_args`` the
    model is built with: the file's, then for a zoo name its manifest entry's (the manifest is how
    the zoo ships a model: a decision setting such as the saccadic transformer's
    ``test_glimpses`` can change there without new weights), then the arguments in brackets
    (:func:`split_spec`)."""
    spec, overrides = split_spec(spec)
    meta = dict(read_meta(weights_path(spec, checkpoint=checkpoint)))
    args = dict(meta.get("model_args") or {})
    name = _zoo_name(spec)
    if name is not None:
        args.update(zoo_entry(name).get("model_args") or {})
    meta["model_args"] = {**args, **overrides}
    return meta


def load(spec: str | Path, device: str | torch.device = "cpu", *, checkpoint: bool = False) -> torch.nn.Module:
    """A trained model, in evaluation mode, from a run directory, a weights file or the zoo.

    Args:
        spec: ``"what"``, ``"zoo:where-c0.7"``, ``"runs/what"``, ``"path/model.safetensors"``...,
            optionally followed by model arguments that change no weight, in brackets:
            ``"saccadic_transformer[test_glimpses=2]"`` (:func:`split_spec`).
        device: where to put it.
        checkpoint: use the newest checkpoint of a run directory rather than its final weights.

    Raises:
        FileNotFoundError / ZooError: nothing found, or a zoo file that fails its hash check.
        UserError (a ValueError): the file is truncated, corrupted or not safetensors, has no
            whatwhere metadata, does not match its model, or holds NaN / infinite values.
    """
    path = weights_path(spec, checkpoint=checkpoint)
    meta = resolved_meta(spec, checkpoint=checkpoint)
    try:
        model = create_model(meta["model"], **meta.get("model_args", {}))
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from exc
    state = read_state(spec, checkpoint=checkpoint)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        why = _mismatch(path, meta["model"], model, state)
        raise UserError(
            (why or f"{path}: the weights do not fit a {meta['model']!r} model: {' '.join(str(exc).split())[:300]}")
            + _composite_hint(path)
        ) from exc
    return model.to(device).eval()


def recipe_of(spec: str | Path) -> dict:
    """The resolved recipe that trained ``spec`` (a run directory's ``recipe.yaml``, or the zoo
    manifest's), ``{}`` when unknown."""
    import yaml

    spec, _ = split_spec(spec)
    p = Path(spec)
    if p.exists():
        run = p if p.is_dir() else p.parent
        f = run / "recipe.yaml"
        if not f.is_file():
            return {}
        try:
            d = yaml.safe_load(f.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise UserError(f"{f} is not valid YAML (corrupted?): {' '.join(str(exc).split())}") from exc
        if d is None:
            return {}
        if not isinstance(d, dict):
            raise UserError(f"{f} does not hold a recipe (a mapping), got a {type(d).__name__}")
        return d
    try:
        return dict(zoo_entry(str(spec)).get("recipe", {}))
    except ZooError:
        return {}


__all__ += ["recipe_of"]


def origin_of(spec: str | Path) -> dict:
    """Which recipe, profile, seed and commit made ``spec`` (a run directory, weights file or zoo
    name): ``{"recipe", "profile", "seed", "commit"}``, ``None`` where unknown.  A run directory's
    ``run.json`` (written by the trainer) is read first, then its ``recipe.yaml``; a zoo model's
    manifest entry (its ``provenance.profile``, absent for full recipes), with ``"storage"`` too
    when the entry records one (``"float16"``: its weights stored so since, ``whatwhere zoo
    convert``; the benchmark keeps this origin beside its results).  A spec with model arguments
    in brackets (:func:`split_spec`) adds them as ``"model_args"``."""
    base, overrides = split_spec(spec)
    origin = _origin(base)
    return {**origin, "model_args": overrides} if overrides else origin


def _origin(spec: str | Path) -> dict:
    p = Path(spec)
    if p.exists():
        run = p if p.is_dir() else p.parent
        rec = read_json(run / "run.json", what="run record") if (run / "run.json").is_file() else {}
        recipe = recipe_of(run)
        sittings = rec.get("sittings") or [{}]
        return {
            "recipe": rec.get("recipe", recipe.get("name")),
            "profile": rec.get("profile"),
            "seed": rec.get("seed", recipe.get("seed")),
            "commit": sittings[-1].get("git_commit"),
        }
    try:
        entry = zoo_entry(str(spec))
    except ZooError:
        return {"recipe": None, "profile": None, "seed": None, "commit": None}
    prov = entry.get("provenance") or {}
    origin = {
        "recipe": (entry.get("recipe") or {}).get("name"),
        "profile": prov.get("profile"),
        "seed": (entry.get("recipe") or {}).get("seed"),
        "commit": prov.get("commit"),
    }
    if entry.get("storage"):
        origin["storage"] = entry["storage"]
    return origin


__all__ += ["origin_of"]
