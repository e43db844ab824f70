"""client.webhooks' endpoint management, beside the official client (openai 3.57).

First the requests: the same calls through rtfast and through the official client to a local fake
of the API (tests/carrier_fakes.py's own HTTP parsing) must match in method, path, query, headers
and body, and the results in shape. Then the embedded server's SIP side (rtfast/_server_calls.py)
plays the webhook endpoints API: the whole life of an endpoint (create, list across pages,
retrieve, update, a signed test delivery, secret rotation, delete), typed errors for bad input,
ring() delivering to every subscribed endpoint, no secret in a repr or log, and one user function
run unchanged on both clients.
"""

from __future__ import annotations

import inspect
import logging

import orjson
import pytest

import rtfast
from carrier_fakes import FakeServer, Reply, WebhookReceiver
from rtfast import webhooks
from rtfast._server_calls import SipCalls
from rtfast.errors import (AuthenticationError, BadRequestError, ConnectError,
                           InvalidWebhookSignatureError, NotFoundError)
from rtfast.server import RealtimeServer

openai = pytest.importorskip("openai")

KINDS = ["rtfast", "openai"]
KEY = "sk-test-endpoints-key"
INCOMING = "realtime.call.incoming"


def client_for(kind, base_url, key=KEY, **kw):
    if kind == "openai":
        return openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, **kw)
    return rtfast.AsyncOpenAI(api_key=key, base_url=base_url, **kw)


def Receiver(status=200):
    """A loopback webhook endpoint: records (headers, body), answers ``status``."""
    return WebhookReceiver(status, "/hooks/openai")


# -- the requests, against a fake of the API ------------------------------------------------------

EP = {"id": "whe_1", "object": "webhook_endpoint", "created_at": 1700000000, "updated_at": 1700000000,
      "name": "sip", "url": "https://example.com/hook", "event_types": [INCOMING],
      "signing_secret_hint": "whsec_****abcd"}
SECRET = "whsec_" + "c2VjcmV0" * 5 + "ab=="


def fake_api(req):
    if req.headers.get("authorization") != f"Bearer {KEY}":
        return Reply(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                     "param": None, "code": "invalid_api_key"}})
    if "missing" in req.path:
        return Reply(404, {"error": {"message": "No webhook endpoint found.", "type": "invalid_request_error",
                                     "param": None, "code": "not_found"}})
    if req.path == "/v1/webhook_event_types":
        return Reply(200, {"object": "list", "data": [INCOMING, "batch.completed"]})
    if req.path == "/v1/webhook_endpoints" and req.method == "GET":
        # three endpoints, two to a page
        ids = ["whe_3", "whe_2", "whe_1"]
        start = ids.index(req.query["after"]) + 1 if "after" in req.query else 0
        page = ids[start:start + int(req.query.get("limit", 20))]
        return Reply(200, {"object": "list", "data": [{**EP, "id": i} for i in page], "first_id": page[0],
                           "last_id": page[-1], "has_more": start + len(page) < len(ids)})
    if req.method == "DELETE":
        return Reply(200, {"id": "whe_1", "object": "webhook_endpoint.deleted", "deleted": True})
    if req.path.endswith("/test"):
        return Reply(200, {"object": "webhook_endpoint.test", "webhook_endpoint_id": "whe_1",
                           "event_type": INCOMING, "status_code": 204, "success": True})
    if req.method == "POST" and (req.path.endswith("/rotate_secret") or req.path == "/v1/webhook_endpoints"):
        return Reply(200, {**EP, "signing_secret": SECRET})
    return Reply(200, EP)


