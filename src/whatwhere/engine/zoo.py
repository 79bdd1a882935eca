"""The model zoo: the trained models of whatwhere, checked before they are used.

``whatwhere/zoo/manifest.json`` lists every shipped model: its weights file and SHA-256, size,
registry model and arguments, trainable parameters, the resolved recipe that trained it, the
commit, machine and seed, and its headline metrics.  A model's extra files (the What network's
shift-accuracy map, which the Where recipes train against) are listed and hashed the same way.

The manifest travels in the wheel; the weights (about 98 MB) do not.  :func:`zoo_path` finds
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

A composite model refers to its parts instead of copying them: an entry's ``parts`` maps a
state-dict prefix of the model to another zoo entry, e.g. ``{"where.": {"model": "where-c0.7",
"sha256": ..., "from": "net.", "tensors": ["fc1.bias", "fc1.weight"]}}`` (``from``: the part's
own prefix, replaced by the key, default ``""``; ``tensors``: the names under the prefix taken
from the part, default all of them).  The entry's file then holds only its other tensors.
:func:`zoo_state` assembles the full state dict: each part's file is found and verified like any
zoo file (from any of the sources above), and must still be the one referred to (``sha256``:
the part entry's hash when the composite was added); a missing or mismatched part is a one-line
:class:`ZooError` naming the composite and the part.  :func:`add_to_zoo` writes the references
itself: the tensors bit-identical to those of the zoo entries the recipe's ``init`` names.

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
    "split_parts",
    "zoo_dir",
    "zoo_entry",
    "zoo_names",
    "zoo_parts",
    "zoo_path",
    "zoo_state",
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


def zoo_parts(name: str) -> dict[str, dict]:
    """The ``parts`` of entry ``name`` (``{}`` for none), checked: well formed, and each part
    entry in the manifest with the SHA-256 recorded when the composite was added."""
    entry = zoo_entry(name)
    name = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    parts = entry.get("parts") or {}
    if not isinstance(parts, dict):
        raise ZooError(f"zoo entry {name!r}: 'parts' must map state-dict prefixes to zoo entries")
    models = manifest()["models"]
    for prefix, ref in parts.items():
        what = f"zoo entry {name!r}, part {prefix!r}"
        tensors = ref.get("tensors", []) if isinstance(ref, dict) else None
        if (
            not isinstance(ref, dict)
            or not isinstance(ref.get("model"), str)
            or not isinstance(ref.get("sha256"), str)
            or not isinstance(ref.get("from", ""), str)
            or not isinstance(tensors, list)
            or not all(isinstance(t, str) for t in tensors)
        ):
            raise ZooError(f"{what}: needs 'model' and 'sha256' (and optionally 'from', 'tensors') in the manifest")
        part = ref["model"]
        if part not in models:
            raise ZooError(f"{what} refers to zoo entry {part!r}, which is not in the manifest")
        got = models[part].get("sha256")
        if got != ref["sha256"]:
            raise ZooError(
                f"{what}: built on {part} with SHA-256 {ref['sha256']}, but the zoo's {part} has {got} "
                f"(the part was replaced): restore that {part}, or add {name} again"
            )
    return parts


def _take(owner: str, state: dict, parts: dict, device: str, seen: tuple[str, ...]) -> dict:
    """``state`` completed with the tensors of ``parts`` (read from the zoo, verified)."""
    from whatwhere.engine.checkpoints import read_weights

    state = dict(state)
    for prefix, ref in parts.items():
        part, src = ref["model"], ref.get("from", "")
        what = f"zoo entry {owner!r}, part {prefix!r} ({part})"
        if part in seen:
            raise ZooError(f"{what}: the parts refer to each other in a cycle ({' -> '.join((*seen, part))})")
        try:
            sub = _take(part, read_weights(zoo_path(part), device), zoo_parts(part), device, (*seen, part))
        except ZooError as exc:
            raise ZooError(f"{what}: {exc}") from exc
        names = ref["tensors"] if "tensors" in ref else [k[len(src) :] for k in sub if k.startswith(src)]
        for t in names:
            if src + t not in sub:
                raise ZooError(f"{what}: {part} has no tensor {src + t!r}")
            if prefix + t in state:
                raise ZooError(f"{what}: tensor {prefix + t!r} is both in the file and in the part")
            state[prefix + t] = sub[src + t]
    return state


def zoo_state(name: str, device: str = "cpu") -> dict:
    """The full state dict of zoo entry ``name``: the tensors of its file, and those of its
    ``parts`` (each part file verified like any zoo file).

    Raises:
        ZooError: as :func:`zoo_path`, for the entry's file or a part's; a part missing from the
            manifest, replaced since (another SHA-256), or without a tensor it should give.
    """
    from whatwhere.engine.checkpoints import read_weights

    name = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    return _take(name, read_weights(zoo_path(name), device), zoo_parts(name), device, (name,))


def _identical(a, b) -> bool:
    """Same dtype, shape and bytes (``torch.equal`` would take 0.0 for -0.0)."""
    import torch

    def raw(t):
        return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)

    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(raw(a), raw(b))


def split_parts(state: dict, init) -> tuple[dict, dict]:
    """``(own, parts)``: the tensors of ``state`` to store, and the ``parts`` references for the
    others, bit-identical to tensors of the zoo entries named by a recipe's ``init``
    (``"zoo:NAME"`` for the whole model, or ``{submodule: "zoo:NAME"}``; other specs are skipped).
    A part whose keys share one leading component that the submodule lacks (a Where model's
    ``net.``) is matched without it, as the trainer's ``init`` does."""
    specs = {"": init} if isinstance(init, str) else dict(init or {})
    models = manifest()["models"]
    own, parts = dict(state), {}
    for sub, spec in specs.items():
        part = spec[len(PREFIX) :] if isinstance(spec, str) and spec.startswith(PREFIX) else None
        if part is None or part not in models:
            continue
        prefix = f"{sub}." if sub else ""
        other = zoo_state(part)
        mine = {k[len(prefix) :] for k in own if k.startswith(prefix)}
        heads = {k.split(".", 1)[0] for k in other}
        src = f"{heads.pop()}." if not mine & set(other) and len(heads) == 1 else ""
        names = [k[len(src) :] for k in other if k.startswith(src)]
        same = sorted(t for t in names if t in mine and _identical(other[src + t], own[prefix + t]))
        if not same:
            continue
        ref: dict = {"model": part, "sha256": models[part]["sha256"]}
        if src:
            ref["from"] = src
        if len(same) < len(names):
            ref["tensors"] = same
        parts[prefix] = ref
        for t in same:
            del own[prefix + t]
    return own, parts


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

    The tensors bit-identical to those of a zoo entry that ``recipe["init"]`` names (a frozen
    submodule) are not copied: the entry refers to that part (``parts``, :func:`split_parts`).

    A maintainer's tool (``whatwhere zoo add``): it writes into the package folder (a checkout's
    ``src/whatwhere/zoo``); publish the new file under the manifest's ``base_url`` for wheel users.

    Returns:
        the new manifest entry.
    """
    import shutil

    from safetensors import safe_open
    from safetensors.torch import save_file

    from whatwhere.engine.checkpoints import read_weights
    from whatwhere.utils.io import atomic_write, write_json

    if not name or "/" in name or name.startswith(PREFIX):
        raise ZooError(f"bad zoo name {name!r}")
    src = Path(weights)
    with safe_open(str(src), framework="pt") as fh:
        raw = fh.metadata() or {}
    meta = {k: json.loads(v) for k, v in raw.items()}
    if "model" not in meta:
        raise ZooError(f"{src}: no model metadata (not a whatwhere weights file)")
    d = zoo_dir()
    dst = d / f"{name}.safetensors"
    state = read_weights(src)
    own, parts = split_parts(state, recipe.get("init"))
    if parts:  # only the tensors of its own, checked to assemble back into the same state dict
        back = _take(name, own, parts, "cpu", (name,))
        if set(back) != set(state) or not all(_identical(back[k], state[k]) for k in state):  # pragma: no cover
            raise ZooError(f"{name}: its parts do not assemble back into {src}")
        atomic_write(dst, lambda tmp: save_file({k: v.contiguous() for k, v in own.items()}, tmp, metadata=raw))
    elif src.resolve() != dst.resolve():
        shutil.copyfile(src, dst)
    entry = {
        "file": dst.name,
        "sha256": sha256_of(dst),
        "bytes": dst.stat().st_size,
        **({"parts": parts} if parts else {}),
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
