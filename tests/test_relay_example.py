"""The web relay example (examples/relay/app.py) in a real headless Chromium, driven by
Playwright's Python API against the system's browser (never a downloaded one): both buttons,
text arriving in several steps, a tab closed mid-reply frees the upstream call and its slot
(seen on the server through its hooks-backed ``/status``), a provider's error on the page.

The app runs as it is documented, ``python examples/relay/app.py --port N``, on the mock, with
a small pause between chunks (``x-mock-chunk-delay``) and one concurrency slot. Skipped when
Chromium or Playwright is missing, unless ``CI`` is set: then it fails.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "relay" / "app.py"
CHROMIUM = os.environ.get("LLMRELAY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",  # the page is on 127.0.0.1
]
CHUNK_DELAY = 0.05  # seconds between the mock's chunks
WAIT_MS = 10_000  # the most any step may take; each test takes well under a few seconds
LONG_PROMPT = " ".join(f"word{i}" for i in range(200))  # about 10 s of reply at CHUNK_DELAY


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (required when CI is set)")
    pytest.skip(what)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Relay:
    def __init__(self, port: int, process: subprocess.Popen[bytes]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = process

    def status(self) -> dict[str, int]:
        data: dict[str, int] = httpx.get(self.url + "/status", trust_env=False).json()
        return data

    def wait_status(self, **expected: int) -> dict[str, int]:
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            status = self.status()
            if all(status[k] == v for k, v in expected.items()) or time.monotonic() > deadline:
                return status
            time.sleep(0.02)


@pytest.fixture(scope="module")
def relay() -> Iterator[Relay]:
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LLMRELAY_") and not k.endswith("_API_KEY") and "proxy" not in k.lower()
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    command = [sys.executable, str(APP), "--port", str(port), "--max-concurrency", "1"]
    command += ["--header", f"x-mock-chunk-delay:{CHUNK_DELAY}"]
    process = subprocess.Popen(command, env=env, cwd=tempfile.gettempdir())
    server = Relay(port, process)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                server.status()
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the relay example did not start") from None
                time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _missing(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed")
    with (
        tempfile.TemporaryDirectory(prefix="llmrelay-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: Any, relay: Relay) -> Iterator[Any]:
    tab = browser_context.new_page()
    tab.goto(relay.url + "/")
    # Every text the output shows, in order: proof that the reply arrives in steps.
    tab.evaluate(
        """() => {
            const output = document.getElementById("output");
            window.seen = [];
            new MutationObserver(() => window.seen.push(output.textContent))
                .observe(output, {childList: true, characterData: true, subtree: true});
        }"""
    )
    yield tab
    if not tab.is_closed():
        tab.close()


def send(page: Any, button: str, prompt: str, model: str = "") -> None:
    page.fill("#prompt", prompt)
    page.fill("#model", model)
    page.click(button)


def wait_done(page: Any) -> str:
    page.wait_for_selector('#output[data-done="1"]', state="attached")
    text: str = page.text_content("#output")
    return text


@pytest.mark.parametrize("button", ["#send-sse", "#send-ws"])
def test_a_reply_streams_into_the_page_in_steps(page: Any, relay: Relay, button: str) -> None:
    before = relay.status()
    send(page, button, "one two three four five six")
    assert page.get_attribute("#output", "data-done") == "0"  # reset at the send
    assert wait_done(page) == "echo: one two three four five six"
    seen = page.evaluate("window.seen")
    growing = [text for text in dict.fromkeys(seen) if text]
    assert len(growing) >= 4, seen  # several steps, each longer than the last
    assert all(b.startswith(a) for a, b in itertools.pairwise(growing))
    after = relay.wait_status(in_flight=0, completed=before["completed"] + 1)
    assert after["completed"] == before["completed"] + 1


def test_each_send_resets_the_output(page: Any) -> None:
    send(page, "#send-ws", "first")
    assert wait_done(page) == "echo: first"
    send(page, "#send-sse", "second")
    assert page.get_attribute("#output", "data-done") == "0"
    assert wait_done(page) == "echo: second"


@pytest.mark.parametrize(
    ("button", "model"),
    [
        ("#send-sse", ""),
        ("#send-ws", ""),
        # The model is still "thinking" (nothing sent yet): only watching the browser's side
        # of the connection can tell that it left.
        ("#send-sse", "mock-echo+fault=stall;seconds=30"),
        ("#send-ws", "mock-echo+fault=stall;seconds=30"),
    ],
)
def test_a_tab_closed_mid_reply_cancels_the_upstream_call_and_frees_its_slot(
    page: Any, browser_context: Any, relay: Relay, button: str, model: str
) -> None:
    before = relay.status()
    send(page, button, LONG_PROMPT, model=model)
    if model:
        assert relay.wait_status(in_flight=1)["in_flight"] == 1
    else:
        page.wait_for_function("document.getElementById('output').textContent.length > 20")
        assert relay.status()["in_flight"] == 1
    page.close()
    after = relay.wait_status(in_flight=0, cancelled=before["cancelled"] + 1)
    assert after["in_flight"] == 0 and after["cancelled"] == before["cancelled"] + 1
    # The relay has one concurrency slot: a new reply can only stream if it was given back.
    other = browser_context.new_page()
    try:
        other.goto(relay.url + "/")
        send(other, "#send-sse", "still served")
        assert wait_done(other) == "echo: still served"
    finally:
        other.close()


@pytest.mark.parametrize(
    ("button", "model", "shown"),
    [
        ("#send-sse", "mock-echo+fault=400", "BadRequestError: mock returned 400"),
        ("#send-ws", "mock-echo+fault=401", "AuthenticationError: mock returned 401"),
        ("#send-ws", "mock-echo+fault=error-event;after=2", "StreamError: mock stream failed"),
        ("#send-sse", "mock-echo+fault=error-event;after=2", "StreamError: mock stream failed"),
    ],
)
def test_a_provider_error_reaches_the_page(
    page: Any, relay: Relay, button: str, model: str, shown: str
) -> None:
    send(page, button, "one two three four five", model=model)
    text = wait_done(page)
    assert shown in text
    assert "error" in (page.get_attribute("#output", "class") or "")
    if "after=2" in model:  # the text that came before the error stays
        assert text.startswith("echo: one")


def test_status_is_json(relay: Relay) -> None:
    status = relay.status()
    assert set(status) == {"in_flight", "completed", "failed", "cancelled"}
    assert json.dumps(status)
