"""client.realtime.calls and the sideband connection, beside the official client (openai 3.57 to 3.60).

The same calls go through rtfast and through the official client to a local fake of the API
(tests/carrier_fakes.py's HTTP server, which parses requests on its own): the requests must
match in method, path, query, headers and body, and the return values in shape. Then the
embedded server's SIP side (rtfast/_server_calls.py) plays the API for accept/reject/refer/
hangup and the sideband websocket, for both clients.
"""

from __future__ import annotations

import base64
import logging
from email.parser import BytesParser
from email.policy import HTTP

import orjson
import websockets
import pytest

import rtfast
from carrier_fakes import FakeServer, Reply, WebhookReceiver
from rtfast._server_calls import SipCalls
from rtfast.errors import ConnectError, HandshakeError, NotFoundError
from rtfast.server import FunctionCall, RealtimeServer, Script

openai = pytest.importorskip("openai")

KINDS = ["rtfast", "openai"]
KEY = "sk-test-secret-key-123"
SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
SDP_ANSWER = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=answer\r\n"


def client_for(kind, base_url, ws_url=None, **kw):
    if kind == "openai":
        return openai.AsyncOpenAI(api_key=KEY, base_url=base_url, websocket_base_url=ws_url, max_retries=0, **kw)
    return rtfast.AsyncOpenAI(api_key=KEY, base_url=base_url, websocket_base_url=ws_url, **kw)


def api(req):
    """The fake API: the calls endpoints answer as OpenAI does (empty 200, SDP for create, JSON errors)."""
    if req.headers.get("authorization") != f"Bearer {KEY}":
        return Reply(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                     "param": None, "code": "invalid_api_key"}})
    if "missing" in req.path:
        return Reply(404, {"error": {"message": "Call not found.", "type": "invalid_request_error",
                                     "param": None, "code": "call_not_found"}})
    if req.path.endswith("/realtime/calls"):
        return Reply(201, SDP_ANSWER, {"Content-Type": "application/sdp"})
    return Reply(200)


async def each_call(calls):
    """The calls made through each client, and what they return."""
    out = []
    out.append(await calls.accept(
        "rtc_123", type="realtime", model="gpt-realtime", instructions="Be brief. Ünïcode too.",
        audio={"output": {"voice": "marin"}}, tools=[{"type": "function", "name": "lookup", "parameters": {}}],
        tool_choice="auto", tracing=None, prompt=None, max_output_tokens="inf", include=[
            "item.input_audio_transcription.logprobs"], output_modalities=["audio"], parallel_tool_calls=True,
        reasoning={"effort": "low"}, truncation="auto"))
    out.append(await calls.accept("rtc_123", type="realtime", extra_body={"x": 1}, extra_query={"q": "1"},
                                  extra_headers={"X-Custom": "yes"}))
    out.append(await calls.reject("rtc_123"))
    out.append(await calls.reject("rtc_123", status_code=486))
    out.append(await calls.refer("rtc_123", target_uri="tel:+14155550123"))
    out.append(await calls.hangup("rtc_123"))
    out.append(await calls.hangup("rtc/with space"))
    answer = await calls.create(sdp="v=0\r\noffer\r\n")
    out.append((answer.content, answer.text))
    answer = await calls.create(sdp="v=0\r\noffer\r\n", session={"type": "realtime", "model": "gpt-realtime"})
    out.append((answer.content, answer.read()))
    return out


def parts(req):
    """A request body as comparable data: JSON parsed, multipart split into (name, type, data)."""
    ctype = req.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + req.body)
        return [(p.get_param("name", header="content-disposition"), p.get_content_type(), p.get_payload(decode=True))
                for p in msg.iter_parts()]
    return req.body


HEADERS = ("authorization", "accept", "x-custom", "openai-organization", "openai-project")


