"""``rtfast bridge``: the asyncio telephony bridge.

Accepts carrier media-stream websockets and opens one Realtime connection per
call. All decisions live in the sans-I/O :class:`rtfast.bridge.Call`; this
module only moves bytes between the two sockets and wakes the call when its
next outbound chunk may leave. One event loop, no thread per call; uvloop is
used by the command when it is installed.

    server = BridgeServer(carrier="twilio", realtime_url="ws://127.0.0.1:8765/v1/realtime")
    async with server:
        print(server.url)           # point the carrier's <Stream url=...> here
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gc
import hashlib
import hmac
import itertools
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import parse_qs
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Response

from rtfast.bridge import carriers
from rtfast.bridge.app import Agent, Request
from rtfast.bridge.call import _LEDGER_MAX, Actions, BargeIn, Call, remember
from rtfast.bridge.carriers import Dtmf, Start
from rtfast.bridge.carriers._base import JsonCodec
from rtfast.bridge.livecall import LiveCall
from rtfast.bridge.ops import OPS_PATHS, Ops
from rtfast.bridge.runner import AgentCall
from rtfast.bridge.workers import Group, Supervisor, available_cores
from rtfast.client import AsyncOpenAI
from rtfast.connection import MAX_MESSAGE, ConnectionManager, connect, ws_log
from rtfast.errors import ConnectionClosed, ProtocolError, RtfastError
from rtfast.live.session import LiveSession
from rtfast.session import RealtimeSession
from rtfast.websocket import OPEN, WebSocket
from rtfast import websocket
from rtfast._lane import CarrierLane, ModelLane, pace_due

__all__ = ["BridgeServer", "twilio_signature", "main"]

log = logging.getLogger("rtfast.bridge")

# The carrier fast lane (rtfast._lane): on by default; tests turn it off to compare.
FAST_LANE = True

# Realtime frames held while an agent's per-call setup runs (2 s of 20 ms caller audio).
_HELD_MAX = 100


def twilio_signature(auth_token: str, url: str, params: dict[str, str] | None = None) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by the
    POST parameters sorted by name (none for a websocket upgrade)."""
    data = url + "".join(k + v for k, v in sorted((params or {}).items()))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _now_ms() -> float:
    return time.monotonic() * 1000.0


# The model lane reads the clock through the module, as the general path does (tests swap _now_ms).
_MODULE = sys.modules[__name__]


_perf_ns = time.perf_counter_ns


