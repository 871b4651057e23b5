"""llmrelay's pytest plugin: the ``llmrelay_mock`` fixture, a loopback mock LLM server per test.

Installed with llmrelay (entry point ``pytest11``), so any test can ask for it::

    async def test_summary(llmrelay_mock):
        llmrelay_mock.inject("429", count=1)            # the first request gets a 429
        async with llmrelay_mock.client() as client:    # a ready AsyncClient on the server
            reply = await client.chat("hello")
        assert reply.text == "echo: hello"
        assert len(llmrelay_mock.requests) == 2         # the 429, then the retry

This module is imported by pytest at startup in every project that has llmrelay installed, so
it imports nothing of llmrelay (nor httpx): the server and the clients load when a test first
uses the fixture. See `pytest_llmrelay._mock.LLMRelayMock` for the fixture's API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._mock import LLMRelayMock, MockServer

__all__ = ["llmrelay_mock"]


@pytest.fixture(scope="session")
def _llmrelay_mock_server() -> Iterator[MockServer]:
    """One server for the whole session, started by the first test that uses it (~0.1 s)."""
    from ._mock import MockServer

    with MockServer.start() as server:
        yield server


@pytest.fixture
def llmrelay_mock(
    _llmrelay_mock_server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LLMRelayMock]:
    """The loopback mock LLM server (OpenAI, Anthropic and Gemini wire formats), fresh for this
    test: no faults, no recorded requests, attempt counters at zero."""
    from ._mock import LLMRelayMock

    mock = LLMRelayMock(_llmrelay_mock_server, monkeypatch)
    try:
        yield mock
    finally:
        _llmrelay_mock_server.reset()