async def test_the_requests_and_results_are_the_official_clients():
    async with FakeServer(api) as fake:
        results = {}
        for kind in KINDS:
            client = client_for(kind, fake.base_url + "/v1", organization="org-1", project="proj-1")
            results[kind] = await each_call(client.realtime.calls)
        ours, theirs = fake.requests[:len(fake.requests) // 2], fake.requests[len(fake.requests) // 2:]
    assert results["rtfast"] == results["openai"]
    assert results["rtfast"][:7] == [None] * 7
    assert results["rtfast"][7] == (SDP_ANSWER, SDP_ANSWER.decode())
    assert len(ours) == len(theirs) == 9
    for a, b in zip(ours, theirs):
        assert (a.method, a.raw_path, a.query) == (b.method, b.raw_path, b.query)
        for name in HEADERS:
            assert a.headers.get(name) == b.headers.get(name), (a, name)
        ctype_a, ctype_b = a.headers.get("content-type", ""), b.headers.get("content-type", "")
        assert ctype_a.split(";")[0] == ctype_b.split(";")[0], a
        assert parts(a) == parts(b), a
    assert [r.raw_path for r in ours] == [
        "/v1/realtime/calls/rtc_123/accept", "/v1/realtime/calls/rtc_123/accept",
        "/v1/realtime/calls/rtc_123/reject", "/v1/realtime/calls/rtc_123/reject",
        "/v1/realtime/calls/rtc_123/refer", "/v1/realtime/calls/rtc_123/hangup",
        "/v1/realtime/calls/rtc%2Fwith%20space/hangup", "/v1/realtime/calls", "/v1/realtime/calls"]
    first = orjson.loads(ours[0].body)
    assert first["tracing"] is None and first["prompt"] is None       # explicit None is sent as null
    assert orjson.loads(ours[1].body) == {"type": "realtime", "x": 1} and ours[1].query == {"q": "1"}
    assert ours[2].body == b"{}" and orjson.loads(ours[3].body) == {"status_code": 486}
    assert ours[5].body == b"" and ours[5].headers["content-type"] == "application/json"
    assert ours[7].headers["content-type"] == "application/sdp" and ours[7].body == b"v=0\r\noffer\r\n"
    assert parts(ours[8]) == [("sdp", "application/sdp", b"v=0\r\noffer\r\n"),
                              ("session", "application/json", b'{"type":"realtime","model":"gpt-realtime"}')]


async def test_errors_are_typed_and_say_what_the_api_said(caplog):
    async with FakeServer(api) as fake:
        client = client_for("rtfast", fake.base_url + "/v1")
        official = client_for("openai", fake.base_url + "/v1")
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(NotFoundError, match="Call not found") as info:
                await client.realtime.calls.accept("rtc_missing", type="realtime")
            assert info.value.status == 404
            with pytest.raises(openai.NotFoundError):
                await official.realtime.calls.accept("rtc_missing", type="realtime")
            wrong = rtfast.AsyncOpenAI(api_key="sk-wrong", base_url=fake.base_url + "/v1")
            with pytest.raises(HandshakeError) as info:
                await wrong.realtime.calls.hangup("rtc_1")
            assert info.value.status == 401 and "sk-wrong" not in str(info.value)
        port = fake.port
    assert KEY not in caplog.text and "sk-wrong" not in caplog.text
    # nothing listens any more
    client = client_for("rtfast", f"http://127.0.0.1:{port}/v1")
    with pytest.raises(ConnectError, match=f"realtime.calls hangup: could not reach 127.0.0.1:{port}") as info:
        await client.realtime.calls.hangup("rtc_1")
    assert KEY not in str(info.value)
    for kind in KINDS:
        calls = client_for(kind, f"http://127.0.0.1:{port}/v1").realtime.calls
        for call in (calls.accept("", type="realtime"), calls.reject(""), calls.refer("", target_uri="tel:1"),
                     calls.hangup("")):
            with pytest.raises(ValueError, match="Expected a non-empty value for `call_id`"):
                await call


# -- against the embedded server's SIP side ----------------------------------------------------------


def _Hook():
    """A loopback webhook receiver: records (headers, body) and answers 200."""
    return WebhookReceiver()


TOOLS = [{"type": "function", "name": "lookup_order", "description": "An order's status",
          "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}]


@pytest.mark.parametrize("kind", KINDS)
async def test_an_incoming_call_end_to_end_webhook_accept_sideband_tool(kind):
    script = Script(reply_text="Your order has shipped.", function_call=FunctionCall("lookup_order", {"order_id": "A1"}))
    async with RealtimeServer(script=script) as server, SipCalls(server, webhook_secret=SECRET) as sip, \
            _Hook() as hook:
        client = client_for(kind, sip.base_url, server.base_url, webhook_secret=SECRET)
        call_id = await sip.ring(hook.url)
        headers, body = await hook.got.get()
        event = client.webhooks.unwrap(body, headers)
        assert event.type == "realtime.call.incoming" and event.data.call_id == call_id
        assert sip.calls[call_id].webhook_status == 200
        await client.realtime.calls.accept(call_id, type="realtime", instructions="You track orders.", tools=TOOLS,
                                           output_modalities=["text"])
        seen = []
        async with client.realtime.connect(call_id=call_id) as conn:
            async for ev in conn:
                seen.append(ev.type)
                if ev.type == "session.created":
                    assert ev.session.instructions == "You track orders."
                    assert [t.name for t in ev.session.tools] == ["lookup_order"]
                if ev.type == "response.function_call_arguments.done":
                    assert orjson.loads(ev.arguments) == {"order_id": "A1"}
                    await conn.conversation.item.create(item={"type": "function_call_output", "call_id": ev.call_id,
                                                              "output": '{"status": "shipped"}'})
                    await conn.response.create()
                if ev.type == "response.output_text.done":
                    seen.append(ev.text)
        call = await sip.wait_ended(call_id)
    assert (call.status, call.ended_by) == ("ended", "caller")
    assert "Your order has shipped." in seen and seen.count("response.done") == 2
    state = server.connections[0]
    assert state.query == {"call_id": call_id} and state.path == "/v1/realtime"
    assert state.headers.get("Authorization", state.headers.get("authorization")) == f"Bearer {KEY}"
    outputs = [e for e in state.received if e["type"] == "conversation.item.create"]
    assert outputs[0]["item"]["output"] == '{"status": "shipped"}'


@pytest.mark.parametrize("kind", KINDS)
async def test_the_sip_side_refuses_what_the_api_refuses(kind):
    async with RealtimeServer() as server, SipCalls(server, webhook_secret=SECRET, caller_says=[]) as sip, \
            _Hook() as hook:
        client = client_for(kind, sip.base_url, server.base_url)
        errors = (NotFoundError, HandshakeError) if kind == "rtfast" else (openai.NotFoundError,
                                                                               openai.BadRequestError)
        call_id = await sip.ring(hook.url)
        with pytest.raises(errors[0]):
            await client.realtime.calls.accept("rtc_nope", type="realtime")
        # a sideband before accepting is refused at the handshake
        with pytest.raises(Exception) as info:
            async with client.realtime.connect(call_id=call_id):
                pass
        if kind == "rtfast":
            assert isinstance(info.value, HandshakeError) and info.value.status == 400
            assert "accept it before connecting" in info.value.message
        else:
            assert "400" in str(info.value)
        # a bad config gets the session.update's error, and the call stays pending
        with pytest.raises(errors[1], match="Unknown parameter: 'session.voice'"):
            await client.realtime.calls.accept(call_id, type="realtime", extra_body={"voice": "marin"})
        await client.realtime.calls.accept(call_id, type="realtime")
        with pytest.raises(errors[1], match="not pending"):
            await client.realtime.calls.accept(call_id, type="realtime")
        await client.realtime.calls.refer(call_id, target_uri="sip:agent@example.com")
        call = await sip.wait_ended(call_id)
        assert (call.status, call.refer_to, call.ended_by) == ("referred", "sip:agent@example.com", "api")
        second = await sip.ring(hook.url)
        await client.realtime.calls.reject(second, status_code=486)
        assert (sip.calls[second].status, sip.calls[second].reject_status) == ("rejected", 486)
        third = await sip.ring(hook.url)
        await client.realtime.calls.accept(third, type="realtime")
        await client.realtime.calls.hangup(third)
        assert (sip.calls[third].status, sip.calls[third].ended_by) == ("ended", "api")
        with pytest.raises(errors[1], match="not active"):
            await client.realtime.calls.hangup(third)


async def test_a_hangup_through_the_api_closes_the_open_sideband():
    script = Script(reply_text="One moment.", latency_ms=5000)
    async with RealtimeServer(script=script) as server, SipCalls(server, webhook_secret=SECRET) as sip, \
            _Hook() as hook:
        client = client_for("rtfast", sip.base_url, server.base_url)
        call_id = await sip.ring(hook.url)
        await client.realtime.calls.accept(call_id, type="realtime", output_modalities=["text"])
        async with client.realtime.connect(call_id=call_id) as conn:
            async for ev in conn:
                if ev.type == "response.created":
                    await client.realtime.calls.hangup(call_id)
        # iteration ended: the server closed the sideband normally
        assert sip.calls[call_id].status == "ended"


@pytest.mark.parametrize("method", ["create", "accept", "reject", "refer", "hangup"])
def test_the_signatures_are_the_official_ones(method):
    import inspect

    from openai.resources.realtime.calls import AsyncCalls as Official

    from rtfast.calls import AsyncCalls

    ours = inspect.signature(getattr(AsyncCalls, method)).parameters
    theirs = inspect.signature(getattr(Official, method)).parameters
    assert [(p.name, p.kind) for p in ours.values()] == [(p.name, p.kind) for p in theirs.values()]
    # the same required arguments; optional ones left out by default
    assert [n for n, p in ours.items() if p.default is p.empty] == [n for n, p in theirs.items() if p.default is p.empty]
    assert inspect.iscoroutinefunction(getattr(AsyncCalls, method))


async def test_with_raw_response_like_the_official_client():
    async with FakeServer(api) as fake:
        got = {}
        for kind in KINDS:
            calls = client_for(kind, fake.base_url + "/v1").realtime.calls.with_raw_response
            accepted = await calls.accept("rtc_1", type="realtime")
            answer = await calls.create(sdp="v=0\r\n")
            got[kind] = (accepted.status_code, accepted.content, accepted.parse(), answer.status_code,
                         answer.headers["content-type"], answer.text, answer.parse().content, accepted.method,
                         str(accepted.url))
        assert got["rtfast"] == got["openai"]
        assert got["rtfast"][:3] == (200, b"", None) and got["rtfast"][6] == SDP_ANSWER


async def test_every_sideband_frame_validates_against_the_official_models():
    from test_server import Client, connect

    script = Script(reply_text="It has shipped.", function_call=FunctionCall("lookup_order", {"order_id": "A1"}))
    async with RealtimeServer(script=script) as server, SipCalls(server, webhook_secret=SECRET) as sip, \
            _Hook() as hook:
        client = client_for("rtfast", sip.base_url, server.base_url)
        call_id = await sip.ring(hook.url)
        await client.realtime.calls.accept(call_id, type="realtime", tools=TOOLS, audio={
            "input": {"format": {"type": "audio/pcmu"}, "transcription": {"model": "gpt-4o-transcribe"}},
            "output": {"format": {"type": "audio/pcmu"}}})
        async with connect(server, path=f"/v1/realtime?call_id={call_id}") as ws:
            peer = Client(ws, beta=False)
            created = await peer.recv()
            assert created["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
            events = await peer.until("response.function_call_arguments.done")
            types = [e["type"] for e in events]
            assert types[:4] == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                                 "input_audio_buffer.committed", "conversation.item.added"]
            done = next(e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed")
            assert done["transcript"] == "Hello, where is my order A1234?"
            await peer.send(type="conversation.item.create", item={
                "type": "function_call_output", "call_id": events[-1]["call_id"], "output": "{}"})
            await peer.send(type="response.create")
            await peer.until("response.output_audio_transcript.done")
            await peer.until("rate_limits.updated")
            with pytest.raises(websockets.ConnectionClosedOK):
                await peer.recv()
            peer.validate()
        assert sip.calls[call_id].status == "ended"
