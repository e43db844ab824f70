"""OpenAI webhooks: signature checks and typed events, as the official ``client.webhooks``.

OpenAI signs each delivery the Standard Webhooks way: three headers,
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(space-separated ``v1,<base64 HMAC-SHA256>`` values, several while a secret
rotates), over ``"{id}.{timestamp}.{body}"`` with the endpoint's secret
(``whsec_<base64 key>``; a secret without that prefix is used as raw bytes).

    client = rtfast.AsyncOpenAI(webhook_secret=...)   # or OPENAI_WEBHOOK_SECRET
    event = client.webhooks.unwrap(body, request_headers)
    if event.type == "realtime.call.incoming":
        await client.realtime.calls.accept(event.data.call_id, type="realtime", ...)

The same functions work without a client: :func:`verify_signature`,
:func:`unwrap`, and :func:`sign` (what OpenAI does, for tests and local fakes).

The project's webhook endpoints, as the official async client manages them
(``/v1/webhook_endpoints``; see :class:`Webhooks`):

    ep = await client.webhooks.create(event_types=["realtime.call.incoming"], name="sip", url=url)
    ep.signing_secret                   # whsec_...: only here and from rotate_secret
    async for ep in client.webhooks.list(limit=20): ...

Errors, all ``ValueError`` subclasses as the official ones:
:class:`~rtfast.errors.InvalidWebhookSignatureError` for a delivery that is not
genuine or not fresh (``reason``: ``"signature"``, ``"missing_header"``,
``"timestamp_format"``, ``"too_old"``, ``"too_new"``), to answer with HTTP 400;
:class:`~rtfast.errors.WebhookSecretError` for a missing or malformed secret (the
application's configuration, not the sender's fault). No message or repr holds
the secret. Where the official client raises a bare ``ValueError`` (a missing
header) rtfast raises ``InvalidWebhookSignatureError``, which is one.

Events: one slotted class per member of the official ``UnwrapWebhookEvent``
union, with its field names (``event.data.call_id``, ``event.data.sip_headers[0]
.name``) and the official models' ``model_dump`` / ``to_dict`` / ``to_json``
family (rtfast.events.Model); an unknown ``type`` gives
:class:`UnknownWebhookEvent` keeping every key. Unknown fields are kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import time
import typing
from collections.abc import Mapping
from operator import attrgetter

import orjson

from rtfast._results import secret_key
from rtfast.calls import NOT_GIVEN, RawResponse, _dumps, _merge, _path_segment, given
from rtfast.errors import InvalidWebhookSignatureError, ProtocolError, WebhookSecretError
from rtfast.events import FieldInfo, Model, UnknownObject

__all__ = ["verify_signature", "unwrap", "sign", "parse_event", "WebhookEvent", "UnknownWebhookEvent",
           "WEBHOOK_EVENTS", "Webhooks", "InvalidWebhookSignatureError", "WebhookSecretError"]

log = logging.getLogger("rtfast.webhooks")

_NO_SECRET = ("The webhook secret must either be set using the env var, OPENAI_WEBHOOK_SECRET, "
              "on the client class, AsyncOpenAI(webhook_secret='123'), or passed to this function")

# -- signatures ----------------------------------------------------------------------------------


def _key(secret: str | bytes | None) -> bytes:
    """The HMAC key of a secret: ``whsec_`` + base64, else the text's own bytes (as the official client)."""
    if secret is None:
        raise WebhookSecretError(_NO_SECRET)
    if isinstance(secret, (bytes, bytearray)):
        secret = bytes(secret).decode("latin-1")
    if not isinstance(secret, str):
        raise WebhookSecretError(f"the webhook secret must be a str, not {type(secret).__name__}")
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret[6:])     # not validating, as the official client
        except (binascii.Error, ValueError):
            raise WebhookSecretError("the webhook secret starts with 'whsec_' but what follows is not valid "
                                     "base64 (copy the whole secret from the dashboard)") from None
    else:
        key = secret.encode()
    if not key:
        # An empty key would let anyone sign: refuse it rather than accept every forgery.
        raise WebhookSecretError("the webhook secret is empty")
    return key


