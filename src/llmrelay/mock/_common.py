"""Pieces every wire family of the mock shares: the echo model, token counts, embeddings,
SSE framing, and the small protocol a wire family implements."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

JSONObject: TypeAlias = dict[str, Any]

# The echo model's list, as every family's `models` endpoint reports it.
MOCK_MODELS = ("mock-echo", "mock-echo-large", "mock-embed")
CREATED = 1_700_000_000  # a fixed "created" timestamp keeps every answer deterministic
CREATED_ISO = "2023-11-14T22:13:20Z"  # the same instant, for Anthropic
ECHO_PREFIX = "echo: "
CHARS_PER_TOKEN = 4  # prompt tokens are estimated as ceil(characters / 4), at least 1
DEFAULT_EMBEDDING_DIMS = 8
MAX_EMBEDDING_DIMS = 4096
MAX_CHUNKS = 10_000  # content deltas a stream may be asked for (x-mock-chunks)

_PIECE = re.compile(r"\s*\S+\s*")
_MODEL_IN_PATH = re.compile(r"(?:^|/)models/([^/]+)/?$")


class RequestError(Exception):
    """The request is wrong; the engine answers `status` with the family's error body."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """What a wire family needs to know about one request besides its JSON body."""

    model: str | None  # the model the request names, any fault suffix removed
    response_id: str  # hex digest of the logical request: stable across retries
    chunks: int | None  # forced number of content chunks in a stream
    query: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamPlan:
    """A stream as SSE events: `prefix` (always sent), `content` (one event per text delta),
    `suffix` (finish, usage and terminator), plus the family's in-stream error event and a
    deliberately malformed event, for faults."""

    prefix: tuple[bytes, ...]
    content: tuple[bytes, ...]
    suffix: tuple[bytes, ...]
    error_event: bytes
    malformed_event: bytes


Answer: TypeAlias = JSONObject | list[Any] | StreamPlan


class Wire(Protocol):
    """One wire family (OpenAI, Anthropic, Gemini) as the engine sees it."""

    name: str
    request_id_header: str | None

    def route(self, method: str, path: str) -> str | None:
        """The endpoint name for this method and path, or `None` if not ours."""

    def model_of(self, endpoint: str, path: str, payload: JSONObject | None) -> str | None:
        """The model a request names (in its body or its path)."""

    def answer(self, endpoint: str, payload: JSONObject | None, call: Call) -> Answer:
        """A JSON body (dict or list) or a stream plan; raise `RequestError` on bad input."""

    def error_body(
        self, status: int, message: str, *, request_id: str, retry_delay: float | None
    ) -> JSONObject:
        """The family's JSON error body for `status`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoReply:
    """The echo model's answer to one prompt."""

    text: str
    deltas: tuple[str, ...]  # what a stream sends; concatenated they are `text`
    prompt_tokens: int
    completion_tokens: int
    truncated: bool  # cut short by a max-tokens limit
    stop_sequence: str | None = None  # the stop sequence that ended the reply
    pieces: tuple[str, ...] = ()  # the reply's tokens


def echo_reply(
    prompt_texts: Sequence[str],
    user_text: str,
    max_tokens: int | None,
    chunks: int | None,
    *,
    text: str | None = None,
    stop: Sequence[str] = (),
) -> EchoReply:
    """Reply "echo: <last user text>" (or `text`), ended before the first of the `stop`
    sequences, cut to `max_tokens` word pieces, split for streaming."""
    full, stop_sequence = cut_at_stop(ECHO_PREFIX + user_text if text is None else text, stop)
    pieces = split_pieces(full)
    truncated = max_tokens is not None and max_tokens < len(pieces)
    if max_tokens is not None:
        pieces = pieces[:max_tokens]
    reply = "".join(pieces)
    deltas = tuple(pieces) if chunks is None else split_into(reply, pieces, chunks)
    return EchoReply(
        text=reply,
        deltas=deltas,
        prompt_tokens=estimate_tokens(prompt_texts),
        completion_tokens=len(pieces),
        truncated=truncated,
        stop_sequence=None if truncated else stop_sequence,
        pieces=tuple(pieces),
    )


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, str | None]:
    """`text` up to the earliest stop sequence in it, and that sequence (`None`: not found)."""
    found = [(text.find(seq), seq) for seq in stop if seq in text]
    if not found:
        return text, None
    at, seq = min(found)
    return text[:at], seq


def split_pieces(text: str) -> list[str]:
    """Word pieces with their surrounding spaces: "a  b " -> ["a  ", "b "]."""
    return _PIECE.findall(text) or ([text] if text else [])


def split_into(text: str, pieces: Sequence[str], n: int) -> tuple[str, ...]:
    """Exactly `n` deltas that concatenate to `text`.

    Up to the number of word pieces, whole pieces are grouped as evenly as possible; beyond it
    the text is cut into `n` even character slices; beyond its length every character is one
    delta and the remaining deltas are empty strings.
    """
    if n <= len(pieces):
        return tuple("".join(group) for group in _even_groups(list(pieces), n))
    if n <= len(text):
        return tuple("".join(group) for group in _even_groups(list(text), n))
    return (*text, *([""] * (n - len(text))))


