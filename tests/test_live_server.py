"""rtfast.server speaking GPT-Live (``/v1/live/sessions``): driven by a plain websockets client and
by the official openai client, every frame validated against ``openai.types.live``'s server union."""

from __future__ import annotations

import asyncio
import base64

import orjson
import pytest
import websockets
from pydantic import BaseModel, TypeAdapter

pytest.importorskip("openai")
from openai.types.live import ServerEvent as LiveServerEvent  # noqa: E402

from rtfast import g711  # noqa: E402
from rtfast._server_session import tone  # noqa: E402
from rtfast.server import FunctionCall, RealtimeServer, Script  # noqa: E402

LIVE_EVENTS = TypeAdapter(LiveServerEvent)
START = {"type": "session.start", "event_id": "c_start",
         "session": {"model": "gpt-live-1", "audio": {"format": {"type": "audio/pcmu", "rate": 8000}}}}


def extras(model, path):
    """Fields of a validated model (recursively) that the official model does not declare."""
    if isinstance(model, BaseModel):
        for key in model.model_extra or {}:
            yield f"{path}.{key}"
        for name in type(model).model_fields:
            yield from extras(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list):
        for i, value in enumerate(model):
            yield from extras(value, f"{path}[{i}]")


def check_frame(frame: bytes) -> dict:
    """One server frame: valid for openai.types.live.ServerEvent, no field the models lack."""
    event = orjson.loads(frame)
    model = LIVE_EVENTS.validate_python(event)
    assert model.type == event["type"]
    unknown = list(extras(model, event["type"]))
    assert not unknown, unknown
    return event


class Client:
    def __init__(self, ws) -> None:
        self.ws, self.frames = ws, []

    async def send(self, **event) -> None:
        await self.ws.send(orjson.dumps(event), text=True)

    async def recv(self, timeout: float = 5.0) -> dict:
        frame = await asyncio.wait_for(self.ws.recv(decode=False), timeout)
        self.frames.append(frame)
        return check_frame(frame)

    async def until(self, type_: str, timeout: float = 5.0) -> list[dict]:
        got = []
        while not got or got[-1]["type"] != type_:
            got.append(await self.recv(timeout))
        return got


def speech(ms: int, codec: str = "pcmu") -> bytes:
    return tone(ms, codec)


def silence(ms: int, codec: str = "pcmu") -> bytes:
    return g711.ulaw_encode(bytes(16 * ms)) if codec == "pcmu" else bytes(48 * ms)


async def say(client: Client, audio: bytes, chunk: int = 160) -> None:
    for i in range(0, len(audio), chunk):
        await client.send(type="session.input_audio.append", audio=base64.b64encode(audio[i:i + chunk]).decode())


async def open_live(server, **headers):
    return await websockets.connect(server.live_url, additional_headers={"Authorization": "Bearer sk-test", **headers},
                                    max_size=None)


async def test_start_turn_reply_close_every_frame_validates():
    async with RealtimeServer(script=Script(reply_text="Hello from live", audio_ms=600, chunk_ms=100)) as server:
        async with await open_live(server) as ws:
            c = Client(ws)
            await c.send(type="session.input_audio.append", audio="AAAA")       # before session.start
            err = await c.recv()
            assert err["type"] == "error" and err["error"]["code"] == "session_not_started"
            await c.send(**START)
            started = await c.recv()
            assert started["type"] == "session.started" and started["client_event_id"] == "c_start"
            assert started["session"]["audio"]["format"] == {"type": "audio/pcmu", "rate": 8000}
            assert started["session"]["model"] == "gpt-live-1" and started["session"]["status"] == "active"
            await say(c, speech(600) + silence(700))
            got = await c.until("session.usage.updated")
            kinds = [e["type"] for e in got]
            assert kinds[0] == "session.input_transcript.delta"
            audio = b"".join(base64.b64decode(e["delta"]) for e in got if e["type"] == "session.output_audio.delta")
            assert len(audio) == 600 * 8                                      # μ-law 8 kHz: 8 bytes a ms
            words = "".join(e["delta"] for e in got if e["type"] == "session.output_transcript.delta")
            assert words == "Hello from live"
            # the audio delta is the primary socket's shape: no event_id, no timestamps
            delta = next(e for e in got if e["type"] == "session.output_audio.delta")
            assert set(delta) == {"type", "delta"}
            await c.send(type="session.close", event_id="c_close")
            closed = await c.recv()
            assert closed["type"] == "session.closed" and closed["reason"] == "close_requested"
            assert closed["client_event_id"] == "c_close"
            with pytest.raises(websockets.ConnectionClosedOK):
                await ws.recv()
            assert server.connections[0].protocol == "live"


