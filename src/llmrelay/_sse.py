"""A sans-I/O decoder for Server-Sent Events (``text/event-stream``).

It follows the WHATWG HTML standard, section "Interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
The decoder does no I/O: hand it bytes as they arrive with :meth:`SSEDecoder.feed`, in chunks
split anywhere, and call :meth:`SSEDecoder.flush` at the end of the stream.

Design notes:

* It works on raw bytes until a whole line is available and decodes UTF-8 only then, so a
  multi-byte character split across chunks is fine. CR and LF are ASCII and never occur inside
  a UTF-8 multi-byte sequence, so splitting lines (and fields at ``:``) before decoding gives
  the same text as decoding the whole stream first.
* Each byte is scanned a bounded number of times: a chunk is only searched for a line ending
  once; a partial line waits in a buffer and is joined to the rest of its line exactly once.
* The common chunk, one or more complete lines such as ``b'data: {...}\\n\\n'``, goes through
  a single ``bytes.splitlines`` call and a short loop with no per-byte Python work.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import NoReturn

# The largest line, or the largest data of one event, that we accept (bytes).
from ._constants import MAX_SSE_EVENT_SIZE as DEFAULT_MAX_EVENT_SIZE

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecodeError", "SSEDecoder", "ServerSentEvent"]


_BOM = b"\xef\xbb\xbf"
_LF = 0x0A
_CR = 0x0D


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSentEvent:
    """One dispatched event."""

    event: str = "message"
    """The event type; "message" when the stream gave none (or an empty one)."""
    data: str = ""
    """The data lines joined with "\\n"."""
    id: str = ""
    """The last event ID in force when the event was dispatched (it persists across events)."""
    retry: int | None = None
    """The reconnection time in milliseconds, if this event's block set a valid one."""


# Building the frozen event through its slot descriptors is ~2× faster than its __init__
# (which goes through object.__setattr__ per field); this runs once per event.
_new = object.__new__
_set_event, _set_data, _set_id, _set_retry = (
    ServerSentEvent.__dict__[name].__set__ for name in ("event", "data", "id", "retry")
)


class SSEDecodeError(Exception):
    """The stream broke a limit of the decoder (a line or an event larger than allowed)."""