class _CallIO:
    """The I/O of one call: two websockets and a Call, wired by callbacks.

    A frame from either socket is fed to the Call inside the socket's
    ``data_received`` (no task, no queue), and everything the Call answers
    leaves in one write per socket, in the order the Call produced it (a
    clear can never overtake the chunks before it). Sending never awaits, so
    one slow carrier only ever delays its own call: when its unread backlog
    passes ``max_backlog`` bytes the transport says so and the call ends.
    """

    __slots__ = ("app", "bad_frames_log_at", "bad_frames_quiet", "binary_carrier", "call", "done", "dropping",
                 "failure", "held", "id", "log", "pacer", "pending_bytes", "pending_realtime", "rt", "server", "ws")

    def __init__(self, server: BridgeServer, ws: WebSocket, call_id: str) -> None:
        self.server = server
        self.ws = ws
        self.id = call_id
        self.pacer: ModelLane | None = None        # its model lane, if that paces it (install_model_lane)
        self.call = server.call_class(carriers.codec(server.carrier), **server.call_options)
        self.rt: WebSocket | None = None
        # An agent's handlers run beside the call (rtfast.bridge.runner); without one, none of it exists.
        self.app = None
        if server.agent is not None:
            self.app = AgentCall(self, server.agent, getattr(ws, "app_request", None) or Request())
            first = self.app.opening_frames()
        elif server.protocol == "live":
            first = self.call.opening_frames()      # session.start waits for the carrier's start (its format)
        else:
            first = [self.call.session_update()]
        # Frames for the realtime socket until it opens, bounded (max_held
        # bytes) like a socket's unread backlog: a caller flooding while the
        # socket opens must not grow the bridge. While an agent's setup runs,
        # the caller's audio waits in `held` instead (the session must start first).
        self.pending_realtime: list = first
        self.pending_bytes = sum(map(len, first))
        self.held: list | None = None if first or self.app is None else []
        self.dropping = False               # reconnecting: nothing goes to a socket that is gone
        # Bad carrier frames: the first is logged, then a count per interval.
        self.bad_frames_quiet = 0
        self.bad_frames_log_at = 0.0
        # A bare future, not an Event: no waiter task per call (fewer objects
        # for the cyclic GC to walk at hundreds of calls).
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.failure: BaseException | None = None
        self.binary_carrier = self.call.codec.binary_media
        self.log = logging.LoggerAdapter(log, {"call": call_id})

    # -- actions in, frames out -------------------------------------------------------------------
    def act(self, a) -> None:
        if a.to_carrier and self.ws.state == OPEN:
            self.ws.send_many(a.to_carrier)
        if a.to_realtime:
            self.send_realtime(a.to_realtime)
        if a.events:
            for ev in a.events:
                self.note(ev)
            if self.app is not None:
                self.app.events(a.events)
        if a.hangup:
            self.end()

    def send_realtime(self, frames: list) -> None:
        rt = self.rt
        if self.held is not None:
            self.held.extend(frames)
            if len(self.held) > _HELD_MAX:              # a setup that takes long: keep the newest audio
                del self.held[:len(self.held) - _HELD_MAX]
        elif self.dropping:
            return
        elif rt is None:
            self.hold(frames)
        elif rt.state == OPEN:
            rt.send_many(frames)

    # -- what the agent runner asks of the I/O ----------------------------------------------------
    def session_ready(self, frames: list) -> None:
        """The agent's setup is done: the session starts, then the held audio follows."""
        held, self.held = self.held or [], None
        self.send_realtime(frames + held)

    def hold_realtime(self, dropping: bool) -> None:
        self.dropping = dropping

    async def reopen_realtime(self) -> WebSocket:
        return await self.server._open_realtime()

    def attach_realtime(self, rt: WebSocket, frames: list) -> None:
        """Carry the call on a new realtime socket (after a reconnect or a recycle)."""
        old, self.rt = self.rt, rt
        if old is not None:
            old.set_handlers(None, None)                # its close is no longer news
            old.close()
        rt.limit_backlog(self.server.max_backlog, self.backlog("realtime server"))
        rt.send_many(frames)
        rt.set_handlers(self.from_realtime, self.realtime_closed)

    def hold(self, frames: list) -> None:
        """Queue frames until the realtime socket opens (not on the hot path:
        only before it opens)."""
        if self.done.done():
            return                                   # the call is ending: nothing more to send
        self.pending_realtime.extend(frames)
        self.pending_bytes += sum(map(len, frames))
        limit = self.server.max_held
        if self.pending_bytes > limit:
            self.pending_realtime = []
            self.fail(RtfastError(f"the realtime connection is still opening and the carrier sent "
                                  f"{self.pending_bytes} bytes meanwhile (limit {limit}): call ended"))

    def backlog(self, peer: str) -> Callable[[int], None]:
        # A peer that stopped reading: end this call rather than buffer forever.
        return lambda size: self.fail(RtfastError(f"{peer} not reading: {size} bytes backed up"))

    def fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            self.log.error("call %s: %s: %s", self.id, type(exc).__name__, exc,
                           exc_info=not isinstance(exc, (OSError, RtfastError)))
        self.end()

    def end(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def note(self, ev) -> None:
        if isinstance(ev, ProtocolError):
            self.bad_frame(ev)
        elif isinstance(ev, Start):
            if ev.call_id:
                self.log.info("call %s: started (carrier call %s, %s)", self.id, ev.call_id, ev.audio_format)
        elif isinstance(ev, Dtmf):
            self.log.info("call %s: DTMF %s", self.id, ev.digit)
        elif isinstance(ev, BargeIn):
            self.log.info("call %s: barge-in: %s %s at %s ms", self.id, ev.action, ev.item_id, ev.audio_end_ms)
        elif getattr(ev, "type", None) == "error":
            code = getattr(ev.error, "code", None)
            # With server VAD the API may have cancelled the response itself by the
            # time our barge-in cancel arrives: that refusal is expected, not news.
            level = logging.DEBUG if code == "response_cancel_not_active" else logging.WARNING
            self.log.log(level, "call %s: realtime error: %s", self.id, getattr(ev.error, "message", ev))

    def bad_frame(self, ev: ProtocolError) -> None:
        # A caller sending garbage 50 times a second must not write 50 log
        # lines a second: the first one, then at most one count per interval.
        now = time.monotonic()
        if now < self.bad_frames_log_at:
            self.bad_frames_quiet += 1
            return
        if self.bad_frames_quiet:
            self.log.warning("call %s: %d more bad frames; latest: %s", self.id, self.bad_frames_quiet + 1, ev)
        else:
            self.log.warning("call %s: bad frame: %s", self.id, ev)
        self.bad_frames_quiet = 0
        self.bad_frames_log_at = now + self.server.bad_frame_log_interval

    # -- socket callbacks (run inside data_received / the pacer) ------------------------------------
    def pace(self, now: float) -> None:
        """Called by the server's pacer: let the chunks that are due leave."""
        try:
            a = self.call.tick(now)
            if a:
                self.act(a)
        except Exception as exc:               # a bug in the call logic: end this call, loudly
            self.fail(exc)

    def from_carrier(self, frame: bytes, binary: bool) -> None:
        try:
            a = self.call.from_carrier(frame, binary and self.binary_carrier, _now_ms())
            # Nearly every carrier frame is caller audio (one append) or an echoed mark
            # (nothing): those skip act()'s frame and its tests of what they never hold.
            if a.to_carrier or a.events or a.hangup:
                self.act(a)
            elif a.to_realtime:
                self.send_realtime(a.to_realtime)
        except Exception as exc:
            self.fail(exc)

    def install_lane(self) -> None:
        """Take caller audio and echoed marks off the general path (rtfast._lane),
        where the call, its codec and this I/O are the stock ones the lane mirrors."""
        if (FAST_LANE and type(self).from_carrier is _CallIO.from_carrier
                and type(self.call).from_carrier is Call.from_carrier
                and type(self.call.codec).feed is JsonCodec.feed):
            stock_marks = type(self.call)._on_mark is Call._on_mark
            self.ws.set_lane(CarrierLane(self, self.ws, self.call, OPEN, remember if stock_marks else None).run)

    def install_model_lane(self) -> None:
        """Take the model's audio and transcript deltas off the general path (rtfast._lane),
        once the realtime socket has its handlers: for the stock call, session and I/O with
        no app (an app reads every event)."""
        call, session = self.call, self.call.session
        live = type(call) is LiveCall and type(session) is LiveSession
        realtime = type(call) is Call and type(session) is RealtimeSession and session.generation == "ga"
        if (FAST_LANE and self.app is None and (live or realtime)
                and type(self).from_realtime is _CallIO.from_realtime and type(self).act is _CallIO.act):
            # Call._pump and act compiled in the lane (see ModelLane._pump_send) for the stock ones.
            stock = ((remember, _LEDGER_MAX, JsonCodec.media, JsonCodec.mark, OPEN)
                     if type(call)._pump is Call._pump else None)
            lane = ModelLane(self, self.rt, call, _MODULE, self.server._pacing, Actions, live, stock)
            self.rt.set_lane(lane.run)
            # The pacer's step for this call compiled too (rtfast._lane.pace_due), for the stock pace.
            if type(self).pace is _CallIO.pace and lane.pacer(*((LiveCall.tick, LiveCall.wake_at) if live
                                                               else (Call.tick, Call.wake_at))):
                self.pacer = lane

    def carrier_closed(self, code: int, reason: str) -> None:
        try:
            self.act(self.call.carrier_closed(_now_ms()))
        except Exception as exc:
            self.fail(exc)
        self.end()

    def from_realtime(self, frame: bytes, binary: bool) -> None:
        try:
            self.act(self.call.from_realtime(frame, _now_ms()))
        except Exception as exc:
            self.fail(exc)
        self.server._pacing.add(self)       # audio may be waiting: the pacer looks until it is not

    def realtime_closed(self, code: int, reason: str) -> None:
        if self.done.done():
            return
        if self.app is not None and self.app.realtime_lost(code, reason):
            return                                      # the agent runner reconnects
        self.log.warning("call %s: realtime connection closed: %s", self.id, ConnectionClosed(code, reason))
        self.end()

    # -- the call's life -----------------------------------------------------------------------------
    async def run(self) -> dict:
        self.ws.limit_backlog(self.server.max_backlog, self.backlog("carrier"))
        self.ws.set_handlers(self.from_carrier, self.carrier_closed)
        self.install_lane()
        try:
            # The realtime socket opens while the carrier handshake goes on (first-turn latency).
            opener = asyncio.create_task(self.server._open_realtime())
            await asyncio.wait([self.done, opener], return_when=asyncio.FIRST_COMPLETED)
            if opener.done():
                self.rt = opener.result()             # raises if the connection failed
                self.rt.limit_backlog(self.server.max_backlog, self.backlog("realtime server"))
                self.rt.send_many(self.pending_realtime)
                self.pending_realtime = []
                self.pending_bytes = 0
                self.rt.set_handlers(self.from_realtime, self.realtime_closed)
                self.install_model_lane()
                if self.app is not None:
                    self.app.started(asyncio.get_running_loop())
            else:
                opener.cancel()
                await asyncio.gather(opener, return_exceptions=True)
            await self.done
        finally:
            self.ws.close()
            if self.rt is not None:
                await self.rt.aclose()                # bounded by its close timeout
            await self.ws.wait_closed()
            if self.bad_frames_quiet:
                self.log.warning("call %s: %d more bad frames (not logged one by one)", self.id, self.bad_frames_quiet)
        summary = self.call.summary()
        if self.failure is not None:
            summary["error"] = f"{type(self.failure).__name__}: {self.failure}"
        if self.app is not None:
            await self.app.finish(summary)
        return summary


class BridgeServer:
    """Carrier websockets on ``host:port``, one Realtime connection per call.

    ``realtime_url``: a Realtime-compatible websocket URL; without it, OpenAI
    (``OPENAI_API_KEY``, ``model``). ``call_options`` go to
    :class:`rtfast.bridge.Call` (``mode``, ``instructions``, ``voice``, ``vad``,
    ``lead_ms``...). ``protocol="live"``: calls run on GPT-Live instead
    (``realtime_url`` is then a ``/v1/live/sessions`` URL, ``model`` goes into
    ``session.start``, default ``gpt-live-1``); each call is a
    :class:`rtfast.bridge.livecall.LiveCall` (``silence_ms`` among its options,
    no ``vad``), and ``agent`` is refused. ``twilio_auth_token``: check each upgrade's
    ``X-Twilio-Signature`` against ``public_url`` (the URL Twilio was given),
    refusing a mismatch with HTTP 403; without ``public_url`` it is a
    ``ValueError``, unless ``trust_host_header=True`` says to sign the URL
    built from each request's ``Host`` header (which the client chooses: only
    behind a proxy that sets it). ``gc_freeze``: at start, move the
    objects that exist so far out of the cyclic collector's reach
    (``gc.freeze()``), so its full collections, which pause every call at
    once, walk only call state.

    ``summaries`` keeps the last ``summaries_kept`` per-call summaries (a
    bridge running for weeks keeps its memory flat); ``on_summary(summary)``,
    when given, receives every one as its call ends. ``realtime_open_timeout``
    bounds the opening of each call's realtime connection (seconds); what the
    carrier sends meanwhile is held up to ``max_held`` bytes.

    Operations (rtfast.bridge.ops): plain HTTP ``GET /healthz``, ``/readyz``
    and ``/metrics`` answer on the same port; ``max_calls`` caps the calls
    admitted at once (beyond it an upgrade gets HTTP 503); :meth:`drain`
    stops accepting and waits for the calls in progress to end.

    One of several processes on one port (``rtfast bridge --workers``, see
    rtfast.bridge.workers): ``reuse_port=True`` binds with ``SO_REUSEPORT``,
    ``sock`` accepts on a listening socket shared with the others, and
    ``group`` (a :class:`rtfast.bridge.workers.Group` the worker has joined)
    makes ``max_calls`` count the group's calls and ``/metrics`` report the
    whole group.
    """

    def __init__(self, *, carrier: str = "twilio", host: str = "127.0.0.1", port: int = 0,
                 realtime_url: str | None = None, api_key: str | None = None, model: str | None = None,
                 generation: str = "ga", twilio_auth_token: str | None = None, public_url: str | None = None,
                 trust_host_header: bool = False, gc_freeze: bool = True, summaries_kept: int = 1000,
                 on_summary: Callable[[dict], Any] | None = None, realtime_open_timeout: float = 10.0,
                 agent: Agent | None = None, control: Any = "env", max_calls: int | None = None,
                 reuse_port: bool = False, sock=None, group=None, protocol: str = "realtime",
                 **call_options: Any) -> None:
        carriers.codec(carrier)   # fail early on an unknown carrier
        if protocol not in ("realtime", "live"):
            raise ValueError(f"protocol must be 'realtime' or 'live', not {protocol!r}")
        if protocol == "live" and agent is not None:
            # The agent runner drives Realtime's conversation (tool outputs, response.create, the
            # replay after a reconnect); GPT-Live has none of them (delegation instead).
            raise ValueError("agents (--app, --record) run on protocol='realtime' only; protocol='live' "
                             "bridges calls without one")
        if twilio_auth_token and not public_url and not trust_host_header:
            # The signed URL would come from the Host header, which whoever connects picks.
            raise ValueError("twilio_auth_token needs public_url, the wss:// URL Twilio connects to "
                             "(or trust_host_header=True to build it from each request's Host header)")
        self.carrier = carrier
        self.host, self.port = host, port
        self.reuse_port, self._sock, self.group = reuse_port, sock, group
        self._publisher: asyncio.TimerHandle | None = None
        self.protocol = protocol
        if model is None:
            model = "gpt-live-1" if protocol == "live" else "gpt-realtime"
        self.realtime_url, self.model, self.generation = realtime_url, model, generation
        self._api_key = api_key
        self._twilio_token = twilio_auth_token
        self.public_url = public_url
        if protocol == "live":
            # GPT-Live names its model in session.start, which the call builds
            self.call_class = LiveCall
            self.call_options = {"model": model, **call_options}
        else:
            self.call_class = Call
            self.call_options = {"generation": generation, **call_options}
        self.active: dict[str, _CallIO] = {}
        self._pacing: set[_CallIO] = set()       # calls that may have outbound audio waiting
        #: The last ``summaries_kept`` call summaries, oldest first.
        self.summaries: deque[dict] = deque(maxlen=summaries_kept)
        self.on_summary = on_summary
        self.realtime_open_timeout = realtime_open_timeout
        #: Seconds between two log lines about one call's bad carrier frames.
        self.bad_frame_log_interval = 10.0
        self._ids = itertools.count(1)
        # Call ids stay unique across a group's workers: call-2.17 is worker 2's 17th.
        self._id_prefix = f"call-{group.index}." if group is not None else "call-"
        self._server = None
        self._pacer: asyncio.Task | None = None
        self.tick_ms = 10
        #: Bytes a peer may leave unread before its call is ended (~10 s of Twilio audio and marks).
        self.max_backlog = 256 * 1024
        #: Bytes of frames held for a realtime socket still opening (~19 s of a
        #: Twilio caller's appends; an open takes well under a second normally).
        self.max_held = 256 * 1024
        #: Seconds between keepalive pings on both sockets (a peer that does not answer ends the call).
        self.ping_interval = 20.0
        self.gc_freeze = gc_freeze
        self.agent = agent
        if agent is not None and agent.config.mode is not None:
            self.call_options.setdefault("mode", agent.config.mode)
        if control == "env":
            # Hang-up and transfer through the carrier's REST API, when its credentials are set.
            from rtfast.bridge.control import control_for

            control = control_for(carrier) if agent is not None else None
        self.control = control
        # Upgraded connections whose call has not started yet: they hold a place against max_calls.
        self._admitting: set = set()
        self.ops = Ops(max_calls=max_calls, live=self.active.values,
                       admitted=lambda: len(self.active) + len(self._admitting), group=group)
        self._idle: asyncio.Future | None = None      # resolved when a drain's last call ends
        self._stopped: asyncio.Future | None = None   # resolved by close(): serve_forever returns
        self._closing = False
        self._refused_quiet, self._refused_log_at = 0, 0.0
        self._sample_queue: list = []     # calls in turn for the frame-time sample, newest last

    @property
    def draining(self) -> bool:
        return self.ops.draining

    def __repr__(self) -> str:
        return f"<BridgeServer {self.carrier} {getattr(self, 'url', '')}>"

    def _realtime(self) -> ConnectionManager:
        if self.protocol == "live":
            from rtfast.live import client as live

            if self.realtime_url:
                return live.connect(self.realtime_url, api_key=self._api_key or "sk-local")
            return AsyncOpenAI(api_key=self._api_key).live.connect()
        if self.realtime_url:
            return connect(self.realtime_url, api_key=self._api_key or "sk-local", generation=self.generation)
        client = AsyncOpenAI(api_key=self._api_key)
        realtime = client.realtime if self.generation == "ga" else client.beta.realtime
        return realtime.connect(model=self.model)

    async def _open_realtime(self) -> WebSocket:
        # The client builds the URL, credentials and proxy; the bridge's own
        # transport carries the bytes (see rtfast.websocket for why).
        url, headers, proxy = await self._realtime().target()
        # MAX_MESSAGE (64 MiB): above any event the API sends a call (an hour of G.711
        # is 38 MB of base64), yet a broken peer cannot make one call take unbounded memory.
        return await websocket.connect(url, headers=headers, proxy=proxy, max_size=MAX_MESSAGE, close_timeout=2,
                                       open_timeout=self.realtime_open_timeout, ping_interval=self.ping_interval,
                                       logger=ws_log, keep_handshake=False)

    def _check_request(self, connection, request):
        path = request.path.partition("?")[0]
        if path in OPS_PATHS:
            return self.ops.answer(path)              # plain HTTP on the carrier port: probes, scrapes
        if self.agent is not None:
            # The handshake is dropped once open; the agent's setup still wants the request.
            path, _, qs = request.path.partition("?")
            connection.app_request = Request(path, {k: v[0] for k, v in parse_qs(qs).items()}, request.headers,
                                             connection.remote_address)
        if self._twilio_token is None:
            return self._admit(connection)
        # Twilio signs the exact URL it was given for the stream.
        url = self.public_url or f"wss://{request.headers.get('Host', '')}{request.path}"
        given = request.headers.get_all("X-Twilio-Signature")
        # Compared as bytes: a forged header may hold any Latin-1 text, or come twice.
        if len(given) != 1 or not hmac.compare_digest(given[0].encode("utf-8", "replace"),
                                                      twilio_signature(self._twilio_token, url).encode()):
            log.warning("refused a carrier connection: bad X-Twilio-Signature for %s", request.path.split("?")[0])
            return Response(403, "Forbidden", Headers([("Content-Type", "text/plain")]), b"bad signature\n")
        return self._admit(connection)

    def _admit(self, connection):
        why = self.ops.admit()
        if why is not None:
            # A carrier retrying hard at the limit must not flood the log: a line per interval.
            self._refused_quiet += 1
            now = time.monotonic()
            if now >= self._refused_log_at:
                log.warning("refused %d carrier connection%s with 503: %s", self._refused_quiet,
                            "s" if self._refused_quiet > 1 else "", why)
                self._refused_quiet = 0
                self._refused_log_at = now + self.bad_frame_log_interval
            return self.ops.refuse(why)
        # Holds a place from now until its call starts (or the handshake fails).
        self._admitting.add(connection)
        connection.closed.add_done_callback(lambda _: self._left(connection))
        return None

    def _left(self, connection) -> None:
        self._admitting.discard(connection)
        self.ops.calls_changed()
        self._maybe_idle()

    def _maybe_idle(self) -> None:
        if self._idle is not None and not self._idle.done() and not self.active and not self._admitting:
            self._idle.set_result(None)

    async def _handle(self, ws) -> None:
        call_id = f"{self._id_prefix}{next(self._ids)}"
        io = _CallIO(self, ws, call_id)
        self.active[call_id] = io
        self._admitting.discard(ws)
        self.ops.calls_changed()
        how = None
        io.log.info("call %s: carrier connected from %s", call_id, ws.remote_address[0] if ws.remote_address else "?")
        try:
            summary = await io.run()
        except Exception as exc:                      # the realtime connection could not be opened
            io.log.error("call %s: realtime connection failed: %s: %s", call_id, type(exc).__name__, exc)
            summary = io.call.summary()
            summary["error"] = f"{type(exc).__name__}: {exc}"
            how = "realtime_failed"
        finally:
            del self.active[call_id]
            self._pacing.discard(io)
            if how is None:
                # How it ended, for rtfast_calls_total: the server closing cuts it
                # (the carrier then sees its socket close, which is not the caller's doing).
                how = ("shutdown" if self._closing else "error" if io.failure is not None else io.call.ended or
                       ("application" if io.app is not None and io.app.closing else "realtime_closed"))
            self.ops.call_ended(io, how)
            self.ops.calls_changed()
            self._maybe_idle()
        summary["call"] = call_id
        self.summaries.append(summary)
        # duration_ms is the call's whole duration; audio each way is what was
        # carried (keys from Call.summary(); .get: older summaries lack them).
        io.log.info("call %s: summary: %.1f s, audio %.1f s from carrier, %.1f s to carrier; "
                    "%s frames from carrier, %s to carrier, %s from realtime, %s to realtime, "
                    "%s barge-ins, %s errors", call_id, summary.get("duration_ms", 0) / 1000,
                    summary.get("audio_ms_from_carrier", 0) / 1000, summary.get("audio_ms_to_carrier", 0) / 1000,
                    summary["frames_from_carrier"], summary["frames_to_carrier"], summary["frames_from_realtime"],
                    summary["frames_to_realtime"], summary["barge_ins"], summary["errors"])
        if self.on_summary is not None:
            try:
                self.on_summary(summary)
            except Exception:
                io.log.exception("call %s: on_summary callback failed", call_id)

    async def _pace(self) -> None:
        """One timer for every call: each tick lets the chunks that are due leave.

        Calls hand out 20 ms chunks a little ahead of real time, so a shared
        tick per chunk period keeps them fed; a timer per call would cost
        more than the work it schedules. Only calls with audio waiting are
        looked at (a call joins when the model speaks, leaves when drained).
        """
        period = self.tick_ms / 1000.0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += period
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            now = _now_ms()
            if loop.time() > next_at + period:
                self._late(now)
            self._sample_frame()
            self._pace_due(now)
            if loop.time() > next_at + period:           # fell behind (a stall): do not burst to catch up
                next_at = loop.time()

    def _pace_due(self, now: float) -> None:
        """One tick's work: each call with audio waiting sends what is due by ``now``
        (ms); a call with none left leaves the set until the model speaks again."""
        pace_due(self._pacing, now)         # compiled (rtfast._lane), this loop:
        # for io in list(pacing):
        #     due = io.call.wake_at(now)
        #     if due is None: pacing.discard(io)
        #     elif due <= now: io.pace(now)

    def _sample_frame(self) -> None:
        """Time the next carrier frame of one call (a call in turn, once per tick).

        The call's handler is swapped for a timing one that swaps itself back,
        so the frames not sampled run exactly as before: no test per frame."""
        queue = self._sample_queue
        if not queue:
            if not self.active:
                return
            queue.extend(self.active.values())        # a pass over the calls, one per tick
        io = queue.pop()
        ws, plain = io.ws, io.from_carrier
        if ws.state != OPEN or ws.on_message != plain:
            return                                      # ended, or not started: skip it
        observe = self.ops.frame_times.observe
        lane = ws.lane

        def restore() -> None:
            ws.on_message = plain                       # (which drops the timing lane)
            if lane is not None:
                ws.set_lane(lane)

        def timed(frame, binary) -> None:
            restore()
            t0 = _perf_ns()
            plain(frame, binary)
            observe(_perf_ns() - t0)

        def timed_lane(frames: list) -> int:
            # The fast lane took the frame: time it there (per frame, if a read held several).
            t0 = _perf_ns()
            taken = lane(frames)
            if taken:
                restore()
                observe((_perf_ns() - t0) // taken)
            return taken

        ws.on_message = timed
        if lane is not None:
            ws.set_lane(timed_lane)

    def _late(self, now: float) -> None:
        # The pacer woke more than a tick late (a stall: GC, a slow handler, CPU
        # starved). Rare, so here it can afford to look at each call with audio
        # waiting: one whose playback already ran dry is an underrun the caller hears.
        ops = self.ops
        ops.pacer_stalls += 1
        for io in self._pacing:
            call = io.call
            if call.playing_until > float("-inf") and call.playing_until < now \
                    and call.buffered_ms >= max(call.chunk_ms, call.startup_buffer_ms):
                ops.underruns += 1

    async def start(self) -> BridgeServer:
        # Built now, not at the first scrape: importing prometheus_client takes
        # ~70 ms, which would stall every call in progress once.
        self.ops.registry()
        if self.gc_freeze:
            # Everything that exists at start-up (modules, classes, caches) lives as
            # long as the process: keep the cyclic collector from walking it again.
            # Otherwise each full collection pauses every call at once (40-60 ms
            # at 300 calls here), which callers hear as a gap.
            gc.collect()
            gc.freeze()
        self._server = await websocket.serve(self._handle, self.host, self.port,
                                             process_request=self._check_request, max_size=1 << 20,
                                             ping_interval=self.ping_interval, logger=ws_log,
                                             keep_handshake=False, reuse_port=self.reuse_port, sock=self._sock)
        self._pacer = asyncio.create_task(self._pace())
        if self.group is not None:
            self._publish()
        self._stopped = asyncio.get_running_loop().create_future()
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://{self.host}:{self.port}/"
        return self

    async def drain(self, timeout: float | None = None) -> bool:
        """Stop taking calls and wait for those in progress to end.

        At once: ``/readyz`` answers 503 and the listening socket closes (new
        connections are refused; an upgrade already on its way gets 503).
        Returns True when the last call ended, False when ``timeout`` seconds
        passed first (the calls still in progress are left to :meth:`close`).
        """
        self.ops.draining = True
        if self._server is not None and self._server.server is not None:
            self._server.server.close()           # stop listening; accepted connections go on
        loop = asyncio.get_running_loop()
        if self._idle is None or self._idle.done():
            self._idle = loop.create_future()
        self._maybe_idle()
        log.info("draining: %d calls in progress, waiting up to %s s", len(self.active),
                 "forever" if timeout is None else f"{timeout:g}")
        deadline = None if timeout is None else loop.time() + timeout
        try:
            await asyncio.wait_for(asyncio.shield(self._idle), timeout)
            # Connections accepted just before the drain and still sending their
            # request (a probe; an upgrade, which gets 503 now) are answered
            # before the process may go: each is bounded by the handshake timeout.
            while self._server is not None and self._server._handshaking:
                if deadline is not None and loop.time() >= deadline:
                    raise asyncio.TimeoutError
                await asyncio.sleep(0.02)
        except asyncio.TimeoutError:                 # builtin TimeoutError from 3.11 on
            log.warning("drain timeout: %d calls still in progress", len(self.active))
            return False
        log.info("drained: no call in progress")
        return True

    def _publish(self) -> None:
        # Once a second, not per call or frame: a scrape answered by another
        # worker sees this one's counters at most a second old.
        self.ops.publish()
        self._publisher = asyncio.get_running_loop().call_later(1.0, self._publish)

    async def close(self) -> None:
        self._closing = True                        # the calls still in progress are cut
        if self._publisher is not None:
            self._publisher.cancel()
            self._publisher = None
        if self.control is not None:
            await self.control.aclose()
        if self._pacer is not None:
            self._pacer.cancel()
            await asyncio.gather(self._pacer, return_exceptions=True)
            self._pacer = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self.group is not None:
            self.ops.publish()      # the last word, calls cut included: what the parent keeps once this worker exits
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    async def __aenter__(self) -> BridgeServer:
        return await self.start()

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        """Until :meth:`close` (a drain stops listening, not this)."""
        await asyncio.shield(self._stopped)


BRIDGE_DESCRIPTION = """\
Run a carrier <-> Realtime bridge until interrupted: each carrier media-stream
websocket (one per phone call) gets its own Realtime connection. Calls go to
OpenAI when OPENAI_API_KEY is set, to --realtime-url when given, else (or with
--local) to an embedded local server."""


def build_parser():
    import argparse

    from rtfast._cliutil import HelpFormatter

    parser = argparse.ArgumentParser(prog="rtfast bridge", description=BRIDGE_DESCRIPTION,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--carrier", default="twilio", choices=sorted(carriers.CODECS),
                        help="whose media streams connect: it fixes the frame format and audio codec")
    parser.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                        help="where carrier websockets connect (put TLS in front of it for the carrier)")
    parser.add_argument("--realtime-url", metavar="URL",
                        help="a Realtime-compatible ws:// or wss:// URL to send calls to instead of OpenAI "
                        "(with --protocol live: a GPT-Live one, .../v1/live/sessions)")
    parser.add_argument("--local", action="store_true",
                        help="send calls to an embedded local server even when OPENAI_API_KEY is set")
    parser.add_argument("--protocol", default="realtime", choices=["realtime", "live"],
                        help="the model's protocol: realtime (/v1/realtime) or live (GPT-Live, /v1/live/sessions; "
                        "the model owns turn-taking and barge-in; no --app or --record)")
    parser.add_argument("--model", help="the model for each call (default: gpt-realtime, or gpt-live-1 with "
                        "--protocol live)")
    parser.add_argument("--mode", default="passthrough", choices=["passthrough", "transcode"],
                        help="passthrough: G.711 to the model untouched when the carrier sends it; "
                        "transcode: PCM16 24 kHz to the model (PCM16 carriers always transcode)")
    parser.add_argument("--instructions", default="You are a helpful phone agent. Be brief.",
                        help="the model's instructions for every call")
    parser.add_argument("--voice", metavar="VOICE",
                        help="the model's voice (alloy, ash, ballad, coral, echo, sage, shimmer, verse, "
                        "marin, cedar); default: the API's")
    parser.add_argument("--twilio-auth-token", metavar="TOKEN",
                        help="check each Twilio connection's X-Twilio-Signature with this token "
                        "(default: $TWILIO_AUTH_TOKEN when --carrier twilio); needs --public-url")
    parser.add_argument("--public-url", metavar="URL",
                        help="the wss:// URL Twilio connects to, exactly as in the TwiML: the signature covers it")
    parser.add_argument("--trust-host-header", action="store_true",
                        help="check signatures without --public-url, against a URL built from each request's "
                        "Host header; whoever connects chooses that header, so only behind a proxy that sets it")
    parser.add_argument("--app", metavar="MODULE:OBJECT",
                        help="your phone agent: an rtfast.bridge.Agent (or a function returning one) in an "
                        "importable module or a .py file, e.g. myagent:agent or examples/phone_agent.py:agent")
    parser.add_argument("--record", metavar="DIR",
                        help="write a stereo WAV and a JSONL transcript of every call here (needs no --app)")
    ops = parser.add_argument_group("operations", "GET /healthz, /readyz and /metrics answer plain HTTP on the "
                                    "--listen port (see docs/deploying.md)")
    ops.add_argument("--workers", type=_positive_int, metavar="N",
                     help="processes accepting on the --listen port, each with its own event loop "
                     f"(SO_REUSEPORT on Linux); a dead one is restarted (default: one per core available, "
                     f"{available_cores()} here)")
    ops.add_argument("--max-calls", type=_positive_int, metavar="N",
                     help="calls at once, across the workers; beyond it the upgrade is refused with HTTP 503 "
                     "and /readyz answers 503 (default: no limit)")
    ops.add_argument("--drain-timeout", type=float, default=3600.0, metavar="SECONDS",
                     help="on SIGTERM: stop taking calls, let those in progress finish, and exit when the last "
                     "ends or after this long; a second SIGTERM or a SIGINT ends at once")
    ops.add_argument("--log-format", choices=["human", "json"], default="human",
                     help="json: one object per line (time, level, logger, message, call)")
    return parser


def _positive_int(text: str) -> int:
    import argparse

    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"wants a whole number of calls, at least 1, not {text!r}")
    return n


