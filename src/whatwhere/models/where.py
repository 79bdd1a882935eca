"""The Where pathway: the MLP that predicts the What accuracy after each possible saccade.

**Network** (:class:`WhereNet`, whatwhere-spec §4.1, PAPER-CONFIG): the 2880 retina codes (raw,
no normalisation) -> Linear 1000 -> ReLU -> Linear 1000 -> ReLU -> dropout 0.5 -> Linear 240
logits, one per collicular cell (``azimuth * 10 + ring``); ``sigmoid(logits)`` is the predicted
accuracy of the What network after a saccade to that cell.  No batch-norm (the paper's runs had
it switched off).  4,122,240 parameters.

**Model** (:class:`Where`, registered as ``where``, input 128): ``forward(images (B, 128, 128))
-> logits (B, 240)``; it encodes the display with the log-Gabor :class:`~whatwhere.retina.Retina`
itself.  The retina (a 2880 x 16384 bank) is *not* part of the module state: it comes from a
per-process cache (:func:`shared_retina`, keyed by encoding and device, built once, about 2 s
on CPU), so checkpoints hold only the MLP and ``.to(device)`` just works (the retina for a device
is fetched when images on that device arrive).

**Encoding** (whatwhere-spec §1.6, §8 B1).  ``offset_clip=True`` (default) encodes
``clip(whiten(x) + 0.5, 0, 1)``, the input the published Where networks were trained on.  The
original closed loop re-encoded post-saccade views with plain ``whiten(x)`` instead (bug B1);
here the agent encodes every view the way the model was trained (see :mod:`whatwhere.agent`,
whose ``faithful=True`` reproduces the original).  ``offset_clip=False`` trains on plain
whitening: the two encodings differ, up to the 0.01 % of clipped pixels, by a constant vector
(``0.5 * bank @ 1``, large on rings 7-9 because of their DC leak), which the first layer's
bias can absorb.

**Objective** ``where`` (for recipes: ``objective: where``).  The target of a display whose digit
sits at offset ``d`` is the What accuracy map laid on the full field around ``d`` (baseline 0.1
elsewhere) and pooled by the colliculus (:meth:`~whatwhere.retina.Colliculus.where_target`,
spec §3.4); the loss is BCE-with-logits averaged over cells and samples.  Its "correct" count
(the ``train_acc`` / ``test_acc`` columns of ``metrics.csv``) is the number of samples whose
predicted best cell (argmax of the logits) is the best cell of the target (first argmax on
ties): "the eye would go where the target says it should".  It is a strict measure: neighbouring
inner cells often have nearly equal targets.  ``objective_args``: ``accuracy_map`` (path of the
55 x 55 ``.npy``, default ``results/what/accuracy_map.npy``), ``baseline`` (0.1), ``reflect``
(False; True = the original's point-reflected target, spec §8 B8).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from whatwhere.models.registry import register_model
from whatwhere.objectives import register_objective
from whatwhere.retina import Colliculus, Retina

__all__ = ["WhereNet", "Where", "shared_retina", "shared_colliculus", "encode_views",
           "load_accuracy_map", "DEFAULT_ACCURACY_MAP"]

DEFAULT_ACCURACY_MAP = "results/what/accuracy_map.npy"

_RETINAS: dict[tuple[bool, str], Retina] = {}
_COLLICULI: dict[str, Colliculus] = {}


def _key(device) -> str:
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return str(dev)


def shared_retina(*, offset_clip: bool = True, device: str | torch.device = "cpu") -> Retina:
    """The published retina with this encoding on ``device``, built once per process."""
    key = (bool(offset_clip), _key(device))
    if key not in _RETINAS:
        other = next((r for (clip, dev), r in _RETINAS.items() if dev == key[1]), None)
        if other is not None:  # same bank: share it rather than rebuild it
            r = object.__new__(Retina)
            r.__dict__.update(other.__dict__)
            r.offset_clip = key[0]
            r._dense = r._truncated = None
            _RETINAS[key] = r
        else:
            _RETINAS[key] = Retina(offset_clip=key[0], device=key[1])
    return _RETINAS[key]


def shared_colliculus(device: str | torch.device = "cpu") -> Colliculus:
    """The published 240-cell colliculus on ``device``, built once per process."""
    key = _key(device)
    if key not in _COLLICULI:
        _COLLICULI[key] = Colliculus(shared_retina(device=key))
    return _COLLICULI[key]


def encode_views(retina: Retina, images: torch.Tensor, *, offset_clip: bool | None = None) -> torch.Tensor:
    """Retina codes of ``images`` with a chosen encoding (``None``: the retina's own).

    A retina built with ``offset_clip=True`` applies its bank to whitened images, so it can also
    encode plain ``whiten(x)`` (the original's closed-loop input); a plain retina has the
    whitening folded into its operator, so the other encoding comes from :func:`shared_retina`.

    Returns:
        ``(B, n_codes)`` float32.
    """
    clip = retina.offset_clip if offset_clip is None else bool(offset_clip)
    if clip == retina.offset_clip:
        return retina.encode(images)
    if not retina.offset_clip:
        return shared_retina(offset_clip=True, device=images.device).encode(images)
    w = retina.whiten(images, offset_clip=False)
    method = retina.method if retina.method != "auto" else ("dense" if w.device.type == "cuda" else "truncated")
    if method == "dense":
        return w.reshape(w.shape[0], -1) @ retina.dense_operator()
    return retina.truncated_operator()(w)


class WhereNet(nn.Module):
    """2880 -> 1000 -> 1000 -> 240 MLP (ReLU, dropout before the last layer, no batch-norm).

    ``forward(codes (B, n_codes), dropout=None, generator=None) -> logits (B, n_cells)``.
    ``dropout=None`` follows ``self.training``; ``True`` keeps it on in evaluation (the
    original's bug B2, for bug-faithful loops).  With a ``generator`` the dropout mask is drawn
    from it (reproducible); otherwise from torch's global generator.
    """

    def __init__(self, n_codes: int = 2880, dim1: int = 1000, dim2: int = 1000, n_cells: int = 240,
                 p_dropout: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p_dropout < 1:
            raise ValueError(f"p_dropout must be in [0, 1), got {p_dropout!r}")
        self.p_dropout = float(p_dropout)
        self.fc1 = nn.Linear(n_codes, dim1)
        self.fc2 = nn.Linear(dim1, dim2)
        self.fc3 = nn.Linear(dim2, n_cells)

    def forward(self, codes: torch.Tensor, *, dropout: bool | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        h = F.relu(self.fc1(codes))
        h = F.relu(self.fc2(h))
        active = self.training if dropout is None else bool(dropout)
        if active and self.p_dropout > 0:
            if generator is None:
                h = F.dropout(h, self.p_dropout, training=True)
            else:
                keep = torch.rand(h.shape, generator=generator, device=h.device) >= self.p_dropout
                h = h * keep / (1.0 - self.p_dropout)
        return self.fc3(h)


@register_model("where", input_size=128)
class Where(nn.Module):
    """The Where pathway as a model: display ``(B, 128, 128)`` -> 240 cell logits.

    Args:
        dim1, dim2: hidden widths (1000, 1000).
        p_dropout: dropout before the last layer (0.5, PAPER-CONFIG).
        offset_clip: encode ``clip(whiten(x) + 0.5, 0, 1)`` (True, the published training input)
            or plain ``whiten(x)``.

    The state dict holds only the MLP (``net.*``); the retina comes from :func:`shared_retina`.
    """

    input_size = 128

    def __init__(self, dim1: int = 1000, dim2: int = 1000, p_dropout: float = 0.5,
                 offset_clip: bool = True) -> None:
        super().__init__()
        self.offset_clip = bool(offset_clip)
        self.net = WhereNet(2880, dim1, dim2, 240, p_dropout)

    def retina(self, device: str | torch.device | None = None) -> Retina:
        """The retina this model encodes with, on ``device`` (default: the model's device)."""
        if device is None:
            device = next(self.parameters()).device
        return shared_retina(offset_clip=self.offset_clip, device=device)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 128, 128)`` displays -> ``(B, 2880)`` codes (the training encoding)."""
        if images.ndim == 4 and images.shape[1] == 1:
            images = images[:, 0]
        return self.retina(images.device).encode(images)

    def head(self, codes: torch.Tensor, *, dropout: bool | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Codes ``(B, 2880)`` -> logits ``(B, 240)`` (see :class:`WhereNet`)."""
        return self.net(codes, dropout=dropout, generator=generator)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 128, 128)`` or ``(B, 1, 128, 128)`` -> logits ``(B, 240)``."""
        return self.head(self.encode(images))


# ------------------------------------------------------------------------------ objective


def load_accuracy_map(path: str | Path | None = None) -> torch.Tensor:
    """The What network's 55 x 55 shift-accuracy map (element ``[di + 27, dj + 27]``) as float32."""
    p = Path(path or DEFAULT_ACCURACY_MAP)
    if not p.is_file():
        raise FileNotFoundError(
            f"What accuracy map {p} not found (cwd {Path.cwd()}): train the What network and build its map "
            f"(scripts/reproduce_28.sh writes results/what/accuracy_map.npy), or set objective_args.accuracy_map")
    acc = np.load(p)
    if acc.ndim != 2 or acc.shape[0] != acc.shape[1] or acc.shape[0] % 2 == 0:
        raise ValueError(f"{p}: expected a square map with an odd side, got shape {acc.shape}")
    return torch.as_tensor(acc, dtype=torch.float32)


def _where_objective(recipe, device):
    args = dict(getattr(recipe, "objective_args", None) or {})
    unknown = set(args) - {"accuracy_map", "baseline", "reflect"}
    if unknown:
        raise ValueError(f"objective 'where': unknown objective_args {sorted(unknown)}; "
                         "allowed: accuracy_map, baseline, reflect")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    acc = load_accuracy_map(args.get("accuracy_map")).to(dev)
    baseline = float(args.get("baseline", 0.1))
    reflect = bool(args.get("reflect", False))
    colliculus = shared_colliculus(dev)

    def objective(model, d):
        logits = model(d.images)
        target = colliculus.where_target(acc, d.offsets, baseline=baseline, reflect=reflect)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        return loss, (logits.argmax(1) == target.argmax(1)).sum()

    return objective


register_objective("where")(_where_objective)
