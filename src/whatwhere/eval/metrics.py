"""Statistics of the protocols."""

from __future__ import annotations

import math

__all__ = ["wilson", "CHANCE"]

#: Chance accuracy of the task: the What net answers "1" on an empty fovea, and 1,135 of the
#: 10,000 MNIST-test digits are ones.
CHANCE = 0.1135


def wilson(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval (default 95 %) for ``correct / total``."""
    if total <= 0:
        return (0.0, 1.0)
    p = correct / total
    den = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / den
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))
