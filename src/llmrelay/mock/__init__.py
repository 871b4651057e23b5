"""The embedded mock LLM provider: one pure deterministic engine, several faces.

`MockEngine` answers HTTP requests in the OpenAI, Anthropic and Gemini wire formats with an echo
model (reply = ``"echo: "`` + the last user message's text). `MockTransport` serves it in process
to `httpx` (no sockets)::

    transport = MockTransport(MockEngine(seed=7, fault_rate=0.1))
    async with httpx.AsyncClient(transport=transport, base_url="http://mock/v1") as http:
        reply = await http.post("/chat/completions", json={"model": "mock-echo", "messages": m})

Routes (any base-URL prefix works, e.g. ``/v1``, ``/openai/v1``, ``/v1beta``):

- OpenAI: ``POST …/chat/completions`` (``stream``, ``stream_options.include_usage``),
  ``POST …/embeddings`` (``dimensions``, ``encoding_format``), ``GET …/models``,
  ``GET …/models/{id}``; Azure's ``…/deployments/{name}/chat/completions`` takes the model from
  the deployment name.
- Anthropic: ``POST …/messages`` (``stream``), ``POST …/messages/count_tokens``,
  ``GET …/models``, ``GET …/models/{id}``.
- Gemini: ``POST …/models/{model}:generateContent | :streamGenerateContent`` (SSE with
  ``?alt=sse``, else one JSON array), ``:embedContent``, ``:batchEmbedContents``, ``:countTokens``,
  ``GET …/models``, ``GET …/models/{id}``. Request fields are read in lowerCamel or snake_case,
  as the service accepts both.
- Batch APIs (see `llmrelay.mock._batches`): OpenAI ``…/files`` (multipart upload, ``GET
  …/files/{id}[/content]``) and ``…/batches[/{id}[/cancel]]``; Anthropic
  ``…/messages/batches[/{id}[/cancel|/results]]``; Gemini ``…/models/{m}:batchGenerateContent``,
  ``GET …/batches/{id}``, ``POST …/batches/{id}:cancel``. Jobs end after ``batch_delay``
  seconds; ``x-mock-batch: expire;done=N | fail | fail-items=I,J;item-status=S | delay=S``.
- ``GET …/models`` and ``GET …/models/{id}`` answer in Anthropic's shape when the request has an
  ``anthropic-version`` or ``x-api-key`` header, in Gemini's when it has ``x-goog-api-key``, a
  ``key`` query parameter or a ``/v1beta`` path, else in OpenAI's; a model the mock does not serve
  is a 404. The same hint picks the shape of a 404 for unknown routes.

What the echo model says (every family, plain and streamed):

- Tool calls: one call when the request forces a tool (OpenAI ``tool_choice`` ``"required"`` or
  a named function, Anthropic ``{"type": "any"}`` or ``{"type": "tool", "name": …}``, Gemini
  ``functionCallingConfig.mode`` ``ANY``), and with ``auto`` (or no choice) when the last user
  message contains a tool's name, unless the conversation ends with a tool result. Forced without
  a name, the first tool the last user message names is called, else the first tool. Arguments
  are an instance of the tool's parameter schema (strings carry the last user text). OpenAI
  finishes with ``tool_calls`` (``stop`` for a tool forced by name, as OpenAI does), Anthropic
  with ``tool_use``, Gemini with ``STOP``. Streams send OpenAI's arguments and Anthropic's
  ``input_json_delta`` in pieces, Gemini's ``functionCall`` whole in one chunk. After a tool
  result the reply echoes the user's last own message.
- Structured output: with OpenAI ``response_format`` ``json_schema``, Anthropic
  ``output_config.format`` (or ``output_format``) or Gemini ``responseJsonSchema`` /
  ``responseSchema``, the reply is JSON valid against the schema: every declared property, one
  array item (or ``minItems``), the first enum value, bounds, formats, ``$ref``/``$defs``,
  ``anyOf``/``oneOf``/``allOf``; strings carry the echo. JSON mode without a schema (OpenAI
  ``json_object``, Gemini ``responseMimeType: application/json``) answers
  ``{"echo": "<last user text>"}``.
- ``stop`` / ``stop_sequences`` / ``stopSequences``: the reply ends before the earliest one found
  (Anthropic: ``stop_reason: stop_sequence`` and ``stop_sequence`` set); a ``max_tokens`` cut
  that comes first still finishes with ``length``.
- ``n`` (OpenAI) / ``candidateCount`` (Gemini): that many identical choices; usage counts each.
- ``logprobs`` + ``top_logprobs`` (OpenAI) / ``responseLogprobs`` + ``logprobs`` (Gemini): one
  entry per token (word piece; in a stream, per delta) with a deterministic log probability
  between -0.1 and 0 and made-up alternatives.
- Gemini streams carry the usage so far (cumulative) on every chunk, as the service does.

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
- ``x-mock-fault: SPEC``: inject a fault (below).

``times=N`` fails the first N attempts of each call (a call is a request and its retries). The
attempt number comes from ``x-stainless-retry-count: K`` (sent by the official OpenAI and
Anthropic SDKs; attempt K + 1, nothing stored), else from the attempts seen with the request's
``idempotency-key`` (llmrelay's client sends one per call), else the call is named by method,
path and body and ends with its first attempt that gets no fault: the same request sent again
after that is a new call and meets its N faults again. The ``x-mock-attempt`` response header
tells the attempt number.

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
``truncate`` cuts it in half, ``error-event`` answers the family's overloaded error with its
status (Anthropic 529 ``overloaded_error``, OpenAI and Gemini 503), as the services do.
Options: ``retry-after=S`` / ``retry-after-ms=MS`` (response headers of a status fault),
``times=N`` (only the first N attempts of each call fail, see above).

A fault can also ride on the model name, after ``+fault=``: ``"mock-echo+fault=500;times=1"``
(also in Gemini URL paths). The reply names the model without the suffix; a header wins.

`MockEngine(fault_rate=p, faults=[...], seed=s)` fails a share p of attempts with one of the
given specs, drawn from a generator seeded by (seed, call, attempt): outcomes do not depend on
request order or concurrency, and a retry is a fresh draw.
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
