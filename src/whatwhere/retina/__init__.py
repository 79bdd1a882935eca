"""The foveated retina of the What/Where model.

- :mod:`.logpolar`: geometry of the log-polar grid (rings, azimuths, cell positions);
- :mod:`.loggabor`: the 2880-coefficient log-Gabor retina (whitening, encoding, inverse);
- :mod:`.polo`: the POLO log-polar code of the POLO-ATN localisers (cropped Laplacian pyramid
  and one log-Gabor bank reused at every level; 768-d, dual 512 + 2048-d);
- :mod:`.colliculus`: the 240-cell collicular map (pooling, unpooling, saccade targets,
  the Where target).
"""

from whatwhere.retina.colliculus import Colliculus, WhereTargets, accuracy_field, where_target
from whatwhere.retina.loggabor import Retina, RetinaConfig, TruncatedBank, loggabor_bank, whitening_filter
from whatwhere.retina.logpolar import LogPolarGrid
from whatwhere.retina.polo import DualPoloCode, PoloCode, PoloConfig, dual85, dual_nolowpass, flatten_dual, polo95

__all__ = [
    "LogPolarGrid",
    "RetinaConfig",
    "Retina",
    "TruncatedBank",
    "loggabor_bank",
    "whitening_filter",
    "Colliculus",
    "WhereTargets",
    "accuracy_field",
    "where_target",
    "PoloConfig",
    "PoloCode",
    "DualPoloCode",
    "polo95",
    "dual85",
    "dual_nolowpass",
    "flatten_dual",
]
