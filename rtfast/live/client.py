"""``client.live``: GPT-Live over asyncio, the official ``AsyncLive`` surface.

``connect()`` opens ``/v1/live/sessions`` (no query: the model goes in ``session.start``) and
returns a manager with the official keywords and reconnect options; the connection has the
official resources (``session.start/update/close``, ``session.input_audio.append/mute/unmute``,
``session.instructions/thinking/commentary.append``, ``session.output_audio.fixture.play``,
``decision.create``, ``decision.item.create/delete``, ``response.create``,
``response.item.create``), ``send``/``recv``/``recv_bytes``/``async for``/``on``/``off``/``once``/
``dispatch_events``; ``sideband.connect(session_id=)`` attaches to a running session,
``forks.connect(session_id=)`` forks a stored one. As with the official client, ``session.start``
is yours to send, then wait for ``session.started`` (``await conn.start(...)`` does both).

Beyond the official surface, audio goes out without a dict: ``send_audio(bytes)`` base64-encodes
G.711 or PCM16 straight into the frame, ``send_audio_b64(payload)`` splices a carrier's base64
unchanged; ``session.input_audio.append(audio=...)`` splices too. Output audio deltas arrive as
:class:`rtfast.wire.AudioDelta` (``.audio()`` decodes in place).

The websocket machinery (reconnects, send queue, handlers) is :class:`rtfast.client.RealtimeConnection`'s;
this module adds GPT-Live's state (:class:`rtfast.live.LiveSession`) and resources, and the REST calls
(``create``, ``sessions.accept/reject/refer/hangup/fork/download_recording``) over :mod:`rtfast.http`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import orjson

from rtfast.connection import (ConnectionManager, ReconnectingEvent, ReconnectingOverrides, RealtimeConnection,
                               _merge_headers, _socket_id, _with_query, _ws_url)
from rtfast._results import LiveCreateResponse, RestObject, SessionForkResponse, wrap
from rtfast.errors import ProtocolError, RtfastError
from rtfast.live.session import LiveSession

if TYPE_CHECKING:
    from rtfast.client import AsyncOpenAI

__all__ = ["AsyncLive", "LiveConnection", "LiveConnectionManager", "LiveSessions", "LiveSideband", "LiveForks",
           "BinaryResponse"]

log = logging.getLogger("rtfast.live")

#: The official default for max_queue_size on a Live connection (openai._constants).
DEFAULT_QUEUE_BYTES = 2_097_152


class LiveConnection(RealtimeConnection):
    """One GPT-Live websocket: the official ``AsyncLiveConnection``'s names, rtfast's fast paths.

    ``kind`` is ``"primary"`` (``live.connect()``), ``"sideband"`` (``live.sideband.connect()``: no
    ``session.start`` nor audio append, and ``transport.dtmf.send``) or ``"fork"``
    (``live.forks.connect()``: ``session.start`` takes overrides only)."""

    state: LiveSession

    def __init__(self, ws, state: LiveSession, reopen=None, *, kind: str = "primary", **kwargs) -> None:
        super().__init__(ws, state, reopen, **kwargs)
        self.kind = kind
        self.session = _SidebandSession(self) if kind == "sideband" else _Session(self)
        self.decision = _Decision(self)
        self.response = _Response(self)
        if kind == "sideband":
            self.transport = _Transport(self)

    def __repr__(self) -> str:
        return f"<LiveConnection {self.kind}{_socket_id(self._ws)}>"

    def _new_state(self) -> LiveSession:
        # a reconnect opens a new session (GPT-Live cannot resume one): keep what started the old one
        state = LiveSession()
        state.last_session_start = self.state.last_session_start
        return state

    async def start(self, session: dict, *, event_id: str | None = None, timeout: float | None = 30.0):
        """Send ``session.start`` and return the ``session.started`` event (an ``error`` raises
        :class:`rtfast.RtfastError`; other events before it are handed to the handlers)."""
        if self.kind == "sideband":
            raise RuntimeError("a sideband joins a session that has started: it sends no session.start")
        await self.session.start(session=session, event_id=event_id)

        async def wait():
            while True:
                event = await self.recv()
                if event.type == "session.started":
                    return event
                if event.type == "error":
                    err = event.error
                    param = getattr(err, "param", None)
                    raise RtfastError(f"session.start refused: {getattr(err, 'code', '')}"
                                      f"{f' ({param})' if param else ''}: {getattr(err, 'message', '')}")
                await self._call(event, lambda exc: log.warning("handler: %s", exc))

        return await asyncio.wait_for(wait(), timeout)

    async def reconnect(self) -> None:
        """Open a new websocket with the same parameters and send the last ``session.start`` again
        (a new session with the same configuration)."""
        if self._reopen is None:
            raise RuntimeError("this connection was not opened by a client that can reopen it")
        await self._ws.close()
        self._ws = await self._reopen(self._extra_query, self._extra_headers)
        self.state = self._new_state()
        if self.state.last_session_start is not None:
            await self.send_raw(self.state.last_session_start)


# -- resources (the official names and keywords; event_id is left out when None, as openai's omit) --


class _Resource:
    __slots__ = ("_conn",)

    def __init__(self, conn: LiveConnection) -> None:
        self._conn = conn

    async def _send(self, event_type: str, event_id: str | None, **fields) -> None:
        event: dict = {"type": event_type, **fields}    # delegation_id=None stays: required, nullable
        if event_id is not None:
            event["event_id"] = event_id
        await self._conn.send(event)


class _Session(_Resource):
    __slots__ = ("input_audio", "instructions", "thinking", "commentary", "output_audio")

    def __init__(self, conn: LiveConnection) -> None:
        super().__init__(conn)
        self.input_audio = _InputAudio(conn)
        self.instructions = _Append(conn, "session.instructions.append")
        self.thinking = _Append(conn, "session.thinking.append")
        self.commentary = _Append(conn, "session.commentary.append")
        self.output_audio = _OutputAudio(conn)

    async def start(self, *, session: dict, event_id: str | None = None) -> None:
        """``session.start``: send first, then wait for ``session.started``."""
        await self._send("session.start", event_id, session=session)

    async def update(self, *, session: dict, event_id: str | None = None) -> None:
        await self._send("session.update", event_id, session=session)

    async def close(self, *, event_id: str | None = None) -> None:
        """``session.close``: the server answers ``session.closed`` with the reason and usage."""
        await self._send("session.close", event_id)


class _SidebandSession(_Resource):
    """A sideband's ``session``: the session has started (no ``start``); audio comes from the primary."""

    __slots__ = ("input_audio", "instructions", "thinking", "commentary", "output_audio")

    def __init__(self, conn: LiveConnection) -> None:
        super().__init__(conn)
        self.input_audio = _SidebandInputAudio(conn)
        self.instructions = _Append(conn, "session.instructions.append")
        self.thinking = _Append(conn, "session.thinking.append")
        self.commentary = _Append(conn, "session.commentary.append")
        self.output_audio = _OutputAudio(conn)

    update = _Session.update
    close = _Session.close


