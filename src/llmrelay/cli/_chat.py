"""``llmrelay chat``: an interactive conversation that streams each reply as it arrives.

The REPL is synchronous (plain `input()`, with readline when available); each reply runs on one
long-lived asyncio loop (`asyncio.Runner`), so the client and its connections live across
turns. Ctrl-C during a reply cancels that reply only: the runner cancels the task, the stream
closes its connection, and the prompt comes back.

When stdin is not a terminal (``llmrelay chat < script.txt``) each line is a turn, and stdout
holds only the replies, one after another, with no ``you>`` or ``assistant>`` prompts.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass, field
from typing import Any

import click
from rich.markup import escape

from .._client import AsyncClient
from .._decoding import bad_byte_message, check_encodable
from .._exceptions import ConfigError, LLMError
from .._types import ChatResponse, MessageDict
from ._common import (
    STDIN_HINT,
    Command,
    State,
    StdinLines,
    explain,
    shared_options,
    stderr_console,
    stream_to_stdout,
)

TYPED = "stdin: that line"  # how errors name a line typed at the prompt
HELP = "/exit quits · /reset forgets the conversation · /model NAME switches model · Ctrl-C stops a reply"


@dataclass(slots=True)
class Conversation:
    """The turns so far (the system message, when given, stays across /reset)."""

    system: str | None = None
    turns: list[MessageDict] = field(default_factory=list)

    def messages(self, user_text: str) -> list[MessageDict]:
        head: list[MessageDict] = (
            [{"role": "system", "content": self.system}] if self.system else []
        )
        return [*head, *self.turns, {"role": "user", "content": user_text}]

    def add(self, user_text: str, reply: str) -> None:
        self.turns.append({"role": "user", "content": user_text})
        self.turns.append({"role": "assistant", "content": reply})


@click.command(cls=Command)
@click.option("-s", "--system", help="A system message for the whole conversation.")
@click.option("-t", "--temperature", type=click.FloatRange(0, 2), help="Sampling temperature.")
@shared_options
@click.pass_context
def chat(
    ctx: click.Context, /, system: str | None, temperature: float | None, **shared: Any
) -> None:
    """Chat interactively; replies stream as they arrive.

    Type /exit (or Ctrl-D) to quit, /reset to start over, /model NAME to switch model.
    Ctrl-C while a reply streams cancels that reply; the conversation goes on.
    """
    state = State.of(ctx, shared)
    client = state.client()  # configuration errors surface now, before the first prompt
    params = {"temperature": temperature} if temperature is not None else {}
    Repl(client, Conversation(system=system), params, verbose=state.options.verbose).run()


class Repl:
    def __init__(
        self,
        client: AsyncClient,
        conversation: Conversation,
        params: dict[str, Any],
        *,
        verbose: int = 0,
    ) -> None:
        self.verbose = verbose
        self.client = client
        self.conversation = conversation
        self.params = params
        self.model = client.model
        self.console = stderr_console()
        self.interactive = sys.stdin.isatty()
        self.lines = None if self.interactive else StdinLines()

    def run(self) -> None:
        if self.interactive:
            with contextlib.suppress(ImportError):  # no readline on Windows
                import readline  # noqa: F401  (line editing and history for input())
        self.console.print(
            f"[bold]llmrelay chat[/bold] · provider {self.client.provider.name} · "
            f"model {escape(self.model or '(none: use /model NAME)')}\n[dim]{HELP}[/dim]"
        )
        with asyncio.Runner() as runner:
            try:
                while self.step(runner):
                    pass
            finally:
                runner.run(self.client.aclose())

    def step(self, runner: asyncio.Runner) -> bool:
        """One prompt and its reply. Returns False when the session ends."""
        if self.lines is not None:  # a script: a line that is not text ends the session
            line = self.lines.readline()
            if line is None:
                return False
        else:
            try:
                line = self.typed_line()
            except EOFError:
                self.console.print()
                return False
            except KeyboardInterrupt:  # at the prompt: drop the line, like a shell
                self.console.print()
                return True
            except ConfigError as exc:  # typed in another encoding: say so, and go on
                self.console.print(f"[red]{escape(str(exc))}[/red]")
                return True
        text = line.strip()
        if not text:
            return True
        if text.startswith("/"):
            return self.command(text)
        if not self.model:
            self.console.print("[yellow]no model chosen: use /model NAME[/yellow]")
            return True
        try:
            reply = runner.run(self.reply(text))
        except KeyboardInterrupt:  # the line holds what came, then ^C: end it first
            self.console.print(
                "\n[yellow]reply cancelled[/yellow] [dim](not kept in the conversation)[/dim]"
            )
            return True
        except LLMError as exc:
            message = explain(exc, self.client.base_url).message
            self.console.print(f"[red]{escape(message)}[/red]")
            return True
        self.conversation.add(text, reply.text)
        if self.verbose and reply.usage is not None:
            self.console.print(
                f"[dim]↳ {reply.usage.prompt_tokens} prompt + "
                f"{reply.usage.completion_tokens} completion tokens[/dim]"
            )
        return True

    def typed_line(self) -> str:
        """A line typed at the prompt, decoded by the terminal's encoding (a byte it cannot
        read is a `ConfigError`, whether the decoder kept it as a surrogate or refused it)."""
        encoding = sys.stdin.encoding or "utf-8"
        try:
            line = input("you> ")
        except UnicodeDecodeError as exc:
            # From a terminal, input() decodes the line alone: the offset is the line's.
            byte = exc.object[exc.start]
            raise ConfigError(
                bad_byte_message(TYPED, byte, exc.start, exc.encoding, STDIN_HINT)
            ) from None
        return check_encodable(line, TYPED, encoding=encoding, hint=STDIN_HINT)

    def command(self, text: str) -> bool:
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        if name in ("/exit", "/quit", "/q"):
            return False
        if name == "/reset":
            self.conversation.turns.clear()
            self.console.print("[dim]conversation cleared[/dim]")
        elif name == "/model":
            self.model = arg or self.model
            self.console.print(f"[dim]model: {escape(self.model or '(none)')}[/dim]")
        elif name == "/help":
            self.console.print(f"[dim]{HELP}[/dim]")
        else:
            self.console.print(f"[yellow]unknown command {escape(name)}[/yellow] [dim]{HELP}[/dim]")
        return True

    async def reply(self, text: str) -> ChatResponse:
        """Stream one reply to stdout and return it."""
        stream = self.client.stream(
            self.conversation.messages(text), model=self.model, **self.params
        )
        return await stream_to_stdout(stream, prefix="assistant> " if self.interactive else "")
