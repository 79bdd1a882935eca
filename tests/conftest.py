import os

import pytest
import torch

from whatwhere.data import mnist

try:  # property tests: derandomised on CI (the same examples every run), random locally
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True)
    if os.environ.get("CI"):
        _hyp_settings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is in the `test` extra
    pass


@pytest.fixture(scope="session")
def mnist_test():
    """The real MNIST test split (`make test` fetches it first; the tests fail without it)."""
    try:
        return mnist.load("test")
    except mnist.MNISTError as exc:  # pragma: no cover - depends on the machine
        pytest.fail(f"MNIST not available ({exc}); run `whatwhere data fetch` or `make test`")


@pytest.fixture(scope="session")
def synthetic_digits():
    """64 synthetic 28×28 'digits' (bright squares with a centred centre of mass), uint8."""
    g = torch.Generator().manual_seed(0)
    imgs = torch.zeros(64, 28, 28, dtype=torch.uint8)
    for k in range(64):
        h = 3 + int(torch.randint(0, 5, (1,), generator=g))
        imgs[k, 14 - h:15 + h, 14 - h:15 + h] = 255
    labels = torch.arange(64) % 10
    return imgs, labels