class SSEDecoder:
    """Incremental event-stream parser: bytes in, :class:`ServerSentEvent` objects out.

    Once it has raised :class:`SSEDecodeError` the decoder must not be fed again.
    After :meth:`flush` it can parse a new stream (a reconnection); :attr:`last_event_id` is kept.
    """

    __slots__ = (
        "_at_start",
        "_data",
        "_data_size",
        "_event_type",
        "_head",
        "_id_buffer",
        "_last_event_id",
        "_max",
        "_partial",
        "_retry",
        "_skip_lf",
    )

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        if max_event_size < 1:
            raise ValueError(f"max_event_size must be positive, got {max_event_size}")
        self._max = max_event_size
        # Bytes of an unfinished line (no line ending seen yet).
        self._partial = bytearray()
        # Up to 2 bytes that may be the start of a byte order mark.
        self._head = b""
        self._at_start = True
        # The previous chunk ended with CR: a LF opening the next chunk ends the same line.
        self._skip_lf = False
        # The spec's buffers. Data lines are kept as raw bytes and decoded once at dispatch.
        self._data: list[bytes] = []
        self._data_size = 0
        self._event_type = b""
        self._id_buffer = ""
        self._last_event_id = ""
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str:
        """The spec's "last event ID string": the ID buffer as of the last blank line.

        Send it as the ``Last-Event-ID`` header when reconnecting.
        """
        return self._last_event_id

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Parse the next piece of the stream; return the events it completed (often none)."""
        if not chunk:
            return []
        if self._at_start:
            # "One leading U+FEFF BYTE ORDER MARK character must be ignored if any are present."
            head = self._head + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head  # Too short to tell yet.
                return []
            self._at_start = False
            self._head = b""
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
            if not chunk:
                return []
        if self._skip_lf:
            # A CR LF pair split between two chunks is one line ending, not two.
            self._skip_lf = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
                if not chunk:
                    return []

        partial = self._partial
        if partial:
            # Scan only the new bytes for a line ending, so a long line costs linear time.
            if chunk.find(b"\n") < 0 and chunk.find(b"\r") < 0:
                partial += chunk
                if len(partial) > self._max:
                    self._too_big("line", len(partial))
                return []
            partial += chunk
            data = bytes(partial)
            partial.clear()
        else:
            data = chunk

        # "Lines must be separated by either a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF)
        # character pair, a single U+000A LINE FEED (LF) character, or a single U+000D CARRIAGE
        # RETURN (CR) character." bytes.splitlines splits on exactly these three (unlike
        # str.splitlines) and keeps empty lines.
        lines = data.splitlines()
        last = data[-1]
        if last == _CR:
            self._skip_lf = True
        elif last != _LF:
            tail = lines.pop()
            if len(tail) > self._max:
                self._too_big("line", len(tail))
            partial += tail
        return self._process(lines)

    def flush(self) -> list[ServerSentEvent]:
        """End the stream.

        A final line without a line ending is still processed as a line, but the event that
        was being built is dropped: "If the file ends in the middle of an event, before the
        final empty line, the incomplete event is not dispatched." So this never returns
        events; it returns a list for symmetry with :meth:`feed`. The decoder is then reset
        for a new stream, keeping :attr:`last_event_id`.
        """
        line = bytes(self._head or self._partial)
        if line:
            self._process([line])  # A non-empty line never dispatches.
        self._partial.clear()
        self._head = b""
        self._at_start = True
        self._skip_lf = False
        self._data = []
        self._data_size = 0
        self._event_type = b""
        self._id_buffer = self._last_event_id
        self._retry = None
        return []

    def _process(self, lines: list[bytes]) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        for line in lines:
            if not line:
                # "If the line is empty (a blank line): Dispatch the event."
                # Dispatch step 1: the last event ID string takes the buffer's value.
                self._last_event_id = self._id_buffer
                data = self._data
                if data:
                    # Steps 3-7: drop the final LF (here: join), type defaults to "message".
                    event_type = self._event_type
                    event = _new(ServerSentEvent)
                    _set_event(
                        event, event_type.decode("utf-8", "replace") if event_type else "message"
                    )
                    _set_data(
                        event,
                        (data[0] if len(data) == 1 else b"\n".join(data)).decode(
                            "utf-8", "replace"
                        ),
                    )
                    _set_id(event, self._last_event_id)
                    _set_retry(event, self._retry)
                    events.append(event)
                    self._data = []
                    self._data_size = 0
                # Step 2 (empty data buffer: nothing is dispatched) and step 7: reset buffers.
                self._event_type = b""
                self._retry = None
                continue
            if len(line) > self._max:
                self._too_big("line", len(line))
            # Fast path for the usual "data: ..." line.
            if line.startswith(b"data: "):
                self._append_data(line[6:])
                continue
            colon = line.find(b":")
            if colon == 0:
                continue  # "If the line starts with a U+003A COLON character (:)": a comment.
            if colon < 0:
                # "Otherwise, the string is not empty but does not contain a U+003A COLON
                # character (:)": the whole line is the field name, the value is empty.
                field, value = line, b""
            else:
                # "Collect the characters on the line after the first U+003A COLON character
                # (:)... If value starts with a U+0020 SPACE character, remove it from value."
                field = line[:colon]
                value = (
                    line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
                )
            self._field(field, value)
        return events

    def _field(self, field: bytes, value: bytes) -> None:
        """Process one field (WHATWG: "process the field")."""
        if field == b"data":
            # "Append the field value to the data buffer, then append a single U+000A LINE
            # FEED (LF) character to the data buffer."
            self._append_data(value)
        elif field == b"event":
            self._event_type = value  # "Set the event type buffer to field value."
        elif field == b"id":
            # "If the field value does not contain U+0000 NULL, then set the last event ID
            # buffer to the field value. Otherwise, ignore the field."
            if b"\x00" not in value:
                self._id_buffer = value.decode("utf-8", "replace")
        elif field == b"retry" and value.isdigit():
            # "If the field value consists of only ASCII digits, then interpret the field value
            # as an integer in base ten, and set the event stream's reconnection time to that
            # integer. Otherwise, ignore the field." (bytes.isdigit is ASCII-only and False for
            # an empty value.) A value too long for int() (over 4300 digits) is ignored too.
            with contextlib.suppress(ValueError):
                self._retry = int(value)
        # "Otherwise: The field is ignored."

    def _append_data(self, value: bytes) -> None:
        # Size counted as the UTF-8 data buffer, one LF per data line included.
        self._data_size += len(value) + 1
        if self._data_size > self._max:
            size = self._data_size
            self._data = []
            self._data_size = 0
            self._too_big("event", size)
        self._data.append(value)

    def _too_big(self, what: str, size: int) -> NoReturn:
        self._partial.clear()
        raise SSEDecodeError(
            f"server-sent {what} of at least {size} bytes exceeds max_event_size={self._max}"
        )
