"""The spatial-transformer classifiers of Jaderberg, Simonyan, Zisserman & Kavukcuoglu 2015,
"Spatial Transformer Networks" (NIPS), for their translated cluttered MNIST task (TC, 60×60,
preset ``stn-tc``), and the CNN baseline they are compared with.

* :class:`STCNN` (registry ``st_cnn``; ``st_fcn`` with an FC localiser and classifier): a
  localisation network on the full ``N×N`` display regresses an affine ``θ`` (6 numbers, last
  layer weights 0 and bias the identity, so that at initialisation every display gets the
  identity transform); the display is warped by the shared sampler
  (:func:`whatwhere.ops.sampling.sample`, bilinear, ``align_corners=False``, black outside: the
  ``pad`` 0 of the standard tasks) onto an ``out × out`` grid (30×30 by default); a classifier
  reads that grid.  At the identity the 30×30 output of a 60×60 display is exactly its 2×2
  average pooling (each output point falls between four input pixels); of other sizes, the
  bilinear resize (``F.interpolate(..., mode="bilinear", align_corners=False)``).
* :class:`TCConvNet` (registry ``cnn``): the classifier CNN of ST-CNN applied to the whole
  display, without a transformer (the paper's "CNN" row); the "FCN" row is the registry's ``fc``.

What comes from the paper (as we recall it: **not checked against the paper or its appendix
here**, which we could not consult; the error rates are from secondary transcriptions): the
task (60×60, the digit translated, 6×6 crops of other digits as clutter; the number of crops is
the preset's assumption); the comparison of FCN / CNN / ST-FCN / ST-CNN with the transformer at
the start of the network; an affine
transformer whose localisation network sees the whole input and is initialised to the identity;
an output grid smaller than the input for TC (the transformer also downsamples); 10 softmax
outputs, ReLU units; training with SGD.  Published errors (TC): FCN 13.2, CNN 3.5, ST-FCN 2.0,
ST-CNN 1.7 %.

Our choices (not the paper's, or unverified): the 30×30 output grid (a 2× downsampling at the
identity); the layer sizes below (the conv localiser after common reproductions of the TC
experiment: max-pool 2, two 5×5 convolutions of 20 filters, 50 hidden units; the classifier a
small two-convolution CNN with "same" padding); the FC localiser of ``st_fcn``; no dropout, no
batch normalisation.

Layers, for ``N``-pixel displays and an ``out``-pixel grid (``p(n) = n // 2``):

* conv localiser: MaxPool 2 → Conv(1→20, k5) → ReLU → MaxPool 2 → Conv(20→20, k5) → ReLU →
  flatten ``20·s²`` (``s = p(p(N) − 4) − 4``: 9 at 60 px, 19 at 100 px) → Linear(→50) →
  ReLU → Linear(50→6);
* FC localiser: flatten ``N²`` → Linear(→64) → ReLU → Linear(64→32) → ReLU → Linear(32→6);
* CNN classifier (side ``n``): Conv(1→32, k5, pad 2) → ReLU → MaxPool 2 → Conv(32→32, k5,
  pad 2) → ReLU → MaxPool 2 → flatten ``32·p(p(n))²`` → Linear(→256) → ReLU → Linear(256→10);
* FC classifier (side ``n``): flatten ``n²`` → Linear(→256) → ReLU → Linear(256→256) → ReLU →
  Linear(256→10).

Parameters (defaults, ``out = 30``): ``st_cnn`` 522,594 at 60 px (localiser 91,896,
classifier 430,698), 802,594 at 100 px (localiser 371,896); ``st_fcn`` 531,760 at 60 px
(localiser 232,742, classifier 299,018), 941,360 at 100 px; ``cnn`` 1,872,490 at 60 px,
5,149,290 at 100 px (the ``fc`` baseline of ``fcn-tc``, 2 × 256 units: 990,218 at 60 px).
"""

from __future__ import annotations

import torch
from torch import nn

from whatwhere.models.ram import _check_size
from whatwhere.models.stn import IDENTITY, _Transformer, regressor
from whatwhere.ops.sampling import as_nchw, sample

__all__ = ["STCNN", "TCConvNet", "cnn_classifier", "fcn_classifier", "st_fcn"]

KINDS = ("cnn", "fcn")


def _positive(name: str, v) -> int:
    if isinstance(v, bool) or int(v) != v or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v}")
    return int(v)


