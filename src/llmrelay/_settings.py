"""Client settings, resolved once into one frozen `ClientConfig`.

Precedence, field by field: explicit argument > environment > profile > the preset's defaults.

- `AsyncClient(...)` → `resolve_config()`: arguments, then the preset's own key and base-URL
  variables (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``...), then the preset.
- `AsyncClient.from_profile()` and the CLI → `resolve_profile_config()`: the same, plus
  ``LLMRELAY_PROVIDER`` and ``LLMRELAY_MODEL`` in the environment layer and a profile of
  ``llmrelay.toml`` (see `_profiles`) between the environment and the preset.

This module is where every setting is checked, and the only reader of the environment on the
way to a client: it takes an `environ` mapping (default ``os.environ``) and hands it to the
preset factory, which reads its own variables from it (``OLLAMA_HOST``, ``AZURE_OPENAI_*``).
TLS trust is resolved here too: `verify=` > ``SSL_CERT_FILE`` > ``SSL_CERT_DIR`` > certifi's bundle
(httpx's order); `senders._pool.tls_context` builds the context a resolved value names.
A bad value raises `ConfigError` naming where it came from::

    max_concurrency must be a positive integer, got 0                    (an argument)
    llmrelay.toml: profiles.work.max_concurrency: expected a positive integer, got 'ten'
    environment (OPENAI_BASE_URL): expected a URL starting with http:// or https://, got 'x'
"""

from __future__ import annotations

import dataclasses
import math
import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from . import _constants as C
from ._config import DEFAULT_BREAKER, CircuitBreaker, RateLimit, RetryPolicy, Timeout
from ._exceptions import ConfigError
from ._usage import Prices
from .providers import Provider, get_provider

if TYPE_CHECKING:
    from ._profiles import Profile
    from ._routes import Budget, Route

PROVIDER_ENV = "LLMRELAY_PROVIDER"
HTTP_ENV = "LLMRELAY_HTTP"
# The HTTP engines a client can send with (`http=`): httpx is the default and always installed;
# the others are extras (`llmrelay[aiohttp]`, `llmrelay[reqwest]`), imported when chosen.
ENGINES = ("httpx", "aiohttp", "reqwest")
MODEL_ENV = "LLMRELAY_MODEL"
DEFAULT_PROVIDER = "openai"
BASE_HEADERS: Mapping[str, str] = MappingProxyType(
    {"user-agent": "llmrelay/0.1", "accept-encoding": "gzip, deflate"}
)
# CA bundle variables, read as httpx (trust_env), requests and curl read them: file, then dir.
SSL_CERT_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR")
SYSTEM_TRUST: Literal["system"] = "system"
TRUSTSTORE_HINT = 'verify="system" needs the truststore package: pip install "llmrelay[truststore]"'
TIMEOUT_KEYS = ("connect", "read", "total")
RATE_KEYS = ("requests_per_minute", "tokens_per_minute")
# The other keys of a profile's rate_limit table (a shared limit's Redis, the server-driven parts).
RATE_OPTIONS: dict[str, type] = {
    "redis_url": str,
    "key": str,
    "on_redis_error": str,
    "follow_server": bool,
    "adaptive_concurrency": bool,
}

# What `ClientConfig.sources` says for a value that no argument, variable or profile gave.
ARGUMENT = "argument"
DEFAULT = "default"
PRESET = "preset"


@dataclass(frozen=True, slots=True)
class CABundle:
    """CA certificates to trust instead of certifi's: a PEM file, or a directory of hashed
    certificates (``c_rehash``), as `ssl.SSLContext.load_verify_locations` takes them."""

    path: str
    directory: bool = False
    source: str = dataclasses.field(default=ARGUMENT, compare=False)  # named in load errors


