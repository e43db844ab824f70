"""The realtime connection itself, whichever client opened it: ``RealtimeConnection``
(one websocket and its session state, the official connection's names and
resources, reconnects with queued sends), ``ConnectionManager`` and ``connect``.

The websocket is rtfast's own (:mod:`rtfast.websocket`, an ``asyncio.Protocol``
over the compiled frame codec) unless ``websocket_connection_options`` ask for
something only ``websockets`` does (compression, subprotocols, ``max_queue``...),
in which case it is ``websockets``' asyncio connection, as in the official client.

:mod:`rtfast.client` (the ``AsyncOpenAI`` facade) and :mod:`rtfast.live.client`
(GPT-Live, which reuses the socket machinery) both build on this module, which
imports neither of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import random
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypedDict

import websockets
import websockets.exceptions
from websockets.frames import Close
from websockets.asyncio.client import connect as ws_connect
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from rtfast import websocket as lean
from rtfast._handshake import RedactHeaders, connect_error, handshake_failure
from rtfast.errors import BetaShapeRefused, ConnectionClosed, ProtocolError, RtfastError
from rtfast.session import RealtimeSession

__all__ = ["RealtimeConnection", "ConnectionManager", "connect", "ReconnectingEvent", "ReconnectingOverrides",
           "WebSocketQueueFullError", "WebSocketConnectionClosedError", "MAX_MESSAGE", "DEFAULT_BASE_URL"]

log = logging.getLogger("rtfast.client")

#: The logger websockets writes to for our connections (handshake, frames).
ws_log = logging.getLogger("rtfast.websockets")
ws_log.addFilter(RedactHeaders())

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
    if not urllib.request.getproxies():
        return None         # the usual case, in one look at the environment (the full choice takes four)
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


def _realtime_url(base: str, query: dict, path: str = "/realtime") -> str:
    """base + "/realtime" (or path), keeping any query the base URL already has."""
    parts = urllib.parse.urlsplit(base)
    url = urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + path, query=""))
    return _with_query(url, {**dict(urllib.parse.parse_qsl(parts.query)), **query})




class _Credentials:
    """Auth headers for a client; the secret itself never reaches a repr or log."""

    __slots__ = ("_headers",)

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def __repr__(self) -> str:
        return f"<credentials: {', '.join(self._headers) or 'none'}>"


# -- reconnecting (the official client's policy, openai/_websocket_connection.py) -----------------


class _AlsoWebsockets:
    """rtfast's ConnectionClosed that is also websockets' own, which the official client (on
    websockets) raises: ``except websockets.exceptions.ConnectionClosed`` (OK / Error) catches it
    too, ``rcvd`` is the close frame received (None when none came). ``code``, ``reason`` and the
    message are rtfast's."""

    code = reason = None    # plain values: websockets' are read-only (deprecated) properties

    def __init__(self, code: int, reason: str, received: bool) -> None:
        Exception.__init__(self, f"connection closed: code {code}" + (f", reason {reason!r}" if reason else ""))
        self.code, self.reason = code, reason
        self.rcvd = Close(code, reason) if received else None
        self.sent, self.rcvd_then_sent = None, None

    def __str__(self) -> str:
        return Exception.__str__(self)

    def __reduce__(self):
        return (type(self), (self.code, self.reason, self.rcvd is not None), dict(self.__dict__))


class ConnectionClosedOK(_AlsoWebsockets, ConnectionClosed, websockets.exceptions.ConnectionClosedOK):
    """The connection closed normally (1000, 1001, or no code)."""


class ConnectionClosedError(_AlsoWebsockets, ConnectionClosed, websockets.exceptions.ConnectionClosedError):
    """The connection closed with an error code, or vanished (1006)."""


class WebSocketQueueFullError(RtfastError):
    """A send while reconnecting (or before connecting) did not fit ``max_queue_size`` bytes;
    the message was discarded. The official client's name."""


class WebSocketConnectionClosedError(ConnectionClosed):
    """The connection closed for good with queued messages never sent (``unsent_messages``, as text,
    in order). The official client's name; also a :class:`rtfast.ConnectionClosed` with its code."""

    def __init__(self, code: int, reason: str, unsent_messages: list[str]) -> None:
        ConnectionClosed.__init__(self, code, reason)
        self.args = (f"WebSocket connection closed with unsent messages (code {code})",)
        self.unsent_messages = unsent_messages


