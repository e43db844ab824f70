"""Call control through each carrier's REST API: hang up and transfer a live call.

    control = control_for("twilio")            # credentials from the environment, None if unset
    await control.transfer(start, "+15551234567")   # start: the carrier's Start event
    await control.hangup(start)

Every request goes through a swappable HTTP client (:class:`rtfast.http.HttpClient`
by default; pass ``http=`` to use your own). A request the carrier refuses
raises :class:`rtfast.errors.CallControlError` naming the carrier, the action,
the HTTP status and the carrier's own message; no response at all raises the
same error (status None) with the HTTP failure as the message. Credentials
never appear in reprs or error messages. Hanging up a call that has already
ended is not an error (the carrier says so with its "not found"/"already
ended" answer).

Request shapes, and where they come from:

- **Twilio** (Voice API, *Update a Call resource*; pipecat's Twilio serializer
  hangs up the same way): ``POST {base}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json``,
  HTTP basic auth (account SID, auth token), form body. Hang up:
  ``Status=completed``. Transfer: ``Twiml=<Response><Dial>number</Dial></Response>``
  (a SIP URI goes in ``<Dial><Sip>uri</Sip></Dial>``, as TwiML requires),
  XML-escaped. Errors: ``{"code": 20404, "message": ..., "status": 404}``.
  Call id: ``start.callSid``.
- **Telnyx** (Call Control v2, *Hangup call* / *Transfer call*; pipecat's Telnyx
  serializer hangs up the same way): ``POST {base}/v2/calls/{call_control_id}/actions/hangup``
  and ``.../actions/transfer`` with ``{"to": number or SIP URI}``, ``Authorization:
  Bearer TELNYX_API_KEY``. Errors: ``{"errors": [{"code": "90018", "title": ...,
  "detail": ...}]}`` (90018: the call has already ended). Call id:
  ``start.call_control_id``.
- **Plivo** (Voice API, *Hangup a call* and *Transfer a call*; pipecat's Plivo
  serializer hangs up the same way): hang up is ``DELETE {base}/v1/Account/{auth_id}/Call/{call_uuid}/``
  (204); transfer is ``POST`` to the same URL with ``{"legs": "aleg",
  "aleg_url": URL, "aleg_method": "GET"|"POST"}``: Plivo fetches Plivo XML
  from that URL and runs it, so a transfer needs an answer URL that returns
  ``<Response><Dial><Number>...</Number></Dial></Response>``
  (:func:`plivo_dial_xml` writes it). Give it as ``transfer_url`` (env
  ``PLIVO_TRANSFER_URL``), a template in which ``{to}`` becomes the
  URL-encoded destination. Basic auth (auth id, auth token). Errors:
  ``{"api_id": ..., "error": ...}``. Call id: ``start.callId``.
- **Vonage** (Voice API, *Modify an in progress call*): ``PUT {base}/v1/calls/{uuid}``
  with ``{"action": "hangup"}`` or ``{"action": "transfer", "destination":
  {"type": "ncco", "ncco": [{"action": "connect", "endpoint": [{"type": "phone",
  "number": "447700900000"}]}]}}`` (``{"type": "sip", "uri": ...}`` for a SIP
  URI); 204 on success. Auth: ``Authorization: Bearer VONAGE_JWT``, a JWT
  you sign (this module does not sign RS256). Errors: ``{"type": ...,
  "title": ..., "detail": ...}``. Call id: the ``uuid`` the NCCO put in the
  websocket's headers (Vonage sends the call's id only where you ask it to).
- **Exotel**: the only REST control of a live call Exotel documents is its
  Legs API (``cpaas-api``; *Leg Actions*): ``POST {base}/v2/accounts/{account_sid}/legs/{leg_sid}/actions``
  with ``{"exoml": "<?xml ...?><Flow><Hangup/></Flow>"}`` to hang up, and
  ``<Flow><Dial contactUri="..." exophone="..." networkType="pstn"|"voip"/></Flow>``
  to connect the leg to another party; basic auth (API key, API token). The
  leg sid is taken from the stream's custom parameters (``leg_sid``), else
  the start message's ``leg_sid``, else its ``call_sid``. Transfer needs your
  ExoPhone as caller id (``exophone=``, env ``EXOTEL_EXOPHONE``); without one it
  raises :class:`rtfast.errors.CallControlNotSupported`. Calls that reach the
  bot through a dashboard flow's Voicebot applet are not legs: Exotel's way
  to end or hand them over is to close the stream so the flow goes on to its
  next applet (a Connect applet transfers, a Hangup applet ends the call);
  a leg request for such a call fails with Exotel's 404.

Base URLs are overridable per carrier (``RTFAST_TWILIO_API_BASE``,
``RTFAST_TELNYX_API_BASE``, ``RTFAST_PLIVO_API_BASE``, ``RTFAST_VONAGE_API_BASE``,
``RTFAST_EXOTEL_API_BASE``) so a local fake can stand in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from rtfast.bridge.carriers import Start
from rtfast.errors import CallControlError, CallControlNotSupported, HttpError
from rtfast.http import HttpClient, HttpResponse, basic_auth, bearer_auth, form_body, json_body, quote_segment

__all__ = ["CallControl", "TwilioControl", "TelnyxControl", "PlivoControl", "VonageControl", "ExotelControl",
           "control_for", "plivo_dial_xml", "CONTROLS"]

_PHONE = re.compile(r"\+?[0-9][0-9 ().\-]{1,30}")
_SIP = re.compile(r"sips?:[^\s<>\"']+", re.IGNORECASE)
_MESSAGE_LIMIT = 300


def _destination(carrier: str, to) -> tuple[str, str]:
    """("phone", "+15551234567") or ("sip", "sip:agent@pbx"), or CallControlError."""
    if isinstance(to, str):
        to = to.strip()
        if _SIP.fullmatch(to):
            return "sip", to
        if _PHONE.fullmatch(to):
            number = re.sub(r"[ ().\-]", "", to)
            if 3 <= len(number.lstrip("+")) <= 15:
                return "phone", number
    raise CallControlError(carrier, "transfer", None,
                           f"destination {str(to)[:60]!r} is neither a phone number (E.164, e.g. +15551234567) "
                           "nor a SIP URI (sip:user@host)")


def _scrub(text: str, secrets) -> str:
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


class CallControl:
    """Base of the carriers' call control. Subclasses implement ``_hangup`` and
    ``_transfer``; this class checks ids, turns failed responses into
    CallControlError and keeps secrets out of every message."""

    carrier = "carrier"
    #: Statuses that mean success.
    _OK = (200, 201, 202, 204)

    def __init__(self, *, base_url: str, http=None, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_http = http is None
        self.http = http if http is not None else HttpClient()
        self.timeout = timeout

    def _secrets(self) -> tuple[str, ...]:
        """The raw credentials (never shown)."""
        return ()

    def _auth(self) -> dict[str, str]:
        """The Authorization header this carrier sends."""
        return {}

    def _scrubbed(self) -> tuple[str, ...]:
        # the credentials, and the header token made of them (a carrier may echo the header)
        return self._secrets() + tuple(v.split()[-1] for v in self._auth().values())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def hangup(self, start: Start) -> None:
        """End the call (a call that already ended is not an error)."""
        await self._hangup(self._call_id(start, "hangup"), start)

    async def transfer(self, start: Start, to: str) -> None:
        """Connect the caller to ``to``, a phone number or a SIP URI; the
        carrier takes the call away from the stream."""
        kind, dest = _destination(self.carrier, to)
        await self._transfer(self._call_id(start, "transfer"), start, kind, dest)

    async def aclose(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._own_http:
            await self.http.aclose()

    # -- for subclasses --

    def _call_id(self, start: Start, action: str) -> str:
        cid = start.call_id if isinstance(start, Start) else None
        if not isinstance(cid, str) or not cid:
            raise CallControlError(self.carrier, action, None,
                                   "the start message carries no call id to act on")
        return cid

    async def _hangup(self, call_id: str, start: Start) -> None:
        raise NotImplementedError

    async def _transfer(self, call_id: str, start: Start, kind: str, dest: str) -> None:
        raise NotImplementedError

    async def _send(self, action: str, method: str, path: str, headers: dict, body: bytes | None,
                    already_over=None) -> HttpResponse | None:
        """One request; returns the response on success, None when ``already_over(resp)``
        says the call had already ended; raises CallControlError otherwise."""
        try:
            resp = await self.http.request(method, self.base_url + path, headers=headers, body=body,
                                           timeout=self.timeout)
        except HttpError as exc:
            raise CallControlError(self.carrier, action, None, _scrub(str(exc), self._scrubbed())) from None
        except Exception as exc:  # a swapped-in client's own errors get the same typed error
            what = _scrub(f"{type(exc).__name__}: {exc}", self._scrubbed())
            raise CallControlError(self.carrier, action, None, what[:_MESSAGE_LIMIT]) from None
        if resp.status in self._OK:
            return resp
        if already_over is not None and already_over(resp):
            return None
        message = _scrub(self._error_message(resp), self._scrubbed())
        if len(message) > _MESSAGE_LIMIT:
            message = message[:_MESSAGE_LIMIT] + "..."
        raise CallControlError(self.carrier, action, resp.status, message)

    def _error_message(self, resp: HttpResponse) -> str:
        """The carrier's message from an error body (subclasses know the shape)."""
        try:
            data = resp.json()
        except ValueError:
            data = None
        found = _find_message(data) if data is not None else None
        if found:
            return found
        text = " ".join(bytes(resp.body[:2000]).decode("utf-8", "replace").split())
        return text or getattr(resp, "reason", "") or "no error message"