# What `ClientConfig.verify` holds: True (certifi), False (no checks), "system" (the OS trust
# store through truststore), a CA bundle, or the user's own context (used as given).
Verify: TypeAlias = bool | Literal["system"] | CABundle | ssl.SSLContext


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Everything a client is built from, resolved and checked.

    `provider` already carries the final `base_url`; `headers` are the final default headers
    (user agent, the provider's own, its login headers from `api_key`, then the user's), names
    lower-cased. `sources` tells, per setting, where the value came from: ``"argument"``,
    ``"environment (VAR)"``, ``"llmrelay.toml: profiles.NAME.KEY"``, ``"preset"`` or
    ``"default"``. `proxy` is whether a proxy from the environment applies to `base_url`; `verify`
    is the TLS trust (see `Verify`). The repr hides the key and credential headers.
    """

    provider: Provider
    api_key: str | None
    base_url: str
    model: str | None
    timeout: Timeout
    retry: RetryPolicy
    max_concurrency: int
    rate_limit: RateLimit | None
    headers: Mapping[str, str]
    prices: Prices
    proxy: bool = False
    verify: Verify = True
    fallbacks: tuple[Route, ...] = ()
    budget: Budget | None = None
    http: str = "httpx"
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)
    circuit_breaker: CircuitBreaker | None = DEFAULT_BREAKER

    @property
    def secrets(self) -> tuple[str, ...]:
        """What a server must never be seen echoing (`KeyMask` hides each): the key, the value
        of each credential header and the credential after its scheme (``Bearer X``: also
        ``X``), and a password in `base_url`. Short header values (``x-auth-mode: on``) are
        left out: masking them would garble messages and hide nothing worth hiding."""
        from urllib.parse import unquote, urlsplit

        from ._logging import is_sensitive_header

        found = [self.api_key] if self.api_key else []
        for name, value in self.headers.items():
            if is_sensitive_header(name):
                found += [value, value.rpartition(" ")[2]]
        password = urlsplit(self.base_url).password
        if password:
            found.append(unquote(password))
        return tuple(
            dict.fromkeys(s for s in found if s == self.api_key or len(s) >= C.MIN_MASKED_SECRET)
        )

    def __repr__(self) -> str:
        from ._logging import redact_headers, redact_url

        return (
            f"ClientConfig(provider={self.provider.name!r}, "
            f"base_url={redact_url(self.base_url)!r}, model={self.model!r}, "
            f"api_key={'***' if self.api_key else None!r}, timeout={self.timeout!r}, "
            f"retry={self.retry!r}, max_concurrency={self.max_concurrency!r}, "
            f"rate_limit={self.rate_limit!r}, headers={redact_headers(self.headers)!r}, "
            f"prices={dict(self.prices)!r}, proxy={self.proxy!r}, verify={self.verify!r}, "
            f"http={self.http!r}, "
            f"sources={dict(self.sources)!r})"
        )


def resolve_config(
    provider: str | Provider | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    timeout: Timeout | float | Mapping[str, float] | None = None,
    max_retries: int | None = None,
    retry: RetryPolicy | None = None,
    max_concurrency: int | None = None,
    rate_limit: RateLimit | Mapping[str, float] | None = None,
    headers: Mapping[str, str] | None = None,
    prices: Prices | None = None,
    verify: Verify | str | os.PathLike[str] | None = None,
    fallbacks: Sequence[Route] | None = None,
    budget: Budget | None = None,
    http: str | None = None,
    environ: Mapping[str, str] | None = None,
    profile: Profile | None = None,
    llmrelay_vars: bool = False,
    circuit_breaker: CircuitBreaker | None = DEFAULT_BREAKER,
) -> ClientConfig:
    """Resolve and check every setting; `None` means "not given" for each argument.

    `profile` (from `_profiles.select_profile`) sits between the environment and the preset;
    `llmrelay_vars` adds ``LLMRELAY_PROVIDER``/``LLMRELAY_MODEL`` to the environment layer.
    """
    env = os.environ if environ is None else environ
    r = _Resolution(env, profile)
    provider_env, model_env = ((PROVIDER_ENV,), (MODEL_ENV,)) if llmrelay_vars else ((), ())
    spec = r.setting("provider", provider, provider_env, DEFAULT_PROVIDER)
    p = _lookup(spec, r.sources["provider"], env)
    chosen_model = r.setting("model", model or None, model_env, p.default_model, PRESET)
    chosen_timeout = r.setting("timeout", timeout, default=Timeout())
    if retry is not None and max_retries is not None:
        raise ConfigError("give either max_retries or retry, not both")
    if retry is not None:  # a policy carries its own count: a profile's max_retries yields
        policy = r.setting("retry", retry)
    else:
        count = r.setting("max_retries", max_retries, default=C.DEFAULT_MAX_RETRIES)
        policy = RetryPolicy(max_retries=count)
        r.sources["retry"] = r.sources.pop("max_retries")
    concurrency = r.setting("max_concurrency", max_concurrency, default=C.DEFAULT_MAX_CONCURRENCY)
    limit = r.setting("rate_limit", rate_limit)
    if limit is not None and limit.shared:
        import importlib.util

        if importlib.util.find_spec("redis") is None:
            from ._shared_limits import redis_missing

            raise ConfigError(redis_missing())
    if circuit_breaker is not None and not isinstance(circuit_breaker, CircuitBreaker):
        raise ConfigError(
            f"circuit_breaker must be a CircuitBreaker or None, got {circuit_breaker!r}"
        )
    user_headers = r.merged("headers", headers)
    all_prices = r.merged("prices", prices)
    key = r.setting("api_key", api_key, p.api_key_env)
    if p.key_required and not key:
        where = " or ".join(p.api_key_env) or "api_key="
        raise ConfigError(
            f"no API key for provider {p.name!r}: set {where} in the environment "
            f"or pass api_key=... (provider='mock' needs no key)"
        )
    url = r.setting("base_url", base_url or None, p.base_url_env, p.base_url or None, PRESET)
    if url is None:
        where = " or ".join(p.base_url_env) or "base_url="
        raise ConfigError(
            f"no base URL for provider {p.name!r}: set {where} in the environment "
            f"or pass base_url=..."
        )
    if url != p.base_url:  # adapters read the URL their paths are joined to
        p = dataclasses.replace(p, base_url=url)
    if p.transport_factory is not None and r.sources["base_url"] != PRESET:
        # A transport that stands in for the network (the mock's, in process) serves the
        # preset's own URL only: a base URL the user gave (argument, variable, profile) is a
        # server to reach, e.g. the one `llmrelay mock serve` started, so the sender uses the
        # connection pool for it instead of silently answering in process.
        p = dataclasses.replace(p, transport_factory=None)
    # A provider with its own transport (the mock's) makes no TLS connection: a CA bundle
    # variable meant for other programs is not its business.
    own_transport = p.transport_factory is not None
    trust = r.setting("verify", verify, () if own_transport else SSL_CERT_ENV, default=True)
    engine = r.setting("http", http, (HTTP_ENV,), default=ENGINES[0])
    final_headers: dict[str, str] = {}
    for layer in (BASE_HEADERS, p.default_headers, p.adapter.auth_headers(p, key), user_headers):
        final_headers.update({name.lower(): value for name, value in layer.items()})
    return ClientConfig(
        provider=p,
        api_key=key,
        base_url=url,
        model=chosen_model,
        timeout=chosen_timeout,
        retry=policy,
        max_concurrency=concurrency,
        rate_limit=limit,
        headers=MappingProxyType(final_headers),
        prices=MappingProxyType(all_prices),
        proxy=not own_transport and proxy_applies(env, url),
        verify=trust,
        fallbacks=_fallbacks(fallbacks),
        budget=_budget(budget),
        http=engine,
        sources=MappingProxyType(r.sources),
        circuit_breaker=circuit_breaker,
    )


def resolve_profile_config(
    profile: str | None = None,
    *,
    config_path: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **arguments: Any,
) -> ClientConfig:
    """`resolve_config` with a profile of ``llmrelay.toml`` and the ``LLMRELAY_*`` variables.

    The profile is `profile`, else ``$LLMRELAY_PROFILE``, else the file's `default_profile`
    (none at all when the file has no default: the environment and the preset apply).
    `arguments` are `resolve_config`'s; `headers` and `prices` are merged into the profile's,
    entry by entry.
    """
    from ._profiles import select_profile

    env = os.environ if environ is None else environ
    chosen = select_profile(profile, config_path=config_path, cwd=cwd, environ=env)
    return resolve_config(**arguments, environ=env, profile=chosen, llmrelay_vars=True)


class _Resolution:
    """One resolution's layers and the `sources` it records."""

    __slots__ = ("environ", "profile", "sources")

    def __init__(self, environ: Mapping[str, str], profile: Profile | None) -> None:
        self.environ = environ
        self.profile = profile
        self.sources: dict[str, str] = {}

    def _profile_place(self, key: str) -> Place | None:
        if self.profile is None or key not in self.profile.values:
            return None
        return Place(key, f"{self.profile.where}.{key}")

    def setting(
        self,
        key: str,
        argument: Any,
        env_names: Sequence[str] = (),
        default: Any = None,
        default_source: str = DEFAULT,
    ) -> Any:
        """The checked value of the first layer that has one (argument, environment variables
        in order, profile), else `default` (the preset's value or ours, checked too)."""
        if argument is not None:
            self.sources[key] = ARGUMENT
            return check_setting(key, argument, Place(key))
        for var in env_names:
            value = self.environ.get(var)
            if value:
                label = f"environment ({var})"
                self.sources[key] = label
                return check_setting(key, value, Place(key, label))
        place = self._profile_place(key)
        if place is not None and self.profile is not None:
            self.sources[key] = str(place.label)
            return check_setting(key, self.profile.values[key], place)
        self.sources[key] = default_source
        return None if default is None else check_setting(key, default, Place(key))

    def merged(self, key: str, argument: Any) -> dict[str, Any]:
        """A table setting: the profile's entries, then the argument's (which win by key)."""
        merged: dict[str, Any] = {}
        place = self._profile_place(key)
        if place is not None and self.profile is not None:
            merged.update(check_setting(key, self.profile.values[key], place))
            self.sources[key] = str(place.label)
        if argument is not None:
            merged.update(check_setting(key, argument, Place(key)))
            self.sources[key] = ARGUMENT
        self.sources.setdefault(key, DEFAULT)
        return merged


