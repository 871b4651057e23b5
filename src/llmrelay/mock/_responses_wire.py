"""The mock's OpenAI Responses API face: ``POST /v1/responses``, plain and streamed.

The echo model answers as on Chat Completions ("echo: <last user text>"), as one ``message``
output item. Two things differ, so that clients can be tested end to end: with
``text.format`` a JSON Schema, the text is a JSON instance of that schema; with
``tool_choice`` ``"required"`` (or naming a function) and function tools, the output is one
``function_call`` to the first (or named) function, its arguments an instance of its
parameters. Streams send the typed events of the real service (``response.created`` ...
``response.completed``), each with its ``sequence_number``.
"""

from __future__ import annotations

import json
from typing import Any

from ._common import (
    CREATED,
    Answer,
    Call,
    EchoReply,
    JSONObject,
    RequestError,
    StreamPlan,
    body_model,
    echo_reply,
    estimate_tokens,
    find_route,
    opt_int,
    require_object,
    split_into,
    split_pieces,
    sse,
    text_of,
)
from ._openai_wire import OpenAIWire

_ROUTES = {("POST", "responses"): "responses"}
_MAX_DEPTH = 8  # instances of a schema nest no deeper (a recursive schema stops here)


class ResponsesWire:
    """OpenAI Responses API family (errors as OpenAI's)."""

    name = "openai"
    request_id_header: str | None = "x-request-id"

    def route(self, method: str, path: str) -> str | None:
        return find_route(_ROUTES, method, path)

    def model_of(self, endpoint: str, path: str, payload: JSONObject | None) -> str | None:
        return body_model(payload)

    def answer(self, endpoint: str, payload: JSONObject | None, call: Call) -> Answer:
        payload = require_object(payload, "request body")
        if call.model is None:
            raise RequestError("Missing required parameter: 'model'.")
        return _respond(payload, call)

    def error_body(
        self, status: int, message: str, *, request_id: str, retry_delay: float | None
    ) -> JSONObject:
        return OpenAIWire().error_body(
            status, message, request_id=request_id, retry_delay=retry_delay
        )


