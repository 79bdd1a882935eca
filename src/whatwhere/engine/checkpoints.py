"""Weights on disk: safetensors files with the model's name and arguments in their metadata.

:func:`load` rebuilds a trained model from a run directory, a weights file or a model-zoo name;
nothing is ever unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from whatwhere.engine.zoo import PREFIX, ZooError, zoo_entry, zoo_names, zoo_path
from whatwhere.models.registry import MODELS, create_model
from whatwhere.utils.io import atomic_write

__all__ = ["save_weights", "read_meta", "weights_path", "load", "model_meta", "count_parameters"]


def count_parameters(model: torch.nn.Module) -> int:
    """Every parameter of the model, trained or frozen (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def model_meta(model: str, model_args: dict, recipe: str) -> dict:
    """The metadata stored in every weights file: how to rebuild the model."""
    size = MODELS[model].input_size
    if model == "ensemble":
        size = MODELS[model_args.get("member", "what")].input_size
    return {"model": model, "model_args": model_args, "input_size": size, "recipe": recipe}


def save_weights(model: torch.nn.Module, path: str | Path, meta: dict) -> Path:
    """Atomically write ``model``'s state dict as safetensors with ``meta`` (JSON values)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(state, tmp, metadata={k: json.dumps(v) for k, v in meta.items()}))


def read_meta(path: str | Path) -> dict:
    """The metadata of a weights file (``model``, ``model_args``, ``input_size``, ``recipe``)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = {k: json.loads(v) for k, v in (fh.metadata() or {}).items()}
    if "model" not in meta:
        raise ValueError(f"{path}: no model metadata; cannot rebuild the model")
    return meta


def weights_path(spec: str | Path, *, checkpoint: bool = False) -> Path:
    """The weights file named by ``spec``: a run directory (its ``model.safetensors``, or with
    ``checkpoint=True`` / for an unfinished run its newest checkpoint), a ``.safetensors`` file,
    or a model-zoo name (``"what"`` or ``"zoo:what"``, hash-checked)."""
    p = Path(spec)
    text = str(spec)
    if text.startswith(PREFIX) or (not p.exists() and "/" not in text and not text.endswith(".safetensors")):
        if not text.startswith(PREFIX) and text not in zoo_names():
            raise FileNotFoundError(f"{text}: no such run directory or file, and not in the model zoo (shipped "
                                    f"models: {', '.join(zoo_names()) or 'none'})")
        return zoo_path(text)
    if p.is_dir():
        if checkpoint or not (p / "model.safetensors").exists():
            ptr = p / "checkpoints" / "latest.json"
            if not ptr.exists():
                raise FileNotFoundError(f"{p} holds neither model.safetensors nor a checkpoint")
            return p / "checkpoints" / (json.loads(ptr.read_text())["stem"] + ".safetensors")
        return p / "model.safetensors"
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist")
    return p


def load(spec: str | Path, device: str | torch.device = "cpu", *, checkpoint: bool = False) -> torch.nn.Module:
    """A trained model, in evaluation mode, from a run directory, a weights file or the zoo.

    Args:
        spec: ``"what"``, ``"zoo:where-c0.7"``, ``"runs/what"``, ``"path/model.safetensors"``...
        device: where to put it.
        checkpoint: use the newest checkpoint of a run directory rather than its final weights.

    Raises:
        FileNotFoundError / ZooError: nothing found, or a zoo file that fails its hash check.
        ValueError: the file has no model metadata or does not match its model.
    """
    from safetensors.torch import load_file

    path = weights_path(spec, checkpoint=checkpoint)
    meta = read_meta(path)
    model = create_model(meta["model"], **meta.get("model_args", {}))
    try:
        model.load_state_dict(load_file(str(path)))
    except RuntimeError as exc:
        raise ValueError(f"{path}: the weights do not fit a {meta['model']!r} model: {exc}") from exc
    return model.to(device).eval()


def recipe_of(spec: str | Path) -> dict:
    """The resolved recipe that trained ``spec`` (a run directory's ``recipe.yaml``, or the zoo
    manifest's), ``{}`` when unknown."""
    import yaml

    p = Path(spec)
    if p.exists():
        run = p if p.is_dir() else p.parent
        f = run / "recipe.yaml"
        return yaml.safe_load(f.read_text()) if f.is_file() else {}
    try:
        return dict(zoo_entry(str(spec)).get("recipe", {}))
    except ZooError:
        return {}


__all__ += ["recipe_of"]


def origin_of(spec: str | Path) -> dict:
    """Which recipe, profile, seed and commit made ``spec`` (a run directory, weights file or zoo
    name): ``{"recipe", "profile", "seed", "commit"}``, ``None`` where unknown.  A run directory's
    ``run.json`` (written by the trainer) is read first, then its ``recipe.yaml``; a zoo model's
    manifest entry (its ``provenance.profile``, absent for full recipes)."""
    import json

    p = Path(spec)
    if p.exists():
        run = p if p.is_dir() else p.parent
        rec = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
        recipe = recipe_of(run)
        sittings = rec.get("sittings") or [{}]
        return {"recipe": rec.get("recipe", recipe.get("name")), "profile": rec.get("profile"),
                "seed": rec.get("seed", recipe.get("seed")), "commit": sittings[-1].get("git_commit")}
    try:
        entry = zoo_entry(str(spec))
    except ZooError:
        return {"recipe": None, "profile": None, "seed": None, "commit": None}
    prov = entry.get("provenance") or {}
    return {"recipe": (entry.get("recipe") or {}).get("name"), "profile": prov.get("profile"),
            "seed": (entry.get("recipe") or {}).get("seed"), "commit": prov.get("commit")}


__all__ += ["origin_of"]