@dataclasses.dataclass(frozen=True)
class ReconnectingEvent:
    """What ``on_reconnecting`` receives before each attempt (the official fields)."""

    attempt: int            #: this attempt, from 1
    max_attempts: int       #: max_retries
    delay: float            #: seconds to wait before this attempt connects
    close_code: int         #: the close code that ended the connection (1006: no close frame)
    extra_query: dict       #: the query parameters the next connection will use
    #: the extra headers the next connection will use (left out of the repr: they may hold a key)
    extra_headers: dict = dataclasses.field(repr=False)


class ReconnectingOverrides(TypedDict, total=False):
    """What ``on_reconnecting`` may return: new ``extra_query``/``extra_headers`` (replacing the
    current ones for this and later attempts), or ``abort=True`` to stop reconnecting."""

    extra_query: dict
    extra_headers: dict
    abort: bool


# RFC 6455 codes worth retrying, as the official client: going away, no status, abnormal,
# internal error, service restart, try again later, TLS failure.
_RECOVERABLE_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1015})


class _SendQueue:
    """Frames held while reconnecting (or sent before connecting), bounded in bytes."""

    __slots__ = ("_frames", "_bytes", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        from collections import deque

        self._frames: deque = deque()
        self._bytes = 0
        self.max_bytes = max_bytes

    def put(self, frame: bytes | str) -> None:
        size = len(frame.encode() if isinstance(frame, str) else frame)
        if self._bytes + size > self.max_bytes:
            raise WebSocketQueueFullError(f"send queue is full ({self._bytes} of max_queue_size={self.max_bytes} "
                                          f"bytes held, message of {size} bytes discarded)")
        self._frames.append((frame, size))
        self._bytes += size

    def pop(self) -> bytes | str:
        frame, size = self._frames.popleft()
        self._bytes -= size
        return frame

    def drain(self) -> list[str]:
        out = [f.decode("utf-8", "replace") if isinstance(f, (bytes, bytearray)) else f for f, _ in self._frames]
        self._frames.clear()
        self._bytes = 0
        return out

    def __bool__(self) -> bool:
        return bool(self._frames)

    def __len__(self) -> int:
        return len(self._frames)


@dataclasses.dataclass
class _ReconnectPolicy:
    on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None] | None = None
    max_retries: int = 5
    initial_delay: float = 0.5
    max_delay: float = 8.0


# -- the connection --------------------------------------------------------------------------


Handler = Callable[[Any], "Awaitable[None] | None"]

# The catch-all handler key: ours is "*", the official client's is "event".
_ANY = {"event": "*"}

# Closes that end iteration quietly: normal, going away, and no status code given.
_NORMAL_CLOSE = (1000, 1001, 1005)


