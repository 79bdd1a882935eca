"""The task generator: MNIST digits, MotionClouds clutter and the displays built from them.

- :class:`DisplayConfig`: everything that defines the display distribution (presets ``paper``
  and ``dabane2021`` via :func:`preset`);
- :class:`DisplaySet`: a seeded, indexable set of displays over one MNIST split;
- :class:`DisplayBatch`: a batch of rendered displays with labels, offsets and contrasts;
- :class:`DisplayEpoch`: one epoch of a set as a ``torch.utils.data.Dataset``.
"""

from whatwhere.data.clutter import envelope, motion_clouds
from whatwhere.data.display import (
    DisplayBatch,
    DisplayConfig,
    DisplayEpoch,
    DisplaySet,
    check_display_keys,
    preset,
    render,
)
from whatwhere.data.mnist import MNIST, MNISTError, fetch, load

__all__ = [
    "envelope",
    "motion_clouds",
    "DisplayConfig",
    "DisplayEpoch",
    "DisplayBatch",
    "DisplaySet",
    "check_display_keys",
    "preset",
    "render",
    "MNIST",
    "MNISTError",
    "fetch",
    "load",
]
