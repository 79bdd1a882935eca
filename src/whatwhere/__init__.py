"""whatwhere: foveated active vision — the What/Where model and spatial transformers on one task.

The everyday API (imported on first use, so that ``import whatwhere`` is instant)::

    import whatwhere

    ds = whatwhere.DisplaySet(images, labels, whatwhere.preset("dabane2021"), seed=0)  # the task
    model = whatwhere.load("polo_atn")            # a shipped model (hash-checked), a run or a file
    net = whatwhere.create_model("atn")           # an untrained registered model
    agent = whatwhere.Agent(whatwhere.load("what"), whatwhere.load("where-c0.7"))  # the saccade loop
    result = whatwhere.benchmark({"POLO-ATN": model}, n_digits=200)             # the unified benchmark
    codes = whatwhere.Retina()(displays)          # (B, 2880) log-polar log-Gabor codes
    whatwhere.configure_threads()                 # opt-in: the command's CPU thread policy

Importing whatwhere sets nothing process-wide (threads, seeds, backends);
:func:`configure_threads` is the one explicit call that does.

Layers (imports flow one way): ``utils`` → ``data``, ``retina``, ``ops`` → ``models`` → ``engine``
→ ``eval`` → ``viz`` → ``orchestration`` → ``cli``.  See ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_API = {
    "create_model": "whatwhere.models.registry",
    "register_model": "whatwhere.models.registry",
    "load": "whatwhere.engine.checkpoints",
    "train": "whatwhere.engine.trainer",
    "load_recipe": "whatwhere.engine.recipe",
    "DisplaySet": "whatwhere.data.display",
    "DisplayConfig": "whatwhere.data.display",
    "preset": "whatwhere.data.display",
    "Retina": "whatwhere.retina.loggabor",
    "Colliculus": "whatwhere.retina.colliculus",
    "Agent": "whatwhere.models.agent",
    "benchmark": "whatwhere.eval.benchmark",
    "configure_threads": "whatwhere.utils.threads",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'whatwhere' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
