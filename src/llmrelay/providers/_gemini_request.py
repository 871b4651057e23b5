"""Gemini request side: OpenAI-shaped messages and named params → a generateContent body.

The rules, in the order `build_body` applies them:

1. ``system``/``developer`` messages (wherever they are) become ``systemInstruction`` parts.
2. ``assistant`` becomes role ``model``: its text, then one ``functionCall`` part per tool
   call (``args`` decoded from the JSON string, ``id`` kept). Its ``reasoning_signature`` is
   echoed as ``thoughtSignature`` on the first ``functionCall`` part, else on the text part.
   Reasoning text is not sent back: Gemini only needs the signature.
3. ``tool`` results become ``functionResponse`` parts in a ``user`` turn; consecutive results
   share one turn (Gemini pairs them with the parallel calls of the previous model turn). The
   function name is looked up from the latest assistant tool call with that id.
4. Content parts: ``text`` → ``{text}``; ``image_url`` with a ``data:`` URL → ``inlineData``,
   with an http(s) URL → ``fileData``; ``input_audio`` → ``inlineData``.
5. Named params → ``generationConfig`` (``n`` → ``candidateCount``) / ``tools`` /
   ``toolConfig``; `extra_body` is merged
   last, one level deep, so ``{"generationConfig": {"thinkingConfig": ...}}`` adds to the
   mapped fields instead of replacing them.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from .._exceptions import ConfigError
from ._common import bad_tool_choice, data_url, forced_function, function_spec

_MODEL_PREFIXES = ("models/", "tunedModels/")
_SYSTEM_ROLES = frozenset({"system", "developer"})
# Used for an http(s) image whose URL has no recognisable extension.
_DEFAULT_IMAGE_MIME = "image/jpeg"
_TOOL_CHOICE_MODES = {"auto": "AUTO", "required": "ANY", "any": "ANY", "none": "NONE"}


def model_path(model: str) -> str:
    """``gemini-2.5-flash`` and ``models/gemini-2.5-flash`` both give ``models/gemini-2.5-flash``
    (tuned models keep their ``tunedModels/`` prefix). Characters that would end the path
    (``?``, ``#``, spaces) are escaped."""
    name = model.strip()
    if not name.startswith(_MODEL_PREFIXES):
        name = "models/" + name
    return quote(name, safe="/:;=+@,!$&'()*-._~")


def build_body(
    messages: list[dict[str, Any]],
    params: Mapping[str, Any],
    extra_body: Mapping[str, Any] | None,
) -> dict[str, Any]:
    system, contents = build_contents(messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    config = generation_config(params)
    if config:
        body["generationConfig"] = config
    tools = params.get("tools")
    if tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in tools]}]
    choice = params.get("tool_choice")
    if choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _calling_config(choice)}
    if extra_body:
        for key, value in extra_body.items():
            current = body.get(key)
            if isinstance(current, dict) and isinstance(value, Mapping):
                body[key] = {**current, **value}
            else:
                body[key] = value
    return body


# -- messages -----------------------------------------------------------------------------------