def _find_message(data, depth: int = 0):
    """The first human message in a carrier's JSON error body (any of the usual keys)."""
    if depth > 4:
        return None
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("title", "message", "error", "detail", "description")
                 if isinstance(data.get(k), (str, int)) and str(data[k])]
        if parts:
            code = data.get("code")
            text = ": ".join(dict.fromkeys(parts))
            return f"{text} (code {code})" if isinstance(code, (str, int)) and str(code) else text
        for v in data.values():
            if isinstance(v, (dict, list)):
                found = _find_message(v, depth + 1)
                if found:
                    return found
    elif isinstance(data, list):
        for v in data[:3]:
            found = _find_message(v, depth + 1)
            if found:
                return found
    return None


def _json_code(resp: HttpResponse):
    try:
        data = resp.json()
    except ValueError:
        return None
    return data if isinstance(data, (dict, list)) else None


# -- Twilio ---------------------------------------------------------------------------------------


class TwilioControl(CallControl):
    carrier = "twilio"

    def __init__(self, account_sid: str, auth_token: str, *, base_url: str = "https://api.twilio.com",
                 http=None, timeout: float = 10.0) -> None:
        if not account_sid or not auth_token:
            raise ValueError("TwilioControl needs an account SID and an auth token")
        super().__init__(base_url=base_url, http=http, timeout=timeout)
        self.account_sid = account_sid
        self._auth_token = auth_token

    def _secrets(self):
        return (self._auth_token,)

    def _auth(self):
        return basic_auth(self.account_sid, self._auth_token)

    def _path(self, call_id: str) -> str:
        return f"/2010-04-01/Accounts/{quote_segment(self.account_sid)}/Calls/{quote_segment(call_id)}.json"

    async def _update(self, action: str, call_id: str, fields: dict, already_over=None) -> None:
        headers, body = form_body(fields)
        headers.update(self._auth())
        await self._send(action, "POST", self._path(call_id), headers, body, already_over)

    async def _hangup(self, call_id, start):
        await self._update("hangup", call_id, {"Status": "completed"}, _twilio_gone)

    async def _transfer(self, call_id, start, kind, dest):
        noun = f"<Sip>{escape(dest)}</Sip>" if kind == "sip" else escape(dest)
        await self._update("transfer", call_id, {"Twiml": f"<Response><Dial>{noun}</Dial></Response>"})