async def test_barge_in_stops_the_model_mid_reply():
    script = Script(reply_text=" ".join(["word"] * 40), audio_ms=4000, chunk_ms=100, realtime=True)
    async with RealtimeServer(script=script) as server:
        async with await open_live(server) as ws:
            c = Client(ws)
            await c.send(**START)
            await c.until("session.started")
            await say(c, speech(400) + silence(700))
            await c.until("session.output_audio.delta")
            await asyncio.sleep(0.3)
            await say(c, speech(300))                       # the user talks over the model
            await asyncio.sleep(0.3)
            while True:                                      # drain what was in flight
                try:
                    await c.recv(timeout=0.3)
                except asyncio.TimeoutError:
                    break
            sent = [orjson.loads(f) for f in c.frames]
            audio_frames = sum(1 for e in sent if e["type"] == "session.output_audio.delta")
            assert 2 <= audio_frames < 20                    # 4 s of reply cut short
            turn = server.connections[0].items[1]
            assert turn["role"] == "assistant" and turn["interrupted"] == "barge_in"


async def test_delegation_to_the_client_and_its_result():
    script = Script(reply_text="It is sunny", function_call=FunctionCall("get_weather", {"city": "Paris"}))
    async with RealtimeServer(script=script) as server:
        async with await open_live(server) as ws:
            c = Client(ws)
            start = {**START, "session": {**START["session"], "delegation": {"type": "client"}}}
            await c.send(**start)
            await c.until("session.started")
            await say(c, speech(400) + silence(700))
            got = await c.until("session.delegation.created")
            delegation = got[-1]["delegation"]
            assert delegation["target"] == "client" and delegation["type"] == "delegation"
            assert not any(e["type"] == "session.output_audio.delta" for e in got)
            await c.send(type="session.commentary.append", event_id="c_res", delegation_id="nope", content="x")
            err = await c.recv()
            assert err["type"] == "error" and err["error"]["param"] == "delegation_id"
            assert err["error"]["client_event_id"] == "c_res" and err["client_event_id"] == "c_res"
            await c.send(type="session.commentary.append", event_id="c_ok", delegation_id=delegation["id"],
                         content='{"forecast": "sunny"}')
            appended = await c.recv()
            assert appended["type"] == "session.commentary.appended" and appended["client_event_id"] == "c_ok"
            got = await c.until("session.usage.updated")
            assert "".join(e["delta"] for e in got if e["type"] == "session.output_transcript.delta") == "It is sunny"
            received = server.connections[0].received
            assert received[-1]["content"] == '{"forecast": "sunny"}'


@pytest.mark.parametrize("fmt, bytes_per_ms", [({"type": "audio/pcm", "rate": 16000}, 32),
                                               ({"type": "audio/pcm", "rate": 24000}, 48),
                                               ({"type": "audio/pcma", "rate": 8000}, 8)])
async def test_formats(fmt, bytes_per_ms):
    async with RealtimeServer(script=Script(reply_text="ok", audio_ms=300)) as server:
        async with await open_live(server) as ws:
            c = Client(ws)
            await c.send(type="session.start", session={"model": "gpt-live-1", "audio": {"format": fmt}})
            started = await c.recv()
            assert started["session"]["audio"]["format"] == fmt
            codec = "pcm" if fmt["type"] == "audio/pcm" else "pcma"
            rate = fmt.get("rate", 8000)
            loud = tone(500, codec)
            if codec == "pcm" and rate == 16000:
                import numpy as np
                loud = np.frombuffer(loud, "<i2")[::3].repeat(2).astype("<i2").tobytes()
            quiet = (g711.alaw_encode(bytes(16 * 700)) if codec == "pcma" else bytes(bytes_per_ms * 700))
            await say(c, loud + quiet, chunk=20 * bytes_per_ms)
            got = await c.until("session.usage.updated")
            audio = b"".join(base64.b64decode(e["delta"]) for e in got if e["type"] == "session.output_audio.delta")
            assert len(audio) == 300 * bytes_per_ms


