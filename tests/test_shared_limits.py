"""Rate limits shared through a real Redis (`RateLimit(redis_url=..., key=...)`).

Each test gets its own redis-server on a free loopback port (tests/_redis.py). Calls go to the
mock provider in process; what is measured is what a user sees: how many requests went out,
how long a call waited, which error a call raised.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import llmrelay
from _redis import RedisServer, free_port
from llmrelay import ConfigError, RateLimit, RateLimitBackendError
from llmrelay import _constants as C

WORKER = Path(__file__).parent / "_shared_limit_worker.py"
SRC = Path(__file__).parent.parent / "src"


# -- the value type (no Redis needed) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "k"}, "give redis_url= too"),
        ({"redis_url": "redis://127.0.0.1:6379/0"}, "RateLimit.key is required"),
        ({"redis_url": "redis://127.0.0.1:6379/0", "key": " "}, "RateLimit.key is required"),
        ({"redis_url": "http://user:hunter2@x:6379", "key": "k"}, "redis://, rediss://"),
        ({"redis_url": "redis://x", "key": "k", "on_redis_error": "ignore"}, "'raise' or 'local'"),
        ({"follow_server": "yes"}, "follow_server must be a bool"),
    ],
)
def test_bad_shared_settings_are_config_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        RateLimit(requests_per_minute=60, **kwargs)
    assert "hunter2" not in str(info.value)


def test_a_redis_url_with_a_bad_port_is_a_config_error_when_it_is_made() -> None:
    with pytest.raises(ConfigError, match="port that is not a number") as info:
        RateLimit(requests_per_minute=60, redis_url="redis://:hunter2@127.0.0.1:63x9/0", key="k")
    assert "hunter2" not in str(info.value)


async def test_a_redis_url_redis_py_cannot_read_is_a_config_error_at_the_first_call() -> None:
    # An option in the query is read by redis-py when it connects (no server needed to see it).
    pytest.importorskip("redis")
    url = "redis://:hunter2@127.0.0.1:1/0?socket_timeout=soon"
    limit = RateLimit(requests_per_minute=60, redis_url=url, key="k")
    async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
        with pytest.raises(ConfigError, match="socket_timeout") as info:
            await client.chat("hi")
        assert client.usage.requests == 0
    assert "hunter2" not in str(info.value)


def test_the_repr_hides_the_redis_password() -> None:
    limit = RateLimit(requests_per_minute=60, redis_url="redis://:hunter2@10.0.0.1:6379/0", key="k")
    assert "hunter2" not in repr(limit)
    assert "10.0.0.1" in repr(limit) and "key='k'" in repr(limit)
    client = llmrelay.AsyncClient(provider="mock", rate_limit=limit)
    assert "hunter2" not in repr(client._config)


def test_a_missing_redis_package_is_a_config_error_when_the_client_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a)
    )
    limit = RateLimit(requests_per_minute=60, redis_url="redis://127.0.0.1:1/0", key="k")
    with pytest.raises(ConfigError, match=r"pip install 'llmrelay\[redis\]'"):
        llmrelay.AsyncClient(provider="mock", rate_limit=limit)


def profile(tmp_path: Path, table: str) -> Path:
    (tmp_path / "llmrelay.toml").write_text(
        f'[profiles.work]\nprovider = "mock"\nrate_limit = {{ {table} }}\n'
    )
    return tmp_path


def test_a_profile_can_share_its_rate_limit(tmp_path: Path) -> None:
    from llmrelay._settings import resolve_profile_config

    table = (
        'requests_per_minute = 600, redis_url = "redis://:hunter2@redis:6379/0", '
        'key = "openai-prod", on_redis_error = "local", adaptive_concurrency = true'
    )
    config = resolve_profile_config("work", cwd=profile(tmp_path, table), environ={})
    assert config.rate_limit == RateLimit(
        requests_per_minute=600,
        redis_url="redis://:hunter2@redis:6379/0",
        key="openai-prod",
        on_redis_error="local",
        adaptive_concurrency=True,
    )
    assert "hunter2" not in repr(config)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("redis_url = 5", r"profiles.work.rate_limit.redis_url: expected a string, got int"),
        ("follow_server = 1", r"rate_limit.follow_server: expected true or false, got int"),
        ('key = "k"', r"profiles.work.rate_limit: RateLimit.key names a shared budget"),
        ("speed = 1", r"rate_limit.speed: unknown key \(allowed: requests_per_minute, "),
    ],
)
def test_bad_shared_settings_in_a_profile(tmp_path: Path, table: str, message: str) -> None:
    from llmrelay._settings import resolve_profile_config

    with pytest.raises(ConfigError, match=message):
        resolve_profile_config("work", cwd=profile(tmp_path, table), environ={})


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_shared_limit_on_trio_is_a_config_error() -> None:
    limit = RateLimit(requests_per_minute=60, redis_url="redis://127.0.0.1:1/0", key="k")
    async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
        with pytest.raises(ConfigError, match="asyncio"):
            await client.chat("Hello")


# -- one process --------------------------------------------------------------------------------


def shared(server: RedisServer, key: str = "test", **kwargs: Any) -> RateLimit:
    kwargs.setdefault("requests_per_minute", 6000)
    return RateLimit(redis_url=server.url, key=key, **kwargs)


async def test_requests_are_paced_by_the_shared_bucket(redis_server: RedisServer) -> None:
    # 600 a minute: 10 a second, at most 10 at once; 15 requests take about half a second.
    limit = shared(redis_server, requests_per_minute=600)
    async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
        started = time.perf_counter()
        await client.batch(["Hello"] * 15)
        took = time.perf_counter() - started
    assert 0.4 <= took <= 1.0


async def test_two_clients_on_one_key_share_one_budget(redis_server: RedisServer) -> None:
    limit = shared(redis_server, requests_per_minute=600)
    async with (
        llmrelay.AsyncClient(provider="mock", rate_limit=limit) as first,
        llmrelay.AsyncClient(provider="mock", rate_limit=limit) as second,
    ):
        await first.batch(["Hello"] * 10)  # the whole burst
        started = time.perf_counter()
        await second.chat("Hello")  # a tenth of a second later, for the other client too
        assert 0.05 <= time.perf_counter() - started <= 0.5


async def test_the_key_expires_once_its_bucket_would_be_full(redis_server: RedisServer) -> None:
    limit = shared(redis_server, key="expiring", requests_per_minute=60_000)
    async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
        await client.chat("Hello")
    ttl = redis_server.command("PTTL", "llmrelay:ratelimit:expiring")
    assert isinstance(ttl, int)
    # 1 ms to refill the one request, plus a second of slack: nothing outlives its use.
    assert 900 <= ttl <= 1002


async def test_token_estimates_settle_with_the_reported_usage(redis_server: RedisServer) -> None:
    # 600 tokens a minute (10 a second). The first call is estimated at 2 + 190 tokens
    # (max_tokens), 19 s of budget; the mock reports a handful, and that is what is charged.
    limit = shared(redis_server, requests_per_minute=None, tokens_per_minute=600)
    async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
        reply = await client.chat("Hello", max_tokens=190)
        assert reply.usage.total_tokens < 20
        started = time.perf_counter()
        await client.chat("Hello")
        assert time.perf_counter() - started < 2.0


async def test_a_spent_server_budget_holds_every_client_on_the_key(
    redis_server: RedisServer,
) -> None:
    def spent(request: httpx.Request) -> httpx.Response:
        body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}
        headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "400ms"}
        return httpx.Response(200, json=body, headers=headers)

    limit = shared(redis_server, key="held")
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(spent)) as http,
        llmrelay.AsyncClient(
            provider="openai", api_key="sk-test", model="m", http_client=http, rate_limit=limit
        ) as told,
        llmrelay.AsyncClient(provider="mock", rate_limit=limit) as other,
    ):
        await told.chat("Hello")  # the server says: nothing for 400 ms
        started = time.perf_counter()
        await other.chat("Hello")  # another client (another worker) on the key waits too
        assert 0.3 <= time.perf_counter() - started <= 1.0


# -- Redis failing ------------------------------------------------------------------------------


async def test_redis_down_at_start_is_a_quick_typed_error() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there
    limit = RateLimit(requests_per_minute=60, redis_url=url, key="down")
    async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
        started = time.perf_counter()
        with pytest.raises(RateLimitBackendError, match="Redis failed") as info:
            await client.chat("Hello")
        assert time.perf_counter() - started < 3.0
        assert "hunter2" not in str(info.value)
        assert isinstance(info.value, llmrelay.LLMError)
        assert client.usage.requests == 0  # nothing was sent


@pytest.mark.slow
async def test_a_redis_that_never_answers_is_a_typed_error_within_seconds() -> None:
    import socket

    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        limit = RateLimit(requests_per_minute=60, redis_url=url, key="silent")
        async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
            started = time.perf_counter()
            with pytest.raises(RateLimitBackendError, match="Timeout"):
                await client.chat("Hello")
            # One command timeout, and one more on a fresh connection: no hang.
            assert time.perf_counter() - started < 2 * C.REDIS_SOCKET_TIMEOUT + 1.0


async def test_redis_down_at_start_with_the_local_fallback_keeps_to_the_limit_locally() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    limit = RateLimit(requests_per_minute=600, redis_url=url, key="down", on_redis_error="local")
    async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
        started = time.perf_counter()
        replies = await client.batch(["Hello"] * 15)  # a burst of 10, then 10 a second
        took = time.perf_counter() - started
    assert len(replies) == 15
    assert 0.4 <= took <= 1.5


async def test_redis_restarted_mid_run(redis_server: RedisServer) -> None:
    limit = shared(redis_server, key="restart")
    async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
        await client.batch(["Hello"] * 5)
        redis_server.stop()
        started = time.perf_counter()
        with pytest.raises(RateLimitBackendError):  # down: a typed error, not a hang
            await client.chat("Hello")
        assert time.perf_counter() - started < 3.0
        redis_server.start()  # back, empty: no script, no bucket, every connection dead
        replies = await client.batch(["Hello"] * 5)
    assert len(replies) == 5
    assert redis_server.command("EXISTS", "llmrelay:ratelimit:restart") == 1


async def test_redis_restarted_mid_run_with_the_local_fallback(redis_server: RedisServer) -> None:
    limit = shared(redis_server, key="fallback", on_redis_error="local")
    async with llmrelay.AsyncClient(provider="mock", rate_limit=limit) as client:
        await client.batch(["Hello"] * 3)
        redis_server.stop()
        assert len(await client.batch(["Hello"] * 3)) == 3  # kept going on the local buckets
        redis_server.start()
        assert len(await client.batch(["Hello"] * 3)) == 3


# -- several processes ----------------------------------------------------------------------------


def run_workers(server: RedisServer, keys: list[str], rpm: float, window: float) -> list[int]:
    """One worker process per entry of `keys`, all counting over the same wall-clock window,
    which starts once every one of them is ready (imported, warm, connected)."""
    path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), server.url, key, str(rpm), str(window)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
            text=True,
        )
        for key in keys
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        start = time.time() + 0.2
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start}\n")
            proc.stdin.flush()
        counts = []
        for proc in procs:
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            counts.append(int(out.strip()))
        return counts
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_three_processes_on_one_key_send_what_one_process_sends(
    redis_server: RedisServer,
) -> None:
    # 3000 a minute: 50 a second and a burst of 50. In 1.5 s one process alone sends about
    # 50 + 75; three processes sharing a key must send that much together, not three times it.
    # The lone process runs at the same time, on its own key, under the same load.
    counts = run_workers(redis_server, ["alone", "shared", "shared", "shared"], 3000, 1.5)
    alone, together = counts[0], counts[1:]
    print(f"one process alone: {alone}; three sharing a key: {together} = {sum(together)}")
    assert 0.85 * alone <= sum(together) <= 1.15 * alone
    assert all(count > 0 for count in together)
    assert 0.85 * 125 <= alone <= 1.15 * 125


async def test_a_deadline_while_telling_redis_of_a_spent_budget_closes_the_stream(
    redis_server: RedisServer,
) -> None:
    # The reply says the budget is spent; telling Redis hangs (it is paused) past the call's
    # deadline. The call is a timeout, and the stream it had opened is closed, not left open.
    closed: list[bool] = []

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self) -> Any:
            yield b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
            await anyio.sleep(30)

        async def aclose(self) -> None:
            closed.append(True)

    def answer(request: httpx.Request) -> httpx.Response:
        redis_server.command("CLIENT", "PAUSE", "2000", "ALL")
        headers = {
            "content-type": "text/event-stream",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1s",
        }
        return httpx.Response(200, headers=headers, stream=Body())

    limit = RateLimit(requests_per_minute=600, redis_url=redis_server.url, key="k")
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http,
        llmrelay.AsyncClient(
            "openai",
            api_key="k",
            model="m",
            http_client=http,
            rate_limit=limit,
            max_retries=0,
            timeout=llmrelay.Timeout(total=0.3),
        ) as client,
    ):
        with pytest.raises(llmrelay.APITimeoutError):
            await client.stream("hello").final()
        assert closed == [True]