def _twilio_gone(resp: HttpResponse) -> bool:
    # 20404: no such call (it ended); 21220: the call is not in progress
    data = _json_code(resp)
    return resp.status in (400, 404) and isinstance(data, dict) and data.get("code") in (20404, 21220)


# -- Telnyx ---------------------------------------------------------------------------------------


class TelnyxControl(CallControl):
    carrier = "telnyx"

    def __init__(self, api_key: str, *, base_url: str = "https://api.telnyx.com", http=None,
                 timeout: float = 10.0) -> None:
        if not api_key:
            raise ValueError("TelnyxControl needs an API key")
        super().__init__(base_url=base_url, http=http, timeout=timeout)
        self._api_key = api_key

    def _secrets(self):
        return (self._api_key,)

    def _auth(self):
        return bearer_auth(self._api_key)

    def _call_id(self, start, action):
        if isinstance(start, Start) and not start.call_id and isinstance(start.raw, dict):
            s = start.raw.get("start")
            cid = s.get("call_control_id") if isinstance(s, dict) else None
            if isinstance(cid, str) and cid:
                return cid
        return super()._call_id(start, action)

    async def _action(self, action: str, call_id: str, payload: dict, already_over=None) -> None:
        headers, body = json_body(payload)
        headers.update(self._auth())
        await self._send(action, "POST", f"/v2/calls/{quote_segment(call_id)}/actions/{action}", headers, body,
                         already_over)

    async def _hangup(self, call_id, start):
        await self._action("hangup", call_id, {}, _telnyx_gone)

    async def _transfer(self, call_id, start, kind, dest):
        await self._action("transfer", call_id, {"to": dest})


