"""The model zoo: the trained models of whatwhere, checked before they are used.

``whatwhere/zoo/manifest.json`` lists every shipped model: its weights file and SHA-256, size,
registry model and arguments, trainable parameters, the resolved recipe that trained it, the
commit, machine and seed, and its headline metrics.  A model's extra files (the What network's
shift-accuracy map, which the Where recipes train against) are listed and hashed the same way.

The manifest travels in the wheel; the weights (about 56 MB) do not.  :func:`zoo_path` finds
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

An entry's floating tensors may be stored in a narrower dtype than the float32 the models compute
in: ``"storage": "float16"`` in its manifest entry and in its file's metadata
(:func:`convert_zoo`, ``whatwhere zoo convert``; absent: as trained, float32).  Every loader
casts them back up (:func:`zoo_state`, :func:`upcast`), so a model from the zoo is float32 either
way; a tensor of a model that kept a float16-stored part frozen is that part's (float16 values in
float32) and :func:`split_parts` recognises it as such.

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
    "STORAGE_DTYPES",
    "ZooError",
    "add_to_zoo",
    "base_url",
    "cache_dir",
    "convert_zoo",
    "manifest",
    "manifest_path",
    "sha256_of",
    "split_parts",
    "upcast",
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
#: the dtypes an entry's floating tensors may be stored in (:func:`convert_zoo`)
STORAGE_DTYPES = ("float32", "float16", "bfloat16")


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


def _take(owner: str, state: dict, parts: dict, device: str, seen: tuple[str, ...], read=None) -> dict:
    """``state`` completed with the tensors of ``parts`` (read from the zoo, verified), each as
    stored.  ``read(name)``: the tensors of an entry's own file (default: its verified zoo file)."""
    from whatwhere.engine.weightfiles import read_weights

    if read is None:

        def read(n):
            return read_weights(zoo_path(n), device)

    state = dict(state)
    for prefix, ref in parts.items():
        part, src = ref["model"], ref.get("from", "")
        what = f"zoo entry {owner!r}, part {prefix!r} ({part})"
        if part in seen:
            raise ZooError(f"{what}: the parts refer to each other in a cycle ({' -> '.join((*seen, part))})")
        try:
            sub = _take(part, read(part), zoo_parts(part), device, (*seen, part), read)
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


def upcast(state: dict) -> dict:
    """``state`` with its float16 and bfloat16 tensors cast to float32, the dtype the models
    compute in (exact: every such value is a float32 value); the other tensors as they are."""
    import torch

    return {k: v.float() if v.dtype in (torch.float16, torch.bfloat16) else v for k, v in state.items()}


def zoo_state(name: str, device: str = "cpu", *, stored: bool = False) -> dict:
    """The full state dict of zoo entry ``name``: the tensors of its file, and those of its
    ``parts`` (each part file verified like any zoo file).

    Args:
        stored: keep each tensor in the dtype its file stores it in (a float16-stored entry's or
            part's tensors in float16); by default those are cast up to float32 (:func:`upcast`),
            the dtype of a model built from the registry.

    Raises:
        ZooError: as :func:`zoo_path`, for the entry's file or a part's; a part missing from the
            manifest, replaced since (another SHA-256), or without a tensor it should give.
    """
    from whatwhere.engine.weightfiles import read_weights

    name = name[len(PREFIX) :] if name.startswith(PREFIX) else name
    state = _take(name, read_weights(zoo_path(name), device), zoo_parts(name), device, (name,))
    return state if stored else upcast(state)


def _identical(a, b) -> bool:
    """Same dtype, shape and bytes (``torch.equal`` would take 0.0 for -0.0)."""
    import torch

    def raw(t):
        return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)

    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(raw(a), raw(b))


