"""Every figure of whatwhere.  Each function takes arrays or result records, draws one figure
with matplotlib's object API (no backend is selected, pyplot is not used) and saves it to ``out``
(PNG or PDF by the suffix); it returns the path."""

from whatwhere.viz.benchmark import benchmark_figure
from whatwhere.viz.displays import display_grid
from whatwhere.viz.maps import accuracy_map, maps_side_by_side
from whatwhere.viz.saccades import scanpaths, where_fig3, where_fig4, where_fig5b
from whatwhere.viz.sweep import scan_figure, sweep_figures
from whatwhere.viz.tradeoff import tradeoff_figure
from whatwhere.viz.training import training_curves
from whatwhere.viz.transformers import transformer_grid

__all__ = [
    "benchmark_figure",
    "display_grid",
    "accuracy_map",
    "maps_side_by_side",
    "where_fig3",
    "where_fig4",
    "where_fig5b",
    "training_curves",
    "transformer_grid",
    "scan_figure",
    "sweep_figures",
    "scanpaths",
    "tradeoff_figure",
]
