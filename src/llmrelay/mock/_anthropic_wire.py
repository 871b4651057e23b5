"""The mock's Anthropic face: Messages (plain and streamed), token counting, models."""

from __future__ import annotations

from typing import Any

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
    opt_int,
    require_object,
    sse,
)

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
        return find_route(_ROUTES, method, path)

    def model_of(self, endpoint: str, path: str, payload: JSONObject | None) -> str | None:
        return body_model(payload)

    def answer(self, endpoint: str, payload: JSONObject | None, call: Call) -> Answer:
        if endpoint == "models":
            data = [
                {"type": "model", "id": model, "display_name": model, "created_at": CREATED_ISO}
                for model in MOCK_MODELS
            ]
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
        reply = echo_reply(texts, last_user, max_tokens, call.chunks)
        message_id = f"msg_mock_{call.response_id}"
        stop_reason = "max_tokens" if reply.truncated else "end_turn"
        if payload.get("stream") is True:
            return _stream(message_id, call.model, reply, stop_reason)
        return _message(message_id, call.model, [_text_block(reply.text)], stop_reason, reply)

    def error_body(
        self, status: int, message: str, *, request_id: str, retry_delay: float | None
    ) -> JSONObject:
        kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request_id,
        }


def _text_block(text: str) -> JSONObject:
    return {"type": "text", "text": text}


def _message(
    message_id: str,
    model: str,
    content: list[Any],
    stop_reason: str | None,
    reply: EchoReply,
    output_tokens: int | None = None,
) -> JSONObject:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.prompt_tokens,
            "output_tokens": reply.completion_tokens if output_tokens is None else output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _event(kind: str, **fields: Any) -> bytes:
    return sse({"type": kind, **fields}, event=kind)


def _stream(message_id: str, model: str, reply: EchoReply, stop_reason: str) -> StreamPlan:
    start = _message(message_id, model, [], None, reply, output_tokens=1)
    error = {"type": "overloaded_error", "message": "Overloaded"}
    return StreamPlan(
        prefix=(
            _event("message_start", message=start),
            _event("content_block_start", index=0, content_block=_text_block("")),
            _event("ping"),
        ),
        content=tuple(
            _event("content_block_delta", index=0, delta={"type": "text_delta", "text": delta})
            for delta in reply.deltas
        ),
        suffix=(
            _event("content_block_stop", index=0),
            _event(
                "message_delta",
                delta={"stop_reason": stop_reason, "stop_sequence": None},
                usage={"output_tokens": reply.completion_tokens},
            ),
            _event("message_stop"),
        ),
        error_event=sse({"type": "error", "error": error}, event="error"),
        malformed_event=sse(
            b'{"type": "content_block_delta", "index": 0, "delta": {', "content_block_delta"
        ),
    )
