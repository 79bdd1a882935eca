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
* ``ram``: the recurrent attention model's hybrid loss (Mnih et al. 2014): cross-entropy of the
  final answer + MSE of the learned baseline against the reward + REINFORCE on the location policy
  (reward 1 for a correct final answer, 0 otherwise; advantage = reward − baseline, detached).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from whatwhere.utils.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from whatwhere.data import DisplayBatch

__all__ = [
    "Objective",
    "OBJECTIVES",
    "OBJECTIVE_ARGS",
    "register_objective",
    "objective_args_types",
    "make_objective",
    "classification",
    "where",
    "ram",
    "load_accuracy_map",
    "DEFAULT_ACCURACY_MAP",
]

Objective = Callable[[torch.nn.Module, "DisplayBatch"], tuple[torch.Tensor, torch.Tensor]]
#: name -> factory(recipe, device) -> Objective
#: (the recipe is any object with the Recipe's attributes: the parser imports this module, not the reverse)
OBJECTIVES: dict[str, Callable[[Any, torch.device], Objective]] = {}
#: name -> the ``objective_args`` it accepts: ``{arg: type hint}``, a function of the recipe's
#: ``objective_args`` returning such a mapping, or None (not declared: any args).
OBJECTIVE_ARGS: dict[str, dict | Callable[[dict], dict | None] | None] = {}


def register_objective(name: str, args: dict | Callable[[dict], dict | None] | None = None):
    """Register an objective factory ``factory(recipe, device) -> objective(model, displays)``.

    ``args`` declares the ``objective_args`` it accepts, ``{name: type hint}`` (``{}``: none), so
    that recipes are checked before anything is built; None accepts any.
    """

    def deco(factory):
        OBJECTIVES[name] = factory
        OBJECTIVE_ARGS[name] = args
        return factory

    return deco


def objective_args_types(name: str, args: dict) -> dict | None:
    """The ``{arg: type hint}`` that objective ``name`` accepts given its ``args`` (None: any).

    Raises:
        ValueError: unknown objective, or a bad ``member_objective`` of the ensemble objective.
    """
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; registered: {sorted(OBJECTIVES)}")
    table = OBJECTIVE_ARGS.get(name)
    return table(args) if callable(table) else table


def _check_args(name: str, args: dict) -> None:
    allowed = objective_args_types(name, args)
    if allowed is None:  # not declared: any args
        return
    unknown = set(args) - set(allowed)
    if unknown:
        raise ValueError(f"objective {name!r}: unknown objective_args {sorted(unknown)}; allowed: {sorted(allowed)}")


@register_objective("classification", args={})
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
            f"or use the shipped one (objective_args.accuracy_map: zoo:what)"
        )
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


@register_objective("where", args={"accuracy_map": str, "baseline": float, "reflect": bool})
def where(recipe=None, device=None) -> Objective:
    """BCE of the Where logits against the collicular target (module docstring)."""
    from whatwhere.retina import Colliculus, WhereTargets

    args = dict(getattr(recipe, "objective_args", None) or {})
    _check_args("where", args)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    acc = load_accuracy_map(args.get("accuracy_map")).to(dev)
    baseline = float(args.get("baseline", 0.1))
    reflect = bool(args.get("reflect", False))
    targets: dict[int, WhereTargets] = {}

    def objective(model, d):
        logits = model(d.images).float()
        retina = getattr(model, "retina", None)
        key = id(retina)
        if key not in targets:  # the colliculus of the model's own retina, built once per run
            colliculus = (Colliculus(retina) if retina is not None else Colliculus()).to(dev)
            targets[key] = WhereTargets(colliculus, acc, baseline=baseline, reflect=reflect)
        target = targets[key](d.offsets)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        return loss, (logits.argmax(1) == target.argmax(1)).sum()

    return objective


