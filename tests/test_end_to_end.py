"""rtfast and the official openai connection against the embedded server:
the same behaviour suite runs on both, so they cannot drift."""

import asyncio
import base64
import http.server
import json
import threading

import orjson
import pytest

import rtfast
from rtfast import cli, events, g711
from rtfast.errors import AuthenticationError, RateLimitError
from rtfast.server import FunctionCall, RealtimeServer, Script

openai = pytest.importorskip("openai")


def make_client(kind, server):
    cls = rtfast.AsyncOpenAI if kind == "rtfast" else openai.AsyncOpenAI
    return cls(api_key="sk-test", websocket_base_url=server.base_url)


def audio_of(event):
    return event.audio() if hasattr(event, "audio") else base64.b64decode(event.delta)


async def run_turn(conn, text):
    await conn.conversation.item.create(item={"type": "message", "role": "user",
                                              "content": [{"type": "input_text", "text": text}]})
    await conn.response.create()
    types, audio, transcript = [], b"", ""
    async for event in conn:
        types.append(event.type)
        if event.type == "response.output_audio.delta":
            audio += audio_of(event)
        elif event.type == "response.output_audio_transcript.delta":
            transcript += event.delta
        elif event.type == "response.done":
            return types, audio, transcript, event
    raise AssertionError("stream ended before response.done")


@pytest.fixture(params=["rtfast", "openai"])
def kind(request):
    return request.param


async def test_same_conversation_through_both_clients():
    results = {}
    for kind in ("rtfast", "openai"):
        async with RealtimeServer(script=Script(reply_text="Hi from the server", audio_ms=600)) as server:
            async with make_client(kind, server).realtime.connect(model="gpt-realtime") as conn:
                first = await conn.recv()
                assert first.type == "session.created"
                await conn.session.update(session=events.session_update_g711("ga", vad=None).to_dict()["session"])
                updated = await conn.recv()
                assert updated.type == "session.updated"
                assert updated.session.audio.output.format.type == "audio/pcmu"
                results[kind] = await run_turn(conn, "hello")
    (t1, a1, s1, d1), (t2, a2, s2, d2) = results["rtfast"], results["openai"]
    assert t1 == t2 and a1 == a2 and s1 == s2 == "Hi from the server"
    assert len(a1) == 600 * 8                               # μ-law at 8 kHz
    assert d1.response.usage.total_tokens == d2.response.usage.total_tokens


