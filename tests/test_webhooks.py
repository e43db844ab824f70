"""rtfast.webhooks against the official client's webhooks (openai 3.57 to 3.60) and Standard Webhooks.

Signatures made by rtfast verify in the official client and the other way round; a
signature computed by hand (and the Standard Webhooks test vector) verifies in both;
every way a delivery can be wrong gives the same verdict in both, with rtfast's typed
error saying which; every member of the official event union parses to the same dump.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import typing

import orjson
import pytest

openai = pytest.importorskip("openai")
from openai._models import construct_type  # noqa: E402
from openai.types.webhooks.unwrap_webhook_event import UnwrapWebhookEvent  # noqa: E402
from pydantic import BaseModel  # noqa: E402

import rtfast  # noqa: E402
from rtfast import webhooks  # noqa: E402
from rtfast.errors import InvalidWebhookSignatureError, ProtocolError, WebhookSecretError  # noqa: E402

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OTHER = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()


def incoming(call_id="rtc_abc", **data) -> bytes:
    return orjson.dumps({
        "id": "evt_1", "object": "event", "created_at": int(time.time()), "type": "realtime.call.incoming",
        "data": {"call_id": call_id, "sip_headers": [{"name": "From", "value": "<sip:+15551230000@x>"},
                                                     {"name": "X-Account", "value": "42"}], **data}})


def by_hand(body: bytes, key: bytes, webhook_id: str, ts: int) -> str:
    mac = hmac.new(key, f"{webhook_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def official():
    return openai.OpenAI(api_key="sk-test", webhook_secret=SECRET)


def official_verdict(body, headers, secret=SECRET, tolerance=300):
    try:
        official().webhooks.verify_signature(body, headers, secret=secret, tolerance=tolerance)
    except Exception as exc:    # noqa: BLE001 - the verdict is the exception's type
        return type(exc)
    return None


# -- signatures -----------------------------------------------------------------------------------


def test_standard_webhooks_test_vector():
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    body = '{"test": 2432232314}'
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    webhooks.verify_signature(body, headers, secret=secret, tolerance=10**10)
    assert official_verdict(body, headers, secret, 10**10) is None
    with pytest.raises(InvalidWebhookSignatureError) as info:
        webhooks.verify_signature(body, headers, secret=secret)      # 2021: far too old now
    assert info.value.reason == "too_old"


def test_rtfast_signs_what_the_official_client_accepts_and_unwraps_the_same():
    body = incoming()
    headers = webhooks.sign(body, SECRET)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert official_verdict(body, headers) is None
    theirs = official().webhooks.unwrap(body, headers)
    ours = rtfast.AsyncOpenAI(api_key="sk-test", webhook_secret=SECRET).webhooks.unwrap(body, headers)
    assert ours.model_dump() == theirs.model_dump()
    assert ours.to_json() == theirs.to_json()
    assert ours.data.call_id == "rtc_abc" and ours.data.sip_headers[1].value == "42"
    assert isinstance(ours, webhooks.RealtimeCallIncomingWebhookEvent)


@pytest.mark.parametrize("body_type", [bytes, str])
def test_a_hand_made_signature_verifies_in_both(body_type):
    body = incoming()
    ts = int(time.time()) - 20
    headers = {"Webhook-Id": "wh_1", "Webhook-Timestamp": str(ts),
               "Webhook-Signature": by_hand(body, KEY, "wh_1", ts)}
    payload = body if body_type is bytes else body.decode()
    webhooks.verify_signature(payload, headers, secret=SECRET)
    assert official_verdict(payload, headers) is None


def test_a_secret_without_the_whsec_prefix_is_its_own_bytes_as_in_the_official_client():
    body = incoming()
    ts = int(time.time())
    headers = {"webhook-id": "wh_2", "webhook-timestamp": str(ts),
               "webhook-signature": by_hand(body, b"plain-secret", "wh_2", ts)}
    webhooks.verify_signature(body, headers, secret="plain-secret")
    assert official_verdict(body, headers, "plain-secret") is None


def _cases():
    body = incoming()
    now = int(time.time())
    good = by_hand(body, KEY, "wh_1", now)
    other = by_hand(body, base64.b64decode(OTHER[6:]), "wh_1", now)

    def h(sig=good, ts=now, wid="wh_1", drop=()):
        out = {"webhook-id": wid, "webhook-timestamp": str(ts), "webhook-signature": sig}
        return {k: v for k, v in out.items() if k not in drop}

    return [
        # (name, body, headers, rtfast reason or None, tolerance)
        ("good", body, h(), None, 300),
        ("rotating: the second of two signatures", body, h(sig=f"{other} {good}"), None, 300),
        ("bare signature without v1,", body, h(sig=good[3:]), None, 300),
        ("wrong secret", body, h(sig=other), "signature", 300),
        ("body changed", body.replace(b"rtc_abc", b"rtc_abd"), h(), "signature", 300),
        ("id changed", body, h(wid="wh_2"), "signature", 300),
        ("v2 scheme only", body, h(sig="v2," + good[3:]), "signature", 300),
        ("non-ascii signature", body, h(sig="v1,\u00e9t\u00e9"), "signature", 300),
        ("stale", body, h(sig=by_hand(body, KEY, "wh_1", now - 330), ts=now - 330), "too_old", 300),
        ("from the future", body, h(sig=by_hand(body, KEY, "wh_1", now + 330), ts=now + 330), "too_new", 300),
        ("stale within a wider tolerance", body, h(sig=by_hand(body, KEY, "wh_1", now - 500), ts=now - 500), None,
         600),
        ("timestamp not a number", body, h(ts="soon"), "timestamp_format", 300),
        ("no signature header", body, h(drop=("webhook-signature",)), "missing_header", 300),
        ("no timestamp header", body, h(drop=("webhook-timestamp",)), "missing_header", 300),
        ("no id header", body, h(drop=("webhook-id",)), "missing_header", 300),
        ("empty signature header", body, h(sig=""), "missing_header", 300),
    ]


@pytest.mark.parametrize("case", range(len(_cases())), ids=[c[0] for c in _cases()])
def test_every_verdict_matches_the_official_client(case):
    name, body, headers, reason, tolerance = _cases()[case]     # made now: timestamps are relative
    theirs = official_verdict(body, headers, tolerance=tolerance)
    if reason is None:
        webhooks.verify_signature(body, headers, secret=SECRET, tolerance=tolerance)
        assert theirs is None
        return
    with pytest.raises(InvalidWebhookSignatureError) as info:
        webhooks.verify_signature(body, headers, secret=SECRET, tolerance=tolerance)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)       # as the official errors (bare ValueError included)
    if name == "non-ascii signature":
        # the official client lets hmac.compare_digest raise TypeError on it; rtfast says "signature"
        assert theirs is TypeError
    elif name == "empty signature header":
        assert theirs is openai.InvalidWebhookSignatureError
    elif reason == "missing_header":
        assert theirs is ValueError                 # a bare ValueError there; ours is one too
    else:
        assert theirs is openai.InvalidWebhookSignatureError
    # never the secret, never the expected signature
    text = str(info.value) + repr(info.value)
    assert SECRET[6:] not in text and KEY.hex() not in text
    assert by_hand(body, KEY, headers.get("webhook-id", "wh_1"), int(time.time()))[3:] not in text


def test_the_messages_say_what_is_wrong():
    body = incoming()
    now = int(time.time())
    stale = {"webhook-id": "w", "webhook-timestamp": str(now - 1000), "webhook-signature": "v1,x"}
    with pytest.raises(InvalidWebhookSignatureError, match=r"too old \(sent 10\d\d s ago; tolerance 300 s\)"):
        webhooks.verify_signature(body, stale, secret=SECRET)
    with pytest.raises(InvalidWebhookSignatureError, match="Could not find webhook-id header"):
        webhooks.verify_signature(body, {"webhook-signature": "v1,x", "webhook-timestamp": str(now)}, secret=SECRET)
    with pytest.raises(InvalidWebhookSignatureError, match="does not match the expected signature"):
        webhooks.verify_signature(body, {**stale, "webhook-timestamp": str(now)}, secret=SECRET)


@pytest.mark.parametrize("shape", ["dict", "pairs", "bytes_pairs", "httpx"])
def test_headers_in_every_shape_a_framework_hands_over(shape):
    body = incoming()
    headers = webhooks.sign(body, SECRET)
    if shape == "pairs":
        headers = [(k.title(), v) for k, v in headers.items()]
    elif shape == "bytes_pairs":                # ASGI scope["headers"]
        headers = [(k.encode(), v.encode()) for k, v in headers.items()]
    elif shape == "httpx":
        import httpx2 as httpx

        headers = httpx.Headers(headers)
    assert webhooks.unwrap(body, headers, secret=SECRET).data.call_id == "rtc_abc"
    with pytest.raises(TypeError, match="headers must be a mapping"):
        webhooks.verify_signature(body, 42, secret=SECRET)


# -- secrets --------------------------------------------------------------------------------------


def test_no_secret_is_a_clear_error_and_the_client_reads_the_environment(monkeypatch):
    body = incoming()
    headers = webhooks.sign(body, SECRET)
    monkeypatch.delenv("OPENAI_WEBHOOK_SECRET", raising=False)
    client = rtfast.AsyncOpenAI(api_key="sk-test")
    assert client.webhook_secret is None
    with pytest.raises(WebhookSecretError, match="OPENAI_WEBHOOK_SECRET"):
        client.webhooks.unwrap(body, headers)
    with pytest.raises(ValueError):             # the official type, as a base
        client.webhooks.verify_signature(body, headers)
    assert client.webhooks.unwrap(body, headers, secret=SECRET).type == "realtime.call.incoming"
    monkeypatch.setenv("OPENAI_WEBHOOK_SECRET", SECRET)
    client = rtfast.AsyncOpenAI(api_key="sk-test")
    assert client.webhooks.unwrap(body, headers).type == "realtime.call.incoming"
    # an explicit secret= wins over the client's
    with pytest.raises(InvalidWebhookSignatureError):
        client.webhooks.verify_signature(body, headers, secret=OTHER)
    # with_options/copy carry it, and can change it
    assert client.with_options(timeout=5).webhook_secret == SECRET
    other = client.copy(webhook_secret=OTHER)
    with pytest.raises(InvalidWebhookSignatureError):
        other.webhooks.unwrap(body, headers)


@pytest.mark.parametrize("secret,what", [("", "empty"), ("whsec_", "empty"), ("whsec_abc", "not valid base64"),
                                         (42, "must be a str")])
def test_a_malformed_secret_is_a_secret_error_without_the_secret(secret, what):
    body = incoming()
    headers = webhooks.sign(body, SECRET)
    with pytest.raises(WebhookSecretError, match=what) as info:
        webhooks.verify_signature(body, headers, secret=secret)
    assert not isinstance(info.value, InvalidWebhookSignatureError)   # our setup, not the sender's fault
    if isinstance(secret, str) and len(secret) > 6:
        assert secret[6:] not in str(info.value)


def test_secrets_stay_out_of_reprs_and_logs(caplog):
    client = rtfast.AsyncOpenAI(api_key="sk-test-key", webhook_secret=SECRET)
    for text in (repr(client), repr(client.webhooks), str(client.webhooks)):
        assert SECRET not in text and SECRET[6:] not in text and "sk-test-key" not in text
    assert "secret=set" in repr(client.webhooks)
    body = incoming()
    with caplog.at_level("DEBUG"):
        client.webhooks.unwrap(body, webhooks.sign(body, SECRET))
        with pytest.raises(InvalidWebhookSignatureError):
            client.webhooks.unwrap(body, webhooks.sign(body, OTHER))
    assert SECRET[6:] not in caplog.text


# -- typed events ---------------------------------------------------------------------------------


def _members():
    return typing.get_args(typing.get_args(UnwrapWebhookEvent)[0])


def _sample(model: type[BaseModel]) -> dict:
    """A full payload for an official model: every field set (lists with two entries)."""
    out = {}
    for name, field in model.model_fields.items():
        out[name] = _value(field.annotation, name)
    return out


def _value(tp, name):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        return _value(next(a for a in args if a is not type(None)), name)
    if origin is typing.Literal:
        return args[0]
    if origin in (list, typing.List):                   # noqa: UP006
        return [_value(args[0], name), _value(args[0], name)]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _sample(tp)
    return {str: f"{name}_x", int: 1700000000}[tp]


def test_the_event_table_is_the_official_union():
    members = _members()
    assert list(webhooks.WEBHOOK_EVENTS) == [m.model_fields["type"].annotation.__args__[0] for m in members]
    for member in members:
        ours = webhooks.WEBHOOK_EVENTS[member.model_fields["type"].annotation.__args__[0]]
        assert ours.__name__ == member.__name__

        def same(a, b):
            assert list(a.model_fields) == list(b.model_fields), (a, b)
            for (name, fa), fb in zip(a.model_fields.items(), b.model_fields.values()):
                assert fa.is_required() == fb.is_required(), (a, name)
                sub = fb.annotation
                while typing.get_origin(sub) in (typing.Union, list, typing.List):      # noqa: UP006
                    sub = next(x for x in typing.get_args(sub) if x is not type(None))
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    nested = fa.annotation
                    while typing.get_origin(nested) in (typing.Union, list, typing.List):  # noqa: UP006
                        nested = next(x for x in typing.get_args(nested) if x is not type(None))
                    same(nested, sub)

        same(ours, member)


@pytest.mark.parametrize("member", _members(), ids=lambda m: m.__name__)
def test_every_event_unwraps_as_the_official_client_does(member):
    payload = _sample(member)
    body = orjson.dumps(payload)
    headers = webhooks.sign(body, SECRET)
    theirs = official().webhooks.unwrap(body, headers)
    ours = webhooks.unwrap(body, headers, secret=SECRET)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.type == theirs.type
    for kwargs in ({}, {"exclude_unset": True}, {"exclude_none": True}, {"mode": "json"}):
        assert ours.model_dump(**kwargs) == theirs.model_dump(**kwargs), kwargs
    assert ours.model_dump_json() == theirs.model_dump_json()
    assert ours.to_dict() == theirs.to_dict() == payload
    # sparse: only the required fields
    required = {k: v for k, v in payload.items() if member.model_fields[k].is_required()}
    theirs = construct_type(type_=UnwrapWebhookEvent, value=orjson.loads(orjson.dumps(required)))
    ours = webhooks.parse_event(orjson.dumps(required))
    assert ours.model_dump() == theirs.model_dump()
    assert ours.to_json() == theirs.to_json()


def test_live_transport_incoming_and_unknown_events_and_extra_fields():
    body = orjson.dumps({"id": "evt_2", "object": "event", "created_at": 1, "type": "live.transport.incoming",
                         "data": {"session_id": "live_1", "type": "sip", "sip_headers": [], "new_field": 7},
                         "brand_new": True})
    event = webhooks.unwrap(body, webhooks.sign(body, SECRET), secret=SECRET)
    assert isinstance(event, webhooks.LiveTransportIncomingWebhookEvent)
    assert event.data.session_id == "live_1" and event.data.new_field == 7 and event.brand_new is True
    assert event.to_dict() == orjson.loads(body)
    body = orjson.dumps({"id": "evt_3", "object": "event", "created_at": 1, "type": "video.completed",
                         "data": {"id": "video_1"}})
    event = webhooks.unwrap(body, webhooks.sign(body, SECRET), secret=SECRET)
    assert isinstance(event, webhooks.UnknownWebhookEvent)
    assert event.type == "video.completed" and event.data == {"id": "video_1"} and event.raw == orjson.loads(body)


@pytest.mark.parametrize("body,match", [
    (b"not json", "not JSON"),
    (b"[1]", "not a JSON object"),
    (b'{"id": "x"}', "no string 'type'"),
    (b'{"type": "realtime.call.incoming", "created_at": "yesterday"}', "created_at: expected an integer"),
    (b'{"type": "realtime.call.incoming", "data": {"sip_headers": {"a": 1}}}', "sip_headers: expected an array"),
    (b'{"type": "realtime.call.incoming", "data": 5}', "data: expected an object"),
    (b'{"type": "realtime.call.incoming", "data": {"sip_headers": ["From"]}}', r"sip_headers\[\]: expected an object, got string"),
])
def test_a_signed_but_malformed_body_is_a_protocol_error(body, match):
    with pytest.raises(ProtocolError, match=match):
        webhooks.unwrap(body, webhooks.sign(body, SECRET), secret=SECRET)


def test_constructing_events_by_keyword():
    event = webhooks.RealtimeCallIncomingWebhookEvent(
        id="evt_1", created_at=1, data={"call_id": "rtc_1", "sip_headers": [{"name": "a", "value": "b"}]})
    assert event.type == "realtime.call.incoming" and event.data.sip_headers[0].name == "a"
    assert event.to_dict() == {"id": "evt_1", "created_at": 1, "type": "realtime.call.incoming",
                               "data": {"call_id": "rtc_1", "sip_headers": [{"name": "a", "value": "b"}]}}
    assert webhooks.parse_event(orjson.dumps(event.to_dict())) == event
