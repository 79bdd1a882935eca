"""whatwhere: foveated active vision — the What/Where model and spatial transformers on one task."""

__version__ = "0.1.0"
