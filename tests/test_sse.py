"""Tests for the sans-I/O server-sent events decoder (WHATWG "event stream interpretation")."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

import pytest

from llmrelay._sse import (
    DEFAULT_MAX_EVENT_SIZE,
    ServerSentEvent,
    SSEDecodeError,
    SSEDecoder,
)

E = ServerSentEvent
BOM = b"\xef\xbb\xbf"


def decode(chunks: Iterable[bytes], **kwargs: int) -> list[ServerSentEvent]:
    decoder = SSEDecoder(**kwargs)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.flush()
    return events


OPENAI_STREAM = (
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC_STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start"}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\r\n"
    b'data: {"type":"content_block_delta","delta":{"text":"h\xc3\xa9"}}\r\n\r\n'
)

# (id, stream, expected events when the whole stream is fed and then flushed)
VECTORS: list[tuple[str, bytes, list[ServerSentEvent]]] = [
    ("empty-stream", b"", []),
    ("simple", b"data: hello\n\n", [E(data="hello")]),
    ("no-space", b"data:hello\n\n", [E(data="hello")]),
    ("two-spaces-keeps-one", b"data:  hello\n\n", [E(data=" hello")]),
    ("trailing-spaces-kept", b"data: a  \n\n", [E(data="a  ")]),
    ("colon-in-value", b"data: a:b: c\n\n", [E(data="a:b: c")]),
    ("nul-in-data", b"data: a\x00b\n\n", [E(data="a\x00b")]),
    ("multi-line", b"data: a\ndata: b\ndata:c\n\n", [E(data="a\nb\nc")]),
    ("two-events", b"data: 1\n\ndata: 2\n\n", [E(data="1"), E(data="2")]),
    ("extra-blank-lines", b"\n\ndata: 1\n\n\n\n", [E(data="1")]),
    ("event-field", b"event: ping\ndata: x\n\n", [E(event="ping", data="x")]),
    (
        "event-type-reset-after-dispatch",
        b"event: a\ndata: 1\n\ndata: 2\n\n",
        [E(event="a", data="1"), E(data="2")],
    ),
    ("empty-event-type-is-message", b"event:\ndata: x\n\n", [E(data="x")]),
    ("event-type-reset-without-data", b"event: a\n\ndata: x\n\n", [E(data="x")]),
    ("last-event-field-wins", b"event: a\nevent: b\ndata: x\n\n", [E(event="b", data="x")]),
    (
        "id-persists",
        b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n",
        [E(data="a", id="1"), E(data="b", id="1"), E(data="c", id="2")],
    ),
    (
        "id-empty-resets",
        b"id: 1\ndata: a\n\nid\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="")],
    ),
    (
        "id-with-nul-ignored",
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="1")],
    ),
    ("id-block-without-data-applies-later", b"id: 7\n\ndata: a\n\n", [E(data="a", id="7")]),
    ("id-after-data-in-block", b"data: a\nid: 9\n\n", [E(data="a", id="9")]),
    ("retry", b"retry: 3000\ndata: a\n\n", [E(data="a", retry=3000)]),
    ("retry-no-space", b"retry:0\ndata: a\n\n", [E(data="a", retry=0)]),
    ("retry-non-digit-ignored", b"retry: 12a\ndata: a\n\n", [E(data="a")]),
    ("retry-negative-ignored", b"retry: -5\ndata: a\n\n", [E(data="a")]),
    ("retry-decimal-ignored", b"retry: 1.5\ndata: a\n\n", [E(data="a")]),
    ("retry-empty-ignored", b"retry:\ndata: a\n\n", [E(data="a")]),
    ("retry-space-ignored", b"retry: 1 \ndata: a\n\n", [E(data="a")]),
    ("retry-non-ascii-digits-ignored", "retry: ١٢\ndata: a\n\n".encode(), [E(data="a")]),
    ("retry-huge-ignored", b"retry: " + b"1" * 5000 + b"\ndata: a\n\n", [E(data="a")]),
    (
        "retry-only-for-its-block",
        b"retry: 10\ndata: a\n\ndata: b\n\n",
        [E(data="a", retry=10), E(data="b")],
    ),
    ("retry-without-data-dropped", b"retry: 10\n\ndata: a\n\n", [E(data="a")]),
    ("unknown-field-ignored", b"foo: bar\ndata: a\n\n", [E(data="a")]),
    ("unknown-field-alone", b"foo: bar\n\n", []),
    ("field-names-case-sensitive", b"Data: a\nEVENT: x\ndata: b\n\n", [E(data="b")]),
    ("space-before-colon-is-other-field", b"data : x\n\n", []),
    ("whitespace-line-is-not-blank", b"data: a\n \ndata: b\n\n", [E(data="a\nb")]),
    ("comments", b": hi\n\n:x\ndata: a\n: mid\ndata: b\n\n", [E(data="a\nb")]),
    ("comments-only", b": ping\n\n: ping\n\n", []),
    ("bom", BOM + b"data: a\n\n", [E(data="a")]),
    ("bom-only", BOM, []),
    ("only-one-bom-stripped", BOM + BOM + b"data: a\n\ndata: b\n\n", [E(data="b")]),
    ("bom-later-not-stripped", b"data: a\n\n" + BOM + b"data: b\n\n", [E(data="a")]),
    ("partial-bom", b"\xef\xbbdata: a\n\ndata: b\n\n", [E(data="b")]),
    ("crlf", b"data: a\r\ndata: b\r\n\r\n", [E(data="a\nb")]),
    ("lone-cr", b"data: a\rdata: b\r\r", [E(data="a\nb")]),
    ("mixed-endings", b"data: a\r\ndata: b\rdata: c\n\r\n", [E(data="a\nb\nc")]),
    ("lf-then-cr", b"data: a\n\rdata: b\r\n\n", [E(data="a"), E(data="b")]),
    ("cr-cr-lf", b"data: a\r\r\n", [E(data="a")]),
    ("cr-lf-lf", b"data: a\r\n\n", [E(data="a")]),
    ("data-no-colon", b"data\n\n", [E(data="")]),
    ("data-colon-empty", b"data:\n\n", [E(data="")]),
    ("two-empty-data-lines", b"data\ndata\n\n", [E(data="\n")]),
    ("empty-then-text", b"data:\ndata: x\n\n", [E(data="\nx")]),
    ("unterminated-event-dropped", b"data: a\n\ndata: b\n", [E(data="a")]),
    ("unterminated-line-dropped", b"data: b", []),
    ("unterminated-after-cr", b"data: a\r\rdata: b\r", [E(data="a")]),
    ("utf8", "data: héllo 😀\n\n".encode(), [E(data="héllo 😀")]),
    (
        "utf8-in-event-and-id",
        "event: ünï\nid: ид\ndata: 日本\n\n".encode(),
        [E(event="ünï", data="日本", id="ид")],
    ),
    ("invalid-utf8-replaced", b"data: a\xffb\n\n", [E(data="a\ufffdb")]),
    ("truncated-utf8-at-line-end", b"data: \xe2\x82\ndata: x\n\n", [E(data="\ufffd\nx")]),
    (
        "openai",
        OPENAI_STREAM,
        [
            E(data='{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'),
            E(data='{"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"}}]}'),
            E(data='{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'),
            E(data="[DONE]"),
        ],
    ),
    (
        "anthropic",
        ANTHROPIC_STREAM,
        [
            E(event="message_start", data='{"type":"message_start"}'),
            E(event="ping", data='{"type": "ping"}'),
            E(
                event="content_block_delta",
                data='{"type":"content_block_delta","delta":{"text":"hé"}}',
            ),
        ],
    ),
]

vector_params = pytest.mark.parametrize(
    ("stream", "expected"), [pytest.param(s, e, id=i) for i, s, e in VECTORS]
)


@vector_params
def test_whole_stream(stream: bytes, expected: list[ServerSentEvent]) -> None:
    assert decode([stream]) == expected


@vector_params
def test_every_two_piece_split(stream: bytes, expected: list[ServerSentEvent]) -> None:
    for i in range(len(stream) + 1):
        assert decode([stream[:i], stream[i:]]) == expected, f"split at {i}"


@vector_params
def test_one_byte_per_feed(stream: bytes, expected: list[ServerSentEvent]) -> None:
    assert decode(stream[i : i + 1] for i in range(len(stream))) == expected


@vector_params
def test_agrees_with_reference(stream: bytes, expected: list[ServerSentEvent]) -> None:
    assert reference_decode(stream) == expected


# --- A deliberately naive reference implementation, written straight from the spec text -------


def reference_decode(stream: bytes) -> list[ServerSentEvent]:
    """Decode the whole stream first, then split lines and process them one by one."""
    if stream.startswith(BOM):
        stream = stream[3:]
    text = stream.decode("utf-8", "replace")
    lines = re.split(r"\r\n|\r|\n", text)
    lines.pop()  # The text after the last line ending: an incomplete line, never dispatches.
    events = []
    data = event_type = id_buffer = ""
    retry = None
    for line in lines:
        if line == "":
            if data == "":
                event_type = ""
                retry = None
                continue
            events.append(
                E(event=event_type or "message", data=data[:-1], id=id_buffer, retry=retry)
            )
            data = event_type = ""
            retry = None
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            data += value + "\n"
        elif field == "event":
            event_type = value
        elif field == "id":
            if "\0" not in value:
                id_buffer = value
        elif field == "retry" and 0 < len(value) <= 4300 and all(c in "0123456789" for c in value):
            retry = int(value)  # Longer values exceed int()'s limit; the decoder ignores them.
    return events


FUZZ_TOKENS = [
    b"data",
    b"data",
    b"event",
    b"id",
    b"retry",
    b"dat",
    b":",
    b":",
    b" ",
    b" ",
    b"\n",
    b"\n",
    b"\r",
    b"\r\n",
    b"x",
    b"12",
    b"\x00",
    "é😀".encode(),
    b"\xff",
    b"\xe2\x82",
    BOM,
]


@pytest.mark.parametrize("seed", range(20))
def test_random_streams_match_reference(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        stream = b"".join(rng.choice(FUZZ_TOKENS) for _ in range(rng.randrange(60)))
        if rng.random() < 0.2:
            stream = BOM + stream
        expected = reference_decode(stream)
        cuts = sorted(rng.sample(range(len(stream) + 1), min(len(stream) + 1, rng.randrange(8))))
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert decode(pieces) == expected, (stream, cuts)


# --- last_event_id, flush and reuse ------------------------------------------------------------


def test_last_event_id_updates_at_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.last_event_id == ""
    decoder.feed(b"id: 1\n")
    assert decoder.last_event_id == ""  # Only the buffer is set until the block ends.
    decoder.feed(b"\n")
    assert decoder.last_event_id == "1"  # Set on dispatch even when no event is emitted.
    assert decoder.feed(b"data: a\n\n") == [E(data="a", id="1")]
    decoder.feed(b"id: 2\ndata: b")
    assert decoder.flush() == []
    assert decoder.last_event_id == "1"  # An incomplete event at EOF is not dispatched.


def test_flush_resets_for_a_new_stream_and_keeps_last_event_id() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(BOM + b"id: 5\nevent: x\ndata: a\n\nevent: y\ndata: partial\r") == [
        E(event="x", data="a", id="5")
    ]
    assert decoder.flush() == []
    # The new stream starts clean: BOM stripped again, no leftover data, event type or CR.
    assert decoder.feed(BOM + b"\ndata: b\n\n") == [E(data="b", id="5")]
    assert decoder.last_event_id == "5"


def test_empty_chunks_are_harmless() -> None:
    assert decode([b"", b"data: x\r", b"", b"\n", b"", b"data: y\n\n", b""]) == [E(data="x\ny")]


def test_event_defaults() -> None:
    event = E()
    assert (event.event, event.data, event.id, event.retry) == ("message", "", "", None)
    with pytest.raises(TypeError):
        E("message")  # type: ignore[call-arg]  # keyword-only


# --- max_event_size ----------------------------------------------------------------------------


def test_default_max_event_size() -> None:
    assert DEFAULT_MAX_EVENT_SIZE == 8 * 1024 * 1024


@pytest.mark.parametrize("size", [0, -1])
def test_max_event_size_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match="max_event_size"):
        SSEDecoder(max_event_size=size)


@pytest.mark.parametrize("chunk_size", [1, 7, 100, 10_000])
def test_endless_line_raises(chunk_size: int) -> None:
    decoder = SSEDecoder(max_event_size=1024)
    chunk = b"x" * chunk_size
    with pytest.raises(SSEDecodeError, match="max_event_size=1024"):
        decoder.feed(b"data: ")
        for _ in range(2000 // chunk_size + 2):
            decoder.feed(chunk)


def test_endless_comment_line_raises() -> None:
    decoder = SSEDecoder(max_event_size=100)
    with pytest.raises(SSEDecodeError):
        decoder.feed(b":" + b"x" * 200 + b"\n")


def test_line_at_limit_is_accepted_and_one_more_byte_is_not() -> None:
    line = b"data: " + b"x" * 94
    assert len(line) == 100
    assert decode([line + b"\n\n"], max_event_size=100) == [E(data="x" * 94)]
    with pytest.raises(SSEDecodeError):
        decode([line + b"y\n\n"], max_event_size=100)
    with pytest.raises(SSEDecodeError):
        decode([line, b"y", b"\n\n"], max_event_size=100)


def test_large_event_just_under_limit() -> None:
    limit = 1 << 20
    payload = b"x" * (limit - 10)
    stream = b"data: " + payload + b"\n\n"
    expected = [E(data=payload.decode())]
    assert decode([stream], max_event_size=limit) == expected
    pieces = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    assert decode(pieces, max_event_size=limit) == expected


def test_many_data_lines_exceeding_limit_raise() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    with pytest.raises(SSEDecodeError, match="event"):
        decoder.feed(b"data: 0123456789\n" * 100)


def test_data_size_resets_between_events() -> None:
    block = b"data: " + b"x" * 500 + b"\n\n"
    assert len(decode([block * 10], max_event_size=1000)) == 10


# --- linear time (not timed: a quadratic decoder would take minutes here) ----------------------


def test_long_line_fed_one_byte_at_a_time() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: ")
    x = b"x"
    for _ in range(200_000):
        assert decoder.feed(x) == []
    events = decoder.feed(b"\n\n")
    assert len(events) == 1
    assert len(events[0].data) == 200_000


def test_many_events_in_one_chunk() -> None:
    events = decode([b"data: x\n\n" * 100_000])
    assert len(events) == 100_000
