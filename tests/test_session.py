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


def test_a_session_object_resent_counts_in_its_formats():
    """``session.update`` with the session a ``session.created`` brought (rtfast's object), or an
    official pydantic one, nested in the dict: sent as its set fields, its formats taken."""
    s = RealtimeSession("ga")
    created = s.receive(orjson.dumps({"type": "session.created", "event_id": "e", "session": {
        "type": "realtime", "model": "gpt-realtime", "audio": {"output": {"format": {"type": "audio/pcmu"},
                                                                          "voice": "marin"}}}}))
    s2 = RealtimeSession("ga")
    frame = s2.send({"type": "session.update", "session": created.session})
    assert orjson.loads(frame)["session"]["audio"]["output"] == {"format": {"type": "audio/pcmu"}, "voice": "marin"}
    assert str(s2.output_format) == "pcmu/8000" and str(s2.input_format) == "pcm16/24000"
    types = pytest.importorskip("openai.types.realtime")
    theirs = types.RealtimeSessionCreateRequest(type="realtime", audio={"output": {"format": {"type": "audio/pcma"}}})
    frame = s2.send({"type": "session.update", "session": theirs})
    assert orjson.loads(frame) == {"type": "session.update", "session": {
        "type": "realtime", "audio": {"output": {"format": {"type": "audio/pcma"}}}}}
    assert str(s2.output_format) == "pcma/8000"


# -- behaviours pinned after mutation testing ------------------------------------------------------

def ga_updated(input_format, output_format):
    return orjson.dumps({"type": "session.updated", "event_id": "e", "session": {
        "type": "realtime", "id": "sess_9", "audio": {"input": {"format": input_format},
                                                     "output": {"format": output_format}}}})


def test_a_fresh_session():
    s = RealtimeSession()
    assert s.generation == "ga" and s.config == {} and s.session_id is None and s.response_id is None
    assert s.last_session_update is None and s.speaking is False and s.refused is None
    assert (s.frames_in, s.frames_out, s.items) == (0, 0, {})
    assert str(s.input_format) == str(s.output_format) == "pcm16/24000"
    assert RealtimeSession("translation").generation == "translation"
    with pytest.raises(ValueError, match="generation must be 'ga', 'beta' or 'translation', not 'v2'"):
        RealtimeSession("v2")


def test_alaw_is_8_bytes_per_ms():
    s = RealtimeSession("ga")
    s.receive(ga_updated({"type": "audio/pcma"}, {"type": "audio/pcma"}))
    assert str(s.output_format) == str(s.input_format) == "pcma/8000" and s.output_format.bytes_per_ms == 8
    s.receive(delta("item_a", 8 * 1000))                   # one second of A-law
    assert s.audio_received_ms("item_a") == 1000
    assert orjson.loads(s.truncate("item_a", 5000))["audio_end_ms"] == 1000


def test_the_effective_config_is_the_servers_latest():
    s = RealtimeSession("ga")
    s.receive(GA_CREATED)
    assert s.config["id"] == "sess_1" and s.config["model"] == "gpt-realtime"
    s.receive(ga_updated({"type": "audio/pcm", "rate": 24000}, {"type": "audio/pcma"}))
    assert s.config == orjson.loads(ga_updated({"type": "audio/pcm", "rate": 24000},
                                               {"type": "audio/pcma"}))["session"]
    assert s.session_id == "sess_9"
    assert str(s.input_format) == "pcm16/24000" and str(s.output_format) == "pcma/8000"
    # a session.updated without an id keeps the one known
    s.receive(b'{"type":"session.updated","event_id":"e","session":{"type":"realtime"}}')
    assert s.session_id == "sess_9" and s.config == {"type": "realtime"}
    assert str(s.output_format) == "pcm16/24000"          # no format named: the API's default


@pytest.mark.parametrize("fmt", [{"type": "audio/pcm", "rate": 24000}, {"type": "audio/new"}])
def test_ga_formats_other_than_g711_are_pcm16_24k(fmt):
    s = RealtimeSession("ga")
    s.receive(ga_updated({"type": "audio/pcmu"}, {"type": "audio/pcmu"}))
    s.receive(ga_updated(fmt, fmt))
    assert (s.output_format.codec, s.output_format.rate) == ("pcm16", 24000)
    assert (s.input_format.codec, s.input_format.rate) == ("pcm16", 24000)
    s.receive(delta("item_a", 4800))
    assert s.audio_received_ms("item_a") == 100


