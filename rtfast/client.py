"""Asyncio Realtime client: a drop-in for the official ``openai`` realtime connection.

This layer only moves bytes between a ``websockets`` connection and a
:class:`rtfast.session.RealtimeSession` (which parses and tracks state).
Frames go out as text from bytes (``send(data, text=True)``) and come in
undecoded (``recv(decode=False)``): no str round trip on the hot path.

    client = rtfast.AsyncOpenAI()
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(session={"type": "realtime", ...})
        await conn.input_audio_buffer.append(audio=b64)
        async for event in conn:
            ...
"""

from __future__ import annotations

import asyncio
import copy as _copy
import inspect
import logging
import os
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Literal

import orjson

from rtfast._rest import DEFAULT_MAX_RETRIES, urlopen, with_auth, with_retries
from rtfast.http import seconds
from rtfast.connection import (DEFAULT_BASE_URL, MAX_MESSAGE, ConnectionManager,  # noqa: F401 (re-exported)
                               RealtimeConnection, ReconnectingEvent, ReconnectingOverrides,
                               WebSocketConnectionClosedError, WebSocketQueueFullError, _BETA_HEADER, _Credentials,
                               _merge_headers, _realtime_url, _with_query, _ws_url, connect, ws_log)
from rtfast._results import (ClientSecretCreateResponse, RealtimeTranslationClientSecretCreateResponse, RestObject,
                             SessionCreateResponse, TranscriptionSession, wrap)
from rtfast.errors import MissingCredentials, ProtocolError

__all__ = ["AsyncOpenAI", "AsyncAzureOpenAI", "RealtimeConnection", "ConnectionManager", "connect",
           "ReconnectingEvent", "ReconnectingOverrides", "WebSocketQueueFullError", "WebSocketConnectionClosedError"]

log = logging.getLogger("rtfast.client")


class _Realtime:
    def __init__(self, client: AsyncOpenAI, generation: str) -> None:
        self._client = client
        self._generation = generation

    def connect(self, *, model: str | None = None, call_id: str | None = None,
                extra_query: dict | None = None, extra_headers: dict | None = None,
                websocket_connection_options: dict | None = None,
                proxy: str | Literal[True] | None = True,
                on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None] | None = None,
                max_retries: int = 5, initial_delay: float = 0.5, max_delay: float = 8.0,
                max_queue_size: int = 1_048_576) -> ConnectionManager:
        """Open a Realtime websocket (async context manager), with the official
        keyword arguments. ``websocket_connection_options`` take websockets' names
        (e.g. ``ping_interval``, ``max_size``); rtfast's own websocket honours
        the usual ones, and any it cannot (``compression="deflate"``,
        ``max_queue``, ``subprotocols``...) makes the connection websockets'
        own (see docs/client.md, "The websocket"). ``proxy`` as in
        :func:`connect`: from the environment by default, a URL, or ``None``;
        ``websocket_connection_options={"proxy": ...}`` works too.

        Reconnecting, as the official client: only when ``on_reconnecting`` is given. When the
        connection drops with a close code worth retrying (1001, 1005, 1006, 1011, 1012, 1013,
        1015) while you iterate it (``async for``, ``dispatch_events``), it calls
        ``on_reconnecting(ReconnectingEvent)`` before each of up to ``max_retries`` attempts
        (delay ``initial_delay * 2**(attempt-1)``, at most ``max_delay``, times a 0.75-1 jitter);
        the hook may return ``{"extra_query": ..., "extra_headers": ..., "abort": True}``.
        Sends while reconnecting are queued (at most ``max_queue_size`` bytes) and go out on the
        new connection; the retry budget resets once it delivers an event other than ``error``.
        The new connection is a new session: configure it again on ``session.created``."""
        return self._manager(model, call_id, extra_query, extra_headers, websocket_connection_options, proxy,
                             on_reconnecting=on_reconnecting, max_retries=max_retries, initial_delay=initial_delay,
                             max_delay=max_delay, max_queue_size=max_queue_size)

    def _manager(self, model, call_id, extra_query, extra_headers, websocket_connection_options, proxy,
                 path: str = "/realtime", **reconnect) -> ConnectionManager:
        client = self._client
        extra_query = dict(extra_query or {})
        url, headers = client._realtime_target(model, call_id, extra_query, path)
        if self._generation == "beta":
            headers[_BETA_HEADER[0]] = _BETA_HEADER[1]
        options = dict(websocket_connection_options or {})
        if proxy is not True:
            options["proxy"] = proxy
        return ConnectionManager(url, headers, self._generation, options, auth=client._fresh_auth(),
                                 url_for=lambda query: client._realtime_target(model, call_id, dict(query), path)[0],
                                 extra_query=extra_query, extra_headers=extra_headers, **reconnect)

    @property
    def client_secrets(self) -> _ClientSecrets:
        return _ClientSecrets(self._client)

    @property
    def calls(self):
        """The calls REST API (rtfast.calls): ``create`` (WebRTC), ``accept``/``reject``/``refer``/``hangup`` (SIP)."""
        from rtfast.calls import AsyncCalls     # imported on first use: most clients never need it

        return AsyncCalls(self._client)

    @property
    def sessions(self) -> _BetaSessions:
        return _BetaSessions(self._client)

    @property
    def transcription_sessions(self) -> _TranscriptionSessions:
        return _TranscriptionSessions(self._client)

    @property
    def translations(self) -> _Translations:
        return _Translations(self._client)


