"""The request pipeline as a chain of small stages (see DESIGN.md §5).

Each stage is one object with `async def send(call) -> Reply` that wraps the next one (`inner`).
`_compose.build_chain` is the one place that decides which stages a client gets, and in which
order: retry → concurrency slot → rate limit → reply opener → sender.
"""

from ._base import Call, Reply, Stage, StreamHead

__all__ = ["Call", "Reply", "Stage", "StreamHead"]