def _header(headers, name: str) -> str:
    """A header's value, looked up without regard to case in a mapping (dict, httpx/starlette/aiohttp
    headers), an object with ``get``, or a list of (name, value) pairs (str or bytes, as ASGI's)."""
    if isinstance(headers, Mapping) or hasattr(headers, "items"):
        items = headers.items()
    elif isinstance(headers, (list, tuple)):
        items = headers
    else:
        raise TypeError(f"headers must be a mapping or a list of (name, value) pairs, not {type(headers).__name__}")
    for key, value in items:
        if isinstance(key, (bytes, bytearray)):
            key = bytes(key).decode("latin-1")
        if isinstance(key, str) and key.lower() == name:
            if isinstance(value, (bytes, bytearray)):
                value = bytes(value).decode("latin-1")
            if isinstance(value, str) and value:
                return value
    raise InvalidWebhookSignatureError(f"Could not find {name} header", "missing_header")


def _body(payload: str | bytes | bytearray | memoryview) -> bytes:
    if isinstance(payload, str):
        return payload.encode()
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    raise TypeError(f"payload must be str or bytes (the raw request body), not {type(payload).__name__}")


def _mac(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def verify_signature(payload: str | bytes, headers, *, secret: str | bytes | None = None,
                     tolerance: int = 300) -> None:
    """Check that ``payload`` (the raw request body, unparsed) was signed by OpenAI with ``secret``
    no more than ``tolerance`` seconds ago (or ahead: clocks drift both ways). Returns None, or raises
    :class:`InvalidWebhookSignatureError` / :class:`WebhookSecretError` (see the module docstring)."""
    key = _key(secret)
    body = _body(payload)
    signature_header = _header(headers, "webhook-signature")
    timestamp = _header(headers, "webhook-timestamp")
    webhook_id = _header(headers, "webhook-id")
    try:
        sent = int(timestamp)
    except ValueError:
        raise InvalidWebhookSignatureError("Invalid webhook timestamp format", "timestamp_format") from None
    now = int(time.time())
    if now - sent > tolerance:
        raise InvalidWebhookSignatureError(f"Webhook timestamp is too old (sent {now - sent} s ago; "
                                           f"tolerance {tolerance} s)", "too_old")
    if sent > now + tolerance:
        raise InvalidWebhookSignatureError(f"Webhook timestamp is too new ({sent - now} s ahead of this clock; "
                                           f"tolerance {tolerance} s)", "too_new")
    expected = base64.b64encode(_mac(key, webhook_id, timestamp, body))
    # Every "v1,<sig>" (or bare value) may match: several are sent while a secret rotates.
    # Compared as bytes: hmac.compare_digest refuses non-ASCII str, and a header is the sender's input.
    for part in signature_header.split():
        candidate = part[3:] if part.startswith("v1,") else part
        if hmac.compare_digest(expected, candidate.encode("utf-8", "surrogateescape")):
            return
    raise InvalidWebhookSignatureError("The given webhook signature does not match the expected signature",
                                       "signature")


def sign(payload: str | bytes, secret: str | bytes, *, webhook_id: str | None = None,
         timestamp: int | None = None) -> dict[str, str]:
    """The headers OpenAI sends with ``payload`` signed by ``secret`` (for tests and local senders):
    ``webhook-id`` (random unless given), ``webhook-timestamp`` (now unless given), ``webhook-signature``."""
    webhook_id = webhook_id or "wh_" + os.urandom(12).hex()
    stamp = str(int(time.time()) if timestamp is None else int(timestamp))
    signature = base64.b64encode(_mac(_key(secret), webhook_id, stamp, _body(payload))).decode()
    return {"webhook-id": webhook_id, "webhook-timestamp": stamp, "webhook-signature": f"v1,{signature}"}


def unwrap(payload: str | bytes, headers, *, secret: str | bytes | None = None, tolerance: int = 300):
    """Verify (as :func:`verify_signature`), then parse the body into its event class."""
    verify_signature(payload, headers, secret=secret, tolerance=tolerance)
    return parse_event(payload)


# -- typed events --------------------------------------------------------------------------------
#
# The official union (openai.types.webhooks.UnwrapWebhookEvent), member by member; a test checks
# this table against the installed openai package. Kinds: s str, i int, b bool, l a list of str,
# =X the constant X,
# @Name a nested object, [@Name a list of them; a trailing ! marks a required field.

_OBJECTS: dict[str, dict[str, str]] = {
    "DataSipHeader": {"name": "s!", "value": "s!"},
    "DataRequiredAction": {"type": "s!"},
    "DataConnect": {"remote_url": "s!"},
}
_ID = {"id": "s!"}
_AGENT_SESSION = {"id": "s!", "environment_type": "s!", "environment_id": "s"}
_SIP = {"sip_headers": "[@DataSipHeader!", "sip_media_security": "s"}
# event type -> (official class name, data fields, whether "object" is required)
_EVENTS: dict[str, tuple[str, dict[str, str], bool]] = {
    "agent.environment.expired": ("AgentEnvironmentExpiredWebhookEvent", _ID, True),
    "agent.environment.failed": ("AgentEnvironmentFailedWebhookEvent", _ID, True),
    "agent.environment.ready": ("AgentEnvironmentReadyWebhookEvent", _ID, True),
    "agent.environment.suspended": ("AgentEnvironmentSuspendedWebhookEvent", _ID, True),
    "agent.session.action_required": ("AgentSessionActionRequiredWebhookEvent",
                                      {"id": "s!", "required_action": "@DataRequiredAction!"}, True),
    "agent.session.created": ("AgentSessionCreatedWebhookEvent",
                              {"id": "s!", "environment_type": "s!", "connect": "@DataConnect",
                               "environment_id": "s"}, True),
    "agent.session.failed": ("AgentSessionFailedWebhookEvent", _AGENT_SESSION, True),
    "agent.session.idle": ("AgentSessionIdleWebhookEvent", _AGENT_SESSION, True),
    "agent.session.in_progress": ("AgentSessionInProgressWebhookEvent", _AGENT_SESSION, True),
    "batch.cancelled": ("BatchCancelledWebhookEvent", _ID, False),
    "batch.completed": ("BatchCompletedWebhookEvent", _ID, False),
    "batch.expired": ("BatchExpiredWebhookEvent", _ID, False),
    "batch.failed": ("BatchFailedWebhookEvent", _ID, False),
    "eval.run.canceled": ("EvalRunCanceledWebhookEvent", _ID, False),
    "eval.run.failed": ("EvalRunFailedWebhookEvent", _ID, False),
    "eval.run.succeeded": ("EvalRunSucceededWebhookEvent", _ID, False),
    "fine_tuning.job.cancelled": ("FineTuningJobCancelledWebhookEvent", _ID, False),
    "fine_tuning.job.failed": ("FineTuningJobFailedWebhookEvent", _ID, False),
    "fine_tuning.job.succeeded": ("FineTuningJobSucceededWebhookEvent", _ID, False),
    "live.call.incoming": ("LiveCallIncomingWebhookEvent", {"session_id": "s!", **_SIP}, False),
    "live.transport.connected": ("LiveTransportConnectedWebhookEvent", {"session_id": "s!", "type": "=webrtc"}, True),
    "live.transport.incoming": ("LiveTransportIncomingWebhookEvent",
                                {"session_id": "s!", "sip_headers": "[@DataSipHeader!", "type": "=sip",
                                 "sip_media_security": "s"}, False),
    "realtime.call.incoming": ("RealtimeCallIncomingWebhookEvent", {"call_id": "s!", **_SIP}, False),
    "response.cancelled": ("ResponseCancelledWebhookEvent", _ID, False),
    "response.completed": ("ResponseCompletedWebhookEvent", _ID, False),
    "response.failed": ("ResponseFailedWebhookEvent", _ID, False),
    "response.incomplete": ("ResponseIncompleteWebhookEvent", _ID, False),
    "safety.alert.created": ("SafetyAlertCreatedWebhookEvent", _ID, True),
    "safety.deactivation_issued": ("SafetyDeactivationIssuedWebhookEvent", _ID, True),
    "safety.org_alert.created": ("SafetyOrgAlertCreatedWebhookEvent", _ID, True),
    "safety.warning_issued": ("SafetyWarningIssuedWebhookEvent", _ID, True),
}

_JSON = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


class WebhookEvent(Model):
    """Base of the typed webhook events (``TYPE`` is the event type)."""

    __slots__ = ()
    TYPE: str = ""


class UnknownWebhookEvent(UnknownObject, WebhookEvent):
    """A webhook event type this version does not know: every key reads as an attribute; ``raw``."""

    __slots__ = ()

    @property
    def raw(self) -> dict:
        return self._extra


def _wrong(cls: type, name: str, want: str, value) -> ProtocolError:
    got = _JSON.get(type(value), type(value).__name__)
    return ProtocolError(f"field {cls.__name__}.{name}: expected {want}, got {got}")


def _parse_into(cls, d: dict):
    """An instance of ``cls`` from a decoded JSON object, checking each field's JSON kind."""
    o = object.__new__(cls)
    for name, (kind, _required, _const, ref, is_list) in cls._spec.items():
        v = d.get(name)
        if v is not None:
            if ref is not None:
                if is_list:
                    if type(v) is not list:
                        raise _wrong(cls, name, "an array of objects", v)
                    bad = next((x for x in v if type(x) is not dict), None)
                    if bad is not None:
                        raise _wrong(cls, name + "[]", "an object", bad)
                    v = [_parse_into(ref(), x) for x in v]
                elif type(v) is dict:
                    v = _parse_into(ref(), v)
                else:
                    raise _wrong(cls, name, "an object", v)
            elif kind == "i" and type(v) is not int:
                raise _wrong(cls, name, "an integer", v)
            elif kind in ("s", "=") and type(v) is not str:
                raise _wrong(cls, name, "a string", v)
            elif kind == "b" and type(v) is not bool:
                raise _wrong(cls, name, "a boolean", v)
            elif kind == "l" and (type(v) is not list or any(type(x) is not str for x in v)):
                raise _wrong(cls, name, "an array of strings", v)
        setattr(o, name, v)
    extra = {k: v for k, v in d.items() if v is None or k not in cls._known}
    o._extra = extra or None
    return o


def _plain(v):
    if isinstance(v, Model):
        return v._to_dict()
    return [_plain(x) for x in v] if type(v) is list else v


def _to_dict(self) -> dict:
    out = {name: _plain(v) for name in self._order if (v := getattr(self, name)) is not None}
    for k, v in (self._extra or {}).items():
        if out.get(k) is None:
            out[k] = _plain(v)
    return out


def _init(self, **fields) -> None:
    cls = type(self)
    extra = {}
    for name, (_kind, _required, const, ref, is_list) in cls._spec.items():
        if name in fields and fields[name] is None:
            extra[name] = None              # an explicit null: sent, as the official models keep it
        v = fields.pop(name, const)
        if ref is not None and v is not None:
            v = [_parse_into(ref(), x) if type(x) is dict else x for x in v] if is_list else \
                _parse_into(ref(), v) if type(v) is dict else v
        setattr(self, name, v)
    extra.update(fields)
    self._extra = extra or None


_CLASSES: dict[str, type] = {}


def _annotation(kind: str, required: bool, const: str | None, ref):
    if const is not None:
        return typing.Literal[const]
    tp = {"s": str, "i": int, "b": bool, "l": typing.List[str]}.get(kind)  # noqa: UP006
    if ref is not None:
        tp = typing.List[ref()] if kind == "[" else ref()  # noqa: UP006
    return tp if required else typing.Optional[tp]


def _make(name: str, spec: dict[str, str], base: type, module_doc: str, event_type: str | None = None) -> type:
    parsed = {}
    for field, kind in spec.items():
        required = kind.endswith("!") or kind.startswith("=")
        body = kind.rstrip("!")
        const = body[1:] if body.startswith("=") else None
        is_list = body.startswith("[")
        ref_name = body.lstrip("[@") if body[0] in "[@" else None
        ref = (lambda n=ref_name: _CLASSES[n]) if ref_name else None
        parsed[field] = ("[" if is_list else "@" if ref else "=" if const is not None else body, required,
                         const, ref, is_list)
    names = tuple(spec)
    attrs = {
        "__slots__": names, "__module__": __name__, "__doc__": module_doc,
        "_fields": names, "_order": names, "_known": frozenset(names), "_kinds": dict(spec),
        "_key": attrgetter(*names, "_extra"), "_spec": parsed,
        "__init__": _init, "_to_dict": _to_dict,
    }
    if event_type is not None:
        attrs["TYPE"] = event_type
    cls = type(name, (base,), attrs)
    cls._parse = classmethod(_parse_into)
    _CLASSES[name] = cls
    return cls


class _FieldsOf:
    """``model_fields`` for these classes: name -> FieldInfo in the official order (built on first use)."""

    def __get__(self, obj, cls):
        cached = cls.__dict__.get("_wh_fields")
        if cached is None:
            cached = {n: FieldInfo(_annotation(k, r, c, ref), r, cls._kinds[n])
                      for n, (k, r, c, ref, _) in cls._spec.items()}
            cls._wh_fields = cached
        return cached


for _name, _spec in _OBJECTS.items():
    _make(_name, _spec, Model, f"``{_name}`` of an official webhook event's data.")
    _CLASSES[_name].model_fields = _FieldsOf()

#: event type -> class, in the official union's order
WEBHOOK_EVENTS: dict[str, type] = {}
for _type, (_name, _data, _object_required) in _EVENTS.items():
    _data_cls = _make(_name + "Data", _data, Model, f"The ``data`` of :class:`{_name}`.")
    _data_cls.model_fields = _FieldsOf()
    _fields = {"id": "s!", "created_at": "i!", "data": f"@{_name}Data!"}
    # the official declaration order: ``object`` before ``type`` where it is required
    _fields.update({"object": "=event", "type": f"={_type}"} if _object_required
                   else {"type": f"={_type}", "object": "s"})
    _cls = _make(_name, _fields, WebhookEvent,
                 f"``{_type}``: ``openai.types.webhooks.{_name}`` of the official ``openai`` package.", _type)
    _cls.model_fields = _FieldsOf()
    WEBHOOK_EVENTS[_type] = _cls
    globals()[_name] = _cls
__all__ += [c.__name__ for c in WEBHOOK_EVENTS.values()]
del _name, _spec, _type, _data, _object_required, _data_cls, _fields, _cls


def parse_event(payload: str | bytes | dict):
    """A webhook body (JSON text, or an already decoded object) as its event class, without checking
    the signature (use :func:`unwrap` for a request). Malformed JSON or a field of the wrong JSON kind
    raises :class:`rtfast.ProtocolError`."""
    if isinstance(payload, dict):
        d = payload
    else:
        try:
            d = orjson.loads(_body(payload))
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"webhook body is not JSON ({exc.msg})", payload) from None
    if type(d) is not dict:
        raise ProtocolError("webhook body is not a JSON object", payload)
    t = d.get("type")
    cls = WEBHOOK_EVENTS.get(t) if type(t) is str else None
    if cls is None:
        if type(t) is not str:
            raise ProtocolError("webhook body has no string 'type'", orjson.dumps(d))
        return UnknownWebhookEvent(d)
    try:
        return cls._parse(d)
    except ProtocolError as exc:
        raise ProtocolError(exc.reason, orjson.dumps(d)) from None