class _SidebandInputAudio(_Resource):
    async def mute(self, *, event_id: str | None = None) -> None:
        await self._send("session.input_audio.mute", event_id)

    async def unmute(self, *, event_id: str | None = None) -> None:
        await self._send("session.input_audio.unmute", event_id)


class _Dtmf(_Resource):
    async def send(self, *, event: str, event_id: str | None = None) -> None:
        """One DTMF key (``0``-``9``, ``A``-``D``, ``*``, ``#``) to the SIP trunk; SIP calls only."""
        await self._send("transport.dtmf.send", event_id, event=event)


class _Transport(_Resource):
    __slots__ = ("dtmf",)

    def __init__(self, conn: LiveConnection) -> None:
        super().__init__(conn)
        self.dtmf = _Dtmf(conn)


class _InputAudio(_Resource):
    async def append(self, *, audio: str | bytes, event_id: str | None = None) -> None:
        """Append base64 audio (str or bytes) in the session's format, spliced into the frame unchanged."""
        await self._conn.send_audio_b64(audio, event_id=event_id)

    async def mute(self, *, event_id: str | None = None) -> None:
        await self._send("session.input_audio.mute", event_id)

    async def unmute(self, *, event_id: str | None = None) -> None:
        await self._send("session.input_audio.unmute", event_id)


