"""The embedded server's switches for testing reconnects: misbehaviour on the first
N connections only, a session length cap, and user transcripts."""

import base64

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from carrier_sim import silence, tone
from rtfast.server import RealtimeServer, Script

HEADERS = {"Authorization": "Bearer sk-test"}


async def events_until_closed(url, send=(), until=lambda event: False):
    got = []
    async with connect(url, additional_headers=HEADERS) as ws:
        for frame in send:
            await ws.send(orjson.dumps(frame).decode())
        try:
            while not (got and until(got[-1])):
                got.append(orjson.loads(await ws.recv()))
        except ConnectionClosed:
            pass
        return got, ws.close_code, ws.close_reason


async def test_only_the_first_connections_misbehave():
    async with RealtimeServer(close_after_events=1, close_code=1011, misbehave_connections=1) as rt:
        first, code, _ = await events_until_closed(rt.url)
        assert [e["type"] for e in first] == ["session.created"] and code == 1011
        async with connect(rt.url, additional_headers=HEADERS) as ws:
            assert orjson.loads(await ws.recv())["type"] == "session.created"
            await ws.send('{"type": "session.update", "session": {"type": "realtime", "instructions": "x"}}')
            assert orjson.loads(await ws.recv())["type"] == "session.updated"     # still open past event 1


async def test_the_session_length_cap_is_answered_as_the_api_does():
    async with RealtimeServer(max_session_s=0.3) as rt:
        got, code, reason = await events_until_closed(rt.url)
    assert got[-1]["type"] == "error"
    assert got[-1]["error"]["code"] == "session_expired"
    assert got[-1]["error"]["message"] == "Your session hit the maximum duration of 0.3 seconds."
    assert code == 1001 and reason == "Your session hit the maximum duration of 0.3 seconds."


@pytest.mark.parametrize("given,expected", [(None, "(1500 ms of speech)"), ("I need a taxi", "I need a taxi"),
                                            (lambda s, ms: f"{ms:.0f}", "1500")])
async def test_user_transcripts_when_transcription_is_on(given, expected):
    audio = base64.b64encode(silence(100) + tone(800) + silence(600)).decode()
    update = {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/pcmu"}, "transcription": {"model": "gpt-4o-mini-transcribe"}}}}}
    async with RealtimeServer(script=Script(audio_ms=100), user_transcript=given) as rt:
        got, _, _ = await events_until_closed(rt.url, [update, {"type": "input_audio_buffer.append", "audio": audio}],
                                              until=lambda e: e["type"].endswith("transcription.completed"))
    done = [e for e in got if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert len(done) == 1 and done[0]["transcript"] == expected and done[0]["content_index"] == 0
    assert done[0]["usage"]["type"] == "duration"
