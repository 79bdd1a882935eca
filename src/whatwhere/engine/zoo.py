"""The model zoo: the trained models of whatwhere, checked before they are used.

``whatwhere/zoo/manifest.json`` lists every shipped model: its weights file and SHA-256, size,
registry model and arguments, trainable parameters, the resolved recipe that trained it, the
commit, machine and seed, and its headline metrics.  A model's extra files (the What network's
shift-accuracy map, which the Where recipes train against) are listed and hashed the same way.

The manifest travels in the wheel; the weights (about 105 MB) do not.  :func:`zoo_path` finds
a file in the first of these places that holds it:

1. ``$WHATWHERE_ZOO_DIR``, a local folder of zoo files (offline use, a shared copy);
2. the package's own ``zoo/`` folder (a checkout or an editable install: the files are there);
3. the user cache, ``$XDG_CACHE_HOME/whatwhere/zoo`` (default ``~/.cache/whatwhere/zoo``);
4. a download into that cache from a base URL: ``$WHATWHERE_ZOO_URL``, else the manifest's
   ``base_url`` (``null`` until the files are published: then the error says how to set one).
   The file is fetched by ``pooch`` into a temporary file of the cache folder, checked (size and
   SHA-256) and only then renamed into place: nothing half-written is ever left under its name.

Every file is verified before its path is handed out: a truncated or altered file in 1 or 2 is
refused with an error naming the file, the expected hash and what to do; a bad file in the
cache is fetched again.  A failed download (unreachable host, HTTP error such as 404, a cut or
altered transfer) is a one-line :class:`ZooError`.  ``$WHATWHERE_ZOO_MANIFEST`` names another
manifest to use instead of the packaged one (tests, or trying a zoo before it is released).

Weights are ``safetensors`` only.  Use :func:`whatwhere.load` (``whatwhere.load("what")``) to
get a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import cache
from pathlib import Path

__all__ = [
    "ZooError",
    "add_to_zoo",
    "base_url",
    "cache_dir",
    "manifest",
    "manifest_path",
    "sha256_of",
    "zoo_dir",
    "zoo_entry",
    "zoo_names",
    "zoo_path",
]

PREFIX = "zoo:"
#: a local folder of zoo files, searched first
ENV_DIR = "WHATWHERE_ZOO_DIR"
#: the base URL the zoo files are downloaded from (overrides the manifest's ``base_url``)
ENV_URL = "WHATWHERE_ZOO_URL"
#: another manifest to use instead of the packaged one
ENV_MANIFEST = "WHATWHERE_ZOO_MANIFEST"
#: seconds to wait for the server (connecting, and between two reads)
TIMEOUT = 60


class ZooError(ValueError):
    """An unknown zoo entry, or a zoo file that is missing, fails its hash check or cannot be fetched."""


def zoo_dir() -> Path:
    """The package's ``zoo/`` folder: ``manifest.json``, and the weights in a checkout."""
    from importlib.resources import files

    return Path(str(files("whatwhere") / "zoo"))


def cache_dir() -> Path:
    """Where fetched zoo files are kept: ``$XDG_CACHE_HOME/whatwhere/zoo`` (default
    ``~/.cache/whatwhere/zoo``; not created).  Safe to delete: the files are fetched again."""
    from whatwhere.utils.cache import cache_dir as _cache_dir

    return _cache_dir("zoo")


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_path() -> Path:
    """``$WHATWHERE_ZOO_MANIFEST`` when set, else the packaged ``zoo/manifest.json``."""
    env = os.environ.get(ENV_MANIFEST)
    return Path(env).expanduser() if env else zoo_dir() / "manifest.json"


def _read_manifest(path: Path, *, required: bool) -> dict:
    if not path.is_file():
        if required:
            raise ZooError(f"{ENV_MANIFEST}={path}: no such file")
        return {"format": 1, "base_url": None, "models": {}}
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ZooError(f"zoo manifest {path} is not valid JSON ({exc})") from exc
    if not isinstance(m, dict) or not isinstance(m.get("models"), dict):
        raise ZooError(f"zoo manifest {path} has no 'models' mapping")
    return m


def manifest() -> dict:
    """The parsed manifest: ``{"format": 1, "base_url": URL or None, "models": {name: entry}}``."""
    return _read_manifest(manifest_path(), required=bool(os.environ.get(ENV_MANIFEST)))