# -- webhook endpoints: the REST results ---------------------------------------------------------
#
# The official ``openai.types.webhooks`` models of the endpoint API, field by field in their
# declaration order (a test checks them against the installed package), built as the events are.

#: The event types an endpoint may subscribe to (the official ``create``'s ``event_types`` literal).
ENDPOINT_EVENT_TYPES: tuple[str, ...] = (
    "batch.completed", "batch.failed", "batch.expired", "batch.cancelled", "response.completed",
    "response.failed", "response.cancelled", "response.incomplete", "eval.run.succeeded", "eval.run.failed",
    "eval.run.canceled", "fine_tuning.job.succeeded", "fine_tuning.job.failed", "fine_tuning.job.cancelled",
    "realtime.call.incoming", "video.completed", "video.failed", "agent.environment.ready",
    "agent.environment.failed", "agent.environment.suspended", "agent.environment.expired",
    "agent.session.created", "agent.session.action_required", "agent.session.in_progress",
    "agent.session.idle", "agent.session.failed", "safety.alert.created",
)

_HEAD = {"id": "s!", "created_at": "i!", "event_types": "l!", "name": "s!", "object": "=webhook_endpoint"}
_TAIL = {"signing_secret_hint": "s", "url": "s!", "updated_at": "i"}
_RESULTS: dict[str, dict[str, str]] = {
    "WebhookEndpoint": {**_HEAD, **_TAIL},
    "WebhookEndpointWithSecret": {**_HEAD, "signing_secret": "s!", **_TAIL},
    "DeletedWebhookEndpoint": {"id": "s!", "deleted": "b!", "object": "=webhook_endpoint.deleted"},
    "WebhookEndpointTestResult": {"event_type": "s!", "object": "=webhook_endpoint.test", "status_code": "i!",
                                  "success": "b!", "webhook_endpoint_id": "s!"},
    "WebhookEventTypeList": {"data": "l!", "object": "=list"},
}


