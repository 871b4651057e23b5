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
# http="reqwest": at close and at exit, how long to wait at most for pyreqwest's tokio thread to
# leave the Python call that wakes a task (it may not be inside one when the interpreter exits;
# see senders/_reqwest_exit.py), checking every REQWEST_SETTLE_POLL seconds. The wait is
# normally nothing or one poll; the bound only matters if another library's thread runs Python.
REQWEST_SETTLE_LIMIT = 0.5
REQWEST_SETTLE_POLL = 0.0005

# Streaming: the largest single server-sent event we accept (bytes).
MAX_SSE_EVENT_SIZE = 8 * 1024 * 1024

# After a stream's terminator ([DONE], message_stop) the rest of the body is read, unparsed, for
# at most this long and this much: a body that ends at once leaves its connection reusable, a
# server that holds the connection open does not hold the stream with it.
STREAM_DRAIN_SECONDS = 0.02
STREAM_DRAIN_BYTES = 64 * 1024

# Token estimate used by the rate limiter before a reply tells the real count.
CHARS_PER_TOKEN_ESTIMATE = 4

# The most alternatives per token `top_logprobs` may ask for (OpenAI's limit; Gemini's is lower,
# and its server says so).
MAX_TOP_LOGPROBS = 20

# Client-side rate limits refill continuously; at most this many seconds' worth may go at once.
RATE_LIMIT_BURST_SECONDS = 1.0

# An unknown provider name is answered with "did you mean ...?" for the known name whose
# difflib similarity ratio is at least this ("opnai" → "openai" is 0.91; "foo" suggests nothing).
PROVIDER_SUGGEST_CUTOFF = 0.6

# Fallback routes: a route that failed this many calls in a row (after its own retries) is
# skipped for ROUTE_BREAKER_COOLDOWN seconds, then one call tries it again.
ROUTE_BREAKER_FAILURES = 3
ROUTE_BREAKER_COOLDOWN = 30.0
# Statuses after which a call moves on to the next route (with connection errors and
# timeouts): the provider's trouble, not the request's. 400/401/403/404/422 are the caller's.
FALLBACK_STATUS_CODES = frozenset({408, 429})  # and every 5xx (529 included)

# Budgets: a call's estimate before it is sent is its prompt (characters / CHARS_PER_TOKEN_ESTIMATE)
# plus max_tokens x n completion tokens; a call without max_tokens is estimated at
# BUDGET_DEFAULT_COMPLETION_TOKENS completion tokens.
BUDGET_DEFAULT_COMPLETION_TOKENS = 256

# Shared rate limits (`RateLimit(redis_url=...)`): Redis must answer within these many seconds
# (connect, then each command), so a dead or unreachable Redis is a quick typed error, not a hang.
REDIS_CONNECT_TIMEOUT = 1.0
REDIS_SOCKET_TIMEOUT = 1.0
# A failed Redis command is tried once more on a fresh connection (a restarted Redis leaves every
# pooled connection dead), then the failure counts.
REDIS_COMMAND_RETRIES = 1
# With `on_redis_error="local"`, how long the process keeps to its local limiter before it asks
# Redis again.
REDIS_FALLBACK_SECONDS = 5.0
# A shared bucket's key lives this much longer than its slowest refill: an idle key disappears
# (a full bucket and no key mean the same thing), so a crashed worker leaves nothing behind.
REDIS_KEY_SLACK_SECONDS = 1.0
# The prefix of every key llmrelay writes in Redis.
REDIS_KEY_PREFIX = "llmrelay:ratelimit:"

# Adaptive limits: a server-announced wait (x-ratelimit-reset-*, anthropic-ratelimit-*-reset,
# Retry-After on a 429) longer than this is not believed (a clock gone wrong, a garbled header).
SERVER_WAIT_CAP = 3600.0

# Circuit breaker: this many attempts in a row that fail to connect or end in a 5xx (500-504)
# open the circuit; while it is open every call fails at once with `CircuitOpenError`, for this
# many seconds; then one call is let through as a probe (its success closes the circuit).
BREAKER_FAILURES = 5
BREAKER_COOLDOWN_SECONDS = 5.0
# ...and only once the failing streak has lasted this long: concurrent first attempts that all
# meet the same brief 503 burst are a blip their retries recover from, not a server that is down
# (a dead server keeps failing past it, through the retries' backoff).
BREAKER_MIN_SPAN_SECONDS = 1.0

# Adaptive concurrency (`RateLimit(adaptive_concurrency=True)`), AIMD as TCP does it: a 429 or
# 529 multiplies the calls allowed in flight by this (once per window: the rejections of calls
# sent before the last decrease do not count again); each success adds 1/limit.
AIMD_DECREASE_FACTOR = 0.5

# Provider Batch APIs: what one job may hold (a bigger input is split into several jobs), and
# how often `wait_batch()` and the CLI ask for a job's state (seconds).
OPENAI_BATCH_MAX_REQUESTS = 50_000  # per input file
OPENAI_BATCH_MAX_BYTES = 200 * 1024 * 1024
ANTHROPIC_BATCH_MAX_REQUESTS = 100_000
ANTHROPIC_BATCH_MAX_BYTES = 256 * 1024 * 1024
GEMINI_BATCH_MAX_REQUESTS = 100_000  # inline requests: no documented count, this keeps jobs sane
GEMINI_BATCH_MAX_BYTES = 20 * 1024 * 1024  # the documented size of an inline batch request
# Room kept under a byte limit for the envelope around the requests (multipart, JSON wrapper).
BATCH_ENVELOPE_BYTES = 64 * 1024
BATCH_POLL_INTERVAL = 15.0
# A split submission that fails half way cancels the parts already made, for at most this long.
BATCH_CLEANUP_SECONDS = 30.0
# Full request URLs a client keeps by path (chat, embeddings... a few each); paths with ids in
# them (files, batches) past this many are joined per call instead.
URL_CACHE_SIZE = 64
