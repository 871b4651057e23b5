"""Text from files, pipes and the command line, decoded strictly: a byte the encoding cannot
read is a `ConfigError` that names where it is (the file or stream, the line, the byte offset
counted from 0 as ``xxd`` shows it), never a ``UnicodeDecodeError`` now or a
``UnicodeEncodeError`` ("surrogates not allowed") when the text is sent later::

    llmrelay.toml: line 3: not valid UTF-8 (byte 0xe9 at offset 41); save the file as UTF-8
"""

from __future__ import annotations

import codecs

from ._exceptions import ConfigError

UTF8_BOM = codecs.BOM_UTF8
NEWLINE = b"\n"
# How Python's `surrogateescape` keeps an undecodable byte (argv, os.environ, a stdin in UTF-8
# mode): byte b becomes the lone surrogate U+DC00 + b.
_ESCAPED = range(0xDC80, 0xDD00)


def encoding_name(encoding: str) -> str:
    """``UTF-8``, ``ISO8859-1``...: the codec's canonical name, as messages show it."""
    try:
        return codecs.lookup(encoding).name.upper()
    except LookupError:
        return encoding


def decode_text(
    data: bytes,
    label: str,
    *,
    encoding: str = "utf-8",
    hint: str = "",
    line: int = 1,
    offset: int = 0,
) -> str:
    """`data` as text, or a `ConfigError` at its first byte that is not valid in `encoding`;
    `hint` ends the message (what to do). A leading UTF-8 byte-order mark is dropped. For a
    piece of a longer input (one line of a stream), `line` and `offset` say where it starts."""
    skip = 0
    if offset == 0 and data[:3] == UTF8_BOM and encoding_name(encoding) == "UTF-8":
        skip = len(UTF8_BOM)
    try:
        return data[skip:].decode(encoding)
    except UnicodeDecodeError as exc:
        at = skip + exc.start
        where = f"{label}: line {line + data.count(NEWLINE, 0, at)}"
        raise ConfigError(bad_byte_message(where, data[at], offset + at, encoding, hint)) from None


def check_encodable(
    text: str, label: str, *, encoding: str = "utf-8", hint: str = "", lines: bool = False
) -> str:
    """`text` unchanged, or a `ConfigError` at its first lone surrogate: a byte its decoder
    could not read (kept by ``surrogateescape``), named by its offset in the original bytes
    (and its line, with `lines`)."""
    try:
        text.encode("utf-8")  # fails on lone surrogates only, and fast
    except UnicodeEncodeError as exc:
        index = exc.start
    else:
        return text
    char = text[index]
    if ord(char) not in _ESCAPED:  # not from a decoder: there is no byte to name
        raise ConfigError(
            f"{label}: holds a lone surrogate (U+{ord(char):04X}) at character {index}, "
            "which no encoding can send"
        )
    offset = len(text[:index].encode(encoding, "surrogateescape"))
    where = f"{label}: line {text.count(chr(10), 0, index) + 1}" if lines else label
    raise ConfigError(bad_byte_message(where, ord(char) - 0xDC00, offset, encoding, hint))


def bad_byte_message(where: str, byte: int, offset: int, encoding: str, hint: str = "") -> str:
    """``WHERE: not valid UTF-8 (byte 0xe9 at offset 3); HINT``."""
    message = f"{where}: not valid {encoding_name(encoding)} (byte 0x{byte:02x} at offset {offset})"
    return f"{message}; {hint}" if hint else message
