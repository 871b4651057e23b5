"""The pytest plugin: the `llmrelay_mock` fixture (a loopback mock server per test), used here
directly (tests/conftest.py loads the plugin) and, through pytester, as a user's project would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import llmrelay
from llmrelay import APIStatusError, RateLimitError, StreamError
from pytest_llmrelay._mock import LLMRelayMock

pytest_plugins = ("pytester",)
pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


async def test_chat_and_stream_over_loopback(llmrelay_mock: LLMRelayMock) -> None:
    assert llmrelay_mock.base_url.startswith("http://127.0.0.1:")
    assert llmrelay_mock.base_url.endswith("/v1")
    async with llmrelay_mock.client() as client:
        reply = await client.chat("hello")
        async with client.stream("one two three") as stream:
            texts = [chunk.text async for chunk in stream]
    assert reply.text == "echo: hello"
    assert "".join(texts) == "echo: one two three"
    assert [r.path for r in llmrelay_mock.requests] == ["/v1/chat/completions"] * 2
    assert llmrelay_mock.requests[0].json()["messages"] == [{"role": "user", "content": "hello"}]


async def test_a_retried_429_is_seen_by_the_server_twice(llmrelay_mock: LLMRelayMock) -> None:
    llmrelay_mock.inject("429", count=1)
    async with llmrelay_mock.client() as client:
        reply = await client.chat("hello")
    assert reply.text == "echo: hello"
    assert [r.fault for r in llmrelay_mock.requests] == ["429", None]
    assert client.usage.retries == 1


async def test_a_fault_on_every_request_until_cleared(llmrelay_mock: LLMRelayMock) -> None:
    llmrelay_mock.inject("503")
    async with llmrelay_mock.client(max_retries=1) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.chat("hello")
        assert caught.value.status_code == 503
        assert len(llmrelay_mock.requests) == 2  # the call and its one retry
        llmrelay_mock.clear_faults()
        assert (await client.chat("again")).text == "echo: again"


async def test_a_cut_stream_raises_with_the_text_so_far(llmrelay_mock: LLMRelayMock) -> None:
    llmrelay_mock.configure(chunks=4)
    llmrelay_mock.inject("reset;after=2")
    async with llmrelay_mock.client() as client:
        with pytest.raises(StreamError) as caught:
            async with client.stream("a b c d e f") as stream:
                async for _ in stream:
                    pass
    assert caught.value.partial  # two of the four deltas arrived before the cut
    assert "echo: a b c d e f".startswith(caught.value.partial)
    assert caught.value.partial != "echo: a b c d e f"


async def test_injections_queue_up_and_a_request_header_wins(llmrelay_mock: LLMRelayMock) -> None:
    llmrelay_mock.inject("500", count=1)
    llmrelay_mock.inject("429;retry-after=0", count=1)
    async with llmrelay_mock.client(max_retries=0) as client:
        with pytest.raises(llmrelay.InternalServerError):
            await client.chat("one")
        with pytest.raises(RateLimitError):
            await client.chat("two")
        llmrelay_mock.inject("500")
        with pytest.raises(RateLimitError):
            await client.chat("three", extra_headers={"x-mock-fault": "429"})
    assert [r.fault for r in llmrelay_mock.requests] == ["500", "429;retry-after=0", "429"]


def test_bad_fault_specs_and_options_fail_in_the_test(llmrelay_mock: LLMRelayMock) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        llmrelay_mock.inject("42O")
    with pytest.raises(ValueError, match="count"):
        llmrelay_mock.inject("500", count=0)
    with pytest.raises(ValueError, match="fault_rate"):
        llmrelay_mock.configure(fault_rate=2)


def test_state_from_an_earlier_test_is_gone(llmrelay_mock: LLMRelayMock) -> None:
    # Runs after the tests above in this module: their faults, options and requests are reset.
    assert llmrelay_mock.requests == []
    assert llmrelay_mock.engine.fault_rate == 0
    assert llmrelay_mock.engine.chunks is None
    with llmrelay_mock.sync_client() as client:
        assert client.chat("hi").text == "echo: hi"


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "openai"])
async def test_other_wire_formats_and_setenv(llmrelay_mock: LLMRelayMock, provider: str) -> None:
    llmrelay_mock.setenv()
    async with llmrelay.AsyncClient(provider=provider, model="mock-echo") as client:
        reply = await client.chat("hello")
    assert reply.text == "echo: hello"
    assert llmrelay_mock.requests[0].headers.get("x-mock-fault") is None


def test_importing_the_plugin_loads_neither_llmrelay_nor_httpx() -> None:
    code = (
        "import sys, pytest_llmrelay\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('llmrelay', 'httpx', 'httpcore', 'anyio', 'uvicorn'))\n"
        "print(heavy)\n"
    )
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_entry_point_is_declared_under_the_module_name() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"pytest_llmrelay": "pytest_llmrelay"}
    installed = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11")}
    if "pytest_llmrelay" not in installed:  # a source checkout on PYTHONPATH: metadata is older
        import os

        if os.environ.get("CI"):
            pytest.fail("llmrelay is installed without its pytest11 entry point")
        pytest.skip("the installed llmrelay metadata predates the entry point")
    assert installed["pytest_llmrelay"] == "pytest_llmrelay"


USER_TESTS = """
import httpx
import pytest
import respx

import llmrelay

pytestmark = pytest.mark.anyio


async def test_the_fixture(llmrelay_mock):
    llmrelay_mock.inject("429", count=1)
    async with llmrelay_mock.client() as client:
        assert (await client.chat("hi")).text == "echo: hi"
    assert len(llmrelay_mock.requests) == 2


async def test_respx_still_patches_the_default_client():
    with respx.mock(base_url="https://api.openai.com/v1") as router:
        router.post("/chat/completions").respond(
            json={"id": "x", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                  "message": {"role": "assistant", "content": "from respx"}}]}
        )
        async with llmrelay.AsyncClient(provider="openai", api_key="sk-test", model="m") as c:
            assert (await c.chat("hi")).text == "from respx"


def test_sync(llmrelay_mock):
    with llmrelay_mock.sync_client() as client:
        assert client.chat("sync").text == "echo: sync"
"""


def test_a_users_project_gets_the_fixture_and_keeps_respx(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in a project with llmrelay installed: the plugin by name, no conftest, no ini options.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_user=textwrap.dedent(USER_TESTS))
    result = pytester.runpytest("-p", "pytest_llmrelay", "-p", "anyio.pytest_plugin", "-v")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == outcomes.get("errors", 0) == 0, result.stdout.str()
    # anyio may run each async test on more than one backend: every name passes at least once.
    for name in ("test_the_fixture", "test_respx_still_patches_the_default_client", "test_sync"):
        result.stdout.fnmatch_lines([f"*::{name}* PASSED*"])