class _Append(_Resource):
    __slots__ = ("_type",)

    def __init__(self, conn: LiveConnection, event_type: str) -> None:
        super().__init__(conn)
        self._type = event_type

    async def append(self, *, content: str, delegation_id: str | None, event_id: str | None = None) -> None:
        """``delegation_id`` is required and may be None (general context), as in the official client."""
        await self._send(self._type, event_id, content=content, delegation_id=delegation_id)


class _Fixture(_Resource):
    async def play(self, *, audio: str, event_id: str | None = None) -> None:
        await self._send("session.output_audio.fixture.play", event_id, audio=audio)


class _OutputAudio(_Resource):
    __slots__ = ("fixture",)

    def __init__(self, conn: LiveConnection) -> None:
        super().__init__(conn)
        self.fixture = _Fixture(conn)


class _DecisionItem(_Resource):
    async def create(self, *, item: dict, event_id: str | None = None) -> None:
        await self._send("decision.item.create", event_id, item=item)

    async def delete(self, *, item_id: str, event_id: str | None = None) -> None:
        await self._send("decision.item.delete", event_id, item_id=item_id)


class _Decision(_Resource):
    __slots__ = ("item",)

    def __init__(self, conn: LiveConnection) -> None:
        super().__init__(conn)
        self.item = _DecisionItem(conn)

    async def create(self, *, event_id: str) -> None:
        await self._send("decision.create", event_id)


class _ResponseItem(_Resource):
    async def create(self, *, item: dict, event_id: str | None = None) -> None:
        await self._send("response.item.create", event_id, item=item)


class _Response(_Resource):
    __slots__ = ("item",)

    def __init__(self, conn: LiveConnection) -> None:
        super().__init__(conn)
        self.item = _ResponseItem(conn)

    async def create(self, *, event_id: str | None = None) -> None:
        await self._send("response.create", event_id)


# -- connecting --------------------------------------------------------------------------------


class LiveConnectionManager(ConnectionManager):
    """``async with client.live.connect(...) as conn`` (or ``await mgr.enter()``): the official
    manager's ``send``/``on``/``off``/``once`` before connecting, and its reconnect options."""

    def __init__(self, url: str, headers: dict[str, str], options: dict, auth=None, *, kind: str = "primary",
                 **kwargs) -> None:
        # the base builds a Realtime state for its generation: give it one, then put Live's in its place
        super().__init__(url, headers, "ga", options, auth, **kwargs)
        self._generation = "live"
        self._kind = kind
        self._state = LiveSession()

    def __repr__(self) -> str:
        return f"<LiveConnectionManager {self._kind} {self._url.split('?')[0]}>"

    async def enter(self) -> LiveConnection:
        ws = await self._open()
        log.info("connected (live) to %s", self._url.split("?")[0])
        if self._conn is not None:      # entered again: a new session
            self._state = LiveSession()
        conn = LiveConnection(ws, self._state, reopen=self._open, policy=self._policy, queue=self._queue,
                              extra_query=self._extra_query, extra_headers=self._extra_headers, kind=self._kind)
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

    async def __aenter__(self) -> LiveConnection:
        return await self.enter()


