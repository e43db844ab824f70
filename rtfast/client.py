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
import inspect
import logging
import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import orjson
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from rtfast.errors import (BetaShapeRefused, ConnectError, ConnectionClosed, ConnectTimeout, HandshakeError,
                           MissingCredentials, ProtocolError, ProxyError, RtfastError, handshake_error)
from rtfast.session import RealtimeSession

__all__ = ["AsyncOpenAI", "AsyncAzureOpenAI", "RealtimeConnection", "connect"]

log = logging.getLogger("rtfast.client")

_SECRET_HEADERS = frozenset({"authorization", "api-key", "openai-organization", "openai-project",
                             "proxy-authorization", "cookie", "x-twilio-signature"})


class _RedactHeaders(logging.Filter):
    """websockets logs every handshake header at DEBUG; keep credentials out."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() in _SECRET_HEADERS:
            record.args = (args[0], "<redacted>")
        return True


#: The logger websockets writes to for our connections (handshake, frames).
ws_log = logging.getLogger("rtfast.websockets")
ws_log.addFilter(_RedactHeaders())

DEFAULT_BASE_URL = "https://api.openai.com/v1"

#: Largest message accepted by default (client and bridge): 64 MiB. Above any
#: event the API sends (an hour of G.711 is 38 MB of base64; deltas are a few
#: KB), yet one broken or hostile peer cannot make a connection buffer without
#: limit. websockets' own 1 MiB default (the official client's) would refuse a
#: ``conversation.item.retrieved`` holding a minute of PCM16. Override with
#: ``websocket_connection_options={"max_size": ...}`` (``None``: no limit).
MAX_MESSAGE = 64 << 20
_BETA_HEADER = ("OpenAI-Beta", "realtime=v1")


def _ws_url(base: str) -> str:
    scheme, rest = base.split("://", 1) if "://" in base else ("https", base)
    return {"http": "ws", "https": "wss"}.get(scheme, scheme) + "://" + rest


def _with_query(url: str, query: dict) -> str:
    query = {k: v for k, v in query.items() if v is not None}
    if not query:
        return url
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(query)


def _env_proxy(url: str) -> str | None:
    """The proxy the environment sets for url: websockets' own choice (ws(s)_proxy,
    https_proxy, http_proxy for ws://, the OS's SOCKS proxy), else ALL_PROXY, which
    websockets does not read. NO_PROXY is honoured either way."""
    uri = parse_uri(url)
    proxy = get_proxy(uri)
    if proxy is None and not urllib.request.proxy_bypass(f"{uri.host}:{uri.port}"):
        proxy = urllib.request.getproxies().get("all")
    return proxy


def _merge_headers(*sets: dict[str, str] | None) -> dict[str, str]:
    """Merge header dicts by case-insensitive name, the later one winning
    (as the official client does), so an override never sends a header twice."""
    merged: dict[str, tuple[str, str]] = {}
    for headers in sets:
        for key, value in (headers or {}).items():
            merged[key.lower()] = (key, value)
    return dict(merged.values())


def _realtime_url(base: str, query: dict) -> str:
    """base + "/realtime", keeping any query the base URL already has."""
    parts = urllib.parse.urlsplit(base)
    url = urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/realtime", query=""))
    return _with_query(url, {**dict(urllib.parse.parse_qsl(parts.query)), **query})


def _server_message(body: bytes) -> str:
    """The error message from an API error body, or the body itself (bounded)."""
    try:
        message = orjson.loads(body)["error"]["message"]
        if isinstance(message, str):
            return message
    except Exception:
        pass
    text = body.decode("utf-8", "replace").strip()
    return text[:300] or "(no message)"


def _endpoint(url: str) -> str:
    """host:port of a ws(s):// URL, for messages (no user info, path or query)."""
    try:
        uri = parse_uri(url)
    except Exception:
        return "(unparsable URL)"
    return f"{uri.host}:{uri.port}"


def _proxy_endpoint(proxy: str) -> str:
    """host:port of a proxy URL, for messages (its credentials stay out)."""
    try:
        from websockets.proxy import parse_proxy

        parsed = parse_proxy(proxy)
    except Exception:
        return "(unparsable proxy URL)"
    return f"{parsed.host}:{parsed.port}"