def _lookup(spec: str | Provider, source: str, environ: Mapping[str, str]) -> Provider:
    if isinstance(spec, Provider):
        return spec
    try:
        return get_provider(spec, environ)
    except ConfigError as exc:
        if source in (ARGUMENT, DEFAULT):  # the caller knows what it passed
            raise
        raise ConfigError(f"{source}: {exc}") from None


# -- checks: each written once, worded by where the value came from -----------------------------


class Place:
    """Where a value came from, as error messages name it: an argument (by its `name`), or a
    `label` such as ``llmrelay.toml: profiles.work.timeout`` or ``environment (VAR)``."""

    __slots__ = ("label", "name")

    def __init__(self, name: str, label: str | None = None) -> None:
        self.name = name
        self.label = label

    @property
    def is_argument(self) -> bool:
        return self.label is None

    @property
    def is_environment(self) -> bool:
        return self.label is not None and self.label.startswith("environment (")

    def item(self, key: object) -> Place:
        """The place of one entry of a table."""
        if self.label is None:
            return Place(f"{self.name}[{key!r}]")
        return Place(self.name, f"{self.label}.{key}")

    def bad(self, expected: str, value: object, *, shown: str | None = None) -> ConfigError:
        got = repr(value) if shown is None else shown
        if self.label is None:
            return ConfigError(f"{self.name} must be {expected}, got {got}")
        return ConfigError(f"{self.label}: expected {expected}, got {got}")

    def unknown(self, allowed: Sequence[str]) -> ConfigError:
        return ConfigError(
            f"{self.label or self.name}: unknown key (allowed: {', '.join(allowed)})"
        )


