"""Checking and normalising call arguments into the unified request, before anything is sent."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._constants import MAX_TOP_LOGPROBS
from ._exceptions import ConfigError
from ._types import (
    AssistantMessage,
    DeveloperMessage,
    Message,
    MessageDict,
    SystemMessage,
    ToolMessage,
    UserMessage,
)

MessagesInput = str | Sequence[Message | MessageDict]

# The keys a message dict may have, by role: those of its TypedDict (one source for the type
# checker and this check), so a misspelt key is an error instead of a field the provider
# ignores or answers 400 to.
_KEYS: dict[str, frozenset[str]] = {
    role: frozenset(typed.__required_keys__ | typed.__optional_keys__)
    for role, typed in (
        ("system", SystemMessage),
        ("developer", DeveloperMessage),
        ("user", UserMessage),
        ("assistant", AssistantMessage),
        ("tool", ToolMessage),
    )
}
# An assistant turn may also carry what OpenAI-compatible replies put in their message (OpenAI's
# `annotations`, `audio`, `function_call`; vLLM's and OpenRouter's `reasoning`...), so the raw
# message of a reply can be appended to the conversation as it came.
_KEYS["assistant"] |= {"annotations", "audio", "function_call", "reasoning", "reasoning_details"}
_ROLES = frozenset(_KEYS)


# Internal records are plain slotted classes: a dataclass costs ~1 ms of import time each.


class ChatRequest:
    """A provider-neutral chat request. `messages` are OpenAI-shaped dicts; `params` holds the
    named sampling parameters that were given (never `None` values); `output` is the
    structured-output spec (`_structured.OutputSpec`) when `response_format` asked for one."""

    __slots__ = ("extra_body", "extra_headers", "messages", "model", "output", "params", "stream")

    def __init__(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        stream: bool = False,
        output: Any = None,
    ) -> None:
        self.model = model
        self.messages = messages
        self.params = params
        self.extra_body = extra_body
        self.extra_headers = extra_headers
        self.stream = stream
        self.output = output


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


def _did_you_mean(word: object, choices: frozenset[str]) -> str:
    if not isinstance(word, str):
        return ""
    from difflib import get_close_matches  # only on the error path

    close = get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_message(item: object, position: int) -> dict[str, Any]:
    typed = False
    if type(item) is dict:  # the usual case, checked first (a Mapping check costs more)
        msg = item
    elif isinstance(item, Message):
        typed = True  # its fields are its keys: nothing misspelt
        msg = item.to_dict()
    elif isinstance(item, Mapping):
        msg = item if isinstance(item, dict) else dict(item)
    else:
        raise ConfigError(
            f"messages[{position}] must be a Message or a dict with 'role' and 'content', "
            f"got {type(item).__name__}"
        )
    role = msg.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise ConfigError(
            f"messages[{position}] has role {role!r}{_did_you_mean(role, _ROLES)}; "
            f"expected one of {sorted(_ROLES)}"
        )
    keys = _KEYS[role]
    if not typed and not msg.keys() <= keys:
        key = next(k for k in msg if k not in keys)
        raise ConfigError(
            f"messages[{position}] has an unknown key {key!r}{_did_you_mean(key, keys)}; "
            f"a {role} message takes {', '.join(sorted(keys))}"
        )
    content = msg.get("content")
    if type(content) is not str:  # a plain string, the usual case, needs no more checks
        msg = _check_content(msg, content, role, position)
    if role == "tool" and not msg.get("tool_call_id"):
        raise ConfigError(f"messages[{position}] is a tool result without 'tool_call_id'")
    return msg


def _check_content(msg: dict[str, Any], content: Any, role: str, position: int) -> dict[str, Any]:
    """A message whose content is not a str: a list of parts (a tuple becomes one) or None."""
    if isinstance(content, tuple):  # typed as a Sequence; the adapters read lists
        content = list(content)
        msg = {**msg, "content": content}
    if content is not None and not isinstance(content, str | list):
        raise ConfigError(
            f"messages[{position}].content must be a string, a list of parts or None, "
            f"got {type(content).__name__}"
        )
    if content is None and role != "assistant":
        raise ConfigError(f"messages[{position}] ({role}) has no content")
    if isinstance(content, list):
        for index, part in enumerate(content):
            _check_part(part, f"messages[{position}].content[{index}]")
    return msg


def _check_part(part: object, where: str) -> None:
    """The parts every family reads; other types (a provider's own blocks) pass as they are."""
    if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
        raise ConfigError(f"{where} must be a dict with a 'type', such as 'text' or 'image_url'")
    kind = part["type"]
    if kind == "text" and not isinstance(part.get("text"), str):
        raise ConfigError(f"{where} is a text part without a string 'text'")
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else image  # some take a bare URL
        if not isinstance(url, str):
            raise ConfigError(f"{where} is an image_url part without 'image_url': {{'url': ...}}")


def normalize_messages(messages: MessagesInput) -> list[dict[str, Any]]:
    """A str becomes one user message; a sequence is checked item by item (dicts are not copied)."""
    if isinstance(messages, str):
        if not messages:
            raise ConfigError("the prompt is an empty string")
        return [{"role": "user", "content": messages}]
    if type(messages) is not list and (
        isinstance(messages, Message | Mapping | bytes | bytearray)
        or not isinstance(messages, Sequence)
    ):
        one = " (one message? put it in a list)" if isinstance(messages, Message | Mapping) else ""
        raise ConfigError(
            "messages must be a str or a list of Message/dict items, "
            f"got {type(messages).__name__}{one}"
        )
    if not messages:
        raise ConfigError("messages is empty")
    return [_check_message(item, i) for i, item in enumerate(messages)]


def _check_number(name: str, value: Any, low: float, high: float | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):  # NaN slips past the bounds below: every comparison is False
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")


def build_params(
    *,
    temperature: float | None,
    max_tokens: int | None,
    top_p: float | None,
    stop: str | Sequence[str] | None,
    tools: Sequence[Mapping[str, Any] | Callable[..., Any]] | None,
    tool_choice: Any,
    response_format: Any,
    seed: int | None,
    n: int | None = None,
    logprobs: bool | None = None,
    top_logprobs: int | None = None,
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
        if isinstance(tools, Mapping | str) or callable(tools):
            raise ConfigError("tools takes a list of functions or tool dicts")
        if all(isinstance(t, Mapping) for t in tools):
            tool_list = [dict(t) for t in tools if isinstance(t, Mapping)]
        else:
            from ._tools import tool_specs  # a plain function: its schema from its signature

            tool_list = tool_specs(tools)
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
    if logprobs is not None or top_logprobs is not None:
        params.update(_logprob_params(logprobs, top_logprobs))
    return params


def _logprob_params(logprobs: bool | None, top_logprobs: int | None) -> dict[str, Any]:
    """``logprobs`` (a bool) and ``top_logprobs`` (0..MAX_TOP_LOGPROBS, only with logprobs)."""
    if logprobs is not None and not isinstance(logprobs, bool):
        raise ConfigError(f"logprobs must be True or False, got {logprobs!r}")
    if top_logprobs is not None:
        if (
            isinstance(top_logprobs, bool)
            or not isinstance(top_logprobs, int)
            or not 0 <= top_logprobs <= MAX_TOP_LOGPROBS
        ):
            raise ConfigError(
                f"top_logprobs must be an int between 0 and {MAX_TOP_LOGPROBS}, "
                f"got {top_logprobs!r}"
            )
        if not logprobs:
            raise ConfigError("top_logprobs needs logprobs=True")
    if not logprobs:
        return {}
    if top_logprobs is None:
        return {"logprobs": True}
    return {"logprobs": True, "top_logprobs": top_logprobs}


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


# `json.dumps` with any non-default option builds a `JSONEncoder` on every call (~0.8 µs); one
# kept here gives the same text and errors (an encoder keeps no state between calls).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_body(body: Any, provider: str) -> bytes:
    """The request body as JSON. NaN and ±Infinity are not JSON (Python would write `NaN`, which
    servers answer 400 or 500 to, and a 500 would be retried), and a value JSON has no type for
    is not one either: each is a `ConfigError` naming where in the body it is."""
    try:
        text = _ENCODER.encode(body)
    except (TypeError, ValueError, RecursionError) as exc:
        try:
            where = _unencodable(body, "", set()) or str(exc)
        except RecursionError:  # nested deeper than Python can walk
            where = str(exc)
        raise ConfigError(f"{provider}: the request body cannot be sent as JSON: {where}") from None
    try:
        return text.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from bytes decoded with errors
        raise ConfigError(
            f"{provider}: the request body holds text that is not valid Unicode (a lone "
            f"surrogate {exc.object[exc.start]!r} at character {exc.start} of the body)"
        ) from None


def _unencodable(value: Any, path: str, open_containers: set[int]) -> str | None:
    """What `json.dumps(..., allow_nan=False)` refuses first in `value`, said for a person."""
    here = path or "the body"
    if value is None or isinstance(value, str | int):  # bool is an int
        return None
    if isinstance(value, float):
        return (
            None if math.isfinite(value) else f"{here} is {value!r} (JSON has no NaN or Infinity)"
        )
    if not isinstance(value, dict | list | tuple):
        return f"{here} is of type {type(value).__name__}, which JSON cannot encode"
    if id(value) in open_containers:
        return f"{here} contains itself"
    open_containers.add(id(value))
    if isinstance(value, dict):
        items: Any = value.items()
    else:
        items = enumerate(value)
    for key, item in items:
        if isinstance(value, dict):
            if not (key is None or isinstance(key, str | int | float)):
                return f"{here} has a key of type {type(key).__name__}, which JSON cannot encode"
            if isinstance(key, float) and not math.isfinite(key):
                return f"{here} has the key {key!r} (JSON has no NaN or Infinity)"
            where = f"{path}.{key}" if path else str(key)
        else:
            where = f"{path}[{key}]"
        found = _unencodable(item, where, open_containers)
        if found:
            return found
    open_containers.discard(id(value))
    return None