def _connect_error(exc: BaseException, url: str, proxy: str | None, timeout: float,
                   stage: str | None = None) -> ConnectError:
    """A failed connect as rtfast's typed ConnectError, saying what failed and where.

    ``stage`` (when the caller knows it) says how far a timed-out connect got:
    a format string with ``{target}`` and ``{via}``."""
    target = _endpoint(url)
    via = f" through the proxy {_proxy_endpoint(proxy)}" if proxy else ""
    if isinstance(exc, TimeoutError):
        what = (stage or "no websocket connection to {target}{via}").format(target=target, via=via)
        error: ConnectError = ConnectTimeout(f"{what} within {timeout:g} s")
    else:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if isinstance(exc, ssl.SSLError):
            error = ConnectError(f"TLS handshake with {target}{via} failed: {detail}")
        elif isinstance(exc, socket.gaierror):
            where = f"the proxy {_proxy_endpoint(proxy)}" if proxy else target
            error = (ProxyError if proxy else ConnectError)(f"could not resolve {where}: {detail}")
        elif proxy:
            # With a proxy the socket connects to the proxy; the proxy answers for the target.
            error = ProxyError(f"could not reach the proxy {_proxy_endpoint(proxy)} "
                               f"(for {target}): {type(exc).__name__}: {detail}")
        else:
            error = ConnectError(f"could not connect to {target}: {type(exc).__name__}: {detail}")
    error.errno = getattr(exc, "errno", None)
    return error


class _Credentials:
    """Auth headers for a client; the secret itself never reaches a repr or log."""

    __slots__ = ("_headers",)

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def __repr__(self) -> str:
        return f"<credentials: {', '.join(self._headers) or 'none'}>"


# -- the connection --------------------------------------------------------------------------


Handler = Callable[[Any], "Awaitable[None] | None"]

# The catch-all handler key: ours is "*", the official client's is "event".
_ANY = {"event": "*"}

# Closes that end iteration quietly: normal, going away, and no status code given.
_NORMAL_CLOSE = (1000, 1001, 1005)


