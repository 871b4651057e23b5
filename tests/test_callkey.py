"""Idempotency keys: unique per call, in this process and in a forked child (which keeps the
parent's memory, so it must not keep handing out the parent's keys)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest
import respx

import llmrelay

KEY = re.compile(r"[0-9a-f]{32}")


def test_every_call_gets_a_key_of_its_own() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["idempotency-key"])
        reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}
        return httpx.Response(200, json=reply)

    with respx.mock(assert_all_called=False) as router:
        router.post("https://relay.test/v1/chat/completions").mock(side_effect=answer)
        with llmrelay.Client(
            "openai", base_url="https://relay.test/v1", api_key="sk-test", model="m"
        ) as client:
            for _ in range(20):
                client.chat("hello")
    assert len(set(seen)) == 20
    assert all(KEY.fullmatch(key) for key in seen)


# Run in a fresh interpreter: forking the test process (which has threads) is unsafe, and a
# warning on Python 3.12+.
FORK = """
import os
from llmrelay._callkey import new_key

new_key()
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, " ".join(new_key() for _ in range(3)).encode())
    os._exit(0)
os.close(write)
with os.fdopen(read) as pipe:
    child = pipe.read().split()
os.waitpid(pid, 0)
print(" ".join(child))
print(" ".join(new_key() for _ in range(3)))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_a_forked_child_draws_keys_the_parent_never_does() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", FORK], capture_output=True, text=True, check=True, env=env
    ).stdout
    child, parent = (line.split() for line in out.splitlines())
    assert len(child) == len(parent) == 3
    assert all(KEY.fullmatch(key) for key in child + parent)
    # Different prefixes: the child never counts through the parent's keys.
    assert {key[:16] for key in child}.isdisjoint(key[:16] for key in parent)
