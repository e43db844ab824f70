"""The sans-I/O session, driven by byte literals: no sockets."""

import base64

import orjson
import pytest

from rtfast import wire
from rtfast.errors import ProtocolError
from rtfast.session import RealtimeSession

GA_CREATED = orjson.dumps({
    "type": "session.created", "event_id": "e0",
    "session": {"type": "realtime", "id": "sess_1", "object": "realtime.session", "model": "gpt-realtime",
                "output_modalities": ["audio"],
                "audio": {"input": {"format": {"type": "audio/pcmu"}},
                          "output": {"format": {"type": "audio/pcmu"}, "voice": "alloy"}}},
})
BETA_CREATED = orjson.dumps({
    "type": "session.created", "event_id": "e0",
    "session": {"id": "sess_2", "object": "realtime.session", "model": "gpt-4o-realtime-preview",
                "modalities": ["audio", "text"], "input_audio_format": "g711_alaw",
                "output_audio_format": "pcm16"},
})


def delta(item, n_bytes, type_="response.output_audio.delta", content_index=0, response="resp_1"):
    return orjson.dumps({"type": type_, "event_id": "e", "response_id": response, "item_id": item,
                         "output_index": 0, "content_index": content_index,
                         "delta": base64.b64encode(b"\xff" * n_bytes).decode()})


def test_formats_follow_the_session_config_ga():
    s = RealtimeSession("ga")
    ev = s.receive(GA_CREATED)
    assert ev.type == "session.created" and ev.session.id == "sess_1"
    assert str(s.input_format) == "pcmu/8000" and str(s.output_format) == "pcmu/8000"
    assert s.session_id == "sess_1"


def test_formats_follow_the_session_config_beta():
    s = RealtimeSession("beta")
    s.receive(BETA_CREATED)
    assert str(s.input_format) == "pcma/8000" and str(s.output_format) == "pcm16/24000"


def test_audio_received_per_item_and_content_index_in_ms():
    s = RealtimeSession("ga")
    s.receive(GA_CREATED)                      # pcmu out: 8 bytes per ms
    s.receive(orjson.dumps({"type": "response.created", "event_id": "e1",
                            "response": {"id": "resp_1", "object": "realtime.response", "status": "in_progress"}}))
    assert s.response_id == "resp_1"
    for _ in range(5):
        ev = s.receive(delta("item_a", 800))   # 100 ms each
        assert isinstance(ev, wire.AudioDelta)
    s.receive(delta("item_a", 160, content_index=1))
    assert s.audio_received_ms("item_a") == 500
    assert s.audio_received_ms("item_a", 1) == 20
    assert s.audio_received_ms("nope") == 0
    s.receive(orjson.dumps({"type": "response.done", "event_id": "e2",
                            "response": {"id": "resp_1", "object": "realtime.response", "status": "completed"}}))
    assert s.response_id is None


def test_pcm16_24k_is_48_bytes_per_ms_and_beta_deltas_count():
    s = RealtimeSession("beta")
    s.receive(BETA_CREATED)
    s.receive(delta("item_b", 4800, type_="response.audio.delta"))
    assert s.audio_received_ms("item_b") == 100


def test_truncate_is_clamped_to_audio_received():
    s = RealtimeSession("ga")
    s.receive(GA_CREATED)
    s.receive(delta("item_a", 1600))           # 200 ms
    frame = s.truncate("item_a", 950)
    assert orjson.loads(frame) == {"type": "conversation.item.truncate", "item_id": "item_a",
                                   "content_index": 0, "audio_end_ms": 200}
    assert orjson.loads(s.truncate("item_a", 120))["audio_end_ms"] == 120
    s.receive(orjson.dumps({"type": "conversation.item.truncated", "event_id": "e", "item_id": "item_a",
                            "content_index": 0, "audio_end_ms": 120}))
    assert s.items["item_a"].truncated_ms == 120
    s.receive(orjson.dumps({"type": "conversation.item.deleted", "event_id": "e", "item_id": "item_a"}))
    assert "item_a" not in s.items


def test_escaped_delta_takes_the_slow_path_and_still_counts():
    s = RealtimeSession("ga")
    frame = b'{"type":"response.output_audio.delta","item_id":"i","content_index":0,"delta":"AAAA\\/w==","x":1}'
    ev = s.receive(frame)
    assert ev.audio() == base64.b64decode("AAAA/w==")
    assert s.items["i"].bytes() == 4


def test_session_update_is_remembered_for_reconnects():
    s = RealtimeSession("ga")
    frame = s.send({"type": "session.update", "session": {"type": "realtime", "instructions": "hi"}})
    assert s.last_session_update == frame
    s.send({"type": "response.create"})
    assert s.last_session_update == frame


def test_append_frames():
    s = RealtimeSession("ga")
    assert orjson.loads(s.append_audio(b"\x01\x02")) == {"type": "input_audio_buffer.append", "audio": "AQI="}
    assert orjson.loads(s.append_audio_b64("AQI=", event_id="x"))["event_id"] == "x"


def test_malformed_frames_raise_and_leave_state_alone():
    s = RealtimeSession("ga")
    s.receive(GA_CREATED)
    s.receive(delta("item_a", 800))
    for bad in (b"{nope", b"[]", b'{"no_type":1}', b'{"type":"response.created","response":5}'):
        with pytest.raises(ProtocolError):
            s.receive(bad)
    assert s.audio_received_ms("item_a") == 100 and str(s.output_format) == "pcmu/8000"
    assert s.frames_in == 2


def test_unknown_events_pass_through():
    s = RealtimeSession("ga")
    ev = s.receive(b'{"type":"brand.new.event","x":{"y":[1]}}')
    assert ev.type == "brand.new.event" and ev.to_dict() == {"type": "brand.new.event", "x": {"y": [1]}}


def test_beta_refusal_is_recorded():
    s = RealtimeSession("beta")
    ev = s.receive(orjson.dumps({"type": "error", "event_id": "e", "error": {
        "type": "invalid_request_error", "code": "beta_api_shape_disabled", "message": "use GA"}}))
    assert ev.type == "error" and s.refused == "use GA"


def test_formats_asked_for_count_until_the_server_confirms():
    s = RealtimeSession("ga")
    s.send({"type": "session.update", "session": {"type": "realtime", "audio": {
        "output": {"format": {"type": "audio/pcmu"}}}}})
    assert str(s.output_format) == "pcmu/8000" and str(s.input_format) == "pcm16/24000"
    s.receive(delta("item_a", 800))
    assert s.audio_received_ms("item_a") == 100
