"""GPT-Live: rtfast beside the official client in the same run: parsing the output audio delta,
building the input append (raw μ-law, and a carrier's base64), and a streamed session end to end
against a peer process (benchmarks/_live_peer.py)."""

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
from typing import Any, cast

import orjson
import pybase64
import pytest

from conftest import cycler, frames
from rtfast import g711, wire
from rtfast.live import LiveSession

import rtfast

openai = pytest.importorskip("openai")
openai_models = pytest.importorskip("openai._models")
openai_utils = pytest.importorskip("openai._utils")
from openai.types.live import ClientEventParam, ServerEvent  # noqa: E402

HERE = os.path.dirname(__file__)
N_DELTAS = 200            # 20 s of audio per round: 400 events + session.started/closed

# 100 ms of PCM16 24 kHz per delta (the primary socket's shape: type and delta only).
DELTAS = [orjson.dumps({"type": "session.output_audio.delta", "delta": base64.b64encode(pcm).decode()})
          for pcm in frames(2400, 24000, count=64)]


def official_parse(frame):
    # what AsyncLiveConnection.recv() does, then the decode a player needs
    ev = openai_models.construct_type_unchecked(value=json.loads(frame), type_=cast(Any, ServerEvent))
    return ev, base64.b64decode(ev.delta)


def rtfast_parse(frame, _state=LiveSession()):
    ev = _state.receive(frame)
    return ev, ev.audio()


def bare_parse(frame):
    d = orjson.loads(frame)
    return d, pybase64.b64decode(d["delta"])


@pytest.mark.parametrize("impl", ["rtfast", "openai", "orjson+pybase64"])
def test_parse_output_audio_delta_100ms(benchmark, impl):
    benchmark.group = "live: parse session.output_audio.delta (100 ms PCM16 24 kHz) + decode audio"
    fn = {"rtfast": rtfast_parse, "openai": official_parse, "orjson+pybase64": bare_parse}[impl]
    nxt = cycler(DELTAS)
    _, audio = benchmark(lambda: fn(nxt()))
    assert len(audio) == 4800


ULAW_20MS = [g711.ulaw_encode(pcm) for pcm in frames(160, 8000, count=64)]
ULAW_B64 = [base64.b64encode(f).decode() for f in ULAW_20MS]


def official_append(b64: str) -> str:
    # what conn.session.input_audio.append(audio=...) does before the socket
    event = openai_utils.strip_not_given({"type": "session.input_audio.append", "audio": b64, "event_id": None})
    return json.dumps(openai_utils.maybe_transform(event, ClientEventParam))


@pytest.mark.parametrize("impl", ["rtfast", "openai", "orjson+pybase64"])
def test_build_input_append_20ms_ulaw(benchmark, impl):
    benchmark.group = "live: build session.input_audio.append (20 ms μ-law 8 kHz, raw bytes)"
    fn = {
        "rtfast": lambda raw: wire.build_append(raw, generation="live"),
        "openai": lambda raw: official_append(base64.b64encode(raw).decode()),
        "orjson+pybase64": lambda raw: orjson.dumps({"type": "session.input_audio.append",
                                                     "audio": pybase64.b64encode(raw).decode()}),
    }[impl]
    nxt = cycler(ULAW_20MS)
    frame = benchmark(lambda: fn(nxt()))
    assert len(frame) > 200


@pytest.mark.parametrize("impl", ["rtfast", "openai", "orjson"])
def test_build_input_append_from_carrier_base64(benchmark, impl):
    benchmark.group = "live: build session.input_audio.append from a carrier's base64 (20 ms μ-law)"
    fn = {
        "rtfast": lambda b64: wire.build_append_b64(b64, generation="live"),
        "openai": official_append,
        "orjson": lambda b64: orjson.dumps({"type": "session.input_audio.append", "audio": b64}),
    }[impl]
    nxt = cycler(ULAW_B64)
    frame = benchmark(lambda: fn(nxt()))
    assert len(frame) > 200


# -- a streamed session, end to end --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def peer():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "_live_peer.py"), str(port), str(N_DELTAS)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield f"ws://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait()


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


SESSION = {"model": "gpt-live-1", "audio": {"format": {"type": "audio/pcm", "rate": 24000}}}


async def consume(client, decode):
    audio = 0
    async with client.live.connect() as conn:
        await conn.session.start(session=SESSION)
        async for event in conn:
            if event.type == "session.output_audio.delta":
                audio += len(decode(event))
            elif event.type == "session.closed":
                break
    return audio


@pytest.mark.parametrize("impl", ["rtfast", "openai"])
def test_stream_live_session(benchmark, peer, loop, impl):
    benchmark.group = f"live: consume a session of {N_DELTAS} x 100 ms PCM16 deltas + transcripts, audio decoded"
    if impl == "rtfast":
        client, decode = rtfast.AsyncOpenAI(api_key="sk-bench", websocket_base_url=peer), lambda e: e.audio()
    else:
        client = openai.AsyncOpenAI(api_key="sk-bench", websocket_base_url=peer)
        decode = lambda e: base64.b64decode(e.delta)  # noqa: E731
    audio = benchmark.pedantic(lambda: loop.run_until_complete(consume(client, decode)), rounds=5, iterations=1,
                               warmup_rounds=1)
    assert audio == N_DELTAS * 4800
