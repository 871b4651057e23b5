"""Messages written as dicts: a type checker catches a misspelt key or role on both clients (the
TypedDicts behind `MessagesInput`), and at run time an untyped caller gets a `ConfigError` that
names the message, the key or role, and the likely intended one, before anything is sent; every
key a provider family takes still goes out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import llmrelay
from _loopback import LoopbackServer, Request, Response, chat_completion, json_response, loopback
from _mypy import assert_reports_exactly, run_mypy
from llmrelay import APIStatusError, AsyncClient, ConfigError, Message, ReasoningBlock

pytestmark = pytest.mark.anyio

BOUND = 10  # seconds; every test here finishes in well under one

LIST_ITEM = 'has incompatible type "dict[str, str]"; expected "Message | SystemMessage'
PARTS = 'has incompatible type "dict[str, Sequence[Collection[str]]]"; expected "Message'

MISTAKES = """
    import llmrelay


    async def use_async(client: llmrelay.AsyncClient) -> None:
        await client.chat([{"role": "user", "contnet": "hi"}])  # error: List item 0 <item>
        await client.chat([{"role": "usr", "content": "hi"}])  # error: List item 0 <item>
        client.stream([{"role": "assistant", "content": "x", "reasoning_contnet": "y"}])  # error: <item>
        await client.batch([[{"role": "user", "contnet": "hi"}]])  # error: <item>
        async for _ in client.as_completed(["a", [{"role": "usr", "content": "hi"}]]):  # error: <item>
            pass
        await client.chat([{"role": "user", "content": [{"type": "txt", "text": "hi"}]}])  # error: <parts>
        await client.chat([{"role": "user", "content": [{"type": "image_url", "image_url": "u"}]}])  # error: <parts>
        await client.chat([{"role": "tool", "content": "42"}])  # error: <item>
        await client.chat([{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}])  # error: List item 0


    def use_sync() -> None:
        client = llmrelay.Client(provider="mock")
        client.chat([{"role": "user", "contnet": "hi"}])  # error: List item 0 <item>
        client.chat([{"role": "usr", "content": "hi"}])  # error: List item 0 <item>
        client.stream([{"role": "system", "content": "s"}, {"role": "user", "contnet": "hi"}])  # error: List item 1 <item>
        client.batch([[{"role": "user", "contnet": "hi"}]])  # error: <item>
        client.as_completed([[{"role": "usr", "content": "hi"}]])  # error: <item>
        message: llmrelay.UserMessage = {"role": "user", "contnet": "hi"}  # error: Extra key "contnet" for TypedDict "UserMessage"
        history: list[llmrelay.MessageDict] = []
        history.append({"role": "usr", "content": "hi"})  # error: Type of TypedDict is ambiguous
""".replace("<item>", LIST_ITEM).replace("<parts>", PARTS)

CORRECT = """
    from typing import Any

    import llmrelay


    async def use_async(client: llmrelay.AsyncClient) -> None:
        reply = await client.chat(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "No markdown."}]},
                {
                    "role": "user",
                    "name": "ann",
                    "content": [
                        {"type": "text", "text": "What is it?", "cache_control": {"type": "ephemeral"}},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                    "reasoning_content": "thinking",
                    "reasoning_signature": "sig",
                    "reasoning_blocks": [{"text": "t", "signature": "s"}, llmrelay.ReasoningBlock()],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "42", "name": "f", "is_error": False},
                {"role": "assistant", "content": "The answer is", "prefix": True},
            ]
        )
        history: list[llmrelay.Message | llmrelay.MessageDict] = [{"role": "user", "content": "hi"}]
        history.append(reply.message)
        history.append(llmrelay.Message(role="user", content="more"))
        await client.chat(history)
        client.stream(history)
        await client.batch(["a", [{"role": "user", "content": "b"}], history])
        async for _ in client.as_completed([history, "c"]):
            pass
        typed: list[llmrelay.MessageDict] = [{"role": "user", "content": "hi"}]
        typed.append({"role": "assistant", "content": "hello"})
        await client.chat(typed)
        loaded: Any = [{"role": "user", "content": "from a JSON file"}]
        await client.chat(loaded)  # untyped data: checked at run time instead


    def use_sync() -> None:
        with llmrelay.Client(provider="mock") as client:
            client.chat([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}])
            client.stream([{"role": "user", "content": "hi"}])
            client.batch([[{"role": "user", "content": "hi"}], "plain"])
            client.as_completed([[{"role": "user", "content": "hi"}]])
            part: llmrelay.ContentPart = {"type": "text", "text": "x"}
            message: llmrelay.UserMessage = {"role": "user", "content": [part]}
            client.chat([message])