@pytest.mark.parametrize("name,codec,rate", [("g711_ulaw", "pcmu", 8000), ("g711_alaw", "pcma", 8000),
                                             ("pcm16", "pcm16", 24000), ("other", "pcm16", 24000)])
def test_beta_formats(name, codec, rate):
    s = RealtimeSession("beta")
    s.receive(orjson.dumps({"type": "session.updated", "event_id": "e", "session": {
        "id": "s", "input_audio_format": name, "output_audio_format": name}}))
    assert (s.output_format.codec, s.output_format.rate) == (codec, rate) == (
        s.input_format.codec, s.input_format.rate)


def test_audio_format_is_a_frozen_value():
    from rtfast.session import AudioFormat
    f = AudioFormat("pcmu", 8000)
    with pytest.raises(AttributeError):
        f.rate = 16000
    assert f == AudioFormat("pcmu", 8000) and hash(f) == hash(AudioFormat("pcmu", 8000))
    assert f.ms(799) == 99 and AudioFormat("pcm16", 24000).ms(4799) == 99


def test_truncate_with_no_audio_received_is_at_0_ms():
    s = RealtimeSession("ga")
    s.receive(GA_CREATED)
    assert orjson.loads(s.truncate("never_heard", 1))["audio_end_ms"] == 0
    assert orjson.loads(s.truncate("never_heard", 0))["audio_end_ms"] == 0
    s.receive(delta("item_a", 80))                          # 10 ms
    assert orjson.loads(s.truncate("item_a", -5))["audio_end_ms"] == 0
    assert orjson.loads(s.truncate("item_a", 3.9))["audio_end_ms"] == 3
    assert orjson.loads(s.truncate("item_a", 7, content_index=1))["audio_end_ms"] == 0
    assert s.items["item_a"].bytes(1) == 0 and s.items["item_a"].bytes() == 80


def test_the_speaking_flag_follows_the_servers_vad():
    s = RealtimeSession("ga")
    assert s.speaking is False
    s.receive(b'{"type":"input_audio_buffer.speech_started","event_id":"e","audio_start_ms":5,"item_id":"u"}')
    assert s.speaking is True
    s.receive(b'{"type":"input_audio_buffer.speech_stopped","event_id":"e","audio_end_ms":9,"item_id":"u"}')
    assert s.speaking is False


def test_items_beyond_the_bound_forget_the_oldest():
    from rtfast.session import ITEMS_KEPT
    s = RealtimeSession("ga")
    s.receive(GA_CREATED)
    for i in range(ITEMS_KEPT):
        s.receive(delta(f"item_{i}", 8, response=f"r{i}"))
    assert len(s.items) == ITEMS_KEPT == 64 and "item_0" in s.items
    s.receive(delta("item_0", 8))                           # an item already known takes no room
    assert len(s.items) == 64 and s.items["item_0"].bytes() == 16
    s.receive(delta("item_new", 8))
    assert len(s.items) == 64 and "item_0" not in s.items and "item_1" in s.items
    assert s.items["item_new"].response_id == "resp_1" and s.items["item_5"].response_id == "r5"


def test_str_frames_and_counters():
    s = RealtimeSession("ga")
    ev = s.receive(GA_CREATED.decode())
    assert ev.type == "session.created" and s.frames_in == 1
    s.receive(delta("i", 8).decode())
    assert s.items["i"].bytes() == 8 and s.frames_in == 2
    s.send({"type": "response.create"})
    s.append_audio(b"\x00\x00")
    s.append_audio_b64("AAA=")
    assert s.frames_out == 3


def test_beta_refusal_without_a_message():
    s = RealtimeSession("beta")
    s.receive(b'{"type":"error","event_id":"e","error":{"type":"x","code":"beta_api_shape_disabled"}}')
    assert s.refused == "the server refuses the beta API shape"
    s2 = RealtimeSession("beta")
    s2.receive(b'{"type":"error","event_id":"e","error":{"type":"x","code":"other","message":"m"}}')
    assert s2.refused is None


def test_a_format_that_is_not_an_object_counts_as_pcm16_24k():
    s = RealtimeSession("ga")
    s.receive(ga_updated({"type": "audio/pcmu"}, {"type": "audio/pcmu"}))
    s.send({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"format": "audio/pcmu"}}}})
    assert str(s.output_format) == "pcm16/24000" and str(s.input_format) == "pcmu/8000"


def test_item_audio_starts_untruncated():
    from rtfast.session import ItemAudio
    item = ItemAudio("i")
    assert (item.item_id, item.response_id, item.received, item.truncated_ms, item.bytes(3)) == ("i", None, {}, None, 0)