class RealtimeConnection:
    """One Realtime websocket. Use it as an async iterator of events, call
    ``recv()``, or register handlers with ``on()`` and run ``dispatch()``."""

    def __init__(self, ws, state: RealtimeSession, reopen: Callable[..., Awaitable[Any]] | None = None, *,
                 policy: _ReconnectPolicy | None = None, queue: _SendQueue | None = None,
                 extra_query: dict | None = None, extra_headers: dict | None = None) -> None:
        self._ws = ws
        #: The sans-I/O session: config, formats, active response, audio per item.
        self.state = state
        self._reopen = reopen
        self._handlers: dict[str, list[tuple[Handler, bool]]] = {}
        self._policy = policy or _ReconnectPolicy()
        self._queue = queue if queue is not None else _SendQueue(1_048_576)
        self._extra_query = dict(extra_query or {})
        self._extra_headers = dict(extra_headers or {})
        self._attempt = 0               # reconnect attempts since the last non-error event
        self._reconnecting = False
        self._closing = False           # close() was called: never reconnect
        self._hold = bool(self._queue)  # sends go through the queue (reconnecting, or frames waiting)
        generation = state.generation
        if generation == "live":
            return                      # rtfast.live.LiveConnection sets up its own resources
        if generation == "translation":
            self.session = _TranslationSessionResource(self)
            return
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
        return f"<RealtimeConnection {self.generation}{_socket_id(self._ws)}>"

    # -- receiving -----------------------------------------------------------------------------
    async def recv_bytes(self) -> bytes:
        """The next raw frame. Cancelling it loses nothing (the socket buffers)."""
        try:
            data = await self._ws.recv()
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from None
        log.debug("recv %d bytes", len(data))
        return data

    async def recv(self):
        """The next server event, parsed (audio deltas as rtfast.wire.AudioDelta).

        A malformed frame raises ProtocolError; the connection stays usable.
        """
        # recv_bytes() inlined: one coroutine less per event on the path every loop takes
        try:
            data = await self._ws.recv()
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from None
        log.debug("recv %d bytes", len(data))
        event = self.state.receive(data)
        if self._attempt and event.type != "error":
            self._attempt = 0           # the new connection works: a later drop gets every retry again
        return event

    def parse_event(self, data: bytes | str):
        """Parse a raw frame (from recv_bytes) into an event, tracking state."""
        return self.state.receive(data)

    # ``async for``: the connection is its own iterator (an async generator would add
    # a generator and an asend object per event).
    def __aiter__(self):
        return self

    async def __anext__(self):
        while True:
            try:
                return await self.recv()
            except ConnectionClosed as exc:
                if await self._recover(exc):
                    continue
                self._raise_unsent(exc)
                if exc.code in _NORMAL_CLOSE and not isinstance(exc, BetaShapeRefused):
                    raise StopAsyncIteration from None
                raise

    def _raise_unsent(self, exc: ConnectionClosed) -> None:
        unsent = self._queue.drain()
        if unsent:
            raise WebSocketConnectionClosedError(exc.code, exc.reason, unsent) from exc

    async def _recover(self, exc: ConnectionClosed) -> bool:
        """The official reconnect: only with ``on_reconnecting``, only after a close code worth
        retrying, up to ``max_retries`` attempts with exponential backoff and jitter."""
        policy = self._policy
        if policy.on_reconnecting is None or self._reopen is None or self._closing:
            return False
        close_code = getattr(exc, "rcvd_code", exc.code)
        if close_code not in _RECOVERABLE_CLOSE_CODES:
            return False
        self._reconnecting = self._hold = True
        try:
            return await self._attempt_reconnect(close_code)
        finally:
            self._reconnecting = False
            self._hold = bool(self._queue)

    async def _attempt_reconnect(self, close_code: int) -> bool:
        policy = self._policy
        for attempt in range(self._attempt + 1, policy.max_retries + 1):
            if self._closing:
                return False
            self._attempt = attempt
            delay = min(policy.initial_delay * 2 ** (attempt - 1), policy.max_delay) * (0.75 + random.random() * 0.25)
            event = ReconnectingEvent(attempt=attempt, max_attempts=policy.max_retries, delay=delay,
                                      close_code=close_code, extra_query=self._extra_query,
                                      extra_headers=self._extra_headers)
            try:
                result = policy.on_reconnecting(event)
            except Exception:
                log.warning("on_reconnecting raised: not reconnecting", exc_info=True)
                return False
            if result is not None:
                if result.get("abort"):
                    return False
                if "extra_query" in result:
                    self._extra_query = result["extra_query"]
                if "extra_headers" in result:
                    self._extra_headers = result["extra_headers"]
            log.info("reconnecting (attempt %d/%d) after %.1f s", attempt, policy.max_retries, delay)
            await asyncio.sleep(delay)
            if self._closing:
                return False
            try:
                ws = await self._reopen(self._extra_query, self._extra_headers)
            except Exception as exc:
                log.info("reconnect attempt %d failed: %s", attempt, exc)
                continue
            if self._closing:
                await asyncio.shield(ws.close())
                return False
            self._ws = ws
            # A new conversation: fresh state (the old items' audio means nothing to it).
            self.state = self._new_state()
            try:
                await self._flush()
            except ConnectionClosed as exc:
                if getattr(exc, "rcvd_code", exc.code) not in _RECOVERABLE_CLOSE_CODES:
                    return False
                continue
            log.info("reconnected")
            return True
        return False

    async def _flush(self) -> None:
        """Send the queued frames, in order, on the current websocket."""
        queue = self._queue
        while queue:
            frame = queue.pop()
            try:
                await self._ws.send(frame)
            except ConnectionClosed as exc:
                raise self._closed_error(exc) from None

    def _closed_error(self, exc: ConnectionClosed) -> ConnectionClosed:
        """The socket's close (its code: the peer's, or ours when we failed it) as this connection reports it."""
        code, reason = exc.code, exc.reason
        # 4000 means "beta shape refused" only on a beta connection; on GA it is
        # just the server's close code (its advice, "use the GA generation", would be wrong).
        if self.generation == "beta" and (code == 4000 or self.state.refused):
            error: ConnectionClosed = BetaShapeRefused(self.state.refused or reason or "beta API shape refused", code)
        else:
            received = self._ws.rcvd_code != 1006
            error = (ConnectionClosedOK if code in _NORMAL_CLOSE else ConnectionClosedError)(code, reason, received)
        # what the reconnect policy reads: the code the peer sent (1006 without a close frame)
        error.rcvd_code = self._ws.rcvd_code
        return error

    def _new_state(self) -> RealtimeSession:
        """The state of a new connection after a reconnect: fresh, keeping the last session.update."""
        state = RealtimeSession(self.state.generation)
        state.last_session_update = self.state.last_session_update
        return state

    # -- sending -------------------------------------------------------------------------------
    async def send_raw(self, data: bytes | str) -> None:
        """Send one text frame as is (bytes are sent as text without decoding).

        While reconnecting, the frame is queued (up to ``max_queue_size`` bytes, else
        :class:`WebSocketQueueFullError`) and sent once the new connection is up."""
        if self._hold:
            if self._reconnecting and not self._closing:
                self._queue.put(data)
                return
            await self._flush()         # frames queued earlier go first
            self._hold = self._reconnecting or bool(self._queue)
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
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
        try:
            return await self._ws.ping()
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the websocket; no reconnect follows."""
        self._closing = True
        self._reconnecting = False
        await self._ws.close(code, reason)

    async def reconnect(self) -> None:
        """Open a new websocket with the same parameters and re-send the last
        session.update (a Realtime session cannot be resumed: the conversation
        starts again, with the same configuration)."""
        if self._reopen is None:
            raise RuntimeError("this connection was not opened by a client that can reopen it")
        await self._ws.close()
        self._ws = await self._reopen(self._extra_query, self._extra_headers)
        self.state = self._new_state()
        last = self.state.last_session_update
        if last is not None:
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

    async def dispatch(self, on_transient_error: Callable[[Exception], Any] | None = None, *,
                       _strict: bool = False) -> None:
        """Receive events and call their handlers until the connection closes.

        Transient errors (a malformed frame, a handler raising, a server ``error`` event no
        ``"error"`` handler takes) go to on_transient_error (logged when not given) and the
        loop goes on; permanent ones (the connection closing abnormally, a refused
        generation) end it by raising. A normal close returns.
        """
        report = on_transient_error or (
            lambda exc: log.warning("realtime handler loop: %s: %s", type(exc).__name__, exc))
        while True:
            try:
                event = await self.recv()
            except ConnectionClosed as exc:
                if await self._recover(exc):
                    continue
                self._raise_unsent(exc)
                if exc.code in _NORMAL_CLOSE and not isinstance(exc, BetaShapeRefused):
                    return
                raise
            except ProtocolError as exc:
                report(exc)
                continue
            if event.type == "error" and not self._handlers.get("error"):
                if _strict and not self._handlers.get("*"):
                    raise RtfastError(f"WebSocket error: {event}")     # the official loop's own words
                # Nobody listens for server errors: do not let them pass silently.
                err = event.error
                report(RtfastError(f"server error {getattr(err, 'code', None) or getattr(err, 'type', '')}: "
                                   f"{getattr(err, 'message', '')}"))
            await self._call(event, report)

    async def dispatch_events(self, on_transient_error: Callable[[Exception], Any] | None = None) -> None:
        """The official connection's loop: :meth:`dispatch`, except that, as the official one, a
        server ``error`` event that no handler takes (``"error"``, or ``"event"``/``"*"`` for
        every event) ends it by raising ``OpenAIError`` (:class:`RtfastError`), unless
        ``on_transient_error`` is given (it then gets the error, and the loop goes on)."""
        await self.dispatch(on_transient_error, _strict=on_transient_error is None)


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


class _TranslationInputAudioBuffer(_Resource):
    async def append(self, *, audio: str | bytes, event_id: str | None = None) -> None:
        """``session.input_audio_buffer.append`` of base64 audio, spliced unchanged."""
        frame = self._conn.state.append_audio_b64(audio, event_id)
        await self._conn.send_raw(frame.replace(b'"input_audio_buffer.append"',
                                                b'"session.input_audio_buffer.append"', 1))


class _TranslationSessionResource(_Resource):
    """A translation connection's ``session``: ``update``, ``close``, ``input_audio_buffer.append``."""

    __slots__ = ("input_audio_buffer",)

    def __init__(self, conn: RealtimeConnection) -> None:
        super().__init__(conn)
        self.input_audio_buffer = _TranslationInputAudioBuffer(conn)

    async def update(self, *, session: dict, event_id: str | None = None) -> None:
        await self._send("session.update", event_id, session=session)

    async def close(self, *, event_id: str | None = None) -> None:
        await self._send("session.close", event_id)


