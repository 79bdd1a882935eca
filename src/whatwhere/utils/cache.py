"""The on-disk cache: ``$XDG_CACHE_HOME/whatwhere/<part>`` (default ``~/.cache/whatwhere/<part>``).

MNIST lives in ``mnist/`` and the retina's regularised inverse in ``retina/``; both are safe to
delete (they are rebuilt or fetched again).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(part: str) -> Path:
    """The cache directory of ``part`` (not created)."""
    if not part or "/" in part or part in (".", ".."):
        raise ValueError(f"part must be a plain directory name, got {part!r}")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "whatwhere" / part