async def each_call(w):
    """Every endpoint method, with the optional arguments; the results as plain data."""
    out = [await w.create(event_types=[INCOMING], name="sip ünïcode", url="https://example.com/hook")]
    out.append(await w.create(event_types=[INCOMING], name="n", url="https://e.com", extra_body={"x": 1},
                              extra_query={"q": "1"}, extra_headers={"X-Custom": "yes"}))
    out.append(await w.retrieve("whe_1"))
    out.append(await w.retrieve("whe/with space"))
    out.append(await w.update("whe_1", name="renamed"))
    out.append(await w.update("whe_1", event_types=[INCOMING, "batch.completed"], url="https://e.com/2"))
    out.append(await w.update("whe_1"))
    first = await w.list(limit=2)
    out.append(first)
    out.append((first.has_next_page(), first.has_more, first.first_id, first.last_id, first.object))
    second = await first.get_next_page()
    out.append((second.has_next_page(), [e.id for e in second.data]))
    out.append([e.id async for e in w.list(limit=2, extra_query={"q": "2"})])
    out.append(await w.list(after="whe_3"))
    out.append(await w.delete("whe_1"))
    out.append(await w.delete("whe_1", extra_body={"why": "test"}))
    out.append(await w.rotate_secret("whe_1"))
    out.append(await w.rotate_secret("whe_1", keep_old_secret_active_for_24_hours=True))
    out.append(await w.test("whe_1", event_type=INCOMING))
    out.append(await w.event_types.list())
    return [x.to_dict() if hasattr(x, "to_dict") else x for x in out]


HEADERS = ("authorization", "accept", "content-type", "x-custom", "openai-organization", "openai-project")


async def test_the_requests_and_results_are_the_official_clients():
    async with FakeServer(fake_api) as fake:
        results = {}
        for kind in KINDS:
            client = client_for(kind, fake.base_url + "/v1", organization="org-1", project="proj-1")
            results[kind] = await each_call(client.webhooks)
        half = len(fake.requests) // 2
        ours, theirs = fake.requests[:half], fake.requests[half:]
    assert results["rtfast"] == results["openai"]
    assert results["rtfast"][0]["signing_secret"] == SECRET
    assert results["rtfast"][8] == (True, True, "whe_3", "whe_2", "list")
    assert results["rtfast"][9] == (False, ["whe_1"])
    assert results["rtfast"][10] == ["whe_3", "whe_2", "whe_1"]
    assert len(ours) == len(theirs) == 18
    for a, b in zip(ours, theirs):
        assert (a.method, a.raw_path, a.query) == (b.method, b.raw_path, b.query), a
        for name in HEADERS:
            assert a.headers.get(name) == b.headers.get(name), (a, name)
        assert a.body == b.body, a
    assert [(r.method, r.raw_path) for r in ours[:4]] == [
        ("POST", "/v1/webhook_endpoints"), ("POST", "/v1/webhook_endpoints"), ("GET", "/v1/webhook_endpoints/whe_1"),
        ("GET", "/v1/webhook_endpoints/whe%2Fwith%20space")]
    assert orjson.loads(ours[1].body) == {"event_types": [INCOMING], "name": "n", "url": "https://e.com", "x": 1}
    assert ours[1].query == {"q": "1"} and ours[1].headers["x-custom"] == "yes"
    assert ours[6].body == b"{}"                                   # an update of nothing: an empty object
    assert [r.query for r in ours[7:11]] == [{"limit": "2"}, {"limit": "2", "after": "whe_2"},
                                             {"limit": "2", "q": "2"}, {"limit": "2", "q": "2", "after": "whe_2"}]
    assert ours[12].method == "DELETE" and ours[12].body == b"" and ours[13].body == b'{"why":"test"}'
    assert ours[14].body == b"{}" and ours[15].body == b'{"keep_old_secret_active_for_24_hours":true}'
    assert (ours[-1].method, ours[-1].raw_path) == ("GET", "/v1/webhook_event_types")


def _official_async():
    from openai.resources.webhooks import AsyncWebhooks
    from openai.resources.webhooks.event_types import AsyncEventTypes

    return AsyncWebhooks, AsyncEventTypes


METHODS = ["create", "retrieve", "update", "list", "delete", "rotate_secret", "test", "unwrap", "verify_signature",
           "event_types.list"]


@pytest.mark.parametrize("method", METHODS)
def test_the_signatures_are_the_official_ones(method):
    official, official_types = _official_async()
    if method == "event_types.list":
        ours, theirs = webhooks.EventTypes.list, official_types.list
    else:
        ours, theirs = getattr(webhooks.Webhooks, method), getattr(official, method)
    a, b = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    assert [(p.name, p.kind) for p in a.values()] == [(p.name, p.kind) for p in b.values()]
    assert [n for n, p in a.items() if p.default is p.empty] == [n for n, p in b.items() if p.default is p.empty]
    # coroutines where the official async client has them; list, unwrap, verify_signature are not
    assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs)


