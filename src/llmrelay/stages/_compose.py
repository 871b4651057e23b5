"""The one place a client's stage chain is built, outermost first:

    retry → circuit breaker (unless turned off) → concurrency slot → rate limit (when
          configured) → reply opener → attempt observer (when one is given) → sender

Above a client's chain, `wrap_chain` adds (each only when configured), outermost first:

    budget → fallback → [one chain as above per route: the primary's, then each fallback's]

The fallback stage sits above whole per-route chains rather than inside one: every route is a
client of its own (key, base URL, retries, slots, rate limit), and a call changes wire format
when it changes route, so the retry stage and everything below it belong to the route.

Later stages (hooks, shared limits) are added here, and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._breaker import Breaker, BreakerStage
from ._observe import AttemptObserver, ObserveStage
from ._opener import ReplyOpener
from ._ratelimit import RateLimitStage
from ._retry import RetryStage
from ._slot import ConcurrencySlot

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .._config import RateLimit
    from .._keymask import KeyMask
    from .._prices import PriceTable
    from .._routes import Budget
    from .._usage import UsageTotals
    from ..providers._base import Provider
    from ._base import Stage
    from ._fallback import RouteEntry


def build_chain(
    sender: Stage,
    *,
    provider: Provider,
    mask: KeyMask,
    usage: UsageTotals,
    max_concurrency: int,
    rate_limit: RateLimit | None,
    observer: AttemptObserver | None = None,
    breaker: Breaker | None = None,
    closers: list[Callable[[], Awaitable[None]]] | None = None,
) -> Stage:
    """`closers` collects what the client must await when it closes (a shared limiter's Redis
    connections)."""
    stage: Stage = sender
    if observer is not None:
        stage = ObserveStage(stage, observer=observer)
    stage = ReplyOpener(stage, provider=provider, mask=mask)
    if rate_limit is not None:
        stage = limiter = RateLimitStage(stage, limit=rate_limit, max_concurrency=max_concurrency)
        if closers is not None:
            closers.append(limiter.aclose)
    stage = ConcurrencySlot(stage, limit=max_concurrency)
    if breaker is not None:
        stage = BreakerStage(stage, breaker=breaker)
    return RetryStage(stage, usage=usage, provider=provider.name)


def wrap_chain(
    chain: Stage,
    *,
    usage: UsageTotals,
    table: PriceTable,
    routes: list[RouteEntry] | None = None,
    budget: Budget | None = None,
) -> Stage:
    """The stages above the per-route chains: fallback (over `routes`, the primary's `chain`
    first), then budget outermost."""
    stage = chain
    if routes:
        from ._fallback import FallbackStage

        stage = FallbackStage(routes, usage=usage)
    if budget is not None:
        from ._budget import BudgetStage

        stage = BudgetStage(stage, budget=budget, table=table)
    return stage
