"""The one place a client's stage chain is built, outermost first:

    hooks (when a client has any) → retry → concurrency slot → rate limit (when configured)
          → reply opener → sender

Later stages (budget, fallback, shared limits) are added here, and nowhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._hooks import HooksStage
from ._opener import ReplyOpener
from ._ratelimit import RateLimitStage
from ._retry import RetryStage
from ._slot import ConcurrencySlot

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._config import RateLimit
    from .._hooks import Hooks
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
    hooks: Sequence[Hooks] = (),
) -> Stage:
    stage: Stage = ReplyOpener(sender, provider=provider, mask=mask)
    if rate_limit is not None:
        stage = RateLimitStage(stage, limit=rate_limit)
    stage = ConcurrencySlot(stage, limit=max_concurrency)
    stage = RetryStage(stage, usage=usage, provider=provider.name)
    return with_hooks(stage, hooks, provider=provider, mask=mask) if hooks else stage


def with_hooks(chain: Stage, hooks: Sequence[Hooks], *, provider: Provider, mask: KeyMask) -> Stage:
    """`chain` with `hooks` told about its calls: a hooks stage on top (or more hooks for the
    one already there), and the retry stage below reporting to it. The stages below stay as
    they are (calls in flight keep their concurrency slots)."""
    if isinstance(chain, HooksStage):
        chain.hooks += tuple(hooks)
        return chain
    top = HooksStage(chain, hooks=hooks, provider=provider.name, mask=mask)
    stage: object = chain
    while stage is not None and not isinstance(stage, RetryStage):
        stage = getattr(stage, "_inner", None)
    if stage is not None:
        stage.listener = top.retried
    return top
