"""A web relay: a FastAPI app that streams a model's reply to a web page, token by token, over
Server-Sent Events (``/sse``) or a WebSocket (``/ws``). Offline by default (the mock provider).

    pip install 'llmrelay[relay]'
    python examples/relay/app.py --port 8000            # then open http://127.0.0.1:8000
    LLMRELAY_PROVIDER=openai OPENAI_API_KEY=... LLMRELAY_MODEL=gpt-4o-mini python examples/relay/app.py

What it shows:

- one `AsyncClient` for the app's whole life (the lifespan), shared by every request: one
  connection pool and one concurrency limit (``--max-concurrency``) for all the browsers;
- when a browser goes away mid-reply (tab closed, network gone), the upstream stream is
  cancelled at once, even while the model is still thinking, and its concurrency slot is free
  for the next caller;
- a provider's error reaches the page as a message, never as a blank;
- `llmrelay.Hooks` counting the calls in flight; ``GET /status`` shows the counts.

The page's model box is there to try the mock's faults (``mock-echo+fault=429``); a relay open
to the public should not let a browser choose any model: drop it, or check it against a list.

Settings are the usual ones: ``--provider``/``--model`` (or ``LLMRELAY_PROVIDER`` /
``LLMRELAY_MODEL``, or ``--profile`` of ``llmrelay.toml``), the provider's key variable; with
none of them, the mock provider.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

import llmrelay

PAGE = Path(__file__).with_name("index.html")


class Calls:
    """Hooks that count the relay's calls: in flight now, and how the others ended."""

    def __init__(self) -> None:
        self.in_flight = self.completed = self.failed = self.cancelled = 0

    def hooks(self) -> llmrelay.Hooks:
        return llmrelay.Hooks(
            on_request=self._started, on_response=self._completed, on_error=self._failed
        )

    def _started(self, event: llmrelay.RequestEvent) -> None:
        self.in_flight += 1

    def _completed(self, event: llmrelay.ResponseEvent) -> None:
        self.in_flight -= 1
        self.completed += 1

    def _failed(self, event: llmrelay.ErrorEvent) -> None:
        self.in_flight -= 1
        if event.error is None:  # cancelled: the browser went away
            self.cancelled += 1
        else:
            self.failed += 1


async def replies(
    client: llmrelay.AsyncClient, prompt: str, model: str | None
) -> AsyncIterator[dict[str, Any]]:
    """The messages of one reply, as the page reads them: ``{"text"}`` for each piece, then
    ``{"done", "usage"}``, or ``{"error", "message"}`` (also after some text)."""
    if not prompt.strip():
        yield {"error": "ConfigError", "message": "the prompt is empty"}
        return
    try:
        # `async with`: however this generator ends (the browser gone included), the upstream
        # stream is closed and its concurrency slot given back.
        async with client.stream(prompt, model=model or None) as stream:
            async for chunk in stream:
                if chunk.text:
                    yield {"text": chunk.text}
            final = await stream.final()
    except llmrelay.LLMError as exc:  # the message names the provider, never the key
        yield {"error": type(exc).__name__, "message": str(exc)}
        return
    usage = final.usage
    yield {"done": True, "usage": None if usage is None else usage.total_tokens}


class EventStream(StreamingResponse):
    """A streamed response that always watches for the browser leaving, even while nothing is
    being sent (a model still thinking): Starlette's own does so only under servers that speak
    ASGI spec 2.3 (uvicorn today), and otherwise notices at the next write."""

    media_type = "text/event-stream"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def respond() -> None:
                    with suppress(OSError):  # the browser left between two writes
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(respond)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()
        finally:  # cancelled between two events: close the generator (and the stream) now
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]


def create_app(
    *,
    provider: str | None = None,
    model: str | None = None,
    profile: str | None = None,
    max_concurrency: int = 16,
    headers: dict[str, str] | None = None,
) -> FastAPI:
    calls = Calls()
    settings: dict[str, Any] = {"max_concurrency": max_concurrency, "hooks": calls.hooks()}
    if not (provider or profile or os.environ.get("LLMRELAY_PROVIDER")):
        provider = "mock"  # offline unless told otherwise
    for name, value in (("provider", provider), ("model", model), ("headers", headers)):
        if value:
            settings[name] = value

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One client for the app's lifetime: built (and its settings checked) at startup,
        # closed at shutdown.
        async with llmrelay.AsyncClient.from_profile(profile, **settings) as client:
            app.state.client = client
            yield

    app = FastAPI(title="llmrelay web relay", lifespan=lifespan)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/status")
    async def status() -> JSONResponse:
        return JSONResponse(
            {
                "in_flight": calls.in_flight,
                "completed": calls.completed,
                "failed": calls.failed,
                "cancelled": calls.cancelled,
            }
        )

    @app.get("/sse")
    async def sse(request: Request, prompt: str = "", model: str = "") -> EventStream:
        client: llmrelay.AsyncClient = request.app.state.client

        async def events() -> AsyncIterator[str]:
            async with aclosing(replies(client, prompt, model)) as messages:
                async for message in messages:
                    yield f"data: {json.dumps(message)}\n\n"

        # no-cache and no proxy buffering: each event reaches the page as it is written
        return EventStream(
            events(), headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
        )

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        client: llmrelay.AsyncClient = websocket.app.state.client
        await websocket.accept()
        gone = False
        try:
            while not gone:
                asked = await websocket.receive_json()  # {"prompt": ..., "model": ...}
                async with anyio.create_task_group() as group:

                    async def watch() -> None:
                        # The browser may leave while the model is still thinking: notice it
                        # now, not at the next write. One reply at a time: messages sent
                        # meanwhile are dropped.
                        nonlocal gone
                        while (await websocket.receive())["type"] != "websocket.disconnect":
                            pass
                        gone = True
                        group.cancel_scope.cancel()

                    group.start_soon(watch)
                    prompt, model = str(asked.get("prompt", "")), str(asked.get("model") or "")
                    async with aclosing(replies(client, prompt, model)) as messages:
                        async for message in messages:
                            await websocket.send_json(message)
                    group.cancel_scope.cancel()
        except WebSocketDisconnect:
            pass

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--provider", help="provider preset (default: the settings, else mock)")
    parser.add_argument("--model", help="model (default: the settings, else the preset's)")
    parser.add_argument("--profile", help="a profile of llmrelay.toml")
    parser.add_argument("--max-concurrency", type=int, default=16, help="upstream calls at once")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a header for every upstream request (repeatable), e.g. x-mock-chunk-delay:0.05",
    )
    args = parser.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    app = create_app(
        provider=args.provider,
        model=args.model,
        profile=args.profile,
        max_concurrency=args.max_concurrency,
        headers=headers,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