def _telnyx_gone(resp: HttpResponse) -> bool:
    data = _json_code(resp)
    errors = data.get("errors") if isinstance(data, dict) else None
    return resp.status == 422 and isinstance(errors, list) and any(
        isinstance(e, dict) and str(e.get("code")) == "90018" for e in errors)


# -- Plivo ----------------------------------------------------------------------------------------


def plivo_dial_xml(to: str) -> str:
    """The Plivo XML a transfer URL should answer with to connect the caller
    to ``to`` (a phone number or a SIP URI)."""
    kind, dest = _destination("plivo", to)
    noun = f"<User>{escape(dest)}</User>" if kind == "sip" else f"<Number>{escape(dest.lstrip('+'))}</Number>"
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{noun}</Dial></Response>'


class PlivoControl(CallControl):
    carrier = "plivo"

    def __init__(self, auth_id: str, auth_token: str, *, transfer_url: str | None = None,
                 transfer_method: str = "GET", base_url: str = "https://api.plivo.com", http=None,
                 timeout: float = 10.0) -> None:
        if not auth_id or not auth_token:
            raise ValueError("PlivoControl needs an auth id and an auth token")
        if transfer_method not in ("GET", "POST"):
            raise ValueError(f"transfer_method must be GET or POST, not {transfer_method!r}")
        super().__init__(base_url=base_url, http=http, timeout=timeout)
        self.auth_id = auth_id
        self._auth_token = auth_token
        self.transfer_url = transfer_url
        self.transfer_method = transfer_method

    def _secrets(self):
        return (self._auth_token,)

    def _auth(self):
        return basic_auth(self.auth_id, self._auth_token)

    def __repr__(self) -> str:
        return f"PlivoControl(base_url={self.base_url!r}, transfer_url={self.transfer_url!r})"

    def _path(self, call_id: str) -> str:
        return f"/v1/Account/{quote_segment(self.auth_id)}/Call/{quote_segment(call_id)}/"

    async def _hangup(self, call_id, start):
        headers = self._auth()
        await self._send("hangup", "DELETE", self._path(call_id), headers, None, lambda r: r.status == 404)

    async def _transfer(self, call_id, start, kind, dest):
        if not self.transfer_url:
            raise CallControlNotSupported(
                "plivo", "transfer", None,
                "Plivo transfers a call to a URL that answers with Plivo XML, and none is configured: set "
                "PLIVO_TRANSFER_URL (or transfer_url=) to a URL of yours that returns plivo_dial_xml(to); "
                "'{to}' in it becomes the destination")
        url = self.transfer_url.replace("{to}", quote(dest, safe=""))
        headers, body = json_body({"legs": "aleg", "aleg_url": url, "aleg_method": self.transfer_method})
        headers.update(self._auth())
        await self._send("transfer", "POST", self._path(call_id), headers, body)


