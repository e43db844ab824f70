"""LiveCall, sans I/O: session.start from the carrier's start, the splice, the
hold until session.started, runs of model audio, and when the bridge drops
what it holds (byte literals and a fake clock; no sockets)."""

import base64

import orjson
import pytest

from rtfast.bridge.call import BargeIn, Call
from rtfast.bridge.carriers import TwilioCodec, VonageCodec
from rtfast.bridge.livecall import LiveCall

START = orjson.dumps({"event": "start", "streamSid": "MZ1", "start": {
    "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
STARTED = (b'{"type":"session.started","event_id":"e1","session":{"id":"sess_1","model":"gpt-live-1",'
           b'"audio":{"format":{"type":"audio/pcmu","rate":8000}}}}')


def media(audio: bytes = b"\x11" * 160) -> bytes:
    return b'{"event":"media","streamSid":"MZ1","media":{"track":"inbound","payload":"%s"}}' % base64.b64encode(audio)


def delta(audio: bytes) -> bytes:
    return b'{"type":"session.output_audio.delta","delta":"%s"}' % base64.b64encode(audio)


def transcript(end_ms: int, text: str = "wait") -> bytes:
    return orjson.dumps({"type": "session.input_transcript.delta", "event_id": "e", "delta": text,
                         "start_ms": max(0, end_ms - 200), "end_ms": end_ms})


def started_call(**kw) -> LiveCall:
    c = LiveCall(TwilioCodec(), **kw)
    c.from_carrier(START, False, 0.0)
    c.from_realtime(STARTED, 0.0)
    return c


def carrier_audio(a) -> bytes:
    return b"".join(base64.b64decode(orjson.loads(f)["media"]["payload"]) for f in a.to_carrier
                    if b'"media"' in f)


def test_session_start_waits_for_the_carriers_format_and_audio_for_session_started():
    c = LiveCall(TwilioCodec(), instructions="Be brief.", session={"delegation": {"type": "client"}})
    assert c.opening_frames() == [] and c.session_update() is None
    a = c.from_carrier(START, False, 0.0)
    assert orjson.loads(a.to_realtime[0]) == {"type": "session.start", "session": {
        "model": "gpt-live-1", "instructions": "Be brief.", "audio": {"format": {"type": "audio/pcmu", "rate": 8000}},
        "delegation": {"type": "client"}}}
    assert c.opening_frames() == []                              # sent once
    held = [media(bytes([i]) * 160) for i in range(3)]
    for m in held:
        assert c.from_carrier(m, False, 1.0).to_realtime == []   # the protocol says: wait for session.started
    a = c.from_realtime(STARTED, 2.0)
    assert [orjson.loads(f) for f in a.to_realtime] == [
        {"type": "session.input_audio.append", "audio": base64.b64encode(bytes([i]) * 160).decode()} for i in range(3)]
    a = c.from_carrier(media(), False, 3.0)                      # then the splice: the carrier's payload untouched
    assert a.to_realtime == [b'{"type":"session.input_audio.append","audio":"' + base64.b64encode(b"\x11" * 160) + b'"}']
    assert c.summary()["frames_to_realtime"] == 5 and c.summary()["audio_bytes_in"] == 4 * 160


def test_pcm16_carriers_start_at_24khz_and_transcode():
    c = LiveCall(VonageCodec())
    a = c.from_carrier(b'{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}', False, 0.0)
    assert orjson.loads(a.to_realtime[0])["session"]["audio"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert c.effective_mode == "transcode"


def test_options_that_do_not_exist_on_live_are_refused():
    with pytest.raises(ValueError, match="owns turn-taking"):
        LiveCall(TwilioCodec(), vad="server_vad")
    with pytest.raises(ValueError, match="generation"):
        LiveCall(TwilioCodec(), generation="ga")
    with pytest.raises(NotImplementedError):
        LiveCall(TwilioCodec()).reconfigure(instructions="x")
    assert type(Call(TwilioCodec())) is Call                    # the Realtime call is untouched


def test_a_run_ends_after_silence_ms_and_its_tail_is_padded():
    c = started_call(silence_ms=300)
    a = c.from_realtime(delta(b"\x01" * 500), 10.0)               # 62.5 ms: three chunks leave, 20 bytes wait
    assert len(carrier_audio(a)) == 480 and c.buffered_ms == 2
    assert c.wake_at(10.0) == 310.0                              # woken when the model has been silent long enough
    assert not c.tick(200.0).to_carrier
    a = c.tick(310.0)
    assert carrier_audio(a) == b"\x01" * 20 + b"\xff" * 140      # the last chunk, padded with μ-law silence
    assert c.wake_at(310.0) is None


def test_talking_over_queued_audio_once_the_model_is_silent_clears_it():
    c = started_call(silence_ms=300)
    for i in range(10):                                          # 200 ms of caller audio: the session timeline
        c.from_carrier(media(), False, i * 20.0)
    c.from_realtime(delta(b"\x02" * 16000), 200.0)               # 2 s at once, far ahead of real time
    c.tick(300.0)
    assert c.buffered_ms > 1500
    # a fragment of the speech the model is answering (it ended before this audio came): not an interruption
    a = c.from_realtime(transcript(150), 700.0)
    assert not any(b'"clear"' in f for f in a.to_carrier) and c.buffered_ms > 1000 and c.barge_ins == 0
    # speech after the audio began, the model silent for 300 ms: clear, drop the rest
    a = c.from_realtime(transcript(260), 800.0)
    assert orjson.loads(a.to_carrier[0]) == {"event": "clear", "streamSid": "MZ1"}
    cut = [e for e in a.events if isinstance(e, BargeIn)]
    assert len(cut) == 1 and cut[0].item_id == "turn_1" and cut[0].action == "clear" and cut[0].cleared
    assert c.buffered_ms == 0 and c.barge_ins == 1
    assert not c.tick(900.0).to_carrier
    # marks of the cleared playback are stale; the next run is a new turn
    c.from_carrier(b'{"event":"mark","streamSid":"MZ1","mark":{"name":"0.3"}}', False, 900.0)
    assert c.stale_marks == 1
    a = c.from_realtime(delta(b"\x03" * 480), 1000.0)
    assert carrier_audio(a) == b"\x03" * 480
    assert c._receiving[0] == "turn_2"


def test_a_model_that_keeps_talking_through_the_callers_words_keeps_playing():
    c = started_call(silence_ms=300)
    c.from_realtime(delta(b"\x04" * 8000), 0.0)
    c.from_realtime(transcript(10_000, "mm-hm"), 100.0)           # heard, while the model is still sending
    assert c.wake_at(100.0) <= 300.0
    c.from_realtime(delta(b"\x04" * 800), 250.0)                 # ... and it goes on: it did not yield
    for t in range(300, 2000, 10):
        assert not any(b'"clear"' in f for f in c.tick(float(t)).to_carrier)
    assert c.barge_ins == 0


def test_a_model_that_stops_just_after_the_fragment_is_cut_when_silence_ms_has_passed():
    c = started_call(silence_ms=300)
    c.from_realtime(delta(b"\x05" * 8000), 0.0)
    c.from_realtime(transcript(10_000), 100.0)                   # the model's last delta was 100 ms ago
    assert not any(b'"clear"' in f for f in c.tick(250.0).to_carrier)
    a = c.tick(300.0)
    assert b'"clear"' in a.to_carrier[-1] and c.buffered_ms == 0 and c.barge_ins == 1
