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

The webhook endpoints API (``client.webhooks.create/retrieve/update/list/delete/
rotate_secret/test``, ``webhooks.event_types.list``) is played too, in memory and
per project (the ``OpenAI-Project`` header, else the API key), with the API's
checks: ``event_types`` non-empty and each a known type, ``name`` 1 to 256
characters, ``url`` at most 2048 characters and ``https://`` (plain ``http://``
only to a loopback host, as nothing else is reachable from here), ``limit`` 1 to
100, ``after`` one of the project's ids, unknown parameters refused: 400 for those,
404 for an unknown id. ``test``
POSTs a signed sample event to the endpoint and answers with its status;
``ring()`` without a URL delivers the call's ``realtime.call.incoming`` to every
endpoint subscribed to it, each signed with its own secret (and also with the
previous one while a rotation keeps it active). ``deliveries`` records each
delivery as (endpoint id, event type, HTTP status or None when unreachable).

    ep = await client.webhooks.create(name="sip", url=hook_url, event_types=["realtime.call.incoming"])
    call_id = await sip.ring()              # signed with ep.signing_secret
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from rtfast import webhooks
from rtfast._server_session import ClientError, SessionConfig

__all__ = ["SipCalls", "SipCall", "Endpoint"]

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large"}
_ENDPOINT_FIELDS = {"event_types", "name", "url"}
_GRACE = 24 * 3600                      # keep_old_secret_active_for_24_hours
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
    deliveries: dict = field(default_factory=dict)  # endpoint id -> HTTP status (None: unreachable)


@dataclass(repr=False)
class Endpoint:
    """One registered webhook endpoint (the secrets stay out of its repr)."""

    id: str
    project: str                            # a digest of the API key, or the OpenAI-Project header
    name: str
    url: str
    event_types: list[str]
    created_at: int
    secret: str
    updated_at: int = 0
    old_secret: str | None = None           # still signing until old_until (a rotation's grace)
    old_until: float = 0.0

    def __repr__(self) -> str:
        return f"<Endpoint {self.id} {self.name!r} {self.url} {self.event_types}>"

    def secrets(self) -> list[str]:
        """The secrets a delivery is signed with now: the current one, then the previous one
        while a rotation keeps it active."""
        if self.old_secret is not None and time.time() < self.old_until:
            return [self.secret, self.old_secret]
        return [self.secret]

    def public(self, with_secret: bool = False) -> dict:
        out = {"id": self.id, "object": "webhook_endpoint", "created_at": self.created_at,
               "updated_at": self.updated_at, "name": self.name, "url": self.url,
               "event_types": list(self.event_types), "signing_secret_hint": "whsec_****" + self.secret[-4:]}
        if with_secret:
            out["signing_secret"] = self.secret
        return out