class _Translations:
    """``client.realtime.translations``: the translation websocket and its client secrets."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    def connect(self, model: str, extra_query: dict | None = None, extra_headers: dict | None = None,
                websocket_connection_options: dict | None = None, *,
                proxy: str | Literal[True] | None = True,
                on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None] | None = None,
                max_retries: int = 5, initial_delay: float = 0.5, max_delay: float = 8.0,
                max_queue_size: int = 1_048_576) -> ConnectionManager:
        """Open a translation session (``/realtime/translations?model=...``); the connection has
        ``session.update``, ``session.close`` and ``session.input_audio_buffer.append``."""
        return _Realtime(self._client, "translation")._manager(
            model, None, extra_query, extra_headers, websocket_connection_options, proxy,
            path="/realtime/translations", on_reconnecting=on_reconnecting, max_retries=max_retries,
            initial_delay=initial_delay, max_delay=max_delay, max_queue_size=max_queue_size)

    @property
    def client_secrets(self) -> _TranslationClientSecrets:
        return _TranslationClientSecrets(self._client)


class _Beta:
    def __init__(self, client: AsyncOpenAI) -> None:
        self.realtime = _Realtime(client, "beta")


class _RestResource:
    """A REST resource of the client; ``with_raw_response`` gives the same methods returning a
    :class:`rtfast.calls.RawResponse` (status, headers, ``request_id``, ``parse()``), as officially."""

    _raw = False

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    @property
    def with_raw_response(self):
        raw = _copy.copy(self)
        raw._raw = True
        return raw


class _ClientSecrets(_RestResource):
    """GA ephemeral keys: ``POST /v1/realtime/client_secrets``."""

    async def create(self, *, expires_after: dict | None = None, session: dict | None = None,
                     extra_headers: dict | None = None, extra_query: dict | None = None,
                     extra_body: dict | None = None, timeout: float | None = None) -> ClientSecretCreateResponse:
        """An ephemeral key (``secret.value``, ``secret.expires_at``) for a browser or app, and the
        session it opens (``secret.session``); the result is also the API's JSON as a dict."""
        body = _body({"expires_after": expires_after, "session": session}, extra_body)
        return await self._client._post("/realtime/client_secrets", body, headers=extra_headers, query=extra_query,
                                        timeout=timeout, raw=self._raw, result=ClientSecretCreateResponse)


