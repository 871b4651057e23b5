"""Every `async def` test runs under anyio's pytest plugin (`anyio_mode = "auto"` in
pyproject.toml), on asyncio unless a module overrides the `anyio_backend` fixture, e.g. with
trio's MockClock for fake-time tests."""

from __future__ import annotations

import pytest

from _redis import redis_server  # noqa: F401 - a real redis-server on a loopback port

# The `llmrelay_mock` fixture. Installed, llmrelay registers it through its pytest11 entry point
# (same name, so this does not load it twice); listed here so that a source checkout on
# PYTHONPATH without the entry point's metadata has it too.
pytest_plugins = ["pytest_llmrelay"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's real keys, endpoints or proxies (a proxy from the
    environment would carry the loopback tests' requests)."""
    import os

    proxies = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    for name in list(os.environ):
        provider_var = name.endswith(("_API_KEY", "_BASE_URL", "_AUTH_TOKEN", "_ENDPOINT"))
        if provider_var or name.startswith("LLMRELAY_") or name.lower() in proxies:
            monkeypatch.delenv(name, raising=False)


ENGINES = ("httpx", "aiohttp", "reqwest")


@pytest.fixture(params=ENGINES)
def engine(
    request: pytest.FixtureRequest, _no_provider_env: None, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Runs a test once per HTTP engine: every client it makes without `http=` sends with that
    engine (through ``LLMRELAY_HTTP``, as a user would choose it). A module opts in with
    ``pytestmark = pytest.mark.usefixtures("engine")``."""
    name: str = request.param
    monkeypatch.setenv("LLMRELAY_HTTP", name)
    return name
