"""Carrier codecs, driven by literal frames: no sockets."""

import base64
import random

import orjson
import pytest
from hypothesis import given, strategies as st

from reference import b64_ref
from rtfast import wire
from rtfast.bridge.carriers import (Cleared, CarrierAlert, Connected, Dtmf, ExotelCodec, Mark, Media, PlivoCodec, Start,
                             Stop, TelnyxCodec, TwilioCodec, Unknown, VonageCodec, codec, media_from_dict, scan_media)
from rtfast.errors import ProtocolError
from fuzz import mutations, rounds, seeded

RNG = random.Random(11)
ULAW = bytes(RNG.randrange(256) for _ in range(160))
B64 = base64.b64encode(ULAW).decode()
assert len(B64) == 216

# -- literal frames, as the carriers document them ---------------------------------------------

TWILIO_CONNECTED = b'{"event": "connected", "protocol": "Call", "version": "1.0.0"}'
TWILIO_START = (b'{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC0123","streamSid":"MZ18ad3ab5a668",'
                b'"callSid":"CA0123","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw",'
                b'"sampleRate":8000,"channels":1},"customParameters":{"FirstName":"Jane"}},'
                b'"streamSid":"MZ18ad3ab5a668"}')
TWILIO_MEDIA = (b'{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1",'
                b'"timestamp":"5","payload":"' + B64.encode() + b'"},"streamSid":"MZ18ad3ab5a668"}')
TWILIO_DTMF = (b'{"event":"dtmf","streamSid":"MZ18ad3ab5a668","sequenceNumber":"5",'
               b'"dtmf":{"track":"inbound_track","digit":"1"}}')
TWILIO_MARK = (b'{"event":"mark","sequenceNumber":"4","streamSid":"MZ18ad3ab5a668",'
               b'"mark":{"name":"my label"}}')
TWILIO_STOP = (b'{"event":"stop","sequenceNumber":"5","streamSid":"MZ18ad3ab5a668",'
               b'"stop":{"accountSid":"AC0123","callSid":"CA0123"}}')

TELNYX_START = (b'{"event":"start","sequence_number":"1","stream_id":"32DE0DEA-53CB",'
                b'"start":{"user_id":"3E6F995F","call_control_id":"v2:T02llQxIyaRkhfRKxgAP8nY5",'
                b'"call_session_id":"ff55a038","from":"+13122010094","to":"+13122123456",'
                b'"custom_parameters":{"customer_id":"c_123"},'
                b'"media_format":{"encoding":"PCMA","sample_rate":8000,"channels":1}}}')


def telnyx_media(chunk, payload=B64):
    return orjson.dumps({"event": "media", "sequence_number": str(chunk + 2),
                         "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20),
                                   "payload": payload}, "stream_id": "32DE0DEA-53CB"})


PLIVO_START = (b'{"event":"start","sequenceNumber":0,"start":{"callId":"a8c3ff2e","streamId":"20170ada-f610",'
               b'"accountId":"MA123","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw",'
               b'"sampleRate":8000}},"extra_headers":"{}"}')
PLIVO_MEDIA = (b'{"sequenceNumber":2,"event":"media","streamId":"20170ada-f610","media":{"track":"inbound",'
               b'"timestamp":"1710000000000","chunk":2,"payload":"' + B64.encode() + b'"},"extra_headers":"{}"}')
PLIVO_PLAYED = b'{"event":"playedStream","streamId":"20170ada-f610","name":"0.1"}'
PLIVO_CLEARED = b'{"event":"clearedAudio","sequenceNumber":9,"streamId":"20170ada-f610"}'
PLIVO_STOP = b'{"event":"stop","sequenceNumber":10,"streamId":"20170ada-f610"}'

PCM8 = bytes(RNG.randrange(256) for _ in range(3200))
EXOTEL_START = (b'{"event":"start","sequence_number":"1","stream_sid":"MZexo","start":{"stream_sid":"MZexo",'
                b'"call_sid":"CAexo","account_sid":"ACexo","from":"+919876543210","to":"+918047491899",'
                b'"custom_parameters":{"key1":"value1"},"media_format":{"encoding":"audio/x-raw",'
                b'"sample_rate":"8000","bit_rate":"16"}}}')
EXOTEL_MEDIA = orjson.dumps({"event": "media", "sequence_number": "3", "stream_sid": "MZexo",
                             "media": {"chunk": "2", "timestamp": "200", "payload": base64.b64encode(PCM8).decode()}})
EXOTEL_DTMF = b'{"event":"dtmf","sequence_number":"7","stream_sid":"MZexo","dtmf":{"digit":"5","duration":"100"}}'
EXOTEL_MARK = b'{"event":"mark","sequence_number":"15","stream_sid":"MZexo","mark":{"name":"0.3"}}'
EXOTEL_STOP = b'{"event":"stop","sequence_number":"20","stream_sid":"MZexo","stop":{"call_sid":"CAexo","reason":"callended"}}'

VONAGE_CONNECTED = b'{"event":"websocket:connected","content-type":"audio/l16;rate=16000","caller":"447700900000"}'


# -- Twilio ------------------------------------------------------------------------------------

def started(c, start):
    assert isinstance(c.parse(start), Start)
    return c


def test_twilio_inbound_messages():
    c = TwilioCodec()
    ev = c.parse(TWILIO_CONNECTED)
    assert ev == Connected("Call", "1.0.0", orjson.loads(TWILIO_CONNECTED))
    ev = c.parse(TWILIO_START)
    assert isinstance(ev, Start)
    assert (ev.stream_id, ev.call_id, ev.account_id, ev.tracks) == ("MZ18ad3ab5a668", "CA0123", "AC0123", ["inbound"])
    assert ev.custom_parameters == {"FirstName": "Jane"} and ev.audio_format == "pcmu/8000"
    assert c.started and c.stream_id == "MZ18ad3ab5a668" and c.frame_bytes == 160
    m = c.parse(TWILIO_MEDIA)
    assert type(m) is Media
    assert (m.stream_id, m.sequence_number, m.track, m.chunk, m.timestamp) == ("MZ18ad3ab5a668", 3, "inbound", 1, 5)
    assert m.payload == B64.encode() and m.audio() == ULAW and m.audio_length == 160 and m.inbound
    assert m.extra is None and not m.binary
    assert c.parse(TWILIO_DTMF) == Dtmf("1", None, orjson.loads(TWILIO_DTMF))
    assert c.parse(TWILIO_MARK).name == "my label"
    stop = c.parse(TWILIO_STOP)
    assert isinstance(stop, Stop) and stop.call_id == "CA0123"
    assert isinstance(c.parse(b'{"event":"future","x":1}'), Unknown)


