"""A request's named parameters as `chat()` builds them, for tests that call an adapter or a
builder directly (each test names only the parameters it is about)."""

from __future__ import annotations

import inspect
from typing import Any

from llmrelay._request import build_params


def named_params(**given: Any) -> dict[str, Any]:
    """`build_params` of these named call arguments (every other one left out, as None)."""
    names = inspect.signature(build_params).parameters
    assert set(given) <= set(names), set(given) - set(names)
    return build_params(**{name: given.get(name) for name in names})
