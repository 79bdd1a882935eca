"""Model registry: recipe and benchmark names -> constructors.

Register your own ``nn.Module`` (``forward(images (B, N, N)) -> logits (B, 10)``, see
:mod:`whatwhere.models.interface`) with::

    from whatwhere.models import register_model

    @register_model("mynet", input_size=128)
    class MyNet(torch.nn.Module):
        ...

and it can be trained from a recipe (``model: mynet``), saved, loaded and benchmarked like the
built-in ones (``whatwhere benchmark --import mymodule``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["MODELS", "ModelSpec", "register_model", "create_model"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., torch.nn.Module]
    input_size: int  # side of the display the model takes by default (28, 60, 100, 128...; an instance's
    # ``input_size`` attribute, e.g. set by a ``size`` model argument, takes precedence)


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, input_size: int):
    """Decorator registering a model class or factory under ``name``.

    ``input_size``: the side of the displays it takes by default: 28 (the fovea) or any integer
    >= 32 (the displays :class:`~whatwhere.data.DisplayConfig` makes: 60, 100, 128...)."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or not (input_size == 28 or input_size >= 32):
        raise ValueError(f"input_size must be 28 or an integer >= 32 (display side, px), got {input_size!r}")

    def deco(factory):
        MODELS[name] = ModelSpec(name, factory, input_size)
        return factory

    return deco


def create_model(name: str, **kwargs) -> torch.nn.Module:
    """Instantiate a registered model (``kwargs`` are the recipe's ``model_args``), untrained.

    Raises:
        ValueError: unknown name (the message lists the registered ones) or bad arguments.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    try:
        return MODELS[name].factory(**kwargs)
    except TypeError as exc:
        raise ValueError(f"model {name!r}: bad model_args {kwargs}: {exc}") from exc


def polo_atn(filters: str = "1/f", **code_args) -> torch.nn.Module:
    """POLO-ATN 95 %: FC localiser over the 768-d POLO code (``whatwhere.retina.polo.polo95``).

    ``filters="1/f"`` (default) is the bank the published models ran with, ``"bandpass"`` the
    intended log-normal one; ``code_args`` override :class:`~whatwhere.retina.polo.PoloConfig`
    fields."""
    from whatwhere.models.stn import PoloATN
    from whatwhere.retina.polo import polo95

    code = polo95(filters=filters, **code_args)
    return PoloATN(code, code_dim=code.dim)


class _FlatDual(torch.nn.Module):
    """A dual POLO code flattened and concatenated ("in" first): ``(B, 128, 128)`` → ``(B, 2560)``."""

    def __init__(self, dual: torch.nn.Module) -> None:
        super().__init__()
        self.dual = dual

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from whatwhere.retina.polo import flatten_dual

        return flatten_dual(self.dual(images))


def polo_atn85(filters: str = "1/f", **code_args) -> torch.nn.Module:
    """POLO-ATN 85 %: FC localiser over the 2560-d dual code (``whatwhere.retina.polo.dual85``)."""
    from whatwhere.models.stn import PoloATN
    from whatwhere.retina.polo import dual85

    dual = dual85(filters=filters, **code_args)
    return PoloATN(_FlatDual(dual), code_dim=dual.code_in.dim + dual.code_out.dim)


def conv_polo_atn(filters: str = "1/f", circular: bool = True, **code_args) -> torch.nn.Module:
    """convPOLO-ATN 85 %: conv localiser over the band-pass dual code
    (``whatwhere.retina.polo.dual_nolowpass``); ``circular=False`` = the original's zero padding."""
    from whatwhere.models.stn import ConvPoloATN
    from whatwhere.retina.polo import dual_nolowpass

    dual = dual_nolowpass(filters=filters, **code_args)
    return ConvPoloATN(dual, in_shape=dual.code_in.shape, out_shape=dual.code_out.shape, circular=circular)


def _register_builtins() -> None:
    from whatwhere.models.ensemble import Ensemble
    from whatwhere.models.ram import RAM, ConvNet, FCNet
    from whatwhere.models.saccadic import SaccadicTransformer
    from whatwhere.models.st_cnn import STCNN, TCConvNet, st_fcn
    from whatwhere.models.stn import ATN, STN28, STN128
    from whatwhere.models.what import WhatNet
    from whatwhere.models.where import Where

    register_model("what", 28)(WhatNet)
    register_model("saccadic_transformer", 128)(SaccadicTransformer)

    def ensemble(member: str = "what", n: int = 3, member_args: dict | None = None) -> Ensemble:
        """``n`` seeds of the registered model ``member`` trained in one process."""
        return Ensemble(member, n, member_args, factory=create_model)

    register_model("ensemble", 28)(ensemble)  # its input size is its member's (Ensemble.input_size)
    register_model("where", 128)(Where)
    register_model("stn28", 28)(STN28)
    register_model("stn128", 128)(STN128)
    register_model("atn", 128)(ATN)
    register_model("polo_atn", 128)(polo_atn)
    register_model("polo_atn85", 128)(polo_atn85)
    register_model("conv_polo_atn", 128)(conv_polo_atn)
    # the standard cluttered-MNIST tasks (Mnih et al. 2014): the display side is the ``size`` argument
    register_model("ram", 60)(RAM)
    register_model("fc", 60)(FCNet)
    register_model("conv", 60)(ConvNet)
    # Jaderberg et al. 2015 (STN), translated cluttered MNIST (stn-tc): ST-CNN, ST-FCN, the CNN baseline
    register_model("st_cnn", 60)(STCNN)
    register_model("st_fcn", 60)(st_fcn)
    register_model("cnn", 60)(TCConvNet)


_register_builtins()