def test_twilio_outbound_messages():
    c = started(TwilioCodec(), TWILIO_START)
    frame = c.media(ULAW)
    assert orjson.loads(frame) == {"event": "media", "streamSid": "MZ18ad3ab5a668", "media": {"payload": B64}}
    assert frame == orjson.dumps({"event": "media", "streamSid": "MZ18ad3ab5a668", "media": {"payload": B64}})
    assert c.media_b64(B64) == frame == c.media_b64(B64.encode()) == c.media(memoryview(ULAW))
    assert orjson.loads(c.mark("1.2")) == {"event": "mark", "streamSid": "MZ18ad3ab5a668", "mark": {"name": "1.2"}}
    assert orjson.loads(c.clear()) == {"event": "clear", "streamSid": "MZ18ad3ab5a668"}


def test_append_is_a_splice_identical_to_wire():
    m = started(TwilioCodec(), TWILIO_START).parse(TWILIO_MEDIA)
    assert m.append() == wire.build_append_b64(B64)
    assert m.append() == orjson.dumps({"type": "input_audio_buffer.append", "audio": B64})
    # GPT-Live's append: the same splice under its own type
    assert m.append_live() == wire.build_append_b64(B64, generation="live")
    assert m.append_live() == orjson.dumps({"type": "session.input_audio.append", "audio": B64})


def test_media_before_start_is_an_error_and_the_codec_stays_usable():
    c = TwilioCodec()
    with pytest.raises(ProtocolError, match="twilio: media before start"):
        c.parse(TWILIO_MEDIA)
    with pytest.raises(ProtocolError, match="before start"):
        c.media(ULAW)
    c.parse(TWILIO_START)
    assert c.parse(TWILIO_MEDIA).audio() == ULAW


@pytest.mark.parametrize("frame,reason", [
    (b'{"event":"media",', "not JSON"),
    (b'[1,2]', "not a JSON object"),
    (b'{"sequenceNumber":"1"}', "no string 'event'"),
    (b'{"event":"media","media":{"payload":"AAA!"}}', "not base64: bad character b'!' at offset 3"),
    (b'{"event":"media","media":{"payload":"AAA"}}', "not base64: its length 3"),
    (b'{"event":"media","media":{"payload":"AA==AAAA"}}', "not base64: misplaced padding"),
    (b'{"event":"media","media":{"payload":"A\\u00e9AA"}}', "not base64"),
    (b'{"event":"media","media":{"payload":5}}', "^media: field 'media.payload' must be a string"),
    (b'{"event":"media","media":[]}', "^media: field 'media' must be an object"),
    (b'{"event":"media","media":{"payload":"","chunk":"x1"}}', "'media.chunk' must be an integer"),
    (b'{"event":"media","media":{"payload":"","chunk":true}}', "'media.chunk' must be an integer"),
    (b'{"event":"media","streamSid":7,"media":{"payload":""}}', "'stream id' must be a string"),
    (b'{"event":"dtmf","dtmf":{}}', "twilio: dtmf: field 'dtmf.digit' must be a string"),
    (b'{"event":"mark","mark":{"name":null}}', "twilio: mark: field 'mark.name' must be a string"),
    (b'{"event":"start","start":{}}', "twilio: start: no string 'streamSid'"),
])
def test_bad_frames_raise_protocol_error(frame, reason):
    c = started(TwilioCodec(), TWILIO_START)
    with pytest.raises(ProtocolError, match=reason.replace("(", r"\(").replace("[", r"\[")):
        c.parse(frame)
    assert c.parse(TWILIO_MEDIA).audio() == ULAW      # still usable


def test_twilio_start_with_an_unsupported_format():
    frame = TWILIO_START.replace(b"8000", b"16000")
    with pytest.raises(ProtocolError, match="unsupported mediaFormat"):
        TwilioCodec().parse(frame)


# -- Telnyx ------------------------------------------------------------------------------------

def test_telnyx_messages():
    c = TelnyxCodec()
    assert isinstance(c.parse(b'{"event":"connected","version":"1.0.0"}'), Connected)
    ev = c.parse(TELNYX_START)
    assert ev.stream_id == "32DE0DEA-53CB" and ev.call_id.startswith("v2:") and ev.audio_format == "pcma/8000"
    assert ev.custom_parameters == {"customer_id": "c_123"}
    m = c.parse(telnyx_media(4))
    assert (m.stream_id, m.sequence_number, m.chunk, m.timestamp) == ("32DE0DEA-53CB", 6, 4, 80)
    assert c.parse(b'{"event":"dtmf","stream_id":"x","dtmf":{"digit":"#"}}').digit == "#"
    assert c.parse(b'{"event":"mark","stream_id":"x","mark":{"name":"0.1"}}') == Mark("0.1", {
        "event": "mark", "stream_id": "x", "mark": {"name": "0.1"}})
    err = c.parse(b'{"event":"error","payload":{"code":100002,"title":"Unknown error","detail":"boom"}}')
    assert isinstance(err, CarrierAlert) and err.code == 100002 and err.message == "boom"
    assert isinstance(c.parse(b'{"event":"stop","stop":{"call_control_id":"v2:T0"}}'), Stop)
    assert orjson.loads(c.media(ULAW)) == {"event": "media", "media": {"payload": B64}}
    assert orjson.loads(c.mark("n")) == {"event": "mark", "mark": {"name": "n"}}
    assert orjson.loads(c.clear()) == {"event": "clear"}