def _repr_without_secrets(self) -> str:
    # As the official models (``signing_secret`` is ``repr=False``): the secret is an attribute,
    # never in a repr, so never in a log line or traceback that prints one. Unknown keys naming a
    # secret are left out too.
    parts = [f"{k}={getattr(self, k)!r}" for k in self._fields
             if not secret_key(k) and getattr(self, k) is not None]
    if self._extra:
        parts += [f"{k}={v!r}" for k, v in self._extra.items() if not secret_key(k)]
    return f"{type(self).__name__}({', '.join(parts)})"


for _name, _spec in _RESULTS.items():
    _cls = _make(_name, _spec, Model, f"``openai.types.webhooks.{_name}`` of the official ``openai`` package.")
    _cls.model_fields = _FieldsOf()
    _cls.__repr__ = _repr_without_secrets
del _name, _spec, _cls, _HEAD, _TAIL
WebhookEndpoint = _CLASSES["WebhookEndpoint"]
WebhookEndpointWithSecret = _CLASSES["WebhookEndpointWithSecret"]
DeletedWebhookEndpoint = _CLASSES["DeletedWebhookEndpoint"]
WebhookEndpointTestResult = _CLASSES["WebhookEndpointTestResult"]
WebhookEventTypeList = _CLASSES["WebhookEventTypeList"]
__all__ += [*_RESULTS, "ENDPOINT_EVENT_TYPES", "AsyncCursorPage", "AsyncPaginator", "EventTypes"]