def _setup_logging(log_format: str) -> None:
    from rtfast.bridge.ops import JsonFormatter, quiet_probes

    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(quiet_probes)         # a probe every few seconds is not news
    logging.basicConfig(level=logging.INFO, handlers=[handler])


async def serve_until_signalled(server: BridgeServer, drain_timeout: float | None) -> str:
    """Serve until a signal: SIGTERM drains (then returns), a second SIGTERM or a
    SIGINT returns at once. Returns what ended it ("drained", "drain timeout",
    "SIGINT", "SIGTERM"); the caller closes the server (cutting what remains)."""
    loop = asyncio.get_running_loop()
    stop: asyncio.Future = loop.create_future()
    drainer: list = []

    def drained(task: asyncio.Task) -> None:
        if not stop.done() and not task.cancelled():
            stop.set_result("drained" if task.result() else "drain timeout")

    def on_signal(name: str) -> None:
        if stop.done():
            return
        if name == "SIGTERM" and not drainer:
            log.info("SIGTERM: draining (%d calls in progress); a second SIGTERM or SIGINT ends at once",
                     len(server.active))
            task = loop.create_task(server.drain(drain_timeout))
            task.add_done_callback(drained)
            drainer.append(task)
        else:
            stop.set_result(name)

    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):      # not on this platform: SIGINT stays KeyboardInterrupt
            pass
    try:
        return await stop
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        for task in drainer:
            task.cancel()