def _body(fields: dict, extra_body: dict | None) -> dict:
    """The request body: the given fields (None ones left out, as the official NOT_GIVEN), then extra_body."""
    body = {k: v for k, v in fields.items() if v is not None}
    body.update(extra_body or {})
    return body


# the official client sends this header on the beta REST calls (not realtime=v1, the websocket's)
_BETA_REST_HEADER = {"OpenAI-Beta": "assistants=v2"}


class _BetaSessions(_RestResource):
    """Beta ephemeral sessions: ``POST /v1/realtime/sessions``, with the official keyword arguments."""

    async def create(self, *, client_secret: dict | None = None, input_audio_format: str | None = None,
                     input_audio_noise_reduction: dict | None = None, input_audio_transcription: dict | None = None,
                     instructions: str | None = None, max_response_output_tokens: int | str | None = None,
                     modalities: list[str] | None = None, model: str | None = None,
                     output_audio_format: str | None = None, speed: float | None = None,
                     temperature: float | None = None, tool_choice: str | None = None, tools: list | None = None,
                     tracing: str | dict | None = None, turn_detection: dict | None = None,
                     voice: str | None = None, extra_headers: dict | None = None, extra_query: dict | None = None,
                     extra_body: dict | None = None, timeout: float | None = None) -> SessionCreateResponse:
        """A beta session and its ephemeral key (``session.client_secret.value``)."""
        body = _body({"client_secret": client_secret, "input_audio_format": input_audio_format,
                      "input_audio_noise_reduction": input_audio_noise_reduction,
                      "input_audio_transcription": input_audio_transcription, "instructions": instructions,
                      "max_response_output_tokens": max_response_output_tokens, "modalities": modalities,
                      "model": model, "output_audio_format": output_audio_format, "speed": speed,
                      "temperature": temperature, "tool_choice": tool_choice, "tools": tools, "tracing": tracing,
                      "turn_detection": turn_detection, "voice": voice}, extra_body)
        return await self._client._post("/realtime/sessions", body, headers=_merge_headers(_BETA_REST_HEADER,
                                                                                           extra_headers),
                                        query=extra_query, timeout=timeout, raw=self._raw, result=SessionCreateResponse)


class _TranscriptionSessions(_RestResource):
    """Beta transcription sessions: ``POST /v1/realtime/transcription_sessions`` (an ephemeral key
    for a transcription-only session), with the official keyword arguments."""


    async def create(self, *, client_secret: dict | None = None, include: list[str] | None = None,
                     input_audio_format: str | None = None, input_audio_noise_reduction: dict | None = None,
                     input_audio_transcription: dict | None = None, modalities: list[str] | None = None,
                     turn_detection: dict | None = None, extra_headers: dict | None = None,
                     extra_query: dict | None = None, extra_body: dict | None = None,
                     timeout: float | None = None) -> TranscriptionSession:
        """A transcription session and its ephemeral key (``session.client_secret.value``)."""
        body = _body({"client_secret": client_secret, "include": include, "input_audio_format": input_audio_format,
                      "input_audio_noise_reduction": input_audio_noise_reduction,
                      "input_audio_transcription": input_audio_transcription, "modalities": modalities,
                      "turn_detection": turn_detection}, extra_body)
        return await self._client._post("/realtime/transcription_sessions", body,
                                        headers=_merge_headers(_BETA_REST_HEADER, extra_headers),
                                        query=extra_query, timeout=timeout, raw=self._raw, result=TranscriptionSession)


class _TranslationClientSecrets(_RestResource):
    """Translation ephemeral keys: ``POST /v1/realtime/translations/client_secrets``."""

    async def create(self, *, session: dict, expires_after: dict | None = None, extra_headers: dict | None = None,
                     extra_query: dict | None = None, extra_body: dict | None = None,
                     timeout: float | None = None) -> RealtimeTranslationClientSecretCreateResponse:
        """An ephemeral key for a translation session (``secret.value``, ``.expires_at``, ``.session``)."""
        body = _body({"session": session, "expires_after": expires_after}, extra_body)
        return await self._client._post("/realtime/translations/client_secrets", body, headers=extra_headers,
                                        query=extra_query, timeout=timeout,
                                        raw=self._raw, result=RealtimeTranslationClientSecretCreateResponse)


