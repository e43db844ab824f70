"""Local fakes of the carriers' call-control REST endpoints (no network here).

Each fake is a small asyncio HTTP/1.1 server on 127.0.0.1 that checks what
the carrier checks (auth, path, method, content type, body), records every
request, keeps a table of live calls, and answers with the carrier's shapes,
error bodies included (see rtfast/bridge/control.py for where the shapes come
from). Its own HTTP parsing is independent of rtfast.http, so a bug there
cannot hide behind the same bug here.

    async with TwilioFake("AC123", "secret", calls={"CA1"}) as fake:
        control = TwilioControl("AC123", "secret", base_url=fake.base_url)
        await control.hangup(start)
        assert fake.calls["CA1"] == "completed"

Modes: ``chunked=True`` answers with chunked bodies (cut in several chunks);
``hang=True`` reads the request and never answers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, unquote, urlsplit


class Request:
    """One recorded request."""

    def __init__(self, method, target, headers, body):
        self.method = method
        parts = urlsplit(target)
        self.path = unquote(parts.path)
        self.raw_path = parts.path
        self.query = dict(parse_qsl(parts.query))
        self.headers = headers
        self.body = body

    @property
    def form(self) -> dict:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Request({self.method} {self.path})"


class Reply:
    def __init__(self, status, body=b"", headers=None):
        self.status = status
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.body = body
        self.headers = headers or {}


_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            410: "Gone", 415: "Unsupported Media Type", 422: "Unprocessable Entity", 500: "Internal Server Error"}


class FakeServer:
    """An HTTP/1.1 server on 127.0.0.1; subclasses (or ``handler=``) answer requests."""

    def __init__(self, handler=None, *, chunked=False, hang=False):
        self._handler = handler
        self.chunked = chunked
        self.hang = hang
        self.requests: list[Request] = []
        self._server = None
        self._conns: set[asyncio.Task] = set()
        self.port = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self):
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self._server.close()
        for t in list(self._conns):
            t.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        await self._server.wait_closed()

    def handle(self, req: Request) -> Reply:
        return self._handler(req)

    async def _serve(self, reader, writer):
        self._conns.add(asyncio.current_task())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            assert version == "HTTP/1.1", version
            headers = {}
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", "0"))
            body = await reader.readexactly(n) if n else b""
            req = Request(method, target, headers, body)
            self.requests.append(req)
            if self.hang:
                await asyncio.Event().wait()
            reply = self.handle(req)
            out = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
            for k, v in reply.headers.items():
                out.append(f"{k}: {v}")
            out.append("Connection: close")
            if reply.status == 204:
                payload = b""
            elif self.chunked:
                out.append("Transfer-Encoding: chunked")
                cuts = [reply.body[i:i + 7] for i in range(0, len(reply.body), 7)]
                payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in cuts) + b"0\r\n\r\n"
            else:
                out.append(f"Content-Length: {len(reply.body)}")
                payload = reply.body
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._conns.discard(asyncio.current_task())


def _basic(req: Request):
    auth = req.headers.get("authorization", "")
    if not auth.startswith("Basic "):
        return None
    user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
    return user, pw


def _bearer(req: Request):
    auth = req.headers.get("authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else None


class CarrierFake(FakeServer):
    """A carrier: ``calls`` maps live call ids to their state ("in-progress",
    "completed", "transferred"); ``transfers`` records (call id, destination)."""

    def __init__(self, *, calls=(), **kw):
        super().__init__(**kw)
        self.calls = {c: "in-progress" for c in calls}
        self.transfers: list[tuple[str, object]] = []


# -- Twilio ---------------------------------------------------------------------------------------


class TwilioFake(CarrierFake):
    """``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json``, basic auth, form body."""

    def __init__(self, account_sid, auth_token, **kw):
        super().__init__(**kw)
        self.account_sid, self.auth_token = account_sid, auth_token

    @staticmethod
    def _error(status, code, message):
        return Reply(status, {"code": code, "message": message,
                              "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})

    def handle(self, req):
        if _basic(req) != (self.account_sid, self.auth_token):
            return self._error(401, 20003, "Authenticate")
        prefix = f"/2010-04-01/Accounts/{self.account_sid}/Calls/"
        if not (req.path.startswith(prefix) and req.path.endswith(".json")):
            return self._error(404, 20404, f"The requested resource {req.path} was not found")
        if req.method != "POST":
            return self._error(405, 20004, "Method not allowed")
        if req.headers.get("content-type") != "application/x-www-form-urlencoded":
            return self._error(400, 20001, "Content-Type must be application/x-www-form-urlencoded")
        sid = req.path[len(prefix):-5]
        if self.calls.get(sid) != "in-progress":
            return self._error(404, 20404, f"The requested resource {req.path} was not found")
        form = req.form
        if form.get("Status") == "completed":
            self.calls[sid] = "completed"
        elif "Twiml" in form:
            try:
                root = ET.fromstring(form["Twiml"])
            except ET.ParseError as exc:
                return self._error(400, 12100, f"Document parse failure: {exc}")
            dial = root.find("Dial")
            if root.tag != "Response" or dial is None:
                return self._error(400, 12100, "Document parse failure: expected <Response><Dial>")
            sip = dial.find("Sip")
            self.transfers.append((sid, ("sip", sip.text) if sip is not None else ("number", dial.text)))
            self.calls[sid] = "transferred"
        else:
            return self._error(400, 21218, "Invalid call update: give Status, Url or Twiml")
        return Reply(200, {"sid": sid, "account_sid": self.account_sid, "status": self.calls[sid]})


# -- Telnyx ---------------------------------------------------------------------------------------


class TelnyxFake(CarrierFake):
    """``POST /v2/calls/{call_control_id}/actions/{hangup|transfer}``, bearer API key, JSON."""

    def __init__(self, api_key, **kw):
        super().__init__(**kw)
        self.api_key = api_key

    @staticmethod
    def _error(status, code, title, detail):
        return Reply(status, {"errors": [{"code": code, "title": title, "detail": detail}]})

    def handle(self, req):
        if _bearer(req) != self.api_key:
            return self._error(401, "10009", "Authentication failed", "The API key in the request is invalid.")
        parts = req.raw_path.split("/")
        if len(parts) != 6 or parts[1:3] != ["v2", "calls"] or parts[4] != "actions" or req.method != "POST":
            return self._error(404, "10005", "Resource not found", "The requested resource was not found.")
        cid, action = unquote(parts[3]), parts[5]
        if cid not in self.calls:
            return self._error(404, "10005", "Resource not found", "Call control id not found.")
        if self.calls[cid] != "in-progress":
            return self._error(422, "90018", "Call has already ended",
                               "This call is no longer active and can't receive commands.")
        if req.headers.get("content-type") != "application/json":
            return self._error(415, "10015", "Bad request", "Content-Type must be application/json")
        payload = req.json if req.body else {}
        if action == "hangup":
            self.calls[cid] = "completed"
        elif action == "transfer":
            if not isinstance(payload.get("to"), str):
                return self._error(422, "10015", "Invalid value", "The 'to' parameter is required.")
            self.transfers.append((cid, payload["to"]))
            self.calls[cid] = "transferred"
        else:
            return self._error(404, "10005", "Resource not found", f"No action {action}.")
        return Reply(200, {"data": {"result": "ok"}})


# -- Plivo ----------------------------------------------------------------------------------------


class PlivoFake(CarrierFake):
    """``DELETE|POST /v1/Account/{auth_id}/Call/{call_uuid}/``, basic auth."""

    def __init__(self, auth_id, auth_token, **kw):
        super().__init__(**kw)
        self.auth_id, self.auth_token = auth_id, auth_token

    @staticmethod
    def _reply(status, key, text):
        return Reply(status, {"api_id": str(uuid.uuid4()), key: text})

    def handle(self, req):
        if _basic(req) != (self.auth_id, self.auth_token):
            return self._reply(401, "error", "Authentication credentials invalid.")
        prefix = f"/v1/Account/{self.auth_id}/Call/"
        if not (req.path.startswith(prefix) and req.path.endswith("/")):
            return self._reply(404, "error", "not found")
        cid = req.path[len(prefix):-1]
        if self.calls.get(cid) != "in-progress":
            return self._reply(404, "error", "not found")
        if req.method == "DELETE":
            self.calls[cid] = "completed"
            return Reply(204)
        if req.method != "POST":
            return self._reply(405, "error", "method not allowed")
        payload = req.json
        if payload.get("legs", "aleg") != "aleg" or not payload.get("aleg_url"):
            return self._reply(400, "error", "aleg_url is required when legs is aleg")
        self.transfers.append((cid, (payload["aleg_url"], payload.get("aleg_method", "POST"))))
        self.calls[cid] = "transferred"
        return self._reply(202, "message", "call transferred")


# -- Vonage ---------------------------------------------------------------------------------------


class VonageFake(CarrierFake):
    """``PUT /v1/calls/{uuid}``, bearer JWT, JSON; 204 on success."""

    def __init__(self, jwt, **kw):
        super().__init__(**kw)
        self.jwt = jwt

    @staticmethod
    def _error(status, kind, title, detail):
        return Reply(status, {"type": f"https://developer.nexmo.com/api-errors#{kind}", "title": title,
                              "detail": detail, "instance": str(uuid.uuid4())})

    def handle(self, req):
        if _bearer(req) != self.jwt:
            return self._error(401, "unauthorized", "Unauthorized", "You did not provide correct credentials.")
        if not req.path.startswith("/v1/calls/") or req.method != "PUT":
            return self._error(404, "not-found", "Not Found", "Not found")
        cid = req.path[len("/v1/calls/"):]
        if self.calls.get(cid) != "in-progress":
            return self._error(404, "not-found", "Not Found", f"Call {cid} was not found or has ended")
        payload = req.json
        if payload.get("action") == "hangup":
            self.calls[cid] = "completed"
            return Reply(204)
        if payload.get("action") == "transfer":
            dest = payload.get("destination") or {}
            ncco = dest.get("ncco")
            if dest.get("type") != "ncco" or not isinstance(ncco, list) or not ncco:
                return self._error(400, "bad-request", "Bad Request", "destination must be an NCCO")
            connect = ncco[0]
            if connect.get("action") != "connect" or not connect.get("endpoint"):
                return self._error(400, "bad-request", "Bad Request", "NCCO connect needs an endpoint")
            self.transfers.append((cid, connect["endpoint"][0]))
            self.calls[cid] = "transferred"
            return Reply(204)
        return self._error(400, "bad-request", "Bad Request", "action must be one of hangup, transfer, ...")


# -- Exotel ---------------------------------------------------------------------------------------


class ExotelFake(CarrierFake):
    """``POST /v2/accounts/{sid}/legs/{leg_sid}/actions`` with ``{"exoml": ...}``, basic auth."""

    def __init__(self, account_sid, api_key, api_token, **kw):
        super().__init__(**kw)
        self.account_sid, self.api_key, self.api_token = account_sid, api_key, api_token

    @staticmethod
    def _reply(status, data=None, error=None):
        return Reply(status, {"request_id": uuid.uuid4().hex, "method": "POST", "http_code": status,
                              "response": {"code": status, "status": "failure" if error else "success",
                                           "error_data": error, "data": data}})

    def handle(self, req):
        if _basic(req) != (self.api_key, self.api_token):
            return self._reply(401, error={"code": 1010, "message": "Authentication failed",
                                           "description": "Invalid API key or token"})
        prefix = f"/v2/accounts/{self.account_sid}/legs/"
        if not (req.path.startswith(prefix) and req.path.endswith("/actions")) or req.method != "POST":
            return self._reply(404, error={"code": 1000, "message": "Not found", "description": "No such resource"})
        leg = req.path[len(prefix):-len("/actions")]
        if self.calls.get(leg) != "in-progress":
            return self._reply(404, error={"code": 1001, "message": "Leg not found",
                                           "description": f"No active leg {leg}"})
        try:
            flow = ET.fromstring(req.json["exoml"])
        except (KeyError, ValueError, ET.ParseError) as exc:
            return self._reply(400, error={"code": 1002, "message": "Invalid ExoML", "description": str(exc)})
        if flow.tag != "Flow" or len(flow) != 1:
            return self._reply(400, error={"code": 1002, "message": "Invalid ExoML",
                                           "description": "one verb in <Flow>"})
        verb = flow[0]
        if verb.tag == "Hangup":
            self.calls[leg] = "completed"
        elif verb.tag == "Dial":
            if not verb.get("contactUri") or not verb.get("exophone"):
                return self._reply(400, error={"code": 1003, "message": "Invalid Dial",
                                               "description": "contactUri and exophone are required"})
            self.transfers.append((leg, dict(verb.attrib)))
            self.calls[leg] = "transferred"
        else:
            return self._reply(400, error={"code": 1002, "message": "Invalid ExoML", "description": verb.tag})
        return self._reply(202, data={"action_sid": uuid.uuid4().hex})


class WebhookReceiver:
    """A loopback webhook endpoint (``url``): records each delivery's (headers, body) in ``got``
    and answers ``status``."""

    def __init__(self, status: int = 200, path: str = "/webhook"):
        self.status, self.path = status, path
        self.got: asyncio.Queue = asyncio.Queue()

    async def __aenter__(self):
        self._srv = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._srv.sockets[0].getsockname()[1]}{self.path}"
        return self

    async def __aexit__(self, *exc):
        self._srv.close()
        await self._srv.wait_closed()

    async def _serve(self, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if line)
        body = await reader.readexactly(int(headers["Content-Length"]))
        await self.got.put((headers, body))
        writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()
