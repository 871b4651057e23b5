"""Every policy number of llmrelay, in one screen.

Changing a default here changes it everywhere: the value types, the pipeline and the docs read
these names instead of repeating the numbers.
"""

from __future__ import annotations

# Timeouts (seconds). `read` is the longest silence between two received bytes; `total` is a
# wall-clock deadline for a whole call, every attempt and backoff sleep included.
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 600.0
DEFAULT_WRITE_TIMEOUT = 60.0
DEFAULT_POOL_TIMEOUT = 60.0

# Retries: full-jitter exponential backoff, base * 2**attempt capped at BACKOFF_CAP.
DEFAULT_MAX_RETRIES = 2
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
# A server asking us to wait longer than this fails the call at once (with `.retry_after` set).
RETRY_AFTER_CAP = 60.0
RETRYABLE_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504, 529})

# Concurrency.
DEFAULT_MAX_CONCURRENCY = 16

# How long an idle keep-alive connection of the pool lives (seconds).
KEEPALIVE_EXPIRY = 30.0
# TLS contexts kept for reuse, one per distinct `verify=` value (certifi, a CA bundle path...).
TLS_CONTEXTS_KEPT = 16
# A credential header's value shorter than this is not masked in errors (it could be a word).
MIN_MASKED_SECRET = 8
# Connecting to a name with several addresses: start the next attempt after this many seconds
# (RFC 8305's recommendation).
HAPPY_EYEBALLS_DELAY = 0.25
# Received bytes buffered per connection before the socket stops being read (backpressure).
SOCKET_READ_BUFFER = 256 * 1024
# Writes go to a socket in pieces of at most this many bytes: asyncio's TLS transport takes one
# write whole and signals no backpressure for it, so a peer that stops reading would otherwise
# show up only as a read timeout, long after the write timeout.
SOCKET_WRITE_PIECE = 64 * 1024
# http="reqwest": how many body bytes pyreqwest reads ahead before it hands a streamed response
# over (its default is 64 KiB). Zero: the first event must not wait for 64 KiB or the body's end,
# and nothing is held per stream in advance; see senders/_reqwest.py.
REQWEST_READ_AHEAD = 0

# Streaming: the largest single server-sent event we accept (bytes).
MAX_SSE_EVENT_SIZE = 8 * 1024 * 1024

# After a stream's terminator ([DONE], message_stop) the rest of the body is read, unparsed, for
# at most this long and this much: a body that ends at once leaves its connection reusable, a
# server that holds the connection open does not hold the stream with it.
STREAM_DRAIN_SECONDS = 0.02
STREAM_DRAIN_BYTES = 64 * 1024

# Token estimate used by the rate limiter before a reply tells the real count.
CHARS_PER_TOKEN_ESTIMATE = 4

# Client-side rate limits refill continuously; at most this many seconds' worth may go at once.
RATE_LIMIT_BURST_SECONDS = 1.0

# An unknown provider name is answered with "did you mean ...?" for the known name whose
# difflib similarity ratio is at least this ("opnai" → "openai" is 0.91; "foo" suggests nothing).
PROVIDER_SUGGEST_CUTOFF = 0.6
