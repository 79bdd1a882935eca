"""Training and loading: recipes, objectives, the trainer, weights on disk and the model zoo.

- :mod:`.recipe`: YAML recipes (packaged or files, ``extends``, profiles, ``--set``);
- :mod:`.objectives`: the losses (classification, the Where pathway's collicular BCE);
- :mod:`.trainer`: :func:`train` a recipe into a run directory (checkpoints, exact resume);
- :mod:`.checkpoints`: safetensors weights and :func:`load` (run, file or zoo name);
- :mod:`.zoo`: the checked model zoo shipped with the package.
"""

from whatwhere.engine.checkpoints import load, read_meta, save_weights, weights_path
from whatwhere.engine.recipe import Recipe, RecipeError, load_recipe, parse_recipe, recipe_names
from whatwhere.engine.trainer import TrainingError, TrainingInterrupted, read_metrics, train
from whatwhere.engine.zoo import ZooError, zoo_names

__all__ = [
    "load",
    "read_meta",
    "save_weights",
    "weights_path",
    "Recipe",
    "RecipeError",
    "load_recipe",
    "parse_recipe",
    "recipe_names",
    "TrainingError",
    "TrainingInterrupted",
    "read_metrics",
    "train",
    "ZooError",
    "zoo_names",
]