def test_telnyx_reorders_out_of_order_chunks():
    c = started(TelnyxCodec(reorder_window=3), TELNYX_START)
    out = []
    for chunk in [1, 2, 4, 3, 5, 7, 6, 8, 2]:
        out += [m.chunk for m in c.order(c.parse(telnyx_media(chunk)))]
    assert out == [1, 2, 3, 4, 5, 6, 7, 8]
    assert c.reordered == 2 and c.dropped == 1


def test_telnyx_gives_up_on_a_lost_chunk_after_the_window():
    c = started(TelnyxCodec(reorder_window=2), TELNYX_START)
    got = [m.chunk for ch in [1, 3, 4] for m in c.order(c.parse(telnyx_media(ch)))]
    assert got == [1]
    got = [m.chunk for m in c.order(c.parse(telnyx_media(5)))]
    assert got == [3, 4, 5]                       # chunk 2 is given up
    assert [m.chunk for m in c.order(c.parse(telnyx_media(2)))] == []
    c.order(c.parse(telnyx_media(7)))
    assert [m.chunk for m in c.flush_order()] == [7]


# -- Plivo -------------------------------------------------------------------------------------

def test_plivo_messages():
    c = PlivoCodec()
    ev = c.parse(PLIVO_START)
    assert ev.stream_id == "20170ada-f610" and ev.call_id == "a8c3ff2e" and ev.audio_format == "pcmu/8000"
    m = c.parse(PLIVO_MEDIA)
    assert scan_media(PLIVO_MEDIA) is not None            # extra_headers does not force the slow path
    assert (m.stream_id, m.sequence_number, m.chunk, m.timestamp) == ("20170ada-f610", 2, 2, 1710000000000)
    assert m.extra == {"extra_headers": "{}"} and m.audio() == ULAW
    assert c.parse(PLIVO_PLAYED) == Mark("0.1", orjson.loads(PLIVO_PLAYED))
    assert isinstance(c.parse(PLIVO_CLEARED), Cleared)
    assert isinstance(c.parse(PLIVO_STOP), Stop)
    assert isinstance(c.parse(b'{"event":"dtmf","streamId":"s","dtmf":{"digit":"9"}}'), Dtmf)
    assert orjson.loads(c.media(ULAW)) == {"event": "playAudio", "media": {
        "contentType": "audio/x-mulaw", "sampleRate": 8000, "payload": B64}}
    assert orjson.loads(c.mark("0.1")) == {"event": "checkpoint", "streamId": "20170ada-f610", "name": "0.1"}
    assert orjson.loads(c.clear()) == {"event": "clearAudio", "streamId": "20170ada-f610"}


def test_plivo_l16():
    c = PlivoCodec()
    c.parse(PLIVO_START.replace(b"audio/x-mulaw", b"audio/x-l16").replace(b"8000", b"16000"))
    assert c.audio_format == "pcm16/16000" and c.frame_bytes == 640
    assert orjson.loads(c.media(b"\0\0"))["media"] == {"contentType": "audio/x-l16", "sampleRate": 16000,
                                                       "payload": "AAA="}


# -- Exotel ------------------------------------------------------------------------------------

def test_exotel_messages_and_chunk_rule():
    c = ExotelCodec()
    assert isinstance(c.parse(b'{"event":"connected"}'), Connected)
    ev = c.parse(EXOTEL_START)
    assert ev.stream_id == "MZexo" and ev.call_id == "CAexo" and ev.audio_format == "pcm16/8000"
    m = c.parse(EXOTEL_MEDIA)
    assert (m.stream_id, m.sequence_number, m.chunk, m.timestamp) == ("MZexo", 3, 2, 200) and m.audio() == PCM8
    assert c.parse(EXOTEL_DTMF).digit == "5" and c.parse(EXOTEL_MARK).name == "0.3"
    stop = c.parse(EXOTEL_STOP)
    assert stop.call_id == "CAexo" and stop.reason == "callended"
    assert orjson.loads(c.media(PCM8)) == {"event": "media", "stream_sid": "MZexo",
                                           "media": {"payload": base64.b64encode(PCM8).decode()}}
    assert orjson.loads(c.mark("a")) == {"event": "mark", "stream_sid": "MZexo", "mark": {"name": "a"}}
    assert orjson.loads(c.clear()) == {"event": "clear", "stream_sid": "MZexo"}
    assert c.chunk_bytes(20) == 3200 and c.chunk_bytes(260) == 4160
    for rate, want in (("16000", 3200), ("24000", 3840)):
        c2 = ExotelCodec()
        c2.parse(EXOTEL_START.replace(b'"8000"', b'"' + rate.encode() + b'"'))
        got = c2.chunk_bytes(20)
        assert got == want and got % 320 == 0 and got % c2.frame_bytes == 0


# -- Vonage ------------------------------------------------------------------------------------

def test_vonage_messages():
    c = VonageCodec()
    assert c.binary_media
    with pytest.raises(ProtocolError, match="audio before start"):
        c.parse(bytes(640), binary=True)
    ev = c.parse(VONAGE_CONNECTED)
    assert isinstance(ev, Start) and ev.audio_format == "pcm16/16000" and ev.custom_parameters == {
        "caller": "447700900000"}
    pcm = bytes(range(256)) * 2 + bytes(128)
    m = c.parse(pcm, binary=True)
    assert m.binary and m.audio() == pcm and m.audio_length == 640 and m.inbound
    assert m.append() == wire.build_append(pcm)
    assert m.append_live() == wire.build_append(pcm, generation="live")
    assert m.payload == base64.b64encode(pcm)
    assert c.parse(b'{"event":"websocket:notify","payload":{"name":"0.4"}}').name == "0.4"
    assert isinstance(c.parse(b'{"event":"websocket:cleared"}'), Cleared)
    assert c.parse(b'{"event":"websocket:dtmf","digit":"7","duration":260}').digit == "7"
    assert isinstance(c.parse(b'{"event":"websocket:error","reason":"x"}'), CarrierAlert)
    assert c.media(pcm) == pcm and c.media_b64(base64.b64encode(pcm)) == pcm
    assert orjson.loads(c.mark("0.4")) == {"action": "notify", "payload": {"name": "0.4"}}
    assert c.clear() == b'{"action":"clear"}'
    assert c.chunk_bytes(100) == 640
    with pytest.raises(ProtocolError, match="unsupported content-type"):
        VonageCodec().parse(b'{"event":"websocket:connected","content-type":"audio/l16;rate=44100"}')


