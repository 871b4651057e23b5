"""The ``llmrelay`` command group and its small commands: ``ask``, ``models``, ``mock serve``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from rich.markup import escape

from .. import __version__
from .._types import ChatResponse, MessageDict
from ._batch import batch
from ._chat import chat
from ._common import (
    EXIT_USAGE,
    CLIError,
    Group,
    Options,
    State,
    load_dotenv_file,
    read_stdin,
    reject_unused_global_options,
    run,
    setup_logging,
    shared_options,
    stderr_console,
    stream_to_stdout,
    write_out,
)
from ._demo import demo


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@shared_options
@click.version_option(__version__, prog_name="llmrelay")
@click.pass_context
def cli(ctx: click.Context, /, **shared: Any) -> None:
    """llmrelay: chat with, batch-process and test against LLM APIs.

    \b
    Start here (no key, no network):   llmrelay demo
    One question:                      llmrelay -p openai -m gpt-4o-mini ask "Hello"
    A conversation:                    llmrelay chat
    A file of prompts:                 llmrelay batch prompts.jsonl -o results.jsonl

    Settings come from options, then the environment (LLMRELAY_PROVIDER, LLMRELAY_MODEL,
    OPENAI_API_KEY...), then llmrelay.toml (or llmrelay.yaml) profiles. LLMRELAY_LOG=debug
    logs every request.
    """
    load_dotenv_file()
    options = Options(**shared)
    reject_unused_global_options(ctx, options)
    setup_logging(options.verbose)
    ctx.obj = State(options)


@cli.command()
@click.argument("prompt", nargs=-1)
@click.option("-s", "--system", help="A system message to send first.")
@click.option("-t", "--temperature", type=click.FloatRange(0, 2), help="Sampling temperature.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Longest reply, in tokens.")
@click.option("--no-stream", is_flag=True, help="Print the reply at the end, not as it arrives.")
@shared_options
@click.pass_context
def ask(
    ctx: click.Context,
    /,
    prompt: tuple[str, ...],
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    no_stream: bool,
    **shared: Any,
) -> None:
    """Ask one question and stream the reply to stdout.

    The prompt is the arguments (joined with spaces, so quotes are optional), or stdin when
    it is not a terminal (both: the arguments, a blank line, then stdin). A lone "-" reads
    stdin only. In a shell loop that reads its own stdin, add </dev/null.
    """
    state = State.of(ctx, shared)
    text = _read_prompt(" ".join(prompt) or None)
    messages: list[MessageDict] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})
    params = {"temperature": temperature, "max_tokens": max_tokens}
    run(_ask, state, messages, {k: v for k, v in params.items() if v is not None}, not no_stream)


def _read_prompt(prompt: str | None) -> str:
    if prompt == "-":  # stdin even from a terminal (ended by Ctrl-D)
        prompt, piped = None, read_stdin()
    else:
        piped = "" if sys.stdin.isatty() else read_stdin()
    parts = [part for part in (prompt, piped.strip("\n")) if part and part.strip()]
    if not parts:
        raise CLIError(
            "give a prompt: llmrelay ask 'your question' (or pipe it on stdin)", EXIT_USAGE
        )
    return "\n\n".join(parts)


async def _ask(
    state: State, messages: list[MessageDict], params: dict[str, Any], stream: bool
) -> None:
    started = time.perf_counter()
    async with state.client() as client:
        reply: ChatResponse
        if stream:
            reply = await stream_to_stdout(client.stream(messages, **params))
        else:
            reply = await client.chat(messages, **params)
            text = reply.text
            write_out(text + ("\n" if text and not text.endswith("\n") else ""))
    if state.options.verbose:
        usage = reply.usage
        tokens = f"{usage.prompt_tokens}+{usage.completion_tokens} tokens" if usage else "no usage"
        stderr_console().print(
            f"[dim]{escape(reply.model or client.model or '')} · {tokens} · finish {reply.finish_reason} · "
            f"{time.perf_counter() - started:.2f}s[/dim]"
        )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON objects instead of ids.")
@shared_options
@click.pass_context
def models(ctx: click.Context, /, as_json: bool, **shared: Any) -> None:
    """List the provider's models."""
    state = State.of(ctx, shared)

    async def fetch() -> None:
        async with state.client() as client:
            found = await client.models()
        for model in found:
            if as_json:
                record = {"id": model.id, "owned_by": model.owned_by, "created": model.created}
                write_out(json.dumps(record) + "\n")
            else:
                write_out(model.id + "\n")

    run(fetch)


