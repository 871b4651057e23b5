"""`llmrelay.Hooks` through the real client (the in-process mock, or a loopback server): what
each hook is told and when, for calls, streams, retries and failures; a raising hook never
breaks a call; what a hook sees never holds the key. On asyncio and trio."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import llmrelay
from _loopback import LoopbackServer, Request, json_response, loopback
from llmrelay import ErrorEvent, Hooks, RequestEvent, ResponseEvent, RetryEvent

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


FAST = llmrelay.RetryPolicy(max_retries=2, backoff_base=0.0)
KEY = "sk-SECRET-hooks-0123456789"


class Recorder:
    """Every event, in order, as (hook name, event); sync or async hooks."""

    def __init__(self, *, asynchronous: bool = False) -> None:
        self.events: list[tuple[str, Any]] = []
        self.asynchronous = asynchronous

    def _hook(self, name: str) -> Any:
        def record(event: Any) -> None:
            self.events.append((name, event))

        async def record_async(event: Any) -> None:
            await anyio.lowlevel.checkpoint()
            self.events.append((name, event))

        return record_async if self.asynchronous else record

    def hooks(self) -> Hooks:
        return Hooks(
            on_request=self._hook("request"),
            on_response=self._hook("response"),
            on_retry=self._hook("retry"),
            on_error=self._hook("error"),
        )

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def last(self, name: str) -> Any:
        return next(event for n, event in reversed(self.events) if n == name)


def mock_client(recorder: Recorder, **kwargs: Any) -> llmrelay.AsyncClient:
    return llmrelay.AsyncClient(provider="mock", retry=FAST, hooks=recorder.hooks(), **kwargs)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync hooks", "async hooks"])
async def test_a_call_is_told_as_it_starts_and_with_its_result(asynchronous: bool) -> None:
    recorder = Recorder(asynchronous=asynchronous)
    async with mock_client(recorder) as client:
        reply = await client.chat("hello there")
    assert recorder.names == ["request", "response"]
    request: RequestEvent = recorder.last("request")
    response: ResponseEvent = recorder.last("response")
    assert (request.operation, request.provider, request.model) == ("chat", "mock", "mock-echo")
    assert request.server_address == "mock.llmrelay.invalid" and request.server_port == 80
    assert request.body["messages"] == [{"role": "user", "content": "hello there"}]
    assert response.request is request
    assert response.result == reply and response.usage == reply.usage
    assert response.request_id == reply.request_id
    assert response.attempts == 1 and response.time_to_first_chunk is None
    assert 0 <= response.queued <= response.duration


async def test_a_retried_call_tells_each_retry() -> None:
    recorder = Recorder()
    async with mock_client(recorder) as client:
        reply = await client.chat("hi", model="mock-echo+fault=503;times=2")
    assert recorder.names == ["request", "retry", "retry", "response"]
    retries: list[RetryEvent] = [event for name, event in recorder.events if name == "retry"]
    assert [r.attempt for r in retries] == [1, 2]
    assert all(isinstance(r.error, llmrelay.InternalServerError) for r in retries)
    assert all(r.error.status_code == 503 and r.delay >= 0 for r in retries)
    response: ResponseEvent = recorder.last("response")
    assert response.attempts == 3 and response.result == reply
    assert all(r.request is response.request for r in retries)


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("mock-echo+fault=400", llmrelay.BadRequestError),
        ("mock-echo+fault=503", llmrelay.InternalServerError),  # retried, then given up
        ("mock-echo+fault=malformed", llmrelay.ResponseError),
    ],
)
async def test_a_failed_call_tells_its_typed_error(model: str, error: type[Exception]) -> None:
    recorder = Recorder()
    async with mock_client(recorder) as client:
        with pytest.raises(error) as raised:
            await client.chat("hi", model=model)
    assert recorder.names[0] == "request" and recorder.names[-1] == "error"
    assert "response" not in recorder.names
    failed: ErrorEvent = recorder.last("error")
    assert failed.error is raised.value
    assert failed.attempts == 1 + recorder.names.count("retry")


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync hooks", "async hooks"])
async def test_a_stream_is_told_with_its_assembled_reply_when_it_ends(asynchronous: bool) -> None:
    recorder = Recorder(asynchronous=asynchronous)
    async with mock_client(recorder) as client, client.stream("one two three four") as stream:
        async for _ in stream:
            assert recorder.names == ["request"]  # nothing more until the end
        final = await stream.final()
    assert recorder.names == ["request", "response"]
    response: ResponseEvent = recorder.last("response")
    assert response.request.operation == "stream"
    assert response.result == final and response.usage == final.usage
    assert response.time_to_first_chunk is not None
    assert 0 <= response.time_to_first_chunk <= response.duration


async def test_a_stream_closed_before_its_end_is_told_as_an_error_without_one() -> None:
    recorder = Recorder()
    async with mock_client(recorder, max_concurrency=1) as client:
        async with client.stream("one two three four five six") as stream:
            async for _ in stream:
                break
        assert recorder.names == ["request", "error"]
        closed: ErrorEvent = recorder.last("error")
        assert closed.error is None and closed.time_to_first_chunk is not None
        with anyio.fail_after(5):  # its slot was given back
            await client.chat("next")


async def test_a_stream_that_fails_midway_is_told_its_stream_error() -> None:
    recorder = Recorder()
    async with mock_client(recorder) as client:
        with pytest.raises(llmrelay.StreamError) as raised:
            async for _ in client.stream(
                "one two three four", model="mock-echo+fault=error-event;after=2"
            ):
                pass
    failed: ErrorEvent = recorder.last("error")
    assert failed.error is raised.value and failed.time_to_first_chunk is not None


async def test_a_cancelled_call_is_told_as_an_error_without_one() -> None:
    recorder = Recorder()
    async with mock_client(recorder) as client:
        with anyio.move_on_after(0.1):
            await client.chat("hi", model="mock-echo+fault=stall;seconds=5")
    assert recorder.names == ["request", "error"]
    assert recorder.last("error").error is None


async def test_embed_and_models_are_told_with_their_operation() -> None:
    recorder = Recorder()
    async with mock_client(recorder) as client:
        embedded = await client.embed(["a", "b"])
        models = await client.models()
    operations = [event.request.operation for name, event in recorder.events if name == "response"]
    assert operations == ["embed", "models"]
    results = [event.result for name, event in recorder.events if name == "response"]
    assert results == [embedded, models]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync hook", "async hook"])
async def test_a_hook_that_raises_is_logged_and_the_call_goes_on(
    asynchronous: bool, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError("a bug in the metrics code")

    async def broken_async(event: Any) -> None:
        raise RuntimeError("a bug in the metrics code")

    hook = broken_async if asynchronous else broken
    recorder = Recorder()
    hooks = [Hooks(on_request=hook, on_response=hook, on_retry=hook, on_error=hook)]
    async with llmrelay.AsyncClient(
        provider="mock", retry=FAST, hooks=[*hooks, recorder.hooks()]
    ) as client:
        with caplog.at_level(logging.WARNING, logger="llmrelay"):
            reply = await client.chat("hi", model="mock-echo+fault=429;times=1")
            text = "".join([c.text async for c in client.stream("a b c")])
            with pytest.raises(llmrelay.BadRequestError):
                await client.chat("hi", model="mock-echo+fault=400")
    assert reply.text == "echo: hi" and text == "echo: a b c"
    assert recorder.names.count("response") == 2  # the hooks after the broken one still ran
    messages = [r.getMessage() for r in caplog.records]
    assert sum("hook raised" in m for m in messages) == 7
    assert all(r.exc_info and "metrics code" in str(r.exc_info[1]) for r in caplog.records)


async def test_what_hooks_see_never_holds_the_key() -> None:
    # The server echoes the key back in its error message (some proxies do).
    def respond(request: Request) -> Any:
        auth = request.headers.get("authorization", "")
        return json_response({"error": {"message": f"bad request with {auth}"}}, status=400)

    recorder = Recorder()
    server: LoopbackServer
    async with (
        loopback(respond) as server,
        llmrelay.AsyncClient(
            provider="openai",
            api_key=KEY,
            base_url=server.base_url,
            model="m",
            hooks=recorder.hooks(),
        ) as client,
    ):
        with pytest.raises(llmrelay.BadRequestError):
            await client.chat(f"my key is {KEY}")  # even one the user put in the prompt
    seen = []
    for _, event in recorder.events:
        seen += [repr(event), str(event)]
        request = event if isinstance(event, RequestEvent) else event.request
        seen.append(repr(request.body))
        error = getattr(event, "error", None)
        if error is not None:
            seen += [str(error), repr(error), repr(getattr(error, "body", None))]
    assert recorder.names == ["request", "error"]
    assert not any(KEY in text for text in seen)
    assert not hasattr(recorder.last("request"), "headers")


@pytest.mark.parametrize(
    ("hooks", "match"),
    [
        (Hooks, "hooks= takes"),
        ("not hooks", "hooks= takes"),
        ([Hooks(), "x"], "hooks= takes"),
    ],
)
def test_bad_hooks_are_a_config_error(hooks: Any, match: str) -> None:
    with pytest.raises(llmrelay.ConfigError, match=match):
        llmrelay.AsyncClient(provider="mock", hooks=hooks)


def test_a_hook_must_be_callable() -> None:
    with pytest.raises(llmrelay.ConfigError, match="on_response"):
        Hooks(on_response="print")  # type: ignore[arg-type]


def test_the_sync_client_takes_hooks() -> None:
    recorder = Recorder()
    with llmrelay.Client(provider="mock", hooks=recorder.hooks()) as client:
        client.chat("hi")
        assert [c.text for c in client.stream("a b")]
    assert recorder.names == ["request", "response", "request", "response"]


async def test_a_client_without_hooks_has_no_hooks_stage() -> None:
    from llmrelay.stages._hooks import HooksStage

    async with llmrelay.AsyncClient(provider="mock") as client:
        assert not isinstance(client._chain, HooksStage)


async def test_a_call_over_fallback_routes_is_one_call_to_the_hooks() -> None:
    # The primary fails (503, retried once), the fallback answers: the hooks see one request,
    # the primary's retry, and one response; hooks every client gets (instrument()) are told
    # once too, not again by the route's own client.
    from llmrelay._hooks import add_global_hooks, remove_global_hooks

    seen: list[str] = []
    everywhere = Hooks(on_request=lambda e: seen.append("global request"))
    add_global_hooks(everywhere)
    try:
        client = llmrelay.AsyncClient(
            "mock",
            model="mock-echo+fault=503",
            retry=llmrelay.RetryPolicy(max_retries=1, backoff_base=0.001, backoff_cap=0.001),
            circuit_breaker=None,
            fallbacks=[llmrelay.Route("mock", model="mock-echo")],
            hooks=Hooks(
                on_request=lambda e: seen.append("request"),
                on_retry=lambda e: seen.append(f"retry {e.attempt}"),
                on_response=lambda e: seen.append(f"response {e.result.model}"),  # type: ignore[union-attr]
                on_error=lambda e: seen.append("error"),
            ),
        )
    finally:
        remove_global_hooks(everywhere)
    async with client:
        reply = await client.chat("hello")
    assert reply.model == "mock-echo"
    assert seen == ["global request", "request", "retry 1", "response mock-echo"]


FAST_ROUTE = llmrelay.RetryPolicy(max_retries=2, backoff_base=0.001, backoff_cap=0.001)


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
async def test_a_fallback_routes_retries_are_told_and_counted(stream: bool) -> None:
    # The primary fails once (503, no retries); the fallback route fails once and its retry
    # answers: three attempts over two routes, told as one call.
    recorder = Recorder()
    async with llmrelay.AsyncClient(
        "mock",
        model="mock-echo+fault=503",
        max_retries=0,
        circuit_breaker=None,
        fallbacks=[llmrelay.Route("mock", model="mock-echo+fault=503;times=1", retry=FAST_ROUTE)],
        hooks=recorder.hooks(),
    ) as client:
        if stream:
            async with client.stream("hello there") as reply_stream:
                reply = await reply_stream.final()
        else:
            reply = await client.chat("hello there")
    assert reply.text == "echo: hello there"
    assert recorder.names == ["request", "retry", "response"]
    retry: RetryEvent = recorder.last("retry")
    response: ResponseEvent = recorder.last("response")
    assert retry.request is response.request  # the route's retry belongs to the one call
    assert retry.attempt == 2 and retry.error.status_code == 503  # type: ignore[attr-defined]
    assert response.attempts == 3
    assert response.request_id == reply.request_id


async def test_a_call_whose_primary_is_skipped_reports_when_it_was_sent() -> None:
    # The primary's circuit opens after two calls; the third goes straight to the fallback
    # route. Its time queued is up to the route's first attempt, not the whole call.
    recorder = Recorder()
    async with llmrelay.AsyncClient(
        "mock",
        model="mock-echo+fault=503",
        max_retries=0,
        circuit_breaker=llmrelay.CircuitBreaker(failures=2, cooldown=60, min_span=0),
        fallbacks=[llmrelay.Route("mock", model="mock-echo")],
        hooks=recorder.hooks(),
    ) as client:
        for _ in range(2):
            await client.chat("hi")
        assert client.breaker is not None and client.breaker.state == "open"
        await client.chat("hi")
    response: ResponseEvent = recorder.last("response")
    assert response.attempts == 1
    assert response.queued < response.duration
