"""rtfast.events against the official ``openai`` models (a test dependency).

For every event type of every generation, sample frames are built from the official
pydantic model (every field set, union members rotated across variants, plus a
required-fields-only variant), dumped with ``model_dump(mode="json", exclude_unset=True)``,
parsed by rtfast, compared value by value and attribute by attribute, and rtfast's own
output is validated by the official model.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("openai")
from pydantic import BaseModel  # noqa: E402

from openai.types.beta.realtime import realtime_client_event as beta_client  # noqa: E402
from openai.types.beta.realtime import realtime_server_event as beta_server  # noqa: E402
from openai.types.realtime import realtime_client_event as ga_client  # noqa: E402
from openai.types.realtime import realtime_server_event as ga_server  # noqa: E402
from openai.types.realtime import realtime_translation_client_event as tr_client  # noqa: E402
from openai.types.realtime import realtime_translation_server_event as tr_server  # noqa: E402

import rtfast  # noqa: E402
from rtfast import events  # noqa: E402
from rtfast.events import dumps, parse, parse_client  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import gen_events  # noqa: E402
from openai._utils import PropertyInfo  # noqa: E402
from typing_extensions import Annotated  # noqa: E402


def _merged(unions) -> Any:
    """GPT-Live's registry: the primary socket's union plus the sideband/fork-only event types."""
    return Annotated[Union[tuple(gen_events.events_of(unions))], PropertyInfo(discriminator="type")]


OFFICIAL = {
    ("ga", "server"): ga_server.RealtimeServerEvent,
    ("ga", "client"): ga_client.RealtimeClientEvent,
    ("beta", "server"): beta_server.RealtimeServerEvent,
    ("beta", "client"): beta_client.RealtimeClientEvent,
    ("translation", "server"): tr_server.RealtimeTranslationServerEvent,
    ("translation", "client"): tr_client.RealtimeTranslationClientEvent,
    ("live", "server"): _merged(gen_events.GENERATIONS["live"][0]),
    ("live", "client"): _merged(gen_events.GENERATIONS["live"][1]),
}
# The two transport.dtmf.send classes (a server notification and a client command) share a name.
RENAMED = {("live", "server", "TransportDtmfSend"): "ServerEventTransportDtmfSend",
           ("live", "client", "TransportDtmfSend"): "ConnectClientEventTransportDtmfSend"}
# Event types per generation in the spec (openai 3.60.0; 3.58-3.60 added none to 3.57's unions).
EXPECTED_COUNTS = {
    ("ga", "server"): 46,
    ("ga", "client"): 11,
    ("beta", "server"): 35,          # 34 official + transcription_session.created (gen_events.ADDED)
    ("beta", "client"): 12,
    ("translation", "server"): 7,
    ("translation", "client"): 3,
    ("live", "server"): 30,          # 28 of live.ServerEvent + the sideband's session.paused/resumed
    ("live", "client"): 16,          # 15 of live.ClientEvent + the sideband's transport.dtmf.send
}
REGISTRIES = {(g, "server"): events.SERVER_EVENTS[g] for g in events.GENERATIONS} | {
    (g, "client"): events.CLIENT_EVENTS[g] for g in events.GENERATIONS
}
PARSERS = {"server": parse, "client": parse_client}


# The generator's own readers of the official type hints (one definition of what a
# union member or a model is, for the spec and for these tests).
strip, is_model = gen_events.strip, gen_events.is_model


def members(union: Any) -> list[type]:
    return list(gen_events.union_members(union))


# -- deterministic sample builder ---------------------------------------------------------------


def sample_value(tp: Any, variant: int, name: str, depth: int) -> Any:
    tp = strip(tp)
    origin = get_origin(tp)
    if origin is Union:
        choices = [a for a in get_args(tp) if a is not type(None)]
        return sample_value(choices[variant % len(choices)], variant, name, depth)
    if origin is Literal:
        values = get_args(tp)
        return values[variant % len(values)]
    if origin is list:
        return [sample_value(get_args(tp)[0], variant, name, depth), sample_value(get_args(tp)[0], variant + 1, name, depth)]
    if origin is dict:
        return {"k": "v", "k2": "w"}
    if is_model(tp):
        return sample_model(tp, variant, depth + 1)
    if tp is str:
        return f"{name}-{variant}"
    if tp is bool:
        return variant % 2 == 0
    if tp is int:
        return 7 + variant
    if tp is float:
        return 0.5 + variant
    if tp in (object, Any):
        return {"any": [1, "two", None]}
    raise AssertionError(f"no sample for {tp!r}")


def sample_model(model: type, variant: int, depth: int = 0, minimal: bool = False) -> dict:
    out = {}
    for name, f in model.model_fields.items():
        if minimal and not f.is_required():
            continue
        out[f.alias or name] = sample_value(f.annotation, variant, name, depth)
    return out


def event_cases():
    """(generation, side, official model, variant) for every event type; variant None = required only."""
    for (gen, side), union in OFFICIAL.items():
        for model in members(union):
            for variant in (None, 0, 1, 2, 3, 4, 5, 6, 7, 8):
                yield pytest.param(gen, side, model, variant, id=f"{gen}-{side}-{model.__name__}-{variant}")


def official_frame(model: type, variant: int | None) -> tuple[BaseModel, dict]:
    raw = sample_model(model, variant or 0, minimal=variant is None)
    obj = model.model_validate(raw)
    return obj, obj.model_dump(mode="json", exclude_unset=True)


def same_values(official: Any, ours: Any, path: str) -> None:
    """Attribute-by-attribute comparison of an official model tree with an rtfast object tree."""
    if isinstance(official, BaseModel) and type(ours) is dict:
        # a field the generator keeps free-form (gen_events.OVERRIDES): the JSON object itself
        assert ours == official.model_dump(mode="json", exclude_unset=True), path
    elif isinstance(official, BaseModel):
        origin = type(official).__module__.removeprefix("openai.types.") + "." + type(official).__qualname__
        assert f"``{origin}``" in type(ours).__doc__, path  # the same variant was chosen
        for name in type(official).model_fields:
            same_values(getattr(official, name), getattr(ours, name), f"{path}.{name}")
    elif isinstance(official, list):
        assert isinstance(ours, list) and len(ours) == len(official), path
        for i, (a, b) in enumerate(zip(official, ours)):
            same_values(a, b, f"{path}[{i}]")
    else:
        assert ours == official, path


# -- the registries -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(OFFICIAL))
def test_registry_matches_official_union(key):
    added = gen_events.ADDED.get(key[0], {}).get(key[1], [])
    official_types = {m.model_fields["type"].annotation.__args__[0] for m in members(OFFICIAL[key]) + added}
    registry = REGISTRIES[key]
    assert set(registry) == official_types
    assert len(registry) == EXPECTED_COUNTS[key]
    base = events.ServerEvent if key[1] == "server" else events.ClientEvent
    for event_type, cls in registry.items():
        assert issubclass(cls, base) and cls.TYPE == event_type


@pytest.mark.parametrize("key", list(OFFICIAL))
def test_class_names_follow_official(key):
    gen, side = key
    ns = {"beta": events.beta, "live": events.live}.get(gen, events)
    for model in members(OFFICIAL[key]):
        cls = REGISTRIES[key][model.model_fields["type"].annotation.__args__[0]]
        name = RENAMED.get((gen, side, model.__name__), model.__name__)
        assert cls.__name__ == name
        assert getattr(ns, name) is cls


def test_transcription_session_created_is_typed_and_round_trips():
    # Sent on the wire by the beta API, absent from the official types: added by the generator.
    session = {"id": "sess_1", "object": "realtime.transcription_session", "modalities": ["text"],
               "input_audio_format": "pcm16",
               "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": ""},
               "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                  "silence_duration_ms": 500},
               "client_secret": {"value": "ek_x", "expires_at": 1}, "include": ["item.input_audio_transcription.logprobs"],
               "future_field": {"kept": True}}
    frame = orjson.dumps({"type": "transcription_session.created", "event_id": "event_1", "session": session})
    ev = parse(frame, generation="beta")
    cls = events.BETA_SERVER_EVENTS["transcription_session.created"]
    assert type(ev) is cls and cls is events.beta.TranscriptionSessionCreatedEvent
    assert not isinstance(ev, events.UnknownEvent) and "not typed by the official" in cls.__doc__
    assert type(ev.session) is events.beta.TranscriptionSession           # the beta transcription session
    assert ev.event_id == "event_1" and ev.session.id == "sess_1"
    assert ev.session.input_audio_transcription.model == "gpt-4o-transcribe"
    assert ev.session.turn_detection.silence_duration_ms == 500
    assert orjson.loads(dumps(ev)) == orjson.loads(frame)                 # unknown fields survive too
    # The same shape as the official transcription_session.updated, as pydantic reads it.
    official = gen_events.TranscriptionSessionCreatedEvent.model_validate(orjson.loads(frame))
    assert official.session.input_audio_transcription.model == ev.session.input_audio_transcription.model
    assert type(parse(frame, generation="ga")) is events.UnknownEvent      # a beta-only event


def test_named_access_examples():
    assert events.ResponseOutputAudioDeltaEvent is events.GA_SERVER_EVENTS["response.output_audio.delta"]
    assert events.ResponseAudioDeltaEvent.TYPE == "response.output_audio.delta"
    assert events.beta.ResponseAudioDeltaEvent.TYPE == "response.audio.delta"
    assert events.translation.SessionCreatedEvent is events.TRANSLATION_SERVER_EVENTS["session.created"]
    from rtfast.events.beta import ResponseTextDeltaEvent

    assert ResponseTextDeltaEvent.TYPE == "response.text.delta"


def test_runtime_does_not_import_openai():
    code = (
        "import sys, rtfast.events as e\n"
        "for reg in (*e.SERVER_EVENTS.values(), *e.CLIENT_EVENTS.values()):\n"
        "    for c in reg.values(): c._parse\n"
        "e.parse(b'{\"type\":\"response.done\",\"event_id\":\"x\",\"response\":{}}')\n"
        "assert 'openai' not in sys.modules and 'pydantic' not in sys.modules\n"
    )
    # cwd: not the checkout, whose source rtfast/ would shadow an installed one
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent)


def test_spec_is_current():
    import openai

    committed = gen_events.OUT.read_text()
    if f"openai=={openai.__version__}." not in committed.splitlines()[0]:
        pytest.skip(f"spec generated from another openai version than {openai.__version__}")
    text, counts = gen_events.render()
    assert {(g, s): n for g, sides in counts.items() for s, n in sides.items()} == EXPECTED_COUNTS
    assert committed == text, "rtfast/_events_spec.py is stale: run tools/gen_events.py"


# -- every event type: official -> rtfast -> official ---------------------------------------------


@pytest.mark.parametrize("gen, side, model, variant", list(event_cases()))
def test_event_round_trip(gen, side, model, variant):
    official, data = official_frame(model, variant)
    frame = orjson.dumps(data)
    ev = PARSERS[side](frame, generation=gen)
    cls = REGISTRIES[(gen, side)][data["type"]]
    assert type(ev) is cls
    assert ev.to_dict() == data
    same_values(official, ev, cls.__name__)
    # what rtfast writes, the official model accepts, with the same values
    out = dumps(ev)
    again = model.model_validate_json(out)
    assert again.model_dump(mode="json", exclude_unset=True) == data
    # the constructor (nested objects given as dicts) builds an equal object
    built = cls(**data)
    assert built == ev and built.to_dict() == data
    assert PARSERS[side](dumps(built), generation=gen) == ev
    assert repr(ev).startswith(cls.__name__ + "(")


def test_nested_attribute_access_like_openai():
    frame = orjson.dumps(
        {
            "type": "response.done",
            "event_id": "ev_1",
            "response": {
                "id": "resp_1",
                "status": "completed",
                "output": [
                    {
                        "id": "item_1",
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_audio", "transcript": "hello"}],
                    }
                ],
                "usage": {"total_tokens": 30, "input_tokens": 10, "output_tokens": 20},
            },
        }
    )
    ev = parse(frame)
    assert ev.response.usage.total_tokens == 30
    assert ev.response.output[0].content[0].transcript == "hello"
    assert type(ev.response.output[0]).__name__ == "RealtimeConversationItemAssistantMessage"
    assert ev.response.status_details is None and ev.response.usage.input_token_details is None
    assert isinstance(ev, events.ServerEvent) and not isinstance(ev, events.ClientEvent)


def test_generation_is_context():
    created = {"type": "session.created", "event_id": "e", "session": {"id": "s", "type": "translation", "model": "m"}}
    frame = orjson.dumps(created)
    assert type(parse(frame, generation="translation")).__name__ == "RealtimeTranslationSessionCreatedEvent"
    assert type(parse(frame, generation="ga")).__name__ == "SessionCreatedEvent"
    assert type(parse(frame, generation="beta")) is events.beta.SessionCreatedEvent
    for gen in events.GENERATIONS:
        assert parse(frame, generation=gen).to_dict() == created
    with pytest.raises(ValueError):
        parse(frame, generation="v2")
    # the GA session union picks the realtime or transcription variant by its type
    ev = parse(orjson.dumps({**created, "session": {"type": "transcription", "id": "s"}}))
    assert type(ev.session).__name__ == "RealtimeTranscriptionSessionCreateRequest"


# -- unknown types and fields ---------------------------------------------------------------------


def test_unknown_event_kept():
    data = {"type": "response.future_thing.delta", "event_id": "e1", "payload": {"a": [1, 2, {"b": None}]}}
    ev = parse(orjson.dumps(data))
    assert isinstance(ev, events.UnknownEvent) and isinstance(ev, events.ServerEvent)
    assert ev.type == "response.future_thing.delta" and ev.raw == data and ev.payload == data["payload"]
    assert ev.to_dict() == data and orjson.loads(dumps(ev)) == data
    assert parse_client(orjson.dumps(data)).to_dict() == data


def test_unknown_fields_and_nulls_round_trip():
    data = {
        "type": "conversation.item.done",
        "event_id": "e1",
        "previous_item_id": None,
        "future_top": {"x": 1},
        "item": {
            "id": "i1",
            "type": "message",
            "role": "user",
            "status": None,
            "future_item": [1, 2],
            "content": [{"type": "input_audio", "transcript": None, "future_part": True}],
        },
    }
    ev = parse(orjson.dumps(data))
    assert ev.to_dict() == data and orjson.loads(dumps(ev)) == data
    assert ev.previous_item_id is None and ev.future_top == {"x": 1}
    assert ev.item.future_item == [1, 2] and ev.item.content[0].future_part is True
    with pytest.raises(AttributeError):
        ev.not_there
    # the repr shows the unknown keys and the explicit nulls, as to_dict keeps them
    assert repr(ev).startswith("ConversationItemDone(") and "future_top={'x': 1}" in repr(ev)
    assert "previous_item_id=None" in repr(ev) and "future_item=[1, 2]" in repr(ev.item)
    assert "status=None" in repr(ev.item) and "future_part=True" in repr(ev.item.content[0])
    # a field set after parsing wins over the remembered null
    ev.previous_item_id = "i0"
    assert ev.to_dict()["previous_item_id"] == "i0"
    assert "previous_item_id='i0'" in repr(ev) and "previous_item_id=None" not in repr(ev)


def test_unknown_nested_variant_kept():
    data = {"type": "conversation.item.added", "event_id": "e", "item": {"type": "item_reference", "id": "x"}}
    ev = parse(orjson.dumps(data))
    assert isinstance(ev.item, events.UnknownObject)
    assert ev.item.type == "item_reference" and ev.item.id == "x"
    assert ev.to_dict() == data


@settings(max_examples=60, deadline=None)
@given(
    extra=st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda k: k not in events.ResponseTextDeltaEvent._fields),
        st.recursive(st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=6),
        max_size=4,
    ),
    delta=st.text(max_size=20),
)
def test_extra_fields_property(extra, delta):
    data = {"type": "response.output_text.delta", "delta": delta, "output_index": 1, **extra}
    ev = parse(orjson.dumps(data))
    assert ev.delta == delta and ev.to_dict() == data
    assert orjson.loads(dumps(ev)) == data


# -- malformed frames -----------------------------------------------------------------------------

MALFORMED = [
    (b"", "not JSON"),
    (b"{", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1,2]", "not a JSON object"),
    (b'"response.done"', "not a JSON object"),
    (b"{}", "no string 'type'"),
    (b'{"type": null}', "no string 'type'"),
    (b'{"type": 5}', "'type' is not a string"),
    (b'{"type": ["a"]}', "'type' is not a string"),
    (b'{"type":"response.output_text.delta","output_index":"x"}', "ResponseTextDeltaEvent.output_index"),
    (b'{"type":"response.output_text.delta","delta":5,"event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0}', "ResponseTextDeltaEvent.delta"),
    (b'{"type":"conversation.item.added","item":5}', "ConversationItemAdded.item"),
    (b'{"type":"conversation.item.added","item":{"type":7}}', "ConversationItem.type"),
    (b'{"type":"response.done","response":{"usage":{"total_tokens":"x"}}}', "RealtimeResponseUsage.total_tokens"),
    (b'{"type":"response.done","response":{"output":{"a":1}}}', "RealtimeResponse.output"),
    (b'{"type":"response.done","response":{"output":[5]}}', "RealtimeResponse.output[]"),
    (b'{"type":"rate_limits.updated","rate_limits":[{"limit":true}]}', "RateLimit.limit"),
    (b'{"type":"response.output_audio.delta","output_index":true}', "output_index"),
]


@pytest.mark.parametrize("frame, reason", MALFORMED)
def test_malformed_frames(frame, reason):
    with pytest.raises(rtfast.ProtocolError) as info:
        parse(frame)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_malformed_excerpt_is_bounded():
    frame = b'{"type":"response.output_text.delta","output_index":"x","delta":"' + b"A" * 100_000 + b'"}'
    with pytest.raises(rtfast.ProtocolError) as info:
        parse(frame)
    assert len(info.value.excerpt) <= 203 and len(str(info.value)) < 400
    with pytest.raises(rtfast.ProtocolError) as info:
        parse(b"{" * 5000)
    assert len(info.value.excerpt) <= 203


def test_non_bytes_input():
    assert parse('{"type":"input_audio_buffer.cleared","event_id":"e"}').event_id == "e"
    assert parse(bytearray(b'{"type":"input_audio_buffer.cleared"}')).type == "input_audio_buffer.cleared"
    assert parse(memoryview(b'{"type":"input_audio_buffer.cleared"}')).type == "input_audio_buffer.cleared"
    with pytest.raises(TypeError):
        parse(5)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_garbage_never_escapes(frame):
    try:
        ev = parse(frame)
    except rtfast.ProtocolError:
        return
    assert isinstance(ev, events.ServerEvent)


# -- construction, dumps and the builders ---------------------------------------------------------


def test_constructor_semantics():
    ev = events.InputAudioBufferAppendEvent(audio="AAAA")
    assert dumps(ev) == b'{"type":"input_audio_buffer.append","audio":"AAAA"}'
    assert ev.event_id is None
    with pytest.raises(TypeError):
        events.InputAudioBufferAppendEvent()  # audio is required, as in the official model
    ev = events.InputAudioBufferAppendEvent(audio="AAAA", event_id=None, future=1)
    assert orjson.loads(dumps(ev)) == {"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": None, "future": 1}
    assert dumps({"type": "response.cancel", "nested": events.InputAudioBufferClearEvent()}) == (
        b'{"type":"response.cancel","nested":{"type":"input_audio_buffer.clear"}}'
    )
    with pytest.raises(rtfast.ProtocolError, match="RealtimeResponseCreateParams.max_output_tokens"):
        events.ResponseCreateEvent(response={"max_output_tokens": [1]})
    assert events.ResponseCancelEvent() != events.ResponseCancelEvent(event_id="x")


def official_validate(generation: str, data: bytes):
    from openai.types.beta import realtime as beta_types
    from openai.types import realtime as ga_types

    ns = ga_types if generation == "ga" else beta_types
    event = orjson.loads(data)
    model = {
        "session.update": ns.SessionUpdateEvent,
        "input_audio_buffer.append": ns.InputAudioBufferAppendEvent,
        "response.create": ns.ResponseCreateEvent,
        "conversation.item.create": ns.ConversationItemCreateEvent,
        "conversation.item.truncate": ns.ConversationItemTruncateEvent,
    }[event["type"]]
    obj = model.model_validate_json(data)
    assert obj.model_dump(mode="json", exclude_unset=True) == event
    return obj


@pytest.mark.parametrize("codec", ["pcmu", "pcma"])
@pytest.mark.parametrize("vad", ["server_vad", "semantic_vad", None])
def test_session_update_g711_ga(codec, vad):
    ev = events.session_update_g711("ga", codec, vad, instructions="Be brief.", voice="marin", event_id="e1")
    assert type(ev) is events.SessionUpdateEvent
    obj = official_validate("ga", dumps(ev))
    assert obj.session.type == "realtime"
    assert obj.session.audio.input.format.type == f"audio/{codec}"
    assert obj.session.audio.output.format.type == f"audio/{codec}"
    assert obj.session.audio.output.voice == "marin" and obj.session.instructions == "Be brief."
    data = orjson.loads(dumps(ev))
    assert data["session"]["audio"]["input"]["turn_detection"] == ({"type": vad} if vad else None)
    assert ev.session.audio.input.format.type == f"audio/{codec}"


@pytest.mark.parametrize("codec, wire", [("pcmu", "g711_ulaw"), ("pcma", "g711_alaw")])
@pytest.mark.parametrize("vad", ["server_vad", "semantic_vad", None])
def test_session_update_g711_beta(codec, wire, vad):
    ev = events.session_update_g711("beta", codec, vad, voice="alloy", modalities=["audio", "text"])
    assert type(ev) is events.beta.SessionUpdateEvent
    obj = official_validate("beta", dumps(ev))
    assert obj.session.input_audio_format == wire and obj.session.output_audio_format == wire
    assert obj.session.modalities == ["audio", "text"] and obj.session.voice == "alloy"
    assert orjson.loads(dumps(ev))["session"]["turn_detection"] == ({"type": vad} if vad else None)


def test_session_update_pcm_output_and_errors():
    ev = events.session_update_g711(output_codec="pcm")
    obj = official_validate("ga", dumps(ev))
    assert obj.session.audio.output.format.type == "audio/pcm" and obj.session.audio.output.format.rate == 24000
    assert orjson.loads(dumps(events.session_update_g711("beta", output_codec="pcm")))["session"]["output_audio_format"] == "pcm16"
    for bad in ({"codec": "opus"}, {"vad": "always"}, {"generation": "translation"}):
        with pytest.raises(ValueError):
            events.session_update_g711(**bad)


@pytest.mark.parametrize("gen", ["ga", "beta"])
def test_builders(gen):
    cases = [
        events.input_audio_buffer_append("AAAA", "e1", generation=gen),
        events.response_create(gen),
        events.response_create(gen, instructions="Say hi.", metadata={"call": "1"}, event_id="e2"),
        events.conversation_item_create_text("hello", generation=gen),
        events.conversation_item_create_text("earlier answer", "assistant", generation=gen, previous_item_id="i0"),
        events.conversation_item_create_text("rules", "system", generation=gen),
        events.conversation_item_truncate("item_1", 0, 1500, generation=gen),
        events.function_call_output("call_1", '{"ok":true}', generation=gen, event_id="e3"),
    ]
    for ev in cases:
        assert isinstance(ev, events.ClientEvent)
        assert type(ev) is events.CLIENT_EVENTS[gen][ev.TYPE]
        official_validate(gen, dumps(ev))
        assert parse_client(dumps(ev), generation=gen) == ev
    assert dumps(cases[0]) == b'{"type":"input_audio_buffer.append","audio":"AAAA","event_id":"e1"}'
    assert dumps(cases[1]) == b'{"type":"response.create"}'
    assert cases[6].to_dict() == {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 1500}
    assert cases[7].item.call_id == "call_1"
    assert events.input_audio_buffer_append("AAAA", generation="translation").TYPE == "session.input_audio_buffer.append"
    with pytest.raises(ValueError):
        events.conversation_item_create_text("x", "tool")


def test_every_class_compiles():
    for key in events._CLASSES:
        cls = events._install(key)
        assert cls._parse({}).to_dict() == {}
