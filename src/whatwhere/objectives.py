"""Training objectives: ``(model, batch of displays) -> (mean loss, number of "correct" samples)``.

A recipe chooses one with ``objective: NAME`` (default ``classification``) and configures it with
``objective_args``.  Modules register theirs with :func:`register_objective`; this module imports
no model, so any model module can register without import cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # pragma: no cover
    from whatwhere.data import Displays
    from whatwhere.recipe import Recipe

__all__ = ["Objective", "OBJECTIVES", "register_objective", "make_objective", "classification"]

Objective = Callable[[torch.nn.Module, "Displays"], tuple[torch.Tensor, torch.Tensor]]
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
        logits = model(d.images)
        return F.cross_entropy(logits, d.labels), (logits.argmax(1) == d.labels).sum()

    return objective


def make_objective(recipe: "Recipe", device) -> Objective:
    """The objective a recipe asks for (built-in model modules are imported first)."""
    import whatwhere.models  # noqa: F401  (model modules register their objectives)

    if recipe.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {recipe.objective!r}; registered: {sorted(OBJECTIVES)}")
    return OBJECTIVES[recipe.objective](recipe, device)
