"""The one place a client's stage chain is built, outermost first:

    hooks (when a client has any) → [budget → fallback →] retry → circuit breaker (unless
          turned off) → concurrency slot → rate limit (when configured) → reply opener → sender

`build_chain` builds one client's chain from retry down. Above it, `wrap_chain` adds (each only
when configured), outermost first:

    budget → fallback → [one chain as above per route: the primary's, then each fallback's]

The fallback stage sits above whole per-route chains rather than inside one: every route is a
client of its own (key, base URL, retries, slots, rate limit), and a call changes wire format
when it changes route, so the retry stage and everything below it belong to the route. Hooks
(`with_hooks`) go on top of everything, so they see one call however many routes it tried.

Later stages are added here, and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._breaker import Breaker, BreakerStage
from ._opener import ReplyOpener
from ._ratelimit import RateLimitStage
from ._retry import RetryStage
from ._slot import ConcurrencySlot

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence

    from .._config import RateLimit
    from .._hooks import Hooks
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
    breaker: Breaker | None = None,
    closers: list[Callable[[], Awaitable[None]]] | None = None,
) -> Stage:
    """`closers` collects what the client must await when it closes (a shared limiter's Redis
    connections)."""
    stage: Stage = ReplyOpener(sender, provider=provider, mask=mask)
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


def with_hooks(chain: Stage, hooks: Sequence[Hooks], *, provider: Provider, mask: KeyMask) -> Stage:
    """`chain` with `hooks` told about its calls: a hooks stage on top (or more hooks for the
    one already there), and every retry stage below (one per fallback route) reporting to it.
    The stages below stay as they are (calls in flight keep their concurrency slots)."""
    from ._hooks import HooksStage  # with the first hooks: a client without any never loads it

    if isinstance(chain, HooksStage):
        chain.hooks += tuple(hooks)
        return chain
    top = HooksStage(chain, hooks=hooks, provider=provider.name, mask=mask)
    for retry in _retry_stages(chain):
        retry.listener = top.retried
    return top


def _retry_stages(stage: object) -> Iterator[RetryStage]:
    """The retry stages under `stage`: down the `_inner` links, and into each fallback route."""
    while stage is not None:
        if isinstance(stage, RetryStage):
            yield stage
            return
        routes = getattr(stage, "routes", None)
        if routes is not None:
            for route in routes:
                yield from _retry_stages(route.chain)
            return
        stage = getattr(stage, "_inner", None)
