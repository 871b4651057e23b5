"""The files of ``llmrelay batch``: the prompts (checked whole before anything is sent) and the
results (appended one flushed line per outcome, so an interrupted run resumes where it was).

Input lines: ``{"id": ..., "prompt": "..."}`` or ``{"id": ..., "messages": [...]}``, with an
optional ``"model"`` and ``"params"`` (temperature, max_tokens, top_p, stop, seed, tools,
tool_choice, response_format, extra_body). Ids are strings or integers, unique per file. Other
keys are ignored.

Output lines: ``{"id", "ok": true, "text", "usage", "finish_reason", "model", "latency_ms",
"attempts"}`` or ``{"id", "ok": false, "error": {"type", "message", "status_code"}, ...}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .._decoding import decode_text
from .._exceptions import APIStatusError, ConfigError, LLMError
from .._request import build_params, normalize_messages
from .._types import ChatResponse

PARAM_NAMES = (
    "temperature",
    "max_tokens",
    "top_p",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "extra_body",
)
MAX_REPORTED_PROBLEMS = 10
NOTHING_SENT = "nothing was sent"


class BatchFileError(Exception):
    """A prompts or results file that cannot be used; nothing was sent."""


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One input line, checked."""

    line: int
    id: str | int
    key: str  # the id in canonical JSON: 1 and "1" are different ids
    messages: list[dict[str, Any]]
    model: str | None
    params: dict[str, Any]


def id_key(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def read_prompts(path: Path) -> list[BatchItem]:
    """Every line of `path`, checked; all problems are reported together."""
    problems: list[str] = []
    items: list[BatchItem] = []
    first_seen: dict[str, int] = {}
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BatchFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    # JSON is UTF-8: a file in another encoding is one problem, named by its first bad byte
    # (line and offset), not one "not valid JSON" per line that holds an accent.
    try:
        decode_text(data, str(path), hint=f"save the file as UTF-8; {NOTHING_SENT}")
    except ConfigError as exc:
        raise BatchFileError(str(exc)) from None
    raw_lines = data.splitlines()
    for number, raw in enumerate(raw_lines, 1):
        if not raw.strip():
            continue
        try:
            item = _parse_item(number, raw)
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        if item.key in first_seen:
            problems.append(
                f"line {number}: duplicate id {item.id!r} (first on line {first_seen[item.key]})"
            )
            continue
        first_seen[item.key] = number
        items.append(item)
    if not items and not problems:
        problems.append("no prompts in the file")
    if problems:
        shown = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(shown)
        lines = "\n".join(f"  {p}" for p in shown) + (f"\n  ... and {more} more" if more else "")
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise BatchFileError(f"{path}: {count}; {NOTHING_SENT}:\n{lines}")
    return items


def _parse_item(number: int, raw: bytes) -> BatchItem:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object with an id and a prompt or messages")
    if "id" not in obj:
        raise ValueError('missing "id"')
    ident = obj["id"]
    if isinstance(ident, bool) or not isinstance(ident, str | int) or ident == "":
        raise ValueError(f"id must be a non-empty string or an integer, got {ident!r}")
    has_prompt, has_messages = "prompt" in obj, "messages" in obj
    if has_prompt == has_messages:
        raise ValueError('give exactly one of "prompt" (a string) or "messages" (a list)')
    source = obj["prompt"] if has_prompt else obj["messages"]
    if has_prompt and not isinstance(source, str):
        raise ValueError(f"prompt must be a string, got {type(source).__name__}")
    if has_messages and not isinstance(source, list):
        raise ValueError(f"messages must be a list, got {type(source).__name__}")
    model = obj.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    params = obj.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"params must be an object, got {type(params).__name__}")
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise ValueError(f"unknown params {unknown} (allowed: {', '.join(PARAM_NAMES)})")
    if "extra_body" in params and not isinstance(params["extra_body"], dict):
        raise ValueError("params.extra_body must be an object")
    try:
        messages = normalize_messages(source)
        build_params(**{name: params.get(name) for name in PARAM_NAMES if name != "extra_body"})
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return BatchItem(
        line=number, id=ident, key=id_key(ident), messages=messages, model=model, params=params
    )


@dataclass(slots=True)
class ExistingResults:
    """What an earlier run left in the results file."""

    done: dict[str, bool] = field(default_factory=dict)  # id key -> ok
    dropped_partial_line: bool = False
    removed_failed: int = 0