@register_objective(
    "saccadic",
    args={
        "accuracy_map": str,
        "baseline": float,
        "glimpse_weight": float,
        "map_weight": float,
        "policy_weight": float,
        "saccade_weight": float,
    },
)
def saccadic(recipe=None, device=None) -> Objective:
    """The foveated saccadic transformer's loss (:mod:`whatwhere.models.saccadic`):

    ``CE(accumulated evidence) + glimpse_weight * mean_k CE(glimpse k) + map_weight * mean_k
    BCE(collicular map k, the Where target seen from fixation k)``.  The map term is the paper's
    Where objective, applied at every fixation (the target is the accuracy map of the foveal
    classifier laid around the digit's offset from the fixation, rounded to a pixel).
    ``objective_args``: ``accuracy_map`` (default ``zoo:what``), ``baseline`` (0.1),
    ``glimpse_weight`` (0.5), ``map_weight`` (1.0; 0 trains without the supervised map),
    ``policy_weight`` (0: off).

    With ``policy_weight`` > 0 (the model sampling its saccades: ``model_args.policy_std`` > 0)
    a REINFORCE term (Williams 1992) is added to that loss, as the recurrent attention model trains
    its locations (Mnih, Heess, Graves & Kavukcuoglu 2014): ``policy_weight * mean_b sum_k
    −log π(saccade k) (R − b_k)`` with the reward ``R = 1`` if the accumulated answer is right,
    else 0, and the advantage ``R − b_k`` detached; plus ``mean_{b,k} (b_k − R)²``, which trains
    the model's baseline head alone (it reads the detached map; with Adam the scale of that
    term does not matter, so it has no weight of its own).  In eval mode (deterministic saccades,
    no log-probabilities) the loss is the one without the policy.

    With ``saccade_weight`` > 0 (0: off) a supervised saccade term is added: ``saccade_weight *
    mean_{b,k} huber(f_{k-1} + s_k − offset)``, the Huber loss (1 px) of where saccade ``k`` lands
    (from the previous fixation ``f_{k-1}``, detached) against the digit's offset, in px and summed
    over the two axes.  It trains the saccade itself: the soft-argmax's temperature, the sub-cell
    head (``refine``, which no other term reaches when the glimpse is detached) and, through the
    soft-argmax weights, the collicular map.  A display that had stopped (``stop_confidence``)
    adds nothing.
    Correct: the accumulated answer equals the label.
    """
    from whatwhere.retina import WhereTargets

    args = dict(getattr(recipe, "objective_args", None) or {})
    _check_args("saccadic", args)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    glimpse_w = float(args.get("glimpse_weight", 0.5))
    map_w = float(args.get("map_weight", 1.0))
    baseline = float(args.get("baseline", 0.1))
    policy_w = float(args.get("policy_weight", 0.0))
    saccade_w = float(args.get("saccade_weight", 0.0))
    for key, value in (("policy_weight", policy_w), ("saccade_weight", saccade_w)):
        if not (value >= 0 and value < float("inf")):
            raise ValueError(f"objective 'saccadic': {key} must be a finite number >= 0, got {value}")
    acc = load_accuracy_map(args.get("accuracy_map")).to(dev) if map_w > 0 else None
    map_targets: dict[int, WhereTargets] = {}  # per colliculus; offsets seen from a fixation reach N per axis

    def objective(model, d):
        tr = model.forward_trace(d.images)
        logits, step_logits, where_logits = tr.logits.float(), tr.step_logits.float(), tr.where_logits.float()
        loss = F.cross_entropy(logits, d.labels)
        K = tr.step_logits.shape[1]
        if glimpse_w > 0:
            loss = loss + glimpse_w * F.cross_entropy(step_logits.flatten(0, 1), d.labels.repeat_interleave(K))
        if map_w > 0 and acc is not None:
            rel = d.offsets[:, None, :] - tr.fixations[:, :-1].detach().round().long()  # (B, K, 2)
            key = id(model.colliculus)
            if key not in map_targets:
                map_targets[key] = WhereTargets(model.colliculus, acc, baseline=baseline, radius=model.colliculus.N)
            target = map_targets[key](rel.flatten(0, 1))
            loss = loss + map_w * F.binary_cross_entropy_with_logits(where_logits.flatten(0, 1), target)
        if saccade_w > 0:
            prev, new = tr.fixations[:, :-1].float(), tr.fixations[:, 1:].float()  # (B, K, 2)
            landing = prev.detach() + (new - prev)  # each saccade from its detached start
            err = F.huber_loss(landing, d.offsets[:, None, :].float().expand_as(landing), reduction="none", delta=1.0)
            moved = torch.arange(K, device=err.device)[None, :] < tr.n_glimpses[:, None]  # (B, K) glimpses taken
            loss = loss + saccade_w * (err.sum(-1) * moved).sum() / moved.sum().clamp(min=1)
        hit = logits.argmax(1) == d.labels
        if policy_w > 0 and model.training:
            if tr.log_probs is None or tr.baselines is None:
                raise ValueError(
                    "objective_args.policy_weight > 0 needs a model that samples its saccades "
                    "(model_args.policy_std > 0)"
                )
            reward = hit.float()[:, None]  # (B, 1)
            b = tr.baselines.float()  # (B, K)
            loss = loss + F.mse_loss(b, reward.expand_as(b))
            loss = loss + policy_w * (-(tr.log_probs.float() * (reward - b).detach()).sum(1)).mean()
        return loss, hit.sum()

    return objective


