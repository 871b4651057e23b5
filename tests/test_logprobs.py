"""Token log probabilities: asked for with `logprobs=`/`top_logprobs=`, read from OpenAI's and
Gemini's replies (whole and streamed) into `TokenLogprob`s, checked before anything is sent."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import llmrelay
from llmrelay import ChatResponse, ConfigError, StreamChunk, TokenLogprob
from llmrelay._assembler import assemble, chunks_of
from llmrelay.mock import MockTransport, serve
from llmrelay.mock._logprobs import token_logprob

PROMPT = "Hello there, world"
PIECES = ["echo: ", "Hello ", "there, ", "world"]  # the mock's word pieces of its reply
BASES = {"openai": "http://mock.test/v1", "gemini": "http://mock.test/v1beta"}
FAMILIES = ["openai", "gemini"]


def expected(top: int | None) -> tuple[TokenLogprob, ...]:
    """What the mock's reply to PROMPT carries, written from its documented rule."""

    def alternatives(piece: str) -> tuple[TokenLogprob, ...]:
        if not top:
            return ()
        chosen = token_logprob(piece)
        marked = [
            TokenLogprob(token=f"{piece.strip()}~{rank}", logprob=round(chosen - 2.0 * rank, 6))
            for rank in range(1, top)
        ]
        return (TokenLogprob(token=piece, logprob=chosen), *marked)

    return tuple(
        TokenLogprob(token=p, logprob=token_logprob(p), top=alternatives(p)) for p in PIECES
    )


def same_reply(streamed: ChatResponse, whole: ChatResponse) -> None:
    """`final()` equals `chat()` for the same reply (each request has its own ids)."""
    assert dataclasses.replace(streamed, id=whole.id, request_id=whole.request_id) == whole


async def chat_and_stream(
    client: llmrelay.AsyncClient, **options: Any
) -> tuple[ChatResponse, ChatResponse, list[StreamChunk]]:
    whole = await client.chat(PROMPT, **options)
    chunks = []
    async with client.stream(PROMPT, **options) as stream:
        async for chunk in stream:
            chunks.append(chunk)
        streamed = await stream.final()
    return whole, streamed, chunks


async def in_process(family: str) -> AsyncIterator[llmrelay.AsyncClient]:
    async with (
        httpx.AsyncClient(transport=MockTransport()) as http,
        llmrelay.AsyncClient(
            provider=family, api_key="k", base_url=BASES[family], http_client=http
        ) as client,
    ):
        yield client


@pytest.mark.parametrize("top", [None, 0, 1, 3, 20])
@pytest.mark.parametrize("family", FAMILIES)
async def test_chat_and_stream_read_the_mock_logprobs(family: str, top: int | None) -> None:
    async for client in in_process(family):
        whole, streamed, chunks = await chat_and_stream(
            client, model="mock-echo", logprobs=True, top_logprobs=top
        )
        assert whole.logprobs == expected(top)
        assert whole.choices[0].logprobs == whole.logprobs
        same_reply(streamed, whole)
        # in a stream, each delta carries the entries of its own tokens
        assert [c.logprobs for c in chunks if c.text] == [(e,) for e in expected(top)]


@pytest.mark.parametrize("family", FAMILIES)
async def test_without_logprobs_the_reply_has_none(family: str) -> None:
    async for client in in_process(family):
        whole, streamed, chunks = await chat_and_stream(client, model="mock-echo")
        assert whole.logprobs is None and streamed.logprobs is None
        assert all(c.logprobs is None for c in chunks)
        same_reply(streamed, whole)


@pytest.mark.parametrize("family", FAMILIES)
async def test_every_choice_has_its_own_logprobs(family: str) -> None:
    async for client in in_process(family):
        whole, streamed, _ = await chat_and_stream(client, model="mock-echo", logprobs=True, n=2)
        assert [c.logprobs for c in whole.choices] == [expected(None)] * 2
        same_reply(streamed, whole)


@pytest.mark.parametrize("family", FAMILIES)
async def test_over_loopback(family: str) -> None:
    with serve() as url:
        base = f"{url}/v1" if family == "openai" else f"{url}/v1beta"
        async with llmrelay.AsyncClient(
            provider=family, api_key="k", base_url=base, model="mock-echo"
        ) as client:
            whole, streamed, _ = await chat_and_stream(client, logprobs=True, top_logprobs=2)
    assert whole.logprobs == expected(2)
    same_reply(streamed, whole)


def test_sync_client_and_batch() -> None:
    with llmrelay.Client(provider="mock") as client:
        reply = client.chat(PROMPT, logprobs=True, top_logprobs=1)
        with client.stream(PROMPT, logprobs=True, top_logprobs=1) as stream:
            for _ in stream:
                pass
            streamed = stream.final()
        results = client.batch([PROMPT, PROMPT], logprobs=True)
    assert reply.logprobs == expected(1)
    same_reply(streamed, reply)
    assert [r.logprobs for r in results] == [expected(None)] * 2