def check_setting(key: str, value: Any, place: Place) -> Any:
    """Setting `key`'s value in its typed form (a `Timeout` for a number or a table...), or a
    `ConfigError` naming `place`. Used for arguments, variables and file values alike."""
    return _CHECKS[key](value, place)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def check_text(value: Any, place: Place) -> str:
    if not isinstance(value, str) or not value:
        raise place.bad("a non-empty string", value)
    return value


def _provider(value: Any, place: Place) -> str | Provider:
    if isinstance(value, Provider):
        return value
    if place.is_argument and not (isinstance(value, str) and value):
        raise place.bad("a preset name or a Provider", value)
    return check_text(value, place)


def _api_key(value: Any, place: Place) -> str:
    # An explicit api_key="" means "send no key" (and skips the variables).
    if not isinstance(value, str) or (not value and not place.is_argument):
        shown = None if value == "" else f"a {type(value).__name__}"  # never a key's text
        raise place.bad("a non-empty string", value, shown=shown)
    # A key pasted from a file or `$(cat key.txt)` often ends in a newline or a space: dropped.
    # What remains must fit in a header; otherwise httpx's error would quote the whole key.
    key = value.strip()
    if not key.isascii() or not key.isprintable():
        raise place.bad(
            "a key of printable ASCII characters", value, shown="one with other characters"
        )
    return key


