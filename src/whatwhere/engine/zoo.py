"""The model zoo: the trained models that ship with whatwhere, checked before they are used.

``whatwhere/zoo/manifest.json`` lists every shipped model: its weights file and SHA-256, size,
registry model and arguments, trainable parameters, the resolved recipe that trained it, the
commit, machine and seed, and its headline metrics.  A model's extra files (the What network's
shift-accuracy map, which the Where recipes train against) are listed and hashed the same way.

:func:`zoo_path` verifies a file before handing out its path: a missing, truncated or altered
file is refused with an error naming the file, the expected hash and what to do.  Weights are
``safetensors`` only.  Use :func:`whatwhere.load` (``whatwhere.load("what")``) to get a model.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

__all__ = ["ZooError", "manifest", "zoo_names", "zoo_entry", "zoo_path", "zoo_dir", "sha256_of", "add_to_zoo"]

PREFIX = "zoo:"


class ZooError(ValueError):
    """An unknown zoo entry, or a shipped file that is missing or fails its hash check."""


def zoo_dir() -> Path:
    """The folder of the shipped weights and of ``manifest.json`` (package data)."""
    from importlib.resources import files

    return Path(str(files("whatwhere") / "zoo"))


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest() -> dict:
    """The parsed manifest: ``{"format": 1, "models": {name: entry}}``."""
    path = zoo_dir() / "manifest.json"
    if not path.is_file():
        return {"format": 1, "models": {}}
    return json.loads(path.read_text())


def zoo_names() -> list[str]:
    """Names of the shipped models."""
    return sorted(manifest()["models"])


def zoo_entry(name: str) -> dict:
    """The manifest entry of ``name`` (``zoo:`` prefix allowed)."""
    name = name[len(PREFIX):] if name.startswith(PREFIX) else name
    models = manifest()["models"]
    if name not in models:
        raise ZooError(f"{name!r} is not in the model zoo; shipped models: {', '.join(sorted(models)) or 'none'}")
    return models[name]


@lru_cache(maxsize=None)
def _verified(path: str, size: int, mtime_ns: int, expected: str) -> bool:
    # keyed by size and mtime, so that a file changed on disk is hashed again
    return sha256_of(path) == expected


def zoo_path(name: str, file: str = "weights") -> Path:
    """The verified path of a zoo entry's ``file`` (``"weights"`` or a key of its ``files``).

    Raises:
        ZooError: unknown entry or file, a missing file, or one whose size or SHA-256 differs
            from the manifest (truncated or altered).
    """
    entry = zoo_entry(name)
    if file == "weights":
        rec = {"file": entry["file"], "sha256": entry["sha256"], "bytes": entry["bytes"]}
    elif file in entry.get("files", {}):
        rec = entry["files"][file]
    else:
        raise ZooError(f"zoo entry {name!r} has no {file!r} file (it has: weights"
                       f"{''.join(', ' + k for k in entry.get('files', {}))})")
    path = zoo_dir() / rec["file"]
    fix = "reinstall whatwhere (or `git checkout -- src/whatwhere/zoo` in a checkout)"
    if not path.is_file():
        raise ZooError(f"zoo file {path} is missing; {fix}")
    stat = path.stat()
    if stat.st_size != rec["bytes"]:
        raise ZooError(f"zoo file {path} has {stat.st_size} bytes, expected {rec['bytes']} (truncated or "
                       f"altered); {fix}")
    if not _verified(str(path), stat.st_size, stat.st_mtime_ns, rec["sha256"]):
        raise ZooError(f"zoo file {path} fails its SHA-256 check (expected {rec['sha256']}); {fix}")
    return path


def add_to_zoo(name: str, weights: str | Path, *, recipe: dict, params: int, metrics: dict | None = None,
               provenance: dict | None = None, files: dict[str, str | Path] | None = None) -> dict:
    """Copy ``weights`` (and ``files``) into the zoo as ``name`` and record it in the manifest.

    A maintainer's tool (``whatwhere zoo add``): it writes into the package folder.

    Returns:
        the new manifest entry.
    """
    import shutil

    from safetensors import safe_open

    from whatwhere.utils.io import write_json

    if not name or "/" in name or name.startswith(PREFIX):
        raise ZooError(f"bad zoo name {name!r}")
    src = Path(weights)
    with safe_open(str(src), framework="pt") as fh:
        meta = {k: json.loads(v) for k, v in (fh.metadata() or {}).items()}
    if "model" not in meta:
        raise ZooError(f"{src}: no model metadata (not a whatwhere weights file)")
    d = zoo_dir()
    dst = d / f"{name}.safetensors"
    if src.resolve() != dst.resolve():
        shutil.copyfile(src, dst)
    entry = {"file": dst.name, "sha256": sha256_of(dst), "bytes": dst.stat().st_size, "model": meta["model"],
             "model_args": meta.get("model_args", {}), "input_size": meta.get("input_size"), "params": int(params),
             "precision": recipe.get("precision", "fp32"), "recipe": recipe, "provenance": provenance or {}, "metrics": metrics or {}, "files": {}}
    for key, f in (files or {}).items():
        f = Path(f)
        target = d / f"{name}.{key}{f.suffix}"
        if f.resolve() != target.resolve():
            shutil.copyfile(f, target)
        entry["files"][key] = {"file": target.name, "sha256": sha256_of(target), "bytes": target.stat().st_size}
    m = manifest()
    m["models"][name] = entry
    m["models"] = dict(sorted(m["models"].items()))
    write_json(d / "manifest.json", m)
    return entry
