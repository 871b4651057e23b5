"""Checking and normalising call arguments into the unified request, before anything is sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._exceptions import ConfigError
from ._types import Message

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})

MessagesInput = str | Sequence[Message | Mapping[str, Any]]


# Internal records are plain slotted classes: a dataclass costs ~1 ms of import time each.


class ChatRequest:
    """A provider-neutral chat request. `messages` are OpenAI-shaped dicts; `params` holds the
    named sampling parameters that were given (never `None` values)."""

    __slots__ = ("extra_body", "extra_headers", "messages", "model", "params", "stream")

    def __init__(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> None:
        self.model = model
        self.messages = messages
        self.params = params
        self.extra_body = extra_body
        self.extra_headers = extra_headers
        self.stream = stream


class WireRequest:
    """What a provider adapter asks the pipeline to send. `path` is joined to the base URL
    unless it is absolute."""

    __slots__ = ("headers", "json", "method", "params", "path")

    def __init__(
        self,
        *,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.json = json
        self.headers = headers
        self.params = params

    def __repr__(self) -> str:
        return f"WireRequest({self.method} {self.path})"


def _check_message(item: Message | Mapping[str, Any], position: int) -> dict[str, Any]:
    if isinstance(item, Message):
        msg = item.to_dict()
    elif isinstance(item, Mapping):
        msg = item if isinstance(item, dict) else dict(item)
    else:
        raise ConfigError(
            f"messages[{position}] must be a Message or a dict with 'role' and 'content', "
            f"got {type(item).__name__}"
        )
    role = msg.get("role")
    if role not in _ROLES:
        raise ConfigError(
            f"messages[{position}] has role {role!r}; expected one of {sorted(_ROLES)}"
        )
    content = msg.get("content")
    if content is not None and not isinstance(content, str | list):
        raise ConfigError(
            f"messages[{position}].content must be a string, a list of parts or None, "
            f"got {type(content).__name__}"
        )
    if content is None and role != "assistant":
        raise ConfigError(f"messages[{position}] ({role}) has no content")
    if role == "tool" and not msg.get("tool_call_id"):
        raise ConfigError(f"messages[{position}] is a tool result without 'tool_call_id'")
    return msg


def normalize_messages(messages: MessagesInput) -> list[dict[str, Any]]:
    """A str becomes one user message; a sequence is checked item by item (dicts are not copied)."""
    if isinstance(messages, str):
        if not messages:
            raise ConfigError("the prompt is an empty string")
        return [{"role": "user", "content": messages}]
    if isinstance(messages, Message | Mapping) or not isinstance(messages, Sequence):
        raise ConfigError(
            f"messages must be a str or a list of Message/dict items, got {type(messages).__name__}"
        )
    if not messages:
        raise ConfigError("messages is empty")
    return [_check_message(item, i) for i, item in enumerate(messages)]  # type: ignore[arg-type]


def _check_number(name: str, value: Any, low: float, high: float | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")


def build_params(
    *,
    temperature: float | None,
    max_tokens: int | None,
    top_p: float | None,
    stop: str | Sequence[str] | None,
    tools: Sequence[Mapping[str, Any]] | None,
    tool_choice: Any,
    response_format: Any,
    seed: int | None,
    n: int | None = None,
) -> dict[str, Any]:
    """The named parameters that were given, checked. Provider adapters rename them."""
    params: dict[str, Any] = {}
    if temperature is not None:
        _check_number("temperature", temperature, 0.0, 2.0)
        params["temperature"] = temperature
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigError(f"max_tokens must be a positive int, got {max_tokens!r}")
        params["max_tokens"] = max_tokens
    if top_p is not None:
        _check_number("top_p", top_p, 0.0, 1.0)
        params["top_p"] = top_p
    if stop is not None:
        # Sent as given: OpenAI-compatible services take a str or a list (some only a str);
        # the Anthropic and Gemini adapters wrap a str in the list they need.
        if isinstance(stop, str):
            params["stop"] = stop
        else:
            try:
                stops: list[Any] = list(stop)
            except TypeError:  # not iterable
                stops = [stop]
            if not all(isinstance(s, str) for s in stops):
                raise ConfigError("stop must be a string or a list of strings")
            params["stop"] = stops
    if tools is not None:
        tool_list = [dict(t) for t in tools]
        for i, tool in enumerate(tool_list):
            fn = tool.get("function") if tool.get("type", "function") == "function" else None
            if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
                raise ConfigError(
                    f"tools[{i}] must look like {{'type': 'function', 'function': "
                    "{'name': ..., 'parameters': {...}}}"
                )
        params["tools"] = tool_list
    if tool_choice is not None:
        params["tool_choice"] = tool_choice
    if response_format is not None:
        params["response_format"] = response_format
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"seed must be an int, got {seed!r}")
        params["seed"] = seed
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n (how many choices) must be a positive int, got {n!r}")
        params["n"] = n
    return params


def estimate_tokens(messages: list[dict[str, Any]], chars_per_token: int) -> int:
    """A cheap upper-ish estimate of prompt tokens, for the client-side token budget."""
    chars = 0
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    chars += len(part["text"])
    return max(1, chars // chars_per_token)
