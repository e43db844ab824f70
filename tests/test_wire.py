import base64
import itertools
import random

import orjson
import pytest
from hypothesis import given, strategies as st

from reference import b64_ref
from rtfast import wire
from rtfast.errors import Base64Error, ProtocolError
from fuzz import mutations, rounds, seeded

TYPES = ["response.output_audio.delta", "response.audio.delta"]
RNG = random.Random(7)


def frame_dict(audio: bytes, type_=TYPES[0], **over):
    d = {"type": type_, "event_id": "event_" + "x" * 20, "response_id": "resp_123",
         "item_id": "item_abc", "output_index": 0, "content_index": 0,
         "delta": base64.b64encode(audio).decode()}
    d.update(over)
    return d


def reference(frame: bytes):
    """The orjson path: what a full parser makes of the frame."""
    d = orjson.loads(frame)
    return d, base64.b64decode(d["delta"], validate=True)


def check_same(frame: bytes, ev):
    d, audio = reference(frame)
    assert ev.to_dict() == d
    assert ev.audio() == audio
    assert ev.audio_length == len(audio)
    assert ev.delta == d["delta"]
    for key in ("type", "event_id", "response_id", "item_id", "output_index", "content_index"):
        assert getattr(ev, key) == d.get(key)


def test_every_audio_length_0_to_4096_takes_the_fast_path():
    audio = RNG.randbytes(4096)
    for n in range(4097):
        frame = orjson.dumps(frame_dict(audio[:n], TYPES[n & 1], content_index=n % 3))
        ev = wire.scan_audio_delta(frame)
        assert ev is not None
        check_same(frame, ev)


@pytest.mark.parametrize("stop", [b'"', b"\\", b"\x1f", b"\xc3\xa9", b"\x80"])
def test_a_byte_the_scanner_stops_at_is_found_at_every_offset(stop):
    # The delta is skimmed in blocks (16 bytes, then 8, then one by one): whatever block a quote,
    # backslash, control or non-ASCII byte falls in, the scanner declines the frame.
    for n in range(40):
        text = base64.b64encode(bytes(range(n)))
        for k in range(len(text)):
            frame = b'{"type":"response.output_audio.delta","item_id":"i","delta":"' \
                + text[:k] + stop + text[k + 1:] + b'"}'
            assert wire.scan_audio_delta(frame) is None, (n, k)


def test_del_is_a_plain_string_byte_at_every_offset():
    for n in range(40):
        text = base64.b64encode(bytes(range(n)))
        for k in range(len(text)):
            frame = b'{"type":"response.output_audio.delta","delta":"' + text[:k] + b"\x7f" + text[k + 1:] + b'"}'
            ev = wire.scan_audio_delta(frame)
            assert ev is not None and ev.delta == orjson.loads(frame)["delta"] and ev.delta.isascii()


def test_keys_in_any_order_and_json_whitespace():
    d = frame_dict(b"\x01\x02\x03\x04", output_index=12, content_index=3)
    for keys in itertools.permutations(d):
        frame = orjson.dumps({k: d[k] for k in keys})
        check_same(frame, wire.scan_audio_delta(frame))
    spaced = b' {\n "type" :\t"response.audio.delta" ,\r\n"delta": "AQID" } \n'
    check_same(spaced, wire.scan_audio_delta(spaced))


@pytest.mark.parametrize("frame", [
    # escapes are legal JSON: the scanner declines, the full path gets them right
    b'{"type":"response.output_audio.delta","item_id":"it\\u00e9m","delta":"AQ\\/D"}',
    b'{"type":"response.output_audio.delta","item_id":"\xc3\xa9","delta":"AQ=="}',
    b'{"type":"response.output_audio.delta","delta":"AQ==","extra":{"a":[1,2]}}',
    b'{"type":"response.output_audio.delta","delta":"AQ==","delta":"AgM="}',
    b'{"type":"response.output_audio.delta","delta":"AQ==","output_index":-1}',
])
def test_frames_the_scanner_declines_parse_correctly(frame):
    assert wire.scan_audio_delta(frame) is None
    ev = wire.parse_audio_delta(frame)
    d, audio = reference(frame)
    assert ev.to_dict() == d and ev.audio() == audio


def test_unknown_fields_are_kept_on_round_trip():
    frame = b'{"type":"response.audio.delta","delta":"AQ==","new_field":{"x":1}}'
    ev = wire.parse_audio_delta(frame)
    assert ev.to_dict() == orjson.loads(frame)


@pytest.mark.parametrize("frame", [
    b'{"type":"response.created","response":{}}',
    b'{"type":"session.updated"}',
    b'[1,2]', b'', b'{', b'nul',
])
def test_other_frames_are_not_audio_deltas(frame):
    assert wire.scan_audio_delta(frame) is None