"""


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[int, str]]:
    pytest.importorskip("mypy")
    work: Path = tmp_path_factory.mktemp("messages_typing")
    return run_mypy(work, {"mistakes": MISTAKES, "correct": CORRECT})


def test_mypy_reports_each_misspelt_key_or_role_on_both_clients(
    mypy_output: dict[str, dict[int, str]],
) -> None:
    assert_reports_exactly(mypy_output["mistakes"], MISTAKES)


def test_mypy_accepts_every_kind_of_message(mypy_output: dict[str, dict[int, str]]) -> None:
    assert mypy_output["correct"] == {}


# -- the same mistakes at run time, from untyped code -----------------------------------------

SYSTEM = {"role": "system", "content": "Be brief."}

BAD_MESSAGES: list[tuple[str, list[Any], list[str]]] = [
    (
        "misspelt key",
        [{"role": "user", "contnet": "hi"}],
        ["messages[0]", "'contnet'", "did you mean 'content'?"],
    ),
    (
        "misspelt role",
        [SYSTEM, {"role": "usr", "content": "hi"}],
        ["messages[1]", "'usr'", "did you mean 'user'?"],
    ),
    (
        "misspelt assistant key",
        [SYSTEM, {"role": "user", "content": "hi"}, {"role": "assistant", "contetn": "x"}],
        ["messages[2]", "'contetn'", "did you mean 'content'?"],
    ),
    (
        "misspelt reasoning key",
        [{"role": "assistant", "content": "x", "reasoning_contnet": "y"}],
        ["messages[0]", "'reasoning_contnet'", "did you mean 'reasoning_content'?"],
    ),
    (
        "a key of another role",
        [{"role": "user", "content": "hi", "tool_call_id": "c1"}],
        ["messages[0]", "'tool_call_id'", "a user message takes content, name, role"],
    ),
    (
        "misspelt tool_call_id",
        [{"role": "tool", "content": "42", "tool_call_idx": "c1"}],
        ["messages[0]", "'tool_call_idx'", "did you mean 'tool_call_id'?"],
    ),
    ("role not a str", [{"role": ["user"], "content": "hi"}], ["messages[0]", "['user']"]),
    (
        "text part misspelt",
        [{"role": "user", "content": [{"type": "text", "txt": "hi"}]}],
        ["messages[0].content[0]", "text part without a string 'text'"],
    ),
    (
        "part without a type",
        [{"role": "user", "content": ["hi"]}],
        ["messages[0].content[0]", "must be a dict with a 'type'"],
    ),
    (
        "image part without a url",
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"uri": "x"}}]}],
        ["messages[0].content[0]", "image_url part"],
    ),
    ("a single message", {"role": "user", "content": "hi"}, ["one message? put it in a list"]),
    ("bytes", b"hello", ["got bytes"]),
]


def _no_reply(request: Request) -> Response:
    return json_response({"error": {"message": "should not be here"}}, status=500)


@pytest.mark.parametrize(
    ("messages", "words"), [c[1:] for c in BAD_MESSAGES], ids=[c[0] for c in BAD_MESSAGES]
)
async def test_a_bad_message_dict_is_a_config_error_naming_it_and_nothing_is_sent(
    messages: Any, words: list[str]
) -> None:
    async with (
        loopback(_no_reply) as server,
        AsyncClient("openai", api_key="sk-x", base_url=server.base_url, model="m") as client,
    ):
        with anyio.fail_after(BOUND):
            with pytest.raises(ConfigError) as chat_info:
                await client.chat(messages)
            with pytest.raises(ConfigError) as stream_info:
                client.stream(messages)
            outcome = await client.batch([messages], return_exceptions=True)
    assert server.requests == []
    for error in (chat_info.value, stream_info.value, outcome[0]):
        assert isinstance(error, ConfigError)
        for word in words:
            assert word in str(error), (word, str(error))


def test_the_sync_client_checks_message_dicts_too() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=chat_completion("hi"))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    with llmrelay.Client("openai", api_key="sk-x", model="m", http_client=http) as client:
        with pytest.raises(ConfigError, match=r"messages\[0\].*'contnet'.*did you mean"):
            client.chat([{"role": "user", "contnet": "hi"}])
        with pytest.raises(ConfigError, match="did you mean 'user'"):
            client.stream([{"role": "usr", "content": "hi"}])
        assert client.chat([{"role": "user", "content": "hi"}]).text == "hi"
    assert len(sent) == 1


# -- what providers take still goes out ----------------------------------------------------------

RAW_OPENAI_REPLY = {  # a reply's message as it came, appended as is (vLLM's shape)
    "role": "assistant",
    "content": "1, 2, 3",
    "refusal": None,
    "annotations": None,
    "audio": None,
    "function_call": None,
    "tool_calls": [],
    "reasoning": "Count to three.",
}


def conversation() -> list[Any]:
    """One of each key a provider family reads, in a conversation every family can take."""
    return [
        {"role": "system", "content": "Be brief.", "name": "rules"},
        {"role": "developer", "content": [{"type": "text", "text": "No markdown."}]},
        {
            "role": "user",
            "name": "ann",
            "content": [
                {"type": "text", "text": "Count.", "cache_control": {"type": "ephemeral"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        },
        RAW_OPENAI_REPLY,
        Message(role="user", content="Now call f."),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
            "reasoning_content": "I should call f.",
            "reasoning_signature": "sig-1",
            "reasoning_blocks": [{"text": "I should call f.", "signature": "sig-1"}],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "f", "content": "42", "is_error": False},
        Message(role="assistant", content="f says", reasoning_blocks=(ReasoningBlock(),)),
        {"role": "user", "content": "Go on."},
        {"role": "assistant", "content": "The answer is", "prefix": True, "partial": True},
    ]


@pytest.mark.parametrize("provider", ["openai", "deepseek", "anthropic", "gemini"])
async def test_every_key_a_provider_takes_is_still_sent(provider: str) -> None:
    def refuse(request: Request) -> Response:  # a 400 that is not retried: proof it went out
        return json_response({"error": {"message": "no", "type": "invalid_request"}}, status=400)

    async with (
        loopback(refuse) as server,
        AsyncClient(provider, api_key="sk-x", base_url=server.base_url, model="m") as client,
    ):
        with anyio.fail_after(BOUND), pytest.raises(APIStatusError):
            await client.chat(conversation())
    assert len(server.requests) == 1


async def test_openai_compatible_services_get_the_messages_as_given(
    tmp_path: Path,
) -> None:
    async with (
        loopback(lambda request: json_response(chat_completion("ok"))) as server,
        AsyncClient("openai", api_key="sk-x", base_url=server.base_url, model="m") as client,
    ):
        with anyio.fail_after(BOUND):
            await client.chat(conversation())
    sent = json.loads(_only(server).body)["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief.", "name": "rules"}
    assert sent[2]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent[3] == RAW_OPENAI_REPLY  # the raw reply goes back as it came
    assert sent[6]["is_error"] is False and sent[6]["tool_call_id"] == "c1"
    assert sent[9]["prefix"] is True
    assert "reasoning_blocks" not in sent[5]  # llmrelay's own replay keys stay home


def _only(server: LoopbackServer) -> Request:
    assert len(server.requests) == 1
    return server.requests[0]


async def test_message_parts_given_as_a_tuple_are_sent_as_a_list() -> None:
    async with (
        loopback(lambda request: json_response(chat_completion("ok"))) as server,
        AsyncClient("openai", api_key="sk-x", base_url=server.base_url, model="m") as client,
    ):
        parts = ({"type": "text", "text": "a"}, {"type": "text", "text": "b"})
        with anyio.fail_after(BOUND):
            await client.chat([{"role": "user", "content": parts}])
    assert json.loads(_only(server).body)["messages"][0]["content"] == list(parts)