def test_codec_factory():
    assert isinstance(codec("Twilio"), TwilioCodec)
    with pytest.raises(ValueError, match="unknown carrier"):
        codec("nope")


# -- the scanner agrees with orjson ------------------------------------------------------------

def test_scanner_takes_every_carrier_shape_and_any_key_order():
    for frame in (TWILIO_MEDIA, PLIVO_MEDIA, EXOTEL_MEDIA, telnyx_media(3)):
        d = orjson.loads(frame)
        m = scan_media(frame)
        assert m is not None and m == media_from_dict(d)
        shuffled = dict(reversed(list(d.items())))
        shuffled["media"] = dict(reversed(list(d["media"].items())))
        assert scan_media(orjson.dumps(shuffled)) == m
    spaced = b' {\n "event" : "media" ,\t"media": { "payload" : "AAAA" , "chunk" : 7 } } \r\n'
    assert scan_media(spaced) == Media("AAAA", chunk=7)


@pytest.mark.parametrize("frame", [
    b'{"event":"media","media":{"payload":"AA\\u003d="}}',           # escape
    b'{"event":"media","media":{"payload":"AAAA","extra":1}}',       # unknown nested key
    b'{"event":"media","media":{"payload":"AAAA"},"n":1}',            # non-string extra
    b'{"event":"media","media":{"payload":"AAAA"},"streamSid":"a","stream_id":"b"}',
    b'{"event":"media","media":{"payload":"AAAA","chunk":"0123456789012345"}}',   # > 15 digits
    b'{"event":"media","media":{"payload":"AAAA","chunk":-1}}',
    b'{"event":"media","media":{"payload":"AAAA"},"a":"1","b":"2","c":"3","d":"4","e":"5"}',
])
def test_frames_the_scanner_declines_still_parse(frame):
    assert scan_media(frame) is None
    c = started(TwilioCodec(), TWILIO_START)
    assert c.parse(frame) == media_from_dict(orjson.loads(frame))


def test_other_events_are_not_scanned():
    assert scan_media(TWILIO_MARK) is None and scan_media(TWILIO_START) is None


def reference(frame: bytes):
    """What the orjson path makes of a frame: a Media, a ProtocolError, or None (not media)."""
    try:
        d = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return ProtocolError
    if type(d) is not dict or d.get("event") != "media":
        return None
    try:
        return media_from_dict(d)
    except ProtocolError:
        return ProtocolError


@given(audio=st.binary(max_size=200), seed=st.integers(0, 2**32 - 1),
       shape=st.sampled_from([TWILIO_MEDIA, PLIVO_MEDIA, EXOTEL_MEDIA, telnyx_media(9)]))
def test_scanner_agrees_with_orjson_on_mutated_frames(audio, seed, shape):
    check_mutated_frames(audio, seed, shape)


def test_scanner_fuzz_rounds():
    """The same check on random rounds; time-boxed with RTFAST_FUZZ_SECONDS."""
    rng = seeded()
    shapes = [TWILIO_MEDIA, PLIVO_MEDIA, EXOTEL_MEDIA, telnyx_media(9)]
    for _ in rounds(20):
        check_mutated_frames(rng.randbytes(rng.randrange(201)), rng.getrandbits(32), rng.choice(shapes))


def check_mutated_frames(audio, seed, shape):
    d = orjson.loads(shape)
    d["media"]["payload"] = base64.b64encode(audio).decode()
    rng = random.Random(seed)
    for frame in mutations(orjson.dumps(d), rng):
        want = reference(frame)
        try:
            got = scan_media(frame)
        except ProtocolError:
            assert want is ProtocolError, frame        # scanned, payload rejected: orjson path agrees
            continue
        if got is None:
            continue                                   # declined: the orjson path decides
        assert isinstance(want, Media), frame          # never accepts what orjson rejects
        assert got == want
        assert got.audio() == b64_ref.decode(got.payload)
        assert got.append() == wire.build_append_b64(got.payload)


@given(frame=st.binary(max_size=200))
def test_garbage_never_crashes(frame):
    c = started(TwilioCodec(), TWILIO_START)
    try:
        ev = c.parse(frame)
    except ProtocolError:
        return
    if isinstance(ev, Media):
        assert ev == media_from_dict(orjson.loads(frame))


# -- defects and untested paths found by mutation testing ------------------------------------------

def telnyx_start(media_format):
    return orjson.dumps({"event": "start", "stream_id": "s1", "start": {"call_control_id": "v2:x",
                                                                        "media_format": media_format}})


@pytest.mark.parametrize("media_format", [
    {"encoding": "PCMU", "sample_rate": 16000}, {"encoding": "PCMA", "sample_rate": 16000},
    {"encoding": "PCMU", "sample_rate": 7999}, {"encoding": "PCMA", "sample_rate": 8001},
    {"encoding": "PCMU", "sample_rate": None}, {"encoding": "L16", "sample_rate": 8000},
    {"encoding": "pcmu", "sample_rate": 8000},
])
def test_telnyx_refuses_g711_at_any_rate_but_8000(media_format):
    c = TelnyxCodec()
    with pytest.raises(ProtocolError, match=r"telnyx: start: unsupported media_format .*\(PCMU or PCMA at 8000 Hz\)"):
        c.parse(telnyx_start(media_format))
    assert not c.started and c.audio_format == "pcmu/8000"        # nothing taken from the refused start