@pytest.mark.parametrize("name", ["WebhookEndpoint", "WebhookEndpointWithSecret", "DeletedWebhookEndpoint",
                                  "WebhookEndpointTestResult", "WebhookEventTypeList"])
def test_the_result_models_are_the_official_ones(name):
    import openai.types.webhooks as official

    ours, theirs = getattr(webhooks, name), getattr(official, name)
    assert list(ours.model_fields) == list(theirs.model_fields)
    for field, info in ours.model_fields.items():
        assert info.is_required() == theirs.model_fields[field].is_required(), field


def test_the_event_types_are_the_official_literal():
    import typing

    from openai.types.webhooks import webhook_create_params

    hints = typing.get_type_hints(webhook_create_params.WebhookCreateParams)
    literal = typing.get_args(typing.get_args(hints["event_types"])[0])
    assert webhooks.ENDPOINT_EVENT_TYPES == literal


# -- against the embedded server ------------------------------------------------------------------


async def test_an_endpoints_whole_life_against_the_embedded_server():
    async with RealtimeServer() as server, SipCalls(server) as sip, Receiver() as hook:
        client = client_for("rtfast", sip.base_url)
        w = client.webhooks
        assert INCOMING in (await w.event_types.list()).data
        made = [await w.create(event_types=[INCOMING], name=f"sip {i}", url=hook.url) for i in range(5)]
        ep = made[0]
        assert ep.id.startswith("whe_") and ep.object == "webhook_endpoint" and ep.event_types == [INCOMING]
        assert ep.signing_secret.startswith("whsec_") and len({e.signing_secret for e in made}) == 5
        assert ep.signing_secret_hint.endswith(ep.signing_secret[-4:]) and ep.updated_at == ep.created_at

        # pages of two, newest first
        page = await w.list(limit=2)
        assert [e.name for e in page.data] == ["sip 4", "sip 3"] and page.has_more and page.has_next_page()
        assert (page.first_id, page.last_id) == (made[4].id, made[3].id)
        pages = [[e.name for e in p.data] async for p in page.iter_pages()]
        assert pages == [["sip 4", "sip 3"], ["sip 2", "sip 1"], ["sip 0"]]
        assert [e.id async for e in w.list(limit=2)] == [e.id for e in reversed(made)]
        last = await (await (await w.list(limit=2)).get_next_page()).get_next_page()
        assert not last.has_more and not last.has_next_page()
        empty = await w.list(after=made[0].id)
        assert empty.data == [] and not empty.has_next_page()
        with pytest.raises(RuntimeError, match="No next page expected"):
            await empty.get_next_page()
        assert [e.id for e in (await w.list(after=made[2].id)).data] == [made[1].id, made[0].id]
        assert not hasattr((await w.list(limit=1)).data[0], "signing_secret")   # listed without secrets

        got = await w.retrieve(ep.id)
        assert got.to_dict() == {k: v for k, v in ep.to_dict().items() if k != "signing_secret"}
        assert not hasattr(got, "signing_secret")

        # an unchanged update does not advance updated_at; a change does (to the second)
        same = await w.update(ep.id, name="sip 0")
        assert same.updated_at == ep.updated_at
        sip.endpoints[ep.id].updated_at -= 10
        changed = await w.update(ep.id, name="the SIP line", event_types=[INCOMING, "batch.completed"])
        assert (changed.name, changed.event_types, changed.url) == ("the SIP line", [INCOMING, "batch.completed"],
                                                                    hook.url)
        assert changed.updated_at > sip.endpoints[ep.id].created_at - 10
        assert (await w.retrieve(ep.id)).name == "the SIP line"

        # a test delivery: signed with this endpoint's secret, typed as the official event
        result = await w.test(ep.id, event_type=INCOMING)
        assert (result.webhook_endpoint_id, result.event_type, result.status_code, result.success) == \
            (ep.id, INCOMING, 200, True)
        headers, body = await hook.got.get()
        event = w.unwrap(body, headers, secret=ep.signing_secret)
        assert event.type == INCOMING and event.data.call_id.startswith("rtc_")
        with pytest.raises(InvalidWebhookSignatureError):
            w.unwrap(body, headers, secret=made[1].signing_secret)
        hook.status = 500                       # the endpoint's own answer is reported, not raised
        assert (await w.test(ep.id, event_type="batch.completed")).status_code == 500
        await hook.got.get()
        hook.status = 200

        # rotation: the old secret stops verifying at once, the new one verifies
        rotated = await w.rotate_secret(ep.id)
        assert rotated.id == ep.id and rotated.signing_secret != ep.signing_secret
        await w.test(ep.id, event_type=INCOMING)
        headers, body = await hook.got.get()
        assert w.unwrap(body, headers, secret=rotated.signing_secret).type == INCOMING
        with pytest.raises(InvalidWebhookSignatureError, match="does not match"):
            w.verify_signature(body, headers, secret=ep.signing_secret)
        # ... unless the old one is kept: then both verify, one signature each
        kept = await w.rotate_secret(ep.id, keep_old_secret_active_for_24_hours=True)
        await w.test(ep.id, event_type=INCOMING)
        headers, body = await hook.got.get()
        assert len(headers["webhook-signature"].split()) == 2
        for secret in (kept.signing_secret, rotated.signing_secret):
            w.verify_signature(body, headers, secret=secret)
        with pytest.raises(InvalidWebhookSignatureError):
            w.verify_signature(body, headers, secret=ep.signing_secret)

        deleted = await w.delete(ep.id)
        assert (deleted.id, deleted.deleted, deleted.object) == (ep.id, True, "webhook_endpoint.deleted")
        for gone in (w.retrieve(ep.id), w.update(ep.id, name="x"), w.test(ep.id, event_type=INCOMING),
                     w.rotate_secret(ep.id), w.delete(ep.id)):
            with pytest.raises(NotFoundError, match=f"No webhook endpoint found with id '{ep.id}'") as info:
                await gone
            assert info.value.status == 404
        assert ep.id not in [e.id async for e in w.list()]
    assert [d[1:] for d in sip.deliveries] == [(INCOMING, 200), ("batch.completed", 500), (INCOMING, 200),
                                               (INCOMING, 200)]