# -- the websocket under a connection -----------------------------------------------------------
#
# RealtimeConnection sees one small interface, whichever transport carries it:
# ``await recv()`` -> bytes, ``await send(bytes | str)`` (a text frame), ``await ping()`` -> seconds,
# ``await close(code, reason)``, and ``rcvd_code`` (the close code the peer sent, 1006 if none).
# recv/send/ping raise rtfast's ConnectionClosed with the code and reason received, or the ones
# we failed the connection with (1009 too big...), or 1006 when the peer vanished.


class _LeanSocket:
    """rtfast.websocket under a connection. ``recv`` is the WebSocket's own: no layer per message."""

    __slots__ = ("ws", "recv")

    def __init__(self, ws: lean.WebSocket, write_limit: int | tuple[int, int | None]) -> None:
        self.ws = ws
        self.recv = ws.recv
        # websockets' write_limit: a send waits while more than this is unsent
        high, low = write_limit if isinstance(write_limit, tuple) else (write_limit, None)
        ws.transport.set_write_buffer_limits(high=high, low=low)

    async def send(self, data: bytes | str) -> None:
        ws = self.ws
        ws.send(data)
        if ws.writing_paused:
            await ws.drain()

    async def ping(self) -> float:
        return await self.ws.ping()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.aclose(code, reason)

    @property
    def rcvd_code(self) -> int:
        return self.ws.close_code if self.ws.close_received else 1006


