"""The embedded server's SIP side: incoming calls, their webhook, the calls REST API, a caller.

What OpenAI does when a SIP call reaches a project, played locally so that an
application answering calls can be tested end to end offline:

1. :meth:`SipCalls.ring` makes a pending call and POSTs a signed
   ``realtime.call.incoming`` webhook (Standard Webhooks headers, the given
   ``webhook_secret``) to the application's URL;
2. the REST endpoint (``base_url``, plain HTTP on its own port: the websocket
   port cannot take request bodies) answers ``POST /v1/realtime/calls/{id}/accept``
   (the session config is checked as a ``session.update``), ``reject``, ``refer``
   and ``hangup``, with the API's error shapes (401 without a key, 404 for an unknown
   call, 400 for a bad config or a call no longer pending);
3. the sideband websocket (``realtime.connect(call_id=...)`` on the
   :class:`~rtfast.server.RealtimeServer`) starts with the accepted config, and
   the caller speaks its ``caller_says`` lines one turn at a time (each a user
   audio item with its transcript, then a response from the server's script),
   waiting after each for the model's spoken answer (tool calls answered by the
   application in between); after the last answer the caller hangs up (the
   websocket closes with 1000).

    async with RealtimeServer(script=...) as server, SipCalls(server, webhook_secret=SECRET) as sip:
        client = AsyncOpenAI(api_key="sk-test", base_url=sip.base_url, websocket_base_url=server.base_url)
        call_id = await sip.ring("http://127.0.0.1:8000/webhook")
        await sip.wait_ended(call_id)

``calls`` holds a :class:`SipCall` per call (status, accepted config, transfer
target, the webhook's HTTP status); ``requests`` every REST request as
(method, path, headers, body).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from rtfast import webhooks
from rtfast._server_session import ClientError, SessionConfig

__all__ = ["SipCalls", "SipCall"]

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large"}
_MAX_BODY = 1 << 20


@dataclass
class SipCall:
    """One simulated SIP call. ``status``: ``ringing`` (pending), ``accepted``, ``rejected``,
    ``referred``, ``ended``."""

    call_id: str
    sip_headers: list
    caller_says: list[str]
    status: str = "ringing"
    session: dict | None = None             # the accepted session config (the accept body)
    reject_status: int | None = None
    refer_to: str | None = None
    webhook_status: int | None = None
    ended_by: str | None = None             # "caller" or "api"
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    sidebands: int = 0


class SipCalls:
    """The SIP side of a :class:`~rtfast.server.RealtimeServer` (see the module docstring).

    ``webhook_secret``: what deliveries are signed with (``whsec_...``); ``caller_says``: the
    caller's turns (default: one question); ``answer_timeout``: how long the caller waits for each
    spoken answer before hanging up anyway."""

    def __init__(self, server, *, webhook_secret: str, host: str = "127.0.0.1", port: int = 0,
                 caller_says: list[str] | str = "Hello, where is my order A1234?",
                 answer_timeout: float = 10.0, require_auth: bool = True) -> None:
        webhooks._key(webhook_secret)       # a malformed secret fails here, not at the first ring
        self.server = server
        self._secret = webhook_secret
        self.host, self.port = host, port
        self.caller_says = [caller_says] if isinstance(caller_says, str) else list(caller_says)
        self.answer_timeout = answer_timeout
        self.require_auth = require_auth
        self.calls: dict[str, SipCall] = {}
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self._listener = None
        self._tasks: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        return f"<SipCalls {self.base_url} calls={len(self.calls)}>"

    @property
    def base_url(self) -> str:
        """The REST ``base_url`` to give the client (``.../v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> SipCalls:
        self._listener = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._listener.sockets[0].getsockname()[1]
        self.server.sip = self
        return self

    async def close(self) -> None:
        if self.server.sip is self:
            self.server.sip = None
        if self._listener is not None:
            self._listener.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._listener.wait_closed()
            self._listener = None

    async def __aenter__(self) -> SipCalls:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- ringing --------------------------------------------------------------------------------

    async def ring(self, webhook_url: str, *, from_uri: str = "sip:+15551230000@pstn.example.com",
                   to_uri: str = "sip:+15559870000@sip.api.openai.com", caller_says: list[str] | None = None,
                   extra_headers: list[tuple[str, str]] = ()) -> str:
        """A new incoming call: its signed ``realtime.call.incoming`` goes to ``webhook_url``.
        Returns the call id; the webhook's HTTP status is in ``calls[id].webhook_status``."""
        from rtfast.http import HttpClient

        call_id = "rtc_" + secrets.token_hex(12)
        sip_headers = [{"name": "From", "value": f"<{from_uri}>;tag={secrets.token_hex(4)}"},
                       {"name": "To", "value": f"<{to_uri}>"},
                       {"name": "Call-ID", "value": secrets.token_hex(8)},
                       *({"name": k, "value": v} for k, v in extra_headers)]
        call = SipCall(call_id, sip_headers, list(self.caller_says if caller_says is None else caller_says))
        self.calls[call_id] = call
        body = json.dumps({"object": "event", "id": "evt_" + secrets.token_hex(12), "type": "realtime.call.incoming",
                           "created_at": int(time.time()),
                           "data": {"call_id": call_id, "sip_headers": sip_headers,
                                    "sip_media_security": "rtp"}}).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)",
                   **webhooks.sign(body, self._secret)}
        http = HttpClient()
        try:
            response = await http.request("POST", webhook_url, headers=headers, body=body, timeout=10.0)
        finally:
            await http.aclose()
        call.webhook_status = response.status
        return call_id

    async def wait_ended(self, call_id: str, timeout: float = 30.0) -> SipCall:
        """Wait until the call ends (caller hung up, or hangup/reject/refer through the API)."""
        call = self.calls[call_id]
        await asyncio.wait_for(call.ended.wait(), timeout)
        return call

    def _end(self, call: SipCall, status: str, by: str) -> None:
        call.status = status
        call.ended_by = call.ended_by or by
        call.ended.set()

    # -- the REST endpoint ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length") or 0)
            if n > _MAX_BODY:
                status, reply = 413, _error("invalid_request_error", "request_too_large", "Request body too large.")
            else:
                body = await reader.readexactly(n) if n else b""
                self.requests.append((method, target, headers, body))
                status, reply = self._handle(method, urlsplit(target).path, headers, body)
            payload = json.dumps(reply).encode() if reply is not None else b""
            out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", "Connection: close",
                   f"Content-Length: {len(payload)}"]
            if payload:
                out.append("Content-Type: application/json")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            self._tasks.discard(asyncio.current_task())

    def _handle(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, dict | None]:
        auth = headers.get("authorization", "")
        if self.require_auth and not (auth.startswith("Bearer ") and auth[7:].strip()):
            return 401, _error("invalid_request_error", "invalid_api_key", "You didn't provide an API key.")
        parts = path.split("/")
        # /v1/realtime/calls/{call_id}/{verb}
        if len(parts) != 6 or parts[1:4] != ["v1", "realtime", "calls"] or \
                parts[5] not in ("accept", "reject", "refer", "hangup"):
            return 404, _error("invalid_request_error", "not_found", f"Invalid URL ({method} {path})")
        if method != "POST":
            return 405, _error("invalid_request_error", "method_not_allowed", f"Method {method} not allowed.")
        call = self.calls.get(unquote(parts[4]))
        if call is None:
            return 404, _error("invalid_request_error", "call_not_found", f"Call not found: {unquote(parts[4])}")
        try:
            fields = json.loads(body) if body else {}
        except ValueError:
            return 400, _error("invalid_request_error", "invalid_json", "The body is not valid JSON.")
        if not isinstance(fields, dict):
            return 400, _error("invalid_request_error", "invalid_type", "The body must be a JSON object.")
        verb = parts[5]
        if verb in ("accept", "reject") and call.status != "ringing":
            return 400, _error("invalid_request_error", "call_not_pending", f"Call {call.call_id} is {call.status}, "
                               "not pending.")
        if verb in ("refer", "hangup") and call.status != "accepted":
            return 400, _error("invalid_request_error", "call_not_active", f"Call {call.call_id} is {call.status}, "
                               "not active.")
        if verb == "accept":
            try:
                SessionConfig().updated(fields, False)      # the same checks as a session.update
            except ClientError as err:
                return 400, _error(err.type, err.code, err.message, err.param)
            call.session = fields
            call.status = "accepted"
        elif verb == "reject":
            call.reject_status = int(fields.get("status_code") or 603)
            self._end(call, "rejected", "api")
        elif verb == "refer":
            target = fields.get("target_uri")
            if not isinstance(target, str) or not target.startswith(("tel:", "sip:", "sips:")):
                return 400, _error("invalid_request_error", "invalid_value",
                                   "target_uri must be a tel:, sip: or sips: URI.", "target_uri")
            call.refer_to = target
            self._end(call, "referred", "api")
        else:
            self._end(call, "ended", "api")
        return 200, None

    # -- the sideband (called by RealtimeServer) ---------------------------------------------------

    def refuse_sideband(self, query: dict) -> tuple[int, str, str] | None:
        """Why a websocket with ``call_id`` may not open: (status, code, message), or None."""
        call_id = query.get("call_id")
        if call_id is None:
            return None
        call = self.calls.get(call_id)
        if call is None:
            return 404, "call_not_found", f"Call not found: {call_id}"
        if call.status != "accepted":
            return 400, "call_not_active", f"Call {call_id} is {call.status}: accept it before connecting."
        return None

    def sideband(self, query: dict, config: SessionConfig):
        """(the sideband session's config, the caller coroutine to run once it is up) for a call's
        websocket; (config, None) for any other connection."""
        call = self.calls.get(query.get("call_id") or "")
        if call is None or call.status != "accepted":
            return config, None
        call.sidebands += 1
        config = config.updated(call.session, False)
        if call.sidebands > 1:
            return config, None             # a second observer: the caller already talks on the first

        async def caller(conn) -> None:
            try:
                await self._talk(call, conn)
            finally:
                if call.status == "accepted":
                    self._end(call, "ended", "caller")
                await conn.ws.close(1000, "the caller hung up")

        return config, caller

    async def _talk(self, call: SipCall, conn) -> None:
        """The caller's turns: each a user audio item with its transcript, then a response;
        wait until the model has answered aloud (tool calls in between are the app's to answer)."""
        for line in call.caller_says:
            if call.status != "accepted":
                return
            item_id = conn.new_id("item")
            await conn.send("input_audio_buffer.speech_started", audio_start_ms=0, item_id=item_id)
            await conn.send("input_audio_buffer.speech_stopped", audio_end_ms=70 * len(line), item_id=item_id)
            prev = conn.s.items[-1]["id"] if conn.s.items else None
            await conn.send("input_audio_buffer.committed", previous_item_id=prev, item_id=item_id)
            item = {"id": item_id, "type": "message", "object": "realtime.item", "status": "completed",
                    "role": "user", "content": [{"type": "input_audio", "transcript": line}]}
            await conn.add_item(item)
            if conn.s.config.transcription:
                await conn.send("conversation.item.input_audio_transcription.completed", item_id=item_id,
                                content_index=0, transcript=line,
                                usage={"type": "duration", "seconds": round(0.07 * len(line), 3)})
            conn.start_response({})
            deadline = time.monotonic() + self.answer_timeout
            while time.monotonic() < deadline and call.status == "accepted":
                await asyncio.sleep(0.01)
                items = conn.s.items
                if conn.active is None and items and items[-1].get("role") == "assistant" \
                        and items[-1] is not item:
                    break


def _error(type_: str, code: str | None, message: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
