"""The one place a client's stage chain is built, outermost first:

    retry → concurrency slot → rate limit (when configured) → reply opener
          → attempt observer (when one is given) → sender

Later stages (hooks, budget, fallback, shared limits) are added here, and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._observe import AttemptObserver, ObserveStage
from ._opener import ReplyOpener
from ._ratelimit import RateLimitStage
from ._retry import RetryStage
from ._slot import ConcurrencySlot

if TYPE_CHECKING:
    from .._config import RateLimit
    from .._keymask import KeyMask
    from .._usage import UsageTotals
    from ..providers._base import Provider
    from ._base import Stage


def build_chain(
    sender: Stage,
    *,
    provider: Provider,
    mask: KeyMask,
    usage: UsageTotals,
    max_concurrency: int,
    rate_limit: RateLimit | None,
    observer: AttemptObserver | None = None,
) -> Stage:
    stage: Stage = sender
    if observer is not None:
        stage = ObserveStage(stage, observer=observer)
    stage = ReplyOpener(stage, provider=provider, mask=mask)
    if rate_limit is not None:
        stage = RateLimitStage(stage, limit=rate_limit)
    stage = ConcurrencySlot(stage, limit=max_concurrency)
    return RetryStage(stage, usage=usage, provider=provider.name)