async def test_errors_are_shaped_like_the_api():
    async with RealtimeServer() as server:
        async with await open_live(server) as ws:
            c = Client(ws)
            bad = [
                ({"type": "session.start", "session": {"audio": {}}}, "missing_required_parameter", "session.model"),
                ({"type": "session.start", "session": {"model": "m", "voice": "x"}}, "unknown_parameter",
                 "session.voice"),
                ({"type": "session.start", "session": {"model": "m", "audio": {"format": {"type": "audio/pcm",
                                                                                         "rate": 8000}}}},
                 "invalid_value", "session.audio.format.rate"),
                ({"type": "session.nope"}, "invalid_value", "type"),
            ]
            for event, code, param in bad:
                await c.send(**event, event_id="c1")
                err = (await c.recv())["error"]
                assert (err["code"], err["param"], err["client_event_id"]) == (code, param, "c1")
            await ws.send(b'{"type": "session.start", "event_id": "c2", oops', text=True)
            assert (await c.recv())["error"]["client_event_id"] == "c2"
            await c.send(**START)
            await c.until("session.started")
            await c.send(**START)
            assert (await c.recv())["error"]["code"] == "session_already_started"
            await c.send(type="response.create", event_id="c3")
            err = (await c.recv())["error"]
            assert "Responses delegation" in err["message"]
            await c.send(type="session.input_audio.append", audio="A=AA")
            assert (await c.recv())["error"]["param"] == "audio"
            for kind in ("mute", "unmute"):
                await c.send(type=f"session.input_audio.{kind}", event_id="m")
                assert (await c.recv())["type"] == f"session.input_audio.{kind}d"
            await c.send(type="session.update", session={"triggers": []}, event_id="u")
            updated = await c.recv()
            assert updated["type"] == "session.updated" and updated["session"]["triggers"] == []
            await c.send(type="session.output_audio.fixture.play", audio=base64.b64encode(b"\xff" * 80).decode())
            got = await c.until("session.output_audio.fixture.played")
            assert [e["type"] for e in got] == ["session.output_audio.fixture.playing", "session.output_audio.delta",
                                                "session.output_audio.fixture.played"]


async def test_the_official_client_works_unchanged():
    from openai import AsyncOpenAI

    async with RealtimeServer(script=Script(reply_text="Hi official", audio_ms=300)) as server:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        async with client.live.connect() as conn:
            await conn.session.start(session={"model": "gpt-live-1",
                                              "audio": {"format": {"type": "audio/pcmu", "rate": 8000}}})
            first = await conn.recv()
            assert first.type == "session.started" and first.session.audio.format.type == "audio/pcmu"
            audio = speech(500) + silence(700)
            for i in range(0, len(audio), 160):
                await conn.session.input_audio.append(audio=base64.b64encode(audio[i:i + 160]).decode())
            got, pcm = [], b""
            async for event in conn:
                got.append(event.type)
                if event.type == "session.output_audio.delta":
                    pcm += base64.b64decode(event.delta)
                if event.type == "session.usage.updated":
                    break
            assert "session.input_transcript.delta" in got and len(pcm) == 300 * 8
            await conn.session.close()
            closed = await conn.recv()
            assert closed.type == "session.closed"
        assert server.connections[0].received[0]["type"] == "session.start"


async def test_muted_input_is_not_heard_and_times_stay_on_the_session_timeline():
    async with RealtimeServer(script=Script(reply_text="ok", audio_ms=200)) as server:
        async with await open_live(server) as ws:
            c = Client(ws)
            await c.send(**START)
            await c.until("session.started")
            await c.send(type="session.input_audio.mute")
            await c.until("session.input_audio.muted")
            turn = speech(500) + silence(700)               # 1200 ms
            await say(c, turn)
            with pytest.raises(asyncio.TimeoutError):       # muted: no turn, no reply
                await c.recv(timeout=0.4)
            await c.send(type="session.input_audio.unmute")
            await c.until("session.input_audio.unmuted")
            await say(c, turn)
            got = await c.until("session.usage.updated")
            heard = [e for e in got if e["type"] == "session.input_transcript.delta"]
            assert heard and 1200 < heard[-1]["end_ms"] <= 2400    # after the muted 1200 ms, not from 0
            assert server.connections[0].items[0]["role"] == "user"
