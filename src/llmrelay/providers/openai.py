"""OpenAI Chat Completions wire format: OpenAI itself and every OpenAI-compatible service.

Preset options read here:
- ``max_tokens_field``: ``"max_completion_tokens"`` (OpenAI) or ``"max_tokens"`` (most others).
- ``replay_reasoning``: send an assistant turn's reasoning back as ``reasoning_content``
  (DeepSeek, Moonshot answer 400 to a tool-call turn without it).
- ``tool_call_id_style``: ``"mistral"`` rewrites replayed tool-call ids that are not 9
  alphanumerics, the same way in an assistant's ``tool_calls`` and in the tool result.
- ``strip_message_name``: drop ``messages[].name`` (Groq answers 400 to it).
- ``structured_output``: ``"json_object"`` for services with a JSON mode but no JSON Schema
  (DeepSeek, Moonshot, Zhipu, Qwen): a schema is sent as ``json_object`` plus a system message
  that states it.

Usage is read from ``usage``, else ``x_groq.usage`` (Groq), else ``choices[0].usage`` (Moonshot).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from .._exceptions import make_status_error
from .._request import ChatRequest, WireRequest
from .._types import (
    REASONING_BLOCKS_KEY,
    ChatResponse,
    Choice,
    EmbeddingResponse,
    ModelInfo,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    Usage,
    make_stream_chunk,
)
from ._base import ErrorInfo, Provider
from ._common import (
    ERROR_TYPE_STATUS,
    arguments_text,
    as_int,
    bad_response,
    error_message,
    load_event,
    make_tool_call,
    model_entries,
    reply_of_choices,
    str_or_none,
    vector,
)
from ._logprobs import openai_logprobs

if TYPE_CHECKING:
    from .._sse import ServerSentEvent

request_id_header = "x-request-id"

# Message keys llmrelay uses to replay reasoning to other families; never sent here.
_REPLAY_ONLY = frozenset({"reasoning_signature", REASONING_BLOCKS_KEY})


def auth_headers(provider: Provider, api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def _wire_messages(provider: Provider, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop llmrelay's replay-only keys unless this service wants reasoning sent back, and
    apply the preset's message quirks. The caller's dicts are never modified."""
    options = provider.options
    if options.get("tool_call_id_style") == "mistral" or options.get("strip_message_name"):
        return [_quirky_message(options, msg) for msg in messages]
    replay = options.get("replay_reasoning", False)
    out = messages
    for i, msg in enumerate(messages):
        if "reasoning_content" in msg or not _REPLAY_ONLY.isdisjoint(msg):
            if out is messages:
                out = list(messages)
            out[i] = _clean_reasoning(msg, replay)
    return out


def _clean_reasoning(msg: dict[str, Any], replay: bool) -> dict[str, Any]:
    clean = {k: v for k, v in msg.items() if k not in _REPLAY_ONLY}
    if not replay:
        clean.pop("reasoning_content", None)
    return clean


def _quirky_message(options: Mapping[str, Any], msg: dict[str, Any]) -> dict[str, Any]:
    out = _clean_reasoning(msg, options.get("replay_reasoning", False))
    if options.get("strip_message_name"):
        out.pop("name", None)
    if options.get("tool_call_id_style") == "mistral":
        calls = out.get("tool_calls")
        if isinstance(calls, list):
            out["tool_calls"] = [
                {**call, "id": mistral_tool_call_id(call["id"])}
                if isinstance(call, dict) and isinstance(call.get("id"), str)
                else call
                for call in calls
            ]
        if isinstance(out.get("tool_call_id"), str):
            out["tool_call_id"] = mistral_tool_call_id(out["tool_call_id"])
    return out


_MISTRAL_ID = re.compile(r"[A-Za-z0-9]{9}")
_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def mistral_tool_call_id(call_id: str) -> str:
    """A tool-call id Mistral accepts (exactly 9 of ``[A-Za-z0-9]``): valid ids pass unchanged,
    others map to a stable hash of themselves, so a call and its result still match."""
    if _MISTRAL_ID.fullmatch(call_id):
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, len(_ALPHANUMERIC))
        chars.append(_ALPHANUMERIC[digit])
    return "".join(chars)


def build_chat(provider: Provider, request: ChatRequest) -> WireRequest:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": _wire_messages(provider, request.messages),
    }
    params = request.params
    if params:
        body.update(params)
        if provider.options.get("structured_output") == "json_object":
            _json_mode_only(body, request)
        if "max_tokens" in params:
            field = provider.options.get("max_tokens_field", "max_tokens")
            if field != "max_tokens":
                body[field] = body.pop("max_tokens")
    if request.stream:
        body["stream"] = True
        if provider.stream_usage:
            body["stream_options"] = {"include_usage": True}
    if request.extra_body:
        body.update(request.extra_body)
    return WireRequest(method="POST", path="chat/completions", json=body)