def _conversation(payload: JSONObject) -> tuple[list[str], str]:
    """(every prompt text, the last user text) of ``instructions`` and ``input``."""
    raw = payload.get("input")
    if isinstance(raw, str):
        items: list[Any] = [{"role": "user", "content": raw}]
    elif isinstance(raw, list) and raw:
        items = raw
    else:
        raise RequestError("input must be a string or a non-empty list of input items")
    texts: list[str] = []
    instructions = payload.get("instructions")
    if isinstance(instructions, str) and instructions:
        texts.append(instructions)
    last_user = ""
    for item in items:
        if not isinstance(item, dict):
            raise RequestError("input: each item must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            if item.get("role") not in ("user", "assistant", "system", "developer"):
                raise RequestError(f"input: unknown role {item.get('role')!r}")
            text = text_of(item.get("content"))
            if item["role"] == "user":
                last_user = text
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else text_of(output)
        elif kind == "function_call":
            text = str(item.get("arguments", ""))
        else:
            text = ""
        texts.append(text)
    return texts, last_user


def _forced_tool(payload: JSONObject) -> JSONObject | None:
    """The function tool the request makes the model call, if any."""
    tools = [t for t in payload.get("tools") or () if isinstance(t, dict)]
    functions = [t for t in tools if t.get("type") == "function" and t.get("name")]
    choice = payload.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        named = [t for t in functions if t.get("name") == choice.get("name")]
        if not named:
            raise RequestError(f"tool_choice names an unknown function {choice.get('name')!r}")
        return named[0]
    if choice == "required" and functions:
        return functions[0]
    return None


def instance(schema: Any, depth: int = 0) -> Any:
    """A small value that matches `schema` (the first enum value, empty strings, zeros...)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        branches = [b for b in schema.get(key) or () if isinstance(b, dict)]
        if branches:
            non_null = [b for b in branches if b.get("type") != "null"]
            return instance((non_null or branches)[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        required = schema.get("required") or list(properties)
        return {
            name: instance(properties[name], depth + 1) for name in required if name in properties
        }
    if kind == "array":
        least = schema.get("minItems", 0)
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return [instance(items, depth + 1) for _ in range(least if isinstance(least, int) else 0)]
    if kind == "string":
        least = schema.get("minLength", 0)
        return "x" * least if isinstance(least, int) else ""
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        return low if isinstance(low, int | float) and not isinstance(low, bool) else 0
    if kind == "boolean":
        return False
    return None


def _respond(payload: JSONObject, call: Call) -> Answer:
    texts, last_user = _conversation(payload)
    max_tokens = opt_int(payload, "max_output_tokens")
    model = call.model or ""
    ids = _Ids(call.response_id)
    tool = _forced_tool(payload)
    fmt = (
        (payload.get("text") or {}).get("format") if isinstance(payload.get("text"), dict) else None
    )
    if tool is not None:
        arguments = json.dumps(instance(tool.get("parameters") or {"type": "object"}))
        item = {
            "type": "function_call",
            "id": ids.item,
            "call_id": ids.call,
            "name": tool["name"],
            "arguments": arguments,
            "status": "completed",
        }
        pieces = split_pieces(arguments.replace(",", ", ")) or [arguments]
        reply = EchoReply(
            text=arguments,
            deltas=_deltas(arguments, call.chunks),
            prompt_tokens=estimate_tokens(texts),
            completion_tokens=len(pieces),
            truncated=False,
        )
    else:
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            text = json.dumps(instance(fmt.get("schema") or {}))
            reply = EchoReply(
                text=text,
                deltas=_deltas(text, call.chunks),
                prompt_tokens=estimate_tokens(texts),
                completion_tokens=max(1, len(split_pieces(text))),
                truncated=False,
            )
        else:
            reply = echo_reply(texts, last_user, max_tokens, call.chunks)
        item = _message(ids.item, reply.text, "completed")
    status = "incomplete" if reply.truncated else "completed"
    final = _response(payload, ids.response, model, status, [item], reply)
    if payload.get("stream") is True:
        return _stream(payload, ids, model, item, reply, final)
    return final


def _deltas(text: str, chunks: int | None) -> tuple[str, ...]:
    pieces = split_pieces(text) or [text]
    return tuple(pieces) if chunks is None else split_into(text, pieces, chunks)


class _Ids:
    def __init__(self, digest: str) -> None:
        self.response = f"resp_mock{digest}"
        self.item = f"msg_mock{digest}"
        self.call = f"call_mock{digest[:16]}"


def _message(item_id: str, text: str, status: str) -> JSONObject:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        if text or status == "completed"
        else [],
    }


def _usage(reply: EchoReply) -> JSONObject:
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _response(
    payload: JSONObject,
    response_id: str,
    model: str,
    status: str,
    output: list[Any],
    reply: EchoReply | None,
) -> JSONObject:
    fmt = payload.get("text") if isinstance(payload.get("text"), dict) else None
    temperature = payload.get("temperature")
    top_p = payload.get("top_p")
    return {
        "id": response_id,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": payload.get("instructions"),
        "max_output_tokens": payload.get("max_output_tokens"),
        "metadata": payload.get("metadata") or {},
        "model": model,
        "output": output,
        "parallel_tool_calls": payload.get("parallel_tool_calls", True),
        "previous_response_id": payload.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": payload.get("store", True),
        "temperature": temperature if isinstance(temperature, int | float) else 1.0,
        "text": fmt or {"format": {"type": "text"}},
        "tool_choice": payload.get("tool_choice", "auto"),
        "tools": payload.get("tools") or [],
        "top_p": top_p if isinstance(top_p, int | float) else 1.0,
        "truncation": payload.get("truncation") or "disabled",
        "usage": _usage(reply) if reply is not None else None,
    }


def _stream(
    payload: JSONObject,
    ids: _Ids,
    model: str,
    item: JSONObject,
    reply: EchoReply,
    final: JSONObject,
) -> StreamPlan:
    counter = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(counter), **fields}, event=kind)

    opening = _response(payload, ids.response, model, "in_progress", [], None)
    prefix = [event("response.created", response=opening)]
    prefix.append(event("response.in_progress", response=opening))
    where = {"item_id": item["id"], "output_index": 0}
    if item["type"] == "function_call":
        prefix.append(
            event(
                "response.output_item.added",
                output_index=0,
                item={**item, "arguments": "", "status": "in_progress"},
            )
        )
        content = [
            event("response.function_call_arguments.delta", delta=delta, **where)
            for delta in reply.deltas
        ]
        suffix = [
            event(
                "response.function_call_arguments.done",
                arguments=reply.text,
                name=item["name"],
                **where,
            )
        ]
    else:
        opened = _message(item["id"], "", "in_progress")
        prefix.append(event("response.output_item.added", output_index=0, item=opened))
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        prefix.append(event("response.content_part.added", content_index=0, part=part, **where))
        content = [
            event("response.output_text.delta", content_index=0, delta=delta, logprobs=[], **where)
            for delta in reply.deltas
        ]
        done_part = {**part, "text": reply.text}
        suffix = [
            event(
                "response.output_text.done", content_index=0, text=reply.text, logprobs=[], **where
            ),
            event("response.content_part.done", content_index=0, part=done_part, **where),
        ]
    suffix.append(event("response.output_item.done", output_index=0, item=item))
    terminal = "response.completed" if final["status"] == "completed" else "response.incomplete"
    suffix.append(event(terminal, response=final))
    failed = {
        **opening,
        "status": "failed",
        "error": {
            "code": "server_error",
            "message": "The server had an error while processing your request.",
        },
    }
    return StreamPlan(
        prefix=tuple(prefix),
        content=tuple(content),
        suffix=tuple(suffix),
        error_event=event("response.failed", response=failed),
        malformed_event=b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "delta": \n\n',
    )
