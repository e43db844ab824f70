"""The client end to end on loopback: rtfast beside the official ``openai``
realtime connection and beside a bare websockets + orjson loop, against the
same peer process, in the same run.

Timed in CPU seconds of this process (``time.process_time``), not wall time:
the peer runs in its own process, and once a client reads faster than the
peer writes, wall time measures the peer. What a client costs a server that
runs hundreds of connections is its CPU."""

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time

import orjson
import pybase64
import pytest
from websockets.asyncio.client import connect as ws_connect

import rtfast

openai = pytest.importorskip("openai")

N_DELTAS = 200            # 20 s of audio per round, 400 events + session.created
N_APPENDS = 500           # 10 s of 20 ms appends per round
HERE = os.path.dirname(__file__)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def peers():
    procs, urls = [], {}
    for name, args in (("stream", (N_DELTAS, 0)), ("sink", (0, N_APPENDS))):
        port = _free_port()
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "_peer.py"), str(port), *map(str, args)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        procs.append(proc)
        urls[name] = f"ws://127.0.0.1:{port}/v1"
    yield urls
    for proc in procs:
        proc.terminate()
        proc.wait()


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


async def consume_rtfast(url):
    audio = 0
    client = rtfast.AsyncOpenAI(api_key="sk-bench", websocket_base_url=url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        async for event in conn:
            if event.type == "response.output_audio.delta":
                audio += len(event.audio())
    return audio


async def consume_rtfast_official_style(url):
    """The official client's loop, unchanged but for the import: ``event.delta``
    and the user's own base64 decode (what a drop-in user runs on day one)."""
    audio = 0
    client = rtfast.AsyncOpenAI(api_key="sk-bench", websocket_base_url=url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        async for event in conn:
            if event.type == "response.output_audio.delta":
                audio += len(base64.b64decode(event.delta))
    return audio


async def consume_openai(url):
    audio = 0
    client = openai.AsyncOpenAI(api_key="sk-bench", websocket_base_url=url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        try:
            async for event in conn:
                if event.type == "response.output_audio.delta":
                    audio += len(base64.b64decode(event.delta))
        except Exception:
            pass
    return audio


async def consume_bare(url):
    audio = 0
    async with ws_connect(url + "/realtime?model=gpt-realtime", max_size=None, compression=None) as ws:
        async for message in ws:
            event = orjson.loads(message)
            if event["type"] == "response.output_audio.delta":
                audio += len(pybase64.b64decode(event["delta"]))
    return audio


@pytest.mark.benchmark(timer=time.process_time)
@pytest.mark.parametrize("impl", ["rtfast", "rtfast, official-style code", "openai", "websockets+orjson"])
def test_consume_response_stream(benchmark, peers, loop, impl):
    benchmark.group = f"client: consume {N_DELTAS} x 100 ms PCM16 deltas + transcript deltas, audio decoded"
    fn = {"rtfast": consume_rtfast, "rtfast, official-style code": consume_rtfast_official_style,
          "openai": consume_openai, "websockets+orjson": consume_bare}[impl]
    audio = benchmark.pedantic(lambda: loop.run_until_complete(fn(peers["stream"])), rounds=5, iterations=1,
                               warmup_rounds=1)
    assert audio == N_DELTAS * 4800


PCM = [bytes([i]) * 960 for i in range(50)]


async def send_rtfast(url):
    client = rtfast.AsyncOpenAI(api_key="sk-bench", websocket_base_url=url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        for i in range(N_APPENDS):
            await conn.send_audio(PCM[i % 50])
        return (await conn.recv()).type


async def send_openai(url):
    client = openai.AsyncOpenAI(api_key="sk-bench", websocket_base_url=url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        for i in range(N_APPENDS):
            await conn.input_audio_buffer.append(audio=base64.b64encode(PCM[i % 50]).decode())
        return (await conn.recv()).type


@pytest.mark.benchmark(timer=time.process_time)
@pytest.mark.parametrize("impl", ["rtfast", "openai"])
def test_send_appends(benchmark, peers, loop, impl):
    benchmark.group = f"client: send {N_APPENDS} x 20 ms PCM16 appends"
    fn = {"rtfast": send_rtfast, "openai": send_openai}[impl]
    result = benchmark.pedantic(lambda: loop.run_until_complete(fn(peers["sink"])), rounds=3, iterations=1,
                                warmup_rounds=1)
    assert result == "input_audio_buffer.committed"