async def test_function_call_round_trip(kind):
    script = Script(reply_text="It is sunny in Paris.", function_call=FunctionCall("get_weather", {"city": "Paris"}))
    tool = {"type": "function", "name": "get_weather", "description": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    async with RealtimeServer(script=script) as server:
        async with make_client(kind, server).realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()
            await conn.session.update(session={"type": "realtime", "tools": [tool], "output_modalities": ["text"]})
            await conn.recv()
            types, _, _, done = await run_turn(conn, "weather in Paris?")
            assert "response.function_call_arguments.done" in types
            call = done.response.output[0]
            assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Paris"}
            await conn.conversation.item.create(item={"type": "function_call_output", "call_id": call.call_id,
                                                      "output": '{"sky": "sunny"}'})
            await conn.response.create()
            text = ""
            async for event in conn:
                if event.type == "response.output_text.delta":
                    text += event.delta
                if event.type == "response.done":
                    break
            assert text == "It is sunny in Paris."


async def test_errors_keep_the_connection_open(kind):
    async with RealtimeServer() as server:
        async with make_client(kind, server).realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()
            await conn.response.cancel(event_id="evt_cancel")
            err = await conn.recv()
            assert err.type == "error" and err.error.event_id == "evt_cancel"
            await conn.conversation.item.truncate(item_id="nope", content_index=0, audio_end_ms=10)
            assert (await conn.recv()).type == "error"
            await conn.session.update(session={"type": "realtime", "instructions": "still here"})
            assert (await conn.recv()).type == "session.updated"


async def test_voice_turn_with_server_vad_over_g711_frames():
    async with RealtimeServer(script=Script(reply_text="I heard you")) as server:
        client = make_client("rtfast", server)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()
            await conn.send(events.session_update_g711("ga", codec="pcmu", vad="server_vad"))
            await conn.recv()
            tone = b"".join(int(8000 * (1 if (i // 9) % 2 else -1)).to_bytes(2, "little", signed=True)
                            for i in range(8000))
            frames = [g711.ulaw_encode_b64(b"\x00\x00" * 160)] * 30
            frames += [g711.ulaw_encode_b64(tone[i:i + 320]) for i in range(0, len(tone), 320)]
            frames += [g711.ulaw_encode_b64(b"\x00\x00" * 160)] * 50
            for payload in frames:
                await conn.send_audio_b64(payload)
            seen = []
            async for event in conn:
                seen.append(event.type)
                if event.type == "response.done":
                    break
            assert seen.index("input_audio_buffer.speech_started") < seen.index("input_audio_buffer.speech_stopped")
            assert "input_audio_buffer.committed" in seen and "response.output_audio.delta" in seen
            item = next(i for i in conn.state.items.values())
            assert conn.state.audio_received_ms(item.item_id) > 0


async def test_beta_generation_through_both_clients(kind):
    async with RealtimeServer(script=Script(reply_text="beta hi", audio_ms=300)) as server:
        client = make_client(kind, server)
        async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
            created = await conn.recv()
            assert created.type == "session.created"
            await conn.send({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}})
            await conn.send({"type": "response.create"})
            audio = b""
            async for event in conn:
                if event.type == "response.audio.delta":
                    audio += audio_of(event)
                if event.type == "response.done":
                    break
            assert len(audio) == 300 * 48


async def test_beta_refused_by_the_server():
    async with RealtimeServer(refuse_beta=True) as server:
        client = make_client("rtfast", server)
        async with client.beta.realtime.connect(model="m") as conn:
            ev = await conn.recv()
            assert ev.error.code == "beta_api_shape_disabled"
            with pytest.raises(rtfast.BetaShapeRefused):
                await conn.recv()


async def test_handshake_without_key_is_401():
    async with RealtimeServer() as server:
        with pytest.raises(AuthenticationError) as info:
            async with rtfast.connect(server.url + "?model=m"):
                pass
    assert info.value.status == 401 and info.value.message


class _KeyEndpoint(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, self.headers, body))
        if body.get("fail"):
            payload = orjson.dumps({"error": {"message": "slow down", "type": "rate_limit"}})
            self.send_response(429)
        else:
            payload = orjson.dumps({"value": "ek_test", "expires_at": 1, "session": body.get("session")})
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


async def test_ephemeral_keys_ga_and_beta():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _KeyEndpoint)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        client = rtfast.AsyncOpenAI(api_key="sk-test", base_url=base)
        secret = await client.realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-realtime"})
        assert secret["value"] == secret.value == "ek_test"
        await client.beta.realtime.sessions.create(model="gpt-4o-realtime-preview")
        with pytest.raises(RateLimitError, match="slow down"):
            await client.with_options(max_retries=0).realtime.client_secrets.create(extra_body={"fail": True})
    finally:
        httpd.shutdown()
    (p1, h1, b1), (p2, h2, b2), _ = _KeyEndpoint.seen
    assert p1 == "/v1/realtime/client_secrets" and b1["session"]["model"] == "gpt-realtime"
    assert p2 == "/v1/realtime/sessions" and h2["OpenAI-Beta"] == "assistants=v2"   # the official client's
    assert h1["Authorization"] == "Bearer sk-test"


def test_demo_runs_against_the_embedded_server(monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert cli.main(["demo", "--seconds", "1"]) == 0
    out = capsys.readouterr().out
    assert "embedded server" in out and "margherita" in out and "figures:" in out
    assert "µs/frame" in out


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert rtfast.__version__ in out and "b64:" in out and "resample:" in out


@pytest.mark.skipif("not __import__('os').environ.get('OPENAI_API_KEY')", reason="needs OPENAI_API_KEY")
async def test_real_api_session_created():
    client = rtfast.AsyncOpenAI()
    async with client.realtime.connect(model="gpt-realtime") as conn:
        assert (await asyncio.wait_for(conn.recv(), 30)).type == "session.created"
