"""The REST calls that mint keys and sessions (realtime.client_secrets, translations.client_secrets,
beta.realtime.sessions / transcription_sessions, live.create, live.sessions.fork), beside the
official client against the same loopback fake: per-request options (extra_headers, extra_query,
extra_body, timeout) applied as the official client applies them, results read as attributes at every
level (and still as dicts), secrets kept out of reprs, and connection failures typed."""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import pickle
import socket

import pytest

openai = pytest.importorskip("openai")

import rtfast  # noqa: E402
from carrier_fakes import FakeServer, Reply  # noqa: E402
from rtfast.errors import ConnectError, ConnectTimeout, ProtocolError  # noqa: E402

KEY = "ek_fake-0d5c3b8e-8191-a3c1-b9d0f27e"      # (dashes: no secret scanner takes it for a key)
GA_SESSION = {
    "type": "realtime", "object": "realtime.session", "id": "sess_1", "model": "gpt-realtime",
    "output_modalities": ["audio"], "instructions": "Be brief",
    "audio": {"input": {"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "server_vad"}},
              "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.0}},
    "tools": [{"type": "function", "name": "lookup", "description": "Find an order",
               "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}},
              {"type": "function", "name": "transfer", "description": "Transfer", "parameters": {}}],
    "future_field": {"nested": 1},               # a key newer than both clients
}
CLIENT_SECRET = {"value": KEY, "expires_at": 1767225600, "session": GA_SESSION}
BETA_SESSION = {"id": "sess_2", "object": "realtime.session", "model": "gpt-4o-realtime-preview",
                "modalities": ["audio", "text"], "voice": "alloy", "input_audio_format": "g711_ulaw",
                "tools": [{"type": "function", "name": "lookup", "description": "d", "parameters": {}}],
                "client_secret": {"value": KEY, "expires_at": 1767225600}}
TRANSCRIPTION = {"client_secret": {"value": KEY, "expires_at": 1767225600}, "input_audio_format": "g711_ulaw",
                 "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                 "modalities": ["text"], "turn_detection": {"type": "server_vad", "silence_duration_ms": 400}}
TRANSLATION = {"value": KEY, "expires_at": 1767225600,
               "session": {"model": "gpt-realtime-translate", "id": "sess_3", "type": "translation",
                           "audio": {"output": {"language": "fr"}}}}
WEBRTC = {"session": {"id": "sess_live", "model": "gpt-live-1"}, "transport": {"type": "webrtc", "sdp": "v=0 answer"}}

ANSWERS = {"/v1/realtime/client_secrets": CLIENT_SECRET, "/v1/realtime/sessions": BETA_SESSION,
           "/v1/realtime/transcription_sessions": TRANSCRIPTION,
           "/v1/realtime/translations/client_secrets": TRANSLATION, "/v1/live/sessions": WEBRTC,
           "/v1/live/sessions/sess_1/fork": WEBRTC}


def api(req):
    if req.headers.get("authorization", "").split(" ")[-1] not in ("sk-test", "sk-other"):
        return Reply(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error"}})
    return Reply(200, ANSWERS[req.path])


OPTIONS = {"extra_headers": {"X-Trace": "t-1", "authorization": "Bearer sk-other"},   # later wins, any case
           "extra_query": {"trace": "q-1"}, "extra_body": {"metadata": {"k": "v"}}, "timeout": 20}


async def mint(client, **options):
    """Every minting call, with the same arguments."""
    return [
        await client.realtime.client_secrets.create(
            session={"type": "realtime", "model": "gpt-realtime"},
            expires_after={"anchor": "created_at", "seconds": 600}, **options),
        await client.beta.realtime.sessions.create(model="gpt-4o-realtime-preview", voice="alloy",
                                                   input_audio_format="g711_ulaw", **options),
        await client.beta.realtime.transcription_sessions.create(
            input_audio_format="g711_ulaw", input_audio_transcription={"model": "gpt-4o-transcribe"}, **options),
        await client.realtime.translations.client_secrets.create(session={"model": "gpt-realtime-translate"},
                                                                 **options),
        await client.live.create(session={"model": "gpt-live-1"}, transport={"type": "webrtc", "sdp": "v=0"},
                                 **options),
        await client.live.sessions.fork("sess_1", transport={"type": "webrtc", "sdp": "v=0"}, **options),
    ]


def clients(base):
    return (rtfast.AsyncOpenAI(api_key="sk-test", base_url=base, max_retries=0),
            openai.AsyncOpenAI(api_key="sk-test", base_url=base, max_retries=0))


@pytest.mark.parametrize("options", [{}, OPTIONS], ids=["plain", "per-request-options"])
async def test_requests_on_the_wire_match_the_official_client(options):
    async with FakeServer(api) as fake:
        ours_client, theirs_client = clients(fake.base_url + "/v1")
        ours = await mint(ours_client, **options)
        n = len(fake.requests)
        theirs = await mint(theirs_client, **options)
        assert n == 6 and len(fake.requests) == 12
        for a, b in zip(fake.requests[:n], fake.requests[n:]):
            assert (a.method, a.path, a.query) == (b.method, b.path, b.query)
            assert a.json == b.json, a.path
            for header in ("authorization", "content-type", "accept", "openai-beta", "x-trace"):
                assert a.headers.get(header) == b.headers.get(header), (a.path, header)
    if options:
        for req in fake.requests[:n]:
            assert req.query == {"trace": "q-1"} and req.headers["x-trace"] == "t-1"
            assert req.headers["authorization"] == "Bearer sk-other"
            assert req.json["metadata"] == {"k": "v"}
            assert not {"extra_headers", "extra_query", "extra_body", "timeout"} & set(req.json)
    for a, b in zip(ours, theirs):
        assert a == b.to_dict() and a.to_dict() == b.to_dict()


def test_signatures_follow_the_official_ones():
    ours, theirs = rtfast.AsyncOpenAI(api_key="k"), openai.AsyncOpenAI(api_key="k")
    for path in ("realtime.client_secrets.create", "beta.realtime.sessions.create",
                 "beta.realtime.transcription_sessions.create", "realtime.translations.client_secrets.create"):
        # (live.create and live.sessions.fork: tests/test_live_rest.py)
        a, b = ours, theirs
        for name in path.split("."):
            a, b = getattr(a, name), getattr(b, name)
        pa, pb = inspect.signature(a).parameters, inspect.signature(b).parameters
        assert list(pa) == list(pb), path
        for name, p in pb.items():
            assert pa[name].kind == p.kind, (path, name)
            assert (pa[name].default is inspect.Parameter.empty) == (p.default is inspect.Parameter.empty)


async def test_a_timeout_per_request_applies():
    """The client's timeout is 60 s; timeout=0.3 on the call ends it in 0.3 s, as ConnectTimeout."""
    async with FakeServer(api, hang=True) as fake:
        client = rtfast.AsyncOpenAI(api_key="sk-test", base_url=fake.base_url + "/v1", max_retries=0)
        calls = [lambda: client.realtime.client_secrets.create(session={"type": "realtime"}, timeout=0.3),
                 lambda: client.beta.realtime.sessions.create(model="m", timeout=0.3),
                 lambda: client.beta.realtime.transcription_sessions.create(timeout=0.3),
                 lambda: client.realtime.translations.client_secrets.create(session={}, timeout=0.3),
                 lambda: client.live.create(session={}, transport={}, timeout=0.3),
                 lambda: client.live.sessions.fork("sess_1", transport={}, timeout=0.3)]
        for call in calls:
            with pytest.raises(ConnectTimeout) as info:
                await asyncio.wait_for(call(), 10)
            assert f"127.0.0.1:{fake.port}" in str(info.value) and "0.3 s" in str(info.value)
            assert isinstance(info.value, TimeoutError) and isinstance(info.value, ConnectError)


# -- results ------------------------------------------------------------------------------------


async def test_results_read_as_attributes_at_every_level_like_the_official_ones():
    async with FakeServer(api) as fake:
        ours_client, theirs_client = clients(fake.base_url + "/v1")
        ours, theirs = await mint(ours_client), await mint(theirs_client)
    secret, beta, transcription, translation, created, forked = ours
    official = theirs[0]
    # what OpenAI's ephemeral-key example reads
    assert secret.value == official.value == KEY and secret.expires_at == official.expires_at
    assert secret.session.audio.output.voice == official.session.audio.output.voice == "marin"
    assert secret.session.audio.input.format.type == "audio/pcmu"
    assert [t.name for t in secret.session.tools] == [t.name for t in official.session.tools]
    assert secret.session.tools[0].parameters.properties.id.type == "string"
    assert secret.session.future_field.nested == 1                      # unknown keys read too
    assert beta.client_secret.value == theirs[1].client_secret.value == KEY
    assert beta.tools[0].name == theirs[1].tools[0].name
    assert transcription.client_secret.value == theirs[2].client_secret.value == KEY
    assert transcription.input_audio_transcription.language == "en"
    assert translation.value == theirs[3].value and translation.session.audio.output.language == "fr"
    assert created.transport.sdp == theirs[4].transport.sdp == "v=0 answer" and forked.session.id == "sess_live"
    # still the API's dict, as rtfast returned before
    assert secret["value"] == KEY and secret["session"]["audio"]["output"]["voice"] == "marin"
    assert secret == CLIENT_SECRET and isinstance(secret, dict) and beta == BETA_SESSION
    assert json.loads(json.dumps(secret)) == CLIENT_SECRET
    assert type(secret).__name__ == "ClientSecretCreateResponse"
    assert type(beta).__name__ == "SessionCreateResponse" and type(transcription).__name__ == "TranscriptionSession"
    # the official models' serialisation
    for result, model in zip(ours, theirs):
        assert result.to_dict() == model.to_dict()
        assert type(result.to_dict()) is dict and json.loads(result.model_dump_json()) == model.to_dict()
    assert type(secret.to_dict()["session"]["tools"][0]) is dict
    assert secret.model_dump() == CLIENT_SECRET and json.loads(secret.to_json()) == CLIENT_SECRET
    assert secret.model_dump(mode="json", exclude_unset=True) == CLIENT_SECRET
    assert "future_field" in secret.model_dump(exclude_none=True)["session"]
    with pytest.raises(AttributeError, match="no_such_key"):
        secret.session.no_such_key
    assert secret.session.get("no_such_key") is None
    with pytest.raises(TypeError, match="include"):
        secret.model_dump(include={"value"})     # not silently ignored
    assert pickle.loads(pickle.dumps(secret)).session.audio.output.voice == "marin"
    assert copy.deepcopy(secret).session.tools[1].name == "transfer"


async def test_reprs_never_show_the_ephemeral_key():
    async with FakeServer(api) as fake:
        ours = await mint(rtfast.AsyncOpenAI(api_key="sk-test", base_url=fake.base_url + "/v1"))
    secret, beta, transcription, translation = ours[:4]
    shown = [repr(secret), str(secret), f"{secret}", "%s" % (secret,), repr([secret]), repr(beta), str(beta),
             repr(beta.client_secret), repr(transcription), repr(transcription.client_secret), repr(translation),
             repr({"s": secret})]
    for text in shown:
        assert KEY not in text and "ek_" not in text, text
    assert "'<redacted>'" in repr(secret) and "expires_at=1767225600" in repr(secret)
    assert "voice='marin'" in repr(secret) and "expires_at=1767225600" in repr(beta.client_secret)
    # only secrets are masked: an ordinary "value" elsewhere shows
    assert "value='x'" in repr(ours[4].__class__({"value": "x"}))


async def test_a_non_json_answer_is_a_protocol_error():
    async with FakeServer(lambda req: Reply(200, b"<html>gateway</html>")) as fake:
        client = rtfast.AsyncOpenAI(api_key="sk-test", base_url=fake.base_url + "/v1")
        with pytest.raises(ProtocolError, match="not JSON"):
            await client.realtime.client_secrets.create(session={"type": "realtime"})
        with pytest.raises(ProtocolError, match="not JSON"):
            await client.live.create(session={}, transport={})


# -- connection failures ------------------------------------------------------------------------


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]         # closed on exit: nothing listens there


async def test_a_refused_port_raises_connect_error_naming_host_and_port_only():
    port = refused_port()
    client = rtfast.AsyncOpenAI(api_key="sk-secret-key", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    q = {"extra_query": {"token": "q-secret"}}
    calls = [lambda: client.realtime.client_secrets.create(session={"type": "realtime"}, **q),
             lambda: client.beta.realtime.sessions.create(model="m", **q),
             lambda: client.beta.realtime.transcription_sessions.create(**q),
             lambda: client.realtime.translations.client_secrets.create(session={}, **q),
             lambda: client.live.create(session={}, transport={}, **q),
             lambda: client.live.sessions.fork("sess_1", transport={}, **q),
             lambda: client.live.sessions.hangup("sess_1", **q)]
    for call in calls:
        with pytest.raises(ConnectError) as info:
            await asyncio.wait_for(call(), 10)
        text = str(info.value)
        assert f"127.0.0.1:{port}" in text and not isinstance(info.value, ConnectTimeout)
        assert "sk-secret" not in text and "q-secret" not in text and "/v1" not in text, text
        assert isinstance(info.value, OSError) and info.value.__cause__ is None


def test_connect_errors_name_the_default_port():
    from rtfast.client import _where

    assert _where("https://user:pw@api.openai.com/v1/realtime/client_secrets?token=x") == "api.openai.com:443"
    assert _where("http://[::1]:8080/v1") == "[::1]:8080"


async def test_with_raw_response_on_the_ephemeral_key_calls():
    """``client.realtime.client_secrets.with_raw_response.create(...)``, as officially: the status,
    headers and ``request_id``, and ``parse()`` the plain call's result (the other three too)."""
    secret = {"value": "ek_raw", "expires_at": 1, "session": {"type": "realtime"}}

    def api(req):
        return Reply(200, secret, {"x-request-id": "req_raw"})

    async with FakeServer(api) as fake:
        for kind, cls in (("rtfast", rtfast.AsyncOpenAI), ("openai", openai.AsyncOpenAI)):
            c = cls(api_key="sk-test", base_url=fake.base_url + "/v1", max_retries=0)
            raw = await c.realtime.client_secrets.with_raw_response.create(session={"type": "realtime"})
            assert (raw.status_code, raw.request_id, raw.headers["x-request-id"]) == (200, "req_raw", "req_raw")
            assert raw.parse().value == "ek_raw" and json.loads(raw.content) == secret, kind
            assert "ek_raw" not in repr(raw)
        c = rtfast.AsyncOpenAI(api_key="sk-test", base_url=fake.base_url + "/v1")
        for raw in (await c.realtime.translations.client_secrets.with_raw_response.create(session={"model": "m"}),
                    await c.beta.realtime.sessions.with_raw_response.create(),
                    await c.beta.realtime.transcription_sessions.with_raw_response.create()):
            assert raw.status_code == 200 and raw.request_id == "req_raw" and raw.parse()["value"] == "ek_raw"
        assert (await c.realtime.client_secrets.create()).value == "ek_raw"     # the plain one unchanged
