"""Several seeds of a small model trained in one process: a batched ensemble.

:class:`Ensemble` holds ``n`` independently initialised copies of a registered model, their
parameters stacked (:func:`torch.func.stack_module_state`), and runs them with one vectorised call
(:func:`torch.func.vmap` over :func:`torch.func.functional_call`).  In training mode a batch of
``n * b`` displays is split, member ``k`` seeing displays ``[k b, (k + 1) b)``: every member sees
its own displays, as independent runs would; in evaluation mode every member sees the whole
batch.  The output is ``(n, b, ...)``.  Adam and SGD act element by element, so one optimiser over
the stacked parameters trains the members independently (the ensemble objectives sum the members'
losses rather than averaging them, so that each member's gradient is its own).

Members whose input goes first through a fixed, shared encoder run it once for all: the Where
model encodes the displays with its retina outside the vectorised call (``shared_stem``).

:meth:`Ensemble.member` returns member ``k`` as a plain model of the registered kind.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

__all__ = ["Ensemble"]


def _key(name: str) -> str:
    return name.replace(".", "__")


class Ensemble(nn.Module):
    """``n`` seeds of the registered model ``member`` (arguments ``member_args``) in one module.

    Args:
        member: a registry name ("what", "where", "stn28", ...).
        n: number of members.
        member_args: the members' model arguments.
        factory: builds a member, ``factory(member, **member_args)`` (the registry's
            ``create_model``, which registers this class as ``ensemble``).
    """

    def __init__(self, member: str, n: int, member_args: dict | None, *, factory) -> None:
        super().__init__()
        if int(n) != n or n < 2:
            raise ValueError(f"an ensemble needs n >= 2 members, got {n!r}")
        self.member_name, self.n, self.member_args = member, int(n), dict(member_args or {})
        self._factory = factory
        models = [factory(member, **self.member_args) for _ in range(self.n)]
        self.input_size = getattr(models[0], "input_size", 28)
        self.stem = None
        if member == "where":  # the retina is fixed and identical: encode once, vectorise the MLP
            self.stem = models[0].retina
            self.offset_clip = models[0].offset_clip
            models = [m.net for m in models]
        params, buffers = stack_module_state(models)
        self._names = list(params)
        self.stacked = nn.ParameterDict({_key(k): nn.Parameter(v) for k, v in params.items()})
        self._buffer_names = list(buffers)
        for k, v in buffers.items():
            self.register_buffer("buf__" + _key(k), v)
        template = copy.deepcopy(models[0])
        self._template = [template.to("meta")]  # a list: not a submodule (no state of its own)

    @property
    def retina(self):
        """The shared retina of a Where ensemble (the Where objective builds its colliculus from it)."""
        if self.stem is None:
            raise AttributeError("only a Where ensemble has a retina")
        return self.stem

    def _state(self):
        params = {k: self.stacked[_key(k)] for k in self._names}
        buffers = {k: getattr(self, "buf__" + _key(k)) for k in self._buffer_names}
        return params, buffers

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(n b, ...)`` displays (training: split among members) or ``(b, ...)`` (evaluation: every
        member sees them all) -> the members' outputs ``(n, b, ...)``."""
        x = images
        if self.stem is not None:
            x = self.stem.encode(x, offset_clip=self.offset_clip)
        in_dims: tuple[int, int, int | None]
        if self.training:
            if x.shape[0] % self.n:
                raise ValueError(f"a training batch of {x.shape[0]} cannot be split among {self.n} members")
            x = x.reshape(self.n, x.shape[0] // self.n, *x.shape[1:])
            in_dims = (0, 0, 0)
        else:
            in_dims = (0, 0, None)
        params, buffers = self._state()
        template = self._template[0].train(self.training)  # dropout follows the ensemble's mode

        def one(p, b, xs):
            return functional_call(template, (p, b), (xs,))

        return vmap(one, in_dims=in_dims, randomness="different")(params, buffers, x)

    def member(self, k: int) -> nn.Module:
        """Member ``k`` as a plain model of the registered kind (a copy of its weights), in evaluation mode."""
        if not 0 <= k < self.n:
            raise IndexError(f"member {k} of an ensemble of {self.n}")
        m = self._factory(self.member_name, **self.member_args)
        target = m.net if self.stem is not None else m
        state = {name: self.stacked[_key(name)][k].detach().clone() for name in self._names}
        state.update({name: getattr(self, "buf__" + _key(name))[k].clone() for name in self._buffer_names})
        target.load_state_dict(state)
        return m.eval()