async def test_every_event_type_tests_with_a_body_both_clients_unwrap():
    async with RealtimeServer() as server, SipCalls(server) as sip, Receiver() as hook:
        w = client_for("rtfast", sip.base_url).webhooks
        official = client_for("openai", sip.base_url).webhooks
        ep = await w.create(event_types=list(webhooks.ENDPOINT_EVENT_TYPES), name="all", url=hook.url)
        for event_type in (await w.event_types.list()).data:
            assert (await w.test(ep.id, event_type=event_type)).status_code == 200
            headers, body = await hook.got.get()
            ours = w.unwrap(body, headers, secret=ep.signing_secret)      # checks each field's JSON kind
            theirs = official.unwrap(body, {k.lower(): v for k, v in headers.items()}, secret=ep.signing_secret)
            assert ours.type == theirs.type == event_type
            assert ours.to_dict() == theirs.to_dict()


@pytest.mark.parametrize("kind", KINDS)
async def test_bad_input_gets_the_apis_typed_errors(kind):
    async with RealtimeServer() as server, SipCalls(server) as sip, Receiver() as hook:
        w = client_for(kind, sip.base_url).webhooks
        bad_request = BadRequestError if kind == "rtfast" else openai.BadRequestError
        not_found = NotFoundError if kind == "rtfast" else openai.NotFoundError
        cases = [
            (dict(event_types=["call.ringing"], name="x", url=hook.url), "Invalid event type 'call.ringing'"),
            (dict(event_types=[], name="x", url=hook.url), "non-empty array"),
            (dict(event_types=[INCOMING], name="", url=hook.url), "name must be a string of 1 to 256"),
            (dict(event_types=[INCOMING], name="x" * 257, url=hook.url), "name must be a string of 1 to 256"),
            (dict(event_types=[INCOMING], name="x", url="http://example.com/hook"), "must be an HTTPS URL"),
            (dict(event_types=[INCOMING], name="x", url="ftp://127.0.0.1/hook"), "must be an HTTPS URL"),
            (dict(event_types=[INCOMING], name="x", url="https://e.com/" + "a" * 2048), "at most 2048"),
            (dict(event_types=[INCOMING], name="x", url=hook.url, extra_body={"secret": "mine"}),
             "Unknown parameter: 'secret'"),
        ]
        for kwargs, message in cases:
            with pytest.raises(bad_request, match=message) as info:
                await w.create(**kwargs)
            assert info.value.status_code == 400      # (the official name, on both)
        ep = await w.create(event_types=[INCOMING], name="ok", url="https://sip.example.com/hook")
        with pytest.raises(bad_request, match="Invalid event_type"):
            await w.test(ep.id, event_type="nope")
        with pytest.raises(bad_request, match="url must be an HTTPS URL"):
            await w.update(ep.id, url="http://sip.example.com/hook")
        with pytest.raises(bad_request, match="after: no webhook endpoint found with id 'whe_nope'"):
            await w.list(after="whe_nope")
        for limit in (0, 101):
            with pytest.raises(bad_request, match="limit must be an integer from 1 to 100"):
                await w.list(limit=limit)
        with pytest.raises(not_found):
            await w.retrieve("whe_unknown")
        # another project (another key) does not see this one's endpoints
        other = client_for(kind, sip.base_url, key="sk-another-project").webhooks
        with pytest.raises(not_found):
            await other.retrieve(ep.id)
        assert (await other.list()).data == []
        with pytest.raises(ValueError, match="Expected a non-empty value for `webhook_endpoint_id`"):
            await w.retrieve("")
        # no key: 401, in the API's error shape
        from rtfast.http import HttpClient

        http = HttpClient()
        response = await http.request("GET", sip.base_url + "/webhook_endpoints")
        await http.aclose()
        assert response.status == 401 and response.json()["error"]["code"] == "invalid_api_key"
    if kind == "rtfast":
        rotten = client_for("rtfast", sip.base_url)             # nothing listens any more
        with pytest.raises(ConnectError, match="webhooks.create: could not reach 127.0.0.1") as info:
            await rotten.webhooks.create(event_types=[INCOMING], name="x", url="https://e.com")
        assert KEY not in str(info.value)


