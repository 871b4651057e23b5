"""Fixtures of the CLI tests: an isolated working directory and config dir, and a mock server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in an empty directory, with an empty user config dir, and leave the "llmrelay"
    logger as it was (`-v` and LLMRELAY_LOG install a handler)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("NO_COLOR", "1")
    logger = logging.getLogger("llmrelay")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """A real mock server on loopback for the whole module."""
    from llmrelay.mock import serve

    with serve() as url:
        yield url
