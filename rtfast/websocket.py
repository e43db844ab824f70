"""A lean asyncio websocket for many concurrent connections (the bridge's transport).

``websockets`` gives every connection a task-driven reader, an assembler and
one socket write per message; at hundreds of calls per core that is most of
a bridge's CPU. Here a connection is an ``asyncio.Protocol`` over the
compiled frame codec (``rtfast._wsframe``): a received message is handed to
``on_message`` inside ``data_received`` (no task switch), and
``send_many()`` puts every frame one event produces into one socket write.

The opening handshake is ``websockets``' own sans-I/O ``ServerProtocol`` /
``ClientProtocol`` (header checks, ``Sec-WebSocket-Accept``, error
responses); only the bytes after the handshake go through our codec.

    ws = await connect("ws://127.0.0.1:8765/v1/realtime", headers={...})
    ws.on_message = lambda data, binary: ...
    ws.send(b'{"type":"response.create"}')

    server = await serve(handler, "127.0.0.1", 8080)   # handler(ws) is a coroutine
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl as ssl_module
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidProxy
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from rtfast._wsframe import FrameParser, FrameWriter, close_payload, parse_close
from rtfast._handshake import RedactHeaders, connect_error, handshake_failure
from rtfast.errors import ConnectionClosed, FrameError, HandshakeError

__all__ = ["WebSocket", "connect", "serve", "Server"]

log = logging.getLogger("rtfast.websocket")
log.addFilter(RedactHeaders())    # the handshake is logged header by header at DEBUG

CONNECTING, OPEN, CLOSING, CLOSED = range(4)
_MAX_HEAD = 16384           # request/response head limit, as websockets' line and header limits
_RECV_QUEUE_HIGH = 256      # messages queued for recv() before reading pauses




class WebSocket(asyncio.Protocol):
    """One websocket connection, client or server side.

    Receive either with callbacks, ``on_message(data: bytes, binary: bool)``
    called from ``data_received`` (set it, or call ``set_handlers``; messages
    that arrived before go to it first), or with ``await recv()`` while no
    callback is set. ``on_close(code, reason)`` runs once when the connection
    is gone. Sending never awaits: frames go to the transport at once, and
    ``buffered`` says how much the peer has not read (a sender that must not
    outrun its peer awaits ``drain()``).

    Every way of closing is bounded by ``close_timeout``: a peer that stops
    reading cannot hold a closing connection open. A server side that has not
    completed its opening handshake within ``open_timeout`` is dropped.

    With ``ping_interval`` a keepalive ping goes out that often and fails the
    connection (1011) unless its pong arrives within ``ping_timeout`` (by
    default the interval; ``None``: never fails), as websockets' keepalive.

    ``request`` and ``response`` hold the opening handshake; with
    ``keep_handshake=False`` they are dropped once open (a bridge with
    hundreds of sockets keeps ~10 fewer objects each for the cyclic GC to walk).
    """

    # Slots for what every frame reads (see rtfast.bridge.call.Call); __dict__ and __weakref__ so an
    # application can hang its own attributes on a connection and refer to it weakly, as on websockets'.
    __slots__ = ("__dict__", "__weakref__", "_close_handle", "_close_timeout", "_drain_waiter", "_failed", "_head",
                 "_hs", "_inbound_done", "_keep_handshake", "_keepalive_due", "_keepalive_handle",
                 "_keepalive_sent", "_lane", "_loop", "_on_backlog", "_on_message", "_on_open", "_open_timeout",
                 "_parser", "_paused_reading", "_ping_interval", "_ping_timeout", "_pings", "_process_request",
                 "_queue", "_request_to_send", "_waiter", "_writer", "client", "close_code", "close_reason",
                 "close_received", "closed", "on_close", "opened", "remote_address", "request", "response",
                 "state", "transport", "writing_paused")

    def __init__(self, *, client: bool, max_size: int | None = 16 * 2**20, ping_interval: float | None = None,
                 ping_timeout: Any = ..., close_timeout: float = 2.0, open_timeout: float = 10.0,
                 keep_handshake: bool = True) -> None:
        self.client = client
        self.state = CONNECTING
        self.transport: asyncio.Transport | None = None
        self.remote_address: Any = None
        self.request: Request | None = None
        self.response: Response | None = None
        self._on_message: Callable[[bytes, bool], Any] | None = None
        self._lane: Callable[[list], int] | None = None
        self._inbound_done = False      # a close frame arrived, or we failed: deliver nothing more
        self._failed = False
        self.on_close: Callable[[int, str], Any] | None = None
        #: The close code and reason received (1006, "" until a close frame arrives),
        #: or the ones we failed the connection with (see ``close_received``).
        self.close_code, self.close_reason = 1006, ""
        #: Whether close_code and close_reason came in the peer's close frame.
        self.close_received = False
        self._parser = FrameParser(client=client, max_size=max_size)
        self._writer = FrameWriter(client=client)
        self._head = bytearray()
        self._hs: ClientProtocol | ServerProtocol | None = None
        self._queue: deque = deque()
        self._waiter: asyncio.Future | None = None
        self._paused_reading = False
        self._pings: dict[bytes, tuple[float, asyncio.Future]] = {}
        self._ping_interval = ping_interval
        self._ping_timeout = ping_interval if ping_timeout is ... else ping_timeout
        self._keepalive_handle: asyncio.TimerHandle | None = None
        self._keepalive_due: bytes | None = None
        self._keepalive_sent = 0.0
        #: The transport holds more than its high mark of unsent bytes (see drain()).
        self.writing_paused = False
        self._drain_waiter: asyncio.Future | None = None
        self._close_timeout = close_timeout
        self._open_timeout = open_timeout
        self._keep_handshake = keep_handshake
        self._close_handle: asyncio.TimerHandle | None = None
        self._on_backlog: Callable[[int], Any] | None = None
        loop = asyncio.get_running_loop()
        self._loop = loop
        #: Resolves with the websocket once the handshake succeeds (client side).
        self.opened: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()
        # Set by Server: called with self once the handshake succeeds.
        self._on_open: Callable[[WebSocket], Any] | None = None
        self._process_request: Callable[[WebSocket, Request], Response | None] | None = None
        self._request_to_send: Request | None = None

    def __repr__(self) -> str:
        side = "client" if self.client else "server"
        return f"<WebSocket {side} {('CONNECTING', 'OPEN', 'CLOSING', 'CLOSED')[self.state]}>"

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.remote_address = transport.get_extra_info("peername")
        if not self.client:
            # A peer that connects and never finishes its request must not hold
            # a socket forever (the client side is bounded by connect()'s timeout).
            self._close_handle = self._loop.call_later(self._open_timeout, self._open_expired)
        if self._request_to_send is not None:
            self._hs.send_request(self._request_to_send)
            self._request_to_send = None
            self._flush_handshake()

    def data_received(self, data: bytes) -> None:
        if self.state != CONNECTING:
            try:
                frames = self._parser.feed(data)
            except FrameError as exc:
                self._dispatch(exc.messages)       # what arrived intact before the violation
                self.fail(exc.close_code, str(exc))
                return
            lane = self._lane
            if lane is not None:
                taken = lane(frames)
                if taken == len(frames):
                    return
                frames = frames[taken:]
            self._dispatch(frames)
        elif self._head is not None:
            self._handshake(data)
        elif self.client and self._hs is not None:
            self._hs.receive_data(data)       # a refused client handshake: its body
            self._client_response()

    def _dispatch(self, frames: list) -> None:
        # frames: the parser's (opcode, payload) tuples; data ones are 1 (text) or 2 (binary)
        for frame in frames:
            if self._inbound_done:
                return
            if frame[0] > 2:
                self._control(*frame)
            elif self._on_message is None:
                self._enqueue(frame)
            else:
                try:                            # _deliver, inline: a frame less per message
                    self._on_message(frame[1], frame[0] == 2)
                except Exception:
                    log.exception("on_message callback failed; closing the connection")
                    self.fail(1011, "internal error")

    def eof_received(self) -> bool:
        if self.state == CONNECTING and self._hs is not None and self.client:
            self._hs.receive_eof()
            self._client_response()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.state = CLOSED
        for handle in (self._keepalive_handle, self._close_handle):
            if handle is not None:
                handle.cancel()
        if not self.opened.done():
            if self.client:
                self.opened.set_exception(HandshakeError(0, "connection closed during the websocket handshake"))
            else:
                self.opened.cancel()             # nobody awaits a server side's opening
        for _, fut in self._pings.values():
            if not fut.done():
                fut.set_exception(ConnectionClosed(self.close_code, self.close_reason))
                fut.exception()     # a ping nobody awaits must not log "never retrieved"
        self._pings.clear()
        self._wake()
        self._wake_drain()
        if not self.closed.done():
            self.closed.set_result((self.close_code, self.close_reason))
        if self.on_close is not None:
            cb, self.on_close = self.on_close, None
            try:
                cb(self.close_code, self.close_reason)
            except Exception:
                log.exception("on_close callback failed")
        # Nothing more can arrive: drop the callbacks, which usually hold their
        # owner (a cycle the owner's end would otherwise leave to the cyclic GC).
        self._on_message = self._on_backlog = self._lane = None

    def pause_writing(self) -> None:
        # The transport calls this from write() once its buffer passes the high
        # mark: a backlog check that costs nothing per send.
        self.writing_paused = True
        if self._on_backlog is not None:
            try:
                self._on_backlog(self.buffered)
            except Exception:
                log.exception("on_backlog callback failed")

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        """Wait while the transport holds more than its high mark of unsent
        bytes (until it is down to its low mark, or the connection is gone)."""
        if self.writing_paused and self.state != CLOSED:
            if self._drain_waiter is None:
                self._drain_waiter = self._loop.create_future()
            # shared by every sender waiting; one of them cancelled must not wake the others
            await asyncio.shield(self._drain_waiter)

    def limit_backlog(self, high: int, on_backlog: Callable[[int], Any]) -> None:
        """Call ``on_backlog(buffered)`` when more than ``high`` bytes sent
        are still unread by the peer (once per crossing). Sending never
        blocks; this is how an owner learns that a peer has stopped reading."""
        self._on_backlog = on_backlog
        if self.transport is not None:
            self.transport.set_write_buffer_limits(high=high, low=high // 2)

    # -- handshake -----------------------------------------------------------------------------
    def _handshake(self, data: bytes) -> None:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > _MAX_HEAD:
                self.transport.abort()
            return
        head, rest = bytes(self._head[:end + 4]), bytes(self._head[end + 4:])
        self._head = None
        if self.client:
            self._hs.receive_data(head)
            if not self._client_response():
                if rest:
                    self._hs.receive_data(rest)   # not a 101: the rest is the response body
                    self._client_response()
                return
        elif not self._server_request(head):
            return
        if rest:
            self.data_received(rest)

    def _flush_handshake(self) -> None:
        for chunk in self._hs.data_to_send():
            if chunk:
                self.transport.write(chunk)

    def _server_request(self, head: bytes) -> bool:
        hs = self._hs
        hs.receive_data(head)
        events = hs.events_received()
        if not events:                          # not an HTTP request: websockets answered or gave up
            self._flush_handshake()
            self.transport.close()
            return False
        request = events[0]
        response = None
        if self._process_request is not None:
            try:
                response = self._process_request(self, request)
            except Exception:
                log.exception("process_request failed")
                response = hs.reject(500, "Failed to open a WebSocket connection.\n")
        if response is None:
            response = hs.accept(request)
        hs.send_response(response)
        self._flush_handshake()
        if response.status_code != 101:
            self.transport.close()
            return False
        self.request, self.response = request, response
        on_open = self._on_open
        self._open()
        if on_open is not None:
            on_open(self)
        return True

    def _client_response(self) -> bool:
        """True once a 101 arrived; a refusal fails ``opened`` and closes."""
        events = self._hs.events_received()
        if not events:
            return False
        self.response = events[0]
        exc = self._hs.handshake_exc
        if exc is not None:
            if not self.opened.done():
                self.opened.set_exception(handshake_failure(exc))
            self.transport.abort()
            return False
        self._open()
        return True

    def _open(self) -> None:
        self.state = OPEN
        self._hs = self._on_open = self._process_request = None      # done with the handshake
        if not self._keep_handshake:
            self.request = self.response = None
        if self._close_handle is not None:      # the open timer
            self._close_handle.cancel()
            self._close_handle = None
        if not self.opened.done():              # connect() may have timed out just now
            self.opened.set_result(self)
        if self._ping_interval:
            self._keepalive_handle = self._loop.call_later(self._ping_interval, self._keepalive)

    # -- receiving -----------------------------------------------------------------------------
    def _enqueue(self, frame: tuple) -> None:
        # The parser's own (opcode, payload) tuple is queued: nothing allocated per message.
        queue = self._queue
        queue.append(frame)
        if self._waiter is not None:
            self._wake()
        if len(queue) >= _RECV_QUEUE_HIGH and not self._paused_reading:
            self._paused_reading = True
            self.transport.pause_reading()

    def _deliver(self, payload: bytes, binary: bool) -> None:
        try:
            self._on_message(payload, binary)
        except Exception:
            log.exception("on_message callback failed; closing the connection")
            self.fail(1011, "internal error")

    @property
    def on_message(self) -> Callable[[bytes, bool], Any] | None:
        return self._on_message

    @on_message.setter
    def on_message(self, cb: Callable[[bytes, bool], Any] | None) -> None:
        # Messages that were waiting for recv() go to the callback first.
        self._on_message = cb
        self._lane = None                  # a lane serves the handler it was set beside
        while self._queue and self._on_message is not None and not self._failed:
            op, payload = self._queue.popleft()
            self._deliver(payload, op == 2)
        self._resume()

    def set_handlers(self, on_message: Callable[[bytes, bool], Any] | None,
                     on_close: Callable[[int, str], Any] | None = None) -> None:
        """Switch to callbacks; messages that were waiting for recv() go first."""
        self.on_close = on_close
        self.on_message = on_message
        if self.state == CLOSED and on_close is not None and self.on_close is not None:
            self.on_close = None
            on_close(self.close_code, self.close_reason)

    @property
    def lane(self) -> Callable[[list], int] | None:
        """The lane set by :meth:`set_lane`, or None."""
        return self._lane

    def set_lane(self, lane: Callable[[list], int] | None) -> None:
        """A shortcut beside ``on_message``: each read's parsed frames, as
        ``(opcode, payload)`` tuples, go to ``lane(frames)`` first, which handles a
        leading run of them exactly as ``on_message`` would and returns how many;
        the rest are delivered as usual. Setting ``on_message`` again removes it."""
        if lane is not None and self._on_message is None:
            raise ValueError("a lane goes beside an on_message callback: set_handlers first")
        self._lane = lane

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _resume(self) -> None:
        if self._paused_reading and len(self._queue) < _RECV_QUEUE_HIGH // 2 and self.state != CLOSED:
            self._paused_reading = False
            self.transport.resume_reading()

    async def recv(self) -> bytes:
        """The next message's payload (text as UTF-8 bytes). Raises
        rtfast.errors.ConnectionClosed once the connection is gone."""
        queue = self._queue
        if queue:           # a message is waiting (the usual case while a stream arrives): no second coroutine
            payload = queue.popleft()[1]
            if self._paused_reading:
                self._resume()
            return payload
        return (await self.recv_message())[0]

    async def recv_message(self) -> tuple[bytes, bool]:
        """The next message as ``(payload, binary)``."""
        while not self._queue:
            if self.state == CLOSED:
                raise ConnectionClosed(self.close_code, self.close_reason)
            if self._waiter is not None:
                raise RuntimeError("another coroutine is already awaiting recv() on this websocket")
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        op, payload = self._queue.popleft()
        self._resume()
        return payload, op == 2

    def _control(self, op: int, payload: bytes) -> None:
        if op == 9:                                     # ping
            if self.state == OPEN:
                self.transport.write(self._writer.frame(payload, 10))
        elif op == 10:                                  # pong
            if payload == self._keepalive_due:
                self._keepalive_due = None
                if self._ping_timeout is not None:      # answered in time: the next ping replaces the expiry
                    self._keepalive_handle.cancel()
                    wait = self._ping_interval - (self._loop.time() - self._keepalive_sent)
                    self._keepalive_handle = self._loop.call_later(max(wait, 0.0), self._keepalive)
            entry = self._pings.pop(payload, None)
            if entry is not None and not entry[1].done():
                entry[1].set_result(time.monotonic() - entry[0])
        else:                                           # close
            try:
                code, reason = parse_close(payload)
            except FrameError as exc:
                self.fail(exc.close_code, str(exc))
                return
            self.close_code, self.close_reason = code, reason
            self.close_received = True
            self._inbound_done = True                  # nothing may follow a close frame
            if self.state == OPEN:
                # Echo the close; a server then ends TCP, a client lets the server do it.
                self.transport.write(self._writer.frame(payload[:2], 8))
                self.state = CLOSING
            if not self.client:
                self.transport.close()
            self._arm_close_timer()                    # either way, bounded

    # -- sending -------------------------------------------------------------------------------
    def send(self, data, binary: bool = False) -> None:
        """Send one message (bytes are sent as they are; str as UTF-8)."""
        if self.state != OPEN:
            raise ConnectionClosed(self.close_code, self.close_reason)
        self.transport.write(self._writer.frame(data, 2 if binary else 1))

    def send_many(self, items, binary: bool = False) -> None:
        """Send several messages in one socket write. An item is bytes/str,
        or ``(opcode, data)`` (1 text, 2 binary) to mix kinds."""
        if self.state != OPEN:
            raise ConnectionClosed(self.close_code, self.close_reason)
        self.transport.write(self._writer.frames(items, 2 if binary else 1))

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the peer's socket."""
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def ping(self) -> asyncio.Future:
        """Send a ping; the future resolves with the round trip in seconds."""
        if self.state != OPEN:
            raise ConnectionClosed(self.close_code, self.close_reason)
        payload = os.urandom(4)
        fut = self._loop.create_future()
        self._pings[payload] = (time.monotonic(), fut)
        self.transport.write(self._writer.frame(payload, 9))
        return fut

    def _keepalive(self) -> None:
        # A ping every ping_interval; with a ping_timeout, its pong (in _control) arms the next one.
        if self.state != OPEN:
            return
        self._keepalive_due = os.urandom(4)
        self._keepalive_sent = self._loop.time()
        self.transport.write(self._writer.frame(self._keepalive_due, 9))
        if self._ping_timeout is None:
            self._keepalive_handle = self._loop.call_later(self._ping_interval, self._keepalive)
        else:
            self._keepalive_handle = self._loop.call_later(self._ping_timeout, self._keepalive_expired)

    def _keepalive_expired(self) -> None:
        if self.state == OPEN:
            self.fail(1011, "keepalive ping timeout")

    # -- closing -------------------------------------------------------------------------------
    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (returns at once; await ``wait_closed()``)."""
        if self.state == OPEN:
            self.transport.write(self._writer.frame(close_payload(code, reason), 8))
            self.state = CLOSING
            self._arm_close_timer()
        elif self.state == CLOSING:
            self._arm_close_timer()
        elif self.state == CONNECTING and self.transport is not None:
            self.transport.abort()

    def fail(self, code: int, reason: str) -> None:
        """Close at once after a protocol or application failure."""
        self._failed = self._inbound_done = True
        if self.state == OPEN:
            self.close_code, self.close_reason = code, reason
            # The reason is cut to the 123 bytes a close frame allows, on a character boundary.
            reason = reason.encode()[:123].decode(errors="ignore")
            try:
                self.transport.write(self._writer.frame(close_payload(code, reason), 8))
            except ValueError:                         # a code that may not be sent
                self.transport.write(self._writer.frame(close_payload(1011, reason), 8))
            self.state = CLOSING
        if self.transport is not None:
            # close() lets the buffer drain first; a peer that stopped reading
            # would hold it forever, so abort after close_timeout.
            self.transport.close()
            self._arm_close_timer()

    def _arm_close_timer(self) -> None:
        if self._close_handle is None and self.state != CLOSED:
            self._close_handle = self._loop.call_later(self._close_timeout, self._close_expired)

    def _open_expired(self) -> None:
        self._close_handle = None
        if self.state == CONNECTING and self.transport is not None:
            log.info("dropped a connection that did not complete its opening handshake in %.0f s",
                     self._open_timeout)
            self.transport.abort()

    def _close_expired(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def wait_closed(self) -> tuple[int, str]:
        return await asyncio.shield(self.closed)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close and wait until the connection is gone."""
        self.close(code, reason)
        await self.wait_closed()


