"""GPT-Live events (``openai.types.live``): the live generation of rtfast.events.

Every official event model's round trip is covered by tests/test_events.py (the "live" keys of
OFFICIAL); these pin what is particular to GPT-Live: one registry for the primary, sideband and
fork sockets, unknown events and fields passed through, the free-form Responses item.
"""

from __future__ import annotations

import orjson
import pytest

from rtfast import events
from rtfast.events import dumps, live, parse, parse_client


def test_live_is_a_generation_with_its_own_namespace():
    assert "live" in events.GENERATIONS
    assert events.SERVER_EVENTS["live"] is events.LIVE_SERVER_EVENTS is live.SERVER_EVENTS
    assert live.SessionStartedEvent.__module__ == "rtfast.events.live"
    assert live.SessionStartedEvent is events.LIVE_SERVER_EVENTS["session.started"]
    assert live.SessionStartEvent is events.LIVE_CLIENT_EVENTS["session.start"]
    # the GA namespace is unchanged: its ErrorEvent is the Realtime one
    assert events.ErrorEvent is events.GA_SERVER_EVENTS["error"] and events.ErrorEvent is not live.ErrorEvent
    # the sideband's extra types are in the same registries
    assert live.SessionPaused.TYPE == "session.paused"
    assert live.ConnectClientEventTransportDtmfSend.TYPE == "transport.dtmf.send"
    assert live.ServerEventTransportDtmfSend.TYPE == "transport.dtmf.send"


def test_session_started_nested_access():
    frame = orjson.dumps({
        "type": "session.started", "event_id": "ev_1",
        "session": {"id": "sess_1", "expires_at": 10, "model": "gpt-live-1", "status": "active",
                    "audio": {"format": {"type": "audio/pcmu"}, "output": {"voice": "marin"}},
                    "delegation": {"type": "client", "tools": [{"type": "function", "name": "lookup"}]}}})
    ev = parse(frame, generation="live")
    assert type(ev) is live.SessionStartedEvent
    assert ev.session.id == "sess_1" and ev.session.audio.format.type == "audio/pcmu"
    assert ev.session.audio.output.voice == "marin"
    assert ev.to_dict() == orjson.loads(frame)
    # the same type name means something else in GA: generation is context
    assert type(parse(frame, generation="ga")) is events.UnknownEvent


def test_unknown_live_event_and_fields_pass_through():
    data = {"type": "session.future.thing", "event_id": "e", "payload": [1, {"x": None}]}
    ev = parse(orjson.dumps(data), generation="live")
    assert isinstance(ev, events.UnknownEvent) and ev.to_dict() == data
    data = {"type": "session.output_transcript.delta", "event_id": "e", "delta": "hi",
            "future": {"a": 1}, "start_ms": None}
    ev = parse(orjson.dumps(data), generation="live")
    assert type(ev) is live.OutputTranscriptDeltaEvent and ev.future == {"a": 1}
    assert orjson.loads(dumps(ev)) == data


def test_response_item_create_keeps_the_responses_item_intact():
    item = {"type": "function_call_output", "call_id": "c1", "output": "{\"ok\":true}", "new": [1]}
    ev = parse_client(orjson.dumps({"type": "response.item.create", "item": item}), generation="live")
    assert type(ev) is live.ResponseItemCreateEvent and ev.item == item
    assert orjson.loads(dumps(live.ResponseItemCreateEvent(item=item))) == {"type": "response.item.create", "item": item}


def test_wrong_kind_is_a_protocol_error():
    from rtfast.errors import ProtocolError

    with pytest.raises(ProtocolError, match="delta"):
        parse(b'{"type":"session.output_transcript.delta","event_id":"e","delta":5}', generation="live")


def test_builders_speak_live():
    ev = events.input_audio_buffer_append("AAAA", generation="live")
    assert type(ev) is live.InputAudioAppendEvent
    assert ev.to_dict() == {"type": "session.input_audio.append", "audio": "AAAA"}


# -- the wire fast path: session.output_audio.delta in, session.input_audio.append out ----------

import base64  # noqa: E402

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rtfast import wire  # noqa: E402

openai_live = pytest.importorskip("openai.types.live")


@settings(max_examples=60, deadline=None)
@given(audio=st.binary(max_size=700), event_id=st.none() | st.text(max_size=12),
       reflected=st.booleans())
@example(audio=b"", event_id="\x7f", reflected=False)       # DEL is not escaped: the scanner takes it
def test_output_delta_scanned_in_place_matches_the_official_model(audio, event_id, reflected):
    fields = {"type": "session.output_audio.delta", "delta": base64.b64encode(audio).decode()}
    if reflected:
        fields.update(start_ms=40, end_ms=60)
    if event_id is not None:
        fields["event_id"] = event_id
    frame = orjson.dumps(fields)
    official = openai_live.OutputAudioDeltaEvent.model_validate_json(frame)
    ev = wire.parse_audio_delta(frame)
    # what orjson writes unescaped in ASCII (DEL included: JSON escapes only below 0x20)
    plain = event_id is None or event_id.isascii() and min(event_id, default=" ") >= " " \
        and '"' not in event_id and "\\" not in event_id
    assert (wire.scan_audio_delta(frame) is not None) == plain   # escapes go the orjson way
    assert ev.audio() == audio and ev.audio_length == len(audio) and ev.generation == "live"
    assert ev.delta == official.delta and ev.start_ms == official.start_ms and ev.end_ms == official.end_ms
    out = bytearray(len(audio))
    assert ev.audio_into(out) == len(audio) and bytes(out) == audio
    assert ev.to_dict() == fields
    # the session parser takes the same path
    from rtfast.live import LiveSession

    assert LiveSession().receive(frame) == ev