# -- checked before sending --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"logprobs": 1}, "logprobs must be True or False"),
        ({"logprobs": "yes"}, "logprobs must be True or False"),
        ({"logprobs": True, "top_logprobs": 21}, "between 0 and 20"),
        ({"logprobs": True, "top_logprobs": -1}, "between 0 and 20"),
        ({"logprobs": True, "top_logprobs": 2.0}, "between 0 and 20"),
        ({"logprobs": True, "top_logprobs": True}, "between 0 and 20"),
        ({"top_logprobs": 3}, "top_logprobs needs logprobs=True"),
        ({"logprobs": False, "top_logprobs": 3}, "top_logprobs needs logprobs=True"),
    ],
)
@pytest.mark.parametrize("method", ["chat", "stream", "batch"])
async def test_bad_options_are_config_errors(
    options: dict[str, Any], message: str, method: str
) -> None:
    async with llmrelay.AsyncClient(provider="mock") as client:
        with pytest.raises(ConfigError, match=message):
            if method == "chat":
                await client.chat(PROMPT, **options)
            elif method == "stream":
                client.stream(PROMPT, **options)
            else:
                await client.batch([PROMPT], **options)


async def test_anthropic_has_no_logprobs() -> None:
    async with llmrelay.AsyncClient(
        provider="anthropic", api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0
    ) as client:
        with pytest.raises(ConfigError, match="anthropic sends no token log probabilities"):
            await client.chat(PROMPT, model="m", logprobs=True)
        # left out (or False), nothing is asked of Anthropic
        with pytest.raises(llmrelay.LLMError) as info:
            await client.chat(PROMPT, model="m", logprobs=False)
        assert not isinstance(info.value, ConfigError)


async def test_the_responses_api_says_so() -> None:
    async with llmrelay.AsyncClient(
        provider="openai", api="responses", api_key="k", base_url="http://127.0.0.1:9/v1"
    ) as client:
        with pytest.raises(ConfigError, match=r"api='responses'.*logprobs"):
            await client.chat(PROMPT, model="m", logprobs=True)


# -- what goes on the wire ---------------------------------------------------------------------


def recording(bodies: list[Any], reply: Any) -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=reply)

    return respond


OPENAI_REPLY: dict[str, Any] = {
    "id": "c",
    "model": "m",
    "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
}
GEMINI_REPLY: dict[str, Any] = {
    "candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]
}


@pytest.mark.parametrize(
    ("family", "options", "sent"),
    [
        ("openai", {"logprobs": True}, {"logprobs": True}),
        ("openai", {"logprobs": True, "top_logprobs": 4}, {"logprobs": True, "top_logprobs": 4}),
        ("openai", {"logprobs": False}, {}),
        ("gemini", {"logprobs": True}, {"responseLogprobs": True}),
        (
            "gemini",
            {"logprobs": True, "top_logprobs": 4},
            {"responseLogprobs": True, "logprobs": 4},
        ),
        ("gemini", {"logprobs": False}, {}),
    ],
)
async def test_translated_per_wire_family(
    family: str, options: dict[str, Any], sent: dict[str, Any]
) -> None:
    bodies: list[Any] = []
    reply = OPENAI_REPLY if family == "openai" else GEMINI_REPLY
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(recording(bodies, reply))) as http,
        llmrelay.AsyncClient(
            provider=family, api_key="k", base_url=BASES[family], http_client=http
        ) as client,
    ):
        await client.chat(PROMPT, model="m", **options)
    body = bodies[0] if family == "openai" else bodies[0].get("generationConfig", {})
    keys = {"logprobs", "top_logprobs", "responseLogprobs"}
    assert {k: v for k, v in body.items() if k in keys} == sent


# -- odd shapes: malformed entries are skipped, never a raw exception --------------------------

GOOD = {"token": "hi", "logprob": -0.5, "top_logprobs": [{"token": "hi", "logprob": -0.5}]}
GOOD_READ = TokenLogprob(token="hi", logprob=-0.5, top=(TokenLogprob(token="hi", logprob=-0.5),))


