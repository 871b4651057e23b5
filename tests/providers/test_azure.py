"""Azure OpenAI: deployment URLs with api-version, the v1 form, `api-key` and Entra ID logins,
env handling, Azure's stream quirks, and a round trip through the embedded mock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmrelay import (
    AsyncClient,
    BadRequestError,
    ChatResponse,
    ConfigError,
    RateLimitError,
    Usage,
)
from llmrelay.mock import MockTransport
from llmrelay.providers import azure

from ._helpers import FakeServer, client_over, completion

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
ENDPOINT = "https://my-resource.openai.azure.com"
KEY = "azure-key-0123456789abcdef"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra-token"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_OPENAI_AD_TOKEN", "OPENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    return monkeypatch


REQUEST_ID = "3f9c1e2a-0000-4b5c-8d7e-aaaaaaaaaaaa"


def deployment(reply: Any = None, sse: bytes = b"", status: int = 200) -> FakeServer:
    """A fake Azure deployment: OpenAI's JSON, Azure's request-id header."""
    return FakeServer(
        reply=reply if reply is not None else completion("Hi there."),
        sse=sse,
        status=status,
        headers={"apim-request-id": REQUEST_ID},
    )


def azure_client(wire: FakeServer, provider: Any = "azure", **kwargs: Any) -> AsyncClient:
    return client_over(wire, provider=provider, max_retries=0, **kwargs)


# -- classic deployment URLs -----------------------------------------------------------------


async def test_chat_goes_to_the_deployment_with_api_version_and_api_key(
    env: pytest.MonkeyPatch,
) -> None:
    wire = deployment()
    async with azure_client(wire) as client:
        reply = await client.chat("Hello", model="gpt4o-prod", max_tokens=50)
    assert reply.text == "Hi there."
    assert reply.provider == "azure"
    assert reply.request_id == REQUEST_ID
    request = wire.last
    assert str(request.url) == (
        f"{ENDPOINT}/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    )
    assert azure.DEFAULT_API_VERSION == "2024-10-21"
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers
    body = json.loads(request.content)
    assert body["max_tokens"] == 50 and "max_completion_tokens" not in body


async def test_openai_api_version_env_var_sets_the_version(env: pytest.MonkeyPatch) -> None:
    env.setenv("OPENAI_API_VERSION", "2025-04-01-preview")
    wire = deployment()
    async with azure_client(wire) as client:
        await client.chat("Hello", model="gpt4o-prod")
    assert wire.last.url.params["api-version"] == "2025-04-01-preview"


async def test_embeddings_and_models_urls(env: pytest.MonkeyPatch) -> None:
    wire = deployment(reply={"object": "list", "data": [{"index": 0, "embedding": [0.5, 0.25]}]})
    async with azure_client(wire) as client:
        result = await client.embed("hello", model="embed-small")
        assert result.vectors == [[0.5, 0.25]]
        assert str(wire.last.url) == (
            f"{ENDPOINT}/openai/deployments/embed-small/embeddings?api-version=2024-10-21"
        )
        wire.reply = {"object": "list", "data": [{"id": "gpt-4o", "created_at": 1}]}
        models = await client.models()
    assert [m.id for m in models] == ["gpt-4o"]
    assert wire.last.method == "GET"
    assert str(wire.last.url) == f"{ENDPOINT}/openai/models?api-version=2024-10-21"
    assert wire.last.headers["api-key"] == KEY


async def test_deployment_names_are_quoted_into_the_path(env: pytest.MonkeyPatch) -> None:
    wire = deployment()
    async with azure_client(wire) as client:
        await client.chat("Hello", model="team a/gpt?4")
    assert wire.last.url.raw_path.startswith(b"/openai/deployments/team%20a%2Fgpt%3F4/chat/")


@pytest.mark.parametrize(
    "endpoint", [f"{ENDPOINT}/", f"{ENDPOINT}/openai", f"{ENDPOINT}/openai/", f"  {ENDPOINT} "]
)
async def test_endpoint_spellings_are_normalised(endpoint: str, env: pytest.MonkeyPatch) -> None:
    env.setenv("AZURE_OPENAI_ENDPOINT", endpoint)
    wire = deployment()
    async with azure_client(wire) as client:
        await client.chat("Hello", model="d")
    assert wire.last.url.path == "/openai/deployments/d/chat/completions"
    assert wire.last.url.host == "my-resource.openai.azure.com"


# -- logins ----------------------------------------------------------------------------------


async def test_entra_token_wins_over_the_api_key(env: pytest.MonkeyPatch) -> None:
    env.setenv("AZURE_OPENAI_AD_TOKEN", TOKEN)
    wire = deployment()
    async with azure_client(wire) as client:
        await client.chat("Hello", model="d")
    assert wire.last.headers["authorization"] == f"Bearer {TOKEN}"
    assert "api-key" not in wire.last.headers


async def test_entra_token_alone_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", TOKEN)
    wire = deployment()
    async with azure_client(wire) as client:
        await client.chat("Hello", model="d")
    assert wire.last.headers["authorization"] == f"Bearer {TOKEN}"


async def test_explicit_preset_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = azure.preset(endpoint=ENDPOINT, api_version="2024-06-01", auth="bearer")
    wire = deployment()
    async with azure_client(wire, provider, api_key=TOKEN) as client:
        await client.chat("Hello", model="d")
    assert wire.last.url.params["api-version"] == "2024-06-01"
    assert wire.last.headers["authorization"] == f"Bearer {TOKEN}"


def test_an_unknown_auth_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'api-key' or 'bearer'"):
        azure.preset(endpoint=ENDPOINT, auth="oauth")  # type: ignore[arg-type]


def test_missing_key_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", ENDPOINT)
    with pytest.raises(ConfigError, match="AZURE_OPENAI_API_KEY"):
        AsyncClient(provider="azure")


def test_missing_endpoint_is_a_config_error_naming_the_env_var(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        AsyncClient(provider="azure")


async def test_base_url_argument_gives_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    wire = deployment()
    async with azure_client(wire, base_url=ENDPOINT, api_key=KEY) as client:
        await client.chat("Hello", model="d")
    assert str(wire.last.url) == (
        f"{ENDPOINT}/openai/deployments/d/chat/completions?api-version=2024-10-21"
    )


# -- the v1 form -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["/openai/v1", "/openai/v1/"])
async def test_v1_endpoint_uses_plain_openai_paths(suffix: str, env: pytest.MonkeyPatch) -> None:
    env.setenv("AZURE_OPENAI_ENDPOINT", ENDPOINT + suffix)
    wire = deployment()
    async with azure_client(wire) as client:
        await client.chat("Hello", model="gpt5-deployment", max_tokens=64)
        body = json.loads(wire.last.content)
        assert str(wire.last.url) == f"{ENDPOINT}/openai/v1/chat/completions"
        assert body["model"] == "gpt5-deployment"
        assert body["max_completion_tokens"] == 64 and "max_tokens" not in body
        assert wire.last.headers["api-key"] == KEY

        wire.reply = {"object": "list", "data": [{"index": 0, "embedding": [1.0]}]}
        await client.embed(["a"], model="embed-small")
        assert str(wire.last.url) == f"{ENDPOINT}/openai/v1/embeddings"
        assert json.loads(wire.last.content)["model"] == "embed-small"

        wire.reply = {"object": "list", "data": [{"id": "gpt-5", "object": "model"}]}
        await client.models()
        assert str(wire.last.url) == f"{ENDPOINT}/openai/v1/models"


async def test_v1_form_given_as_base_url_argument() -> None:
    wire = deployment()
    async with azure_client(wire, base_url=f"{ENDPOINT}/openai/v1", api_key=KEY) as client:
        await client.chat("Hello", model="d")
    assert str(wire.last.url) == f"{ENDPOINT}/openai/v1/chat/completions"


# -- replies and streams ---------------------------------------------------------------------

EXPECTED = ChatResponse(
    text="Hi there.",
    finish_reason="stop",
    usage=Usage(prompt_tokens=9, completion_tokens=3, total_tokens=12),
    model="gpt-4o-2024-08-06",
    id="chatcmpl-AzUr3Qp9wXyZ0aBcDeFgHiJkLmNoP",
    request_id=REQUEST_ID,
    provider="azure",
)


async def test_content_filter_stream_quirks_are_harmless(env: pytest.MonkeyPatch) -> None:
    """A first chunk with `choices: []` and only `prompt_filter_results`, chunks carrying
    `content_filter_results`, and an async-filter chunk without `delta`."""
    wire = deployment(
        sse=(FIXTURES / "azure_content_filter.sse").read_bytes(),
        reply=json.loads((FIXTURES / "azure_content_filter.json").read_text()),
    )
    async with azure_client(wire) as client:
        async with client.stream("Hello", model="gpt4o-prod") as stream:
            chunks = [chunk async for chunk in stream]
            final = await stream.final()
        reply = await client.chat("Hello", model="gpt4o-prod")
    assert final == EXPECTED
    assert reply == final
    # The prompt-filter event gives the user no chunk; every chunk belongs to the completion.
    assert all(chunk.id == EXPECTED.id for chunk in chunks)
    assert [c.text for c in chunks if c.text] == ["Hi", " there."]
    assert chunks[-1].usage == EXPECTED.usage
    body = json.loads(wire.requests[0].content)
    assert body["stream_options"] == {"include_usage": True}


async def test_azure_error_bodies_map_to_typed_errors(env: pytest.MonkeyPatch) -> None:
    filtered = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
            "content management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
        }
    }
    wire = deployment(reply=filtered, status=400)
    async with azure_client(wire) as client:
        with pytest.raises(BadRequestError, match="content management policy") as info:
            await client.chat("Hello", model="d")
        assert info.value.status_code == 400
        assert KEY not in str(info.value)

        wire.status = 429
        wire.reply = {"error": {"code": "429", "message": "Requests to the deployment exceeded"}}
        with pytest.raises(RateLimitError, match="exceeded"):
            await client.chat("Hello", model="d")


async def test_round_trip_through_the_embedded_mock(env: pytest.MonkeyPatch) -> None:
    """The mock engine reads Azure deployment URLs: the deployment names the model."""
    async with (
        httpx.AsyncClient(transport=MockTransport()) as http,
        AsyncClient(provider="azure", http_client=http) as client,
    ):
        reply = await client.chat("hi azure", model="mock-echo")
        async with client.stream("hi azure", model="mock-echo") as stream:
            texts = [chunk.text async for chunk in stream]
            final = await stream.final()
    assert reply.text == "echo: hi azure" == "".join(texts) == final.text
    assert (final.finish_reason, final.usage, final.model) == (
        reply.finish_reason,
        reply.usage,
        reply.model,
    )