@pytest.mark.parametrize("media_format,fmt", [
    ({"encoding": "PCMU", "sample_rate": 8000, "channels": 1}, "pcmu/8000"),
    ({"encoding": "PCMA", "sample_rate": 8000}, "pcma/8000"),
    ({"encoding": "PCMA"}, "pcma/8000"),                          # no rate: Telnyx's G.711 is 8 kHz
    ({}, "pcmu/8000"),                                              # no format: what the codec expects
])
def test_telnyx_takes_g711_at_8000(media_format, fmt):
    c = TelnyxCodec()
    ev = c.parse(telnyx_start(media_format))
    assert ev.audio_format == c.audio_format == fmt and c.started and c.start_event is ev
    assert c.bytes_per_ms == 8 and c.frame_bytes == 160


def test_telnyx_stream_id_and_errors():
    c = TelnyxCodec()
    with pytest.raises(ProtocolError, match="telnyx: start: no string 'stream_id'"):
        c.parse(b'{"event":"start","start":{"stream_id":7}}')
    ev = c.parse(b'{"event":"start","start":{"stream_id":"inner"}}')     # under start is fine too
    assert ev.stream_id == c.stream_id == "inner"
    err = c.parse(b'{"event":"error","payload":{"code":9,"title":"Bad"}}')
    assert (err.code, err.message) == (9, "Bad")                 # the title when there is no detail
    with pytest.raises(ValueError, match=r"^reorder_window must be >= 0$"):
        TelnyxCodec(reorder_window=-1)
    assert TelnyxCodec(reorder_window=0).reorder_window == 0
    c = TelnyxCodec("pcma/8000")
    assert c.reorders and not TwilioCodec().reorders and c.reorder_window == 3 and c.audio_format == "pcma/8000"
    ev = c.parse(TELNYX_START.replace(b'"start":{', b'"start":{"tracks":["inbound"],'))
    assert (ev.account_id, ev.tracks, ev.raw["start"]["from"]) == ("3E6F995F", ["inbound"], "+13122010094")


def test_telnyx_order_passes_frames_without_a_chunk_and_counts_duplicates():
    c = started(TelnyxCodec(reorder_window=1), TELNYX_START)
    plain = Media("AAAA")                                         # no chunk number: straight through
    assert c.order(plain) == [plain]
    assert [m.chunk for m in c.order(c.parse(telnyx_media(5)))] == [5]
    assert [m.chunk for m in c.order(c.parse(telnyx_media(7)))] == []     # waits for 6
    assert [m.chunk for m in c.order(c.parse(telnyx_media(7)))] == []     # the same chunk twice
    assert c.dropped == 1 and c.reordered == 1
    assert [m.chunk for m in c.order(c.parse(telnyx_media(6)))] == [6, 7]
    assert c.flush_order() == [] and c._held == {}
    assert c.order(c.parse(telnyx_media(9))) == []                      # waits for 8
    assert [m.chunk for m in c.flush_order()] == [9] and c.flush_order() == []   # given once


@pytest.mark.parametrize("cls", [TwilioCodec, TelnyxCodec])
@pytest.mark.parametrize("fmt", ["pcm16/44100", "pcm16/8000", "pcm16/24000", "opus/48000"])
def test_g711_carriers_refuse_other_formats_at_construction(cls, fmt):
    with pytest.raises(ValueError, match=f"{cls.name.capitalize()} .*pcmu/8000 or pcma/8000, not '{fmt}'"):
        cls(fmt)


def test_every_codec_refuses_an_unknown_format_at_construction():
    from rtfast.bridge.carriers._base import JsonCodec
    with pytest.raises(ValueError, match="unknown carrier audio format 'pcm16/44100'; expected one of pcmu/8000"):
        JsonCodec("pcm16/44100")
    with pytest.raises(ValueError, match="Plivo speaks"):
        PlivoCodec("pcma/8000")
    with pytest.raises(ValueError, match="Exotel speaks"):
        ExotelCodec("pcmu/8000")
    with pytest.raises(ValueError, match="Vonage speaks"):
        VonageCodec("pcm16/24000")


def test_twilio_start_announcing_alaw_is_applied():
    c = TwilioCodec()
    frame = TWILIO_START.replace(b"audio/x-mulaw", b"audio/x-alaw")
    ev = c.parse(frame)
    assert ev.audio_format == c.audio_format == "pcma/8000" and c.start_event is ev
    c2 = TwilioCodec("pcma/8000")
    ev = c2.parse(TWILIO_START)                                   # the start's mu-law wins
    assert ev.audio_format == c2.audio_format == "pcmu/8000"
    no_format = orjson.dumps({"event": "start", "start": {"streamSid": "MZ1"}})
    assert TwilioCodec("pcma/8000").parse(no_format).audio_format == "pcma/8000"
    assert TwilioCodec().parse(b'{"event":"start","streamSid":"MZ2","start":{}}').stream_id == "MZ2"


@pytest.mark.parametrize("fmt", [{"encoding": "audio/x-l16", "sampleRate": 8000},
                                 {"encoding": "audio/x-alaw", "sampleRate": 16000},
                                 {"encoding": "audio/x-mulaw"}])
def test_twilio_refuses_other_media_formats(fmt):
    c = TwilioCodec()
    with pytest.raises(ProtocolError, match="twilio: start: unsupported mediaFormat"):
        c.parse(orjson.dumps({"event": "start", "start": {"streamSid": "MZ1", "mediaFormat": fmt}}))
    assert not c.started and c.start_event is None and c.audio_format == "pcmu/8000"


# A media frame the scanner passes over (an unknown nested key): the orjson path decides.
SLOW_MEDIA = {"event": "media", "media": {"payload": B64, "extra": 1}}


@pytest.mark.parametrize("cls,start,key", [(TwilioCodec, TWILIO_START, "streamSid"),
                                            (TelnyxCodec, TELNYX_START, "stream_id"),
                                            (PlivoCodec, PLIVO_START, "streamId"),
                                            (ExotelCodec, EXOTEL_START, "stream_sid")])
def test_media_before_start_is_refused_on_the_slow_path_too(cls, start, key):
    frame = orjson.dumps({**SLOW_MEDIA, key: "x"})
    assert scan_media(frame) is None
    c = cls()
    with pytest.raises(ProtocolError, match=f"{cls.name}: media before start"):
        c.parse(frame)
    assert not c.started
    c.parse(start)
    m = c.parse(frame)
    assert type(m) is Media and m.payload == B64.encode() and m.stream_id == "x"