@register_objective("ram", args={"baseline_weight": float, "reinforce_weight": float})
def ram(recipe=None, device=None) -> Objective:
    """The hybrid loss of the recurrent attention model (:class:`~whatwhere.models.ram.RAM`;
    Mnih, Heess, Graves & Kavukcuoglu 2014):

    ``CE(logits, label) + baseline_weight * mean_t (b_t − R)² + reinforce_weight * mean_b
    sum_t −log π(l_t) (R − b_t)``, with ``R = 1`` if the final answer is right, else 0, and the
    advantage ``R − b_t`` detached.  The policy's gradient comes only through REINFORCE; the
    classifier, core and glimpse network learn from the cross-entropy.  ``objective_args``:
    ``baseline_weight`` (1.0), ``reinforce_weight`` (1.0).  Correct: the final answer equals
    the label.  In eval mode (the policy's mean, no log-probabilities) the loss is the
    cross-entropy plus the baseline term.
    """
    args = dict(getattr(recipe, "objective_args", None) or {})
    allowed = {"baseline_weight", "reinforce_weight"}
    unknown = set(args) - allowed
    if unknown:
        raise ValueError(f"objective 'ram': unknown objective_args {sorted(unknown)}; allowed: {sorted(allowed)}")
    base_w = float(args.get("baseline_weight", 1.0))
    rl_w = float(args.get("reinforce_weight", 1.0))
    if not (base_w >= 0 and rl_w >= 0):
        raise ValueError(f"objective 'ram': baseline_weight and reinforce_weight must be >= 0, got {base_w}, {rl_w}")

    def objective(model, d):
        if not hasattr(model, "forward_trace") or not hasattr(model, "locator"):
            raise ValueError("objective 'ram' needs a RAM model (model: ram)")
        tr = model.forward_trace(d.images)
        logits = tr.logits.float()
        hit = logits.argmax(1) == d.labels
        reward = hit.float()[:, None]  # (B, 1)
        loss = F.cross_entropy(logits, d.labels)
        if tr.baselines.shape[1]:
            b = tr.baselines.float()  # (B, K-1)
            loss = loss + base_w * F.mse_loss(b, reward.expand_as(b))
            advantage = (reward - b).detach()
            loss = loss + rl_w * (-(tr.log_probs.float() * advantage).sum(1)).mean()
        return loss, hit.sum()

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


#: objectives that need a whole model's trace, not one member's outputs
_NOT_MEMBERS = {"ensemble", "saccadic", "ram"}


def _ensemble_args(args: dict) -> dict | None:
    """The ensemble objective's args: ``member_objective`` and those of the member objective."""
    name = args.get("member_objective", "classification")
    if not isinstance(name, str) or name not in OBJECTIVES or name in _NOT_MEMBERS:
        members = sorted(set(OBJECTIVES) - _NOT_MEMBERS)
        raise ValueError(f"objective_args.member_objective must be one of {', '.join(members)}, got {name!r}")
    member = objective_args_types(name, {k: v for k, v in args.items() if k != "member_objective"})
    return None if member is None else {"member_objective": str, **member}


@register_objective("ensemble", args=_ensemble_args)
def ensemble(recipe=None, device=None) -> Objective:
    """The objective of an :class:`~whatwhere.models.ensemble.Ensemble`: its members' objective
    (``objective_args.member_objective``, default ``classification``; the other ``objective_args``
    are passed on) applied to each member on its own displays and summed, so that every member
    gets its own gradient.  Correct: the members' mean."""
    from types import SimpleNamespace

    args = dict(getattr(recipe, "objective_args", None) or {})
    name = args.pop("member_objective", "classification")
    if name not in OBJECTIVES or name in _NOT_MEMBERS:
        raise ValueError(
            f"objective 'ensemble': member_objective must be a registered per-output objective, got {name!r}"
        )
    inner = OBJECTIVES[name](SimpleNamespace(objective=name, objective_args=args), device)

    def objective(model, d):
        out = model(d.images).float()  # (n, b, ...)
        n, b = out.shape[:2]
        loss: torch.Tensor | float = 0.0
        correct: torch.Tensor | float = 0.0
        for k in range(n):
            dk = d[k * b : (k + 1) * b] if model.training else d
            loss_k, c_k = inner(_Outputs(out[k], model), dk)
            loss = loss + loss_k
            correct = correct + c_k
        scale = 1.0 if model.training else 1.0 / n
        return loss, torch.round(torch.as_tensor(correct, dtype=torch.float64) * scale).long()

    return objective


def make_objective(recipe: Any, device) -> Objective:
    """The objective a recipe asks for."""
    if recipe.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {recipe.objective!r}; registered: {sorted(OBJECTIVES)}")
    return OBJECTIVES[recipe.objective](recipe, device)
