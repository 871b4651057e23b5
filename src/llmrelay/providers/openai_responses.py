"""OpenAI Responses API (``POST /v1/responses``) with llmrelay's unified types.

Chosen with ``AsyncClient(provider="openai", api="responses")`` (any OpenAI-compatible preset
whose server has the endpoint). Embeddings and models are the Chat Completions adapter's.

Request: messages become ``input`` items (system/developer/user/assistant messages; an
assistant's tool calls become ``function_call`` items and tool results ``function_call_output``
items); ``max_tokens`` is ``max_output_tokens``; tools are flattened to the Responses shape
(``strict`` stays off unless the tool asks for it); ``response_format`` becomes ``text.format``.
``stop``, ``seed`` and ``n`` > 1 do not exist here (a `ConfigError`). Everything else of the
endpoint (``previous_response_id``, ``store``, ``reasoning``, ``include``, built-in tools...)
goes through ``extra_body``.

Reply: ``output_text`` parts are the text, ``refusal`` parts the refusal, ``function_call``
items the tool calls (their ``call_id`` is the id to answer), ``reasoning`` summaries the
reasoning. ``finish_reason`` is ``"tool_calls"`` when the model called a function, ``"length"``
for an ``incomplete`` reply cut at ``max_output_tokens``, ``"content_filter"`` when it was
filtered, else ``"stop"``. `reply.id` is the response id to pass as ``previous_response_id``.

Stream: typed events (``response.output_text.delta``, ``response.refusal.delta``,
``response.reasoning_summary_text.delta``, ``response.output_item.added`` /
``response.function_call_arguments.delta`` for tool calls, ``response.completed`` /
``response.incomplete`` with usage and the finish reason) become `StreamChunk`s;
``response.failed`` and ``error`` raise the typed error of their code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigError
from .._request import ChatRequest, WireRequest
from .._types import (
    ChatResponse,
    Choice,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    Usage,
    make_stream_chunk,
)
from . import openai as _chat_api
from ._base import Provider
from ._common import (
    arguments_text,
    as_int,
    bad_response,
    forced_function,
    load_event,
    make_tool_call,
    reply_of_choices,
    str_or_none,
)

if TYPE_CHECKING:
    from .._sse import ServerSentEvent

request_id_header = _chat_api.request_id_header
auth_headers = _chat_api.auth_headers
build_embed = _chat_api.build_embed
parse_embed = _chat_api.parse_embed
build_models = _chat_api.build_models
parse_models = _chat_api.parse_models
parse_error = _chat_api.parse_error

_UNSUPPORTED = {
    "stop": "the Responses API has no stop sequences; leave stop out",
    "seed": "the Responses API has no seed; leave seed out",
    "logprobs": "llmrelay does not read the Responses API's logprobs yet; use api='chat' "
    "(the default) for logprobs",
}


# -- request -----------------------------------------------------------------------------------


def build_chat(provider: Provider, request: ChatRequest) -> WireRequest:
    params = request.params
    for name, why in _UNSUPPORTED.items():
        if name in params:
            raise ConfigError(f"{provider.name} (api='responses'): {why}")
    if params.get("n", 1) != 1:
        raise ConfigError(
            f"{provider.name} (api='responses') gives one reply per request (no n); send "
            "several requests instead, e.g. with client.batch([prompt] * n)"
        )
    body: dict[str, Any] = {"model": request.model, "input": input_items(request.messages)}
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("max_tokens", "max_output_tokens"),
    ):
        if ours in params:
            body[theirs] = params[ours]
    if "tools" in params:
        body["tools"] = [_tool(tool) for tool in params["tools"]]
    if "tool_choice" in params:
        body["tool_choice"] = _tool_choice(params["tool_choice"])
    if "response_format" in params:
        body["text"] = {"format": _text_format(params["response_format"])}
    if request.stream:
        body["stream"] = True
    if request.extra_body:
        body.update(request.extra_body)
    return WireRequest(method="POST", path="responses", json=body)


def input_items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-shaped messages as Responses ``input`` items."""
    items: list[dict[str, Any]] = []
    for position, msg in enumerate(messages):
        role = msg["role"]
        content = msg.get("content")
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": msg["tool_call_id"],
                    "output": content if isinstance(content, str) else _text_of(content),
                }
            )
            continue
        if role == "assistant":
            if content:
                text = content if isinstance(content, str) else _text_of(content)
                items.append({"role": "assistant", "content": text})
            for call in msg.get("tool_calls") or ():
                items.append(_call_item(call, position))
            continue
        items.append({"role": role, "content": _content(content, role, position)})
    return items


