"""Sampling operations shared by the models: glimpses, foveae, translations."""

from whatwhere.ops.sampling import (
    BACKGROUND,
    FOVEA,
    GLIMPSE_SCALE,
    as_nchw,
    attention_theta,
    fovea,
    glimpse_centre,
    sample,
    translate,
)

__all__ = [
    "BACKGROUND",
    "FOVEA",
    "GLIMPSE_SCALE",
    "as_nchw",
    "attention_theta",
    "fovea",
    "glimpse_centre",
    "sample",
    "translate",
]
