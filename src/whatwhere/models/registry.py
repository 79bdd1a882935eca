"""Model registry: recipe and benchmark names -> constructors.

Register your own ``nn.Module`` (``forward(images (B, N, N)) -> logits (B, 10)``) with::

    from whatwhere.models.registry import register_model

    @register_model("mynet", input_size=128)
    class MyNet(torch.nn.Module):
        ...

and it can be trained from a recipe (``model: mynet``) and benchmarked like the built-in ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["MODELS", "ModelSpec", "register_model", "build_model"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., torch.nn.Module]
    input_size: int  # side of the display the model takes (28 or 128)


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, input_size: int):
    """Decorator registering a model class or factory under ``name``."""
    if input_size not in (28, 128):
        raise ValueError(f"input_size must be 28 or 128, got {input_size}")

    def deco(factory):
        MODELS[name] = ModelSpec(name, factory, input_size)
        return factory

    return deco


def build_model(name: str, **kwargs) -> torch.nn.Module:
    """Instantiate a registered model (``kwargs`` are the recipe's ``model_args``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    try:
        return MODELS[name].factory(**kwargs)
    except TypeError as exc:
        raise ValueError(f"model {name!r}: bad model_args {kwargs}: {exc}") from exc


def _register_builtins() -> None:
    from whatwhere.models.stn import ATN, STN28, STN128
    from whatwhere.models.what import WhatNet

    register_model("what", 28)(WhatNet)
    register_model("stn28", 28)(STN28)
    register_model("stn128", 128)(STN128)
    register_model("atn", 128)(ATN)


_register_builtins()
