"""The hot carrier paths: rtfast (scan + splice, template builds) beside the usual
json/base64 code and beside orjson with the same splice, same frames, same run."""

import base64
import json

import orjson
import pytest

from conftest import cycler, frames
from rtfast import wire
from rtfast.bridge.call import Call
from rtfast.bridge.carriers import TwilioCodec
from rtfast.g711 import ulaw_encode

SID = "MZ18ad3ab5a66817a0e6a6c5c5bcd4f31b"
START = orjson.dumps({"event": "start", "sequenceNumber": "1", "streamSid": SID, "start": {
    "accountSid": "AC0123", "streamSid": SID, "callSid": "CA0123", "tracks": ["inbound"],
    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}, "customParameters": {}}})

# Twilio inbound media: 20 ms of speech-like mu-law (160 bytes, 216 base64 chars).
ULAW_20MS = [ulaw_encode(f) for f in frames(160, 8000, count=64)]
TWILIO_MEDIA = [
    orjson.dumps({"event": "media", "sequenceNumber": str(i + 3), "media": {
        "track": "inbound", "chunk": str(i + 1), "timestamp": str(i * 20),
        "payload": base64.b64encode(u).decode()}, "streamSid": SID})
    for i, u in enumerate(ULAW_20MS)]


def usual_inbound(frame):
    d = json.loads(frame)
    audio = base64.b64decode(d["media"]["payload"])
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}).encode()


def orjson_splice_inbound(frame):
    d = orjson.loads(frame)
    return wire.build_append_b64(d["media"]["payload"])


def make_codec():
    c = TwilioCodec()
    c.parse(START)
    return c


@pytest.mark.parametrize("impl", ["rtfast", "rtfast-call", "usual", "orjson+splice"])
def test_twilio_media_to_append(benchmark, impl):
    benchmark.group = "carriers: Twilio media (20 ms mu-law) -> input_audio_buffer.append"
    codec = make_codec()
    if impl == "rtfast":
        fn = lambda f: codec.parse(f).append()             # noqa: E731
    elif impl == "rtfast-call":
        call = Call(codec)
        fn = lambda f: call.from_carrier(f).to_realtime[0]  # noqa: E731
    else:
        fn = {"usual": usual_inbound, "orjson+splice": orjson_splice_inbound}[impl]
    nxt = cycler(TWILIO_MEDIA)
    out = benchmark(lambda: fn(nxt()))
    assert orjson.loads(out)["type"] == "input_audio_buffer.append"


# Realtime delta: 100 ms of mu-law (800 bytes) -> five 20 ms Twilio media frames.
DELTAS = [
    orjson.dumps({"type": "response.output_audio.delta", "event_id": f"event_{i:022d}",
                  "response_id": "resp_CCj0bEVCoHJHKxd0tmKOl", "item_id": "item_CCj0bOYF85JDWD4EXsfpo",
                  "output_index": 0, "content_index": 0,
                  "delta": base64.b64encode(b"".join(ULAW_20MS[i * 5 % 60:i * 5 % 60 + 5])).decode()})
    for i in range(32)]


def usual_outbound(frame):
    audio = base64.b64decode(json.loads(frame)["delta"])
    return [json.dumps({"event": "media", "streamSid": SID,
                        "media": {"payload": base64.b64encode(audio[i:i + 160]).decode()}}).encode()
            for i in range(0, len(audio), 160)]


def rtfast_outbound(codec):
    def fn(frame):
        audio = wire.scan_audio_delta(frame).audio()
        return [codec.media(audio[i:i + 160]) for i in range(0, len(audio), 160)]
    return fn


@pytest.mark.parametrize("impl", ["rtfast", "usual"])
def test_delta_to_twilio_frames(benchmark, impl):
    benchmark.group = "carriers: realtime delta (100 ms mu-law) -> 5 Twilio media frames"
    fn = rtfast_outbound(make_codec()) if impl == "rtfast" else usual_outbound
    nxt = cycler(DELTAS)
    out = benchmark(lambda: fn(nxt()))
    assert len(out) == 5


def test_delta_through_call_with_pacing_and_marks(benchmark):
    """The whole Call outbound path per 100 ms delta: scan, ledger, 5 frames + 5 marks."""
    benchmark.group = "carriers: realtime delta (100 ms mu-law) -> 5 Twilio media frames"
    call = Call(make_codec(), startup_buffer_ms=0, lead_ms=100)
    call.from_realtime(orjson.dumps({"type": "session.updated", "event_id": "e", "session": {
        "type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}},
                                      "output": {"format": {"type": "audio/pcmu"}}}}}))
    nxt = cycler(DELTAS)
    clock = [0.0]

    def step():
        clock[0] += 100.0
        return call.from_realtime(nxt(), now_ms=clock[0])

    out = benchmark(step)
    assert len(out.to_carrier) == 10