class RealtimeConnection:
    """One Realtime websocket. Use it as an async iterator of events, call
    ``recv()``, or register handlers with ``on()`` and run ``dispatch()``."""

    def __init__(self, ws, state: RealtimeSession, reopen: Callable[[], Awaitable[Any]] | None = None) -> None:
        self._ws = ws
        #: The sans-I/O session: config, formats, active response, audio per item.
        self.state = state
        self._reopen = reopen
        self._handlers: dict[str, list[tuple[Handler, bool]]] = {}
        generation = state.generation
        self.session = _SessionResource(self)
        self.input_audio_buffer = _InputAudioBuffer(self)
        self.conversation = _Conversation(self)
        self.response = _Response(self)
        self.output_audio_buffer = _OutputAudioBuffer(self)
        if generation == "beta":
            self.transcription_session = _TranscriptionSession(self)

    @property
    def generation(self) -> str:
        return self.state.generation

    def __repr__(self) -> str:
        return f"<RealtimeConnection {self.generation} {getattr(self._ws, 'id', '')}>"

    # -- receiving -----------------------------------------------------------------------------
    async def recv_bytes(self) -> bytes:
        """The next raw frame. Cancelling it loses nothing (websockets buffers)."""
        try:
            data = await self._ws.recv(decode=False)
        except websockets.ConnectionClosed as exc:
            raise self._closed_error(exc) from None
        log.debug("recv %d bytes", len(data))
        return data

    async def recv(self):
        """The next server event, parsed (audio deltas as rtfast.wire.AudioDelta).

        A malformed frame raises ProtocolError; the connection stays usable.
        """
        return self.state.receive(await self.recv_bytes())

    def parse_event(self, data: bytes | str):
        """Parse a raw frame (from recv_bytes) into an event, tracking state."""
        return self.state.receive(data)

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        while True:
            try:
                yield await self.recv()
            except ConnectionClosed as exc:
                if exc.code in _NORMAL_CLOSE and not isinstance(exc, BetaShapeRefused):
                    return
                raise

    def _closed_error(self, exc: websockets.ConnectionClosed) -> ConnectionClosed:
        frame = exc.rcvd
        if frame is None and exc.sent is not None and exc.sent.code not in _NORMAL_CLOSE:
            frame = exc.sent            # we failed the connection (1009 too big, 1002...): say why
        code, reason = (frame.code, frame.reason) if frame is not None else (1006, "")
        # 4000 means "beta shape refused" only on a beta connection; on GA it is
        # just the server's close code (its advice, "use the GA generation", would be wrong).
        if self.generation == "beta" and (code == 4000 or self.state.refused):
            return BetaShapeRefused(self.state.refused or reason or "beta API shape refused", code)
        return ConnectionClosed(code, reason)

    # -- sending -------------------------------------------------------------------------------
    async def send_raw(self, data: bytes | str) -> None:
        """Send one text frame as is (bytes are sent as text without decoding)."""
        try:
            await self._ws.send(data, text=True)
        except websockets.ConnectionClosed as exc:
            raise self._closed_error(exc) from None
        log.debug("sent %d bytes", len(data))

    async def send(self, event) -> None:
        """Send a client event (an rtfast event object or a dict)."""
        await self.send_raw(self.state.send(event))

    async def send_audio(self, audio, *, event_id: str | None = None) -> None:
        """Append raw audio (PCM16 or G.711 bytes in the session's input
        format): base64 is written straight into the frame."""
        await self.send_raw(self.state.append_audio(audio, event_id))

    async def send_audio_b64(self, payload, *, event_id: str | None = None) -> None:
        """Append already-base64 audio (a carrier payload), spliced unchanged."""
        await self.send_raw(self.state.append_audio_b64(payload, event_id))

    async def ping(self) -> float:
        """Round-trip latency of a websocket ping, in seconds."""
        waiter = await self._ws.ping()
        return await waiter

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code, reason)

    async def reconnect(self) -> None:
        """Open a new websocket with the same parameters and re-send the last
        session.update (a Realtime session cannot be resumed: the conversation
        starts again, with the same configuration)."""
        if self._reopen is None:
            raise RuntimeError("this connection was not opened by a client that can reopen it")
        await self._ws.close()
        self._ws = await self._reopen()
        last = self.state.last_session_update
        self.state = RealtimeSession(self.state.generation)
        if last is not None:
            self.state.last_session_update = last
            await self.send_raw(last)

    # -- handlers (ordered, as the Go SDK's handler loop) --------------------------------------
    def on(self, event_type: str, handler: Handler | None = None):
        """Register handler for event_type ("*", or the official "event", for
        every event); as a decorator when handler is omitted. Handlers run in
        registration order."""
        if handler is None:
            return lambda fn: self._add(event_type, fn, False)
        self._add(event_type, handler, False)
        return self

    def _add(self, event_type: str, handler: Handler, once: bool) -> Handler:
        self._handlers.setdefault(_ANY.get(event_type, event_type), []).append((handler, once))
        return handler

    def once(self, event_type: str, handler: Handler | None = None):
        """Like on(), removed after its first call."""
        if handler is None:
            return lambda fn: self._add(event_type, fn, True)
        self._add(event_type, handler, True)
        return self

    def off(self, event_type: str, handler: Handler) -> RealtimeConnection:
        """Remove the first registration of handler for event_type (as the official client)."""
        entries = self._handlers.get(_ANY.get(event_type, event_type), [])
        for i, entry in enumerate(entries):
            if entry[0] is handler:
                del entries[i]
                break
        return self

    async def _call(self, event, on_error: Callable[[Exception], Any]) -> None:
        # Type handlers, then "*" ones; one handler failing does not skip the others.
        for key in (event.type, "*"):
            entries = self._handlers.get(key)
            if not entries:
                continue
            for entry in list(entries):
                if entry[1]:
                    entries.remove(entry)
                try:
                    result = entry[0](event)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    on_error(exc)

    async def dispatch(self, on_transient_error: Callable[[Exception], Any] | None = None) -> None:
        """Receive events and call their handlers until the connection closes.

        Transient errors (a malformed frame, a handler raising) go to
        on_transient_error (logged when not given) and the loop goes on;
        permanent ones (the connection closing abnormally, a refused
        generation) end it by raising. A normal close returns.
        """
        report = on_transient_error or (
            lambda exc: log.warning("realtime handler loop: %s: %s", type(exc).__name__, exc))
        while True:
            try:
                event = await self.recv()
            except ConnectionClosed as exc:
                if exc.code in _NORMAL_CLOSE and not isinstance(exc, BetaShapeRefused):
                    return
                raise
            except ProtocolError as exc:
                report(exc)
                continue
            if event.type == "error" and not self._handlers.get("error"):
                # Nobody listens for server errors: do not let them pass silently.
                err = event.error
                report(RtfastError(f"server error {getattr(err, 'code', None) or getattr(err, 'type', '')}: "
                                   f"{getattr(err, 'message', '')}"))
            await self._call(event, report)

    dispatch_events = dispatch          # the official connection's name