def _websockets_closed(exc: websockets.ConnectionClosed) -> ConnectionClosed:
    frame = exc.rcvd
    if frame is None and exc.sent is not None and exc.sent.code not in _NORMAL_CLOSE:
        frame = exc.sent            # we failed the connection (1009 too big, 1002...): say why
    return ConnectionClosed(frame.code, frame.reason) if frame is not None else ConnectionClosed(1006, "")


class _WebsocketsSocket:
    """A websockets asyncio connection under a connection (options only it honours)."""

    __slots__ = ("conn", "id")

    def __init__(self, conn) -> None:
        self.conn = conn
        self.id = conn.id

    async def recv(self) -> bytes:
        try:
            return await self.conn.recv(decode=False)
        except websockets.ConnectionClosed as exc:
            raise _websockets_closed(exc) from None

    async def send(self, data: bytes | str) -> None:
        try:
            await self.conn.send(data, text=True)
        except websockets.ConnectionClosed as exc:
            raise _websockets_closed(exc) from None

    async def ping(self) -> float:
        try:
            return await (await self.conn.ping())
        except websockets.ConnectionClosed as exc:
            raise _websockets_closed(exc) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.conn.close(code, reason)

    @property
    def rcvd_code(self) -> int:
        rcvd = self.conn.protocol.close_rcvd
        return rcvd.code if rcvd is not None else 1006


def _socket_id(sock) -> str:
    ident = getattr(sock, "id", None)
    return f" {ident}" if ident else ""


#: What every connection gets unless websocket_connection_options say otherwise (websockets' names).
_OPTIONS = {"max_size": MAX_MESSAGE, "compression": None, "open_timeout": 30, "user_agent_header": "rtfast",
            "logger": ws_log}
#: websockets' own defaults, given to rtfast.websocket so that both behave alike.
_WEBSOCKETS_DEFAULTS = {"ping_interval": 20, "ping_timeout": 20, "close_timeout": 10, "write_limit": 2**15}


