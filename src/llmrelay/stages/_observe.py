"""The attempt observer: tells an observer about every attempt that reaches the sender, with
the status it got or the error it ended in. The CLI's batch summary counts attempts, statuses
and network failures through it (hooks for users, one level up, come with the hooks stage)."""

from __future__ import annotations

from typing import Protocol

from ._base import Call, Reply, Stage


class AttemptObserver(Protocol):
    def attempt_started(self, call: Call) -> None: ...

    def attempt_ended(self, call: Call, status: int | None, error: BaseException | None) -> None:
        """`status` when a response arrived; else the error, or the cancellation (e.g. by the
        call's total deadline) that ended the attempt."""


class ObserveStage:
    def __init__(self, inner: Stage, *, observer: AttemptObserver) -> None:
        self._inner = inner
        self._observer = observer

    async def send(self, call: Call) -> Reply:
        self._observer.attempt_started(call)
        try:
            reply = await self._inner.send(call)
        except BaseException as exc:  # a cancellation too: the total deadline cuts attempts
            self._observer.attempt_ended(call, None, exc)
            raise
        self._observer.attempt_ended(call, reply.status, None)
        return reply
