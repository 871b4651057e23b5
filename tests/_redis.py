"""A real `redis-server` on a free loopback port, for the shared rate-limit tests.

`redis_server` (a pytest fixture, registered in conftest.py) starts one per test with no
persistence, so `restart()` brings back an empty Redis on the same port, like a crashed one.
Without the binary the test is skipped, unless the environment variable CI is set: then it fails
(CI installs redis-server, so a missing one is a broken CI, not a reason to skip).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class RedisServer:
    """One redis-server process; `url` stays the same across `stop()`/`start()`."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self._process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()  # as a crash would: no save, no goodbye to the clients
            process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def command(self, *args: str) -> object:
        """One command through redis-py's blocking client (for looking at keys in tests)."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        try:
            return client.execute_command(*args)
        finally:
            client.close()


def redis_binary() -> str:
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (CI installs it: see .ci/run)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return binary


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(redis_binary())
    server.start()
    try:
        yield server
    finally:
        server.stop()
