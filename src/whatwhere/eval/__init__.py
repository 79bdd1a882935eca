"""Evaluation: protocols, the unified benchmark, diagnostics, reports and the published numbers.

- :mod:`.metrics`: Wilson intervals, the chance level;
- :mod:`.protocols`: central/general accuracy, the shift-accuracy map, θ diagnostics;
- :mod:`.benchmark`: every model on the same displays per contrast × eccentricity;
- :mod:`.diagnostics`: how much of the digit's position a localiser's input carries (code R²);
- :mod:`.reports`: Markdown tables and result files;
- :mod:`.tradeoff`: accuracy at 40 px against the numbers each model reads per decision;
- :mod:`.published`: the numbers of the two studies.
"""

from whatwhere.eval.benchmark import Entry, benchmark, entries_from_runs
from whatwhere.eval.diagnostics import code_r2
from whatwhere.eval.metrics import CHANCE, wilson
from whatwhere.eval.protocols import ECCENTRICITIES, accuracy_map, central_general, radial_profile, theta_diagnostics
from whatwhere.eval.reports import markdown, write_report

__all__ = [
    "Entry",
    "benchmark",
    "entries_from_runs",
    "code_r2",
    "CHANCE",
    "wilson",
    "ECCENTRICITIES",
    "accuracy_map",
    "central_general",
    "radial_profile",
    "theta_diagnostics",
    "markdown",
    "write_report",
]