def connect(url: str, *, api_key: str | None = None, headers: dict[str, str] | None = None,
            proxy: str | Literal[True] | None = True,
            on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None] | None = None,
            max_retries: int = 5, initial_delay: float = 0.5, max_delay: float = 8.0,
            max_queue_size: int = DEFAULT_QUEUE_BYTES, **websocket_options) -> LiveConnectionManager:
    """Connect to any GPT-Live-compatible websocket at ``url`` (ws(s)://; http(s):// are mapped)."""
    url = _ws_url(url)
    all_headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return LiveConnectionManager(url, _merge_headers(all_headers, headers), {**websocket_options, "proxy": proxy},
                                 on_reconnecting=on_reconnecting, max_retries=max_retries,
                                 initial_delay=initial_delay, max_delay=max_delay, max_queue_size=max_queue_size)


class AsyncLive:
    """``client.live``: ``connect`` (the websocket), ``create`` and ``sessions`` (REST)."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    def connect(self, extra_query: dict | None = None, extra_headers: dict | None = None,
                websocket_connection_options: dict | None = None, *,
                on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None] | None = None,
                max_retries: int = 5, initial_delay: float = 0.5, max_delay: float = 8.0,
                max_queue_size: int = DEFAULT_QUEUE_BYTES,
                proxy: str | Literal[True] | None = True) -> LiveConnectionManager:
        """Open ``/live/sessions`` with the official keywords; send ``session.start`` first, then wait
        for ``session.started``. Reconnecting as :meth:`AsyncOpenAI.realtime.connect
        <rtfast.client._Realtime.connect>` documents (only with ``on_reconnecting``); a new connection
        is a new session: start it again (``conn.reconnect()`` re-sends the last ``session.start``)."""
        return _manager(self._client, "/live/sessions", "primary", extra_query, extra_headers,
                        websocket_connection_options, proxy, on_reconnecting=on_reconnecting,
                        max_retries=max_retries, initial_delay=initial_delay, max_delay=max_delay,
                        max_queue_size=max_queue_size)

    @property
    def sideband(self) -> LiveSideband:
        return LiveSideband(self._client)

    @property
    def forks(self) -> LiveForks:
        return LiveForks(self._client)

    async def create(self, *, session: dict, transport: dict, extra_headers: dict | None = None,
                     extra_query: dict | None = None, extra_body: dict | None = None,
                     timeout: float | None = None) -> LiveCreateResponse:
        """``POST /live/sessions``: a Live WebRTC session (``transport`` holds the browser's SDP offer);
        the result reads as attributes (``r.transport.sdp``) and as the API's JSON dict."""
        body = {"session": session, "transport": transport, **(extra_body or {})}
        return await _rest(self._client, "POST", "/live/sessions", body, extra_headers, extra_query, timeout,
                           result=LiveCreateResponse)

    @property
    def sessions(self) -> LiveSessions:
        return LiveSessions(self._client)


def _manager(client: AsyncOpenAI, path: str, kind: str, extra_query, extra_headers, websocket_connection_options,
             proxy, **reconnect) -> LiveConnectionManager:
    extra_query = dict(extra_query or {})

    def url_for(query: dict) -> str:
        return _with_query(_ws_url(client.websocket_base_url or client.base_url) + path, dict(query))

    options = dict(websocket_connection_options or {})
    if proxy is not True:
        options["proxy"] = proxy
    return LiveConnectionManager(url_for(extra_query), client._headers(), options, client._fresh_auth(), kind=kind,
                                 url_for=url_for, extra_query=extra_query, extra_headers=extra_headers, **reconnect)


def _session_path(session_id: str, action: str) -> str:
    if not isinstance(session_id, str) or not session_id:
        raise ValueError(f"Expected a non-empty value for `session_id` but received {session_id!r}")
    from rtfast.http import quote_segment

    return f"/live/sessions/{quote_segment(session_id)}/{action}"


class LiveSideband:
    """``client.live.sideband``: attach to a running session (``/live/sessions/{id}/attach``)."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    def connect(self, *, session_id: str, graceful_close: bool | None = None, extra_query: dict | None = None,
                extra_headers: dict | None = None, websocket_connection_options: dict | None = None,
                on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None] | None = None,
                max_retries: int = 5, initial_delay: float = 0.5, max_delay: float = 8.0,
                max_queue_size: int = DEFAULT_QUEUE_BYTES,
                proxy: str | Literal[True] | None = True) -> LiveConnectionManager:
        """A sideband to an existing session: its events (audio reflected as PCM16 24 kHz) and commands on
        its behalf. Do not send ``session.start``: the session has started."""
        query = dict(extra_query or {})
        if graceful_close is not None:
            query["graceful_close"] = "true" if graceful_close else "false"   # as openai's query string
        return _manager(self._client, _session_path(session_id, "attach"), "sideband", query, extra_headers,
                        websocket_connection_options, proxy, on_reconnecting=on_reconnecting,
                        max_retries=max_retries, initial_delay=initial_delay, max_delay=max_delay,
                        max_queue_size=max_queue_size)


class LiveForks:
    """``client.live.forks``: fork a stored session over a websocket (``/live/sessions/{id}/fork``)."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    def connect(self, *, session_id: str, extra_query: dict | None = None, extra_headers: dict | None = None,
                websocket_connection_options: dict | None = None,
                on_reconnecting: Callable[[ReconnectingEvent], ReconnectingOverrides | None] | None = None,
                max_retries: int = 5, initial_delay: float = 0.5, max_delay: float = 8.0,
                max_queue_size: int = DEFAULT_QUEUE_BYTES,
                proxy: str | Literal[True] | None = True) -> LiveConnectionManager:
        """Send ``session.start`` with an overrides object (may be empty), then wait for
        ``session.started``; the model, instructions and conversation are the stored session's."""
        return _manager(self._client, _session_path(session_id, "fork"), "fork", extra_query, extra_headers,
                        websocket_connection_options, proxy, on_reconnecting=on_reconnecting,
                        max_retries=max_retries, initial_delay=initial_delay, max_delay=max_delay,
                        max_queue_size=max_queue_size)