@cli.group()
def mock() -> None:
    """The mock LLM server (OpenAI, Anthropic and Gemini wire formats)."""


@mock.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0: any free port).",
)
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of requests that fail with one of --fault.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="SPEC",
    help="A fault for --fault-rate (repeatable; default 429, 500, 503).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the fault draws.")
@click.option(
    "--chunk-delay",
    default=0.0,
    type=click.FloatRange(min=0),
    help="Seconds between streamed chunks.",
)
@click.option("--chunks", type=click.IntRange(min=1), help="Content chunks per stream.")
@click.option(
    "--batch-delay",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds a provider batch job runs before it ends.",
)
@click.option(
    "--batch-fault",
    metavar="SPEC",
    help="Every batch job's fault: expire[;done=N], fail, fail-items=I,J[;item-status=S].",
)
@click.option("--access-log/--no-access-log", default=True, help="Log each request.")
def mock_serve(
    host: str,
    port: int,
    fault_rate: float,
    faults: tuple[str, ...],
    seed: int,
    chunk_delay: float,
    chunks: int | None,
    batch_delay: float,
    batch_fault: str | None,
    access_log: bool,
) -> None:
    """Serve the mock engine over HTTP until Ctrl-C.

    \b
    Faults per request: the header  x-mock-fault: 429;retry-after=1;times=2
                        or a model like  mock-echo+fault=500;times=1
    Faults per server:  --fault-rate 0.1 --seed 7 (deterministic given the seed)
    """
    from ..mock import MOCK_MODELS, MockEngine
    from ..mock._server import MockASGIApp, bind_socket, make_server, socket_url

    options: dict[str, Any] = {"faults": faults} if faults else {}  # else the engine's
    try:
        engine = MockEngine(
            seed=seed,
            fault_rate=fault_rate,
            chunk_delay=chunk_delay,
            chunks=chunks,
            batch_delay=batch_delay,
            batch_fault=batch_fault,
            **options,
        )
    except ValueError as exc:  # a bad fault spec
        raise CLIError(str(exc), EXIT_USAGE) from None
    try:
        import uvicorn.config
    except ImportError:
        raise CLIError('the mock server needs uvicorn: pip install "llmrelay[cli]"') from None
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise CLIError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (try --port 0 for any free port)",
            EXIT_USAGE,
        ) from None
    url = socket_url(sock)
    fault_text = (
        f"{fault_rate:g} of requests fail with {', '.join(f.text for f in engine.faults)} "
        f"(seed {seed})"
        if fault_rate
        else "none server-wide"
    )
    console = stderr_console()
    console.print(f"[bold]llmrelay mock server[/bold] on {url}")
    console.print(f"  models: {', '.join(MOCK_MODELS)} · faults: {fault_text}")
    console.print("  per-request faults: header x-mock-fault: 429;retry-after=1;times=2")
    console.print(
        f"  provider batches end after {batch_delay:g} s; per job: header "
        "x-mock-batch: expire;done=N | fail | fail-items=I,J"
    )
    console.print(f"  try: llmrelay -p mock --base-url {url}/v1 ask 'Hello'")
    console.print("  Ctrl-C to stop.")
    sys.stderr.flush()
    server = make_server(
        MockASGIApp(engine),
        log_level="info",
        access_log=access_log,
        log_config=uvicorn.config.LOGGING_CONFIG,
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shut down cleanly, then re-raised the Ctrl-C
        console.print("mock server stopped")
    finally:
        sock.close()


cli.add_command(chat)
cli.add_command(batch)
cli.add_command(demo)