def base_url() -> str | None:
    """The base URL zoo files are downloaded from: ``$WHATWHERE_ZOO_URL``, else the manifest's
    ``base_url``; ``None`` when neither is set (no download source)."""
    return os.environ.get(ENV_URL) or manifest().get("base_url") or None


def zoo_names() -> list[str]:
    """Names of the shipped models."""
    return sorted(manifest()["models"])


def zoo_entry(name: str) -> dict:
    """The manifest entry of ``name`` (``zoo:`` prefix allowed)."""
    name = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    models = manifest()["models"]
    if name not in models:
        raise ZooError(f"{name!r} is not in the model zoo; shipped models: {', '.join(sorted(models)) or 'none'}")
    return models[name]


@cache
def _verified(path: str, size: int, mtime_ns: int, expected: str) -> bool:
    # keyed by size and mtime, so that a file changed on disk is hashed again
    return sha256_of(path) == expected


def _problem(path: Path, rec: dict) -> str | None:
    """Why ``path`` is not the file ``rec`` describes (``None``: it is)."""
    stat = path.stat()
    if stat.st_size != rec["bytes"]:
        return f"has {stat.st_size} bytes, expected {rec['bytes']} (truncated or altered)"
    if not _verified(str(path), stat.st_size, stat.st_mtime_ns, rec["sha256"]):
        return f"fails its SHA-256 check (expected {rec['sha256']})"
    return None


def _record(name: str, file: str) -> dict:
    entry = zoo_entry(name)
    if file == "weights":
        rec = {"file": entry["file"], "sha256": entry["sha256"], "bytes": entry["bytes"]}
    elif file in entry.get("files", {}):
        rec = entry["files"][file]
    else:
        raise ZooError(
            f"zoo entry {name!r} has no {file!r} file (it has: weights"
            f"{''.join(', ' + k for k in entry.get('files', {}))})"
        )
    if not rec.get("file") or "/" in rec["file"] or "\\" in rec["file"] or rec["file"].startswith("."):
        raise ZooError(f"zoo entry {name!r}: bad file name {rec.get('file')!r} in the manifest")
    return rec


def zoo_path(name: str, file: str = "weights") -> Path:
    """The verified local path of a zoo entry's ``file`` (``"weights"`` or a key of its ``files``),
    fetched into the cache first when no local copy exists (module docstring: the order of sources).

    Raises:
        ZooError: unknown entry or file; a local copy whose size or SHA-256 differs from the
            manifest (truncated or altered); no copy and no download source; a failed download.
    """
    rec = _record(name, file)
    looked = []
    env_dir = os.environ.get(ENV_DIR)
    local = [(Path(env_dir).expanduser(), f"replace it, or unset {ENV_DIR}")] if env_dir else []
    local.append(
        (
            zoo_dir(),
            (
                "restore it (`git checkout -- src/whatwhere/zoo` in a checkout), or delete it to "
                "use the cache or a download"
            ),
        )
    )
    for folder, fix in local:
        path = folder / rec["file"]
        looked.append(str(folder))
        if path.is_file():
            why = _problem(path, rec)
            if why:
                raise ZooError(f"zoo file {path} {why}; {fix}")
            return path
    cached = cache_dir() / rec["file"]
    looked.append(str(cached.parent))
    if cached.is_file() and _problem(cached, rec) is None:
        return cached
    url = base_url()
    if not url:
        raise ZooError(
            f"zoo file {rec['file']} is missing (looked in {', '.join(looked)}) and no weights source "
            f"is configured: set {ENV_URL} to a base URL serving the zoo files, or {ENV_DIR} to a "
            f"folder holding them"
        )
    return _download(url, rec)


