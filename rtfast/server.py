"""An embedded local OpenAI Realtime server, for demos and offline tests.

:class:`RealtimeServer` listens on loopback and speaks the GA Realtime protocol
over websockets, or the beta one when the client sends ``OpenAI-Beta:
realtime=v1``. The official ``openai`` client works against it unchanged::

    async with RealtimeServer(script=Script(reply_text="Hello there")) as server:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn: ...

Paths: ``/v1/realtime?model=M``, ``/openai/v1/realtime?model=M`` and the Azure
preview ``/openai/realtime?api-version=V&deployment=M``; GPT-Live on ``/v1/live/sessions``
(``client.live.connect()``, see rtfast/_server_live.py). Auth: an
``Authorization: Bearer ...`` or ``api-key`` header (unless ``require_auth=False``);
without one the handshake gets HTTP 401 with the API's JSON error body.

What it does: session.created/updated with the merged config; input audio in
the session's input format with an energy VAD (speech_started/stopped, commit,
user item, automatic response, barge-in cancels the response); scripted
responses streaming a speech-like tone in the output format (100 ms per delta)
with a word-by-word transcript, or text only, or a function call; item
create/truncate/delete/retrieve, response.cancel, output_audio_buffer.clear,
rate_limits.updated; ``error`` events (carrying the client's event_id, the
connection stays open) for what the real API refuses. Every event validates
against the official pydantic server-event models of its generation.

Not served: the ephemeral-key HTTP endpoints (``POST /v1/realtime/client_secrets``,
``/v1/realtime/sessions``): websockets' handshake parser refuses any request with a
body before ``process_request`` runs, so they cannot be answered on this port.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
from typing import Callable
from urllib.parse import parse_qs, unquote

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from rtfast._server_conn import _Connection
from rtfast._server_live import LiveConnection, SidebandConnection
from rtfast._server_session import (ClientError, FunctionCall, Reply, Script, ServerSession, SessionConfig,
                                    UserInput)

__all__ = ["RealtimeServer", "Script", "Reply", "FunctionCall", "UserInput", "ServerSession", "main"]

PATHS = ("/v1/realtime", "/openai/v1/realtime", "/openai/realtime")
#: GPT-Live's websocket (``client.live.connect()``; the model is named in session.start)
LIVE_PATHS = ("/v1/live/sessions", "/openai/v1/live/sessions")
# a sideband (attach) to a running session, or a fork of a stored one: /v1/live/sessions/{id}/attach
_LIVE_SESSION_PATH = re.compile(r"^(?:/openai)?/v1/live/sessions/([^/]+)/(attach|fork)$")


# -- the server --------------------------------------------------------------------------------

class RealtimeServer:
    """A local Realtime API on ``host:port`` (port 0: an ephemeral port).

    Use as ``async with RealtimeServer(...) as server:`` (or ``await start()`` /
    ``await close()``); ``server.url`` is ``ws://HOST:PORT/v1/realtime`` and
    ``server.base_url`` the ``websocket_base_url`` for the official client.

    ``script``: a :class:`Script` or ``callable(session, user_input) -> Reply``.
    ``require_auth``: refuse a handshake without an API key (HTTP 401).
    ``refuse_beta``: answer a beta client with an ``error`` (code
    ``beta_api_shape_disabled``) and close code 4000, as the API now does.
    Misbehaviour, counted in events sent on each connection:
    ``close_after_events`` closes with ``close_code`` (``None``: drop the TCP
    connection without a close frame); ``garbage_after_events`` sends one frame
    that is not JSON; ``stall_after_events`` stops sending anything more;
    ``misbehave_connections``: only the first N connections misbehave so (None:
    every one), so a client that reconnects can be tested.
    ``max_session_s``: the session's length cap (the API's is 60 minutes): then an
    ``error`` with code ``session_expired`` and close code 1001, as the API does.
    ``user_transcript``: when the session asks for input transcription, each
    committed user turn gets a ``...input_audio_transcription.completed`` with
    this text (a str, or ``callable(session, audio_ms) -> str``; default: a
    note of the audio's length).

    ``connections`` holds a :class:`ServerSession` per connection;
    ``received[i]`` is the list of events connection ``i`` sent.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, script: Script | Callable | None = None,
                 require_auth: bool = True, refuse_beta: bool = False, model: str = "gpt-realtime",
                 close_after_events: int | None = None, close_code: int | None = 1011,
                 garbage_after_events: int | None = None, stall_after_events: int | None = None,
                 misbehave_connections: int | None = None, max_session_s: float | None = None,
                 user_transcript: str | Callable | None = None) -> None:
        self.host, self.port = host, port
        self.script = script if script is not None else Script()
        self.require_auth, self.refuse_beta, self.model = require_auth, refuse_beta, model
        self.close_after_events, self.close_code = close_after_events, close_code
        self.garbage_after_events, self.stall_after_events = garbage_after_events, stall_after_events
        self.misbehave_connections, self.max_session_s = misbehave_connections, max_session_s
        self.user_transcript = user_transcript
        self.connections: list[ServerSession] = []
        #: GPT-Live sessions by id (once started), for sidebands and forks
        self.live_sessions: dict = {}
        self._server = None
        #: the SIP side (rtfast._server_calls.SipCalls) once one is started on this server
        self.sip = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1/realtime"

    @property
    def live_url(self) -> str:
        """The GPT-Live websocket, ``ws://HOST:PORT/v1/live/sessions``."""
        return f"ws://{self.host}:{self.port}/v1/live/sessions"

    @property
    def base_url(self) -> str:
        """The ``websocket_base_url`` to give ``openai.AsyncOpenAI``."""
        return f"ws://{self.host}:{self.port}/v1"

    @property
    def received(self) -> list[list[dict]]:
        return [c.received for c in self.connections]

    async def start(self) -> RealtimeServer:
        self._server = await serve(self._handle, self.host, self.port, process_request=self._process_request,
                                   max_size=None, compression=None)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def close(self) -> None:
        """Close every connection and stop listening; returns once no task is left."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> RealtimeServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        await self._server.serve_forever()

    def _process_request(self, connection: ServerConnection, request):
        path = request.path.partition("?")[0].rstrip("/")
        attach = _LIVE_SESSION_PATH.match(path)
        if path not in PATHS and path not in LIVE_PATHS and attach is None:
            return _json_response(connection, 404, "invalid_request_error", "not_found",
                                  f"Invalid URL (GET {path}): this server serves {', '.join(PATHS + LIVE_PATHS)}.")
        headers = request.headers
        auth = headers.get("Authorization", "")
        if self.require_auth and not (auth.startswith("Bearer ") and auth[7:].strip()) \
                and not headers.get("api-key"):
            return _json_response(connection, 401, "invalid_request_error", "invalid_api_key",
                                  "You didn't provide an API key. You need to provide your API key in an "
                                  "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        refused = self.sip.refuse_sideband(_query(request.path)) if self.sip is not None else None
        if refused is not None:     # a sideband (call_id=) for a call that is unknown or not accepted
            return _json_response(connection, refused[0], "invalid_request_error", refused[1], refused[2])
        if attach is not None:
            session_id, action = unquote(attach.group(1)), attach.group(2)
            target = self.live_sessions.get(session_id)
            if target is None or (action == "attach" and target.s.closed):
                return _json_response(connection, 404, "invalid_request_error", "session_not_found",
                                      f"No {'active ' if action == 'attach' else ''}Live session with id "
                                      f"'{session_id}'.")
            if action == "fork" and not target.resource.get("store"):
                return _json_response(connection, 400, "invalid_request_error", "session_not_stored",
                                      f"Live session '{session_id}' was not stored: only sessions started with "
                                      "store: true can be forked.")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path.partition("?")[0]
        query = _query(ws.request.path)
        beta = "realtime=v1" in ws.request.headers.get("OpenAI-Beta", "")
        config = SessionConfig(model=query.get("model") or query.get("deployment") or self.model,
                               id="sess_" + secrets.token_hex(10))
        attach = _LIVE_SESSION_PATH.match(path.rstrip("/"))
        live = path.rstrip("/") in LIVE_PATHS or attach is not None
        caller = None
        if self.sip is not None and not live:   # a SIP call's sideband starts with the accepted config; its caller talks
            config, caller = self.sip.sideband(query, config)
        state = ServerSession(beta and not live, path, query, dict(ws.request.headers.raw_items()), config,
                              protocol="live" if live else "realtime")
        self.connections.append(state)
        if attach is not None:
            target = self.live_sessions[unquote(attach.group(1))]
            if attach.group(2) == "attach":
                state.protocol = "live-sideband"
                conn = SidebandConnection(self, ws, state, target)
            else:
                conn = LiveConnection(self, ws, state, fork_of=target)
        elif live:
            conn = LiveConnection(self, ws, state)
        else:
            conn = _Connection(self, ws, state)
            conn.on_start = caller
        conn.misbehave = self.misbehave_connections is None or len(self.connections) <= self.misbehave_connections
        try:
            if beta and self.refuse_beta and not live:
                await conn.error(ClientError("beta_api_shape_disabled", "The beta Realtime API shape is no "
                                             "longer supported; use the GA shape (no OpenAI-Beta header)."), None)
                await ws.close(4000, "beta_api_shape_disabled")
                return
            if self.max_session_s is not None:
                await asyncio.wait_for(conn.run(), self.max_session_s)
            else:
                await conn.run()
        except asyncio.TimeoutError:
            await conn.expire(self.max_session_s)
        except ConnectionClosed:
            pass
        finally:
            for child in list(conn.tasks):
                child.cancel()
            await asyncio.gather(*conn.tasks, return_exceptions=True)
            state.closed = True


def _query(target: str) -> dict:
    return {k: v[-1] for k, v in parse_qs(target.partition("?")[2]).items()}


def _json_response(connection: ServerConnection, status: int, type_: str, code: str, message: str):
    body = orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).decode()
    response = connection.respond(status, body)
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


# -- rtfast serve ------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from rtfast._cliutil import HelpFormatter

    parser = argparse.ArgumentParser(
        prog="rtfast serve", formatter_class=HelpFormatter,
        description="A local OpenAI Realtime API server (GA, beta with OpenAI-Beta: realtime=v1, and GPT-Live\n"
                    "on /v1/live/sessions)\n"
                    "with scripted replies. Point a client at it with websocket_base_url=ws://HOST:PORT/v1.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one")
    parser.add_argument("--say", default="Hello there! This is the rtfast local realtime server.",
                        help="what every response says")
    parser.add_argument("--latency-ms", type=float, default=300.0,
                        help="delay before each response's output, in ms")
    parser.add_argument("--fast", action="store_true", help="stream audio as fast as possible, not at 1x")
    parser.add_argument("--no-auth", action="store_true", help="accept connections without an API key")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``rtfast serve``: run the local Realtime server until interrupted."""
    args = build_parser().parse_args(argv)
    script = Script(reply_text=args.say, latency_ms=args.latency_ms, realtime=not args.fast)

    async def run() -> None:
        async with RealtimeServer(args.host, args.port, script=script, require_auth=not args.no_auth) as server:
            print(f"rtfast realtime server on {server.url}, GPT-Live on {server.live_url}  "
                  f"(websocket_base_url={server.base_url})", flush=True)
            await server.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as exc:          # the port is taken, or not ours to use: one line, not a traceback
        from rtfast._cliutil import listen_failed

        return listen_failed("rtfast serve", args.host, args.port, exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