# -- resource namespaces with the official method names -----------------------------------------


class _Resource:
    __slots__ = ("_conn",)

    def __init__(self, conn: RealtimeConnection) -> None:
        self._conn = conn

    async def _send(self, event_type: str, event_id: str | None, **fields) -> None:
        event = {"type": event_type}
        if event_id is not None:
            event["event_id"] = event_id
        event.update((k, v) for k, v in fields.items() if v is not None)
        await self._conn.send(event)


class _SessionResource(_Resource):
    async def update(self, *, session: dict, event_id: str | None = None) -> None:
        await self._send("session.update", event_id, session=session)


class _InputAudioBuffer(_Resource):
    async def append(self, *, audio: str | bytes, event_id: str | None = None) -> None:
        """Append base64 audio (str or bytes), spliced into the frame unchanged."""
        await self._conn.send_audio_b64(audio, event_id=event_id)

    async def commit(self, *, event_id: str | None = None) -> None:
        await self._send("input_audio_buffer.commit", event_id)

    async def clear(self, *, event_id: str | None = None) -> None:
        await self._send("input_audio_buffer.clear", event_id)


class _ConversationItem(_Resource):
    async def create(self, *, item: dict, previous_item_id: str | None = None, event_id: str | None = None) -> None:
        await self._send("conversation.item.create", event_id, item=item, previous_item_id=previous_item_id)

    async def retrieve(self, *, item_id: str, event_id: str | None = None) -> None:
        await self._send("conversation.item.retrieve", event_id, item_id=item_id)

    async def truncate(self, *, item_id: str, audio_end_ms: int, content_index: int = 0,
                       event_id: str | None = None) -> None:
        await self._send("conversation.item.truncate", event_id, item_id=item_id,
                         audio_end_ms=audio_end_ms, content_index=content_index)

    async def delete(self, *, item_id: str, event_id: str | None = None) -> None:
        await self._send("conversation.item.delete", event_id, item_id=item_id)


class _Conversation(_Resource):
    __slots__ = ("item",)

    def __init__(self, conn: RealtimeConnection) -> None:
        super().__init__(conn)
        self.item = _ConversationItem(conn)


class _Response(_Resource):
    async def create(self, *, response: dict | None = None, event_id: str | None = None) -> None:
        await self._send("response.create", event_id, response=response)

    async def cancel(self, *, response_id: str | None = None, event_id: str | None = None) -> None:
        await self._send("response.cancel", event_id, response_id=response_id)


class _OutputAudioBuffer(_Resource):
    async def clear(self, *, event_id: str | None = None) -> None:
        await self._send("output_audio_buffer.clear", event_id)


class _TranscriptionSession(_Resource):
    async def update(self, *, session: dict, event_id: str | None = None) -> None:
        await self._send("transcription_session.update", event_id, session=session)


# -- connecting --------------------------------------------------------------------------------