def build_contents(
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(systemInstruction parts, contents) for a list of OpenAI-shaped message dicts."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, latest turn wins
    results: list[dict[str, Any]] | None = None  # the open turn of consecutive tool results
    for position, msg in enumerate(messages):
        role = msg.get("role")
        if role == "tool":
            part = _function_response(msg, position, call_names)
            if results is None:
                results = []
                contents.append({"role": "user", "parts": results})
            results.append(part)
            continue
        results = None
        if role in _SYSTEM_ROLES:
            system.extend(_parts(msg.get("content"), position))
        elif role == "assistant":
            turn = _model_turn(msg, position, call_names)
            if turn is not None:
                contents.append(turn)
        else:
            parts = _parts(msg.get("content"), position)
            if parts:
                contents.append({"role": "user", "parts": parts})
    return system, contents


def _model_turn(
    msg: dict[str, Any], position: int, call_names: dict[str, str]
) -> dict[str, Any] | None:
    parts = _parts(msg.get("content"), position)
    calls = []
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise ConfigError(f"messages[{position}].tool_calls has an entry without a name")
        function_call: dict[str, Any] = {
            "name": fn["name"],
            "args": _arguments(fn.get("arguments"), position),
        }
        call_id = call.get("id")
        if isinstance(call_id, str) and call_id:
            function_call["id"] = call_id
            call_names[call_id] = fn["name"]
        calls.append({"functionCall": function_call})
    signature = msg.get("reasoning_signature")
    if signature:
        target = calls[0] if calls else parts[0] if parts else None
        if target is None:
            parts.append({"text": ""})
            target = parts[0]
        target["thoughtSignature"] = signature
    parts.extend(calls)
    return {"role": "model", "parts": parts} if parts else None


def _arguments(arguments: Any, position: int) -> dict[str, Any]:
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if arguments is None or arguments == "":
        return {}
    try:
        value = json.loads(arguments) if isinstance(arguments, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError(
            f"messages[{position}].tool_calls: Gemini needs the arguments as a JSON object, "
            f"got {str(arguments)[:100]!r}"
        )
    return value


def _function_response(
    msg: dict[str, Any], position: int, call_names: dict[str, str]
) -> dict[str, Any]:
    call_id = msg.get("tool_call_id")
    name = call_names.get(call_id) if isinstance(call_id, str) else None
    name = name or msg.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"messages[{position}] is a tool result for tool_call_id {call_id!r}, but no earlier "
            "assistant message has a tool call with that id (Gemini needs the function name; "
            "or give the tool message a 'name')"
        )
    response: dict[str, Any] = {"name": name, "response": _result_object(msg.get("content"))}
    if isinstance(call_id, str) and call_id:
        response["id"] = call_id
    return {"functionResponse": response}


def _result_object(content: Any) -> dict[str, Any]:
    """Gemini wants a JSON object: a JSON-object string is passed as it is, anything else goes
    under ``output`` (the key Google's docs suggest)."""
    if isinstance(content, list):
        content = "".join(
            p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text"
        )
    if isinstance(content, str):
        try:
            value = json.loads(content)
        except ValueError:
            return {"output": content}
        return value if isinstance(value, dict) else {"output": value}
    return {"output": content}


def _parts(content: Any, position: int) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"text": content}]
    out = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            if part.get("text"):
                out.append({"text": part["text"]})
        elif kind == "image_url":
            out.append(_image(part.get("image_url"), position))
        elif kind == "input_audio":
            out.append(_audio(part.get("input_audio"), position))
        else:
            raise ConfigError(
                f"messages[{position}] has a content part of type {kind!r}; the Gemini adapter "
                "takes 'text', 'image_url' and 'input_audio' parts"
            )
    return out


def _image(image: Any, position: int) -> dict[str, Any]:
    spec = image if isinstance(image, Mapping) else {"url": image}
    url = spec.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigError(f"messages[{position}] has an image_url part without a url")
    if url.startswith("data:"):
        mime, data = data_url(url, position)
        return {"inlineData": {"mimeType": mime or "application/octet-stream", "data": data}}
    guessed = spec.get("mime_type") or mimetypes.guess_type(urlsplit(url).path)[0]
    return {"fileData": {"fileUri": url, "mimeType": guessed or _DEFAULT_IMAGE_MIME}}


def _audio(audio: Any, position: int) -> dict[str, Any]:
    """OpenAI's ``{"data": <base64>, "format": "wav" | "mp3"}`` as inline data."""
    data = audio.get("data") if isinstance(audio, Mapping) else None
    if not isinstance(data, str):
        raise ConfigError(
            f"messages[{position}] has an input_audio part without base64 'data' "
            "(expected {'type': 'input_audio', 'input_audio': {'data': ..., 'format': 'wav'}})"
        )
    fmt = audio.get("format") or "wav"
    return {"inlineData": {"mimeType": f"audio/{fmt}", "data": data}}


# -- parameters ---------------------------------------------------------------------------------


def generation_config(params: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if "temperature" in params:
        config["temperature"] = params["temperature"]
    if "top_p" in params:
        config["topP"] = params["top_p"]
    if "max_tokens" in params:
        config["maxOutputTokens"] = params["max_tokens"]
    if params.get("stop"):
        stop = params["stop"]
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if "seed" in params:
        config["seed"] = params["seed"]
    if "n" in params:
        config["candidateCount"] = params["n"]
    if params.get("logprobs"):
        config["responseLogprobs"] = True
        if "top_logprobs" in params:
            config["logprobs"] = params["top_logprobs"]
    fmt = params.get("response_format")
    if fmt is not None:
        config.update(_response_format(fmt))
    return config


def _response_format(fmt: Any) -> dict[str, Any]:
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        out: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema is not None:
            out["responseJsonSchema"] = schema
        return out
    raise ConfigError(
        "response_format must be {'type': 'text' | 'json_object'} or "
        f"{{'type': 'json_schema', 'json_schema': {{'schema': ...}}}}, got {fmt!r}"
    )


def _declaration(tool: Mapping[str, Any]) -> dict[str, Any]:
    out = function_spec(tool)
    parameters = tool["function"].get("parameters")
    if parameters is not None:
        out["parameters"] = parameters
    return out


def _calling_config(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _TOOL_CHOICE_MODES:
        return {"mode": _TOOL_CHOICE_MODES[choice]}
    name = forced_function(choice)
    if name is None:
        raise bad_tool_choice(choice)
    return {"mode": "ANY", "allowedFunctionNames": [name]}
