"""Azure OpenAI: OpenAI's JSON at Azure's URLs, with Azure's login.

Two URL forms, chosen by the endpoint:

- classic: ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``;
  the deployment is the call's ``model``. Embeddings go to ``.../deployments/{d}/embeddings``
  and the model list to ``{endpoint}/openai/models?api-version=...``.
- v1 (an endpoint ending in ``/openai/v1``): plain OpenAI paths, no api-version, the deployment
  name in the body's ``model``.

Auth is an ``api-key`` header (``AZURE_OPENAI_API_KEY``) or, when ``AZURE_OPENAI_AD_TOKEN`` is
set (it wins, as in the OpenAI SDK), an Entra ID bearer token. Replies are parsed by the OpenAI
adapter; Azure's stream quirks (a first chunk with ``choices: []`` and only
``prompt_filter_results``, ``content_filter_results`` on chunks, a chunk without ``delta``) are
harmless to it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import quote

from .._exceptions import ConfigError
from .._request import ChatRequest, WireRequest
from ._base import Provider
from .openai import build_chat as _openai_build_chat
from .openai import build_embed as _openai_build_embed
from .openai import (
    new_stream_parser,
    parse_chat,
    parse_embed,
    parse_error,
    parse_models,
)

if TYPE_CHECKING:
    from ._base import Adapter

__all__ = [
    "DEFAULT_API_VERSION",
    "auth_headers",
    "build_chat",
    "build_embed",
    "build_models",
    "is_v1",
    "new_stream_parser",
    "parse_chat",
    "parse_embed",
    "parse_error",
    "parse_models",
    "preset",
    "request_id_header",
]

# The latest generally available api-version of the classic data-plane inference API.
DEFAULT_API_VERSION = "2024-10-21"

request_id_header = "apim-request-id"

Auth = Literal["api-key", "bearer"]


def preset(
    *,
    endpoint: str | None = None,
    api_version: str | None = None,
    auth: Auth | None = None,
    environ: Mapping[str, str] | None = None,
) -> Provider:
    """The Azure OpenAI provider. A client built with ``provider="azure"`` calls it with the
    environment mapping its settings are resolved from; called directly, `environ` defaults to
    the process environment, read now.

    `endpoint` defaults to ``AZURE_OPENAI_ENDPOINT`` (``https://{resource}.openai.azure.com``,
    or ``.../openai/v1`` for the v1 API), `api_version` to ``OPENAI_API_VERSION`` or
    `DEFAULT_API_VERSION`, and `auth` to ``"bearer"`` when ``AZURE_OPENAI_AD_TOKEN`` is set,
    else ``"api-key"``::

        client = llmrelay.AsyncClient(provider=azure.preset(endpoint="https://r.openai.azure.com"))
    """
    env = os.environ if environ is None else environ
    raw = endpoint or env.get("AZURE_OPENAI_ENDPOINT") or ""
    base = _normalize_endpoint(raw)
    version = api_version or env.get("OPENAI_API_VERSION") or DEFAULT_API_VERSION
    if auth is None:
        auth = "bearer" if env.get("AZURE_OPENAI_AD_TOKEN") else "api-key"
    elif auth not in ("api-key", "bearer"):
        raise ConfigError(f"azure auth must be 'api-key' or 'bearer', got {auth!r}")
    return Provider(
        name="azure",
        # This module is the adapter (mypy checks it against `Adapter` in presets.py).
        adapter=cast("Adapter", sys.modules[__name__]),
        base_url=base,
        api_key_env=("AZURE_OPENAI_AD_TOKEN",) if auth == "bearer" else ("AZURE_OPENAI_API_KEY",),
        # Named only while unset, so that the client's error can say where the endpoint goes;
        # a set one was read (and normalised) above.
        base_url_env=() if base else ("AZURE_OPENAI_ENDPOINT",),
        options={"api_version": version, "auth": auth},
    )


def _normalize_endpoint(endpoint: str) -> str:
    base = endpoint.strip().rstrip("/")
    if base.endswith("/openai") and not is_v1(base):
        base = base[: -len("/openai")]  # users often paste the endpoint with the prefix
    return base


def is_v1(base_url: str) -> bool:
    """Whether a base URL is Azure's v1 form (``.../openai/v1``): OpenAI paths, no api-version."""
    return base_url.rstrip("/").endswith("/openai/v1")


def auth_headers(provider: Provider, api_key: str | None) -> dict[str, str]:
    if not api_key:
        return {}
    if provider.options.get("auth") == "bearer":
        return {"authorization": f"Bearer {api_key}"}
    return {"api-key": api_key}


def _api_version(provider: Provider) -> dict[str, str]:
    return {"api-version": str(provider.options.get("api_version") or DEFAULT_API_VERSION)}


def _deployment_path(deployment: str, operation: str) -> str:
    if not deployment:
        raise ConfigError("azure needs a deployment name: pass it as model=...")
    return f"openai/deployments/{quote(deployment, safe='')}/{operation}"


def build_chat(provider: Provider, request: ChatRequest) -> WireRequest:
    wire = _openai_build_chat(provider, request)
    if is_v1(provider.base_url):
        # Reasoning deployments refuse max_tokens and the v1 API takes max_completion_tokens;
        # the classic GA api-version refuses it, so only here is it renamed.
        explicit = request.extra_body is not None and "max_tokens" in request.extra_body
        if (
            "max_tokens" in request.params
            and "max_tokens_field" not in provider.options
            and not explicit
        ):
            wire.json["max_completion_tokens"] = wire.json.pop("max_tokens")
        return wire
    wire.path = _deployment_path(request.model, "chat/completions")
    wire.params = _api_version(provider)
    return wire


def build_embed(
    provider: Provider, model: str, inputs: list[str], extra_body: Mapping[str, Any] | None
) -> WireRequest:
    wire = _openai_build_embed(provider, model, inputs, extra_body)
    if is_v1(provider.base_url):
        return wire
    wire.path = _deployment_path(model, "embeddings")
    wire.params = _api_version(provider)
    return wire


def build_models(provider: Provider) -> WireRequest:
    if is_v1(provider.base_url):
        return WireRequest(method="GET", path="models")
    return WireRequest(method="GET", path="openai/models", params=_api_version(provider))
