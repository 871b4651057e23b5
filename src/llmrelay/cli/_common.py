"""What every command shares: the global options, settings resolution, errors, the runner."""

from __future__ import annotations

import dataclasses
import io
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click
from rich.console import Console

from .._client import AsyncClient
from .._decoding import check_encodable, decode_text
from .._exceptions import APIConnectionError, ConfigError, LLMError
from .._logging import configure, configure_from_env, redact_url
from .._profiles import PROFILE_ENV, load_config
from .._settings import ClientConfig, resolve_profile_config
from .._stream import ChatStream
from .._types import ChatResponse

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

EXIT_FAILED = 1  # an API error, or prompts that failed
EXIT_USAGE = 2  # bad arguments or configuration: nothing was sent
EXIT_INTERRUPTED = 130

STDIN_HINT = "convert it first, e.g. with iconv -f latin1 -t utf-8"
ARGUMENT_HINT = "the terminal and the locale disagree on the encoding (a UTF-8 locale fixes it)"


@dataclasses.dataclass(slots=True, kw_only=True)
class Options:
    """The global options. Each may be given before or after the command name
    (``llmrelay -p mock ask hi`` or ``llmrelay ask -p mock hi``); after wins."""

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    profile: str | None = None
    config: Path | None = None
    max_concurrency: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    verbose: int = 0

    def merged(self, later: dict[str, Any]) -> Options:
        changes = {k: v for k, v in later.items() if v is not None and k != "verbose"}
        verbose = self.verbose + int(later.get("verbose") or 0)
        return dataclasses.replace(self, **changes, verbose=verbose)


_SHARED = (
    click.option("-p", "--provider", help="Provider preset (openai, anthropic, mock, ...)."),
    click.option("-m", "--model", help="Model name."),
    click.option("--base-url", help="Base URL of the API (overrides the preset's)."),
    click.option("--profile", help="Profile of the config file to use."),
    click.option(
        "--config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Config file: TOML, or YAML if named *.yaml or *.yml (default: llmrelay.toml "
        "or llmrelay.yaml here, else in the user config dir).",
    ),
    click.option(
        "--max-concurrency", type=click.IntRange(min=1), help="Requests in flight at most."
    ),
    click.option(
        "--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per call, in all."
    ),
    click.option("--max-retries", type=click.IntRange(min=0), help="Retries per request."),
    click.option("-v", "--verbose", count=True, help="Log retries (-v) or every attempt (-vv)."),
)
SHARED_NAMES = tuple(field.name for field in dataclasses.fields(Options))


def shared_options(func: F) -> F:
    """Add the global options to a command (or to the group)."""
    for decorator in reversed(_SHARED):
        func = decorator(func)
    return func


