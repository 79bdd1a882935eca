"""Atomic file writes: a file is either absent, or complete (never half-written after a crash)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "write_bytes", "write_text", "write_json", "read_json"]


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], *, mode: int = 0o644) -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it to ``path``.

    The rename is atomic on POSIX file systems: readers see the old file or the new one, never a
    partial one, and an interrupted write leaves no debris (the temporary file is removed).

    Args:
        path: the destination (its parent directories are created).
        write: writes the whole content to the file name it is given.
        mode: permissions of the new file (``mkstemp`` would otherwise make it private).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, payload: dict) -> Path:
    """Atomically write ``payload`` as indented JSON."""
    return write_text(path, json.dumps(payload, indent=2) + "\n")


def read_json(path: str | os.PathLike, *, expect: type | None = dict, what: str = "JSON file"):
    """The parsed JSON content of ``path``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UserError: ``path`` is not UTF-8 JSON, or its top level is not an ``expect`` (default
            a dict; ``None`` accepts anything); the message names the file (as ``what``).
    """
    from whatwhere.utils.errors import UserError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if path.is_dir():
        raise UserError(f"{what} {path} is a directory")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{what} {path} is not valid JSON (corrupted or truncated?): {exc}") from exc
    if expect is not None and not isinstance(value, expect):
        names = {dict: "object", list: "array", str: "string"}
        raise UserError(f"{what} {path} holds a JSON {names.get(type(value), type(value).__name__)}, expected "
                        f"an {names.get(expect, expect.__name__)} (not the file this expects?)")
    return value