def _url(value: Any, place: Place) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        from ._logging import redact_url

        shown = repr(redact_url(value)) if isinstance(value, str) else None
        raise place.bad("a URL starting with http:// or https://", value, shown=shown)
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or not parts.hostname:
        from ._logging import redact_url

        raise place.bad("a URL with a host", value, shown=repr(redact_url(value)))
    return value


def _verify(value: Any, place: Place) -> Verify:
    if isinstance(value, bool | ssl.SSLContext):
        return value
    if value == SYSTEM_TRUST and not place.is_environment:  # a variable names a path, always
        try:  # imported now (it is small): its absence shows when the client is made
            import truststore  # noqa: F401
        except ImportError:
            raise ConfigError(
                TRUSTSTORE_HINT if place.is_argument else f"{place.label}: {TRUSTSTORE_HINT}"
            ) from None
        return SYSTEM_TRUST
    if isinstance(value, str | os.PathLike) and os.fspath(value):
        # Made absolute now: the bundle is loaded when the client is built, and is looked up
        # where the user was when they named it.
        path = os.path.abspath(os.fspath(value))
        source = place.label or place.name
        if os.path.isdir(path):
            return CABundle(path, directory=True, source=source)
        if os.path.isfile(path):
            return CABundle(path, source=source)
        raise place.bad("an existing CA bundle file or directory", os.fspath(value))
    raise place.bad(
        'True, False, "system", an ssl.SSLContext or the path of a CA bundle'
        if place.is_argument
        else 'true, false, "system" or the path of a CA bundle file or directory',
        value,
    )


def _engine(value: Any, place: Place) -> str:
    if value not in ENGINES:
        raise place.bad(" or ".join(repr(name) for name in ENGINES), value)
    return str(value)


def _positive_int(value: Any, place: Place) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise place.bad("a positive integer", value)
    return value


def _retries(value: Any, place: Place) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise place.bad("a whole number >= 0", value)
    return value


def _positive(value: Any, place: Place, expected: str) -> float:
    if not _is_number(value) or value <= 0:
        raise place.bad(expected, value)
    return float(value)


def _table(
    value: Mapping[Any, Any], allowed: Sequence[str], place: Place, expected: str
) -> dict[str, float]:
    checked: dict[str, float] = {}
    for key, item in value.items():
        if key not in allowed:
            raise place.item(key).unknown(allowed)
        checked[key] = _positive(item, place.item(key), expected)
    return checked


