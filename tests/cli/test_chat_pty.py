"""`llmrelay chat` in a real terminal (a pty driven by pexpect): a streamed reply, Ctrl-C in the
middle of one, and the session going on afterwards."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from ._helpers import subprocess_env

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

# A reply that sends two chunks ("echo: ", "one ") and then stalls for a minute.
SLOW_MODEL = "mock-echo+fault=stall-mid;seconds=60;after=2"


def spawn_chat(model: str, *options: str) -> Any:
    """`llmrelay chat` in a pseudo-terminal."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "llmrelay.cli", "-p", "mock", "-m", model, "chat", *options],
        env={**subprocess_env(), "TERM": "dumb"},
        encoding="utf-8",
        timeout=10,
        dimensions=(40, 200),
    )


def test_ctrl_c_cancels_the_reply_not_the_session() -> None:
    child = spawn_chat(SLOW_MODEL, "-v")
    try:
        child.expect_exact("you> ")
        child.sendline("one two three")
        child.expect_exact("echo: one ")  # streamed: the first chunks are on screen...
        child.sendintr()  # ...while the rest has not come: Ctrl-C
        child.expect_exact("reply cancelled")
        child.expect_exact("you> ")  # the session goes on

        child.sendline("/model mock-echo")
        child.expect_exact("model: mock-echo")
        child.expect_exact("you> ")
        child.sendline("hello again")
        child.expect_exact("echo: hello again")
        child.expect(r"↳ (\d+) prompt")
        first_tokens = int(child.match.group(1))
        child.expect_exact("you> ")
        child.sendline("and once more")
        child.expect_exact("echo: and once more")
        child.expect(r"↳ (\d+) prompt")
        assert int(child.match.group(1)) > first_tokens  # the conversation is kept

        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    # The cancelled turn was dropped: "hello again" was the conversation's first message,
    # so its prompt is only its own few tokens.
    assert first_tokens <= 3


def test_ctrl_c_before_the_first_word_leaves_a_clean_line() -> None:
    child = spawn_chat("mock-echo+fault=stall;seconds=60")
    try:
        child.expect_exact("you> ")
        child.sendline("never answered")
        child.expect_exact("never answered")  # the terminal's echo of the typed line
        child.sendintr()
        child.expect_exact("reply cancelled")
        assert "assistant>" not in child.before  # no prefix until a word arrives
        assert child.before.endswith("\n")  # the message starts a line of its own
        child.expect_exact("you> ")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_a_typed_line_in_another_encoding_is_named_and_the_session_goes_on(
    tmp_path: Path, locale: str
) -> None:
    # GNU readline drops a byte that is not valid in the locale before Python sees it; without
    # readline (a Python built without it), input() gets the byte: it must not end the session.
    (tmp_path / "readline.py").write_text("raise ImportError('no readline here')\n")
    env = subprocess_env(TERM="dumb", LC_ALL=locale)
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "llmrelay.cli", "-p", "mock", "chat"],
        env=env,
        encoding="utf-8",
        codec_errors="replace",  # the terminal echoes the Latin-1 byte back
        timeout=10,
        dimensions=(40, 200),
    )
    try:
        child.expect_exact("you> ")
        os.write(child.child_fd, b"caf\xe9\r")  # typed in a Latin-1 terminal
        child.expect_exact("stdin: that line: not valid UTF-8 (byte 0xe9 at offset 3)")
        child.expect_exact("you> ")  # the session goes on
        child.sendline("still here")
        child.expect_exact("echo: still here")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