def _number_or_none(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


#: websocket_connection_options rtfast.websocket honours: which values, under which keyword.
_LEAN_OPTIONS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "max_size": ("max_size", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool))),
    "open_timeout": ("open_timeout", _number_or_none),
    "ping_interval": ("ping_interval", _number_or_none),
    "ping_timeout": ("ping_timeout", _number_or_none),
    "close_timeout": ("close_timeout", lambda v: v is not None and _number_or_none(v)),
    "user_agent_header": ("user_agent", lambda v: v is None or isinstance(v, str)),
    "logger": ("logger", lambda v: isinstance(v, (logging.Logger, logging.LoggerAdapter))),
    "write_limit": ("write_limit", lambda v: isinstance(v, int) or (
        isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], int) and (v[1] is None or isinstance(v[1], int)))),
    "compression": ("", lambda v: v is None),        # (nothing to pass: it never compresses)
}


def _lean_options(options: dict, secure: bool) -> dict | None:
    """``options`` (websockets' names, defaults applied) as rtfast.websocket.connect's keywords,
    or None when one of them is something only websockets does."""
    lean = {}
    for key, value in {**_WEBSOCKETS_DEFAULTS, **options}.items():
        if key == "proxy":
            continue
        if key == "ssl":        # websockets: True or a context for wss:// (anything else raises)
            if not secure or not (value is True or isinstance(value, ssl.SSLContext)):
                return None
            lean["ssl"] = None if value is True else value
            continue
        name, accepts = _LEAN_OPTIONS.get(key, (None, None))
        if name is None or not accepts(value):
            return None
        if name:
            lean[name] = value
    return lean


# -- connecting --------------------------------------------------------------------------------