class BinaryResponse:
    """What ``download_recording`` returns: the official ``HttpxBinaryResponseContent``'s reading
    methods over the body (``content``, ``read()``, ``text``, ``json()``, ``write_to_file()``)."""

    __slots__ = ("content", "status_code", "headers")

    def __init__(self, content: bytes, status_code: int, headers: dict[str, str]) -> None:
        self.content, self.status_code, self.headers = content, status_code, headers

    def read(self) -> bytes:
        return self.content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return orjson.loads(self.content)

    def write_to_file(self, file) -> None:
        with open(file, "wb") as f:
            f.write(self.content)

    async def aread(self) -> bytes:
        return self.content

    def __repr__(self) -> str:
        return f"<BinaryResponse {self.status_code} {len(self.content)} bytes>"


class LiveSessions:
    """``client.live.sessions``: control a live session by id (SIP and WebRTC sessions)."""

    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    def _path(self, session_id: str, action: str) -> str:
        return _session_path(session_id, action)

    async def accept(self, session_id: str, *, session: dict, extra_headers: dict | None = None,
                     extra_query: dict | None = None, extra_body: dict | None = None,
                     timeout: float | None = None) -> None:
        """Accept an incoming SIP session with its startup configuration."""
        await _rest(self._client, "POST", self._path(session_id, "accept"),
                    {"session": session, **(extra_body or {})}, extra_headers, extra_query, timeout, empty=True)

    async def reject(self, session_id: str, *, status_code: int, extra_headers: dict | None = None,
                     extra_query: dict | None = None, extra_body: dict | None = None,
                     timeout: float | None = None) -> None:
        """Reject an incoming SIP session (``status_code``: the SIP response code, e.g. 486)."""
        body = {"status_code": status_code, **(extra_body or {})}
        await _rest(self._client, "POST", self._path(session_id, "reject"), body, extra_headers, extra_query,
                    timeout, empty=True)

    async def refer(self, session_id: str, *, target_uri: str, extra_headers: dict | None = None,
                    extra_query: dict | None = None, extra_body: dict | None = None,
                    timeout: float | None = None) -> None:
        """Transfer a SIP session (SIP REFER to ``target_uri``, e.g. ``tel:+14155550123``)."""
        await _rest(self._client, "POST", self._path(session_id, "refer"),
                    {"target_uri": target_uri, **(extra_body or {})}, extra_headers, extra_query, timeout, empty=True)

    async def hangup(self, session_id: str, *, extra_headers: dict | None = None, extra_query: dict | None = None,
                     extra_body: dict | None = None, timeout: float | None = None) -> None:
        await _rest(self._client, "POST", self._path(session_id, "hangup"), extra_body or None, extra_headers,
                    extra_query, timeout, empty=True)

    async def fork(self, session_id: str, *, transport: dict, session: dict | None = None,
                   extra_headers: dict | None = None, extra_query: dict | None = None,
                   extra_body: dict | None = None, timeout: float | None = None) -> SessionForkResponse:
        """Fork a stored live session into a new WebRTC one (``transport``: ``{"type": "webrtc",
        "sdp": offer}``; ``session`` overrides the stored settings). The result reads as
        attributes (``r.transport.sdp``) and as the API's JSON dict."""
        body = {"transport": transport, **({} if session is None else {"session": session}), **(extra_body or {})}
        return await _rest(self._client, "POST", self._path(session_id, "fork"), body, extra_headers, extra_query,
                           timeout, result=SessionForkResponse)

    async def download_recording(self, session_id: str, *, extra_headers: dict | None = None,
                                 extra_query: dict | None = None, extra_body: dict | None = None,
                                 timeout: float | None = None) -> BinaryResponse:
        """``GET /live/sessions/{id}/content``: the session's recording (``store: true`` sessions)."""
        return await _rest(self._client, "GET", self._path(session_id, "content"), None,
                           _merge_headers({"Accept": "application/binary"}, extra_headers), extra_query, timeout,
                           binary=True)