def _download(base: str, rec: dict) -> Path:
    """Fetch ``rec`` from ``base`` into the cache with pooch (temporary file, size and SHA-256
    checked, then renamed into place) and return its path."""
    from urllib.parse import quote, urlsplit

    src = f"${ENV_URL}" if os.environ.get(ENV_URL) else "the manifest's base_url"
    if urlsplit(base).scheme not in ("http", "https"):
        raise ZooError(f"{src} {base!r} is not an http(s) URL; for a local folder of zoo files set {ENV_DIR}")
    import pooch
    import requests

    url = f"{base.rstrip('/')}/{quote(rec['file'])}"
    fetch = pooch.HTTPDownloader(timeout=TIMEOUT)
    head = f"could not download zoo file {rec['file']} from {url} ({src})"

    def download(u, output_file, p):  # pooch's HTTP downloader, then the size (a clearer error than the hash's)
        fetch(u, output_file, p)
        got = os.path.getsize(output_file)
        if got != rec["bytes"]:
            raise ZooError(
                f"{head}: got {got} bytes, expected {rec['bytes']} (truncated or altered on the server); "
                f"nothing was kept"
            )

    # one line of ours on stderr instead of pooch's log (a first use waits for the download)
    print(
        f"whatwhere: fetching zoo file {rec['file']} ({rec['bytes'] / 1e6:.1f} MB) from {url} into {cache_dir()}",
        file=sys.stderr,
        flush=True,
    )
    log = pooch.get_logger()
    level = log.level
    log.setLevel("WARNING")
    try:
        path = Path(
            pooch.retrieve(
                url, known_hash=f"sha256:{rec['sha256']}", fname=rec["file"], path=cache_dir(), downloader=download
            )
        )
    except ZooError:
        raise
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        reason = exc.response.reason if exc.response is not None else str(exc)
        raise ZooError(f"{head}: HTTP {status} {reason} (is the file published there?)") from exc
    except requests.ConnectionError as exc:
        text = str(exc)
        why = (
            "connection refused"
            if "refused" in text.lower()
            else "unknown host"
            if "resolve" in text.lower() or "name or service" in text.lower()
            else "connection failed: " + " ".join(text.split())[:200]
        )
        raise ZooError(f"{head}: {why}; check the URL, or set {ENV_DIR} to a local copy for offline use") from exc
    except requests.Timeout as exc:
        raise ZooError(f"{head}: no answer in {TIMEOUT} s") from exc
    except requests.RequestException as exc:  # a transfer cut short (ChunkedEncodingError...)
        raise ZooError(
            f"{head}: the transfer broke off ({type(exc).__name__}), truncated download; nothing was kept"
        ) from exc
    except ValueError as exc:  # pooch's hash check
        raise ZooError(
            f"{head}: the file fails its SHA-256 check (expected {rec['sha256']}; altered on the "
            f"server?); nothing was kept"
        ) from exc
    except OSError as exc:
        raise ZooError(
            f"{head}: cannot write the cache {cache_dir()} ({exc.strerror or exc}); set XDG_CACHE_HOME or {ENV_DIR}"
        ) from exc
    finally:
        log.setLevel(level)
    problem = _problem(path, rec)
    if problem:  # pragma: no cover - pooch checked it
        raise ZooError(f"zoo file {path} {problem}")
    return path


def add_to_zoo(
    name: str,
    weights: str | Path,
    *,
    recipe: dict,
    params: int,
    metrics: dict | None = None,
    provenance: dict | None = None,
    files: dict[str, str | Path] | None = None,
) -> dict:
    """Copy ``weights`` (and ``files``) into the zoo as ``name`` and record it in the manifest.

    A maintainer's tool (``whatwhere zoo add``): it writes into the package folder (a checkout's
    ``src/whatwhere/zoo``); publish the new file under the manifest's ``base_url`` for wheel users.

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
    entry = {
        "file": dst.name,
        "sha256": sha256_of(dst),
        "bytes": dst.stat().st_size,
        "model": meta["model"],
        "model_args": meta.get("model_args", {}),
        "input_size": meta.get("input_size"),
        "params": int(params),
        "precision": recipe.get("precision", "fp32"),
        "recipe": recipe,
        "provenance": provenance or {},
        "metrics": metrics or {},
        "files": {},
    }
    for key, f in (files or {}).items():
        f = Path(f)
        target = d / f"{name}.{key}{f.suffix}"
        if f.resolve() != target.resolve():
            shutil.copyfile(f, target)
        entry["files"][key] = {"file": target.name, "sha256": sha256_of(target), "bytes": target.stat().st_size}
    m = _read_manifest(d / "manifest.json", required=False)  # the package's, even under $WHATWHERE_ZOO_MANIFEST
    m["models"][name] = entry
    m["models"] = dict(sorted(m["models"].items()))
    write_json(d / "manifest.json", m)
    return entry