def _parse_record(raw: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and "id" in record else None


def prepare_results(path: Path, *, retry_failed: bool = False) -> ExistingResults:
    """Read the ids already in `path` and make the file safe to append to.

    A last line without its newline is what a killed run leaves: if it is not a complete
    record it is cut off (and its prompt sent again). A bad line anywhere else is an error.
    With `retry_failed`, failed records are removed (rewritten atomically) and run again.
    """
    result = ExistingResults()
    if not path.exists():
        if not path.parent.is_dir():
            raise BatchFileError(f"{path}: the folder {path.parent} does not exist")
        return result
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BatchFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    pieces = data.split(b"\n")
    position = keep_until = 0
    add_newline = False
    for index, raw in enumerate(pieces):
        is_tail = index == len(pieces) - 1  # the text after the last newline ("" normally)
        end = position + len(raw) + (0 if is_tail else 1)
        if raw.strip():
            record = _parse_record(raw)
            if record is None:
                if is_tail:
                    result.dropped_partial_line = True
                    break
                _check_utf8(raw, path, index + 1, position)
                raise BatchFileError(
                    f"{path} line {index + 1} is not a JSON record with an id; fix or remove "
                    "it (nothing was sent)"
                )
            result.done[id_key(record["id"])] = record.get("ok") is True
            add_newline = is_tail
        keep_until = end
        position = end
    if result.dropped_partial_line:
        os.truncate(path, keep_until)
    elif add_newline:
        with path.open("ab") as f:
            f.write(b"\n")
    if retry_failed and not all(result.done.values()):
        result.removed_failed = _drop_failed(path)
        result.done = {key: ok for key, ok in result.done.items() if ok}
    return result


def _check_utf8(raw: bytes, path: Path, line: int, offset: int) -> None:
    """A results line that is not UTF-8 (edited by hand in another encoding) is named by its
    line and byte offset."""
    try:
        decode_text(raw, str(path), line=line, offset=offset, hint="fix or remove that line")
    except ConfigError as exc:
        raise BatchFileError(f"{exc} ({NOTHING_SENT})") from None


def _drop_failed(path: Path) -> int:
    kept: list[bytes] = []
    removed = 0
    for raw in path.read_bytes().splitlines():
        record = _parse_record(raw) if raw.strip() else None
        if record is None:
            continue
        if record.get("ok") is True:
            kept.append(raw + b"\n")
        else:
            removed += 1
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as f:
        f.writelines(kept)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    return removed


def recorded_outcomes(path: Path) -> dict[str, bool]:
    """Id key -> ok, for every complete record in `path` (read only)."""
    if not path.exists():
        return {}
    found: dict[str, bool] = {}
    for raw in path.read_bytes().splitlines():
        record = _parse_record(raw) if raw.strip() else None
        if record is not None:
            found[id_key(record["id"])] = record.get("ok") is True
    return found


class ResultWriter:
    """Appends one JSON line per outcome and flushes it at once: a killed run loses at most
    the line being written, which the next run detects and drops."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file: BinaryIO = path.open("ab")
        except OSError as exc:
            raise BatchFileError(f"{path}: cannot write: {exc.strerror or exc}") from None

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        # One write call per line; lone surrogates become JSON \u escapes, still valid JSON.
        self._file.write(line.encode("utf-8", "backslashreplace"))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def outcome_record(ident: str | int, outcome: ChatResponse | LLMError) -> dict[str, Any]:
    """The result line of one prompt, without the timing keys: ``{"id", "ok": true, "text",
    "usage", "finish_reason", "model"}`` or ``{"id", "ok": false, "error": {"type",
    "message", "status_code"}}``. The live batch and the provider batch write the same."""
    record: dict[str, Any] = {"id": ident}
    if isinstance(outcome, LLMError):
        status = outcome.status_code if isinstance(outcome, APIStatusError) else None
        record.update(
            ok=False,
            error={"type": type(outcome).__name__, "message": str(outcome), "status_code": status},
        )
        return record
    usage = outcome.usage
    record.update(
        ok=True,
        text=outcome.text,
        usage=None
        if usage is None
        else {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
        finish_reason=outcome.finish_reason,
        model=outcome.model,
    )
    return record
