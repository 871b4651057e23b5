"""The provider registry: built-in presets, third-party entry points (`llmrelay.providers`),
the plugin examples of docs/guides/plugins.md, examples/custom_provider.py, and what plugin authors
use (`make_status_error`, `Provider`'s repr)."""

from __future__ import annotations

import json
import re
import runpy
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, EntryPoints
from pathlib import Path
from typing import Any

import httpx
import pytest

import llmrelay
from llmrelay import AsyncClient, ConfigError, Provider, StreamError
from llmrelay._request import ChatRequest
from llmrelay.mock import MockTransport
from llmrelay.providers import (
    ENTRY_POINT_GROUP,
    _plugin_entries,
    get_provider,
    make_status_error,
    plugin_names,
    preset_names,
)
from llmrelay.providers import openai as openai_adapter

from ._helpers import client_over

ROOT = Path(__file__).parents[2]
GROUP = "llmrelay.providers"


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """Install fake plugins: modules written to a temp dir plus entry points that name them."""
    monkeypatch.syspath_prepend(str(tmp_path))
    entries: list[EntryPoint] = []
    written: list[str] = []

    def fake_entry_points(**selection: Any) -> EntryPoints:
        return EntryPoints(entries).select(**selection)

    monkeypatch.setattr("importlib.metadata.entry_points", fake_entry_points)
    # The registry looks for entry points once per process: make it look at these instead.
    _plugin_entries.cache_clear()

    def install(name: str, value: str, source: str | None = None) -> None:
        if source is not None:
            module = value.partition(":")[0]
            (tmp_path / f"{module}.py").write_text(source)
            written.append(module)
        entries.append(EntryPoint(name=name, value=value, group=GROUP))

    yield install
    _plugin_entries.cache_clear()
    for module in written:
        sys.modules.pop(module, None)


class Recorder(httpx.AsyncBaseTransport):
    """Records each request, then lets llmrelay's mock engine answer it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._mock = MockTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self._mock.handle_async_request(request)


def plugin_source_from_docs() -> str:
    """The first Python block of docs/guides/plugins.md: the complete example plugin module."""
    doc = (ROOT / "docs" / "guides" / "plugins.md").read_text()
    match = re.search(r"```python\n(.*?)```", doc, flags=re.S)
    assert match is not None
    return match.group(1)


def test_group_name_is_the_documented_one() -> None:
    assert ENTRY_POINT_GROUP == GROUP


def test_unknown_provider_lists_the_presets(plugins: Callable[..., None]) -> None:
    with pytest.raises(ConfigError) as info:
        AsyncClient(provider="no-such-llm")
    message = str(info.value)
    assert "'no-such-llm'" in message
    for name in preset_names():
        assert name in message
    assert GROUP in message


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("opnai", "openai"),
        ("OpenAI", "openai"),
        ("open-ai", "openai"),
        ("antropic", "anthropic"),
        ("gemni", "gemini"),
        ("olama", "ollama"),
        ("deepsek", "deepseek"),
        ("mock ", "mock"),
    ],
)
def test_a_misspelt_provider_gets_a_suggestion_first(
    plugins: Callable[..., None], typed: str, meant: str
) -> None:
    for build in (lambda: AsyncClient(provider=typed), lambda: get_provider(typed)):
        with pytest.raises(ConfigError) as info:
            build()
        message = str(info.value)
        assert message.startswith(f"unknown provider {typed!r} (did you mean {meant!r}?); ")
        assert "built-in presets are: anthropic, azure," in message  # the list still follows


@pytest.mark.parametrize("typed", ["no-such-llm", "x", "completely-different"])
def test_a_name_close_to_nothing_gets_no_suggestion(
    plugins: Callable[..., None], typed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        get_provider(typed)
    assert "did you mean" not in str(info.value)


def test_a_misspelt_plugin_name_is_suggested_too(plugins: Callable[..., None]) -> None:
    plugins("acmecorp", "acme_missing")
    with pytest.raises(
        ConfigError, match=r"^unknown provider 'acmecrop' \(did you mean 'acmecorp'\?\)"
    ):
        AsyncClient(provider="acmecrop")


def test_unknown_provider_also_lists_installed_plugins(plugins: Callable[..., None]) -> None:
    plugins("acme", "acme_missing")
    plugins("zeta", "zeta_missing")
    assert plugin_names() == ["acme", "zeta"]
    with pytest.raises(ConfigError, match="installed plugins: acme, zeta"):
        get_provider("nope")


async def test_the_plugin_in_the_docs_loads_through_its_entry_point(
    plugins: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins("acme", "acme_llm", plugin_source_from_docs())
    monkeypatch.setenv("ACME_API_KEY", "acme-secret")
    recorder = Recorder()
    async with (
        httpx.AsyncClient(transport=recorder) as http,
        AsyncClient(provider="acme", http_client=http) as client,
    ):
        assert client.model == "acme-large"
        reply = await client.chat("hello plugin", model="mock-echo")
        async with client.stream("stream plugin", model="mock-echo") as stream:
            final = await stream.final()
    assert reply.text == "echo: hello plugin"
    assert reply.provider == "acme"
    assert final.text == "echo: stream plugin"
    request = recorder.requests[0]
    assert str(request.url) == "https://api.acme.example/v1/chat/completions"
    assert request.headers["x-acme-key"] == "acme-secret"
    assert "authorization" not in request.headers


def test_the_docs_plugin_names_its_key_when_missing(plugins: Callable[..., None]) -> None:
    plugins("acme", "acme_llm", plugin_source_from_docs())
    with pytest.raises(ConfigError, match="ACME_API_KEY"):
        AsyncClient(provider="acme")


PLUGIN_VARIANTS = """
from llmrelay.providers import Provider, openai

