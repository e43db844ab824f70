"""GPT-Live sidebands (``/v1/live/sessions/{id}/attach``) and forks (``.../fork``): the embedded
server's side checked frame by frame against openai.types.live's unions, and the clients'
``live.sideband.connect`` / ``live.forks.connect`` (rtfast and official) against it."""

from __future__ import annotations

import asyncio
import base64

import orjson
import pytest
import websockets
from pydantic import TypeAdapter

pytest.importorskip("openai")
import openai  # noqa: E402
from openai.types.live import ConnectServerEvent, ForkServerEvent  # noqa: E402

import rtfast  # noqa: E402
from rtfast import g711  # noqa: E402
from rtfast._server_session import tone  # noqa: E402
from rtfast.errors import HandshakeError, NotFoundError  # noqa: E402
from rtfast.server import FunctionCall, RealtimeServer, Script  # noqa: E402
from test_live_server import extras  # noqa: E402

SIDEBAND_EVENTS, FORK_EVENTS = TypeAdapter(ConnectServerEvent), TypeAdapter(ForkServerEvent)
SESSION = {"model": "gpt-live-1", "audio": {"format": {"type": "audio/pcmu", "rate": 8000}},
           "delegation": {"type": "client"}, "store": True}
SPEECH = tone(500, "pcmu") + g711.ulaw_encode(bytes(16 * 700))
AUTH = {"Authorization": "Bearer sk-test"}


def check(frame: bytes, adapter) -> dict:
    event = orjson.loads(frame)
    model = adapter.validate_python(event)
    assert model.type == event["type"] and not list(extras(model, event["type"]))
    return event


async def talk(ws) -> None:
    for i in range(0, len(SPEECH), 160):
        await ws.send(orjson.dumps({"type": "session.input_audio.append",
                                    "audio": base64.b64encode(SPEECH[i:i + 160]).decode()}), text=True)


async def test_a_sideband_sees_the_session_reflected_and_acts_on_it():
    script = Script(reply_text="Sunny", audio_ms=400, function_call=FunctionCall("get_weather"))
    async with RealtimeServer(script=script) as server:
        async with websockets.connect(server.live_url, additional_headers=AUTH) as primary:
            await primary.send(orjson.dumps({"type": "session.start", "session": SESSION}), text=True)
            started = orjson.loads(await primary.recv())
            sid = started["session"]["id"]
            url = f"{server.base_url}/live/sessions/{sid}/attach?graceful_close=true"
            async with websockets.connect(url, additional_headers=AUTH) as side:
                await side.send(orjson.dumps({"type": "session.start", "event_id": "s1", "session": SESSION}),
                                text=True)
                err = check(await side.recv(), SIDEBAND_EVENTS)
                assert err["type"] == "error" and err["client_event_id"] == "s1"
                await asyncio.sleep(0.05)
                await talk(primary)
                seen = []
                while not seen or seen[-1]["type"] != "session.delegation.created":
                    seen.append(check(await asyncio.wait_for(side.recv(), 5), SIDEBAND_EVENTS))
                reflected = b"".join(base64.b64decode(e["audio"]) for e in seen
                                     if e["type"] == "session.input_audio.append")
                assert len(reflected) == len(SPEECH) * 6             # μ-law 8 kHz -> PCM16 24 kHz
                assert any(e["type"] == "session.input_transcript.delta" for e in seen)
                # the backend answers the delegation on the sideband; the model speaks on the primary
                await side.send(orjson.dumps({"type": "session.commentary.append", "event_id": "a1",
                                              "delegation_id": seen[-1]["delegation"]["id"],
                                              "content": "sunny"}), text=True)
                out = []
                while not out or out[-1]["type"] != "session.usage.updated":
                    out.append(check(await asyncio.wait_for(side.recv(), 5), SIDEBAND_EVENTS))
                deltas = [e for e in out if e["type"] == "session.output_audio.delta"]
                assert all("start_ms" in e and e["end_ms"] - e["start_ms"] == 100 for e in deltas)
                assert sum(len(base64.b64decode(e["delta"])) for e in deltas) == 400 * 48
                primary_got = []
                while not primary_got or primary_got[-1]["type"] != "session.usage.updated":
                    primary_got.append(orjson.loads(await asyncio.wait_for(primary.recv(), 5)))
                assert "error" not in [e["type"] for e in primary_got]          # the sideband's error stayed there
                assert "".join(e["delta"] for e in primary_got if e["type"] == "session.output_transcript.delta") \
                    == "Sunny"
                # the primary closes the session: the sideband hears session.closed, then its socket closes
                await primary.send(b'{"type":"session.close"}', text=True)
                last = []
                with pytest.raises(websockets.ConnectionClosedOK):
                    while True:
                        last.append(check(await asyncio.wait_for(side.recv(), 5), SIDEBAND_EVENTS)["type"])
                assert last[-1] == "session.closed"
        assert [c.protocol for c in server.connections] == ["live", "live-sideband"]
        assert server.connections[1].query == {"graceful_close": "true"}


