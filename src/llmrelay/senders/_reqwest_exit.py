"""Keeps pyreqwest's tokio thread out of the interpreter while the interpreter exits.

Why: pyreqwest's awaitables are PyO3 coroutines. When the Rust side finishes, PyO3 wakes the
awaiting task from the tokio thread: it takes the interpreter lock, calls the loop's
`call_soon_threadsafe`, and that call gives the lock up while it writes a byte to the loop's
wake-up socket. The main thread wakes on that byte and may run to the end of the program and
start finalizing the interpreter before the tokio thread takes the lock back. CPython (before
3.14) ends a thread that asks for the lock during finalization, mid-call; the unwinding runs
PyO3's lock guard, whose `PyGILState_Release` then aborts the process: "Fatal Python error:
PyGILState_Release: thread state ... must be current when releasing", exit code -6. Nothing
llmrelay holds is involved: any last await on pyreqwest (a 401 read, a closed stream, the
client's own `close()`) can be the one, about one exit in ten on a busy machine.

What: the window is visible from Python, because the tokio thread is inside a Python frame
(`call_soon_threadsafe`) for as long as it may still ask for the lock. `ReqwestSender.aclose()`
waits (with a bound) until no thread unknown to `threading` runs Python code, and so does an
`atexit` hook for clients that were never closed or a last await after the close; `atexit`
hooks run before the interpreter starts finalizing.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time

import anyio

from .. import _constants as C

_hooked = False


def foreign_thread_busy() -> bool:
    """Whether a thread `threading` did not start (pyreqwest's tokio thread waking a task) is
    running Python code right now."""
    ours = {
        thread.ident
        for thread in threading.enumerate()
        if not isinstance(thread, threading._DummyThread)
    }
    ours.add(threading.get_ident())
    return any(ident not in ours for ident in sys._current_frames())


async def asettle() -> None:
    """Wait, sleeping (which lets the tokio thread take the lock), until no foreign thread runs
    Python code; at most `REQWEST_SETTLE_LIMIT` seconds."""
    deadline = time.monotonic() + C.REQWEST_SETTLE_LIMIT
    # Polled: the other thread signals nothing when it leaves Python.
    while foreign_thread_busy() and time.monotonic() < deadline:  # noqa: ASYNC110
        await anyio.sleep(C.REQWEST_SETTLE_POLL)


def settle() -> None:
    """`asettle` for a thread with no running loop: the atexit hook."""
    deadline = time.monotonic() + C.REQWEST_SETTLE_LIMIT
    while foreign_thread_busy() and time.monotonic() < deadline:
        time.sleep(C.REQWEST_SETTLE_POLL)


def hook_exit() -> None:
    """Register `settle` to run at exit (once per process)."""
    global _hooked
    if not _hooked:
        _hooked = True
        atexit.register(settle)