def test_outbound_mark_is_byte_identical_to_the_dumped_dict():
    # mark() splices the name into a head built at start: the bytes must be what orjson
    # writes for the whole message, whatever the name holds.
    for c, key, sid in ((started(TwilioCodec(), TWILIO_START), "streamSid", "MZ18ad3ab5a668"),
                        (started(ExotelCodec(), EXOTEL_START), "stream_sid", "MZexo")):
        for name in ("0.1", "12.345", "", 'a"b', "a\\b", "caf\u00e9", "\x01", 7):
            assert c.mark(name) == orjson.dumps({"event": "mark", key: sid, "mark": {"name": name}})


def test_outbound_before_start_is_refused():
    for c, mark, clear in ((TwilioCodec(), "mark", "clear"), (TelnyxCodec(), "mark", "clear"),
                           (PlivoCodec(), "checkpoint", "clearAudio"), (ExotelCodec(), "mark", "clear")):
        for make, what in ((lambda: c.media(ULAW), "media"), (lambda: c.media_b64(B64), "media"),
                           (lambda: c.mark("0.1"), mark), (c.clear, clear)):
            with pytest.raises(ProtocolError, match=f"^{c.name}: {what} before start \\(no stream yet\\)$"):
                make()


def test_media_b64_validates_by_default_and_splices_as_is_when_told():
    c = started(TwilioCodec(), TWILIO_START)
    with pytest.raises(ValueError, match="bad character"):
        c.media_b64("AA!A")
    frame = c.media_b64("AA!A", validate=False)
    assert frame == b'{"event":"media","streamSid":"MZ18ad3ab5a668","media":{"payload":"AA!A"}}'


def test_start_event_and_unknown_fields():
    c = TwilioCodec()
    assert c.start_event is None and c.stream_id is None
    ev = c.parse(TWILIO_START)
    assert c.start_event is ev and ev.raw == orjson.loads(TWILIO_START)
    u = c.parse(b'{"event":"future","x":1}')
    assert type(u) is Unknown and u.event == "future" and u.raw == {"event": "future", "x": 1}
    assert repr(u) == "Unknown(event='future')"                   # raw is kept out of the repr
    assert u == Unknown("future", {"event": "future", "x": 1}) and u != Unknown("future", {})
    assert (Unknown("a", {}) == Mark("a")) is False


def test_event_field_values_on_the_orjson_path():
    c = started(TwilioCodec(), TWILIO_START)
    d = c.parse(b'{"event":"dtmf","dtmf":{"digit":"#","duration":120}}')
    assert (d.digit, d.duration) == ("#", 120)
    assert c.parse(b'{"event":"stop","stop":{"call_sid":"CA9","reason":"hangup"}}') == Stop(
        "CA9", "hangup", {"event": "stop", "stop": {"call_sid": "CA9", "reason": "hangup"}})
    assert c.parse(b'{"event":"stop","stop":{"call_control_id":"v2:1"}}').call_id == "v2:1"
    assert c.parse(b'{"event":"stop"}').call_id is None
    con = c.parse(b'{"event":"connected"}')
    assert (con.protocol, con.version) == (None, None)
    with pytest.raises(ProtocolError, match="twilio: unexpected binary frame"):
        c.parse(b"\x00\x01", binary=True)
    with pytest.raises(TypeError, match="frame must be bytes or str, not int"):
        c.parse(5)
    assert c.parse(TWILIO_MEDIA.decode()).audio() == ULAW          # str frames work too
    with pytest.raises(ProtocolError, match="twilio: not a JSON object"):
        c.parse(b'"media"')
    with pytest.raises(ProtocolError, match="twilio: no string 'event'"):
        c.parse(b'{"event":5}')


# -- Vonage error paths ----------------------------------------------------------------------------

@pytest.mark.parametrize("frame,reason", [
    (b'{"event":', "vonage: not JSON"),
    (b'[1]', "vonage: not a JSON object"),
    (b'{"uuid":"x"}', "vonage: no string 'event'"),
    (b'{"event":null}', "vonage: no string 'event'"),
    (b'{"event":"websocket:notify"}', "vonage: websocket:notify: field 'payload.name' must be a string"),
    (b'{"event":"websocket:notify","payload":"0.1"}', "websocket:notify: field 'payload.name'"),
    (b'{"event":"websocket:notify","payload":{"name":4}}', "websocket:notify: field 'payload.name'"),
    (b'{"event":"websocket:dtmf"}', "vonage: websocket:dtmf: no string 'digit'"),
    (b'{"event":"websocket:dtmf","dtmf":{"digit":5}}', "websocket:dtmf: no string 'digit'"),
    (b'{"event":"websocket:connected","content-type":5}', "vonage: unsupported content-type 5"),
    (b'{"event":"websocket:connected","content-type":"audio/l16;rate=16000x"}', "unsupported content-type"),
])
def test_vonage_bad_frames(frame, reason):
    c = VonageCodec()
    c.parse(VONAGE_CONNECTED)
    with pytest.raises(ProtocolError, match=reason):
        c.parse(frame)
    assert c.parse(bytes(640), binary=True).audio_length == 640     # still usable