# -- Vonage ---------------------------------------------------------------------------------------


class VonageControl(CallControl):
    carrier = "vonage"

    def __init__(self, jwt: str, *, base_url: str = "https://api.nexmo.com", http=None,
                 timeout: float = 10.0) -> None:
        if not jwt:
            raise ValueError("VonageControl needs a JWT (sign it with your application's private key)")
        super().__init__(base_url=base_url, http=http, timeout=timeout)
        self._jwt = jwt

    def _secrets(self):
        return (self._jwt,)

    def _auth(self):
        return bearer_auth(self._jwt)

    def _call_id(self, start, action):
        if isinstance(start, Start) and not start.call_id:
            for src in (start.custom_parameters, start.raw):
                if isinstance(src, Mapping):
                    for key in ("uuid", "call_uuid"):
                        v = src.get(key)
                        if isinstance(v, str) and v:
                            return v
        return super()._call_id(start, action)

    async def _put(self, action: str, call_id: str, payload: dict, already_over=None) -> None:
        headers, body = json_body(payload)
        headers.update(self._auth())
        await self._send(action, "PUT", f"/v1/calls/{quote_segment(call_id)}", headers, body, already_over)

    async def _hangup(self, call_id, start):
        await self._put("hangup", call_id, {"action": "hangup"}, _vonage_gone)

    async def _transfer(self, call_id, start, kind, dest):
        endpoint = {"type": "sip", "uri": dest} if kind == "sip" else {"type": "phone", "number": dest.lstrip("+")}
        ncco = [{"action": "connect", "endpoint": [endpoint]}]
        await self._put("transfer", call_id, {"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}})


def _vonage_gone(resp: HttpResponse) -> bool:
    return resp.status in (404, 410)


# -- Exotel ---------------------------------------------------------------------------------------


class ExotelControl(CallControl):
    carrier = "exotel"

    def __init__(self, account_sid: str, api_key: str, api_token: str, *, exophone: str | None = None,
                 base_url: str = "https://cpaas-api.in.exotel.com", http=None, timeout: float = 10.0) -> None:
        if not account_sid or not api_key or not api_token:
            raise ValueError("ExotelControl needs an account SID, an API key and an API token")
        super().__init__(base_url=base_url, http=http, timeout=timeout)
        self.account_sid = account_sid
        self._api_key = api_key
        self._api_token = api_token
        self.exophone = exophone

    def _secrets(self):
        return (self._api_key, self._api_token)

    def _auth(self):
        return basic_auth(self._api_key, self._api_token)

    def __repr__(self) -> str:
        return f"ExotelControl(base_url={self.base_url!r}, exophone={self.exophone!r})"

    def _call_id(self, start, action):
        if isinstance(start, Start):
            raw_start = start.raw.get("start") if isinstance(start.raw, dict) else None
            for src in (start.custom_parameters, raw_start, start.raw):
                if isinstance(src, Mapping):
                    v = src.get("leg_sid")
                    if isinstance(v, str) and v:
                        return v
        return super()._call_id(start, action)

    async def _exoml(self, action: str, leg_sid: str, flow: str, already_over=None) -> None:
        exoml = f'<?xml version="1.0" encoding="UTF-8"?><Flow>{flow}</Flow>'
        headers, body = json_body({"exoml": exoml, "action_custom_param": f"rtfast-{action}"})
        headers.update(self._auth())
        path = f"/v2/accounts/{quote_segment(self.account_sid)}/legs/{quote_segment(leg_sid)}/actions"
        await self._send(action, "POST", path, headers, body, already_over)

    async def _hangup(self, call_id, start):
        await self._exoml("hangup", call_id, "<Hangup/>")

    async def _transfer(self, call_id, start, kind, dest):
        if not self.exophone:
            raise CallControlNotSupported(
                "exotel", "transfer", None,
                "Exotel dials the transfer from one of your ExoPhones: set EXOTEL_EXOPHONE (or exophone=); "
                "for a call in a dashboard flow, close the stream and let the flow's next applet connect it")
        network = "voip" if kind == "sip" else "pstn"
        await self._exoml("transfer", call_id,
                          f"<Dial contactUri={quoteattr(dest)} exophone={quoteattr(self.exophone)} "
                          f"networkType={quoteattr(network)}></Dial>")


# -- from the environment -------------------------------------------------------------------------

#: Control class by carrier name.
CONTROLS = {"twilio": TwilioControl, "telnyx": TelnyxControl, "plivo": PlivoControl, "vonage": VonageControl,
            "exotel": ExotelControl}


def control_for(carrier: str, *, http: HttpClient | None = None, environ: Mapping[str, str] = os.environ,
                timeout: float = 10.0) -> CallControl | None:
    """The carrier's call control with credentials from the environment, or
    None when they are not set:

    - twilio: ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``
    - telnyx: ``TELNYX_API_KEY``
    - plivo: ``PLIVO_AUTH_ID``, ``PLIVO_AUTH_TOKEN`` (``PLIVO_TRANSFER_URL`` to transfer)
    - vonage: ``VONAGE_JWT``
    - exotel: ``EXOTEL_ACCOUNT_SID``, ``EXOTEL_API_KEY``, ``EXOTEL_API_TOKEN``
      (``EXOTEL_EXOPHONE`` to transfer)

    ``RTFAST_<CARRIER>_API_BASE`` replaces the carrier's API base URL.
    """
    name = carrier.lower()
    if name not in CONTROLS:
        raise ValueError(f"unknown carrier {carrier!r}; expected one of {', '.join(CONTROLS)}")
    env = environ.get
    kw = {"http": http, "timeout": timeout}
    base = env(f"RTFAST_{name.upper()}_API_BASE")
    if base:
        kw["base_url"] = base
    if name == "twilio":
        sid, token = env("TWILIO_ACCOUNT_SID"), env("TWILIO_AUTH_TOKEN")
        return TwilioControl(sid, token, **kw) if sid and token else None
    if name == "telnyx":
        key = env("TELNYX_API_KEY")
        return TelnyxControl(key, **kw) if key else None
    if name == "plivo":
        aid, token = env("PLIVO_AUTH_ID"), env("PLIVO_AUTH_TOKEN")
        return PlivoControl(aid, token, transfer_url=env("PLIVO_TRANSFER_URL") or None, **kw) if aid and token else None
    if name == "vonage":
        jwt = env("VONAGE_JWT")
        return VonageControl(jwt, **kw) if jwt else None
    sid, key, token = env("EXOTEL_ACCOUNT_SID"), env("EXOTEL_API_KEY"), env("EXOTEL_API_TOKEN")
    if sid and key and token:
        return ExotelControl(sid, key, token, exophone=env("EXOTEL_EXOPHONE") or None, **kw)
    return None