def cnn_classifier(side: int, filters: int = 32, hidden: int = 256) -> nn.Sequential:
    """The CNN classifier of ``side×side`` views (module docstring): ``(B, 1, side, side)`` → ``(B, 10)``."""
    if side < 4:
        raise ValueError(f"the CNN classifier needs views of at least 4×4 px, got {side}")
    flat = filters * (side // 4) ** 2
    return nn.Sequential(
        nn.Conv2d(1, filters, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(filters, filters, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def fcn_classifier(side: int, hidden: int = 256) -> nn.Sequential:
    """The FC classifier of ``side×side`` views: ``n² → hidden → hidden → 10``, ReLU."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(side * side, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def _localiser(kind: str, size: int) -> nn.Sequential:
    """The localisation network over the ``size×size`` display → ``(B, 6)``, identity at init."""
    if kind == "cnn":
        s = (((size // 2) - 4) // 2) - 4
        if s < 1:
            raise ValueError(f"the conv localiser needs displays of at least 28 px, got {size}")
        convs = [nn.MaxPool2d(2), nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 20, 5), nn.ReLU()]
        return nn.Sequential(*convs, nn.Flatten(), regressor(20 * s * s, 50, IDENTITY))
    return nn.Sequential(nn.Flatten(), nn.Linear(size * size, 64), nn.ReLU(), regressor(64, 32, IDENTITY))


class STCNN(_Transformer):
    """ST-CNN / ST-FCN of the STN paper's translated-cluttered experiment (module docstring).

    Args:
        size: display side N (60 for ``stn-tc``; 28 or any integer >= 32).
        out: side of the transformer's output grid, the classifier's view (30).
        classifier: ``"cnn"`` (ST-CNN) or ``"fcn"`` (ST-FCN).
        localiser: ``"cnn"`` or ``"fcn"`` (default: the same kind as ``classifier``).
        pad: value read outside the display (0: the black displays of the standard tasks).

    ``forward(images (B, N, N)) -> logits (B, 10)``; ``forward_with_theta`` also returns ``θ``
    ``(B, 2, 3)`` (output grid → display, PyTorch's normalised coordinates, see
    :mod:`whatwhere.ops.sampling`), ``glimpse(images)`` the warped view ``(B, 1, out, out)``.
    """

    def __init__(
        self, size: int = 60, out: int = 30, classifier: str = "cnn", localiser: str | None = None, pad: float = 0.0
    ) -> None:
        super().__init__()
        localiser = classifier if localiser is None else localiser
        for name, v in (("classifier", classifier), ("localiser", localiser)):
            if v not in KINDS:
                raise ValueError(f"{name} must be one of {', '.join(KINDS)}, got {v!r}")
        self.input_size = _check_size(size)
        self.out_size = _positive("out", out)
        self.pad = float(pad)
        self.kind = classifier
        self.localiser = _localiser(localiser, self.input_size)
        self.classifier = cnn_classifier(self.out_size) if classifier == "cnn" else fcn_classifier(self.out_size)

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, N, N)`` → ``(B, 2, 3)``."""
        return self.localiser(x).view(-1, 2, 3)

    def _view(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return sample(x, theta, self.out_size, align_corners=self.align_corners, background=self.pad)


def st_fcn(size: int = 60, out: int = 30, localiser: str = "fcn", pad: float = 0.0) -> STCNN:
    """ST-FCN: :class:`STCNN` with an FC classifier (and, by default, an FC localiser)."""
    return STCNN(size=size, out=out, classifier="fcn", localiser=localiser, pad=pad)


class TCConvNet(nn.Module):
    """The CNN baseline: ST-CNN's classifier CNN on the whole ``N×N`` display, no transformer.

    Args:
        size: display side N (60).
        filters: channels of both convolutions (32); hidden: units of the FC layer (256).

    ``forward(images (B, N, N)) -> logits (B, 10)``.
    """

    def __init__(self, size: int = 60, filters: int = 32, hidden: int = 256) -> None:
        super().__init__()
        self.input_size = _check_size(size)
        self.net = cnn_classifier(self.input_size, _positive("filters", filters), _positive("hidden", hidden))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, N, N)`` or ``(B, 1, N, N)`` → logits ``(B, 10)``."""
        return self.net(as_nchw(images, self.input_size))