def malformed_api(req):
    if req.path.endswith("/rotate_secret"):       # a secret, but a field of the wrong kind
        return Reply(200, {**EP, "created_at": "yesterday", "signing_secret": SECRET})
    return Reply(200, b"not json " + SECRET.encode(), {"Content-Type": "application/json"})


async def test_a_malformed_answer_is_a_protocol_error_without_the_body():
    from rtfast.errors import ProtocolError

    async with FakeServer(malformed_api) as fake:
        w = client_for("rtfast", fake.base_url + "/v1").webhooks
        with pytest.raises(ProtocolError, match="webhooks.create: the API's answer is not JSON") as info:
            await w.create(event_types=[INCOMING], name="x", url="https://e.com")
        assert SECRET[6:] not in str(info.value)
        with pytest.raises(ProtocolError, match="created_at: expected an integer, got string") as info:
            await w.rotate_secret("whe_1")
        assert SECRET[6:] not in str(info.value)


async def test_a_key_the_api_refuses_is_an_authentication_error():
    async with FakeServer(fake_api) as fake:
        wrong = client_for("rtfast", fake.base_url + "/v1", key="sk-wrong")
        with pytest.raises(AuthenticationError, match="Incorrect API key") as info:
            await wrong.webhooks.list()
        assert "sk-wrong" not in str(info.value)


async def test_ring_delivers_to_every_subscribed_endpoint_signed_with_its_own_secret():
    async with RealtimeServer() as server, SipCalls(server) as sip, Receiver() as a, Receiver() as b, \
            Receiver() as batches:
        w = client_for("rtfast", sip.base_url).webhooks
        with pytest.raises(ValueError, match="no webhook endpoint is subscribed to realtime.call.incoming"):
            await sip.ring()
        with pytest.raises(ValueError, match="signs with webhook_secret"):
            await sip.ring(a.url)                 # no webhook_secret given to SipCalls
        ep_a = await w.create(event_types=[INCOMING], name="a", url=a.url)
        ep_b = await w.create(event_types=["batch.completed", INCOMING], name="b", url=b.url)
        await w.create(event_types=["batch.completed"], name="batches", url=batches.url)
        call_id = await sip.ring()
        for hook, ep, other in ((a, ep_a, ep_b), (b, ep_b, ep_a)):
            headers, body = await hook.got.get()
            event = w.unwrap(body, headers, secret=ep.signing_secret)
            assert event.type == INCOMING and event.data.call_id == call_id
            with pytest.raises(InvalidWebhookSignatureError):
                w.unwrap(body, headers, secret=other.signing_secret)
        assert batches.got.empty()
        assert sip.calls[call_id].deliveries == {ep_a.id: 200, ep_b.id: 200}
        assert sip.calls[call_id].webhook_status == 200
        # an endpoint that cannot be reached does not stop the others
        await w.update(ep_a.id, url="http://127.0.0.1:1/closed")
        second = await sip.ring()
        await b.got.get()
        assert sip.calls[second].deliveries == {ep_a.id: None, ep_b.id: 200}
        # unsubscribed: no more calls to it
        await w.update(ep_b.id, event_types=["batch.completed"])
        await w.delete(ep_a.id)
        with pytest.raises(ValueError, match="no webhook endpoint is subscribed"):
            await sip.ring()