class ConnectionManager:
    """``async with`` target returned by ``connect()``; also ``await mgr.enter()``."""

    def __init__(self, url: str, headers: dict[str, str], generation: str, options: dict,
                 auth: Callable[[], Awaitable[dict[str, str]]] | None = None) -> None:
        self._url = url
        self._headers = _Credentials(headers)
        self._generation = generation
        self._options = options
        self._auth = auth              # fresh credentials per connect (Entra tokens expire)
        self._conn: RealtimeConnection | None = None

    def __repr__(self) -> str:
        return f"<ConnectionManager {self._generation} {self._url.split('?')[0]}>"

    async def target(self) -> tuple[str, dict[str, str], str | None]:
        """(url, headers, proxy) of the next connection: fresh credentials and
        the proxy the options or the environment choose. For transports other
        than websockets' (the bridge's); the headers hold secrets."""
        headers = self._headers.headers()
        if self._auth is not None:
            headers = _merge_headers(await self._auth(), headers)
        proxy = self._options.get("proxy", True)
        return self._url, headers, _env_proxy(self._url) if proxy is True else proxy

    async def _open(self):
        options = {"max_size": MAX_MESSAGE, "compression": None, "open_timeout": 30,
                   "user_agent_header": "rtfast", "logger": ws_log}
        options.update(self._options)
        url, headers, options["proxy"] = await self.target()
        try:
            return await ws_connect(url, additional_headers=headers, **options)
        except (OSError, TimeoutError) as exc:      # DNS, TCP, TLS, the proxy, no answer in time
            raise _connect_error(exc, url, options["proxy"], options.get("open_timeout") or 0) from exc
        except websockets.InvalidProxy:
            # Its message would carry the proxy URL, credentials included.
            raise HandshakeError(0, "invalid proxy URL: expected http://, https://, socks4:// or socks5://") \
                from None
        except websockets.InvalidStatus as exc:
            response = exc.response
            body = response.body or b""
            raise handshake_error(response.status_code, _server_message(body), body) from None
        except websockets.InvalidHandshake as exc:
            raise HandshakeError(0, f"websocket handshake failed: {exc}") from None

    async def enter(self) -> RealtimeConnection:
        ws = await self._open()
        log.info("connected (%s) to %s", self._generation, self._url.split("?")[0])
        self._conn = RealtimeConnection(ws, RealtimeSession(self._generation), reopen=self._open)
        return self._conn

    async def __aenter__(self) -> RealtimeConnection:
        return await self.enter()

    async def __aexit__(self, *exc_info) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def connect(url: str, *, api_key: str | None = None, generation: str = "ga",
            headers: dict[str, str] | None = None, proxy: str | Literal[True] | None = True,
            **websocket_options) -> ConnectionManager:
    """Connect to any Realtime-compatible server at url (ws:// or wss://).

    ``proxy``: ``True`` takes it from the environment (``HTTPS_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``...), a URL (``http://``, ``https://``,
    ``socks5://``: SOCKS needs ``python-socks``) overrides it, ``None`` connects
    directly."""
    all_headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    if generation == "beta":
        all_headers[_BETA_HEADER[0]] = _BETA_HEADER[1]
    return ConnectionManager(url, _merge_headers(all_headers, headers), generation,
                             {**websocket_options, "proxy": proxy})


class _Realtime:
    def __init__(self, client: AsyncOpenAI, generation: str) -> None:
        self._client = client
        self._generation = generation

    def connect(self, *, model: str | None = None, call_id: str | None = None,
                extra_query: dict | None = None, extra_headers: dict | None = None,
                websocket_connection_options: dict | None = None,
                proxy: str | Literal[True] | None = True) -> ConnectionManager:
        """Open a Realtime websocket (async context manager), with the official
        keyword arguments. ``websocket_connection_options`` go to websockets'
        ``connect`` (e.g. ``ping_interval``, ``max_size``). ``proxy`` as in
        :func:`connect`: from the environment by default, a URL, or ``None``;
        ``websocket_connection_options={"proxy": ...}`` works too."""
        url, headers = self._client._realtime_target(model, call_id, dict(extra_query or {}))
        if self._generation == "beta":
            headers[_BETA_HEADER[0]] = _BETA_HEADER[1]
        options = dict(websocket_connection_options or {})
        if proxy is not True:
            options["proxy"] = proxy
        return ConnectionManager(url, _merge_headers(headers, extra_headers), self._generation, options,
                                 auth=self._client._fresh_auth())

    @property
    def client_secrets(self) -> _ClientSecrets:
        return _ClientSecrets(self._client)

    @property
    def sessions(self) -> _BetaSessions:
        return _BetaSessions(self._client)


