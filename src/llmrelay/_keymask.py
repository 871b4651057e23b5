"""Masking the client's own key wherever a server may echo it back: error bodies, error
messages, events inside a stream. Adapters quote servers but never see the key; this does."""

from __future__ import annotations

from typing import Any

from ._exceptions import LLMError


class KeyMask:
    __slots__ = ("_key", "_key_bytes")

    def __init__(self, key: str | None) -> None:
        self._key = key or None
        self._key_bytes = key.encode() if key else None

    def text(self, text: str) -> str:
        key = self._key
        return text.replace(key, "***") if key and key in text else text

    def content(self, content: bytes) -> bytes:
        """Mask a raw body before anything cuts it short (a cut could split the key)."""
        key = self._key_bytes
        return content.replace(key, b"***") if key and key in content else content

    def error(self, error: LLMError) -> LLMError:
        """The same error, its message, arguments and any `body` it carries masked in place."""
        if self._key is not None:
            error.message = self.text(error.message)
            error.args = tuple(self.text(a) if isinstance(a, str) else a for a in error.args)
            body = getattr(error, "body", None)
            if body is not None:
                error.body = self._value(body)  # type: ignore[attr-defined]
        return error

    def _value(self, value: Any) -> Any:
        """A JSON-like value with the key masked in every string (error paths only)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self._value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._value(item) for item in value]
        return value