class _Page(Model):
    """The paging half of :class:`AsyncCursorPage` (the official ``BaseAsyncPage``)."""

    __slots__ = ("_fetch",)

    def _get_page_items(self) -> list:
        return self.data or []

    def has_next_page(self) -> bool:
        """False when the API said ``has_more: false`` or the page is empty; True otherwise."""
        if self.has_more is False:
            return False
        return bool(self.data) and self.next_page_info() is not None

    def next_page_info(self) -> dict | None:
        """The query that fetches the next page (``{"after": <last id>}``), or None."""
        data = self.data
        if not data or not isinstance(getattr(data[-1], "id", None), str):
            return None
        return {"after": data[-1].id}

    async def get_next_page(self):
        info = self.next_page_info()
        if not info:
            raise RuntimeError("No next page expected; please check `.has_next_page()` before calling "
                               "`.get_next_page()`.")
        return await self._fetch(info["after"])

    async def iter_pages(self):
        page = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = await page.get_next_page()

    async def __aiter__(self):
        async for page in self.iter_pages():
            for item in page._get_page_items():
                yield item


AsyncCursorPage = _make("AsyncCursorPage", {"data": "[@WebhookEndpoint!", "has_more": "b"}, _Page,
                        "A page of webhook endpoints, as the official ``AsyncCursorPage[WebhookEndpoint]``: "
                        "``data``, ``has_more`` (and ``first_id``, ``last_id``, ``object``), "
                        "``has_next_page()``, ``get_next_page()``, ``iter_pages()``, ``async for`` over "
                        "every endpoint of this page and the following ones.")
