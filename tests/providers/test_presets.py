"""The OpenAI-compatible presets: where each one sends requests, how it logs in, what happens
without a key, and the request-shape quirks of each service. Their recorded-style replies and
streams are in `test_compatible_streams.py`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from llmrelay import (
    AsyncClient,
    ConfigError,
    Message,
)
from llmrelay.providers import get_provider, preset_names
from llmrelay.providers.presets import ollama_base_url

from ._helpers import FakeServer, client_over, completion

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "sk-preset-test-0123456789"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest clears *_API_KEY and *_BASE_URL; these do not end that way.
    for name in ("OLLAMA_HOST", "AZURE_OPENAI_AD_TOKEN", "OPENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)


def client_for(provider: str, wire: FakeServer, **kwargs: Any) -> AsyncClient:
    return client_over(wire, provider=provider, max_retries=0, **kwargs)


# name → (key env var, where chat goes)
KEYED = {
    "openai": ("OPENAI_API_KEY", "https://api.openai.com/v1/chat/completions"),
    "deepseek": ("DEEPSEEK_API_KEY", "https://api.deepseek.com/chat/completions"),
    "qwen": (
        "DASHSCOPE_API_KEY",
        "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions",
    ),
    "moonshot": ("MOONSHOT_API_KEY", "https://api.moonshot.ai/v1/chat/completions"),
    "zhipu": ("ZHIPUAI_API_KEY", "https://open.bigmodel.cn/api/paas/v4/chat/completions"),
    "qianfan": ("QIANFAN_API_KEY", "https://qianfan.baidubce.com/v2/chat/completions"),
    "siliconflow": ("SILICONFLOW_API_KEY", "https://api.siliconflow.cn/v1/chat/completions"),
    "groq": ("GROQ_API_KEY", "https://api.groq.com/openai/v1/chat/completions"),
    "mistral": ("MISTRAL_API_KEY", "https://api.mistral.ai/v1/chat/completions"),
    "openrouter": ("OPENROUTER_API_KEY", "https://openrouter.ai/api/v1/chat/completions"),
    "together": ("TOGETHER_API_KEY", "https://api.together.xyz/v1/chat/completions"),
}

BASE_URL_ENV = {
    "deepseek": "DEEPSEEK_BASE_URL",
    "qwen": "DASHSCOPE_BASE_URL",
    "moonshot": "MOONSHOT_BASE_URL",
    "zhipu": "ZHIPUAI_BASE_URL",
    "qianfan": "QIANFAN_BASE_URL",
    "siliconflow": "SILICONFLOW_BASE_URL",
    "groq": "GROQ_BASE_URL",
    "mistral": "MISTRAL_BASE_URL",
    "openrouter": "OPENROUTER_BASE_URL",
    "together": "TOGETHER_BASE_URL",
    "vllm": "VLLM_BASE_URL",
}


def test_every_documented_preset_is_registered() -> None:
    documented = {
        "openai", "anthropic", "gemini", "azure", "deepseek", "qwen", "moonshot", "zhipu",
        "qianfan", "siliconflow", "groq", "mistral", "openrouter", "together", "ollama",
        "vllm", "mock",
    }  # fmt: skip
    assert documented <= set(preset_names())


def test_the_providers_doc_has_a_row_for_every_preset() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "guides" / "providers.md").read_text()
    rows = set(re.findall(r"^\| `([a-z]+)` \|", doc, flags=re.M))
    assert set(preset_names()) <= rows


@pytest.mark.parametrize("name", sorted(KEYED))
async def test_preset_sends_to_its_base_url_with_a_bearer_key(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, url = KEYED[name]
    monkeypatch.setenv(env, KEY)
    wire = FakeServer()
    async with client_for(name, wire) as client:
        reply = await client.chat("ping", model="some-model")
    assert reply.text == "pong"
    assert reply.provider == name
    request = wire.requests[0]
    assert str(request.url) == url
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert wire.body["model"] == "some-model"


@pytest.mark.parametrize("name", sorted(KEYED))
def test_missing_key_is_a_config_error_naming_the_env_var(name: str) -> None:
    env, _ = KEYED[name]
    with pytest.raises(ConfigError, match=env):
        AsyncClient(provider=name)


async def test_zhipu_falls_back_to_zhipu_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIPU_API_KEY", "zhipu-key")
    wire = FakeServer()
    async with client_for("zhipu", wire) as client:
        await client.chat("ping", model="glm-4.6")
    assert wire.requests[0].headers["authorization"] == "Bearer zhipu-key"
    monkeypatch.delenv("ZHIPU_API_KEY")
    with pytest.raises(ConfigError, match="ZHIPUAI_API_KEY or ZHIPU_API_KEY"):
        AsyncClient(provider="zhipu")


@pytest.mark.parametrize("name", sorted(BASE_URL_ENV))
async def test_base_url_env_var_moves_the_preset(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BASE_URL_ENV[name], "https://proxy.example/llm/v1")
    wire = FakeServer()
    async with client_for(name, wire, api_key=KEY) as client:
        await client.chat("ping", model="m")
    assert str(wire.requests[0].url) == "https://proxy.example/llm/v1/chat/completions"


# -- keyless local servers -------------------------------------------------------------------


async def test_ollama_needs_no_key_and_sends_none() -> None:
    wire = FakeServer()
    async with client_for("ollama", wire) as client:
        reply = await client.chat("ping", model="llama3.2")
    assert reply.text == "pong"
    assert str(wire.requests[0].url) == "http://127.0.0.1:11434/v1/chat/completions"
    assert "authorization" not in wire.requests[0].headers


async def test_ollama_host_env_var_picks_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box.lan:11500")
    wire = FakeServer()
    async with client_for("ollama", wire) as client:
        await client.chat("ping", model="llama3.2")
    assert str(wire.requests[0].url) == "http://gpu-box.lan:11500/v1/chat/completions"


@pytest.mark.parametrize(
    ("host", "base"),
    [
        (None, "http://127.0.0.1:11434/v1"),
        ("", "http://127.0.0.1:11434/v1"),
        ("127.0.0.1:11434", "http://127.0.0.1:11434/v1"),
        ("0.0.0.0", "http://0.0.0.0:11434/v1"),
        (":8080", "http://127.0.0.1:8080/v1"),
        ("example.com", "http://example.com:11434/v1"),
        ("http://example.com", "http://example.com:80/v1"),
        ("https://example.com", "https://example.com:443/v1"),
        ("http://host:9000/", "http://host:9000/v1"),
        ("https://proxy.example/ollama", "https://proxy.example:443/ollama/v1"),
        ("http://host:9000/v1", "http://host:9000/v1"),
        ("[::1]:11434", "http://[::1]:11434/v1"),
    ],
)
def test_ollama_host_values(host: str | None, base: str) -> None:
    assert ollama_base_url(host) == base


def test_a_bad_ollama_host_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "localhost:port")
    with pytest.raises(ConfigError, match="OLLAMA_HOST"):
        AsyncClient(provider="ollama")


async def test_vllm_key_is_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = FakeServer()
    async with client_for("vllm", wire) as client:
        await client.chat("ping", model="Qwen/Qwen3-8B")
    assert str(wire.requests[0].url) == "http://localhost:8000/v1/chat/completions"
    assert "authorization" not in wire.requests[0].headers

    monkeypatch.setenv("VLLM_API_KEY", "vllm-secret")
    async with client_for("vllm", wire) as client:
        await client.chat("ping", model="Qwen/Qwen3-8B")
    assert wire.requests[1].headers["authorization"] == "Bearer vllm-secret"


# -- request-shape quirks --------------------------------------------------------------------

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def _conversation(call_id: str = "call_8fJ2kLmQ0pZ") -> list[dict[str, Any]]:
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    return [
        {"role": "user", "content": "Weather in Paris?", "name": "alice"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call],
            "reasoning_content": "I should call the tool.",
            "reasoning_signature": "sig-abc",
        },
        {"role": "tool", "tool_call_id": call_id, "content": "18C, sunny"},
    ]


@pytest.mark.parametrize(
    ("name", "replayed"),
    [("deepseek", True), ("moonshot", True), ("openai", False), ("qwen", False)],
)
async def test_reasoning_is_replayed_only_where_the_service_needs_it(
    name: str, replayed: bool
) -> None:
    wire = FakeServer()
    async with client_for(name, wire, api_key=KEY) as client:
        await client.chat(_conversation(), model="m", tools=[TOOL])
    assistant = wire.body["messages"][1]
    assert ("reasoning_content" in assistant) is replayed
    if replayed:
        assert assistant["reasoning_content"] == "I should call the tool."
    assert "reasoning_signature" not in assistant


async def test_a_deepseek_reply_replays_its_own_reasoning() -> None:
    reply = completion("")
    reply["choices"][0]["message"].update(
        content=None,
        reasoning_content="Need the weather tool.",
        tool_calls=[
            {
                "id": "call_0_1a2b",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            }
        ],
    )
    wire = FakeServer(reply=reply)
    async with client_for("deepseek", wire, api_key=KEY) as client:
        first = await client.chat("Weather in Oslo?", model="deepseek-reasoner", tools=[TOOL])
        messages: list[Message | dict[str, Any]] = [
            {"role": "user", "content": "Weather in Oslo?"},
            first.message,
            {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "5C"},
        ]
        wire.reply = completion("It is 5C.")
        second = await client.chat(messages, model="deepseek-reasoner", tools=[TOOL])
    assert second.text == "It is 5C."
    assistant = wire.body["messages"][1]
    assert assistant["reasoning_content"] == "Need the weather tool."
    assert assistant["tool_calls"][0]["id"] == "call_0_1a2b"


@pytest.mark.parametrize(("name", "kept"), [("groq", False), ("openai", True), ("mistral", True)])
async def test_message_names_are_stripped_for_groq(name: str, kept: bool) -> None:
    wire = FakeServer()
    async with client_for(name, wire, api_key=KEY) as client:
        await client.chat([{"role": "user", "content": "hi", "name": "alice"}], model="m")
    assert ("name" in wire.body["messages"][0]) is kept


@pytest.mark.parametrize(
    ("name", "asks_for_usage"),
    [
        ("openai", True),
        ("deepseek", True),
        ("qwen", True),
        ("moonshot", True),
        ("openrouter", True),
        ("vllm", True),
        ("groq", False),
        ("mistral", False),
        ("zhipu", False),
    ],
)
async def test_stream_options_only_where_accepted(name: str, asks_for_usage: bool) -> None:
    sse = (FIXTURES / "openai" / "no_done_with_finish.sse").read_bytes()
    wire = FakeServer(sse=sse)
    async with client_for(name, wire, api_key=KEY) as client:
        await client.stream("hi", model="m").final()
    assert wire.body["stream"] is True
    assert ("stream_options" in wire.body) is asks_for_usage


MISTRAL_ID = re.compile(r"[A-Za-z0-9]{9}")


async def test_mistral_tool_call_ids_are_rewritten_consistently() -> None:
    conversation = _conversation("call_8fJ2kLmQ0pZ")
    original = json.dumps(conversation, sort_keys=True)
    wire = FakeServer()
    async with client_for("mistral", wire, api_key=KEY) as client:
        await client.chat(conversation, model="mistral-large-latest", tools=[TOOL])
        first = wire.body["messages"]
        await client.chat(conversation, model="mistral-large-latest", tools=[TOOL])
        again = wire.body["messages"]
    new_id = first[1]["tool_calls"][0]["id"]
    assert MISTRAL_ID.fullmatch(new_id)
    assert first[2]["tool_call_id"] == new_id  # the result still points at its call
    assert again[1]["tool_calls"][0]["id"] == new_id  # deterministic across requests
    assert first[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert json.dumps(conversation, sort_keys=True) == original  # the caller's dicts untouched


async def test_mistral_keeps_valid_ids_and_separates_different_ones() -> None:
    calls = [
        {"id": cid, "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for cid in ("D681PevKs", "call_0", "call_1")
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        *({"role": "tool", "tool_call_id": c["id"], "content": "ok"} for c in calls),
    ]
    wire = FakeServer()
    async with client_for("mistral", wire, api_key=KEY) as client:
        await client.chat(messages, model="mistral-small-latest")
    sent = wire.body["messages"]
    ids = [c["id"] for c in sent[1]["tool_calls"]]
    assert ids[0] == "D681PevKs"
    assert len(set(ids)) == 3 and all(MISTRAL_ID.fullmatch(i) for i in ids)
    assert [m["tool_call_id"] for m in sent[2:]] == ids


async def test_ids_are_left_alone_for_other_services() -> None:
    wire = FakeServer()
    async with client_for("openai", wire, api_key=KEY) as client:
        await client.chat(_conversation("call_8fJ2kLmQ0pZ"), model="gpt-4o", tools=[TOOL])
    assert wire.body["messages"][1]["tool_calls"][0]["id"] == "call_8fJ2kLmQ0pZ"
    assert wire.body["messages"][2]["tool_call_id"] == "call_8fJ2kLmQ0pZ"


def test_get_provider_builds_a_fresh_preset_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "one:1")
    first = get_provider("ollama")
    monkeypatch.setenv("OLLAMA_HOST", "two:2")
    assert (first.base_url, get_provider("ollama").base_url) == (
        "http://one:1/v1",
        "http://two:2/v1",
    )