def _matches(stored, t) -> bool:
    """``t`` is the tensor ``stored`` of a zoo file, in ``t``'s dtype: cast to ``stored``'s dtype
    it is bit-identical to it, and that cast loses nothing (cast back it is ``t`` again).  A model
    initialised from a float16-stored part holds its tensors in float32: they match that part."""
    if stored.dtype == t.dtype or not (stored.is_floating_point() and t.is_floating_point()):
        return _identical(stored, t)
    if stored.shape != t.shape:
        return False
    down = t.to(stored.dtype)
    return _identical(down, stored) and _identical(down.to(t.dtype), t)


def split_parts(state: dict, init) -> tuple[dict, dict]:
    """``(own, parts)``: the tensors of ``state`` to store, and the ``parts`` references for the
    others, bit-identical to tensors of the zoo entries named by a recipe's ``init``
    (``"zoo:NAME"`` for the whole model, or ``{submodule: "zoo:NAME"}``; other specs are skipped)
    once cast to the dtype the entry stores them in (:func:`_matches`: float32 tensors that
    are a float16-stored part's values, as a frozen submodule initialised from it holds them).
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
        other = zoo_state(part, stored=True)
        mine = {k[len(prefix) :] for k in own if k.startswith(prefix)}
        heads = {k.split(".", 1)[0] for k in other}
        src = f"{heads.pop()}." if not mine & set(other) and len(heads) == 1 else ""
        names = [k[len(src) :] for k in other if k.startswith(src)]
        same = sorted(t for t in names if t in mine and _matches(other[src + t], own[prefix + t]))
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

    from whatwhere.engine.weightfiles import read_weights
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
        if set(back) != set(state) or not all(_matches(back[k], state[k]) for k in state):  # pragma: no cover
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


def _refers_to(name: str, targets: set[str], models: dict, seen: tuple[str, ...] = ()) -> bool:
    """Whether entry ``name`` takes tensors from one of ``targets``, directly or through a part."""
    for ref in (models.get(name, {}).get("parts") or {}).values():
        part = ref.get("model") if isinstance(ref, dict) else None
        if not isinstance(part, str):
            continue
        if part in targets or (
            part in models and part not in seen and _refers_to(part, targets, models, (*seen, name))
        ):
            return True
    return False


def _safetensors_bytes(state: dict, metadata: dict[str, str]) -> bytes:
    """The safetensors file of ``state`` and ``metadata``, the same bytes for the same input.

    ``safetensors`` writes the metadata in the order of a hash map, which changes from one process
    to the next (so would the file's SHA-256): the header is written again with the metadata keys
    sorted and the tensors in the order of their data, padded with spaces to 8 bytes, as
    ``safetensors`` does; the tensor data is its own, unchanged."""
    import struct

    from safetensors.torch import save

    raw = save(state, metadata=metadata)
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", None) or {}
    ordered = {"__metadata__": dict(sorted(meta.items()))} if meta else {}
    ordered.update(sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"], kv[0])))
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + raw[8 + n :]


def _check_convert_folder(mpath: Path) -> Path:
    """The folder the converted files go to (the manifest's), refused unless it is the first searched."""
    folder = mpath.parent
    env_dir = os.environ.get(ENV_DIR)
    first = Path(env_dir).expanduser() if env_dir else zoo_dir()
    if first.resolve() != folder.resolve():
        raise ZooError(
            f"the converted files are written beside the manifest {mpath}, but zoo files are looked for "
            f"first in {first}: set {ENV_DIR} to {folder} (and {ENV_MANIFEST} to its manifest.json) to "
            f"convert a copy, or unset both to convert the package's zoo"
        )
    return folder


def _converted_states(names: list[str], dtype: str) -> tuple[dict[str, dict], dict[str, dict]]:
    """Each entry's own tensors (read and verified) with its floating ones cast to ``dtype``, and its
    file metadata with ``"storage"`` set.  Refuses a value beyond the range of ``dtype``."""
    import torch
    from safetensors import safe_open

    from whatwhere.engine.weightfiles import read_weights

    target = getattr(torch, dtype)
    new: dict[str, dict] = {}
    metas: dict[str, dict] = {}
    for name in names:
        zoo_parts(name)  # a composite's references must be current
        src = zoo_path(name)
        with safe_open(str(src), framework="pt") as fh:
            metas[name] = {**(fh.metadata() or {}), "storage": json.dumps(dtype)}
        out = {}
        for k, v in read_weights(src).items():
            if v.is_floating_point():
                c = v.to(target).contiguous()
                if not bool(torch.isfinite(c).all()):
                    raise ZooError(
                        f"zoo entry {name!r}: tensor {k!r} has values beyond the range of {dtype} (largest "
                        f"|value| {float(v.abs().max()):g}); it cannot be stored in {dtype}"
                    )
                out[k] = c
            else:
                out[k] = v.contiguous()
        new[name] = out
    return new, metas


def _check_composites(new: dict[str, dict], models: dict, dtype: str) -> None:
    """Every composite taking tensors from a converted entry still assembles, and one that is not
    converted itself takes exactly the tensors it was built with."""
    from whatwhere.engine.weightfiles import read_weights

    def read_new(n):
        return new[n] if n in new else read_weights(zoo_path(n))

    converted = set(new)
    for comp in sorted(models):
        if not _refers_to(comp, converted, models):
            continue
        parts = zoo_parts(comp)
        after = _take(comp, read_new(comp), parts, "cpu", (comp,), read_new)
        if comp in converted:
            continue
        before = zoo_state(comp, stored=True)
        changed = sorted(k for k in after if not _matches(after[k], before[k]))
        if changed:
            froms = sorted({ref["model"] for ref in parts.values()})
            raise ZooError(
                f"zoo entry {comp!r} takes {', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''} from "
                f"{', '.join(froms)}: stored in {dtype} they would no longer match what {comp} was built with "
                f"while its own file stays as it is; name {comp} in the same command"
            )


def _converted_manifest(m: dict, files: dict[str, Path], dtype: str) -> tuple[dict, dict, list]:
    """The manifest with each converted entry's new ``sha256``, ``bytes`` and ``storage`` (``files``:
    name -> its new file) and every part reference to one re-pinned; the per-entry result; the
    references updated, ``(composite, prefix, part)``."""
    new_m = json.loads(json.dumps(m))
    result: dict = {}
    for name, path in files.items():
        e = new_m["models"][name]
        sha, size = sha256_of(path), path.stat().st_size
        result[name] = {
            "file": e["file"],
            "storage": dtype,
            "bytes_before": e["bytes"],
            "bytes": size,
            "sha256": sha,
            "unchanged": sha == e["sha256"],
        }
        rebuilt = {}  # the same keys in the same order, "storage" right after "bytes"
        for k, v in e.items():
            if k != "storage":
                rebuilt[k] = v
            if k == "bytes":
                rebuilt["storage"] = dtype
        rebuilt.update(sha256=sha, bytes=size, storage=dtype)
        new_m["models"][name] = rebuilt
    repinned = []
    for comp, e in new_m["models"].items():
        for prefix, ref in (e.get("parts") or {}).items():
            part = ref.get("model") if isinstance(ref, dict) else None
            if part in files and ref["sha256"] != result[part]["sha256"]:
                ref["sha256"] = result[part]["sha256"]
                repinned.append((comp, prefix, part))
    return new_m, result, repinned


def convert_zoo(names: list[str], dtype: str) -> dict[str, dict]:
    """Store the floating tensors of the zoo entries ``names`` in ``dtype`` (``whatwhere zoo
    convert``; one of :data:`STORAGE_DTYPES`).

    Each entry's own file is rewritten (a composite's: only its own tensors; its parts are other
    entries) with its metadata kept and ``"storage": dtype`` added; its manifest entry gets the new
    ``sha256`` and ``bytes`` and ``"storage"``, and every ``parts`` reference to it the new pin.
    The zoo rewritten is the manifest of :func:`manifest_path` and the folder that holds it, which
    must be the first one searched (``$WHATWHERE_ZOO_DIR``, else the package's ``zoo/``): to
    convert a copy, point both variables at it.  The old files are read wherever
    :func:`zoo_path` finds them, verified.

    The files' bytes depend on their tensors and metadata only (:func:`_safetensors_bytes`): the
    same zoo converted twice gives the same SHA-256s, and an entry already so stored is unchanged.
    Everything is checked before anything is written, and written all or nothing: new files
    beside the old, renamed into place, the manifest last, then the converted entries and those
    referring to them read back and assembled; a failure at any step puts the old files and
    manifest back.

    Raises:
        ZooError: an unknown entry or dtype; a zoo folder that is not the first one searched; a
            value beyond the range of ``dtype``; a composite not named that takes tensors from a
            named entry whose values the conversion changes (its parts would no longer match what
            it was built with: name it too); a part reference that is already stale.
        WriteError: a write failed (the zoo is as it was).

    Returns:
        ``{name: {"file", "storage", "bytes_before", "bytes", "sha256", "unchanged"}}``, and under
        the key ``"repinned"`` the list of ``(composite, prefix, part)`` references updated.
    """
    import errno
    import tempfile

    from whatwhere.utils.io import WriteError, write_bytes, write_json

    if dtype not in STORAGE_DTYPES:
        raise ZooError(f"unsupported storage dtype {dtype!r}: one of {', '.join(STORAGE_DTYPES)}")
    names = list(dict.fromkeys(n[len(PREFIX) :] if n.startswith(PREFIX) else n for n in names))
    if not names:
        raise ZooError("name the zoo entries to convert")
    mpath = manifest_path()
    m = _read_manifest(mpath, required=True)
    models = m["models"]
    for name in names:
        zoo_entry(name)  # unknown: the error lists the shipped models
    folder = _check_convert_folder(mpath)
    new, metas = _converted_states(names, dtype)  # read, verify and convert in memory
    _check_composites(new, models, dtype)

    # write the new files beside the old ones, then the new manifest; all or nothing
    tmps: dict[str, Path] = {}
    moved: list[tuple[Path, Path | None]] = []  # (file, its previous version set aside, or None)
    old_manifest = mpath.read_bytes()
    manifest_written = False
    try:
        for name in names:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{models[name]['file']}.", suffix=".part")
            os.close(fd)
            tmps[name] = Path(tmp)
            Path(tmp).write_bytes(_safetensors_bytes(new[name], metas[name]))
            os.chmod(tmp, 0o644)
        new_m, result, repinned = _converted_manifest(m, dict(tmps), dtype)
        for name in names:
            dst = folder / models[name]["file"]
            aside = None
            if dst.exists():
                fd, kept = tempfile.mkstemp(dir=folder, prefix=f".{dst.name}.", suffix=".orig")
                os.close(fd)
                aside = Path(kept)
                os.replace(dst, aside)
            moved.append((dst, aside))
            os.replace(tmps.pop(name), dst)
        manifest_written = True
        write_json(mpath, new_m)
        # read back: each converted entry and each composite referring to one, as loaders will
        converted = set(names)
        for name in sorted(converted | {c for c in new_m["models"] if _refers_to(c, converted, new_m["models"])}):
            zoo_state(name)
    except BaseException as exc:
        for leftover in tmps.values():
            leftover.unlink(missing_ok=True)
        for dst, aside in reversed(moved):
            if aside is not None:
                os.replace(aside, dst)
            else:
                dst.unlink(missing_ok=True)
        if manifest_written:
            write_bytes(mpath, old_manifest)
        if not isinstance(exc, Exception):  # Ctrl-C: put back, and pass it on
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, ZooError):
            raise ZooError(f"{msg}; nothing was converted, the zoo is as it was") from exc
        raise WriteError(
            getattr(exc, "errno", None) or errno.EIO,
            f"zoo convert failed ({type(exc).__name__}: {msg}); nothing was converted, the zoo is as it was",
        ) from exc
    for _, aside in moved:
        if aside is not None:
            aside.unlink(missing_ok=True)
    result["repinned"] = repinned
    return result