def _timeout(value: Any, place: Place) -> Timeout:
    if isinstance(value, Timeout):
        return value
    if isinstance(value, Mapping):
        return Timeout(**_table(value, TIMEOUT_KEYS, place, "a number of seconds"))
    expected = (
        "a Timeout or a number of seconds"
        if place.is_argument
        else "a number of seconds or a table {connect, read, total}"
    )
    return Timeout(total=_positive(value, place, expected))


def _rate_limit(value: Any, place: Place) -> RateLimit:
    if isinstance(value, RateLimit):
        return value
    if isinstance(value, Mapping):
        for key in value:
            if key not in RATE_KEYS and key not in RATE_OPTIONS:
                raise place.item(key).unknown((*RATE_KEYS, *RATE_OPTIONS))
        numbers = _table(
            {k: v for k, v in value.items() if k in RATE_KEYS},
            RATE_KEYS,
            place,
            "a positive number",
        )
        options: dict[str, Any] = {}
        for key, kind in RATE_OPTIONS.items():
            if key in value:
                if not isinstance(value[key], kind):
                    expected = "a string" if kind is str else "true or false"
                    raise place.item(key).bad(expected, value[key], shown=type(value[key]).__name__)
                options[key] = value[key]
        try:
            return RateLimit(
                requests_per_minute=numbers.get("requests_per_minute"),
                tokens_per_minute=numbers.get("tokens_per_minute"),
                **options,
            )
        except ConfigError as exc:
            raise ConfigError(f"{place.label or place.name}: {exc}") from None
    raise place.bad(
        "a RateLimit" if place.is_argument else "a table {requests_per_minute, tokens_per_minute}",
        value,
    )


def _headers(value: Any, place: Place) -> dict[str, str]:
    if not isinstance(value, Mapping):  # e.g. httpx's list of pairs, a key among them: not shown
        raise place.bad("a table of header names to strings", value, shown=type(value).__name__)
    checked: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not isinstance(text, str):
            from ._logging import is_sensitive_header

            secret = isinstance(name, str) and is_sensitive_header(name)
            shown = f"a {type(text).__name__}" if secret else None
            raise place.item(name).bad("a string", text, shown=shown)
        if not is_header_name(name):
            raise place.bad("a table whose names are valid HTTP header names", name)
        # Surrounding whitespace is dropped, as from a key (a token pasted from a file). What
        # is left must fit in a header: httpx's own error would quote the whole value.
        text = text.strip()
        problem = header_value_problem(text)
        if problem is not None:
            raise place.item(name).bad(HEADER_EXPECTED, text, shown=problem)
        checked[name] = text
    return checked


HEADER_EXPECTED = "a header value of printable ASCII characters"
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def is_header_name(name: str) -> bool:
    """Whether `name` is an RFC 9110 token, as h11 requires of a header name."""
    return bool(name) and _TOKEN_CHARS.issuperset(name)


def header_value_problem(value: str) -> str | None:
    """What keeps `value` from being sent in a header, worded to follow "got" and never
    quoting it; None when it can go: printable ASCII with inner spaces or tabs only (what httpx
    encodes and h11 accepts)."""
    if value != value.strip(" \t"):
        return "one with surrounding whitespace"
    for char in value:
        if not (" " <= char <= "~" or char == "\t"):
            if char in "\r\n":
                return "one with a line break"
            return (
                "one with a non-ASCII character"
                if char > "\x7f"
                else "one with a control character"
            )
    return None


def _prices(value: Any, place: Place) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        example = "" if place.is_argument else ', e.g. { "gpt-4o-mini" = [0.15, 0.60] }'
        raise place.bad(
            f"a table of model names to [prompt, completion] prices per million tokens{example}",
            value,
        )
    checked: dict[str, Any] = {}
    for model, price in value.items():
        checked[model] = _price(price, place.item(model))
    return checked


PRICE_KEYS = ("input", "output", "cached_input", "cache_write")


