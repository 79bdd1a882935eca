"""Small helpers for validating user-written configuration (recipes, ``--set`` overrides).

They return messages rather than raise, so that each caller raises its own error class:

* :func:`suggest`: the nearest valid name (``difflib``), for "did you mean ...?" hints;
* :func:`type_problem`: whether a value matches a type hint (``int``, ``float | None``,
  ``tuple[float, float]``, ``list[str]``, ``Literal[...]``, ...), and if not, why;
* :func:`show_key` / :func:`show_value`: one-line renderings of a key and a value (``repr`` where
  needed, so that a newline in a key or a value never breaks a one-line message).

Type rules are those of YAML data: ``bool`` is not an integer, an integer is a valid float,
a list is a valid tuple; a class that YAML cannot produce only matches its own instances.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

__all__ = ["describe", "did_you_mean", "matches", "one_line", "show_key", "show_value", "suggest", "type_problem"]


def suggest(word: Any, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to ``word`` (``difflib.get_close_matches``), or None if none is close."""
    matches = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1)
    return matches[0] if matches else None


def did_you_mean(word: Any, candidates: Iterable[str], *, prefix: str = "") -> str:
    """``" (did you mean 'X'?)"`` for the nearest candidate, else ``" (allowed: a, b, ...)"``."""
    candidates = sorted(str(c) for c in candidates)
    best = suggest(word, candidates)
    if best is not None:
        return f" (did you mean {prefix + best!r}?)"
    return f" (allowed: {', '.join(candidates)})" if candidates else " (none allowed)"


_PLAIN = re.compile(r"[A-Za-z0-9_.\[\]*/+-]+")


def show_key(key: Any) -> str:
    """A key as written in a message: bare if it is plain text, else its ``repr``."""
    return key if isinstance(key, str) and _PLAIN.fullmatch(key) else repr(key)


def show_value(value: Any, limit: int = 80) -> str:
    """``repr(value)`` on one line, shortened to about ``limit`` characters."""
    text = repr(value).replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(text: object, limit: int = 200) -> str:
    """``text`` with line breaks escaped, shortened to about ``limit`` characters."""
    text = str(text).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (YAML data) fits the type hint ``hint``."""
    if hint is Any or hint is typing.Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return _is_number(value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args, strict=True))
        return all(matches(v, args[0]) for v in value) if args else True
    if origin is dict:
        return isinstance(value, dict)
    if hint in (list, tuple):
        return isinstance(value, (list, tuple))
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint this checker does not know: no opinion


def describe(hint: Any) -> str:
    """The expected type in words: ``"an integer"``, ``"a number or null"``, ``"a list of 2 numbers"``."""
    if hint is None or hint is type(None):
        return "null"
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        words = [describe(a) for a in args if a is not type(None)]
        if type(None) in args:
            words.append("null")
        return " or ".join(dict.fromkeys(words))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            inner = {describe(a) for a in args}
            what = inner.pop() if len(inner) == 1 else "values"
            return f"a list of {len(args)} {_plural(what)}"
        return f"a list of {_plural(describe(args[0]))}" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    if hint in (list, tuple):
        return "a list"
    return f"a {getattr(hint, '__name__', str(hint))}"


def _plural(words: str) -> str:
    for one, many in (
        ("an integer", "integers"),
        ("a number", "numbers"),
        ("a string", "strings"),
        ("true or false", "booleans"),
    ):
        words = words.replace(one, many)
    return words


def type_problem(value: Any, hint: Any, key: str) -> str | None:
    """None if ``value`` fits ``hint``, else ``"KEY must be TYPE, got VALUE"``."""
    if matches(value, hint):
        return None
    return f"{show_key(key)} must be {describe(hint)}, got {show_value(value)}"