class SipCalls:
    """The SIP side of a :class:`~rtfast.server.RealtimeServer` (see the module docstring).

    ``webhook_secret``: what deliveries are signed with (``whsec_...``); ``caller_says``: the
    caller's turns (default: one question); ``answer_timeout``: how long the caller waits for each
    spoken answer before hanging up anyway."""

    def __init__(self, server, *, webhook_secret: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 caller_says: list[str] | str = "Hello, where is my order A1234?",
                 answer_timeout: float = 10.0, require_auth: bool = True) -> None:
        if webhook_secret is not None:
            webhooks._key(webhook_secret)   # a malformed secret fails here, not at the first ring
        self.server = server
        self._secret = webhook_secret
        #: the registered webhook endpoints of every project, oldest first
        self.endpoints: dict[str, Endpoint] = {}
        self.deliveries: list[tuple[str, str, int | None]] = []
        self.host, self.port = host, port
        self.caller_says = [caller_says] if isinstance(caller_says, str) else list(caller_says)
        self.answer_timeout = answer_timeout
        self.require_auth = require_auth
        self.calls: dict[str, SipCall] = {}
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self._listener = None
        self._tasks: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        return f"<SipCalls {self.base_url} calls={len(self.calls)} endpoints={len(self.endpoints)}>"

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

    async def ring(self, webhook_url: str | None = None, *, from_uri: str = "sip:+15551230000@pstn.example.com",
                   to_uri: str = "sip:+15559870000@sip.api.openai.com", caller_says: list[str] | None = None,
                   extra_headers: list[tuple[str, str]] = ()) -> str:
        """A new incoming call: its signed ``realtime.call.incoming`` goes to ``webhook_url`` (signed
        with ``webhook_secret``) or, without one, to every registered endpoint subscribed to it
        (each signed with its own secret). Returns the call id; the HTTP status the webhook got is
        in ``calls[id].webhook_status`` (the first endpoint's) and ``calls[id].deliveries``."""
        if webhook_url is not None and self._secret is None:
            raise ValueError("ring(url) signs with webhook_secret: pass SipCalls(..., webhook_secret=...), "
                             "or register an endpoint (client.webhooks.create) and call ring() without a URL")
        targets = [] if webhook_url is not None else \
            [ep for ep in self.endpoints.values() if "realtime.call.incoming" in ep.event_types]
        if webhook_url is None and not targets:
            raise ValueError("no webhook endpoint is subscribed to realtime.call.incoming: register one "
                             "(client.webhooks.create) or pass ring() a URL")
        call_id = "rtc_" + secrets.token_hex(12)
        sip_headers = [{"name": "From", "value": f"<{from_uri}>;tag={secrets.token_hex(4)}"},
                       {"name": "To", "value": f"<{to_uri}>"},
                       {"name": "Call-ID", "value": secrets.token_hex(8)},
                       *({"name": k, "value": v} for k, v in extra_headers)]
        call = SipCall(call_id, sip_headers, list(self.caller_says if caller_says is None else caller_says))
        self.calls[call_id] = call
        event = {"object": "event", "id": "evt_" + secrets.token_hex(12), "type": "realtime.call.incoming",
                 "created_at": int(time.time()),
                 "data": {"call_id": call_id, "sip_headers": sip_headers, "sip_media_security": "rtp"}}
        if webhook_url is not None:
            call.webhook_status = await _post(webhook_url, json.dumps(event).encode(), [self._secret])
            call.deliveries[webhook_url] = call.webhook_status
            return call_id
        statuses = await asyncio.gather(*(self._deliver(ep, event) for ep in targets))
        call.deliveries = {ep.id: status for ep, status in zip(targets, statuses)}
        call.webhook_status = statuses[0]
        return call_id

    async def _deliver(self, ep: Endpoint, event: dict) -> int | None:
        """POST one event to an endpoint, signed with its secret(s); its HTTP status, or None when
        it could not be reached (recorded in ``deliveries`` either way)."""
        from rtfast.errors import HttpError

        try:
            status = await _post(ep.url, json.dumps(event).encode(), ep.secrets())
        except HttpError:
            status = None
        self.deliveries.append((ep.id, event["type"], status))
        return status

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
                url = urlsplit(target)
                status, reply = await self._handle(method, url.path, url.query, headers, body)
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

    async def _handle(self, method: str, path: str, query: str, headers: dict,
                      body: bytes) -> tuple[int, dict | None]:
        auth = headers.get("authorization", "")
        if self.require_auth and not (auth.startswith("Bearer ") and auth[7:].strip()):
            return 401, _error("invalid_request_error", "invalid_api_key", "You didn't provide an API key.")
        parts = path.split("/")
        if parts[1:3] in (["v1", "webhook_endpoints"], ["v1", "webhook_event_types"]):
            # a project: its header, else its key (as a digest: the key is kept nowhere)
            project = headers.get("openai-project") or hashlib.sha256(auth[7:].strip().encode()).hexdigest()[:16]
            return await self._endpoints_api(method, path, parts[2:], dict(parse_qsl(query)), project, body)
        # /v1/realtime/calls/{call_id}/{verb}
        if len(parts) != 6 or parts[1:4] != ["v1", "realtime", "calls"] or \
                parts[5] not in ("accept", "reject", "refer", "hangup"):
            return 404, _error("invalid_request_error", "not_found", f"Invalid URL ({method} {path})")
        if method != "POST":
            return 405, _error("invalid_request_error", "method_not_allowed", f"Method {method} not allowed.")
        call = self.calls.get(unquote(parts[4]))
        if call is None:
            return 404, _error("invalid_request_error", "call_not_found", f"Call not found: {unquote(parts[4])}")
        fields, refusal = _json_object(body)
        if refusal is not None:
            return refusal
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

    # -- the webhook endpoints API ----------------------------------------------------------------

    async def _endpoints_api(self, method: str, path: str, parts: list[str], query: dict, project: str,
                             body: bytes) -> tuple[int, dict | None]:
        """``/v1/webhook_event_types`` and ``/v1/webhook_endpoints[/{id}[/rotate_secret|/test]]``."""
        routes = {1: ("GET", "POST"), 2: ("GET", "POST", "DELETE"), 3: ("POST",)}
        if parts[0] == "webhook_event_types":
            if len(parts) != 1:
                return 404, _error("invalid_request_error", "not_found", f"Invalid URL ({method} {path})")
            if method != "GET":
                return 405, _error("invalid_request_error", "method_not_allowed", f"Method {method} not allowed.")
            return 200, {"object": "list", "data": list(webhooks.ENDPOINT_EVENT_TYPES)}
        if len(parts) not in routes or (len(parts) == 3 and parts[2] not in ("rotate_secret", "test")) or \
                (len(parts) > 1 and not parts[1]):
            return 404, _error("invalid_request_error", "not_found", f"Invalid URL ({method} {path})")
        if method not in routes[len(parts)]:
            return 405, _error("invalid_request_error", "method_not_allowed", f"Method {method} not allowed.")
        fields: dict = {}
        if method == "POST" or body:
            fields, refusal = _json_object(body)
            if refusal is not None:
                return refusal
        if len(parts) == 1:
            if method == "GET":
                return self._list_endpoints(project, query)
            return self._save_endpoint(None, project, fields)
        ep = self.endpoints.get(unquote(parts[1]))
        if ep is None or ep.project != project:     # another project's endpoint is not there for this one
            return 404, _error("invalid_request_error", "not_found",
                               f"No webhook endpoint found with id '{unquote(parts[1])}'.", "webhook_endpoint_id")
        if len(parts) == 2:
            if method == "GET":
                return 200, ep.public()
            if method == "DELETE":
                del self.endpoints[ep.id]
                return 200, {"id": ep.id, "object": "webhook_endpoint.deleted", "deleted": True}
            return self._save_endpoint(ep, project, fields)
        if parts[2] == "rotate_secret":
            unknown = _unknown(fields, {"keep_old_secret_active_for_24_hours"})
            if unknown:
                return unknown
            keep = fields.get("keep_old_secret_active_for_24_hours", False)
            if not isinstance(keep, bool):
                return 400, _error("invalid_request_error", "invalid_type",
                                   "keep_old_secret_active_for_24_hours must be a boolean.",
                                   "keep_old_secret_active_for_24_hours")
            ep.old_secret, ep.old_until = (ep.secret, time.time() + _GRACE) if keep else (None, 0.0)
            ep.secret = _new_secret()
            ep.updated_at = int(time.time())
            return 200, ep.public(with_secret=True)
        unknown = _unknown(fields, {"event_type"})
        if unknown:
            return unknown
        event_type = fields.get("event_type")
        if event_type not in webhooks.ENDPOINT_EVENT_TYPES:
            return 400, _error("invalid_request_error", "invalid_value",
                               f"Invalid event_type {event_type!r}: expected one of the webhook event types "
                               "(GET /v1/webhook_event_types).", "event_type")
        status = await self._deliver(ep, _sample_event(event_type))
        if status is None:
            return 400, _error("invalid_request_error", "webhook_delivery_failed",
                               f"Could not deliver the test event to {urlsplit(ep.url).netloc}.", "url")
        return 200, {"object": "webhook_endpoint.test", "webhook_endpoint_id": ep.id, "event_type": event_type,
                     "status_code": status, "success": True}

    def _list_endpoints(self, project: str, query: dict) -> tuple[int, dict]:
        unknown = _unknown(query, {"after", "limit"})
        if unknown:
            return unknown
        try:
            limit = int(query.get("limit", 20))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return 400, _error("invalid_request_error", "invalid_value",
                               "limit must be an integer from 1 to 100.", "limit")
        mine = [ep for ep in reversed(self.endpoints.values()) if ep.project == project]     # newest first
        after = query.get("after")
        if after:
            ids = [ep.id for ep in mine]
            if after not in ids:
                return 400, _error("invalid_request_error", "invalid_value",
                                   f"after: no webhook endpoint found with id '{after}'.", "after")
            mine = mine[ids.index(after) + 1:]
        page = mine[:limit]
        return 200, {"object": "list", "data": [ep.public() for ep in page],
                     "first_id": page[0].id if page else None, "last_id": page[-1].id if page else None,
                     "has_more": len(mine) > limit}

    def _save_endpoint(self, ep: Endpoint | None, project: str, fields: dict) -> tuple[int, dict]:
        """Create (``ep`` None) or update an endpoint from a request body, with the API's checks."""
        unknown = _unknown(fields, _ENDPOINT_FIELDS)
        if unknown:
            return unknown
        if ep is None:
            for name in ("event_types", "name", "url"):
                if name not in fields:
                    return 400, _error("invalid_request_error", "missing_required_parameter",
                                       f"Missing required parameter: '{name}'.", name)
        event_types = fields.get("event_types")
        if "event_types" in fields:
            if not isinstance(event_types, list) or not event_types or \
                    not all(isinstance(t, str) for t in event_types):
                return 400, _error("invalid_request_error", "invalid_type",
                                   "event_types must be a non-empty array of event type strings.", "event_types")
            bad = next((t for t in event_types if t not in webhooks.ENDPOINT_EVENT_TYPES), None)
            if bad is not None:
                return 400, _error("invalid_request_error", "invalid_value",
                                   f"Invalid event type {bad!r} in event_types: expected one of the webhook "
                                   "event types (GET /v1/webhook_event_types).", "event_types")
            event_types = list(dict.fromkeys(event_types))
        name = fields.get("name")
        if "name" in fields and not (isinstance(name, str) and 1 <= len(name) <= 256):
            return 400, _error("invalid_request_error", "invalid_value",
                               "name must be a string of 1 to 256 characters.", "name")
        url = fields.get("url")
        if "url" in fields:
            problem = _url_problem(url)
            if problem:
                return 400, _error("invalid_request_error", "invalid_url", problem, "url")
        now = int(time.time())
        if ep is None:
            ep = Endpoint("whe_" + secrets.token_hex(12), project, name, url, event_types, now, _new_secret(), now)
            self.endpoints[ep.id] = ep
            return 200, ep.public(with_secret=True)
        changes = {k: v for k, v in (("event_types", event_types), ("name", name), ("url", url))
                   if k in fields and getattr(ep, k) != v}
        if changes:                         # an unchanged update does not advance updated_at
            for k, v in changes.items():
                setattr(ep, k, v)
            ep.updated_at = now
        return 200, ep.public()

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