@pytest.mark.parametrize(
    ("raw", "read"),
    [
        (None, None),
        ("junk", None),
        ({"content": None}, None),
        ({"content": "junk"}, None),
        ({"content": []}, ()),
        ({"content": [GOOD]}, (GOOD_READ,)),
        ({"content": [1, None, {"token": 3, "logprob": -1}, {"token": "x"}, GOOD]}, (GOOD_READ,)),
        ({"content": [{"token": "x", "logprob": True}]}, ()),
        (
            {"content": [{"token": "x", "logprob": -1, "top_logprobs": "junk"}]},
            (TokenLogprob(token="x", logprob=-1.0),),
        ),
        (
            {"content": [{"token": "x", "logprob": -1, "top_logprobs": [7, {"token": "y"}]}]},
            (TokenLogprob(token="x", logprob=-1.0),),
        ),
    ],
)
async def test_odd_openai_shapes(raw: Any, read: tuple[TokenLogprob, ...] | None) -> None:
    reply = {**OPENAI_REPLY, "choices": [{**OPENAI_REPLY["choices"][0], "logprobs": raw}]}
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(recording([], reply))) as http,
        llmrelay.AsyncClient(
            provider="openai", api_key="k", base_url=BASES["openai"], http_client=http
        ) as client,
    ):
        assert (await client.chat(PROMPT, model="m", logprobs=True)).logprobs == read


@pytest.mark.parametrize(
    ("raw", "read"),
    [
        (None, None),
        ([], None),
        ({"chosenCandidates": "junk"}, None),
        ({"chosenCandidates": []}, ()),
        (
            {"chosenCandidates": [{"token": "a", "logProbability": -1}], "topCandidates": "junk"},
            (TokenLogprob(token="a", logprob=-1.0),),
        ),
        (
            {
                "chosenCandidates": [None, {"token": "a", "logProbability": -1}, {"token": "b"}],
                "topCandidates": [{}, {"candidates": [{"token": "a", "logProbability": -1}, 5]}],
            },
            (TokenLogprob(token="a", logprob=-1.0, top=(TokenLogprob(token="a", logprob=-1.0),)),),
        ),
        (
            {"chosenCandidates": [{"token": "a", "logProbability": -1}], "topCandidates": [7]},
            (TokenLogprob(token="a", logprob=-1.0),),
        ),
    ],
)
async def test_odd_gemini_shapes(raw: Any, read: tuple[TokenLogprob, ...] | None) -> None:
    candidate = {**GEMINI_REPLY["candidates"][0], "logprobsResult": raw}
    async with (
        httpx.AsyncClient(
            transport=httpx.MockTransport(recording([], {"candidates": [candidate]}))
        ) as http,
        llmrelay.AsyncClient(
            provider="gemini", api_key="k", base_url=BASES["gemini"], http_client=http
        ) as client,
    ):
        assert (await client.chat(PROMPT, model="m", logprobs=True)).logprobs == read


# -- the assembler -----------------------------------------------------------------------------


def test_the_assembler_joins_each_choices_entries_in_order() -> None:
    a, b, c = (TokenLogprob(token=t, logprob=-0.1) for t in "abc")
    chunks = [
        StreamChunk(text="a", logprobs=(a,)),
        StreamChunk(text="x", index=1, logprobs=(c,)),
        StreamChunk(text="bc", logprobs=(b, c)),
        StreamChunk(finish_reason="stop"),
        StreamChunk(finish_reason="stop", index=1),
    ]
    reply = assemble(chunks, request_id=None, provider="p")
    assert reply.logprobs == (a, b, c)
    assert reply.choices[1].logprobs == (c,)
    # a whole reply a server sent to a stream request
    assert assemble(chunks_of(reply), request_id=None, provider="p") == reply
    assert assemble([StreamChunk(text="hi")], request_id=None, provider="p").logprobs is None


def sse(*events: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


@pytest.mark.parametrize("family", FAMILIES)
async def test_odd_shapes_in_a_stream_are_skipped(family: str) -> None:
    bad = {"token": 1, "logprob": "x", "logProbability": "x"}
    if family == "openai":
        good = {"token": "hi", "logprob": -0.5}

        def event(logprobs: Any, finish: str | None = None) -> dict[str, Any]:
            delta = {"content": "" if finish else "hi"}
            choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            return {"id": "c", "model": "m", "choices": [choice]}

        body = sse(event("junk"), event({"content": [bad, good]}), event(None, "stop"))
        body += b"data: [DONE]\n\n"
    else:

        def event(logprobs: Any, finish: str | None = None) -> dict[str, Any]:
            candidate = {"content": {"parts": [{"text": "hi"}]}, "logprobsResult": logprobs}
            return {"candidates": [candidate | ({"finishReason": finish} if finish else {})]}

        chosen = {"chosenCandidates": [bad, {"token": "hi", "logProbability": -0.5}]}
        body = sse(event(["junk"]), event(chosen), event({"chosenCandidates": 3}, "STOP"))

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(respond)) as http,
        llmrelay.AsyncClient(
            provider=family, api_key="k", base_url=BASES[family], http_client=http
        ) as client,
        client.stream(PROMPT, model="m", logprobs=True) as stream,
    ):
        final = await stream.final()
    assert final.logprobs == (TokenLogprob(token="hi", logprob=-0.5),)
