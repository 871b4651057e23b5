"""The embedded mock LLM provider: one pure deterministic engine, several faces.

`MockEngine` answers HTTP requests in the OpenAI, Anthropic and Gemini wire formats with an echo
model (reply = ``"echo: "`` + the last user message's text). `MockTransport` serves it in process
to `httpx` (no sockets)::

    transport = MockTransport(MockEngine(seed=7, fault_rate=0.1))
    async with httpx.AsyncClient(transport=transport, base_url="http://mock/v1") as http:
        reply = await http.post("/chat/completions", json={"model": "mock-echo", "messages": m})

Routes (any base-URL prefix works, e.g. ``/v1``, ``/openai/v1``, ``/v1beta``):

- OpenAI: ``POST …/chat/completions`` (``stream``, ``stream_options.include_usage``),
  ``POST …/embeddings`` (``dimensions``, ``encoding_format``), ``GET …/models``; Azure's
  ``…/deployments/{name}/chat/completions`` takes the model from the deployment name.
- Anthropic: ``POST …/messages`` (``stream``), ``POST …/messages/count_tokens``.
- Gemini: ``POST …/models/{model}:generateContent | :streamGenerateContent`` (SSE with
  ``?alt=sse``, else one JSON array), ``:embedContent``, ``:batchEmbedContents``, ``:countTokens``.
- Batch APIs (see `llmrelay.mock._batches`): OpenAI ``…/files`` (multipart upload, ``GET
  …/files/{id}[/content]``) and ``…/batches[/{id}[/cancel]]``; Anthropic
  ``…/messages/batches[/{id}[/cancel|/results]]``; Gemini ``…/models/{m}:batchGenerateContent``,
  ``GET …/batches/{id}``, ``POST …/batches/{id}:cancel``. Jobs end after ``batch_delay``
  seconds; ``x-mock-batch: expire;done=N | fail | fail-items=I,J;item-status=S | delay=S``.
- ``GET …/models`` answers in Anthropic's shape when the request has an ``anthropic-version`` or
  ``x-api-key`` header, in Gemini's when it has ``x-goog-api-key``, a ``key`` query parameter or a
  ``/v1beta`` path, else in OpenAI's. The same hint picks the shape of a 404 for unknown routes.

Token counts: prompt tokens = ceil(characters of all message texts / 4), at least 1; completion
tokens = word pieces of the reply (words with their trailing spaces). A stream sends one content
delta per piece; ``max_tokens`` (``max_completion_tokens``, ``generationConfig.maxOutputTokens``)
keeps that many pieces and finishes with ``length`` / ``max_tokens`` / ``MAX_TOKENS``.

Request headers:

- ``x-mock-chunks: N`` (or ``MockEngine(chunks=N)``; 1 to 10000): exactly N content deltas,
  concatenating to the same reply: whole pieces grouped evenly while N <= pieces, then even
  character slices, and beyond the reply's length one character per delta followed by empty
  deltas. Token counts do not change.
- ``x-mock-chunk-delay: SECONDS`` (or ``chunk_delay=``): a pause between content deltas.
- ``x-mock-fault: SPEC``: inject a fault (below). ``idempotency-key`` names the logical request
  for ``times=N``; without it, the logical request is the hash of method, path and body.

Fault spec: ``KIND[;OPTION=VALUE]...``. Kinds:

- ``429``, ``500``, ``503``, ``529``… (any 400-599): that status with the family's error body
  (Anthropic 529 is ``overloaded_error``; Gemini 429 is ``RESOURCE_EXHAUSTED`` with a
  ``RetryInfo`` detail when a retry delay is given).
- ``stall;seconds=S``: wait S seconds before the status line (default 5).
- ``stall-mid;seconds=S;after=K``: pause S seconds after K content chunks.
- ``reset;after=K``: drop the connection after K content chunks.
- ``error-event;after=K``: after K chunks send the family's in-stream error (OpenAI
  ``data: {"error":…}``, Anthropic ``event: error`` / ``overloaded_error``, Gemini a data line
  with an ``error`` object), then end.
- ``truncate;after=K``: end the stream after K chunks, without finish or terminator.
- ``malformed;after=K``: in a stream, one data line that is not JSON after K chunks (the stream
  then goes on); otherwise a 200 whose body is not JSON.

``after`` defaults to 1 and is clamped so a terminal event is always affected. On a non-streamed
reply the body faults act on the JSON body: ``stall-mid`` pauses and ``reset`` drops it halfway,
``truncate`` cuts it in half, ``error-event`` sends the family's error object with status 200.
Options: ``retry-after=S`` / ``retry-after-ms=MS`` (response headers of a status fault),
``times=N`` (only the first N attempts of the logical request fail).

A fault can also ride on the model name, after ``+fault=``: ``"mock-echo+fault=500;times=1"``
(also in Gemini URL paths). The reply names the model without the suffix; a header wins.

`MockEngine(fault_rate=p, faults=[...], seed=s)` fails a share p of attempts with one of the
given specs, drawn from a generator seeded by (seed, logical request, attempt): outcomes do not
depend on request order or concurrency, and a retry is a fresh draw.
"""

from __future__ import annotations

from ._common import MOCK_MODELS
from ._engine import MockEngine
from ._faults import FaultKind, FaultSpec
from ._server import MockASGIApp, serve
from ._transport import MockTransport
from ._types import Data, MockResponse, Reset, Sleep, Step

__all__ = [
    "MOCK_MODELS",
    "Data",
    "FaultKind",
    "FaultSpec",
    "MockASGIApp",
    "MockEngine",
    "MockResponse",
    "MockTransport",
    "Reset",
    "Sleep",
    "Step",
    "serve",
]
