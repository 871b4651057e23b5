"""The mock's Anthropic face: Messages (plain and streamed), token counting, models."""

from __future__ import annotations

import json
from typing import Any

from ._asks import anthropic_ask
from ._common import (
    CREATED_ISO,
    MOCK_MODELS,
    Answer,
    Call,
    EchoReply,
    JSONObject,
    RequestError,
    StreamPlan,
    body_model,
    conversation,
    echo_reply,
    estimate_tokens,
    find_route,
    model_in_path,
    opt_int,
    require_object,
    sse,
    unknown_model,
)
from ._reply import content_of, tool_to_call

_ROUTES = {
    ("POST", "messages"): "messages",
    ("POST", "messages/count_tokens"): "count_tokens",
    ("GET", "models"): "models",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class AnthropicWire:
    """Anthropic Messages family."""

    name = "anthropic"
    request_id_header: str | None = "request-id"

    def route(self, method: str, path: str) -> str | None:
        if model_in_path(method, path) is not None:
            return "model"
        return find_route(_ROUTES, method, path)

    def model_of(self, endpoint: str, path: str, payload: JSONObject | None) -> str | None:
        if endpoint == "model":
            return model_in_path("GET", path)
        return body_model(payload)

    def answer(self, endpoint: str, payload: JSONObject | None, call: Call) -> Answer:
        if endpoint == "model":
            if call.model not in MOCK_MODELS:
                raise unknown_model(call.model)
            return _model_info(call.model)
        if endpoint == "models":
            data = [_model_info(model) for model in MOCK_MODELS]
            return {
                "data": data,
                "has_more": False,
                "first_id": MOCK_MODELS[0],
                "last_id": MOCK_MODELS[-1],
            }
        payload = require_object(payload, "request body")
        if call.model is None:
            raise RequestError("model: Field required")
        texts, last_user = conversation(
            payload, "messages", content_key="content", system=payload.get("system")
        )
        if endpoint == "count_tokens":
            return {"input_tokens": estimate_tokens(texts)}
        max_tokens = opt_int(payload, "max_tokens")
        if max_tokens is None:
            raise RequestError("max_tokens: Field required")
        ask = anthropic_ask(payload, last_user)
        tool = tool_to_call(ask)
        text = content_of(ask, tool)
        stop = () if tool else ask.stop
        reply = echo_reply(texts, last_user, max_tokens, call.chunks, text=text, stop=stop)
        message_id = f"msg_mock_{call.response_id}"
        block = _text_block(reply.text)
        if tool is not None:
            block = _tool_block(f"toolu_mock_{call.response_id[:20]}", tool.name, reply.text)
        if reply.truncated:
            stop_reason = "max_tokens"
        elif tool is not None:
            stop_reason = "tool_use"
        else:
            stop_reason = "stop_sequence" if reply.stop_sequence else "end_turn"
        ending = (stop_reason, reply.stop_sequence)
        if payload.get("stream") is True:
            return _stream(message_id, call.model, reply, ending, block)
        return _message(message_id, call.model, [block], ending, reply)

    def error_body(
        self, status: int, message: str, *, request_id: str, retry_delay: float | None
    ) -> JSONObject:
        kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request_id,
        }


def _model_info(model: str) -> JSONObject:
    return {
        "type": "model",
        "id": model,
        "display_name": model,
        "created_at": CREATED_ISO,
        "lifecycle": "active",  # required by the SDK's ModelInfo since the lifecycle fields
        "deprecated_at": None,
        "retires_at": None,
        "max_input_tokens": 200_000,
        "max_tokens": 8192,
    }


def _text_block(text: str) -> JSONObject:
    return {"type": "text", "text": text}


def _tool_block(tool_id: str, name: str, arguments: str) -> JSONObject:
    try:
        value = json.loads(arguments)
    except ValueError:  # cut short by max_tokens
        value = {}
    return {"type": "tool_use", "id": tool_id, "name": name, "input": value}


def _message(
    message_id: str,
    model: str,
    content: list[Any],
    ending: tuple[str | None, str | None],
    reply: EchoReply,
    output_tokens: int | None = None,
) -> JSONObject:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": ending[0],
        "stop_sequence": ending[1],
        "usage": {
            "input_tokens": reply.prompt_tokens,
            "output_tokens": reply.completion_tokens if output_tokens is None else output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _event(kind: str, **fields: Any) -> bytes:
    return sse({"type": kind, **fields}, event=kind)


def _stream(
    message_id: str,
    model: str,
    reply: EchoReply,
    ending: tuple[str, str | None],
    block: JSONObject,
) -> StreamPlan:
    start = _message(message_id, model, [], (None, None), reply, output_tokens=1)
    if block["type"] == "tool_use":
        first = block | {"input": {}}

        def delta(piece: str) -> JSONObject:
            return {"type": "input_json_delta", "partial_json": piece}
    else:
        first = _text_block("")

        def delta(piece: str) -> JSONObject:
            return {"type": "text_delta", "text": piece}

    error = {"type": "overloaded_error", "message": "Overloaded"}
    return StreamPlan(
        prefix=(
            _event("message_start", message=start),
            _event("content_block_start", index=0, content_block=first),
            _event("ping"),
        ),
        content=tuple(
            _event("content_block_delta", index=0, delta=delta(piece)) for piece in reply.deltas
        ),
        suffix=(
            _event("content_block_stop", index=0),
            _event(
                "message_delta",
                delta={"stop_reason": ending[0], "stop_sequence": ending[1]},
                usage={"output_tokens": reply.completion_tokens},
            ),
            _event("message_stop"),
        ),
        error_event=sse({"type": "error", "error": error}, event="error"),
        malformed_event=sse(
            b'{"type": "content_block_delta", "index": 0, "delta": {', "content_block_delta"
        ),
    )
