"""`llmrelay chat` in a real terminal (a pty driven by pexpect): a streamed reply, Ctrl-C in the
middle of one, and the session going on afterwards."""

from __future__ import annotations

import sys

import pytest

from ._helpers import subprocess_env

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

# A reply that sends two chunks ("echo: ", "one ") and then stalls for a minute.
SLOW_MODEL = "mock-echo+fault=stall-mid;seconds=60;after=2"


def test_ctrl_c_cancels_the_reply_not_the_session() -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "llmrelay.cli", "-p", "mock", "-m", SLOW_MODEL, "chat", "-v"],
        env={**subprocess_env(), "TERM": "dumb"},
        encoding="utf-8",
        timeout=10,
        dimensions=(40, 200),
    )
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