def load_agent(spec: str) -> Agent:
    """The Agent named by ``MODULE:OBJECT`` (or ``path/to/file.py:OBJECT``), as
    ``rtfast bridge --app`` takes it. Raises ValueError saying what is wrong."""
    import importlib
    import importlib.util

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--app wants MODULE:OBJECT (e.g. myagent:agent), not {spec!r}")
    try:
        if module_name.endswith(".py"):
            if not os.path.isfile(module_name):
                raise ValueError(f"--app: no file {module_name!r}")
            name = os.path.splitext(os.path.basename(module_name))[0]
            sys.path.insert(0, os.path.dirname(os.path.abspath(module_name)))
            loaded = importlib.util.spec_from_file_location(name, module_name)
            module = importlib.util.module_from_spec(loaded)
            sys.modules[name] = module
            loaded.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())     # as `python -m` would: the user's own modules
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--app: cannot import {module_name!r}: {exc}") from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"--app: {module_name!r} has no {attr!r}") from None
    if not isinstance(obj, Agent) and callable(obj):
        obj = obj()
    if not isinstance(obj, Agent):
        raise ValueError(f"--app: {spec} is a {type(obj).__name__}, not an rtfast.bridge.Agent")
    return obj


def main(argv: list[str] | None = None) -> int:
    """``rtfast bridge``: run a carrier <-> Realtime bridge until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit():
        parser.error(f"--listen wants HOST:PORT, not {args.listen!r}")
    if args.local and args.realtime_url:
        parser.error("--local and --realtime-url both say where calls go: give one")
    token = args.twilio_auth_token
    if token is None and args.carrier == "twilio":
        token = os.environ.get("TWILIO_AUTH_TOKEN") or None
    if token and args.carrier != "twilio":
        parser.error(f"--twilio-auth-token checks Twilio's signature; the carrier is {args.carrier}")
    if token and not args.public_url and not args.trust_host_header:
        # Refuse before listening: a check against the Host header is one an attacker can pass.
        parser.error("a Twilio auth token (--twilio-auth-token or TWILIO_AUTH_TOKEN) needs --public-url, "
                     "the wss:// URL Twilio connects to (--trust-host-header: build it from the Host header)")
    if args.protocol == "live" and (args.app or args.record):
        parser.error("--app and --record run on --protocol realtime only (the agent layer drives Realtime's "
                     "conversation: tool outputs, response.create, the replay after a reconnect)")
    agent = None
    if args.app:
        try:
            agent = load_agent(args.app)
        except ValueError as exc:
            parser.error(str(exc))
    if args.record:
        agent = agent or Agent(args.instructions)
        agent.record = args.record
    _setup_logging(args.log_format)
    logging.getLogger("websockets.server").setLevel(logging.WARNING)   # the embedded server's chatter

    workers = args.workers or available_cores()
    if workers == 1:
        return _run_one(args, host, int(port), token, agent)
    # A group: the parent binds the port (a port in use fails here, once), then forks.
    group = Group(workers, args.max_calls)
    supervisor = Supervisor(workers, functools.partial(_worker, args, host, token, agent), host=host,
                            port=int(port), group=group)
    try:
        supervisor.bind()
    except OSError as exc:
        from rtfast._cliutil import listen_failed

        return listen_failed("rtfast bridge", host, int(port), exc, "--listen")
    if args.realtime_url is None and (args.local or not os.environ.get("OPENAI_API_KEY")):
        print(f"{_embedded_why(args)}: calls go to the embedded realtime server (one in each worker)", flush=True)
    return supervisor.run()


def _embedded_why(args) -> str:
    return "--local" if args.local else "no OPENAI_API_KEY"


def _worker(args, host: str, token, agent, index: int, group, listener, ready, port: int) -> int:
    """One worker of ``--workers N`` (in its own process)."""
    from rtfast.bridge.ops import JsonFormatter

    for handler in logging.getLogger().handlers:
        handler.addFilter(_WorkerTag(index))
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s [w%(worker)s] %(levelname)s %(message)s"))
    return _run_one(args, host, port, token, agent, reuse_port=listener is None, sock=listener,
                    group=group, ready=ready)


class _WorkerTag(logging.Filter):
    """Says which worker wrote a log line (``worker`` in JSON lines, ``[wN]`` in human ones)."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.index
        return True