AsyncCursorPage.model_fields = _FieldsOf()
AsyncCursorPage.__repr__ = _repr_without_secrets


class AsyncPaginator:
    """What ``client.webhooks.list(...)`` returns, as the official ``AsyncPaginator``: ``await`` it
    for the first :class:`AsyncCursorPage`, or ``async for`` over every endpoint across pages."""

    __slots__ = ("_first",)

    def __init__(self, first) -> None:
        self._first = first

    def __await__(self):
        return self._first().__await__()

    async def __aiter__(self):
        async for item in await self:
            yield item

    def __repr__(self) -> str:
        return "<AsyncPaginator webhook endpoints>"


# -- the client attachment -----------------------------------------------------------------------


def _endpoint_path(webhook_endpoint_id: str, verb: str = "") -> str:
    if not webhook_endpoint_id:
        raise ValueError(f"Expected a non-empty value for `webhook_endpoint_id` but received "
                         f"{webhook_endpoint_id!r}")
    return f"/webhook_endpoints/{_path_segment(webhook_endpoint_id)}" + (f"/{verb}" if verb else "")


class Webhooks:
    """``client.webhooks``, as the official ``AsyncWebhooks``.

    ``unwrap`` and ``verify_signature`` (synchronous, as the official ones) check against the
    client's ``webhook_secret`` (``OPENAI_WEBHOOK_SECRET``) unless ``secret=`` is given.

    The project's webhook endpoints (``/v1/webhook_endpoints``; coroutines, as the official async
    client's): ``create``, ``retrieve``, ``update``, ``list`` (paginated), ``delete``,
    ``rotate_secret``, ``test``, and ``event_types.list()``. Results have the official models'
    shapes (``ep.id``, ``ep.signing_secret``, ``to_dict()``, ``model_dump()``...; no repr shows a
    secret). An error status raises the typed :class:`rtfast.HandshakeError` subclass with the
    API's message (``NotFoundError`` for an unknown id; ``BadRequestError`` for bad input), a failed
    connection :class:`rtfast.errors.ConnectError`. ``with_raw_response`` gives the same methods
    returning :class:`rtfast.calls.RawResponse` (``parse()`` is the plain method's result).
    """

    __slots__ = ("_client", "_raw")

    def __init__(self, client, _raw: bool = False) -> None:
        self._client = client
        self._raw = _raw

    def __repr__(self) -> str:
        return f"<Webhooks secret={'set' if self._client.webhook_secret else 'unset'}>"

    def unwrap(self, payload: str | bytes, headers, *, secret: str | None = None):
        """Validate that ``payload`` was sent by OpenAI, then parse it into its event class."""
        return unwrap(payload, headers, secret=self._client.webhook_secret if secret is None else secret)

    def verify_signature(self, payload: str | bytes, headers, *, secret: str | None = None,
                         tolerance: int = 300) -> None:
        """Raise unless ``payload`` was signed by OpenAI within ``tolerance`` seconds."""
        verify_signature(payload, headers, secret=self._client.webhook_secret if secret is None else secret,
                         tolerance=tolerance)

    # -- endpoint management -----------------------------------------------------------------------

    @property
    def with_raw_response(self) -> Webhooks:
        """The same methods, returning a :class:`rtfast.calls.RawResponse` (status, headers, body;
        ``parse()`` gives what the plain method returns)."""
        return Webhooks(self._client, True)

    @property
    def event_types(self) -> EventTypes:
        """``event_types.list()``: the event types an endpoint may subscribe to."""
        return EventTypes(self)

    async def create(self, *, event_types: list[str], name: str, url: str, extra_headers: dict | None = None,
                     extra_query: dict | None = None, extra_body: dict | None = None,
                     timeout: float | None = None) -> WebhookEndpointWithSecret:
        """Create a webhook endpoint for the project: deliveries of ``event_types`` go to ``url``
        (HTTPS). The result's ``signing_secret`` (``whsec_...``) is shown only here and by
        ``rotate_secret``: give it to ``unwrap(..., secret=)`` (or ``OPENAI_WEBHOOK_SECRET``)."""
        body = {"event_types": event_types, "name": name, "url": url}
        return await self._request("create", "POST", "/webhook_endpoints", body, None, WebhookEndpointWithSecret,
                                   extra_headers, extra_query, extra_body, timeout)

    async def retrieve(self, webhook_endpoint_id: str, *, extra_headers: dict | None = None,
                       extra_query: dict | None = None, extra_body: dict | None = None,
                       timeout: float | None = None) -> WebhookEndpoint:
        """One endpoint of the project (its secret only as ``signing_secret_hint``)."""
        return await self._request("retrieve", "GET", _endpoint_path(webhook_endpoint_id), None, None,
                                   WebhookEndpoint, extra_headers, extra_query, extra_body, timeout)

    async def update(self, webhook_endpoint_id: str, *, event_types: list[str] = NOT_GIVEN, name: str = NOT_GIVEN,
                     url: str = NOT_GIVEN, extra_headers: dict | None = None, extra_query: dict | None = None,
                     extra_body: dict | None = None, timeout: float | None = None) -> WebhookEndpoint:
        """Change an endpoint's ``event_types`` (the complete new set), ``name`` or ``url``;
        an argument left out is not sent."""
        body = {k: v for k, v in (("event_types", event_types), ("name", name), ("url", url)) if given(v)}
        return await self._request("update", "POST", _endpoint_path(webhook_endpoint_id), body, None,
                                   WebhookEndpoint, extra_headers, extra_query, extra_body, timeout)

    def list(self, *, after: str | None = NOT_GIVEN, limit: int = NOT_GIVEN, extra_headers: dict | None = None,
             extra_query: dict | None = None, extra_body: dict | None = None,
             timeout: float | None = None) -> AsyncPaginator:
        """The project's endpoints, newest first, ``limit`` to a page (the API's default: 20).
        Not a coroutine, as the official one: ``await`` the result for the first page, or
        ``async for`` over it for every endpoint (each next page is fetched with ``after=`` the
        last id, the same ``limit``, ``extra_query`` and headers)."""
        query = {k: v for k, v in (("after", after), ("limit", limit)) if given(v) and v is not None}

        async def fetch(after_id: str | None, raw: bool):
            # a next page's cursor wins over extra_query's own "after", as officially
            eq = extra_query if after_id is None else {**(extra_query or {}), "after": after_id}
            result = await self._request("list", "GET", "/webhook_endpoints", None, query, AsyncCursorPage,
                                         extra_headers, eq, extra_body, timeout, raw=raw)
            (result.parse() if raw else result)._fetch = lambda next_after: fetch(next_after, False)
            return result

        return AsyncPaginator(lambda: fetch(None, self._raw))

    async def delete(self, webhook_endpoint_id: str, *, extra_headers: dict | None = None,
                     extra_query: dict | None = None, extra_body: dict | None = None,
                     timeout: float | None = None) -> DeletedWebhookEndpoint:
        """Delete an endpoint: no more deliveries to it, and its id is unknown from then on."""
        return await self._request("delete", "DELETE", _endpoint_path(webhook_endpoint_id), None, None,
                                   DeletedWebhookEndpoint, extra_headers, extra_query, extra_body, timeout)

    async def rotate_secret(self, webhook_endpoint_id: str, *, keep_old_secret_active_for_24_hours: bool = NOT_GIVEN,
                            extra_headers: dict | None = None, extra_query: dict | None = None,
                            extra_body: dict | None = None, timeout: float | None = None) -> WebhookEndpointWithSecret:
        """A new signing secret (the result's ``signing_secret``). The old one stops verifying at
        once unless ``keep_old_secret_active_for_24_hours=True`` (deliveries then carry a signature
        by each, so receivers may switch at leisure)."""
        body = {} if not given(keep_old_secret_active_for_24_hours) else {
            "keep_old_secret_active_for_24_hours": keep_old_secret_active_for_24_hours}
        return await self._request("rotate_secret", "POST", _endpoint_path(webhook_endpoint_id, "rotate_secret"),
                                   body, None, WebhookEndpointWithSecret, extra_headers, extra_query, extra_body,
                                   timeout)

    async def test(self, webhook_endpoint_id: str, *, event_type: str, extra_headers: dict | None = None,
                   extra_query: dict | None = None, extra_body: dict | None = None,
                   timeout: float | None = None) -> WebhookEndpointTestResult:
        """Have OpenAI send the endpoint a sample ``event_type`` event signed with its secret;
        the result's ``status_code`` is what the endpoint answered."""
        return await self._request("test", "POST", _endpoint_path(webhook_endpoint_id, "test"),
                                   {"event_type": event_type}, None, WebhookEndpointTestResult, extra_headers,
                                   extra_query, extra_body, timeout)

    async def _request(self, what: str, method: str, path: str, body: dict | None, query: dict | None, cls: type,
                       extra_headers: dict | None, extra_query: dict | None, extra_body: dict | None,
                       timeout: float | None, *, raw: bool | None = None):
        """One REST call over rtfast.http, shaped as the official client's: ``Accept`` JSON; a POST
        always sends a JSON object; a DELETE declares JSON and sends only ``extra_body``; a GET no body."""
        from urllib.parse import urlencode

        from rtfast._rest import rest_request

        client = self._client
        query = {**(query or {}), **(extra_query or {})}
        url = client.base_url + path + (f"?{urlencode(query, doseq=True)}" if query else "")
        headers = {"Accept": "application/json"}
        data = None
        if method == "POST":
            headers["Content-Type"] = "application/json"
            data = _dumps({**(body or {}), **(extra_body or {})})
        elif method == "DELETE":
            headers["Content-Type"] = "application/json"
            data = _dumps(extra_body) if extra_body else None
        headers = _merge(client._headers(), headers, extra_headers)
        response = await rest_request(client, f"webhooks.{what}", method, url, headers, data, timeout)
        # no excerpt of the body in these errors: it may hold a signing secret
        try:
            payload = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            raise ProtocolError(f"webhooks.{what}: the API's answer is not JSON") from None
        if type(payload) is not dict:
            raise ProtocolError(f"webhooks.{what}: the API's answer is not a JSON object")
        try:
            parsed = cls._parse(payload)
        except ProtocolError as exc:
            raise ProtocolError(f"webhooks.{what}: {exc.reason}") from None
        if not (self._raw if raw is None else raw):
            return parsed
        return RawResponse(response.status, response.headers, response.body, method, url, parsed)


class EventTypes:
    """``client.webhooks.event_types``: ``list()``, the event types an endpoint may subscribe to."""

    __slots__ = ("_webhooks",)

    def __init__(self, webhooks: Webhooks) -> None:
        self._webhooks = webhooks

    def __repr__(self) -> str:
        return "<EventTypes>"

    @property
    def with_raw_response(self) -> EventTypes:
        return EventTypes(self._webhooks.with_raw_response)

    async def list(self, *, extra_headers: dict | None = None, extra_query: dict | None = None,
                   extra_body: dict | None = None, timeout: float | None = None) -> WebhookEventTypeList:
        """The event types visible to the project (``data``: a list of str)."""
        return await self._webhooks._request("event_types.list", "GET", "/webhook_event_types", None, None,
                                             WebhookEventTypeList, extra_headers, extra_query, extra_body, timeout)