def _build():
    return Provider(name="variant", adapter=openai, base_url="https://variant.example/v1",
                    key_required=False)

provider_object = _build()

def make_provider():
    return _build()

provider = make_provider
"""


@pytest.mark.parametrize(
    "value",
    ["variants:provider_object", "variants:make_provider", "variants"],
    ids=["provider-object", "function", "module-with-provider"],
)
async def test_entry_point_targets(plugins: Callable[..., None], value: str) -> None:
    plugins("variant", value, PLUGIN_VARIANTS)
    provider = get_provider("variant")
    assert isinstance(provider, Provider)
    assert provider.base_url == "https://variant.example/v1"
    async with (
        httpx.AsyncClient(transport=MockTransport()) as http,
        AsyncClient(provider="variant", http_client=http) as client,
    ):
        reply = await client.chat("hi", model="mock-echo")
    assert reply.text == "echo: hi"


def test_a_plugin_that_fails_to_import_is_a_config_error(plugins: Callable[..., None]) -> None:
    plugins("broken", "broken_plugin", "raise RuntimeError('plugin exploded')\n")
    with pytest.raises(ConfigError, match=r"could not load entry point 'broken'.*plugin exploded"):
        get_provider("broken")


def test_a_plugin_that_gives_no_provider_is_a_config_error(plugins: Callable[..., None]) -> None:
    plugins("empty", "empty_plugin:thing", "thing = 42\n")
    with pytest.raises(ConfigError, match="does not give a Provider"):
        get_provider("empty")


def test_built_in_names_win_over_plugins(plugins: Callable[..., None]) -> None:
    plugins("openai", "impostor", "raise RuntimeError('must not be imported')\n")
    assert get_provider("openai").base_url == "https://api.openai.com/v1"


async def test_a_provider_object_needs_no_registration() -> None:
    provider = Provider(
        name="inline",
        adapter=openai_adapter,
        base_url="https://inline.example/v1",
        api_key_env=("INLINE_API_KEY",),
        default_model="mock-echo",
    )
    with pytest.raises(ConfigError, match="INLINE_API_KEY"):
        AsyncClient(provider=provider)
    async with (
        httpx.AsyncClient(transport=MockTransport()) as http,
        AsyncClient(provider=provider, api_key="k", http_client=http) as client,
    ):
        reply = await client.chat("inline")
    assert (reply.text, reply.provider) == ("echo: inline", "inline")


def test_examples_custom_provider_runs_offline(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(ROOT / "examples" / "custom_provider.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "chat:   'echo: Hello from a custom provider' via acme" in out
    assert "-> 'echo: Stream through Acme' [stop]" in out
    assert "mock-echo" in out.splitlines()[-1]


def test_every_preset_builds_with_its_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com")
    for name in preset_names():
        provider = get_provider(name)
        assert provider.name == name
        assert provider.base_url.startswith(("http://", "https://")), name
        for member in ("auth_headers", "build_chat", "parse_chat", "new_stream_parser"):
            assert callable(getattr(provider.adapter, member)), (name, member)


# -- for plugin authors: the public surface ------------------------------------------------------------------------


def test_a_provider_repr_hides_credentials() -> None:
    provider = Provider(
        name="acme",
        adapter=openai_adapter,
        base_url="https://user:hunter2@api.acme.example/v1?key=AIzaSecret",
        default_headers={"X-Acme-Key": "acme-secret", "Accept": "application/json"},
    )
    text = repr(provider)
    for secret in ("hunter2", "AIzaSecret", "acme-secret"):
        assert secret not in text
    assert "api.acme.example" in text and "application/json" in text
    assert "name='acme'" in text


def test_make_status_error_is_public_and_picks_the_subclass() -> None:
    error = make_status_error(529, "busy", provider="acme", code="overloaded_error")
    assert isinstance(error, llmrelay.OverloadedError)
    assert "acme returned 529" in str(error) and "busy" in str(error)
    assert "make_status_error" in llmrelay.providers.__all__


async def test_the_stream_parser_example_of_the_plugin_docs() -> None:
    doc = (ROOT / "docs" / "guides" / "plugins.md").read_text()
    section = doc.split("## Errors inside a stream", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match is not None
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "plugins.md", "exec"), namespace)

    class Adapter:
        request_id_header = "x-request-id"
        auth_headers = staticmethod(openai_adapter.auth_headers)
        build_chat = staticmethod(openai_adapter.build_chat)
        parse_error = staticmethod(openai_adapter.parse_error)

        @staticmethod
        def new_stream_parser(provider: Provider, request: ChatRequest) -> Any:
            return namespace["AcmeStreamParser"]()

    def handler(request: httpx.Request) -> httpx.Response:
        event = {"error": {"status": 529, "message": "busy", "type": "overloaded_error"}}
        body = f"data: {json.dumps(event)}\n\n".encode()
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    provider = Provider(
        name="acme", adapter=Adapter(), base_url="https://acme.example/v1", key_required=False
    )
    async with client_over(handler, provider=provider, model="m") as client:
        with pytest.raises(StreamError) as info:
            await client.stream("hi").final()
    cause = info.value.__cause__
    assert isinstance(cause, llmrelay.OverloadedError)
    assert (cause.status_code, cause.code, cause.provider) == (529, "overloaded_error", "acme")
    assert info.value.retryable