@pytest.mark.parametrize("kind", ["rtfast", "openai"])
async def test_sideband_clients_answer_a_delegation(kind):
    script = Script(reply_text="It is sunny", audio_ms=300, function_call=FunctionCall("get_weather"))
    async with RealtimeServer(script=script) as server:
        ours = rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        backend = ours if kind == "rtfast" else openai.AsyncOpenAI(api_key="sk-test",
                                                                     websocket_base_url=server.base_url)
        async with ours.live.connect() as conn:
            started = await conn.start(SESSION)
            async with backend.live.sideband.connect(session_id=started.session.id, graceful_close=True) as side:
                answered = asyncio.Event()

                async def backend_loop():
                    async for event in side:
                        if event.type == "session.delegation.created":
                            await side.session.commentary.append(content="sunny", delegation_id=event.delegation.id)
                            answered.set()
                        if event.type == "session.closed":
                            return

                task = asyncio.create_task(backend_loop())
                await asyncio.sleep(0.05)
                await conn.send_audio(SPEECH)
                said = []
                async for event in conn:
                    if event.type == "session.output_transcript.delta":
                        said.append(event.delta)
                    if event.type == "session.usage.updated":
                        break
                assert answered.is_set() and "".join(said) == "It is sunny"
                await conn.session.close()
                await asyncio.wait_for(task, 5)
        assert server.connections[1].path.endswith(f"/live/sessions/{started.session.id}/attach")
        assert server.connections[1].query == {"graceful_close": "true"}


@pytest.mark.parametrize("kind", ["rtfast", "openai"])
async def test_fork_a_stored_session(kind):
    async with RealtimeServer(script=Script(reply_text="Again", audio_ms=200)) as server:
        ours = rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        client = ours if kind == "rtfast" else openai.AsyncOpenAI(api_key="sk-test",
                                                                    websocket_base_url=server.base_url)
        async with ours.live.connect() as conn:
            started = await conn.start({**SESSION, "instructions": "Be brief."})
            await conn.session.close()
        async with client.live.forks.connect(session_id=started.session.id) as fork:
            await fork.session.start(session={"audio": {"format": {"type": "audio/pcm", "rate": 24000}}})
            raw = await fork.recv_bytes()
            event = check(raw, FORK_EVENTS)
            assert event["type"] == "session.started" and event["session"]["model"] == "gpt-live-1"
            assert event["session"]["instructions"] == "Be brief."
            assert event["session"]["audio"]["format"] == {"type": "audio/pcm", "rate": 24000}
            assert event["session"]["id"] != started.session.id
            await fork.session.close()
            closed = await fork.recv()
            assert closed.type == "session.closed"


async def test_attach_and_fork_refusals():
    async with RealtimeServer() as server:
        client = rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        with pytest.raises(NotFoundError, match="sess_nope"):
            async with client.live.sideband.connect(session_id="sess_nope"):
                pass
        async with client.live.connect() as conn:
            started = await conn.start({**SESSION, "store": False})
            with pytest.raises(HandshakeError, match="store: true"):
                async with client.live.forks.connect(session_id=started.session.id):
                    pass
            async with client.live.sideband.connect(session_id=started.session.id) as side:
                assert not hasattr(side.session, "start") and not hasattr(side.session.input_audio, "append")
                with pytest.raises(RuntimeError, match="sideband"):
                    await side.start({"model": "gpt-live-1"})
                await side.transport.dtmf.send(event="5", event_id="d1")
                err = await side.recv()
                assert err.type == "error" and "SIP" in err.error.message and err.client_event_id == "d1"
        with pytest.raises(ValueError, match="session_id"):
            client.live.sideband.connect(session_id="")
