"""Logging: the "llmrelay" logger stays silent unless asked, LLMRELAY_LOG turns on readable lines,
and no key ever reaches a log line, whatever happens to the request."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import llmrelay
from llmrelay._logging import (
    configure,
    configure_from_env,
    get_logger,
    redact_headers,
    redact_url,
    scrub,
)

SECRET = "sk-live-VERY-SECRET-KEY-0123456789"


@pytest.fixture(autouse=True)
def _restore_logger() -> Iterator[None]:
    logger = logging.getLogger("llmrelay")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "Bearer sk-1"}, {"authorization": "***"}),
        ({"x-api-key": "k", "api-key": "k", "x-goog-api-key": "k"},
         {"x-api-key": "***", "api-key": "***", "x-goog-api-key": "***"}),
        ({"Cookie": "s=1", "X-Custom-Token": "t", "x-secret-thing": "s"},
         {"cookie": "***", "x-custom-token": "***", "x-secret-thing": "***"}),
        ({"Content-Type": "application/json", "idempotency-key": "abc"},
         {"content-type": "application/json", "idempotency-key": "abc"}),
        ([("Authorization", "x"), ("accept", "*/*")], {"authorization": "***", "accept": "*/*"}),
    ],
)  # fmt: skip
def test_redact_headers(headers: object, expected: dict[str, str]) -> None:
    assert redact_headers(headers) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://g.test/v1beta/models/m:generateContent?key=AIzaXYZ&alt=sse",
         "https://g.test/v1beta/models/m:generateContent?key=***&alt=sse"),
        ("https://x.test/a?api_key=1&token=2&Key=3&keep=4",
         "https://x.test/a?api_key=***&token=***&Key=***&keep=4"),
        ("https://user:pass@x.test/v1", "https://user:***@x.test/v1"),
        ("https://tokenonly@x.test/v1", "https://***@x.test/v1"),
        ("https://x.test/v1/chat/completions", "https://x.test/v1/chat/completions"),
        ("https://x.test/search?q=a%20key&page=2", "https://x.test/search?q=a%20key&page=2"),
    ],
)  # fmt: skip
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("headers: {'authorization': 'Bearer abc123secret'}", "abc123secret"),
        ('{"x-api-key": "plainsecret"}', "plainsecret"),
        ("GET /v1beta/models?key=AIzaSyA-1234567890abcdefghijklm&alt=sse", "AIzaSyA"),
        ("failed with key sk-proj-abcdefghijklmnop in it", "abcdefghijklmnop"),
        ("api-key=zzzsecret; next", "zzzsecret"),
    ],
)
def test_scrub_masks_credentials_in_free_text(text: str, hidden: str) -> None:
    assert hidden not in scrub(text)
    assert "***" in scrub(text)


def test_silent_by_default_with_a_null_handler() -> None:
    assert configure_from_env({}) is None
    assert configure_from_env({"LLMRELAY_LOG": "off"}) is None
    assert any(isinstance(h, logging.NullHandler) for h in get_logger().handlers)


def test_llmrelay_log_turns_on_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    handler = configure_from_env({"LLMRELAY_LOG": "DEBUG"})
    assert handler is not None and handler.level == logging.DEBUG
    configure_from_env({"LLMRELAY_LOG": "info"})  # replaces, never stacks
    logger = get_logger()
    assert sum(not isinstance(h, logging.NullHandler) for h in logger.handlers) == 1
    logger.info("hello %s", "there")
    logger.debug("not shown at info")
    err = capsys.readouterr().err
    assert err.endswith(" llmrelay INFO  hello there\n")
    assert "not shown" not in err


def test_a_bad_level_is_a_config_error() -> None:
    with pytest.raises(llmrelay.ConfigError, match="LLMRELAY_LOG must be one of debug, info"):
        configure_from_env({"LLMRELAY_LOG": "loud"})


def test_the_handler_scrubs_even_careless_messages(capsys: pytest.CaptureFixture[str]) -> None:
    configure("debug")
    get_logger().debug("sending headers %s", {"authorization": f"Bearer {SECRET}"})
    assert SECRET not in capsys.readouterr().err


async def test_no_key_in_any_log_line_at_debug(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    configure_from_env({"LLMRELAY_LOG": "debug"})
    caplog.set_level(logging.DEBUG)  # every logger, llmrelay's and httpx's, unformatted
    async with llmrelay.AsyncClient(
        provider="mock", api_key=SECRET, headers={"x-api-key": SECRET}, max_retries=1
    ) as client:
        await client.chat("ok")
        await client.chat("retried", extra_headers={"x-mock-fault": "429;retry-after=0;times=1"})
        with pytest.raises(llmrelay.InternalServerError):
            await client.chat("fails", extra_headers={"x-mock-fault": "500;retry-after=0"})
        with pytest.raises(llmrelay.APIConnectionError):
            await client.chat("reset", extra_headers={"x-mock-fault": "reset"}, max_retries=0)
        async for _ in client.stream("streamed"):
            pass
    err = capsys.readouterr().err
    assert SECRET not in err
    assert SECRET not in caplog.text
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    # One readable line per attempt: method, path, status, duration, attempt, request id.
    assert "llmrelay DEBUG POST /v1/chat/completions -> 200 in " in err
    assert "(attempt 1, request id req_mock_" in err
    assert "-> 429 in" in err and "(attempt 2, request id" in err
    # One line per retry decision, with its reason.
    lines = err.splitlines()
    assert any(
        " INFO  retrying POST /v1/chat/completions" in line and "status 429" in line
        for line in lines
    )
    assert any(" INFO  giving up" in line and "no retries left" in line for line in lines)
