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
import gc
import hashlib
import hmac
import itertools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Response

from rtfast import carriers
from rtfast.bridge import BargeIn, Call
from rtfast.carriers import Dtmf, Start
from rtfast.client import AsyncOpenAI, ConnectionManager, connect, ws_log
from rtfast.errors import ConnectionClosed, ProtocolError, RtfastError
from rtfast.websocket import OPEN, WebSocket
from rtfast import websocket

__all__ = ["BridgeServer", "twilio_signature", "main"]

log = logging.getLogger("rtfast.bridge")


def twilio_signature(auth_token: str, url: str, params: dict[str, str] | None = None) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by the
    POST parameters sorted by name (none for a websocket upgrade)."""
    data = url + "".join(k + v for k, v in sorted((params or {}).items()))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class _CallIO:
    """The I/O of one call: two websockets and a Call, wired by callbacks.

    A frame from either socket is fed to the Call inside the socket's
    ``data_received`` (no task, no queue), and everything the Call answers
    leaves in one write per socket, in the order the Call produced it (a
    clear can never overtake the chunks before it). Sending never awaits, so
    one slow carrier only ever delays its own call: when its unread backlog
    passes ``max_backlog`` bytes the transport says so and the call ends.
    """

    def __init__(self, server: BridgeServer, ws: WebSocket, call_id: str) -> None:
        self.server = server
        self.ws = ws
        self.id = call_id
        self.call = Call(carriers.codec(server.carrier), **server.call_options)
        self.rt: WebSocket | None = None
        self.pending_realtime: list = [self.call.session_update()]   # until the socket opens
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
            rt = self.rt
            if rt is None:
                self.pending_realtime.extend(a.to_realtime)
            elif rt.state == OPEN:
                rt.send_many(a.to_realtime)
        for ev in a.events:
            self.note(ev)
        if a.hangup:
            self.end()

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
            self.log.warning("call %s: bad frame: %s", self.id, ev)
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
            self.act(self.call.from_carrier(frame, binary and self.binary_carrier, _now_ms()))
        except Exception as exc:
            self.fail(exc)

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
        if not self.done.done():
            self.log.warning("call %s: realtime connection closed: %s", self.id, ConnectionClosed(code, reason))
        self.end()

    # -- the call's life -----------------------------------------------------------------------------
    async def run(self) -> dict:
        self.ws.limit_backlog(self.server.max_backlog, self.backlog("carrier"))
        self.ws.set_handlers(self.from_carrier, self.carrier_closed)
        try:
            # The realtime socket opens while the carrier handshake goes on (first-turn latency).
            opener = asyncio.create_task(self.server._open_realtime())
            await asyncio.wait([self.done, opener], return_when=asyncio.FIRST_COMPLETED)
            if opener.done():
                self.rt = opener.result()             # raises if the connection failed
                self.rt.limit_backlog(self.server.max_backlog, self.backlog("realtime server"))
                self.rt.send_many(self.pending_realtime)
                self.pending_realtime = []
                self.rt.set_handlers(self.from_realtime, self.realtime_closed)
            else:
                opener.cancel()
                await asyncio.gather(opener, return_exceptions=True)
            await self.done
        finally:
            self.ws.close()
            if self.rt is not None:
                await self.rt.aclose()                # bounded by its close timeout
            await self.ws.wait_closed()
        summary = self.call.summary()
        if self.failure is not None:
            summary["error"] = f"{type(self.failure).__name__}: {self.failure}"
        return summary


class BridgeServer:
    """Carrier websockets on ``host:port``, one Realtime connection per call.

    ``realtime_url``: a Realtime-compatible websocket URL; without it, OpenAI
    (``OPENAI_API_KEY``, ``model``). ``call_options`` go to
    :class:`rtfast.bridge.Call` (``mode``, ``instructions``, ``voice``, ``vad``,
    ``lead_ms``...). ``twilio_auth_token``: check each upgrade's
    ``X-Twilio-Signature`` against ``public_url`` (the URL Twilio was given),
    refusing a mismatch with HTTP 403. ``gc_freeze``: at start, move the
    objects that exist so far out of the cyclic collector's reach
    (``gc.freeze()``), so its full collections, which pause every call at
    once, walk only call state.
    """

    def __init__(self, *, carrier: str = "twilio", host: str = "127.0.0.1", port: int = 0,
                 realtime_url: str | None = None, api_key: str | None = None, model: str = "gpt-realtime",
                 generation: str = "ga", twilio_auth_token: str | None = None, public_url: str | None = None,
                 gc_freeze: bool = True, **call_options: Any) -> None:
        carriers.codec(carrier)   # fail early on an unknown carrier
        self.carrier = carrier
        self.host, self.port = host, port
        self.realtime_url, self.model, self.generation = realtime_url, model, generation
        self._api_key = api_key
        self._twilio_token = twilio_auth_token
        self.public_url = public_url
        self.call_options = {"generation": generation, **call_options}
        self.active: dict[str, _CallIO] = {}
        self._pacing: set[_CallIO] = set()       # calls that may have outbound audio waiting
        self.summaries: list[dict] = []
        self._ids = itertools.count(1)
        self._server = None
        self._pacer: asyncio.Task | None = None
        self.tick_ms = 10
        #: Bytes a peer may leave unread before its call is ended (~10 s of Twilio audio and marks).
        self.max_backlog = 256 * 1024
        #: Seconds between keepalive pings on both sockets (a peer that does not answer ends the call).
        self.ping_interval = 20.0
        self.gc_freeze = gc_freeze

    def __repr__(self) -> str:
        return f"<BridgeServer {self.carrier} {getattr(self, 'url', '')}>"

    def _realtime(self) -> ConnectionManager:
        if self.realtime_url:
            return connect(self.realtime_url, api_key=self._api_key or "sk-local", generation=self.generation)
        client = AsyncOpenAI(api_key=self._api_key)
        realtime = client.realtime if self.generation == "ga" else client.beta.realtime
        return realtime.connect(model=self.model)

    async def _open_realtime(self) -> WebSocket:
        # The client builds the URL, credentials and proxy; the bridge's own
        # transport carries the bytes (see rtfast.websocket for why).
        url, headers, proxy = await self._realtime().target()
        # 64 MiB: above any event the API sends a call (an hour of G.711 is 38 MB
        # of base64), yet a broken peer cannot make one call take unbounded memory.
        return await websocket.connect(url, headers=headers, proxy=proxy, max_size=64 << 20, close_timeout=2,
                                       ping_interval=self.ping_interval, logger=ws_log, keep_handshake=False)

    def _check_request(self, connection, request):
        if self._twilio_token is None:
            return None
        # Twilio signs the exact URL it was given for the stream.
        url = self.public_url or f"wss://{request.headers.get('Host', '')}{request.path}"
        given = request.headers.get_all("X-Twilio-Signature")
        # Compared as bytes: a forged header may hold any Latin-1 text, or come twice.
        if len(given) != 1 or not hmac.compare_digest(given[0].encode("utf-8", "replace"),
                                                      twilio_signature(self._twilio_token, url).encode()):
            log.warning("refused a carrier connection: bad X-Twilio-Signature for %s", request.path.split("?")[0])
            return Response(403, "Forbidden", Headers([("Content-Type", "text/plain")]), b"bad signature\n")
        return None

    async def _handle(self, ws) -> None:
        call_id = f"call-{next(self._ids)}"
        io = _CallIO(self, ws, call_id)
        self.active[call_id] = io
        io.log.info("call %s: carrier connected from %s", call_id, ws.remote_address[0] if ws.remote_address else "?")
        try:
            summary = await io.run()
        except Exception as exc:                      # the realtime connection could not be opened
            io.log.error("call %s: realtime connection failed: %s: %s", call_id, type(exc).__name__, exc)
            summary = io.call.summary()
            summary["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            del self.active[call_id]
            self._pacing.discard(io)
        summary["call"] = call_id
        self.summaries.append(summary)
        io.log.info("call %s: summary: %s frames from carrier, %s to carrier, %s from realtime, %s to realtime, "
                    "%s barge-ins, %s errors, %.1f s", call_id, summary["frames_from_carrier"],
                    summary["frames_to_carrier"], summary["frames_from_realtime"], summary["frames_to_realtime"],
                    summary["barge_ins"], summary["errors"], summary["duration_ms"] / 1000)

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
        pacing = self._pacing
        while True:
            next_at += period
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            now = _now_ms()
            for io in list(pacing):
                due = io.call.wake_at(now)
                if due is None:
                    pacing.discard(io)
                elif due <= now:
                    io.pace(now)
            if loop.time() > next_at + period:           # fell behind (a stall): do not burst to catch up
                next_at = loop.time()

    async def start(self) -> BridgeServer:
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
                                             keep_handshake=False)
        self._pacer = asyncio.create_task(self._pace())
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://{self.host}:{self.port}/"
        return self

    async def close(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
            await asyncio.gather(self._pacer, return_exceptions=True)
            self._pacer = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> BridgeServer:
        return await self.start()

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        await self._server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """``rtfast bridge``: run a carrier <-> Realtime bridge until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(prog="rtfast bridge", description=main.__doc__)
    parser.add_argument("--carrier", default="twilio", choices=sorted(carriers.CODECS))
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT for carrier websockets")
    parser.add_argument("--realtime-url", help="a Realtime-compatible ws:// URL (default: OpenAI with "
                        "OPENAI_API_KEY, else an embedded local server)")
    parser.add_argument("--model", default="gpt-realtime")
    parser.add_argument("--mode", default="passthrough", choices=["passthrough", "transcode"])
    parser.add_argument("--instructions", default="You are a helpful phone agent. Be brief.")
    parser.add_argument("--voice", default=None)
    parser.add_argument("--twilio-auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN"),
                        help="validate X-Twilio-Signature (default: $TWILIO_AUTH_TOKEN, if set)")
    parser.add_argument("--public-url", help="the wss:// URL Twilio connects to (for the signature)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def run() -> None:
        embedded = None
        url = args.realtime_url
        if url is None and not os.environ.get("OPENAI_API_KEY"):
            from rtfast.server import RealtimeServer

            embedded = await RealtimeServer(require_auth=False).start()
            url = embedded.url
            print(f"no OPENAI_API_KEY: calls go to the embedded realtime server at {url}", flush=True)
        server = BridgeServer(carrier=args.carrier, host=host or "127.0.0.1", port=int(port), realtime_url=url,
                              model=args.model, mode=args.mode, instructions=args.instructions,
                              voice=args.voice, twilio_auth_token=args.twilio_auth_token,
                              public_url=args.public_url)
        async with server:
            print(f"rtfast bridge ({args.carrier}) listening on {server.url}", flush=True)
            try:
                await server.serve_forever()
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
    return 0
