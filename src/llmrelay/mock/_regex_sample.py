"""A string that matches a regular expression, for a schema's ``pattern``.

It walks the tree of Python's own regex parser (``re._parser``; no stubs, hence `Any`): the first
branch of an alternation, the minimum of a repeat (at least one when allowed), a typical member
of a character class. Look-arounds and back references are not solved: `sample` checks its
answer with `re.search` and returns `None` when it does not match.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

_PARSER: Any = importlib.import_module("re._parser")
_CATEGORIES = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": "-",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
}
_CANDIDATES = "a0A_- x.@"  # tried in turn for a negated class or a NOT_LITERAL
_MAX_LENGTH = 10_000  # a sample longer than this (huge repeat minimums) is not worth building


def sample(pattern: str) -> str | None:
    """A string `re.search(pattern, ...)` finds a match in, or `None` if none was found."""
    try:
        tree = _PARSER.parse(pattern)
        text = _Walker().walk(tree)
    except (re.error, RecursionError, _TooLong, ValueError, TypeError):
        return None
    return text if re.search(pattern, text) else None


class _TooLong(Exception):
    pass


class _Walker:
    def __init__(self) -> None:
        self.groups: dict[int, str] = {}

    def walk(self, items: Any) -> str:
        out = "".join(self.node(str(op), av) for op, av in items)
        if len(out) > _MAX_LENGTH:
            raise _TooLong
        return out

    def node(self, op: str, av: Any) -> str:
        if op == "LITERAL":
            return chr(av)
        if op == "NOT_LITERAL":
            return next(c for c in _CANDIDATES if ord(c) != av)
        if op == "ANY":
            return "a"
        if op == "IN":
            return _in_class(av)
        if op == "CATEGORY":
            return _CATEGORIES.get(str(av), "a")
        if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = av
            count: int = max(low, min(1, high))
            return self.walk(sub) * count
        if op == "SUBPATTERN":
            group, _, _, sub = av
            text = self.walk(sub)
            if group is not None:
                self.groups[group] = text
            return text
        if op == "ATOMIC_GROUP":
            return self.walk(av)
        if op == "BRANCH":
            return self.walk(av[1][0])
        if op == "GROUPREF":
            return self.groups.get(av, "")
        return ""  # anchors, look-arounds: nothing to write


def _in_class(items: Any) -> str:
    members = [(str(op), av) for op, av in items]
    if members and members[0][0] == "NEGATE":
        rest = members[1:]
        return next((c for c in _CANDIDATES if not _in_members(c, rest)), "~")
    op, av = members[0]
    if op == "LITERAL":
        return chr(av)
    if op == "RANGE":
        return chr(av[0])
    if op == "CATEGORY":
        return _CATEGORIES.get(str(av), "a")
    return "a"


def _in_members(char: str, members: list[tuple[str, Any]]) -> bool:
    code = ord(char)
    for op, av in members:
        if op == "LITERAL" and av == code:
            return True
        if op == "RANGE" and av[0] <= code <= av[1]:
            return True
        if op == "CATEGORY" and _category_has(str(av), char):
            return True
    return False


def _category_has(category: str, char: str) -> bool:
    tests = {
        "CATEGORY_DIGIT": char.isdigit(),
        "CATEGORY_NOT_DIGIT": not char.isdigit(),
        "CATEGORY_WORD": char.isalnum() or char == "_",
        "CATEGORY_NOT_WORD": not (char.isalnum() or char == "_"),
        "CATEGORY_SPACE": char.isspace(),
        "CATEGORY_NOT_SPACE": not char.isspace(),
    }
    return tests.get(category, False)