class AsyncOpenAI:
    """The realtime part of the official ``openai.AsyncOpenAI``, fast.

    Reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` like the official client.
    ``client.realtime.connect(model=...)`` speaks GA; ``client.beta.realtime
    .connect(...)`` the beta shape (header ``OpenAI-Beta: realtime=v1``).
    """

    _key_provider = None

    def __init__(self, api_key: str | Callable[[], Awaitable[str]] | None = None, *, base_url: str | None = None,
                 websocket_base_url: str | None = None, organization: str | None = None,
                 project: str | None = None, default_headers: dict[str, str] | None = None,
                 timeout: float = 60.0, webhook_secret: str | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if not api_key:
            # As the official client: fail when built, not with a 401 that never happened.
            raise MissingCredentials("no API key: pass api_key= or set the OPENAI_API_KEY environment variable")
        self._set_api_key(api_key)
        self._closed = False
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.websocket_base_url = websocket_base_url
        self.organization = organization if organization is not None else os.environ.get("OPENAI_ORG_ID")
        self.project = project if project is not None else os.environ.get("OPENAI_PROJECT_ID")
        self.default_headers = dict(default_headers or {})
        self.timeout = timeout
        #: REST calls are tried again this many more times, as the official client's (rtfast._rest).
        self.max_retries = _check_retries(max_retries)
        #: What ``webhooks.unwrap``/``verify_signature`` check against (never in a repr or log).
        self.webhook_secret = webhook_secret if webhook_secret is not None else os.environ.get("OPENAI_WEBHOOK_SECRET")
        self.realtime = _Realtime(self, "ga")
        self.beta = _Beta(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base_url={self.base_url!r}>"

    @property
    def webhooks(self):
        """``unwrap`` and ``verify_signature`` with this client's ``webhook_secret``, and the project's
        webhook endpoints (``create``, ``list``, ``rotate_secret``, ``test``...): rtfast.webhooks."""
        from rtfast.webhooks import Webhooks    # imported on first use (hmac, the event classes)

        return Webhooks(self)

    def _set_api_key(self, api_key) -> None:
        if callable(api_key):
            # As the official client: a provider (``async () -> str``, or a plain function) is
            # asked before each request and connect; api_key is the key it last gave ("" before).
            self._key_provider, self.api_key = api_key, ""
            self._credentials = _Credentials({})
            return
        self._key_provider = None
        #: The key, as the official client exposes it (never in a repr or log).
        self.api_key = api_key
        self._credentials = _Credentials({"Authorization": f"Bearer {api_key}"})

    # -- the official client's lifecycle and copies ---------------------------------------------
    async def close(self) -> None:
        """As the official ``close()``: the client holds no pooled connection (REST calls open
        their own, websockets belong to their connection managers), so this only marks it closed."""
        self._closed = True

    def is_closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> AsyncOpenAI:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    _COPY_KEYWORDS = frozenset({"api_key", "organization", "project", "base_url", "websocket_base_url", "timeout",
                                "default_headers", "set_default_headers", "webhook_secret", "max_retries"})

    def copy(self, **changes) -> AsyncOpenAI:
        """A new client with some options changed (the official ``copy``/``with_options``):
        ``api_key``, ``organization``, ``project``, ``base_url``, ``websocket_base_url``,
        ``timeout``, ``max_retries``, ``default_headers`` (merged over the current ones) or
        ``set_default_headers`` (replacing them). Other official keywords (``http_client``,
        ``default_query``...) raise TypeError: this client has no such option."""
        unknown = sorted(set(changes) - self._COPY_KEYWORDS)
        if unknown:
            raise TypeError(f"{type(self).__name__}.copy() does not support {', '.join(map(repr, unknown))} "
                            f"(supported: {', '.join(sorted(self._COPY_KEYWORDS))})")
        if changes.get("default_headers") is not None and changes.get("set_default_headers") is not None:
            raise ValueError("the `default_headers` and `set_default_headers` arguments are mutually exclusive")
        new = _copy.copy(self)
        if changes.get("api_key") is not None:
            new._set_api_key(changes["api_key"])
        for name in ("organization", "project", "timeout", "webhook_secret"):
            if changes.get(name) is not None:
                setattr(new, name, changes[name])
        if changes.get("max_retries") is not None:
            new.max_retries = _check_retries(changes["max_retries"])
        if changes.get("base_url") is not None:
            new.base_url = str(changes["base_url"]).rstrip("/")
        if changes.get("websocket_base_url") is not None:
            new.websocket_base_url = changes["websocket_base_url"]
        if changes.get("set_default_headers") is not None:
            new.default_headers = dict(changes["set_default_headers"])
        else:
            new.default_headers = {**self.default_headers, **(changes.get("default_headers") or {})}
        new._closed = False
        new.realtime = _Realtime(new, "ga")
        new.beta = _Beta(new)
        return new

    with_options = copy

    @property
    def live(self):
        """GPT-Live (``/v1/live/sessions``): ``connect``, ``create``, ``sessions`` (rtfast.live.client)."""
        from rtfast.live.client import AsyncLive

        return AsyncLive(self)

    def _headers(self) -> dict[str, str]:
        headers = self._credentials.headers()
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return _merge_headers(headers, self.default_headers)

    def _fresh_auth(self) -> Callable[[], Awaitable[dict[str, str]]] | None:
        """Credentials to fetch at each connect and request, when they can expire (None: static)."""
        provider = self._key_provider
        if provider is None:
            return None

        async def auth() -> dict[str, str]:
            key = provider()
            if inspect.isawaitable(key):
                key = await key
            if type(key) is not str or not key:
                raise MissingCredentials("the api_key provider must return a non-empty string")
            self.api_key = key              # as the official client: the key last fetched
            return {"Authorization": f"Bearer {key}"}

        return auth

    def _realtime_target(self, model, call_id, query: dict, path: str = "/realtime") -> tuple[str, dict[str, str]]:
        # http(s):// websocket_base_urls map to ws(s)://, as the official client does
        base = _ws_url(self.websocket_base_url or self.base_url)
        return _realtime_url(base, {"model": model, "call_id": call_id, **query}, path), self._headers()

    async def _post(self, path: str, body: dict, *, headers: dict | None = None, query: dict | None = None,
                    timeout: float | None = None, result: type[RestObject] = RestObject, raw: bool = False):
        """A JSON POST to the REST API (ephemeral keys), on a worker thread: two calls a session do
        not earn an HTTP client dependency. Headers merge as the official client's do (the later
        set wins, by case-insensitive name): auth (fetched again for each attempt), the client's,
        the call's, then ``headers``; the
        query is appended; the answer is a :class:`RestObject` (attributes and dict), or with
        ``raw`` a :class:`rtfast.calls.RawResponse` around it."""
        url = _with_query(self.base_url + path, dict(query or {}))
        base_headers = _merge_headers(self._headers(), {"Accept": "application/json",
                                                        "Content-Type": "application/json"}, headers)
        data = orjson.dumps(body)
        timeout = seconds(self.timeout if timeout is None else timeout)
        where = _where(url)
        what = path.strip("/").replace("/", ".")

        async def attempt() -> tuple:      # the credentials of the moment, each attempt
            request = urllib.request.Request(url, data=data, headers=await with_auth(self, base_headers),
                                             method="POST")
            return await asyncio.to_thread(urlopen, request, timeout, what, where)

        status, response_headers, payload = await with_retries(self.max_retries, what, attempt)
        log.debug("POST %s", path)      # the path only: no headers, no body
        try:
            parsed = wrap(orjson.loads(payload), result)
        except orjson.JSONDecodeError:
            raise ProtocolError(f"{what}: the API's answer from {where} is not JSON") from None
        if not raw:
            return parsed
        from rtfast.calls import RawResponse

        return RawResponse(status, response_headers, payload, "POST", url, parsed)


def _check_retries(max_retries) -> int:
    if type(max_retries) is not int or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative integer, not {max_retries!r}")
    return max_retries


def _where(url: str) -> str:
    """host:port of a URL (no credentials, path or query): what connection errors name."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port or (443 if parts.scheme == 'https' else 80)}"


class AsyncAzureOpenAI(AsyncOpenAI):
    """Azure OpenAI: the preview path ``/openai/realtime?api-version=...&deployment=...``
    or, with ``api_version=None`` (or ``"v1"``), the GA path
    ``/openai/v1/realtime?model=<deployment>``. Auth by ``api-key`` header or
    an Entra ID bearer token (``azure_ad_token`` or ``azure_ad_token_provider``)."""

    def __init__(self, *, azure_endpoint: str | None = None, azure_deployment: str | None = None,
                 api_version: str | None = None, api_key: str | None = None,
                 azure_ad_token: str | None = None,
                 azure_ad_token_provider: Callable[[], str | Awaitable[str]] | None = None,
                 websocket_base_url: str | None = None, default_headers: dict[str, str] | None = None,
                 timeout: float = 60.0, webhook_secret: str | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        azure_endpoint = azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not azure_endpoint and not websocket_base_url:
            raise ValueError("azure_endpoint is required (or set AZURE_OPENAI_ENDPOINT)")
        api_key = api_key if api_key is not None else os.environ.get("AZURE_OPENAI_API_KEY")
        api_version = api_version if api_version is not None else os.environ.get("OPENAI_API_VERSION")
        self._token_provider = None
        if api_key:
            credentials = {"api-key": api_key}
        elif azure_ad_token_provider is not None:
            credentials = {}                    # fetched at each connect: Entra tokens expire
            self._token_provider = azure_ad_token_provider
        elif azure_ad_token:
            credentials = {"Authorization": f"Bearer {azure_ad_token}"}
        else:
            raise MissingCredentials("no Azure credentials: pass api_key=, azure_ad_token= "
                                     "or azure_ad_token_provider=, or set AZURE_OPENAI_API_KEY")
        self._ga = api_version in (None, "", "v1", "latest", "preview")
        root = (azure_endpoint or "").rstrip("/") + "/openai"
        super().__init__("unused", base_url=root + ("/v1" if self._ga else ""),
                         websocket_base_url=websocket_base_url, default_headers=default_headers,
                         timeout=timeout, webhook_secret=webhook_secret, max_retries=max_retries)
        self._credentials = _Credentials(credentials)
        self.api_key = api_key or ""
        self.api_version = api_version
        self.azure_deployment = azure_deployment

    def _set_api_key(self, api_key: str) -> None:
        self.api_key = api_key
        self._credentials = _Credentials({"api-key": api_key})

    def _realtime_target(self, model, call_id, query: dict, path: str = "/realtime") -> tuple[str, dict[str, str]]:
        deployment = self.azure_deployment or model
        if not deployment:
            raise ValueError("a model (deployment name) is required for Azure Realtime")
        base = _ws_url(self.websocket_base_url or self.base_url)
        if self._ga:
            params = {"model": deployment, "call_id": call_id, **query}
        else:
            params = {**query, "api-version": self.api_version, "deployment": deployment}
        return _realtime_url(base, params, path), self._headers()

    def _fresh_auth(self):
        provider = self._token_provider
        if provider is None:
            return None

        async def auth() -> dict[str, str]:
            token = provider()
            if inspect.isawaitable(token):
                token = await token
            return {"Authorization": f"Bearer {token}"}

        return auth