def _price(price: Any, place: Place) -> Any:
    """[input, output], a `Price`, or a table {input, output, cached_input, cache_write}."""
    from ._prices import Price

    if isinstance(price, Price):
        price = {k: getattr(price, k) for k in PRICE_KEYS if getattr(price, k) is not None}
    if isinstance(price, Mapping):
        unknown = sorted(set(price) - set(PRICE_KEYS))
        numbers = list(price.values())
        if (
            unknown
            or not {"input", "output"} <= set(price)
            or not all(_is_number(p) and p >= 0 for p in numbers)
        ):
            raise place.bad(
                "a table {input, output, cached_input, cache_write} of prices per million "
                "tokens (input and output required, numbers >= 0)",
                price,
            )
        return Price(**{k: float(v) for k, v in price.items()})
    if not (
        isinstance(price, list | tuple)
        and len(price) == 2
        and all(_is_number(p) and p >= 0 for p in price)
    ):
        raise place.bad("[prompt, completion] prices per million tokens (two numbers >= 0)", price)
    return (float(price[0]), float(price[1]))


def _fallbacks(value: Any) -> tuple[Route, ...]:
    if value is None:
        return ()
    from ._routes import Route

    if isinstance(value, Route) or not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(f"fallbacks must be a list of llmrelay.Route, got {_shown(value)}")
    for item in value:
        if not isinstance(item, Route):
            raise ConfigError(
                f"fallbacks must be a list of llmrelay.Route, got an item {_shown(item)}"
            )
    return tuple(value)


def _shown(value: Any) -> str:
    # A route given as a dict or a list of settings may hold its key: named by type only.
    from ._routes import Route

    if value is None or isinstance(value, str | int | float | Route):  # a Route hides its key
        return repr(value)
    return f"of type {type(value).__name__}"


def _budget(value: Any) -> Budget | None:
    if value is None:
        return None
    from ._routes import Budget

    if not isinstance(value, Budget):
        raise ConfigError(f"budget must be an llmrelay.Budget, got {value!r}")
    return value


def _retry(value: Any, place: Place) -> RetryPolicy:
    if not isinstance(value, RetryPolicy):
        raise place.bad("a RetryPolicy", value)
    return value


_CHECKS: Mapping[str, Callable[[Any, Place], Any]] = MappingProxyType(
    {
        "provider": _provider,
        "model": check_text,
        "api_key": _api_key,
        "base_url": _url,
        "timeout": _timeout,
        "max_retries": _retries,
        "retry": _retry,
        "max_concurrency": _positive_int,
        "rate_limit": _rate_limit,
        "headers": _headers,
        "prices": _prices,
        "verify": _verify,
        "http": _engine,
    }
)


def proxy_applies(environ: Mapping[str, str], base_url: str) -> bool:
    """Whether HTTP(S)_PROXY or ALL_PROXY names a proxy for `base_url` that NO_PROXY does not
    exempt, read from `environ` the way urllib and httpx read the process environment: any case
    counts, and a lowercase name (even empty) wins over its uppercase one."""
    return env_proxy(environ, base_url) is not None


def env_proxy(environ: Mapping[str, str], base_url: str) -> str | None:
    """The proxy URL `proxy_applies` found for `base_url` (None when none applies): the engines
    other than httpx are handed it, since they do not read the environment as httpx does."""
    from urllib.parse import urlsplit

    # urllib's own NO_PROXY matcher (the one httpx follows too); not in typeshed's stubs.
    from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

    proxies: dict[str, str] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            proxies[name.lower()[:-6]] = value
    for name, value in environ.items():
        if name.endswith("_proxy"):  # lowercase names, read last
            if value:
                proxies[name[:-6]] = value
            else:
                proxies.pop(name[:-6], None)
    parts = urlsplit(base_url)
    found = proxies.get(parts.scheme) or proxies.get("all")
    if not found:
        return None
    host = parts.hostname or ""
    if proxy_bypass_environment(f"{host}:{parts.port}" if parts.port else host, proxies):
        return None
    return found
