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