class _Beta:
    def __init__(self, client: AsyncOpenAI) -> None:
        self.realtime = _Realtime(client, "beta")


class _ClientSecrets:
    """GA ephemeral keys: ``POST /v1/realtime/client_secrets``."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    async def create(self, *, session: dict | None = None, expires_after: dict | None = None,
                     **extra) -> dict:
        body = {k: v for k, v in {"session": session, "expires_after": expires_after, **extra}.items()
                if v is not None}
        return await self._client._post("/realtime/client_secrets", body)


class _BetaSessions:
    """Beta ephemeral sessions: ``POST /v1/realtime/sessions``."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    async def create(self, **session) -> dict:
        return await self._client._post("/realtime/sessions", session, beta=True)


class AsyncOpenAI:
    """The realtime part of the official ``openai.AsyncOpenAI``, fast.

    Reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` like the official client.
    ``client.realtime.connect(model=...)`` speaks GA; ``client.beta.realtime
    .connect(...)`` the beta shape (header ``OpenAI-Beta: realtime=v1``).
    """

    def __init__(self, api_key: str | None = None, *, base_url: str | None = None,
                 websocket_base_url: str | None = None, organization: str | None = None,
                 project: str | None = None, default_headers: dict[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if not api_key:
            # As the official client: fail when built, not with a 401 that never happened.
            raise MissingCredentials("no API key: pass api_key= or set the OPENAI_API_KEY environment variable")
        self._credentials = _Credentials({"Authorization": f"Bearer {api_key}"})
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.websocket_base_url = websocket_base_url
        self.organization = organization if organization is not None else os.environ.get("OPENAI_ORG_ID")
        self.project = project if project is not None else os.environ.get("OPENAI_PROJECT_ID")
        self.default_headers = dict(default_headers or {})
        self.timeout = timeout
        self.realtime = _Realtime(self, "ga")
        self.beta = _Beta(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base_url={self.base_url!r}>"

    def _headers(self) -> dict[str, str]:
        headers = self._credentials.headers()
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return _merge_headers(headers, self.default_headers)

    def _fresh_auth(self) -> Callable[[], Awaitable[dict[str, str]]] | None:
        """Credentials to fetch at each connect, when they can expire (None: static)."""
        return None

    def _realtime_target(self, model, call_id, query: dict) -> tuple[str, dict[str, str]]:
        base = self.websocket_base_url or _ws_url(self.base_url)
        return _realtime_url(base, {"model": model, "call_id": call_id, **query}), self._headers()

    async def _post(self, path: str, body: dict, beta: bool = False) -> dict:
        """A JSON POST to the REST API (ephemeral keys), on a worker thread:
        two calls a session do not earn an HTTP client dependency."""
        url = self.base_url + path
        auth = self._fresh_auth()
        headers = _merge_headers(await auth() if auth else None, self._headers(),
                                 {"Content-Type": "application/json"})
        if beta:
            headers[_BETA_HEADER[0]] = _BETA_HEADER[1]
        request = urllib.request.Request(url, data=orjson.dumps(body), headers=headers, method="POST")

        def call() -> dict:
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return orjson.loads(response.read())
            except urllib.error.HTTPError as exc:
                payload = exc.read()
                raise handshake_error(exc.code, _server_message(payload), payload) from None

        return await asyncio.to_thread(call)


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
                 timeout: float = 60.0) -> None:
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
                         timeout=timeout)
        self._credentials = _Credentials(credentials)
        self.api_version = api_version
        self.azure_deployment = azure_deployment

    def _realtime_target(self, model, call_id, query: dict) -> tuple[str, dict[str, str]]:
        deployment = self.azure_deployment or model
        if not deployment:
            raise ValueError("a model (deployment name) is required for Azure Realtime")
        base = self.websocket_base_url or _ws_url(self.base_url)
        if self._ga:
            params = {"model": deployment, "call_id": call_id, **query}
        else:
            params = {**query, "api-version": self.api_version, "deployment": deployment}
        return _realtime_url(base, params), self._headers()

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
