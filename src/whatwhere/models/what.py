"""The What pathway classifier: the LeNet of the PyTorch MNIST example (Daucé, Albiges & Perrinet 2020).

Conv(1→20, k5) → ReLU → MaxPool 2 → Conv(20→50, k5) → ReLU → MaxPool 2 → flatten 800 →
Linear(800→500) → ReLU → Linear(500→10).  Spatial sizes 28 → 24 → 12 → 8 → 4; 431,080
parameters.  No input normalisation (the original used none): inputs are floats in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from whatwhere.ops.sampling import as_nchw


class WhatNet(nn.Module):
    """LeNet classifier of 28×28 views (431,080 parameters).

    ``forward(x)``: ``x`` ``(B, 28, 28)`` or ``(B, 1, 28, 28)`` float in [0, 1] → logits ``(B, 10)``.
    """

    input_size = 28

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 20, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 20, 12, 12)
            nn.Conv2d(20, 50, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 50, 4, 4)
            nn.Flatten(),  # (B, 800)
        )
        self.classifier = nn.Sequential(nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 28, 28)`` or ``(B, 1, 28, 28)`` → logits ``(B, 10)``."""
        return self.classifier(self.features(as_nchw(x, self.input_size)))
