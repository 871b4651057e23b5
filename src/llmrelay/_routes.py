"""`Route` (one fallback: a provider, a model, that client's own settings) and `Budget`.

Both are checked when built: a misspelt option is a `TypeError` like any call's, a bad number
a `ConfigError`, before any client exists.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from ._exceptions import ConfigError

if TYPE_CHECKING:
    import ssl
    from typing import Unpack

    import httpx

    from ._config import RateLimit, RetryPolicy, Timeout
    from ._prices import Prices
    from .providers import Provider


class RouteOptions(TypedDict, total=False):
    """The `AsyncClient` settings a route may have of its own (all but `fallbacks`/`budget`)."""

    api_key: str | None
    base_url: str | None
    timeout: Timeout | float | None
    max_retries: int | None
    retry: RetryPolicy | None
    max_concurrency: int
    rate_limit: RateLimit | None
    headers: Mapping[str, str] | None
    http_client: httpx.AsyncClient | None
    prices: Prices | None
    verify: bool | Literal["system"] | str | os.PathLike[str] | ssl.SSLContext | None


class Route:
    """One fallback of an `AsyncClient`: ``Route(provider="anthropic", model="claude-sonnet-4-5",
    api_key=..., max_retries=1)``. Every `AsyncClient` setting but `fallbacks` and `budget`
    may be given; the route's client is built once, with the client that lists it, and keeps
    its own key, base URL, retries and limits."""

    __slots__ = ("model", "options", "provider")

    def __init__(
        self,
        provider: str | Provider,
        *,
        model: str | None = None,
        **options: Unpack[RouteOptions],
    ) -> None:
        unknown = sorted(set(options) - RouteOptions.__optional_keys__)
        if unknown:
            from difflib import get_close_matches

            close = get_close_matches(unknown[0], sorted(RouteOptions.__optional_keys__), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"Route() got an unexpected keyword argument {unknown[0]!r}{hint}")
        self.provider = provider
        self.model = model
        self.options: Mapping[str, Any] = dict(options)

    @property
    def provider_name(self) -> str:
        return self.provider if isinstance(self.provider, str) else self.provider.name

    def __repr__(self) -> str:  # options may hold a key or credential headers: named only
        shown = f", options={sorted(self.options)}" if self.options else ""
        return f"Route(provider={self.provider_name!r}, model={self.model!r}{shown})"


class Budget:
    """A spending bound for one client: before a call is sent, what the client has spent
    (replies received, streams still open reserved at their estimate) plus the call's
    estimate must stay within `max_cost_usd` (USD, priced with the client's price table) and
    `max_tokens` (prompt + completion tokens); otherwise `BudgetExceededError`, and nothing is
    sent. A call's estimate: its prompt at 4 characters a token plus ``max_tokens`` x ``n``
    completion tokens (256 when the call gives no ``max_tokens``), priced at the requested
    model's input and output prices."""

    __slots__ = ("max_cost_usd", "max_tokens")

    def __init__(self, max_cost_usd: float | None = None, max_tokens: int | None = None) -> None:
        cost, tokens = max_cost_usd, max_tokens
        if cost is None and tokens is None:
            raise ConfigError("Budget needs max_cost_usd, max_tokens, or both")
        if cost is not None and (
            isinstance(cost, bool)
            or not isinstance(cost, int | float)
            or not math.isfinite(cost)
            or cost < 0
        ):
            raise ConfigError(f"max_cost_usd must be a number of dollars >= 0, got {cost!r}")
        if tokens is not None and (
            isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0
        ):
            raise ConfigError(f"max_tokens must be an int >= 0, got {tokens!r}")
        self.max_cost_usd = cost
        self.max_tokens = tokens

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Budget) and (self.max_cost_usd, self.max_tokens) == (
            other.max_cost_usd,
            other.max_tokens,
        )

    def __hash__(self) -> int:
        return hash((self.max_cost_usd, self.max_tokens))

    def __repr__(self) -> str:
        return f"Budget(max_cost_usd={self.max_cost_usd!r}, max_tokens={self.max_tokens!r})"