def _even_groups(items: list[str], n: int) -> list[list[str]]:
    size, extra = divmod(len(items), n)
    groups, start = [], 0
    for index in range(n):
        end = start + size + (1 if index < extra else 0)
        groups.append(items[start:end])
        start = end
    return groups


def estimate_tokens(texts: Sequence[str]) -> int:
    """ceil(total characters / 4), at least 1."""
    return max(1, math.ceil(sum(len(text) for text in texts) / CHARS_PER_TOKEN))


def text_of(content: Any) -> str:
    """Text of a message's content: a string, or the `text` of each part/block/Gemini part."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        content = content.get("parts", [content])
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, Mapping)]
        return "".join(text for text in texts if isinstance(text, str))
    return ""


def conversation(
    payload: JSONObject,
    key: str,
    *,
    content_key: str | None,
    system: Any = None,
    default_role: str = "",
) -> tuple[list[str], str]:
    """(every prompt text, the last user text) of the turns in ``payload[key]``.

    A turn's text is read from its `content_key` (the whole turn when `None`, Gemini's
    ``{role, parts}``); a turn without a role counts as `default_role`; `system` (the family's
    top-level system field) counts towards the prompt first.
    """
    turns = require_list(payload, key)
    if not all(isinstance(turn, dict) for turn in turns):
        raise RequestError(f"{key}: each entry must be an object with a role and content")
    texts = [text_of(turn if content_key is None else turn.get(content_key)) for turn in turns]
    last_user = next(
        (
            text
            for turn, text in zip(reversed(turns), reversed(texts), strict=True)
            if turn.get("role", default_role) == "user" and not _only_tool_results(turn)
        ),
        "",
    )
    system_text = text_of(system)
    return ([system_text, *texts] if system_text else texts), last_user


def _only_tool_results(turn: Mapping[str, Any]) -> bool:
    """A user turn that only hands back tool results (Anthropic ``tool_result`` blocks, Gemini
    ``functionResponse`` parts): the echo answers the user's question before it instead."""
    parts = turn.get("content", turn.get("parts"))
    return (
        isinstance(parts, list)
        and bool(parts)
        and all(
            isinstance(part, Mapping)
            and (
                part.get("type") == "tool_result"
                or "functionResponse" in part
                or "function_response" in part
            )
            for part in parts
        )
    )


def body_model(payload: JSONObject | None) -> str | None:
    """The non-empty ``model`` string of a request body, if any."""
    model = payload.get("model") if payload else None
    return model if isinstance(model, str) and model else None


def embedding(text: str, dims: int = DEFAULT_EMBEDDING_DIMS) -> list[float]:
    """A deterministic unit vector of `dims` floats derived from SHA-256 of `text`."""
    raw = b""
    block = 0
    while len(raw) < 2 * dims:
        raw += hashlib.sha256(f"{block}:{text}".encode()).digest()
        block += 1
    values = [v / 32768 for v in struct.unpack(f"<{dims}h", raw[: 2 * dims])]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def embedding_base64(vector: Sequence[float]) -> str:
    """The vector as little-endian float32, base64 (OpenAI's `encoding_format: base64`)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: optional `event:` line, a `data:` line, a blank line."""
    payload = data if isinstance(data, bytes) else dumps(data)
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + payload + b"\n\n"


def ends_with(path: str, suffix: str) -> bool:
    """Whether `path` is `suffix` or ends with "/" + suffix (any base URL prefix is fine)."""
    path = path.rstrip("/")
    return path == suffix or path == "/" + suffix or path.endswith("/" + suffix)


def find_route(routes: Mapping[tuple[str, str], str], method: str, path: str) -> str | None:
    """The endpoint of the first ``(method, path suffix)`` in `routes` the request matches."""
    for (wanted, suffix), endpoint in routes.items():
        if method == wanted and ends_with(path, suffix):
            return endpoint
    return None


def model_in_path(method: str, path: str) -> str | None:
    """The id of a ``GET …/models/{id}`` request (one model's details), else `None`."""
    match = _MODEL_IN_PATH.search(path) if method == "GET" else None
    return match.group(1) if match else None


def unknown_model(model: str | None) -> RequestError:
    """The 404 of ``GET …/models/{id}`` for a model the mock does not serve."""
    return RequestError(f"The model '{model}' does not exist", status=404)


def opt_int(payload: JSONObject, *names: str, minimum: int = 1) -> int | None:
    """The first of `names` present in `payload` as an int >= minimum; 400 if it is not one."""
    for name in names:
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise RequestError(f"{name} must be an integer >= {minimum}, got {value!r}")
        return value
    return None


def require_list(payload: JSONObject, name: str) -> list[Any]:
    """`payload[name]` as a non-empty list; 400 otherwise."""
    value = payload.get(name)
    if not isinstance(value, list) or not value:
        raise RequestError(f"{name} must be a non-empty list")
    return value


def require_object(payload: Any, what: str) -> JSONObject:
    """`payload` as a JSON object; 400 otherwise."""
    if not isinstance(payload, dict):
        raise RequestError(f"{what} must be a JSON object")
    return payload