@pytest.mark.parametrize("frame,reason", [
    (b'{"type":"response.audio.delta","delta":"AQ=="', "not valid JSON"),
    (b'not json at all', "not valid JSON"),
    (b'[1]', "not a JSON object"),
    (b'{"type":"response.done"}', "not an audio delta"),
    (b'{"type":"response.audio.delta"}', "'delta' is missing"),
    (b'{"type":"response.audio.delta","delta":5}', "'delta' must be a string"),
    (b'{"type":"response.audio.delta","delta":"AQ==","output_index":"0"}', "'output_index' must be an integer"),
    (b'{"type":"response.audio.delta","delta":"AQ==","item_id":7}', "'item_id' must be a string"),
    (b'{"type":"response.audio.delta","delta":"AQ==","output_index":1e0}', "'output_index' must be an integer"),
    (b'{"type":"response.audio.delta","delta":"AQ==","content_index":true}', "'content_index' must be an integer"),
])
def test_malformed_frames_raise_protocol_error(frame, reason):
    with pytest.raises(ProtocolError, match=reason):
        wire.parse_audio_delta(frame)


def test_bad_base64_in_delta_raises_with_offset_when_decoded():
    frame = orjson.dumps(frame_dict(b"", delta="AAAA!AAA"))
    ev = wire.scan_audio_delta(frame)
    with pytest.raises(Base64Error) as info:
        ev.audio()
    assert info.value.offset == 4
    with pytest.raises(Base64Error):
        ev.audio_into(bytearray(6))


def test_audio_into():
    audio = RNG.randbytes(960)
    ev = wire.scan_audio_delta(orjson.dumps(frame_dict(audio)))
    out = bytearray(1000)
    assert ev.audio_into(memoryview(out)[10:]) == 960
    assert bytes(out[10:970]) == audio
    small = bytearray(959)
    with pytest.raises(ValueError, match="room for 959 bytes, 960 needed"):
        ev.audio_into(small)
    assert small == bytearray(959)


def test_slow_path_event_decodes_into_too():
    ev = wire.AudioDelta(type=TYPES[1], delta="AQID")
    assert ev.audio() == b"\x01\x02\x03" and ev.audio_length == 3
    out = bytearray(3)
    assert ev.audio_into(out) == 3 and out == b"\x01\x02\x03"
    assert ev.generation == "beta"


# -- fuzz: the scanner never accepts what the full parser would not, never crashes ---------

@given(audio=st.binary(max_size=300), seed=st.integers(0, 2**32 - 1),
       type_=st.sampled_from(TYPES))
def test_scanner_agrees_with_orjson_on_mutated_frames(audio, seed, type_):
    check_mutated_frames(audio, seed, type_)


def test_scanner_fuzz_rounds():
    """The same check on random rounds; time-boxed with RTFAST_FUZZ_SECONDS."""
    rng = seeded()
    for _ in rounds(20):
        check_mutated_frames(rng.randbytes(rng.randrange(301)), rng.getrandbits(32), rng.choice(TYPES))


def check_mutated_frames(audio, seed, type_):
    rng = random.Random(seed)
    base = orjson.dumps(frame_dict(audio, type_))
    for frame in mutations(base, rng):
        ev = wire.scan_audio_delta(frame)
        try:
            d = orjson.loads(frame)
        except orjson.JSONDecodeError:
            assert ev is None, frame
            with pytest.raises(ProtocolError):
                wire.parse_audio_delta(frame)
            continue
        if ev is not None:
            assert ev.to_dict() == d
            if b64_ref.check(d["delta"].encode()) is not None:
                with pytest.raises(Base64Error):
                    ev.audio()
            else:
                assert ev.audio() == b64_ref.decode(d["delta"].encode())


@given(frame=st.binary(max_size=200))
def test_garbage_never_crashes(frame):
    ev = wire.scan_audio_delta(frame)
    if ev is not None:
        assert ev.to_dict() == orjson.loads(frame)
    try:
        wire.parse_audio_delta(frame)
    except (ProtocolError, Base64Error):
        pass


# -- builder -----------------------------------------------------------------------------------

def test_append_is_byte_identical_to_orjson_for_every_length():
    audio = RNG.randbytes(4096)
    for n in range(0, 4097):
        expected = orjson.dumps({"type": "input_audio_buffer.append",
                                 "audio": base64.b64encode(audio[:n]).decode()})
        assert wire.build_append(audio[:n]) == expected


def test_append_with_event_id_and_into():
    frame = wire.build_append(b"\x00\x01" * 80, event_id='evt "1"\n')
    assert orjson.loads(frame) == {"type": "input_audio_buffer.append", "event_id": 'evt "1"\n',
                                   "audio": base64.b64encode(b"\x00\x01" * 80).decode()}
    out = bytearray(wire.append_frame_length(160, event_id="e1"))
    assert wire.build_append_into(b"\x00\x01" * 80, out, event_id="e1") == len(out)
    assert bytes(out) == wire.build_append(b"\x00\x01" * 80, event_id="e1")
    with pytest.raises(ValueError, match="room for"):
        wire.build_append_into(b"\x00" * 160, bytearray(10))
    with pytest.raises(TypeError):
        wire.build_append(b"", event_id=5)