async def _rest(client: AsyncOpenAI, method: str, path: str, body: dict | None, extra_headers: dict | None,
                extra_query: dict | None, timeout: float | None, *, empty: bool = False, binary: bool = False,
                result: type[RestObject] = RestObject):
    """One REST call over rtfast.http: JSON in, JSON (a :class:`RestObject`, or nothing, or bytes) out.
    An error status raises the typed error the handshake uses (AuthenticationError, NotFoundError, ...)
    with the API's message; no usable answer raises ConnectError (ConnectTimeout: none in time), as
    the client's other REST calls do, naming host:port only."""
    from rtfast._rest import rest_request

    url = _with_query(client.base_url + path, dict(extra_query or {}))
    headers = _merge_headers(client._headers(), {"Accept": "*/*" if empty else "application/json"})
    data = None
    if method == "POST":                # as the official client: JSON even for an empty POST
        headers["Content-Type"] = "application/json"
        data = b"" if body is None else orjson.dumps(body)
    headers = _merge_headers(headers, extra_headers)
    action = path.rsplit("/", 1)[-1]
    what = "live." + ("create" if path == "/live/sessions" else
                      "sessions." + ("download_recording" if action == "content" else action))
    response = await rest_request(client, what, method, url, headers, data, timeout)
    if binary:
        return BinaryResponse(response.body, response.status, response.headers)
    if empty or not response.body:
        return None
    try:
        return wrap(orjson.loads(response.body), result)
    except orjson.JSONDecodeError:
        raise ProtocolError(f"{what}: the API's answer is not JSON") from None