def test_vonage_events_and_formats():
    c = VonageCodec("pcm16/8000")
    assert c.audio_format == "pcm16/8000" and c.chunk_bytes() == 320 and not c.started
    ev = c.parse(b'{"event":"websocket:connected","content-type":"Audio/L16; rate=16000","uuid":"u1","x":"y"}')
    assert c.started and c.start_event is ev and c.audio_format == ev.audio_format == "pcm16/16000"
    assert (ev.call_id, ev.custom_parameters, ev.raw["x"]) == ("u1", {"uuid": "u1", "x": "y"}, "y")
    assert c.chunk_bytes(20) == 640 and c.frame_bytes == 640
    c2 = VonageCodec()
    ev = c2.parse(b'{"event":"websocket:connected","call_uuid":"u2"}')       # no content-type: keep 16 kHz
    assert ev.call_id == "u2" and c2.audio_format == "pcm16/16000"
    c3 = VonageCodec()
    c3.parse(b'{"event":"websocket:connected","content-type":"audio/l16;rate=8000"}')
    assert c3.audio_format == "pcm16/8000" and c3.frame_bytes == 320
    d = c.parse(b'{"event":"websocket:dtmf","dtmf":{"digit":"5","duration":100}}')
    assert (d.digit, d.duration) == ("5", 100)
    assert c.parse(b'{"event":"websocket:dtmf","digit":"#","duration":80}').duration == 80
    m = c.parse(b'{"event":"websocket:notify","payload":{"name":"1.2"}}')
    assert type(m) is Mark and m.name == "1.2"
    e = c.parse(b'{"event":"websocket:error","code":3,"message":"m"}')
    assert (e.code, e.message) == (3, "m")
    assert c.parse(b'{"event":"websocket:error","reason":"r","message":"m"}').message == "r"
    u = c.parse(b'{"event":"websocket:other","a":1}')
    assert type(u) is Unknown and u.event == "websocket:other" and u.raw == {"event": "websocket:other", "a": 1}
    assert type(c.media(bytearray(b"\x01\x02"))) is bytes and c.media(memoryview(b"\x01\x02")) == b"\x01\x02"
    with pytest.raises(ProtocolError, match=r"vonage: payload is not base64 \(.*bad character"):
        c.media_b64("AA!A")
    assert c.media_b64("AQI=", validate=False) == b"\x01\x02"
    with pytest.raises(TypeError, match="frame must be bytes or str, not NoneType"):
        c.parse(None)


def test_event_reprs_and_raw_messages():
    c = started(PlivoCodec(), PLIVO_START)
    cleared = c.parse(PLIVO_CLEARED)
    assert cleared.raw == orjson.loads(PLIVO_CLEARED) and repr(cleared) == "Cleared()"
    v = VonageCodec()
    assert v.parse(b'{"event":"websocket:cleared","x":1}').raw == {"event": "websocket:cleared", "x": 1}
    assert repr(Dtmf("5", 100, {"a": 1})) == "Dtmf(digit='5', duration=100)"
    assert repr(Stop("CA1", "hangup")) == "Stop(call_id='CA1', reason='hangup')"
    assert repr(Connected("Call", "1.0")) == "Connected(protocol='Call', version='1.0')"
    assert repr(CarrierAlert(1, "m")) == "CarrierAlert(code=1, message='m')"
    assert repr(Mark("0.1")) == "Mark(name='0.1')"
    s = Start("s", "c", "a", ["inbound"], {"k": "v"}, "pcmu/8000", {"raw": 1})
    assert repr(s) == ("Start(stream_id='s', call_id='c', account_id='a', tracks=['inbound'], "
                       "custom_parameters={'k': 'v'}, audio_format='pcmu/8000')")
    assert s == Start("s", "c", "a", ["inbound"], {"k": "v"}, "pcmu/8000", {"raw": 1})
    assert s != Start("s", "c", "a", ["inbound"], {"k": "v"}, "pcmu/8000", {"raw": 2})    # raw counts
    assert Mark("0.1") != Mark("0.2") and Dtmf("1") == Dtmf("1")
    assert (Mark("x") == "x") is False


def test_the_base_codecs_defaults():
    from rtfast.bridge.carriers._base import CarrierCodec, JsonCodec
    c = CarrierCodec()
    assert (c.name, c.binary_media, c.reorders, c.audio_format, c.started, c.stream_id) == (
        "carrier", False, False, "pcmu/8000", False, None)
    assert c.chunk_bytes() == 160 and c.chunk_bytes(60) == 480 and c.frame_bytes == 160
    m = Media("AAAA")
    assert c.order(m) == [m]
    with pytest.raises(ProtocolError, match=r"^carrier: unsupported audio format pcm16/44100: 'x'$"):
        c._set_format("pcm16/44100", "x")
    assert c.audio_format == "pcmu/8000"
    j = JsonCodec()
    assert j.STREAM_KEY == "streamSid" and j.HANDLERS == {}
    assert j.parse(b'{"event":"start"}') == Unknown("start", {"event": "start"})   # no handlers: all unknown
    assert JsonCodec("pcma/8000").audio_format == "pcma/8000"
    with pytest.raises(ProtocolError, match=r"^carrier: unexpected binary frame: ''$"):
        j.parse(b"{}", binary=True)


@pytest.mark.parametrize("frame,reason", [
    (b'{"event":"media","sequenceNumber":"x","media":{"payload":""}}',
     "media: field 'sequence number' must be an integer or a string of digits"),
    (b'{"event":"media","media":{"payload":"","track":5}}', "media: field 'media.track' must be a string"),
    (b'{"event":"media","media":{"payload":"","timestamp":[]}}',
     "media: field 'media.timestamp' must be an integer or a string of digits"),
])
def test_media_field_errors_name_the_field(frame, reason):
    c = started(TwilioCodec(), TWILIO_START)
    with pytest.raises(ProtocolError, match="^" + reason.replace(".", r"\.") + ": "):
        c.parse(frame)


@pytest.mark.parametrize("codec, start, media", [
    (TwilioCodec, TWILIO_START, TWILIO_MEDIA), (TelnyxCodec, TELNYX_START, telnyx_media(1)),
    (PlivoCodec, PLIVO_START, PLIVO_MEDIA), (ExotelCodec, EXOTEL_START, EXOTEL_MEDIA)])
def test_a_media_frame_never_becomes_a_dict(codec, start, media, monkeypatch):
    """The house rule for the hot message: a carrier's media frame is scanned in place and
    its Media returned; it never goes through the JSON parser (which would give an equal
    Media, slower: only this test tells the two apart)."""
    c = codec()
    c.parse(start)
    expected = c.parse(media)

    def no_json(frame):
        raise AssertionError("a media frame went through the JSON path")

    monkeypatch.setattr(c, "_json_event", no_json)
    got = c.parse(media)
    assert type(got) is type(expected) and got.payload == expected.payload


