"""The Where pathway: the MLP that predicts the What accuracy after each possible saccade.

Daucé, Albiges & Perrinet (2020), "A dual foveal-peripheral visual processing model implements
efficient saccade selection", J. Vision 20(8):22 (notebooks of
github.com/laurentperrinet/WhereIsMyMNIST).

**Network** (:class:`WhereNet`, the paper's configuration): the 2880 retina codes (raw, no
normalisation) -> Linear 1000 -> ReLU -> Linear 1000 -> ReLU -> dropout 0.5 -> Linear 240
logits, one per collicular cell (``azimuth * 10 + ring``); ``sigmoid(logits)`` is the predicted
accuracy of the What network after a saccade to that cell.  No batch-norm (the paper's runs had
it switched off).  4,122,240 parameters.

**Model** (:class:`Where`, registered as ``where``, input 128; ``size`` builds it for ``N x N``
displays, e.g. 60 or 100 for the standard cluttered-MNIST tasks, with the retina of
:meth:`~whatwhere.retina.RetinaConfig.for_size`: the same 2880 codes and 240 cells, so the
same MLP): ``forward(images (B, N, N)) -> logits (B, 240)``; it encodes the display with its own log-Gabor
:class:`~whatwhere.retina.Retina` submodule, whose tensors are non-persistent buffers, so that
checkpoints hold only the MLP and ``.to(device)`` moves everything.

**Encoding.**  ``offset_clip=True`` (default) encodes ``clip(whiten(x) + 0.5, 0, 1)``, the input
the published Where networks were trained on.  The original closed loop re-encoded
post-saccade views with plain ``whiten(x)`` instead; here the agent encodes every view the way
the model was trained (see :mod:`whatwhere.models.agent`, whose ``faithful=True`` reproduces the
original).  ``offset_clip=False`` trains on plain whitening: the two encodings differ, up to the
0.01 % of clipped pixels, by a constant vector (``0.5 * bank @ 1``, large on rings 7-9 because
of their DC leak), which the first layer's bias can absorb.

The training objective (BCE against the What accuracy map moved to the digit and pooled by the
colliculus) lives in :mod:`whatwhere.engine.objectives`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from whatwhere.retina import Retina, RetinaConfig

__all__ = ["WhereNet", "Where"]


class WhereNet(nn.Module):
    """2880 -> 1000 -> 1000 -> 240 MLP (ReLU, dropout before the last layer, no batch-norm).

    ``forward(codes (B, n_codes), dropout=None, generator=None) -> logits (B, n_cells)``.
    ``dropout=None`` follows ``self.training``; ``True`` keeps it on in evaluation (the
    original loop's defect, for bug-faithful loops).  With a ``generator`` the dropout mask is drawn
    from it (reproducible); otherwise from torch's global generator.
    """

    def __init__(
        self, n_codes: int = 2880, dim1: int = 1000, dim2: int = 1000, n_cells: int = 240, p_dropout: float = 0.5
    ) -> None:
        super().__init__()
        if not 0 <= p_dropout < 1:
            raise ValueError(f"p_dropout must be in [0, 1), got {p_dropout!r}")
        self.p_dropout = float(p_dropout)
        self.fc1 = nn.Linear(n_codes, dim1)
        self.fc2 = nn.Linear(dim1, dim2)
        self.fc3 = nn.Linear(dim2, n_cells)

    def hidden(self, codes: torch.Tensor) -> torch.Tensor:
        """The last hidden layer ``(B, dim2)`` (before dropout)."""
        return F.relu(self.fc2(F.relu(self.fc1(codes))))

    def drop(
        self, h: torch.Tensor, *, dropout: bool | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The dropout before the last layer (see the class docstring)."""
        active = self.training if dropout is None else bool(dropout)
        if active and self.p_dropout > 0:
            if generator is None:
                return F.dropout(h, self.p_dropout, training=True)
            keep = torch.rand(h.shape, generator=generator, device=h.device) >= self.p_dropout
            return h * keep / (1.0 - self.p_dropout)
        return h

    def forward(
        self, codes: torch.Tensor, *, dropout: bool | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.fc3(self.drop(self.hidden(codes), dropout=dropout, generator=generator))


class Where(nn.Module):
    """The Where pathway as a model: display ``(B, N, N)`` (N = ``size``, 128) -> 240 cell logits.

    Args:
        dim1, dim2: hidden widths (1000, 1000).
        p_dropout: dropout before the last layer (0.5, as the paper).
        offset_clip: encode ``clip(whiten(x) + 0.5, 0, 1)`` (True, the published training input)
            or plain ``whiten(x)``.
        retina: the retina to encode with (default: a new published retina scaled to ``size``,
            about 2 s to build; pass one of that size to share its buffers between models).
        size: display side N (128; 60, 100 ... for the standard tasks, an even integer >= 32).
        pad, mask: how the What/Where agent re-centres a view for this network after a saccade
            (the displays it was trained on): pixels that leave the display read ``pad`` and the
            disk mask is re-applied when ``mask``; 0.5 and True for the MotionClouds displays
            (the default), 0.0 and False for the black displays of the standard tasks.

    The state dict holds only the MLP (``net.*``).
    """

    input_size = 128

    def __init__(
        self,
        dim1: int = 1000,
        dim2: int = 1000,
        p_dropout: float = 0.5,
        offset_clip: bool = True,
        retina: Retina | None = None,
        size: int = 128,
        pad: float = 0.5,
        mask: bool = True,
    ) -> None:
        super().__init__()
        config = RetinaConfig.for_size(size)
        if retina is not None and retina.N != size:
            raise ValueError(f"retina is for {retina.N}px displays but size is {size}")
        self.input_size = int(size)
        self.pad = float(pad)
        self.mask = bool(mask)
        self.offset_clip = bool(offset_clip)
        self.retina = retina if retina is not None else Retina(config, offset_clip=self.offset_clip)
        self.net = WhereNet(self.retina.n_codes, dim1, dim2, self.retina.grid.n_cells, p_dropout)

    @property
    def bandwidth(self) -> int:
        """Numbers the Where pathway sees per display: the retina code size (2880)."""
        return self.retina.n_codes

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, N, N)`` displays -> ``(B, 2880)`` codes (the training encoding)."""
        return self.retina.encode(images, offset_clip=self.offset_clip)

    @torch.no_grad()
    def localiser_input(self, images: torch.Tensor) -> torch.Tensor:
        """What the Where pathway reads: the retina codes ``(B, 2880)``."""
        return self.encode(images)

    def head(
        self, codes: torch.Tensor, *, dropout: bool | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Codes ``(B, 2880)`` -> logits ``(B, 240)`` (see :class:`WhereNet`)."""
        return self.net(codes, dropout=dropout, generator=generator)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, N, N)`` or ``(B, 1, N, N)`` -> logits ``(B, 240)``."""
        return self.head(self.encode(images))
