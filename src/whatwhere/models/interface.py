"""The contracts every model of whatwhere follows (structural: subclassing is not needed).

* :class:`Classifier` — ``model(images (B, N, N)) -> logits (B, 10)`` with ``input_size`` N
  (28: the model classifies the central 28×28 fovea of a display; 128: the whole display).
* :class:`GlimpseModel` — a classifier that places a glimpse (the spatial transformers, the
  foveated saccadic transformer): ``forward_with_theta(images) -> (logits, theta)``, ``theta``
  ``(B, 2, 3)`` the affine map of its last glimpse, ``out_size`` the glimpse side.  Protocols use
  it for the glimpse hit rate and θ spread.
* :class:`SaccadicModel` — a model that moves the eye in discrete saccades and reports every
  fixation (:class:`whatwhere.models.agent.Agent`): ``run(images, K)`` and
  ``run_until_confident(images, K)`` return a :class:`~whatwhere.models.agent.SaccadeTrace`.

Models may also carry ``bandwidth`` (int): how many numbers their localiser or Where pathway
reads per display (16,384 pixels for STN-128, 768 for POLO-ATN, 2,880 for the retina).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["Classifier", "GlimpseModel", "SaccadicModel", "is_glimpse_model", "is_saccadic"]


@runtime_checkable
class Classifier(Protocol):
    """``(B, N, N)`` or ``(B, 1, N, N)`` displays -> ``(B, 10)`` logits."""

    input_size: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class GlimpseModel(Protocol):
    """A classifier that also returns the transform of its (last) glimpse."""

    input_size: int
    out_size: int

    def forward_with_theta(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class SaccadicModel(Protocol):
    """A model that makes discrete saccades (answers after 0, 1, ..., K of them)."""

    def run(self, images: torch.Tensor, n_saccades: int): ...

    def run_until_confident(self, images: torch.Tensor, max_saccades: int): ...


def is_glimpse_model(m: object) -> bool:
    """True for a :class:`GlimpseModel`."""
    return isinstance(m, GlimpseModel) and callable(getattr(m, "forward_with_theta", None))


def is_saccadic(m: object) -> bool:
    """True for a :class:`SaccadicModel`."""
    return isinstance(m, SaccadicModel)
