"""Models: the What classifier and the spatial transformers (STN-28, STN-128, ATN, POLO-ATN).

All take the display ``(B, N, N)`` or ``(B, 1, N, N)`` and return logits ``(B, 10)``; the
transformers also expose ``localise(images) -> theta (B, 2, 3)``.  :func:`sample` is the one
sampler every transformer uses (background 0.5 outside the input).
"""

from .stn import (ATN, STN28, STN128, ConvPoloATN, PoloATN, What128, attention_theta,
                  glimpse_centre, sample)
from .what import WhatNet, as_nchw
from .where import Where, WhereNet  # noqa: F401  (registers the `where` model and objective)

__all__ = ["WhatNet", "What128", "STN28", "STN128", "ATN", "PoloATN", "ConvPoloATN",
           "sample", "attention_theta", "glimpse_centre", "as_nchw"]
