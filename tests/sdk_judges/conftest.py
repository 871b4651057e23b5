"""`llmrelay mock serve` as a real process on a free loopback port, for the official SDKs.

The server is started once per session (``python -m llmrelay.cli mock serve --port 0``) and
stopped with SIGINT, as a user would stop it with Ctrl-C. Tests give each call its own prompt or
rely on the per-call `times=N` rule, so sharing one long-lived server is part of what is tested.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
_URL = re.compile(r"on (http://127\.0\.0\.1:\d+)")
STARTUP_SECONDS = 20.0


@pytest.fixture(scope="session")
def mock_url() -> Iterator[str]:
    """The base URL of a running ``llmrelay mock serve``, e.g. ``http://127.0.0.1:54321``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "llmrelay.cli", "mock", "serve", "--port", "0", "--no-access-log"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + STARTUP_SECONDS
    seen: list[str] = []
    url = None
    while url is None and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if match := _URL.search(line):
            url = match.group(1)
    if url is None:
        process.kill()
        process.wait()
        pytest.fail("llmrelay mock serve did not start:\n" + "".join(seen))
    # Keep reading what the server logs, so a full pipe never blocks it.
    drain = threading.Thread(target=seen.extend, args=(process.stderr,), daemon=True)
    drain.start()
    try:
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        drain.join(timeout=5)
        process.stderr.close()