# -- client --------------------------------------------------------------------------------------


async def connect(url: str, *, headers: dict[str, str] | None = None, proxy: str | None = None,
                  open_timeout: float | None = 30.0, user_agent: str | None = "rtfast", ssl: Any = None,
                  logger: logging.Logger | None = None, **options: Any) -> WebSocket:
    """Open a client websocket to ``url`` (ws:// or wss://), directly or
    through ``proxy`` (http://, https://, socks5://...). ``options`` go to
    :class:`WebSocket` (``max_size``, ``ping_interval``, ``ping_timeout``,
    ``close_timeout``). ``user_agent`` is sent unless ``headers`` has one
    (``None``: no User-Agent header).
    A refused handshake raises rtfast's typed ``HandshakeError``; anything
    else that keeps the connection from opening (DNS, TCP, TLS, the proxy, no
    answer in ``open_timeout``) a ``ConnectError`` saying which step failed.
    A failed connect leaves no socket behind."""
    from websockets.asyncio.client import connect_http_proxy, connect_socks_proxy
    from websockets.proxy import parse_proxy

    loop = asyncio.get_running_loop()
    uri = parse_uri(url)
    ws = WebSocket(client=True, **options)
    hs = ClientProtocol(uri, max_size=None, logger=logger or log)
    request = hs.connect()
    for key, value in (headers or {}).items():
        request.headers[key] = value
    if user_agent is not None:
        request.headers.setdefault("User-Agent", user_agent)    # as websockets: the caller's own wins
    ws._hs, ws._request_to_send = hs, request
    if uri.secure and ssl is None:
        ssl = ssl_module.create_default_context()
    tls = {"ssl": ssl, "server_hostname": uri.host} if uri.secure else {}
    async def open() -> WebSocket:
        if proxy is None:
            await loop.create_connection(lambda: ws, uri.host, uri.port, **tls)
        else:
            try:
                parsed = parse_proxy(proxy)
            except InvalidProxy as exc:
                raise handshake_failure(exc) from None
            if parsed.scheme.startswith("socks"):
                try:
                    sock = await connect_socks_proxy(parsed, uri)
                except InvalidHandshake as exc:
                    raise HandshakeError(0, f"the proxy refused the connection: {type(exc).__name__}") from None
                await loop.create_connection(lambda: ws, sock=sock, **tls)
            else:
                proxy_tls = {"ssl": True} if parsed.scheme == "https" else {}
                try:
                    transport = await connect_http_proxy(parsed, uri, user_agent_header=user_agent, **proxy_tls)
                except InvalidHandshake as exc:
                    raise HandshakeError(0, f"the proxy refused the connection: {type(exc).__name__}") from None
                transport.set_protocol(ws)
                if tls:
                    transport = await loop.start_tls(transport, ws, tls["ssl"], server_hostname=uri.host)
                ws.connection_made(transport)
        return await ws.opened

    try:
        return await asyncio.wait_for(open(), open_timeout)
    except BaseException as exc:
        if ws.transport is not None:
            ws.transport.abort()
        if isinstance(exc, (OSError, TimeoutError)):
            stage = None
            if isinstance(exc, TimeoutError):
                stage = ("{target}{via} accepted the connection but did not answer the websocket upgrade"
                         if ws.transport is not None else "no TCP/TLS connection to {target}{via}")
            raise connect_error(exc, url, proxy, open_timeout or 0, stage) from exc
        raise


