"""The errors that mean "bad input": the command reports them in one line and exits 2.

Library code raises :class:`UserError` (a :class:`ValueError`) or one of the standard
``ValueError`` / ``FileNotFoundError`` when what it was given cannot be used; anything else that
escapes a command is a bug (``whatwhere: internal error: ...``, exit status 1).
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(ValueError):
    """Input that cannot be used (a corrupted, truncated or foreign file, a value out of range);
    the message names the file or setting and what is wrong with it."""