def _text_of(content: Any) -> str:
    if not isinstance(content, list):
        return ""
    return "".join(
        part.get("text", "") for part in content if isinstance(part, Mapping) and "text" in part
    )


def _content(content: Any, role: str, position: int) -> Any:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or ():
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "input_text", "text": part["text"]})
        elif kind == "image_url" and role == "user":
            image = part["image_url"]
            url = image.get("url") if isinstance(image, Mapping) else image
            detail = image.get("detail", "auto") if isinstance(image, Mapping) else "auto"
            parts.append({"type": "input_image", "image_url": url, "detail": detail})
        elif kind in ("input_text", "input_image", "input_file"):
            parts.append(dict(part))  # already in the Responses shape
        else:
            raise ConfigError(
                f"messages[{position}]: a {kind!r} part has no Responses API form here; "
                "send it with api='chat'"
            )
    return parts


def _call_item(call: Any, position: int) -> dict[str, Any]:
    if not isinstance(call, Mapping):
        raise ConfigError(f"messages[{position}] has a tool call that is not an object")
    if call.get("type") == "custom":
        custom = call.get("custom") or {}
        return {
            "type": "custom_tool_call",
            "call_id": call.get("id"),
            "name": custom.get("name"),
            "input": custom.get("input", ""),
        }
    fn = call.get("function") or {}
    return {
        "type": "function_call",
        "call_id": call.get("id"),
        "name": fn.get("name"),
        "arguments": fn.get("arguments") or "{}",
    }


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A Chat Completions function tool in the Responses shape (name at the top level);
    ``strict`` is sent as given, else off (the Responses API turns it on when left out, and
    then refuses any schema that is not strict-compatible)."""
    if tool.get("type", "function") != "function":
        return dict(tool)
    fn = tool["function"]
    out: dict[str, Any] = {"type": "function", "name": fn["name"]}
    if fn.get("description"):
        out["description"] = fn["description"]
    out["parameters"] = fn.get("parameters") or {"type": "object", "properties": {}}
    out["strict"] = bool(fn.get("strict", False))
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    name = forced_function(choice)
    if name is not None:
        return {"type": "function", "name": name}
    return choice  # already in the Responses shape (e.g. {"type": "web_search"})


def _text_format(fmt: Any) -> dict[str, Any]:
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        spec = fmt.get("json_schema") or {}
        out: dict[str, Any] = {"type": "json_schema", "name": spec.get("name") or "output"}
        out["schema"] = spec.get("schema") or {}
        if "strict" in spec:
            out["strict"] = bool(spec["strict"])
        if spec.get("description"):
            out["description"] = spec["description"]
        return out
    raise ConfigError(
        f"response_format must be {{'type': 'text' | 'json_object' | 'json_schema', ...}}, got {fmt!r}"
    )


# -- reply -------------------------------------------------------------------------------------


def parse_usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt = as_int(data.get("input_tokens"))
    completion = as_int(data.get("output_tokens"))
    inputs = data.get("input_tokens_details")
    outputs = data.get("output_tokens_details")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=as_int(data.get("total_tokens")) or prompt + completion,
        cached_tokens=as_int(inputs.get("cached_tokens")) if isinstance(inputs, dict) else 0,
        reasoning_tokens=as_int(outputs.get("reasoning_tokens"))
        if isinstance(outputs, dict)
        else 0,
    )


def _finish_reason(response: dict[str, Any], called: bool) -> str | None:
    status = response.get("status")
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return "content_filter" if reason == "content_filter" else "length"
    if status == "completed":
        return "tool_calls" if called else "stop"
    return str_or_none(status)


def _raise_failed(provider: Provider, response: Any, request_id: str | None = None) -> None:
    """A ``failed`` response (or an ``error`` field): the typed error of its code."""
    if not isinstance(response, dict):
        return
    error = response.get("error")
    if response.get("status") == "failed" or isinstance(error, dict):
        err = error if isinstance(error, dict) else {"message": "the response failed"}
        _chat_api._raise_error(provider, err, response, request_id)


def parse_chat(provider: Provider, data: Any, request_id: str | None) -> ChatResponse:
    if not isinstance(data, dict):
        raise bad_response(provider.name, "the body is not a JSON object", data)
    _raise_failed(provider, data, request_id)
    output = data.get("output")
    if not isinstance(output, list):
        raise bad_response(provider.name, "no 'output' list in the response", data)
    texts: list[str] = []
    refusals: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for item in output:
        if not isinstance(item, dict):
            raise bad_response(provider.name, "an output item is not an object", data)
        kind = item.get("type")
        if kind == "message":
            content = item.get("content")
            for part in content if isinstance(content, list) else ():
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                    refusals.append(part["refusal"])
        elif kind == "function_call":
            calls.append(_function_call(provider, item, data))
        elif kind == "custom_tool_call":
            name, text = item.get("name"), item.get("input")
            if not isinstance(name, str) or not isinstance(text, str):
                raise bad_response(provider.name, "a custom tool call has no name or input", data)
            call_id = str_or_none(item.get("call_id")) or f"call_{len(calls)}"
            calls.append(ToolCall(id=call_id, name=name, type="custom", input=text))
        elif kind == "reasoning":
            reasoning.extend(_summary_texts(item))
    choice = Choice(
        index=0,
        text="".join(texts),
        finish_reason=_finish_reason(data, bool(calls)),
        tool_calls=tuple(calls),
        reasoning="\n\n".join(reasoning) if reasoning else None,
        refusal="".join(refusals) or None,
    )
    return reply_of_choices(
        [choice],
        usage=parse_usage(data.get("usage")),
        model=str_or_none(data.get("model")),
        id=str_or_none(data.get("id")),
        request_id=request_id,
        provider=provider.name,
        raw=data,
    )


def _function_call(provider: Provider, item: dict[str, Any], data: Any) -> ToolCall:
    name = item.get("name")
    arguments = arguments_text(item.get("arguments"))
    if not isinstance(name, str) or arguments is None:
        raise bad_response(provider.name, "a function call has no name or arguments", data)
    call_id = str_or_none(item.get("call_id")) or str_or_none(item.get("id")) or "call_0"
    return make_tool_call(call_id, name, arguments)


def _summary_texts(item: dict[str, Any]) -> list[str]:
    out = []
    summary = item.get("summary")
    for part in summary if isinstance(summary, list) else ():
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            out.append(part["text"])
    return out


# -- stream ------------------------------------------------------------------------------------

_TEXT_EVENTS = frozenset({"response.output_text.delta"})
_REASONING_EVENTS = frozenset(
    {"response.reasoning_summary_text.delta", "response.reasoning_text.delta"}
)


class StreamParser:
    """Responses API stream events → `StreamChunk`s (see the module doc). Tool calls are
    numbered in the order their items open; `done` is True after ``response.completed``,
    ``response.incomplete`` (or a ``response.failed``, which raises)."""

    __slots__ = ("_calls", "_filled", "_provider", "_summary_seen", "done")

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self.done = False
        self._calls: dict[Any, int] = {}  # output_index → tool-call index
        self._filled: set[Any] = set()  # tool calls whose arguments came as deltas
        self._summary_seen: set[tuple[Any, Any]] = set()  # (item, summary part) seen

    def finished(self) -> bool:
        return self.done

    def parse(self, event: ServerSentEvent) -> StreamChunk | None:
        if self.done or not event.data or event.data == "[DONE]":
            return None
        obj = load_event(self._provider.name, event.data)
        kind = obj.get("type") or event.event
        if kind in _TEXT_EVENTS:
            return _chunk(text=_delta(obj), raw=obj)
        if kind in _REASONING_EVENTS:
            return self._reasoning(obj)
        if kind == "response.refusal.delta":
            return _chunk(refusal=_delta(obj), raw=obj)
        if kind == "response.output_item.added":
            return self._item_added(obj)
        if kind == "response.function_call_arguments.delta":
            return self._arguments(obj, _delta(obj))
        if kind == "response.function_call_arguments.done":
            index = _key(obj.get("output_index"))
            if index in self._calls and index not in self._filled:  # no deltas came
                return self._arguments(obj, str_or_none(obj.get("arguments")) or "")
            return None
        if kind == "response.created":
            response = obj.get("response")
            if isinstance(response, dict):
                return _chunk(
                    role="assistant",
                    id=str_or_none(response.get("id")),
                    model=str_or_none(response.get("model")),
                    raw=obj,
                )
            return None
        if kind in ("response.completed", "response.incomplete"):
            self.done = True
            response = obj.get("response")
            if not isinstance(response, dict):
                raise bad_response(self._provider.name, f"{kind} has no response object", obj)
            return _chunk(
                finish=_finish_reason(response, bool(self._calls)),
                usage=parse_usage(response.get("usage")),
                id=str_or_none(response.get("id")),
                model=str_or_none(response.get("model")),
                raw=obj,
            )
        if kind == "response.failed":
            self.done = True
            response = obj.get("response")
            _raise_failed(self._provider, response)
            raise bad_response(self._provider.name, "the response failed", obj)
        if kind == "error":
            self.done = True
            err = obj.get("error") if isinstance(obj.get("error"), dict) else obj
            _chat_api._raise_error(self._provider, err, obj)
        return None

    def _reasoning(self, obj: dict[str, Any]) -> StreamChunk:
        # Summary parts are separate paragraphs, as `parse_chat` joins them.
        key = (_key(obj.get("item_id")), _key(obj.get("summary_index")))
        text = _delta(obj)
        summary = obj.get("type") == "response.reasoning_summary_text.delta"
        if summary and key not in self._summary_seen:
            if self._summary_seen:
                text = "\n\n" + text
            self._summary_seen.add(key)
        return _chunk(reasoning=text, raw=obj)

    def _item_added(self, obj: dict[str, Any]) -> StreamChunk | None:
        item = obj.get("item")
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return None
        index = len(self._calls)
        output_index = _key(obj.get("output_index", index))
        self._calls[output_index] = index
        arguments = arguments_text(item.get("arguments")) or ""
        if arguments:
            self._filled.add(output_index)
        delta = ToolCallDelta(
            index=index,
            id=str_or_none(item.get("call_id")) or str_or_none(item.get("id")),
            name=str_or_none(item.get("name")),
            arguments=arguments,
        )
        return _chunk(tool_calls=(delta,), raw=obj)

    def _arguments(self, obj: dict[str, Any], text: str) -> StreamChunk | None:
        output_index = _key(obj.get("output_index"))
        index = self._calls.get(output_index)
        if index is None:
            raise bad_response(
                self._provider.name, "function-call arguments for an item never opened", obj
            )
        self._filled.add(output_index)
        return _chunk(tool_calls=(ToolCallDelta(index=index, arguments=text),), raw=obj)


def _key(value: Any) -> Any:
    """An event's index or id as a dict key: a value of another JSON type (a list, an object)
    cannot be one, so it stands as its text."""
    return value if value is None or isinstance(value, str | int | float) else repr(value)


def _delta(obj: dict[str, Any]) -> str:
    delta = obj.get("delta")
    return delta if isinstance(delta, str) else ""


def _chunk(
    *,
    text: str = "",
    reasoning: str | None = None,
    tool_calls: tuple[ToolCallDelta, ...] | None = None,
    finish: str | None = None,
    usage: Usage | None = None,
    role: str | None = None,
    refusal: str | None = None,
    id: str | None = None,
    model: str | None = None,
    raw: Any = None,
) -> StreamChunk:
    return make_stream_chunk(
        text, reasoning, tool_calls, finish, usage, role, refusal, id, model, None, raw
    )


def new_stream_parser(provider: Provider, request: ChatRequest) -> StreamParser:
    return StreamParser(provider)


def with_responses_api(provider: Provider) -> Provider:
    """`provider` speaking the Responses API (an OpenAI-compatible preset only)."""
    import dataclasses
    import sys

    if provider.adapter is not _chat_api:
        raise ConfigError(
            f"api='responses' is for OpenAI-compatible providers; {provider.name!r} speaks "
            "another wire format (leave api out)"
        )
    return dataclasses.replace(provider, adapter=sys.modules[__name__])
