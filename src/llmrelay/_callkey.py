"""Idempotency keys: one per call, unique across processes, without a syscall per call.

A key is a per-process random prefix (64 bits from `os.urandom`) and a per-process counter, as
32 hex digits (the shape a random 128-bit key had). A forked child draws a prefix of its own,
so parent and child never hand out the same key. `itertools.count` steps atomically under the
GIL, so threads (the sync client's) never share a number.
"""

from __future__ import annotations

import itertools
import os

_prefix = ""
_counter = itertools.count()


def _reseed() -> None:
    global _prefix, _counter
    _prefix = os.urandom(8).hex()
    _counter = itertools.count()


_reseed()
if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_reseed)


def new_key() -> str:
    """A fresh idempotency key."""
    return f"{_prefix}{next(_counter):016x}"