# -- the mark scanner (scan_hot): the bridge's other frequent inbound message ---------------

from rtfast.bridge.carriers._base import scan_hot  # noqa: E402

_MARK_KEYS = {"event", "mark", "sequenceNumber", "sequence_number", "streamSid", "stream_id", "streamId", "stream_sid"}


def mark_reference(frame):
    """What scan_hot may answer for a frame: the name, when orjson reads a mark of the
    plain shape; anything else must be declined (None), never guessed."""
    try:
        d = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    if type(d) is not dict or d.get("event") != "mark" or not set(d) <= _MARK_KEYS:
        return None
    m = d.get("mark")
    if type(m) is not dict or list(m) != ["name"] or type(m["name"]) is not str:
        return None
    return m["name"]


def check_mark_scan(frame):
    got = scan_hot(frame)
    if isinstance(got, Media):
        assert reference(frame) == got, frame
        return
    if got is None:
        return                                          # declined: parse() decides
    assert got == mark_reference(frame), frame          # never accepts what orjson reads otherwise
    for c in (started(TwilioCodec(), TWILIO_START), started(ExotelCodec(), EXOTEL_START)):
        assert c.parse(frame) == Mark(got, orjson.loads(frame)) and c.feed(frame) == got


def test_mark_scanner_takes_every_carrier_shape_and_key_order():
    for frame in (TWILIO_MARK, EXOTEL_MARK, b'{"event":"mark","mark":{"name":"n"}}',
                  b' { "mark" : { "name" : "0.17" } ,\t"streamSid":"MZ1", "event" :"mark","sequenceNumber":12}\n'):
        assert scan_hot(frame) == mark_reference(frame) is not None
        check_mark_scan(frame)
    assert scan_hot(b'{"event":"mark","mark":{"name":""}}') == ""


@pytest.mark.parametrize("frame", [
    b'{"event":"mark","mark":{"name":"a\\"b"}}',              # escapes: orjson
    b'{"event":"mark","mark":{"name":"caf\xc3\xa9"}}',        # non-ASCII: orjson
    b'{"event":"mark","mark":{"name":1}}',                    # not a string: parse() refuses it
    b'{"event":"mark","mark":{"name":"a","x":"b"}}',           # another key in mark
    b'{"event":"mark","mark":{}}', b'{"event":"mark","mark":"0.1"}', b'{"event":"mark"}',
    b'{"event":"mark","mark":{"name":"a"},"mark":{"name":"b"}}',  # duplicates: orjson keeps the last
    b'{"event":"mark","mark":{"name":"a"},"event":"mark"}',
    b'{"event":"mark","streamSid":"a","stream_id":"b","mark":{"name":"a"}}',
    b'{"event":"mark","mark":{"name":"a"},"extra":"x"}',        # an unknown key: orjson keeps it in raw
    b'{"event":"mark","sequenceNumber":"x","mark":{"name":"a"}}',
    b'{"event":"mark","mark":{"name":"a"}}x', b'{"event":"mark","mark":{"name":"a"}',
    b'{"event":"marks","mark":{"name":"a"}}', b'{"event":"media","mark":{"name":"a"}}',
    b'[{"event":"mark","mark":{"name":"a"}}]',
])
def test_mark_frames_the_scanner_declines(frame):
    assert scan_hot(frame) is None
    check_mark_scan(frame)


def test_mark_scanner_agrees_with_orjson_on_every_single_byte_edit():
    base = b'{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"0.12"}}'
    for i in range(len(base) + 1):
        for b in b'"\\{}[],: 0-1.eE\x00\x80=aZ\x7f':
            check_mark_scan(base[:i] + bytes([b]) + base[i + 1:])
            check_mark_scan(base[:i] + bytes([b]) + base[i:])
        check_mark_scan(base[:i])
        check_mark_scan(base[:i] + base[i + 1:])


def test_mark_scanner_fuzz_rounds():
    rng = seeded()
    for _ in rounds(20):
        check_mark_scan_all(rng)


def check_mark_scan_all(rng):
    for frame in mutations(rng.choice([TWILIO_MARK, EXOTEL_MARK]), rng):
        check_mark_scan(frame)


def test_feed_is_parse_except_a_plain_mark_is_its_name():
    c = started(TwilioCodec(), TWILIO_START)
    assert c.feed(TWILIO_MARK) == c.parse(TWILIO_MARK).name == "my label"
    for frame in (TWILIO_MEDIA, TWILIO_START, TWILIO_STOP, b'{"event":"mark","mark":{"name":"a\\u0041"}}'):
        assert c.feed(frame) == c.parse(frame)
    # Not started: media is refused on the fast path too; a mark is not (parse() takes it so).
    fresh = TwilioCodec()
    with pytest.raises(ProtocolError, match="^twilio: media before start"):
        fresh.feed(TWILIO_MEDIA)
    assert fresh.feed(TWILIO_MARK) == "my label"
    with pytest.raises(ProtocolError, match="unexpected binary frame"):
        c.feed(TWILIO_MARK, True)
    # Plivo's "mark" is not its mark message (playedStream is): never a name.
    p = started(PlivoCodec(), PLIVO_START)
    assert type(p.feed(TWILIO_MARK)) is Unknown and p.feed(PLIVO_PLAYED) == Mark("0.1", orjson.loads(PLIVO_PLAYED))
    v = VonageCodec()
    assert VonageCodec.feed is VonageCodec.parse and type(v.feed(orjson.dumps(
        {"event": "websocket:notify", "payload": {"name": "0.1"}}))) is Mark


def test_a_codec_of_its_own_feeds_the_bridge_what_it_parses():
    # Call reads frames through feed(); a codec written on CarrierCodec with parse() alone works.
    from rtfast.bridge.carriers import CarrierCodec

    class Own(CarrierCodec):
        def parse(self, frame, binary=False):
            return Unknown("own", {"frame": frame, "binary": binary})

    assert Own().feed(b"f", True) == Unknown("own", {"frame": b"f", "binary": True})
    assert Own().feed(b"g") == Unknown("own", {"frame": b"g", "binary": False})
