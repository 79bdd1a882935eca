"""Atomic file writes: a file is either absent, or complete (never half-written after a crash)."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["WriteError", "atomic_write", "write_bytes", "write_text", "write_json", "read_json"]


class WriteError(OSError):
    """A write that failed (disk full, file-size limit, a failing writer); the destination is as it
    was: the previous file is kept unchanged, or there is still none.  ``errno`` is the underlying
    error's (``ENOSPC``, ``EFBIG``...) when it is known, else ``EIO``."""


def _write_error(path: Path, existed: bool, exc: Exception) -> WriteError:
    """The :class:`WriteError` that reports ``exc`` while writing ``path``."""
    code = getattr(exc, "errno", None)
    if code is None:  # torch's and safetensors' writers report the OS error in their message only
        m = re.search(r"os error (\d+)", str(exc))
        code = int(m.group(1)) if m else errno.EIO
    kept = f"the previous {path.name} is kept, unchanged" if existed else f"{path.name} was not created"
    return WriteError(code, f"writing {path} failed ({type(exc).__name__}: {exc}); {kept}")


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], *, mode: int = 0o644) -> Path:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it to ``path``.

    The rename is atomic on POSIX file systems: readers see the old file or the new one, never a
    partial one, and an interrupted write leaves no debris (the temporary file is removed).

    Args:
        path: the destination (its parent directories are created).
        write: writes the whole content to the file name it is given.
        mode: permissions of the new file (``mkstemp`` would otherwise make it private).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        WriteError: the write failed (any exception of ``write``, e.g. a full disk); its message
            names the file and says that the previous one is kept.  The original exception is
            its ``__cause__``.  ``KeyboardInterrupt`` and the like pass through unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise _write_error(path, existed, exc) from exc
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, Exception) and not isinstance(exc, WriteError):
            raise _write_error(path, existed, exc) from exc
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
        names: dict[type, str] = {dict: "object", list: "array", str: "string"}
        raise UserError(
            f"{what} {path} holds a JSON {names.get(type(value), type(value).__name__)}, expected "
            f"an {names.get(expect, expect.__name__)} (not the file this expects?)"
        )
    return value