async def test_ring_to_a_url_still_signs_with_the_webhook_secret():
    secret = "whsec_" + "a2V5" * 8
    async with RealtimeServer() as server, SipCalls(server, webhook_secret=secret) as sip, Receiver() as hook:
        call_id = await sip.ring(hook.url)
        headers, body = await hook.got.get()
        assert webhooks.unwrap(body, headers, secret=secret).data.call_id == call_id
        assert sip.calls[call_id].webhook_status == 200


async def test_secrets_stay_out_of_reprs_logs_and_errors(caplog):
    async with RealtimeServer() as server, SipCalls(server) as sip, Receiver() as hook:
        client = client_for("rtfast", sip.base_url)
        w = client.webhooks
        with caplog.at_level(logging.DEBUG):
            ep = await w.create(event_types=[INCOMING], name="sip", url=hook.url)
            rotated = await w.rotate_secret(ep.id, keep_old_secret_active_for_24_hours=True)
            raw = await w.with_raw_response.rotate_secret(ep.id)
            page = await w.list()
            await w.test(ep.id, event_type=INCOMING)
            await hook.got.get()
            with pytest.raises(BadRequestError) as info:
                await w.create(event_types=["nope"], name="x", url=hook.url)
        secrets = [ep.signing_secret, rotated.signing_secret, raw.parse().signing_secret]
        shown = " ".join([repr(ep), str(ep), repr(rotated), repr(raw), repr(raw.parse()), repr(page), repr(w),
                          repr(sip), repr(sip.endpoints), str(info.value), repr(info.value), caplog.text])
        for secret in secrets:
            assert secret.startswith("whsec_") and secret[6:] not in shown
        assert KEY not in shown
        assert "signing_secret_hint=" in repr(ep) and "signing_secret=" not in repr(ep)
        # the secret is there to read, and in the data dumps, as in the official models
        assert ep.model_dump()["signing_secret"] == ep.to_dict()["signing_secret"] == ep.signing_secret


@pytest.mark.parametrize("kind", KINDS)
async def test_with_raw_response_like_the_official_client(kind):
    async with RealtimeServer() as server, SipCalls(server) as sip:
        w = client_for(kind, sip.base_url).webhooks.with_raw_response
        created = await w.create(event_types=[INCOMING], name="raw", url="https://e.com/h")
        listed = await w.list(limit=1)
        types = await w.event_types.list()
        assert (created.status_code, listed.status_code, types.status_code) == (200, 200, 200)
        assert orjson.loads(created.content)["signing_secret"] == created.parse().signing_secret
        assert created.parse().name == "raw" and listed.parse().data[0].id == created.parse().id
        assert INCOMING in types.parse().data and created.method == "POST" and listed.method == "GET"
        assert created.headers["content-type"] == "application/json"
        second = await listed.parse().get_next_page()        # a page of a raw list pages on, plainly
        assert second.data == [] and not second.has_more


# -- the drop-in proof: one user function, both clients ---------------------------------------------