def test_output_delta_other_protocols_keys_fall_back_and_are_kept():
    for extra in (b',"item_id":"i"', b',"content_index":0', b',"response_id":"r"', b',"future":1'):
        frame = b'{"type":"session.output_audio.delta","delta":"AQID"' + extra + b"}"
        assert wire.scan_audio_delta(frame) is None
        ev = wire.parse_audio_delta(frame)
        assert ev.audio() == b"\x01\x02\x03" and ev.to_dict() == orjson.loads(frame)
    # and a GA delta with GPT-Live's keys is not a plain GA delta either
    assert wire.scan_audio_delta(b'{"type":"response.output_audio.delta","delta":"AQID","end_ms":3}') is None
    assert wire.scan_audio_delta(b'{"type":"response.output_audio.delta","delta":"AQID"}').generation == "ga"


@settings(max_examples=60, deadline=None)
@given(audio=st.binary(max_size=700), event_id=st.none() | st.text(max_size=12))
def test_input_append_built_without_dicts_matches_the_official_model(audio, event_id):
    b64 = base64.b64encode(audio).decode()
    frame = wire.build_append(audio, event_id, generation="live")
    official = openai_live.InputAudioAppendEvent(type="session.input_audio.append", audio=b64,
                                                 **({} if event_id is None else {"event_id": event_id}))
    assert orjson.loads(frame) == official.model_dump(exclude_unset=True)
    assert wire.build_append_b64(b64, event_id, generation="live") == frame
    assert wire.build_append_b64(b64.encode(), event_id, generation="live") == frame
    assert wire.append_frame_length(len(audio), event_id, generation="live") == len(frame)
    out = bytearray(len(frame) + 3)
    assert wire.build_append_into(audio, out, event_id, generation="live") == len(frame)
    assert bytes(out[:len(frame)]) == frame
    assert parse_client(frame, generation="live") == live.InputAudioAppendEvent(**orjson.loads(frame))


def test_input_append_checks():
    from rtfast.errors import Base64Error

    with pytest.raises(ValueError, match="generation"):
        wire.build_append(b"x", generation="v9")
    with pytest.raises(ValueError, match="generation"):
        wire.build_append(b"x", "e", generation="v9")
    with pytest.raises(Base64Error):
        wire.build_append_b64("AQ=D", generation="live")
    # the default stays the Realtime append
    assert wire.build_append(b"\x01\x02\x03") == b'{"type":"input_audio_buffer.append","audio":"AQID"}'
    assert wire.APPEND_TYPES["live"] == "session.input_audio.append"


# -- the sans-I/O session -----------------------------------------------------------------------


def test_live_session_tracks_start_format_audio_and_delegations():
    from rtfast.live import LiveSession

    s = LiveSession()
    frame = s.send({"type": "session.start", "session": {"model": "gpt-live-1",
                                                         "audio": {"format": {"type": "audio/pcmu", "rate": 8000}}}})
    assert s.last_session_start == frame and str(s.format) == "pcmu/8000" and not s.started
    assert s.append_audio(b"\xff" * 160) == wire.build_append(b"\xff" * 160, generation="live")
    started = {"type": "session.started", "event_id": "e1",
               "session": {"id": "sess_9", "expires_at": 1, "model": "gpt-live-1", "status": "active",
                           "audio": {"format": {"type": "audio/pcm", "rate": 16000}}}}
    ev = s.receive(orjson.dumps(started))
    assert s.started and s.session_id == "sess_9" and str(s.format) == "pcm16/16000"
    assert s.input_format is s.output_format is s.format and ev.session.id == "sess_9"
    s.receive(b'{"type":"session.output_audio.delta","delta":"' + base64.b64encode(b"\0" * 640) + b'"}')
    assert s.audio_received == 640 and s.audio_received_ms == 20          # 16 kHz PCM16: 32 bytes a ms
    s.receive(orjson.dumps({"type": "session.delegation.created", "event_id": "e2", "offset_ms": 5,
                            "delegation": {"id": "del_1", "target": "client", "type": "delegation"}}))
    assert list(s.delegations) == ["del_1"]
    s.send(live.CommentaryAppendEvent(content="42", delegation_id="del_1"))
    assert s.delegations == {}
    s.receive(orjson.dumps({"type": "session.closed", "event_id": "e3", "reason": "close_requested",
                            "session": started["session"], "usage": {}}))
    assert s.closed and s.frames_in == 4 and s.frames_out == 3
