"""``http="reqwest"``: a process ends cleanly after any kind of call, however its client ended.

pyreqwest wakes a Python awaiter from its tokio thread by calling the loop's
`call_soon_threadsafe`, which gives the interpreter lock up while it writes to the loop's wake-up
socket. If the main thread meanwhile finishes and the interpreter starts exiting, the tokio
thread, taking the lock back, is ended by the interpreter mid-call and the process aborts
("Fatal Python error: PyGILState_Release", exit code -6): about one run in ten on a loaded
machine, before llmrelay waited for that thread at close and at exit (senders/_reqwest_exit.py).
Many short processes run at once here, so a regression shows as at least one abort.
"""

from __future__ import annotations

import _thread
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest

from _loopback import HOLD, Request, Response, chat_completion, json_response, loopback, sse
from llmrelay import AsyncClient
from llmrelay import _constants as C

pytest.importorskip("pyreqwest")

WORKER = Path(__file__).parent / "_reqwest_exit_worker.py"
SRC = Path(__file__).resolve().parents[1] / "src"
MODES = ("error", "stream", "unclosed", "abandoned", "timeout", "sync")
RUNS = 8  # processes per mode; 48 in all, 4 at a time
PARALLEL = 4
EXPECTED = {
    "error": "AuthenticationError",
    "stream": "piece 'hel'",
    "unclosed": "hello",
    "abandoned": "piece 'hel'",
    "timeout": "APITimeoutError",
    "sync": "AuthenticationError",
}


def respond(request: Request) -> Response:
    if request.path.startswith("/v1/401"):
        error = {"error": {"message": "bad key", "type": "invalid_request_error"}}
        return json_response(error, status=401)
    if request.path.startswith("/v1/stream"):
        first = b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"hel"}}]}\n\n'
        return sse([first, HOLD])
    if request.path.startswith("/v1/slow"):
        return sse([0.5, b"data: [DONE]\n\n"])
    return json_response(chat_completion("hello"))


async def test_a_process_exits_cleanly_after_every_kind_of_call() -> None:
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    failures: list[str] = []
    limiter = anyio.CapacityLimiter(PARALLEL)

    async def run(base_url: str, mode: str) -> None:
        async with limiter:
            done = await anyio.run_process(
                [sys.executable, str(WORKER), base_url, mode], env=env, check=False
            )
        out, err = done.stdout.decode(), done.stderr.decode()
        if done.returncode != 0 or "Fatal Python error" in err or out.strip() != EXPECTED[mode]:
            failures.append(f"{mode}: exit {done.returncode}, out {out!r}, err {err[-300:]!r}")

    with anyio.fail_after(60):
        async with loopback(respond) as server, anyio.create_task_group() as tg:
            for _ in range(RUNS):
                for mode in MODES:
                    tg.start_soon(run, server.base_url, mode)
    assert not failures, f"{len(failures)} of {RUNS * len(MODES)} runs failed:\n" + "\n".join(
        failures
    )


# -- the wait itself, with a stand-in for the tokio thread -------------------------------------


def start_foreign_thread(seconds: float) -> threading.Event:
    """A thread `threading` does not know (as a Rust runtime's is) that runs Python for
    `seconds`; the returned event is set just before it leaves Python."""
    left = threading.Event()
    started = threading.Event()

    def run() -> None:
        started.set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.001)
        left.set()

    _thread.start_new_thread(run, ())
    started.wait()
    return left


async def test_closing_waits_until_no_foreign_thread_runs_python() -> None:
    client = AsyncClient(provider="openai", api_key="sk-x", http="reqwest")
    left = start_foreign_thread(0.05)
    await client.aclose()
    assert left.is_set()


async def test_the_wait_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(C, "REQWEST_SETTLE_LIMIT", 0.05)
    client = AsyncClient(provider="openai", api_key="sk-x", http="reqwest")
    left = start_foreign_thread(2.0)
    started = time.monotonic()
    await client.aclose()
    assert time.monotonic() - started < 1.0
    assert not left.is_set()
