"""Spatial transformers on the display: STN-28, STN-128, ATN and the POLO-ATN family.

Spatial Transformer Networks (Jaderberg et al. 2015, NeurIPS) used as covert attention, as in
Dabane, Perrinet & Daucé (2022), "What you see is what you transform" (notebooks of
github.com/dabane-ghassan/int-lab-book).  Every model here takes the display ``(B, N, N)`` or
``(B, 1, N, N)`` (``N = input_size``) and returns logits ``(B, 10)``; ``forward_with_theta``
returns the logits and the ``theta`` ``(B, 2, 3)`` of the glimpse in one localiser pass,
``localise(images)`` the ``theta`` without gradients and ``glimpse(images)`` the warped view
``(B, 1, h, w)`` (``h, w = out_size``).  The glimpse is taken by the shared sampler
(:func:`whatwhere.ops.sample`; see :mod:`whatwhere.ops.sampling` for the ``theta`` convention),
which pads with the background level 0.5 where the original padded with 0 (a black border
around a grey display).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from whatwhere.models.what import WhatNet
from whatwhere.ops.sampling import GLIMPSE_SCALE, as_nchw, attention_theta, sample

# --------------------------------------------------------------------------- building blocks


def _conv_stage(cin: int, cout: int, k: int) -> list[nn.Module]:
    """Conv(k) → MaxPool 2 → ReLU (the localisers' order)."""
    return [nn.Conv2d(cin, cout, k), nn.MaxPool2d(2), nn.ReLU()]


def localiser_convs_28() -> nn.Sequential:
    """STN-tutorial conv stack: ``(B, 1, 28, 28)`` → ``(B, 90)`` (28→22→11→7→3)."""
    return nn.Sequential(*_conv_stage(1, 8, 7), *_conv_stage(8, 10, 5), nn.Flatten())


def localiser_convs_128() -> nn.Sequential:
    """4-conv stack: ``(B, 1, 128, 128)`` → ``(B, 2048)`` (128→122→61→57→28→24→12→8→4)."""
    return nn.Sequential(
        *_conv_stage(1, 16, 7), *_conv_stage(16, 32, 5), *_conv_stage(32, 64, 5), *_conv_stage(64, 128, 5), nn.Flatten()
    )


def regressor(n_in: int, n_hidden: int, bias: tuple[float, ...]) -> nn.Sequential:
    """``Linear(n_in→n_hidden) → ReLU → Linear(n_hidden→len(bias))``, last weights 0, bias given,
    so the output at initialisation is ``bias`` for every input.  ``(B, n_in)`` → ``(B, len(bias))``."""
    last = nn.Linear(n_hidden, len(bias))
    nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.tensor(bias, dtype=last.bias.dtype))
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), last)


IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class What128(nn.Module):
    """STN-128's "modified What" classifier of 128×128 views (10,816,838 parameters).

    Conv(1→20, k5) → ReLU → MaxPool 2 → Conv(20→100, k5) → ReLU → MaxPool 2 (128→124→62→58→29)
    → flatten 84,100 → Linear(84,100→128) → ReLU → Linear(128→10).
    ``(B, 1, 128, 128)`` → logits ``(B, 10)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 20, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(20, 100, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(100 * 29 * 29, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(as_nchw(x, 128))


# --------------------------------------------------------------------------- models


class _Transformer(nn.Module):
    """Base: ``theta = self.theta(x)``; view = ``sample(x, theta, out_size)``; logits = classifier(view).

    Subclasses set ``input_size``, ``out_size``, ``self.classifier`` and implement ``theta``.
    """

    input_size: int = 128
    out_size: int = 28
    align_corners: bool = False
    classifier: nn.Module

    @property
    def bandwidth(self) -> int:
        """Numbers the localiser sees per display (the full image by default)."""
        return self.input_size * self.input_size

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, N, N)`` → ``(B, 2, 3)``."""
        raise NotImplementedError

    def _view(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return sample(x, theta, self.out_size, align_corners=self.align_corners)

    def forward_with_theta(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Display → ``(logits (B, 10), theta (B, 2, 3))`` from one localiser pass."""
        x = as_nchw(images, self.input_size)
        theta = self.theta(x)
        return self.classifier(self._view(x, theta)), theta

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Display ``(B, N, N)`` or ``(B, 1, N, N)`` → logits ``(B, 10)``."""
        return self.forward_with_theta(images)[0]

    @torch.no_grad()
    def localise(self, images: torch.Tensor) -> torch.Tensor:
        """Display → ``theta`` ``(B, 2, 3)`` (no gradients)."""
        return self.theta(as_nchw(images, self.input_size))

    @torch.no_grad()
    def glimpse(self, images: torch.Tensor) -> torch.Tensor:
        """Display → the warped view the classifier sees, ``(B, 1, out_size, out_size)``."""
        x = as_nchw(images, self.input_size)
        return self._view(x, self.theta(x))

    @torch.no_grad()
    def localiser_input(self, images: torch.Tensor) -> torch.Tensor:
        """What the localiser reads, flattened: the display's pixels ``(B, N*N)``."""
        return as_nchw(images, self.input_size).flatten(1)


class STN28(_Transformer):
    """STN on the 28×28 What display: tutorial localiser → full affine θ (identity init) →
    28×28 warp → :class:`WhatNet`.  436,600 parameters (localiser 5,520).

    Attributes: ``localiser`` ``(B,1,28,28)→(B,6)``, ``classifier`` (WhatNet).
    """

    input_size = 28
    out_size = 28

    def __init__(self) -> None:
        super().__init__()
        self.localiser = nn.Sequential(localiser_convs_28(), regressor(90, 32, IDENTITY))
        self.classifier = WhatNet()

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        return self.localiser(x).view(-1, 2, 3)


class STN128(_Transformer):
    """STN on the 128×128 display: 4-conv localiser → full affine θ (identity init) → 128×128
    warp → :class:`What128`.  11,152,428 parameters (localiser 335,590)."""

    input_size = 128
    out_size = 128

    def __init__(self) -> None:
        super().__init__()
        self.localiser = nn.Sequential(localiser_convs_128(), regressor(2048, 32, IDENTITY))
        self.classifier = What128()

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        return self.localiser(x).view(-1, 2, 3)


class ATN(_Transformer):
    """Attention transformer: 4-conv localiser → ``(s, tx, ty)`` → θ = [[s,0,tx],[0,s,ty]] →
    28×28 glimpse of the 128×128 display → :class:`WhatNet`.  766,571 parameters.

    Last layer initialised to weights 0, bias ``(scale0, 0, 0)``, ``scale0 = 0.2 ≈ 28/128``
    (centred glimpse at ≈ 1 input px per output px).  ``s`` is unconstrained, as in the original.
    """

    input_size = 128
    out_size = 28

    def __init__(self, scale0: float = GLIMPSE_SCALE) -> None:
        super().__init__()
        self.localiser = nn.Sequential(localiser_convs_128(), regressor(2048, 32, (scale0, 0.0, 0.0)))
        self.classifier = WhatNet()

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        s, tx, ty = self.localiser(x).unbind(-1)
        return attention_theta(s, tx, ty)


Encoder = Callable[[torch.Tensor], torch.Tensor]
DualEncoder = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class _CodeGlimpse(_Transformer):
    """Base of the POLO models: a localiser over a code computed from the display by
    ``encoder`` gives ``(tx, ty)``; fixed scale (a buffer, not trained); 28×28 glimpse of the
    full-resolution display → :class:`WhatNet`.  Subclasses implement ``encode`` and
    ``translation(code) -> (B, 2)``; ``code`` may also be passed precomputed to ``forward``.
    """

    input_size = 128
    out_size = 28
    encoder: Callable[[torch.Tensor], Any]  # the code: a tensor (PoloATN) or a pair (ConvPoloATN)
    scale: torch.Tensor  # a buffer

    def __init__(self, encoder: Encoder | DualEncoder, scale: float = GLIMPSE_SCALE) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.classifier = WhatNet()

    def encode(self, x: torch.Tensor):
        """``(B, 1, 128, 128)`` → the code the localiser reads."""
        raise NotImplementedError

    def translation(self, code) -> torch.Tensor:
        """Code → ``(tx, ty)`` ``(B, 2)``."""
        raise NotImplementedError

    def theta_from_code(self, code) -> torch.Tensor:
        """Code → ``theta`` ``(B, 2, 3)`` = [[scale, 0, tx], [0, scale, ty]]."""
        tx, ty = self.translation(code).unbind(-1)
        return attention_theta(self.scale.to(tx.dtype), tx, ty)

    def theta(self, x: torch.Tensor, code=None) -> torch.Tensor:
        return self.theta_from_code(self.encode(x) if code is None else code)

    def forward(self, images: torch.Tensor, code=None) -> torch.Tensor:
        """Display ``(B, 128, 128)`` or ``(B, 1, 128, 128)`` → logits ``(B, 10)``; ``code`` may be
        passed precomputed (else it is ``encode(images)``)."""
        x = as_nchw(images, self.input_size)
        return self.classifier(self._view(x, self.theta(x, code)))

    @torch.no_grad()
    def localise(self, images: torch.Tensor, code=None) -> torch.Tensor:
        return self.theta(as_nchw(images, self.input_size), code)

    @torch.no_grad()
    def glimpse(self, images: torch.Tensor, code=None) -> torch.Tensor:
        x = as_nchw(images, self.input_size)
        return self._view(x, self.theta(x, code))

    @torch.no_grad()
    def localiser_input(self, images: torch.Tensor) -> torch.Tensor:
        """What the localiser reads, flattened: the code ``(B, bandwidth)`` (a dual code's "in"
        part first)."""
        code = self.encode(as_nchw(images, self.input_size))
        parts = code if isinstance(code, tuple) else (code,)
        return torch.cat([c.reshape(c.shape[0], -1) for c in parts], 1)


class PoloATN(_CodeGlimpse):
    """POLO-ATN: FC localiser over a log-polar code → ``(tx, ty)``, fixed scale 0.2 → 28×28
    glimpse of the full-resolution 128×128 display → :class:`WhatNet`.

    Args:
        encoder: images ``(B, 128, 128)`` → code ``(B, code_dim)`` (or any shape with
            ``code_dim`` elements per sample, e.g. ``(B, 8, 6, 16)``; flattened).  Registered as a
            submodule if it is an ``nn.Module`` (its parameters, if any, then count too).
        code_dim: 768 for the published 95 % code.
        hidden: 32.
        scale: the fixed glimpse scale (a buffer, not trained).

    Localiser: Linear(code_dim→32) → ReLU → Linear(32→2), last weights and bias 0 (first
    glimpse centred).  With ``code_dim=768``: 455,754 trainable parameters (localiser 24,674).
    The original ran in float64; here the code is cast to the localiser's dtype.
    """

    def __init__(self, encoder: Encoder, code_dim: int = 768, hidden: int = 32, scale: float = GLIMPSE_SCALE) -> None:
        super().__init__(encoder, scale)
        self.code_dim = code_dim
        self.localiser = regressor(code_dim, hidden, (0.0, 0.0))

    @property
    def bandwidth(self) -> int:
        """Numbers the localiser sees per display: the code size."""
        return self.code_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, 128, 128)`` → code ``(B, code_dim)``."""
        return self.encoder(x[:, 0])

    def translation(self, code: torch.Tensor) -> torch.Tensor:
        """Code ``(B, code_dim)`` (any per-sample shape) → ``(B, 2)``."""
        code = code.reshape(code.shape[0], -1)
        if code.shape[1] != self.code_dim:
            raise ValueError(f"code has {code.shape[1]} numbers per image, expected {self.code_dim}")
        return self.localiser(code.to(self.scale.dtype))


class AzimuthConv(nn.Module):
    """3×3 conv over a code map ``(B, C, rings, azimuths)``: zero padding along rings, circular
    padding along azimuth (or zero padding, as in the original, with ``circular=False``).
    Output ``(B, cout, rings, azimuths)``."""

    def __init__(self, cin: int, cout: int, circular: bool = True) -> None:
        super().__init__()
        self.circular = circular
        self.conv = nn.Conv2d(cin, cout, 3, padding=(1, 0 if circular else 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.circular:
            x = F.pad(x, (1, 1, 0, 0), mode="circular")
        return self.conv(x)


class ConvPoloATN(_CodeGlimpse):
    """convPOLO-ATN (85 %, dual code): conv localiser over two log-polar code maps → ``(tx, ty)``,
    fixed scale 0.2, 28×28 glimpse → :class:`WhatNet`.  667,652 trainable parameters
    (localiser 236,572).

    Args:
        encoder: images ``(B, 128, 128)`` → ``(code_in, code_out)``, each
            ``(B, orientations, rings, azimuths)`` or flat in that C order; default shapes
            ``in_shape = (8, 4, 16)`` (512) and ``out_shape = (8, 8, 32)`` (2048), rings
            level-major (finest level first) then ring.
        circular: circular padding along azimuth (default; an improvement — the original padded
            azimuth with zeros, breaking its periodicity).  ``False`` reproduces the original.

    Localiser: out: AzimuthConv(8→20) → ReLU → MaxPool 2 → AzimuthConv(20→50) → ReLU → MaxPool 2
    → (50, 2, 8); in: AzimuthConv(8→20) → ReLU → MaxPool 2 → (20, 2, 8); concat channels (70, 2, 8)
    → flatten 1120 → Linear(1120→200) → ReLU → Linear(200→2), last weights and bias 0.
    """

    def __init__(
        self,
        encoder: DualEncoder,
        in_shape: tuple[int, int, int] = (8, 4, 16),
        out_shape: tuple[int, int, int] = (8, 8, 32),
        hidden: int = 200,
        circular: bool = True,
        scale: float = GLIMPSE_SCALE,
    ) -> None:
        super().__init__(encoder, scale)
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        r, a = out_shape[1] // 4, out_shape[2] // 4
        if (in_shape[1] // 2, in_shape[2] // 2) != (r, a):
            raise ValueError(f"in_shape {in_shape} and out_shape {out_shape} give different maps")
        self.branch_out = nn.Sequential(
            AzimuthConv(out_shape[0], 20, circular),
            nn.ReLU(),
            nn.MaxPool2d(2),
            AzimuthConv(20, 50, circular),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.branch_in = nn.Sequential(AzimuthConv(in_shape[0], 20, circular), nn.ReLU(), nn.MaxPool2d(2))
        self.localiser = regressor(70 * r * a, hidden, (0.0, 0.0))

    @property
    def bandwidth(self) -> int:
        """Numbers the localiser sees per display: both codes."""
        return math.prod(self.in_shape) + math.prod(self.out_shape)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 1, 128, 128)`` → ``(code_in, code_out)``."""
        return self.encoder(x[:, 0])

    def translation(self, code: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``(code_in, code_out)`` → ``(B, 2)``."""
        c_in, c_out = code
        dt = self.scale.dtype
        c_in = c_in.reshape(c_in.shape[0], *self.in_shape).to(dt)
        c_out = c_out.reshape(c_out.shape[0], *self.out_shape).to(dt)
        feats = torch.cat([self.branch_out(c_out), self.branch_in(c_in)], 1).flatten(1)
        return self.localiser(feats)