def _json_object(body: bytes) -> tuple[dict, tuple | None]:
    """A request body as a JSON object (empty: {}), or the API's 400 refusal of it."""
    try:
        fields = json.loads(body) if body else {}
    except ValueError:
        return {}, (400, _error("invalid_request_error", "invalid_json", "The body is not valid JSON."))
    if not isinstance(fields, dict):
        return {}, (400, _error("invalid_request_error", "invalid_type", "The body must be a JSON object."))
    return fields, None


def _error(type_: str, code: str | None, message: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _unknown(fields: dict, allowed: set) -> tuple[int, dict] | None:
    extra = next((k for k in fields if k not in allowed), None)
    if extra is None:
        return None
    return 400, _error("invalid_request_error", "unknown_parameter", f"Unknown parameter: '{extra}'.", extra)


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _url_problem(url) -> str | None:
    """Why ``url`` may not receive deliveries, or None. HTTPS as the API requires; plain HTTP
    only to a loopback host (all this server can reach anyway)."""
    if not isinstance(url, str) or not url:
        return "url must be a non-empty string."
    if len(url) > 2048:
        return "url must be at most 2048 characters."
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port                                  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "url is not a valid URL."
    if parts.scheme not in ("https", "http") or not host:
        return "url must be an HTTPS URL."
    if parts.scheme == "http":
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            return "url must be an HTTPS URL (this local server takes http:// for a loopback host only)."
    return None


def _sample_fields(spec: dict[str, str]) -> dict:
    """Sample values for the required fields of one of rtfast.webhooks' event specs."""
    out = {}
    for name, kind in spec.items():
        body = kind.rstrip("!")
        if not kind.endswith("!") and not body.startswith("="):
            continue
        if body.startswith("="):
            out[name] = body[1:]
        elif body.startswith("[@"):
            out[name] = [_sample_fields(webhooks._OBJECTS[body[2:]])]
        elif body.startswith("@"):
            out[name] = _sample_fields(webhooks._OBJECTS[body[1:]])
        elif body == "i":
            out[name] = int(time.time())
        else:
            out[name] = ("rtc_test_" if name == "call_id" else "test_") + secrets.token_hex(6)
    return out


def _sample_event(event_type: str) -> dict:
    """What ``test`` sends: an event of that type with every required field of the official model."""
    spec = webhooks._EVENTS.get(event_type)
    data = _sample_fields(spec[1]) if spec else {"id": "test_" + secrets.token_hex(6)}
    return {"object": "event", "id": "evt_" + secrets.token_hex(12), "type": event_type,
            "created_at": int(time.time()), "data": data}


async def _post(url: str, body: bytes, keys: list[str]) -> int:
    """One signed delivery: Standard Webhooks headers with a signature by each of ``keys``."""
    from rtfast.http import HttpClient

    headers = webhooks.sign(body, keys[0])
    for key in keys[1:]:                    # a rotation's grace: one signature per active secret
        more = webhooks.sign(body, key, webhook_id=headers["webhook-id"], timestamp=int(headers["webhook-timestamp"]))
        headers["webhook-signature"] += " " + more["webhook-signature"]
    http = HttpClient()
    try:
        response = await http.request("POST", url, body=body, timeout=10.0, headers={
            "Content-Type": "application/json", "User-Agent": "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)",
            **headers})
    finally:
        await http.aclose()
    return response.status
