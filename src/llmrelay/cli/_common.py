"""What every command shares: the global options, settings resolution, errors, the runner."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click
from rich.console import Console

from .._client import AsyncClient
from .._exceptions import ConfigError, LLMError
from .._logging import configure, configure_from_env
from .._profiles import Settings, resolve_settings

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

EXIT_FAILED = 1  # an API error, or prompts that failed
EXIT_USAGE = 2  # bad arguments or configuration: nothing was sent
EXIT_INTERRUPTED = 130


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
    click.option("--profile", help="Profile of llmrelay.toml to use."),
    click.option(
        "--config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Config file (default: ./llmrelay.toml, then the user config dir).",
    ),
    click.option(
        "--max-concurrency", type=click.IntRange(min=1), help="Requests in flight at most."
    ),
    click.option(
        "--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per call, in all."
    ),
    click.option("--max-retries", type=click.IntRange(min=0), help="Retries per request."),
    click.option("-v", "--verbose", count=True, help="Log requests: -v info, -vv debug."),
)
SHARED_NAMES = tuple(field.name for field in dataclasses.fields(Options))


def shared_options(func: F) -> F:
    """Add the global options to a command (or to the group)."""
    for decorator in reversed(_SHARED):
        func = decorator(func)
    return func


class State:
    """The options of one invocation, and the settings and clients they lead to."""

    def __init__(self, options: Options) -> None:
        self.options = options

    @classmethod
    def of(cls, ctx: click.Context, shared: dict[str, Any]) -> State:
        """The group's state updated with a command's own copy of the global options."""
        base = ctx.find_object(State)
        options = (base.options if base else Options()).merged(
            {name: shared.pop(name, None) for name in SHARED_NAMES}
        )
        setup_logging(options.verbose)
        return cls(options)

    def settings(self, **explicit: Any) -> Settings:
        o = self.options
        given: dict[str, Any] = {
            "provider": o.provider,
            "model": o.model,
            "base_url": o.base_url,
            "max_concurrency": o.max_concurrency,
            "timeout": o.timeout,
            "max_retries": o.max_retries,
        }
        given.update({k: v for k, v in explicit.items() if v is not None})
        return resolve_settings(o.profile, config_path=o.config, **given)

    def client(self, **explicit: Any) -> AsyncClient:
        return AsyncClient(**self.settings(**explicit).client_kwargs())


def setup_logging(verbose: int) -> None:
    if verbose >= 2:
        configure("debug")
    elif verbose == 1:
        configure("info")
    else:
        configure_from_env()


def load_dotenv_file() -> None:
    """Load ``./.env`` into the environment (existing variables win) when python-dotenv is
    installed; silently skip otherwise."""
    path = Path.cwd() / ".env"
    if not path.is_file():
        return
    try:
        from dotenv import load_dotenv
    except ImportError:
        return
    load_dotenv(path, override=False)


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


class CLIError(click.ClickException):
    """An error shown as ``Error: message`` with a chosen exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        # click declares exit_code as a class variable; this error's code is per instance.
        setattr(self, "exit_code", exit_code)  # noqa: B010


def explain(error: LLMError) -> CLIError:
    """A user-facing error for a library error (never holds a key: the library's messages
    never do)."""
    if isinstance(error, ConfigError):
        message = str(error)
        if "no API key" in message:
            message += "\nTry it offline first: llmrelay demo, or llmrelay -p mock ask 'hi'"
        return CLIError(message, EXIT_USAGE)
    return CLIError(f"{type(error).__name__}: {error}", EXIT_FAILED)


class Group(click.Group):
    """A click group that turns library errors and Ctrl-C into clean exits."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LLMError as exc:
            raise explain(exc) from None
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