async def register_sip_endpoint(client, url: str) -> dict:
    """What a team answering SIP calls writes: (re)register its realtime.call.incoming endpoint,
    prove it with a test delivery, rotate the secret, clean up. Returns what it saw."""
    seen = {}
    stale = [ep.id async for ep in client.webhooks.list(limit=1) if ep.url == url]
    for endpoint_id in stale:                                 # drop earlier registrations of this URL
        await client.webhooks.delete(endpoint_id)
    ep = await client.webhooks.create(event_types=["realtime.call.incoming"], name="sip-line", url=url)
    seen["created"] = (ep.object, ep.name, ep.url, ep.event_types, ep.signing_secret.startswith("whsec_"))
    ep = await client.webhooks.update(ep.id, name="sip-line (prod)")
    seen["updated"] = (ep.name, ep.signing_secret_hint is not None, sorted(ep.model_dump()))
    first = await client.webhooks.list(limit=2)
    seen["page"] = ([e.name for e in first.data], first.has_more, first.has_next_page())
    seen["all"] = [e.name async for e in client.webhooks.list(limit=2)]
    result = await client.webhooks.test(ep.id, event_type="realtime.call.incoming")
    seen["test"] = (result.object, result.success, result.status_code, result.event_type)
    secret = (await client.webhooks.rotate_secret(ep.id)).signing_secret
    seen["rotated"] = secret.startswith("whsec_")
    seen["types"] = "realtime.call.incoming" in (await client.webhooks.event_types.list()).data
    deleted = await client.webhooks.delete(ep.id)
    seen["deleted"] = (deleted.object, deleted.deleted)
    try:
        await client.webhooks.retrieve(ep.id)
    except Exception as exc:                 # the official NotFoundError / rtfast's NotFoundError
        seen["after delete"] = (type(exc).__name__, getattr(exc, "status_code", getattr(exc, "status", None)))
    return seen, secret


async def test_the_same_user_function_runs_on_both_clients():
    async with RealtimeServer() as server, SipCalls(server) as sip, Receiver() as hook:
        results = {}
        for kind in KINDS:
            client = client_for(kind, sip.base_url, key=f"sk-{kind}-project")
            await client.webhooks.create(event_types=["batch.completed"], name="batch jobs", url="https://e.com/b")
            await client.webhooks.create(event_types=[INCOMING], name="old", url=hook.url)
            results[kind], secret = await register_sip_endpoint(client, hook.url)
            headers, body = await hook.got.get()
            # the test delivery verifies with the secret it was sent with, not with the rotated one
            with pytest.raises(InvalidWebhookSignatureError):
                webhooks.verify_signature(body, headers, secret=secret)
    assert results["rtfast"] == results["openai"]
    assert results["rtfast"]["page"] == (["sip-line (prod)", "batch jobs"], False, False)
    assert results["rtfast"]["all"] == ["sip-line (prod)", "batch jobs"]
    assert results["rtfast"]["test"] == ("webhook_endpoint.test", True, 200, INCOMING)
    assert results["rtfast"]["after delete"] == ("NotFoundError", 404)


async def test_both_clients_go_through_the_environments_proxy(monkeypatch):
    """As the official client (httpx reads HTTP(S)_PROXY, ALL_PROXY, NO_PROXY), rtfast's REST
    calls go through the proxy the environment names, and around it for a NO_PROXY host."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    async with FakeServer(fake_api) as proxy, FakeServer(fake_api) as direct:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        results = {}
        for kind in KINDS:                  # a name with no DNS: only the proxy can reach it
            w = client_for(kind, "http://api.unresolvable.test/v1").webhooks
            results[kind] = (await w.retrieve("whe_1")).to_dict()
        assert results["rtfast"] == results["openai"] == EP
        assert [(r.path, r.headers["host"]) for r in proxy.requests] == [
            ("/v1/webhook_endpoints/whe_1", "api.unresolvable.test")] * 2
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")       # nothing listens there ...
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")                  # ... and this host goes direct
        for kind in KINDS:
            ep = await client_for(kind, direct.base_url + "/v1").webhooks.retrieve("whe_1")
            assert ep.id == "whe_1"
        assert len(direct.requests) == 2 and len(proxy.requests) == 2



async def test_a_next_page_cursor_wins_over_extra_query():
    """``list(extra_query={"after": ...})`` pages on from there, as the official client (the next
    page's cursor wins; it paged the same page forever)."""
    async with FakeServer(fake_api) as fake:
        ids = {}
        for kind in KINDS:
            w = client_for(kind, fake.base_url + "/v1").webhooks
            ids[kind] = [e.id async for e in w.list(limit=1, extra_query={"after": "whe_3"})]
    assert ids["rtfast"] == ids["openai"] == ["whe_2", "whe_1"]