class State:
    """The options of one invocation, and the settings and clients they lead to."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.base_url: str | None = None  # of the last client built, for error messages

    @classmethod
    def of(cls, ctx: click.Context, shared: dict[str, Any]) -> State:
        """The invocation's state, updated with a command's own copy of the global options."""
        state = ctx.ensure_object(State)
        state.options = state.options.merged(
            {name: shared.pop(name, None) for name in SHARED_NAMES}
        )
        setup_logging(state.options.verbose)
        return state

    def config(self, **explicit: Any) -> ClientConfig:
        """The client settings: these options (and a command's own `explicit` ones) over the
        environment, the profile and the preset, resolved as `AsyncClient.from_profile` does."""
        o = self.options
        if o.config is not None and o.profile is None and not os.environ.get(PROFILE_ENV):
            # Without a profile to take settings from, the file given would be read and
            # otherwise ignored.
            found = load_config(o.config)
            if found.default_profile is None:
                known = ", ".join(sorted(found.profiles)) or "none"
                raise CLIError(
                    f"--config {found.label}: no profile chosen: give --profile NAME, set "
                    f"{PROFILE_ENV}, or set default_profile in the file (profiles: {known})",
                    EXIT_USAGE,
                )
        given: dict[str, Any] = {
            "provider": o.provider,
            "model": o.model,
            "base_url": o.base_url,
            "max_concurrency": o.max_concurrency,
            "timeout": o.timeout,
            "max_retries": o.max_retries,
            **explicit,
        }
        return resolve_profile_config(o.profile, config_path=o.config, **given)

    def client(self) -> AsyncClient:
        client = AsyncClient._from_config(self.config())
        self.base_url = client.base_url
        return client


def setup_logging(verbose: int) -> None:
    if verbose >= 2:
        configure("debug")
    elif verbose == 1:
        configure("info")
    else:
        configure_from_env()


def load_dotenv_file() -> None:
    """Load ``./.env`` into the environment (existing variables win) when python-dotenv is
    installed; silently skip otherwise. The file is decoded here (python-dotenv would raise a
    bare UnicodeDecodeError on a Latin-1 file): a bad byte is a usage error naming it."""
    path = Path.cwd() / ".env"
    if not path.is_file():
        return
    try:
        from dotenv import load_dotenv
    except ImportError:
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CLIError(f".env: cannot read the file: {exc.strerror or exc}", EXIT_USAGE) from None
    text = decode_text(data, ".env", hint="save the file as UTF-8")
    load_dotenv(stream=io.StringIO(text), override=False)


def read_stdin() -> str:
    """All of stdin as text, decoded with its encoding (the locale's; UTF-8 mostly) strictly:
    a byte it cannot read is a usage error naming stdin, the line and the byte offset, not a
    traceback when the text is sent."""
    stdin = sys.stdin  # CliRunner swaps it too
    raw = getattr(stdin, "buffer", None)
    encoding = stdin.encoding or "utf-8"
    if raw is None:  # a text-only replacement: it decoded already, maybe with surrogateescape
        return check_encodable(
            stdin.read(), "stdin", encoding=encoding, hint=STDIN_HINT, lines=True
        )
    return decode_text(raw.read(), "stdin", encoding=encoding, hint=STDIN_HINT)


class StdinLines:
    """Stdin read one line at a time (for ``chat`` from a file or a pipe), each decoded strictly
    like `read_stdin`, with the line number and byte offset counted for error messages."""

    def __init__(self) -> None:
        self._stdin = sys.stdin
        self._encoding = self._stdin.encoding or "utf-8"
        self._line = 0
        self._offset = 0

    def readline(self) -> str | None:
        """The next line without its line ending, or `None` at the end of the input."""
        raw = getattr(self._stdin, "buffer", None)
        data: str | bytes = self._stdin.readline() if raw is None else raw.readline()
        if not data:
            return None
        self._line += 1
        if isinstance(data, str):  # a text-only replacement, as in `read_stdin`
            where = f"stdin: line {self._line}"
            text = check_encodable(data, where, encoding=self._encoding, hint=STDIN_HINT)
        else:
            start, self._offset = self._offset, self._offset + len(data)
            text = decode_text(
                data,
                "stdin",
                encoding=self._encoding,
                hint=STDIN_HINT,
                line=self._line,
                offset=start,
            )
        return text.rstrip("\r\n")


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def run(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run an async function on a fresh asyncio event loop."""
    return anyio.run(func, *args, backend="asyncio")


def write_out(text: str) -> None:
    """Write to stdout at once (streamed text must appear as it arrives)."""
    stream = sys.stdout
    stream.write(text)
    stream.flush()


async def stream_to_stdout(stream: ChatStream, prefix: str = "") -> ChatResponse:
    """Write a reply's text to stdout as it arrives, and return the whole reply.

    `prefix` goes just before the first text (an empty reply shows it alone). The line is
    ended unless the reply ended it, also when the stream fails part way, so what is printed
    next starts on a line of its own. Not when it is cancelled (Ctrl-C): the terminal has
    echoed ``^C`` on the line, and whoever reports the interruption ends it.
    """
    line_open = False
    try:
        async with stream:
            async for chunk in stream:
                if chunk.text:
                    write_out(prefix + chunk.text)
                    prefix = ""
                    line_open = not chunk.text.endswith("\n")
            reply = await stream.final()
        if prefix:
            write_out(prefix)
            line_open = True
        return reply
    except anyio.get_cancelled_exc_class():
        line_open = False
        raise
    finally:
        if line_open:
            write_out("\n")


class CLIError(click.ClickException):
    """An error shown as ``Error: message`` with a chosen exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        # click declares exit_code as a class variable; this error's code is per instance.
        setattr(self, "exit_code", exit_code)  # noqa: B010


def explain(error: LLMError, base_url: str | None = None) -> CLIError:
    """A user-facing error for a library error (never holds a key: the library's messages
    never do). A connection error names the `base_url` it could not reach."""
    if isinstance(error, ConfigError):
        message = str(error)
        if "no API key" in message:
            message += "\nTry it offline first: llmrelay demo, or llmrelay -p mock ask 'hi'"
        return CLIError(message, EXIT_USAGE)
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, APIConnectionError) and base_url:
        message += f"\n(base URL {redact_url(base_url)}; --base-url sets another)"
    return CLIError(message, EXIT_FAILED)


def option_flags(ctx: click.Context, name: str) -> str:
    """How the help shows option `name` of `ctx`'s command: ``-p/--provider``."""
    for param in ctx.command.params:
        if param.name == name:
            return "/".join(param.opts)
    return name


def check_arguments(ctx: click.Context) -> None:
    """Every text option and argument of `ctx` as it came from the command line: Python decodes
    argv with the locale's encoding and keeps a byte it cannot read as a lone surrogate, which
    fails only when the text is sent. Here it is a usage error naming the argument and the
    byte. Paths (`pathlib.Path` values) are not text: any bytes make a file name."""
    encoding = sys.getfilesystemencoding()
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if isinstance(param, click.Argument):
            label = f"argument {param.human_readable_name}"
        else:
            label = f"option {'/'.join(param.opts)}"
        items = value if isinstance(value, tuple | dict) else (value,)
        for item in items:
            if isinstance(item, str):
                check_encodable(item, label, encoding=encoding, hint=ARGUMENT_HINT)


class Command(click.Command):
    """A command whose text arguments are checked before it runs (`check_arguments`)."""

    def invoke(self, ctx: click.Context) -> Any:
        check_arguments(ctx)
        return super().invoke(ctx)


class Group(click.Group):
    """A click group that checks its text arguments, and turns library errors and Ctrl-C
    into clean exits. Its commands and sub-groups are `Command`s and `Group`s."""

    command_class = Command
    group_class = type  # sub-groups are of this class too

    def invoke(self, ctx: click.Context) -> Any:
        try:
            check_arguments(ctx)
            return super().invoke(ctx)
        except LLMError as exc:
            state = ctx.find_object(State)
            raise explain(exc, state.base_url if state else None) from None
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)


def reject_unused_global_options(ctx: click.Context, options: Options) -> None:
    """Global options given before a command that has no use for them (``llmrelay -p openai
    demo``, ``llmrelay --base-url URL mock serve``) are a usage error, not silently dropped. A
    command takes a global option when it has a parameter of the same name."""
    name = ctx.invoked_subcommand
    group = ctx.command
    command = group.get_command(ctx, name) if name and isinstance(group, click.Group) else None
    if command is None:
        return
    takes = {param.name for param in command.params}
    defaults = Options()
    given = [
        option_flags(ctx, field)
        for field in SHARED_NAMES
        if field not in takes and getattr(options, field) != getattr(defaults, field)
    ]
    if given:
        listed = given[0] if len(given) == 1 else f"{', '.join(given[:-1])} and {given[-1]}"
        verb = "does" if len(given) == 1 else "do"
        raise CLIError(
            f"{listed} {verb} not apply to 'llmrelay {name}' (see llmrelay {name} -h)", EXIT_USAGE
        )
