"""Training objectives: ``(model, batch of displays) -> (mean loss, number of "correct" samples)``.

A recipe chooses one with ``objective: NAME`` (default ``classification``) and configures it with
``objective_args``; register your own with :func:`register_objective`.

* ``classification``: cross-entropy of the logits; correct = argmax equals the label.
* ``where``: the Where pathway's target (Daucé, Albiges & Perrinet 2020): the What network's
  shift-accuracy map laid on the full field around the digit (baseline 0.1 elsewhere) and pooled
  by the colliculus (:meth:`~whatwhere.retina.Colliculus.where_target`); BCE-with-logits averaged
  over cells and samples.  Its "correct" count is the number of samples whose predicted best cell
  (argmax of the logits) is the target's best cell: "the eye would go where the target says".
  ``objective_args``: ``accuracy_map`` (``zoo:what``, the default, or the path of a 55 × 55
  ``.npy``), ``baseline`` (0.1) and ``reflect`` (False; True = the original notebooks'
  point-reflected target).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F

from whatwhere.utils.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from whatwhere.data import DisplayBatch
    from whatwhere.engine.recipe import Recipe

__all__ = ["Objective", "OBJECTIVES", "register_objective", "make_objective", "classification", "where",
           "load_accuracy_map", "DEFAULT_ACCURACY_MAP"]

Objective = Callable[[torch.nn.Module, "DisplayBatch"], tuple[torch.Tensor, torch.Tensor]]
#: name -> factory(recipe, device) -> Objective
OBJECTIVES: dict[str, Callable[["Recipe", torch.device], Objective]] = {}


def register_objective(name: str):
    """Register an objective factory ``factory(recipe, device) -> objective(model, displays)``."""

    def deco(factory):
        OBJECTIVES[name] = factory
        return factory

    return deco


@register_objective("classification")
def classification(recipe=None, device=None) -> Objective:
    """Cross-entropy on ``model(images)``; correct = argmax equals the label."""

    def objective(model, d):
        logits = model(d.images).float()  # the loss in float32, also under bf16 autocast
        return F.cross_entropy(logits, d.labels), (logits.argmax(1) == d.labels).sum()

    return objective


DEFAULT_ACCURACY_MAP = "zoo:what"


def load_accuracy_map(spec: str | None = None) -> torch.Tensor:
    """A What network's 55 × 55 shift-accuracy map (element ``[di + 27, dj + 27]``), float32.

    ``spec``: ``zoo:NAME`` (the map shipped with a zoo model; default ``zoo:what``) or a path.
    """
    import numpy as np

    from whatwhere.engine.zoo import PREFIX, zoo_path

    spec = str(spec or DEFAULT_ACCURACY_MAP)
    p = zoo_path(spec, "accuracy_map") if spec.startswith(PREFIX) else Path(spec)
    if not p.is_file():
        raise FileNotFoundError(
            f"What accuracy map {p} not found (cwd {Path.cwd()}): build one with `whatwhere eval accuracy-map RUN`, "
            f"or use the shipped one (objective_args.accuracy_map: zoo:what)")
    try:
        acc = np.load(p, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:  # pickled, empty, truncated or not .npy at all
        raise UserError(f"{p}: not a readable .npy accuracy map ({' '.join(str(exc).split())[:200]})") from exc
    if not isinstance(acc, np.ndarray):
        raise UserError(f"{p}: an .npz archive, expected one .npy accuracy map")
    if acc.dtype.kind not in "biuf":
        raise UserError(f"{p}: expected a numeric accuracy map, got an array of dtype {acc.dtype}")
    if acc.ndim != 2 or acc.shape[0] != acc.shape[1] or acc.shape[0] % 2 == 0:
        raise UserError(f"{p}: expected a square map with an odd side, got shape {acc.shape}")
    return torch.as_tensor(acc, dtype=torch.float32)


@register_objective("where")
def where(recipe=None, device=None) -> Objective:
    """BCE of the Where logits against the collicular target (module docstring)."""
    from whatwhere.retina import Colliculus

    args = dict(getattr(recipe, "objective_args", None) or {})
    unknown = set(args) - {"accuracy_map", "baseline", "reflect"}
    if unknown:
        raise ValueError(f"objective 'where': unknown objective_args {sorted(unknown)}; "
                         "allowed: accuracy_map, baseline, reflect")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    acc = load_accuracy_map(args.get("accuracy_map")).to(dev)
    baseline = float(args.get("baseline", 0.1))
    reflect = bool(args.get("reflect", False))
    colliculi: dict[int, Colliculus] = {}

    def objective(model, d):
        logits = model(d.images).float()
        retina = getattr(model, "retina", None)
        key = id(retina)
        if key not in colliculi:  # the colliculus of the model's own retina, built once per run
            colliculi[key] = (Colliculus(retina) if retina is not None else Colliculus()).to(dev)
        target = colliculi[key].where_target(acc, d.offsets, baseline=baseline, reflect=reflect)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        return loss, (logits.argmax(1) == target.argmax(1)).sum()

    return objective


@register_objective("saccadic")
def saccadic(recipe=None, device=None) -> Objective:
    """The foveated saccadic transformer's loss (:mod:`whatwhere.models.saccadic`):

    ``CE(accumulated evidence) + glimpse_weight * mean_k CE(glimpse k) + map_weight * mean_k
    BCE(collicular map k, the Where target seen from fixation k)``.  The map term is the paper's
    Where objective, applied at every fixation (the target is the accuracy map of the foveal
    classifier laid around the digit's offset from the fixation, rounded to a pixel).
    ``objective_args``: ``accuracy_map`` (default ``zoo:what``), ``baseline`` (0.1),
    ``glimpse_weight`` (0.5), ``map_weight`` (1.0; 0 trains without the supervised map).
    Correct: the accumulated answer equals the label.
    """
    args = dict(getattr(recipe, "objective_args", None) or {})
    allowed = {"accuracy_map", "baseline", "glimpse_weight", "map_weight"}
    unknown = set(args) - allowed
    if unknown:
        raise ValueError(f"objective 'saccadic': unknown objective_args {sorted(unknown)}; allowed: {sorted(allowed)}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    glimpse_w = float(args.get("glimpse_weight", 0.5))
    map_w = float(args.get("map_weight", 1.0))
    baseline = float(args.get("baseline", 0.1))
    acc = load_accuracy_map(args.get("accuracy_map")).to(dev) if map_w > 0 else None

    def objective(model, d):
        tr = model.forward_trace(d.images)
        logits, step_logits, where_logits = tr.logits.float(), tr.step_logits.float(), tr.where_logits.float()
        loss = F.cross_entropy(logits, d.labels)
        K = tr.step_logits.shape[1]
        if glimpse_w > 0:
            loss = loss + glimpse_w * F.cross_entropy(step_logits.flatten(0, 1), d.labels.repeat_interleave(K))
        if map_w > 0:
            rel = d.offsets[:, None, :] - tr.fixations[:, :-1].detach().round().long()   # (B, K, 2)
            target = model.colliculus.where_target(acc, rel.flatten(0, 1), baseline=baseline)
            loss = loss + map_w * F.binary_cross_entropy_with_logits(where_logits.flatten(0, 1), target)
        return loss, (logits.argmax(1) == d.labels).sum()

    return objective


class _Outputs(torch.nn.Module):
    """A stand-in model that returns precomputed outputs (one ensemble member's) and exposes the
    ensemble's shared attributes (the Where objective reads ``retina``)."""

    def __init__(self, outputs: torch.Tensor, ensemble) -> None:
        super().__init__()
        self._outputs = outputs
        self._ensemble = [ensemble]

    @property
    def retina(self):
        return self._ensemble[0].retina

    def forward(self, images):
        return self._outputs


@register_objective("ensemble")
def ensemble(recipe=None, device=None) -> Objective:
    """The objective of an :class:`~whatwhere.models.ensemble.Ensemble`: its members' objective
    (``objective_args.member_objective``, default ``classification``; the other ``objective_args``
    are passed on) applied to each member on its own displays and summed, so that every member
    gets its own gradient.  Correct: the members' mean."""
    from types import SimpleNamespace

    args = dict(getattr(recipe, "objective_args", None) or {})
    name = args.pop("member_objective", "classification")
    if name not in OBJECTIVES or name in ("ensemble", "saccadic"):
        raise ValueError(f"objective 'ensemble': member_objective must be a registered per-output objective, got {name!r}")
    inner = OBJECTIVES[name](SimpleNamespace(objective=name, objective_args=args), device)

    def objective(model, d):
        out = model(d.images).float()                              # (n, b, ...)
        n, b = out.shape[:2]
        loss, correct = 0.0, 0.0
        for k in range(n):
            dk = d[k * b:(k + 1) * b] if model.training else d
            loss_k, c_k = inner(_Outputs(out[k], model), dk)
            loss = loss + loss_k
            correct = correct + c_k
        return loss, torch.round(torch.as_tensor(correct, dtype=torch.float64) * (1.0 if model.training else 1.0 / n)).long()

    return objective


def make_objective(recipe: "Recipe", device) -> Objective:
    """The objective a recipe asks for."""
    if recipe.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {recipe.objective!r}; registered: {sorted(OBJECTIVES)}")
    return OBJECTIVES[recipe.objective](recipe, device)
