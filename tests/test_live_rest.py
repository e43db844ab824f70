"""client.live REST calls (create, sessions.accept/reject/refer/hangup/fork/download_recording):
rtfast and the official client against the same local fake endpoint send the same requests and
read the same answers."""

from __future__ import annotations

import inspect
import json

import pytest

pytest.importorskip("openai")
import openai  # noqa: E402

import rtfast  # noqa: E402
from carrier_fakes import FakeServer, Reply  # noqa: E402
from rtfast.errors import AuthenticationError, NotFoundError  # noqa: E402

WEBRTC = {"session": {"id": "sess_new"}, "transport": {"type": "webrtc", "sdp": "v=0 answer"}}
RECORDING = bytes(range(256)) * 4


def live_api(req):
    """The Live REST API as far as these calls go: bearer auth, JSON bodies, the API's error shape."""
    if req.headers.get("authorization") != "Bearer sk-test":
        return Reply(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                     "param": None, "code": "invalid_api_key"}})
    if req.path == "/v1/live/sessions" and req.method == "POST":
        assert req.json["transport"]["type"] == "webrtc"
        return Reply(200, WEBRTC)
    parts = req.raw_path.split("/")        # /v1/live/sessions/{id}/{action}, the id still quoted
    if len(parts) != 6 or parts[4] in ("missing", ""):
        return Reply(404, {"error": {"message": f"Session {parts[4] if len(parts) > 4 else ''} not found.",
                                     "type": "invalid_request_error", "param": None, "code": "not_found"}})
    action = parts[5]
    if action == "content" and req.method == "GET":
        return Reply(200, RECORDING, {"Content-Type": "audio/wav"})
    if action == "fork":
        return Reply(200, WEBRTC)
    if action in ("accept", "reject", "refer", "hangup") and req.method == "POST":
        return Reply(200, b"")
    return Reply(405, {"error": {"message": "no", "type": "invalid_request_error", "param": None, "code": None}})


async def calls(client, ours: bool):
    live = client.live
    created = await live.create(session={"model": "gpt-live-1"}, transport={"type": "webrtc", "sdp": "v=0 offer"})
    out = [created if ours else created.to_dict()]
    out.append(await live.sessions.accept("sess_1", session={"model": "gpt-live-1", "instructions": "Be brief"}))
    out.append(await live.sessions.reject("sess_1", status_code=486))
    out.append(await live.sessions.refer("sess_1", target_uri="tel:+14155550123"))
    out.append(await live.sessions.hangup("sess_1"))
    forked = await live.sessions.fork("sess_1", transport={"type": "webrtc", "sdp": "v=0 offer2"},
                                      session={"instructions": "Continue"}, extra_body={"x": 1})
    out.append(forked if ours else forked.to_dict())
    recording = await live.sessions.download_recording("sess_1")
    out.append(recording.content if ours else recording.read())
    return out


async def test_live_rest_calls_match_the_official_client():
    async with FakeServer(live_api) as fake:
        base = fake.base_url + "/v1"
        theirs = await calls(openai.AsyncOpenAI(api_key="sk-test", base_url=base, max_retries=0), ours=False)
        n = len(fake.requests)
        ours = await calls(rtfast.AsyncOpenAI(api_key="sk-test", base_url=base), ours=True)
        assert ours == theirs
        assert ours[0] == WEBRTC and ours[1:5] == [None] * 4 and ours[6] == RECORDING
        for a, b in zip(fake.requests[:n], fake.requests[n:]):
            assert (a.method, a.path, a.query) == (b.method, b.path, b.query)
            assert (json.loads(a.body) if a.body else None) == (json.loads(b.body) if b.body else None)
            for header in ("authorization", "content-type", "accept"):
                assert a.headers.get(header) == b.headers.get(header), (a.path, header)
        assert [r.path for r in fake.requests[n:]] == [
            "/v1/live/sessions", "/v1/live/sessions/sess_1/accept", "/v1/live/sessions/sess_1/reject",
            "/v1/live/sessions/sess_1/refer", "/v1/live/sessions/sess_1/hangup", "/v1/live/sessions/sess_1/fork",
            "/v1/live/sessions/sess_1/content"]


async def test_the_calls_go_through_the_environments_proxy(monkeypatch):
    """As the official client's: HTTP(S)_PROXY / ALL_PROXY, NO_PROXY honoured (rtfast.http.for_url)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    async with FakeServer(live_api) as proxy:
        monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{proxy.port}")
        base = "http://live.unresolvable.test/v1"          # no DNS: only the proxy reaches it
        theirs = await calls(openai.AsyncOpenAI(api_key="sk-test", base_url=base, max_retries=0), ours=False)
        n = len(proxy.requests)
        ours = await calls(rtfast.AsyncOpenAI(api_key="sk-test", base_url=base), ours=True)
        assert ours == theirs and len(proxy.requests) == 2 * n == 14
        assert {r.headers["host"] for r in proxy.requests} == {"live.unresolvable.test"}


async def test_errors_are_typed_and_name_the_api_message():
    async with FakeServer(live_api) as fake:
        client = rtfast.AsyncOpenAI(api_key="sk-test", base_url=fake.base_url + "/v1")
        with pytest.raises(NotFoundError, match="Session missing not found"):
            await client.live.sessions.hangup("missing")
        bad = rtfast.AsyncOpenAI(api_key="sk-wrong", base_url=fake.base_url + "/v1")
        with pytest.raises(AuthenticationError) as info:
            await bad.live.sessions.accept("sess_1", session={"model": "gpt-live-1"})
        assert "sk-wrong" not in str(info.value)
        with pytest.raises(ValueError, match="session_id"):
            await client.live.sessions.refer("", target_uri="tel:+1")
        # an id is one path segment, whatever it holds
        await client.live.sessions.hangup("a/b")
        assert fake.requests[-1].raw_path == "/v1/live/sessions/a%2Fb/hangup"


def test_signatures_follow_the_official_ones():
    ours, theirs = rtfast.AsyncOpenAI(api_key="k").live, openai.AsyncOpenAI(api_key="k").live
    for path in ("create", "sessions.accept", "sessions.reject", "sessions.refer", "sessions.hangup",
                 "sessions.fork", "sessions.download_recording"):
        a, b = ours, theirs
        for name in path.split("."):
            a, b = getattr(a, name), getattr(b, name)
        pa, pb = inspect.signature(a).parameters, inspect.signature(b).parameters
        assert list(pa) == list(pb), path
        for name, p in pb.items():
            assert (pa[name].kind, pa[name].default is inspect.Parameter.empty) == \
                (p.kind, p.default is inspect.Parameter.empty), (path, name)
