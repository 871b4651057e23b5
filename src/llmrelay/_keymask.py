"""Masking the client's own credentials wherever a server may echo them back: error bodies,
error messages, events inside a stream. Adapters quote servers but never see the key; this does.

The credentials are the API key and the values of the client's credential headers (see
`ClientConfig.secrets`); each becomes ``***``, the longest first, so that a key holding another
is masked whole.
"""

from __future__ import annotations

from typing import Any

from ._exceptions import LLMError


class KeyMask:
    __slots__ = ("_secret_bytes", "_secrets")

    def __init__(self, *secrets: str | None) -> None:
        longest_first = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._secrets = tuple(longest_first)
        self._secret_bytes = tuple(s.encode() for s in longest_first)

    def text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def content(self, content: bytes) -> bytes:
        """Mask a raw body before anything cuts it short (a cut could split the key)."""
        for secret in self._secret_bytes:
            if secret in content:
                content = content.replace(secret, b"***")
        return content

    def error(self, error: LLMError) -> LLMError:
        """The same error, its message, arguments and any `body` it carries masked in place."""
        if self._secrets:
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
