"""Numerical precision of a training run: ``precision: fp32 | bf16`` in a recipe.

``bf16`` runs the forward pass under :func:`torch.autocast` with ``bfloat16`` (matrix products and
convolutions in bf16, reductions and the losses in float32: every objective casts its outputs to
float32 before the loss), keeps the weights and the optimiser state in float32, and stores the
model's 4-D tensors (convolution kernels) in ``channels_last`` layout, which the CPU's oneDNN
convolutions prefer.  On a 2-core AVX512-BF16 CPU this trains the 128×128 transformers 2.5–2.9×
faster than fp32 (``benchmarks/bench_training.py``).  ``fp32`` changes nothing.

There is no silent fallback: asking for bf16 on a device that cannot run it is an error.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "PrecisionError", "check_precision", "autocast", "prepare_model"]

PRECISIONS = ("fp32", "bf16")


class PrecisionError(ValueError):
    """An unknown precision, or one that the device cannot run."""


def check_precision(precision: str, device: torch.device | str | None = None) -> None:
    """Raise :class:`PrecisionError` unless ``precision`` is known and runs on ``device``."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise PrecisionError(f"precision: bf16 is not supported by {torch.cuda.get_device_name(dev)}; "
                                 f"use precision=fp32")
        if dev.type not in ("cpu", "cuda"):
            raise PrecisionError(f"precision: bf16 is not supported on device {dev}; use precision=fp32")


def autocast(precision: str, device: torch.device | str):
    """A context manager for the forward pass: bf16 autocast, or nothing for fp32."""
    check_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def prepare_model(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The model as the precision wants it (in place): bf16 puts 4-D tensors in channels_last."""
    check_precision(precision)
    if precision == "bf16" and any(p.dim() == 4 for p in model.parameters()):
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # accepted; torch's overloads omit it
    return model
