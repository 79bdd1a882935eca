"""The task generator: MNIST digits, MotionClouds clutter and the displays built from them."""

from whatwhere.data.clutter import envelope, motion_clouds
from whatwhere.data.display import DisplayConfig, DisplayDataset, Displays, DisplaySet, preset, render
from whatwhere.data.mnist import MNIST, MNISTError, fetch, load

__all__ = ["envelope", "motion_clouds", "DisplayConfig", "DisplayDataset", "Displays", "DisplaySet",
           "preset", "render", "MNIST", "MNISTError", "fetch", "load"]