def _json_mode_only(body: dict[str, Any], request: ChatRequest) -> None:
    """A service with a JSON mode but no JSON Schema (``structured_output="json_object"``):
    ask for ``json_object`` and put the schema in a system message (the reply is still
    checked against it when it comes back)."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object"):
        return
    from .._structured import json_instruction, output_spec

    spec = request.output or output_spec(fmt)
    if spec is None:
        return
    body["response_format"] = {"type": "json_object"}
    # Such services also want the word "json" in the prompt, which the instruction has.
    body["messages"] = [{"role": "system", "content": json_instruction(spec)}, *body["messages"]]


def parse_usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt = as_int(data.get("prompt_tokens"))
    completion = as_int(data.get("completion_tokens"))
    prompt_details = data.get("prompt_tokens_details")
    completion_details = data.get("completion_tokens_details")
    cached = written = 0
    if isinstance(prompt_details, dict):
        cached = as_int(prompt_details.get("cached_tokens"))
        written = as_int(prompt_details.get("cache_write_tokens"))
    if not cached:
        # DeepSeek, then Moonshot (`usage.cached_tokens`).
        cached = as_int(data.get("prompt_cache_hit_tokens")) or as_int(data.get("cached_tokens"))
    reasoning = (
        as_int(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, dict)
        else 0
    )
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=as_int(data.get("total_tokens")) or prompt + completion,
        cached_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )


def _raise_if_error(
    provider: Provider, data: dict[str, Any], request_id: str | None = None
) -> None:
    """Some services put an error object in an HTTP-200 body or stream event."""
    err = data.get("error")
    if err is None and data.get("object") == "error":  # vLLM
        err = data
    if err is not None:
        _raise_error(provider, err, data, request_id)


def _raise_error(
    provider: Provider, err: Any, body: Any, request_id: str | None = None
) -> NoReturn:
    """Raise the typed error of an error object that came without an HTTP status of its own.

    The status is its ``code`` when that is one (an int, or a str such as LiteLLM's ``"400"``),
    else the status documented for a ``type``/``code``/``status`` name (OpenAI's rate-limit
    errors have type "tokens" or "requests" and code "rate_limit_exceeded"), else 500: an
    error the service reports without saying whose fault it is, counted as its own."""
    message, code = error_message({"error": err})
    status = None
    if isinstance(err, dict):
        status = _status_code(err.get("code"))
        if status is None:
            names = [err.get(k) for k in ("type", "code", "status")]
            status = next(
                (
                    ERROR_TYPE_STATUS[n]
                    for n in names
                    if isinstance(n, str) and n in ERROR_TYPE_STATUS
                ),
                None,
            )
    raise make_status_error(
        status or 500, message, provider=provider.name, request_id=request_id, body=body, code=code
    )


def _status_code(value: Any) -> int | None:
    """An HTTP error status given as an int or as its decimal text, else `None`."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if type(value) is int and 400 <= value < 600:
        return value
    return None


def parse_chat(provider: Provider, data: Any, request_id: str | None) -> ChatResponse:
    if not isinstance(data, dict):
        raise bad_response(provider.name, "the body is not a JSON object", data)
    _raise_if_error(provider, data, request_id)
    raw_choices = data.get("choices")
    if not isinstance(raw_choices, list):
        raise bad_response(provider.name, "no 'choices' in the reply", data)
    if not raw_choices:
        # The schema allows it (e.g. a moderated request held back); the caller asked for a
        # reply and there is none, so say so, with the body (`.body`) to look into.
        raise bad_response(provider.name, "'choices' is empty: the service sent no reply", data)
    choices = [
        _choice(provider, choice, position, data) for position, choice in enumerate(raw_choices)
    ]
    return reply_of_choices(
        choices,
        usage=parse_usage(data.get("usage") or _groq_usage(data)),
        model=str_or_none(data.get("model")),
        id=str_or_none(data.get("id")),
        request_id=request_id,
        provider=provider.name,
        raw=data,
    )


def _choice(provider: Provider, choice: Any, position: int, data: Any) -> Choice:
    """One entry of ``choices``; a service that leaves out its ``index`` sends the choices in
    order, so its position stands in."""
    if not isinstance(choice, dict):
        raise bad_response(provider.name, f"choices[{position}] is not an object", data)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise bad_response(provider.name, f"choices[{position}] has no 'message'", data)
    index = choice.get("index")
    raw_calls = message.get("tool_calls")
    content = message.get("content")
    return Choice(
        index=index if type(index) is int and index >= 0 else position,
        text=content if isinstance(content, str) else "",
        finish_reason=str_or_none(choice.get("finish_reason")),
        tool_calls=_tool_calls(provider, raw_calls, data) if raw_calls else (),
        reasoning=_reasoning(message),
        refusal=str_or_none(message.get("refusal")),
        logprobs=openai_logprobs(choice.get("logprobs")),
    )


def _reasoning(fields: dict[str, Any]) -> str | None:
    """``reasoning_content`` (DeepSeek, Moonshot, Qwen...) or ``reasoning`` (vLLM, OpenRouter)."""
    text = fields.get("reasoning_content") or fields.get("reasoning")
    return text if isinstance(text, str) else None


def _tool_calls(provider: Provider, calls: Any, data: Any) -> tuple[ToolCall, ...]:
    """A message's complete tool calls: function calls (``type`` "function" or left out, as
    many services do) and custom-tool calls (``type`` "custom"). Calls of kinds this version
    does not know are left out and stay in the reply's `raw`. An id-less call is named
    ``call_<n>``, as a stream's `final()` names it, so both give the same reply."""
    if not isinstance(calls, list):
        raise bad_response(provider.name, "'tool_calls' is not a list", data)
    out = []
    for position, call in enumerate(calls):
        if not isinstance(call, dict):
            raise bad_response(provider.name, "a tool call is not an object", data)
        kind = call.get("type")
        if kind is None and "function" not in call and "custom" in call:
            kind = "custom"
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = f"call_{position}"
        if kind is None or kind == "function":
            fn = call.get("function")
            name = fn.get("name") if isinstance(fn, dict) else None
            arguments = arguments_text(fn.get("arguments")) if isinstance(fn, dict) else None
            if not isinstance(name, str) or arguments is None:
                raise bad_response(
                    provider.name, "a tool call has no function name or arguments", data
                )
            out.append(make_tool_call(call_id, name, arguments))
        elif kind == "custom":
            custom = call.get("custom")
            name = custom.get("name") if isinstance(custom, dict) else None
            text = custom.get("input") if isinstance(custom, dict) else None
            if text is None and isinstance(custom, dict):
                text = ""
            if not isinstance(name, str) or not isinstance(text, str):
                raise bad_response(provider.name, "a custom tool call has no name or input", data)
            out.append(ToolCall(id=call_id, name=name, type="custom", input=text))
    return tuple(out)


class StreamParser:
    """OpenAI chunks: deltas in `choices`, usage in a last chunk (or in a choice).

    `done` turns True at ``data: [DONE]``; every event after it is ignored (`parse` gives
    `None`). Errors raise the `APIStatusError` subclass of their status:

    - ``data: {"error": {...}}`` (OpenAI, OpenRouter, LiteLLM) or ``{"object": "error", ...}``
      (vLLM): the status is the error's ``code`` when it is one, as an int or as text
      (LiteLLM sends ``"code": "400"``), else the status documented for its ``type``/``code``
      name (``rate_limit_exceeded`` → 429, ...).
    - ``event: error`` with any payload: the same rules, the payload being the error object
      when it has no ``error`` field (``data: {"message": "boom"}``); text that is not JSON is
      the message.
    - An error that names no status is an `InternalServerError` (500): the service failed
      without blaming the request, and retrying a stream that failed before its first chunk
      is the useful default.

    Several choices (``n``): each chunk carries its choice's ``index``. Servers send one
    choice per event, the choices taking turns (llama.cpp) or one after the other; an event
    with several gives a tuple of chunks, one per choice. A choice without an ``index`` is
    choice 0 when it is alone in its event, else its position there. The stream is finished
    when every choice it saw has a finish reason.

    Tool-call fragments of a kind other than ``function`` (none is documented for streams)
    are left out of `tool_calls`; they stay in the chunk's `raw`.
    """

    __slots__ = ("_ended", "_finish_seen", "_foreign_calls", "_provider", "_seen", "done")

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self.done = False
        self._finish_seen = False  # choice 0 has finished
        self._foreign_calls: set[tuple[int, int]] | None = None  # (choice, call) of other kinds
        self._seen: set[int] | None = None  # choices other than 0 seen so far
        self._ended: set[int] | None = None  # ... and those of them that finished

    def finished(self) -> bool:
        if self.done:
            return True
        others, ended = self._seen, self._ended
        return self._finish_seen and (others is None or (ended is not None and others <= ended))

    def parse(self, event: ServerSentEvent) -> StreamChunk | tuple[StreamChunk, ...] | None:
        if self.done:
            return None
        data = event.data
        if data == "[DONE]":
            self.done = True
            return None
        if event.event == "error":
            self._raise_error_event(data)
        if not data:
            return None
        obj = load_event(self._provider.name, data)
        if "error" in obj or obj.get("object") == "error":
            _raise_if_error(self._provider, obj)
        choices = obj.get("choices")
        raw_usage = obj.get("usage")
        if raw_usage is None and "x_groq" in obj:
            raw_usage = _groq_usage(obj)
        chunk_id = obj.get("id")
        model = obj.get("model")
        if not choices:
            if raw_usage is None:
                return None  # e.g. Azure's prompt_filter_results chunk
            return make_stream_chunk(
                "",
                None,
                None,
                None,
                parse_usage(raw_usage),
                None,
                None,
                chunk_id if isinstance(chunk_id, str) else None,
                model if isinstance(model, str) else None,
                None,
                obj,
            )
        several = False
        try:
            try:
                (choice,) = choices  # the usual one choice per event, in one step
            except ValueError:  # several choices in this event
                several = True
                choice = choices[0]
            index = choice.get("index")
            delta = choice.get("delta") or {}
            finish = choice.get("finish_reason")
            if raw_usage is None:
                raw_usage = choice.get("usage")  # Moonshot puts it here
            calls = delta.get("tool_calls")
            content = delta.get("content")
            role = delta.get("role")
            refusal = delta.get("refusal")
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            raw_logprobs = choice.get("logprobs")
        except (AttributeError, KeyError, TypeError):  # e.g. a choice or delta that is no object
            raise bad_response(
                self._provider.name, "a stream event has a malformed 'choices' entry", obj
            ) from None
        if several:
            return self._several(
                choices,
                obj,
                raw_usage,
                chunk_id if isinstance(chunk_id, str) else None,
                model if isinstance(model, str) else None,
            )
        if not isinstance(finish, str):
            finish = None
        if index:  # not choice 0 (or not a plain int)
            index = self._other_choice(index, -1, finish)
        else:
            index = 0
            if finish:
                self._finish_seen = True
        # The hot path: one chunk per streamed event, every field given positionally. (The
        # same as `_chunk`, inlined: the usual stream has one choice per event.)
        return make_stream_chunk(
            content if isinstance(content, str) else "",
            reasoning if isinstance(reasoning, str) else None,
            self._tool_deltas(calls, obj, index) if calls else None,
            finish,
            parse_usage(raw_usage) if raw_usage is not None else None,
            role if isinstance(role, str) else None,
            refusal if isinstance(refusal, str) else None,
            chunk_id if isinstance(chunk_id, str) else None,
            model if isinstance(model, str) else None,
            None,
            obj,
            None,
            index,
            openai_logprobs(raw_logprobs) if raw_logprobs is not None else None,
        )

    def _several(
        self, choices: Any, obj: Any, raw_usage: Any, chunk_id: str | None, model: str | None
    ) -> tuple[StreamChunk, ...]:
        """An event with several choices: a chunk for each (the usage goes with the first)."""
        out = []
        for position in range(len(choices)):
            out.append(self._chunk(choices, position, position, obj, raw_usage, chunk_id, model))
            raw_usage = None
        return tuple(out)

    def _chunk(
        self,
        choices: Any,
        position: int,
        default: int,
        obj: Any,
        raw_usage: Any,
        chunk_id: str | None,
        model: str | None,
    ) -> StreamChunk:
        """The chunk of ``choices[position]`` of an event with several; `default` is its index
        when it names none."""
        try:
            choice = choices[position]
            index = choice.get("index")
            delta = choice.get("delta") or {}
            finish = choice.get("finish_reason")
            if raw_usage is None:
                raw_usage = choice.get("usage")  # Moonshot puts it here
            calls = delta.get("tool_calls")
            content = delta.get("content")
            role = delta.get("role")
            refusal = delta.get("refusal")
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            raw_logprobs = choice.get("logprobs")
        except (AttributeError, KeyError, TypeError):  # e.g. a choice or delta that is no object
            raise bad_response(
                self._provider.name, "a stream event has a malformed 'choices' entry", obj
            ) from None
        if not isinstance(finish, str):
            finish = None
        if index or default > 0:  # not choice 0 (or not a plain int)
            index = self._other_choice(index, default, finish)
        else:
            index = 0
            if finish:
                self._finish_seen = True
        return make_stream_chunk(
            content if isinstance(content, str) else "",
            reasoning if isinstance(reasoning, str) else None,
            self._tool_deltas(calls, obj, index) if calls else None,
            finish,
            parse_usage(raw_usage) if raw_usage is not None else None,
            role if isinstance(role, str) else None,
            refusal if isinstance(refusal, str) else None,
            chunk_id,
            model,
            None,
            obj,
            None,
            index,
            openai_logprobs(raw_logprobs) if raw_logprobs is not None else None,
        )

    def _other_choice(self, index: Any, default: int, finish: str | None) -> int:
        """The index of a chunk that may not be choice 0, noted for `finished()`."""
        number = index if type(index) is int and index >= 0 else max(default, 0)
        if number == 0:
            if finish:
                self._finish_seen = True
            return 0
        if self._seen is None:
            self._seen = set()
        self._seen.add(number)
        if finish:
            if self._ended is None:
                self._ended = set()
            self._ended.add(number)
        return number

    def _raise_error_event(self, data: str) -> NoReturn:
        """``event: error``: raise the typed error its payload describes (see the class doc)."""
        try:
            payload: Any = json.loads(data)
        except ValueError:
            payload = data
        if isinstance(payload, dict):
            if "error" in payload or payload.get("object") == "error":
                _raise_if_error(self._provider, payload)
            _raise_error(self._provider, payload, payload)
        text = payload if isinstance(payload, str) and payload else None
        _raise_error(self._provider, text or data or "an error event with no message", data)

    def _tool_deltas(self, calls: Any, obj: Any, choice: int) -> tuple[ToolCallDelta, ...] | None:
        """Fragments are told apart by ``index``; a service that leaves it out sends each call
        whole, so its position in the list stands in."""
        if not isinstance(calls, list):
            raise bad_response(self._provider.name, "'tool_calls' in a delta is not a list", obj)
        out = []
        for position, call in enumerate(calls):
            if not isinstance(call, dict):
                raise bad_response(self._provider.name, "a tool-call delta is malformed", obj)
            index = call.get("index")
            if type(index) is not int:
                index = position
            kind = call.get("type")
            if kind is not None and kind != "function":
                # The first fragment names the kind; later ones of that call only its index.
                if self._foreign_calls is None:
                    self._foreign_calls = set()
                self._foreign_calls.add((choice, index))
                continue
            if self._foreign_calls and (choice, index) in self._foreign_calls:
                continue
            fn = call.get("function") or {}
            arguments = arguments_text(fn.get("arguments")) if isinstance(fn, dict) else None
            if arguments is None:
                raise bad_response(self._provider.name, "a tool-call delta is malformed", obj)
            out.append(
                ToolCallDelta(
                    index=index,
                    id=str_or_none(call.get("id")),
                    name=str_or_none(fn.get("name")),
                    arguments=arguments,
                )
            )
        return tuple(out) or None


def _groq_usage(obj: dict[str, Any]) -> Any:
    """Groq has sent a stream's usage in ``x_groq.usage`` on the last chunk."""
    extra = obj.get("x_groq")
    return extra.get("usage") if isinstance(extra, dict) else None


def new_stream_parser(provider: Provider, request: ChatRequest) -> StreamParser:
    return StreamParser(provider)


def build_embed(
    provider: Provider, model: str, inputs: list[str], extra_body: Mapping[str, Any] | None
) -> WireRequest:
    body: dict[str, Any] = {"model": model, "input": inputs}
    if extra_body:
        body.update(extra_body)
    return WireRequest(method="POST", path="embeddings", json=body)


def parse_embed(provider: Provider, data: Any, request_id: str | None) -> EmbeddingResponse:
    """Vectors in input order; ``encoding_format: "base64"`` (via `extra_body`) is decoded."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise bad_response(provider.name, "no 'data' list of objects in the embeddings reply", data)
    ordered = sorted(items, key=lambda item: as_int(item.get("index")))
    return EmbeddingResponse(
        vectors=[vector(provider.name, item.get("embedding"), data) for item in ordered],
        model=str_or_none(data.get("model")),
        usage=parse_usage(data.get("usage")),
        request_id=request_id,
        raw=data,
    )


def build_models(provider: Provider) -> WireRequest:
    return WireRequest(method="GET", path="models")


def parse_models(provider: Provider, data: Any) -> list[ModelInfo]:
    out = []
    for model_id, item in model_entries(provider.name, data, "data", "id"):
        created = item.get("created")
        out.append(
            ModelInfo(
                id=model_id,
                owned_by=str_or_none(item.get("owned_by")),
                created=created if type(created) is int else None,
                raw=item,
            )
        )
    return out


def parse_error(provider: Provider, status_code: int, body: Any) -> ErrorInfo:
    message, code = error_message(body)
    return ErrorInfo(message=message, code=code)
