"""Weights files: safetensors with the model's name and arguments in their metadata, written
atomically and read back with every tensor checked finite (no pickles).  The bottom of the engine:
the zoo and the checkpoints both read through it."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from whatwhere.utils.errors import UserError
from whatwhere.utils.io import atomic_write

__all__ = ["save_weights", "read_meta", "read_weights"]


def save_weights(model: torch.nn.Module, path: str | Path, meta: dict) -> Path:
    """Atomically write ``model``'s state dict as safetensors with ``meta`` (JSON values)."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(state, tmp, metadata={k: json.dumps(v) for k, v in meta.items()}))


def _unreadable(path: Path, exc: BaseException) -> UserError:
    """The error for a file that safetensors cannot read, naming the file and the likely cause."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if path.is_file() and path.stat().st_size == 0:
        why = "it is empty"
    elif "not fully covered" in msg or "header too small" in msg:
        why = "it is truncated or not a safetensors file"
    elif "header too large" in msg or "invalid" in msg.lower() or "deserializ" in msg:
        why = "it is not a safetensors file (or is corrupted)"
    else:
        why = "it cannot be read"
    return UserError(f"{path}: not a usable weights file: {why} ({msg})")


def read_meta(path: str | Path) -> dict:
    """The metadata of a weights file (``model``, ``model_args``, ``input_size``, ``recipe``).

    Raises:
        FileNotFoundError: no such file.
        UserError: not a (complete) safetensors file, or no valid whatwhere metadata.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a weights file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise _unreadable(path, exc) from exc
    meta = {}
    for k, v in raw.items():
        try:
            meta[k] = json.loads(v)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: metadata {k!r} is not valid JSON ({exc}); not a whatwhere weights file") from exc
    if "model" not in meta:
        raise UserError(f"{path}: no model metadata; cannot rebuild the model (not a whatwhere weights file?)")
    if not isinstance(meta["model"], str):
        raise UserError(f"{path}: metadata 'model' must be a model name, got {meta['model']!r}")
    if not isinstance(meta.get("model_args", {}), dict):
        raise UserError(f"{path}: metadata 'model_args' must be a mapping, got {meta['model_args']!r}")
    return meta


def read_weights(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, all finite.

    Raises:
        UserError: the file cannot be read (truncated, corrupted, not safetensors), or a tensor
            holds NaN or infinite values (a diverged run: such a model answers nonsense).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as exc:
        raise _unreadable(path, exc) from exc
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise UserError(
                f"{path}: tensor {name!r} holds {bad} NaN or infinite value(s) (a diverged "
                f"training run?); refusing to load it"
            )
    return state