class ConnectionManager:
    """``async with`` target returned by ``connect()``; also ``await mgr.enter()``.

    As the official manager: ``on``/``off``/``once`` register handlers before connecting
    (handed to the connection on enter) and ``send`` queues events that go out as soon as
    the connection opens. With ``on_reconnecting`` the connection reconnects by itself
    (see :class:`RealtimeConnection`)."""

    def __init__(self, url: str, headers: dict[str, str], generation: str, options: dict,
                 auth: Callable[[], Awaitable[dict[str, str]]] | None = None, *,
                 url_for: Callable[[dict], str] | None = None, extra_query: dict | None = None,
                 extra_headers: dict | None = None,
                 on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None] | None = None,
                 max_retries: int = 5, initial_delay: float = 0.5, max_delay: float = 8.0,
                 max_queue_size: int = 1_048_576) -> None:
        self._url = url
        self._base_headers = _Credentials(headers)      # without extra_headers (a reconnect may replace them)
        self._headers = _Credentials(_merge_headers(headers, extra_headers))
        self._generation = generation
        self._options = options
        self._auth = auth              # fresh credentials per connect (Entra tokens expire)
        self._conn: RealtimeConnection | None = None
        # the URL for other query parameters (a reconnect's overrides): base URL + query
        self._url_for = url_for or (lambda query: _with_query(url, query))
        self._extra_query = dict(extra_query or {})
        self._extra_headers = dict(extra_headers or {})
        self._policy = _ReconnectPolicy(on_reconnecting, max_retries, initial_delay, max_delay)
        self._queue = _SendQueue(max_queue_size)
        self._state = RealtimeSession(generation)
        self._pending_handlers: list[tuple[str, Handler, bool]] = []

    # -- before connecting (the official manager's methods) ------------------------------------
    def send(self, event) -> None:
        """Queue an event (an rtfast event or a dict) to send as soon as the connection opens
        (up to ``max_queue_size`` bytes, else :class:`WebSocketQueueFullError`)."""
        state = self._conn.state if self._conn is not None else self._state
        self._queue.put(state.send(event))
        if self._conn is not None:
            self._conn._hold = True

    def on(self, event_type: str, handler: Handler | None = None):
        """Register a handler before connecting; as a decorator when handler is omitted."""
        if handler is None:
            def decorator(fn: Handler) -> Handler:
                self._pending_handlers.append((event_type, fn, False))
                return fn
            return decorator
        self._pending_handlers.append((event_type, handler, False))
        return self

    def once(self, event_type: str, handler: Handler | None = None):
        """Like on(), removed after its first call."""
        if handler is None:
            def decorator(fn: Handler) -> Handler:
                self._pending_handlers.append((event_type, fn, True))
                return fn
            return decorator
        self._pending_handlers.append((event_type, handler, True))
        return self

    def off(self, event_type: str, handler: Handler) -> ConnectionManager:
        """Remove the first registration of handler for event_type."""
        key = _ANY.get(event_type, event_type)
        for i, (t, h, _) in enumerate(self._pending_handlers):
            if _ANY.get(t, t) == key and h is handler:
                del self._pending_handlers[i]
                break
        return self

    def __repr__(self) -> str:
        return f"<ConnectionManager {self._generation} {self._url.split('?')[0]}>"

    async def target(self, extra_query: dict | None = None,
                     extra_headers: dict | None = None) -> tuple[str, dict[str, str], str | None]:
        """(url, headers, proxy) of the next connection: fresh credentials and
        the proxy the options or the environment choose. For transports other
        than websockets' (the bridge's); the headers hold secrets."""
        url = self._url if extra_query is None else self._url_for(extra_query)
        headers = (self._headers.headers() if extra_headers is None
                   else _merge_headers(self._base_headers.headers(), extra_headers))
        if self._auth is not None:
            headers = _merge_headers(await self._auth(), headers)
        proxy = self._options.get("proxy", True)
        return url, headers, _env_proxy(url) if proxy is True else proxy

    async def _open(self, extra_query: dict | None = None, extra_headers: dict | None = None):
        options = {**_OPTIONS, **self._options}
        url, headers, options["proxy"] = await self.target(extra_query, extra_headers)
        kwargs = _lean_options(options, url.startswith("wss:"))
        if kwargs is not None:          # rtfast's own websocket; its errors are typed already
            write_limit = kwargs.pop("write_limit")
            return _LeanSocket(await lean.connect(url, headers=headers, proxy=options["proxy"], **kwargs),
                               write_limit)
        try:
            return _WebsocketsSocket(await ws_connect(url, additional_headers=headers, **options))
        except (OSError, TimeoutError) as exc:      # DNS, TCP, TLS, the proxy, no answer in time
            raise connect_error(exc, url, options["proxy"], options.get("open_timeout") or 0) from exc
        except (websockets.InvalidProxy, websockets.InvalidHandshake) as exc:
            # (an InvalidProxy's message would carry the proxy URL, credentials included)
            raise handshake_failure(exc) from None

    async def enter(self) -> RealtimeConnection:
        ws = await self._open()
        log.info("connected (%s) to %s", self._generation, self._url.split("?")[0])
        if self._conn is not None:      # entered again: a new conversation
            self._state = RealtimeSession(self._generation)
        conn = RealtimeConnection(ws, self._state, reopen=self._open, policy=self._policy, queue=self._queue,
                                  extra_query=self._extra_query, extra_headers=self._extra_headers)
        for event_type, handler, once in self._pending_handlers:
            conn._add(event_type, handler, once)
        try:
            await conn._flush()         # what send() queued before connecting
            conn._hold = bool(self._queue)
        except BaseException:
            await ws.close()
            raise
        self._conn = conn
        return conn

    async def __aenter__(self) -> RealtimeConnection:
        return await self.enter()

    async def __aexit__(self, *exc_info) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def connect(url: str, *, api_key: str | None = None, generation: str = "ga",
            headers: dict[str, str] | None = None, proxy: str | Literal[True] | None = True,
            on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None] | None = None,
            max_retries: int = 5, initial_delay: float = 0.5, max_delay: float = 8.0,
            max_queue_size: int = 1_048_576, **websocket_options) -> ConnectionManager:
    """Connect to any Realtime-compatible server at url (ws://, wss://; http(s):// are mapped).

    ``proxy``: ``True`` takes it from the environment (``HTTPS_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``...), a URL (``http://``, ``https://``,
    ``socks5://``: SOCKS needs ``python-socks``) overrides it, ``None`` connects
    directly. The reconnect options are the official client's (see
    :meth:`AsyncOpenAI.realtime.connect <_Realtime.connect>`), and
    ``websocket_options`` are ``websocket_connection_options``."""
    url = _ws_url(url)
    all_headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    if generation == "beta":
        all_headers[_BETA_HEADER[0]] = _BETA_HEADER[1]
    return ConnectionManager(url, _merge_headers(all_headers, headers), generation,
                             {**websocket_options, "proxy": proxy}, on_reconnecting=on_reconnecting,
                             max_retries=max_retries, initial_delay=initial_delay, max_delay=max_delay,
                             max_queue_size=max_queue_size)