def test_append_b64_splices_the_payload():
    payload = base64.b64encode(RNG.randbytes(160))
    assert len(payload) == 216
    frame = wire.build_append_b64(payload)
    assert frame == orjson.dumps({"type": "input_audio_buffer.append", "audio": payload.decode()})
    assert wire.build_append_b64(payload.decode()) == frame
    assert wire.build_append_b64(b"") == b'{"type":"input_audio_buffer.append","audio":""}'


@pytest.mark.parametrize("payload,offset", [(b'AAA"', 3), (b"AA\\A", 2), (b"AAA", 3), (b"A" * 4094 + b"==AAAA", 4094)])
def test_append_b64_refuses_payloads_that_would_break_the_frame(payload, offset):
    with pytest.raises(Base64Error) as info:
        wire.build_append_b64(payload)
    assert info.value.offset == offset
    # the unchecked form trusts the caller
    assert wire.build_append_b64(b"AAAA", validate=False).endswith(b'"AAAA"}')


def test_frames_validate_against_the_official_models():
    openai_types = pytest.importorskip("openai.types.realtime")
    beta = pytest.importorskip("openai.types.beta.realtime")
    frame = wire.build_append(b"\x10" * 320, event_id="evt_1")
    ev = openai_types.InputAudioBufferAppendEvent.model_validate_json(frame)
    assert base64.b64decode(ev.audio) == b"\x10" * 320 and ev.event_id == "evt_1"
    beta.InputAudioBufferAppendEvent.model_validate_json(wire.build_append_b64(b"AAAA"))
    delta = openai_types.ResponseAudioDeltaEvent(
        type="response.output_audio.delta", event_id="e", response_id="r", item_id="i",
        output_index=0, content_index=0, delta=base64.b64encode(b"\x01" * 64).decode())
    frame = delta.model_dump_json().encode()
    ev = wire.parse_audio_delta(frame)
    assert ev.to_dict() == delta.model_dump() and ev.audio() == b"\x01" * 64


@pytest.mark.parametrize("pos", range(0, 24))
@pytest.mark.parametrize("bad", [b"\\/", b"\x01", b"\xc3\xa9"])
def test_escapes_and_odd_bytes_anywhere_in_a_long_delta(pos, bad):
    text = base64.b64encode(RNG.randbytes(300))
    frame = (b'{"type":"response.output_audio.delta","delta":"' + text[:100 + pos] + bad
             + text[100 + pos:] + b'"}')
    assert wire.scan_audio_delta(frame) is None
    if bad == b"\\/":
        ev = wire.parse_audio_delta(frame)
        assert ev.delta == orjson.loads(frame)["delta"]
    elif bad == b"\x01":
        with pytest.raises(ProtocolError):     # raw control characters are not JSON
            wire.parse_audio_delta(frame)
    else:
        with pytest.raises(Base64Error) as info:   # legal JSON, not base64
            wire.parse_audio_delta(frame).audio()
        assert info.value.offset == 100 + pos


@pytest.mark.parametrize("generation,event", [
    ("ga", {"type": "response.output_audio.delta", "event_id": "ev_1", "response_id": "resp_1", "item_id": "item_1",
            "output_index": 0, "content_index": 0, "delta": "AAEC"}),
    ("beta", {"type": "response.audio.delta", "event_id": "ev_2", "response_id": "resp_2", "item_id": "item_2",
              "output_index": 1, "content_index": 0, "delta": "AAECAw=="}),
    ("live", {"type": "session.output_audio.delta", "event_id": "ev_3", "delta": "AAEC"}),
])
def test_audio_delta_dumps_as_the_official_model(generation, event):
    """Code that logs ``event.model_dump_json()`` for every event: the compiled delta answers as
    the official pydantic model does (through its typed rtfast.events class)."""
    from rtfast import events

    delta = wire.parse_audio_delta(orjson.dumps(event))
    assert type(delta) is wire.AudioDelta
    typed = delta.to_event()
    assert type(typed) is events.SERVER_EVENTS[generation][event["type"]] and typed.to_dict() == event
    official = pytest.importorskip("openai")
    model = {"ga": "openai.types.realtime.response_audio_delta_event.ResponseAudioDeltaEvent",
             "beta": "openai.types.beta.realtime.response_audio_delta_event.ResponseAudioDeltaEvent",
             "live": "openai.types.live.session_output_audio_delta_event.SessionOutputAudioDeltaEvent"}[generation]
    module, _, name = model.rpartition(".")
    try:
        theirs = getattr(__import__(module, fromlist=[name]), name).model_validate(event)
    except (ImportError, AttributeError):
        pytest.skip(f"{model} is not in openai {official.__version__}")
    for options in ({}, {"exclude_none": True}, {"exclude_unset": True}, {"exclude": {"delta"}}):
        assert delta.model_dump(**options) == theirs.model_dump(**options), options
        assert orjson.loads(delta.model_dump_json(**options)) == orjson.loads(theirs.model_dump_json(**options))
    assert orjson.loads(delta.to_json()) == orjson.loads(theirs.to_json())