# -- server --------------------------------------------------------------------------------------


class Server:
    """Listening sockets and the connections they accepted; from :func:`serve`."""

    def __init__(self, handler: Callable[[WebSocket], Awaitable[Any]],
                 process_request: Callable[[WebSocket, Request], Response | None] | None,
                 options: dict, logger: logging.Logger | None) -> None:
        self._handler = handler
        self._process_request = process_request
        self._options = options
        self._logger = logger or log
        self._tasks: set[asyncio.Task] = set()
        self._handshaking: set[WebSocket] = set()
        self.connections: set[WebSocket] = set()
        self.server: asyncio.AbstractServer | None = None

    @property
    def sockets(self):
        return self.server.sockets

    def _protocol(self) -> WebSocket:
        ws = WebSocket(client=False, **self._options)
        ws._hs = ServerProtocol(max_size=None, logger=self._logger)
        ws._process_request = self._process_request
        ws._on_open = self._opened
        # Tracked until open, so close() can drop connections still handshaking.
        self._handshaking.add(ws)
        ws.closed.add_done_callback(lambda _: self._handshaking.discard(ws))
        return ws

    def _opened(self, ws: WebSocket) -> None:
        self._handshaking.discard(ws)
        self.connections.add(ws)
        task = asyncio.get_running_loop().create_task(self._run(ws))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, ws: WebSocket) -> None:
        try:
            await self._handler(ws)
        except Exception:
            log.exception("connection handler failed")
            ws.fail(1011, "internal error")
        finally:
            # As websockets: the connection ends when its handler returns
            # (bounded: every close aborts after close_timeout).
            ws.close()
            await ws.wait_closed()
            self.connections.discard(ws)

    def close(self) -> None:
        """Stop listening and close every connection with 1001 (going away)."""
        if self.server is not None:
            self.server.close()
        for ws in list(self._handshaking):
            ws.close()                      # still handshaking: dropped
        for ws in list(self.connections):
            ws.close(1001)

    async def wait_closed(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    async def serve_forever(self) -> None:
        await self.server.serve_forever()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.close()
        await self.wait_closed()


async def serve(handler: Callable[[WebSocket], Awaitable[Any]], host: str | None, port: int, *,
                process_request: Callable[[WebSocket, Request], Response | None] | None = None,
                logger: logging.Logger | None = None, reuse_port: bool = False, sock: socket.socket | None = None,
                **options: Any) -> Server:
    """Accept websockets on host:port; ``handler(ws)`` runs for each one and
    the connection closes when it returns. ``process_request(ws, request)``
    may return a ``websockets.http11.Response`` to refuse the upgrade.
    ``reuse_port``: bind with ``SO_REUSEPORT`` (several processes listening on
    one port, the kernel spreading connections among them); ``sock``: accept on
    this already bound socket instead of host:port. ``options`` go to
    :class:`WebSocket`."""
    server = Server(handler, process_request, options, logger)
    loop = asyncio.get_running_loop()
    if sock is not None:
        server.server = await loop.create_server(server._protocol, sock=sock)
    else:
        server.server = await loop.create_server(server._protocol, host, port, reuse_port=reuse_port or None)
    return server