def _run_one(args, host: str, port: int, token, agent, *, reuse_port: bool = False, sock=None, group=None,
             ready=None) -> int:
    """Run one bridge process (the whole bridge, or one worker of a group) until a signal ends it."""

    async def run() -> None:
        embedded = None
        url = args.realtime_url
        if url is None and (args.local or not os.environ.get("OPENAI_API_KEY")):
            from rtfast.server import RealtimeServer

            embedded = await RealtimeServer(require_auth=False).start()
            url = embedded.live_url if args.protocol == "live" else embedded.url
            if group is None:             # a group's parent says it once
                print(f"{_embedded_why(args)}: calls go to the embedded realtime server at {url}", flush=True)
        try:
            server = BridgeServer(carrier=args.carrier, host=host, port=port, realtime_url=url,
                                  model=args.model, mode=args.mode, instructions=args.instructions,
                                  voice=args.voice, twilio_auth_token=token, public_url=args.public_url,
                                  trust_host_header=args.trust_host_header, agent=agent, max_calls=args.max_calls,
                                  reuse_port=reuse_port, sock=sock, group=group, protocol=args.protocol)
            async with server:
                if ready is not None:
                    ready.set()                 # the parent says "listening" once every worker is
                else:
                    print(f"rtfast bridge ({args.carrier}) listening on {server.url}", flush=True)
                how = await serve_until_signalled(server, args.drain_timeout)
                if server.active:
                    log.warning("%s: ending %d calls in progress", how, len(server.active))
        finally:
            if embedded is not None:
                await embedded.close()

    try:
        import uvloop  # optional: a faster event loop when installed
    except ImportError:
        uvloop = None
    try:
        if uvloop is not None:
            uvloop.run(run())
        else:
            asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as exc:          # the port is taken, or not ours to use: one line, not a traceback
        from rtfast._cliutil import listen_failed

        return listen_failed("rtfast bridge", host, port, exc, "--listen")
    return 0
