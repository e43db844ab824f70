"""The bridge's compiled shortcuts are exact: the carrier fast lane (rtfast._lane) and the
pacing loop (rtfast._pace). Any sequence of reads and ticks leaves the call, its counters
and both sockets exactly as the general path and the Python loop do.

Two bridge calls, one with both shortcuts and one with neither (its pacing loop the plain
Python oracle, tests/reference/pump_ref.py), are fed the same reads from
the caller (media of every track, bad base64, marks current, stale and odd, start, stop,
unknown events, binary and control frames, a close), the same model replies (deltas,
barge-ins, response ends) and the same pacer ticks, with the call's I/O switched between
holding, dropping and a closed realtime socket on the way. Everything each writes, its
summary, ledger, sent times and failure must match, for hypothesis' sequences on every
JSON carrier and for a long plain call.
"""

from __future__ import annotations

import asyncio
import base64
import re
from types import MethodType

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rtfast._wsframe import FrameParser, FrameWriter
from rtfast.bridge import call as call_mod, server as server_mod
from rtfast.bridge.recording import Recorder, RecordingWriter
from rtfast.websocket import CLOSED, WebSocket

from memtransport import bridge_call, open_ws
from reference.pump_ref import pump as reference_pump

SID = b"MZ0123"
START = (b'{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"%s",'
         b'"callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw",'
         b'"sampleRate":8000,"channels":1},"customParameters":{}},"streamSid":"%s"}' % (SID, SID))
# Each JSON carrier's start (as tests/carrier_sims_more.py sends it): the lane runs for all of them.
STARTS = {
    "twilio": START,
    "telnyx": orjson.dumps({"event": "start", "sequence_number": "1", "stream_id": "32DE", "start": {
        "call_control_id": "v3:1", "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}}),
    "plivo": orjson.dumps({"event": "start", "sequenceNumber": 0, "start": {
        "callId": "1", "streamId": "2017", "accountId": "MA1", "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}, "extra_headers": "{}"}),
    "exotel": orjson.dumps({"event": "start", "sequence_number": "1", "stream_sid": "MZe", "start": {
        "stream_sid": "MZe", "call_sid": "1", "account_sid": "AC", "media_format": {
            "encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"}}}),
}
SESSION_UPDATED = (b'{"type":"session.updated","event_id":"e0","session":{"type":"realtime","id":"s1",'
                   b'"audio":{"input":{"format":{"type":"audio/pcmu"}},"output":{"format":{"type":"audio/pcmu"}}}}}')

SESSION_STARTED = (b'{"type":"session.started","event_id":"e0","session":{"id":"sess_1","model":"gpt-live-1",'
                   b'"status":"active","audio":{"format":{"type":"audio/pcmu","rate":8000}}}}')


def _call(lane: bool, monkeypatch, protocol: str = "realtime", carrier: str = "twilio", call_class=None,
          **call_options):
    monkeypatch.setattr(server_mod, "FAST_LANE", lane)
    bridge = server_mod.BridgeServer(realtime_url="ws://127.0.0.1:9/", api_key="sk-lane", control=None,
                                     vad=None, gc_freeze=False, protocol=protocol, carrier=carrier, **call_options)
    if call_class is not None:
        bridge.call_class = call_class
    io, cws, _ = bridge_call(bridge)
    assert (cws.lane is not None) == (lane and carrier != "vonage")     # Vonage: binary audio, no lane
    return bridge, io


def _started(lane: bool, monkeypatch):
    """A call with the lanes (or without) whose carrier has started and whose realtime session
    is set up; returns (bridge, io, a writer of the model's frames)."""
    bridge, io = _call(lane, monkeypatch)
    assert (io.rt.lane is not None) == lane
    io.ws.data_received(FrameWriter(client=True).frames([START]))
    mw = FrameWriter(client=False)
    io.rt.data_received(mw.frames([SESSION_UPDATED]))
    return bridge, io, mw


def _media(payload: bytes, track: bytes | None = b"inbound", seq: int = 2) -> bytes:
    t = b'"track":"%s",' % track if track is not None else b""
    return (b'{"event":"media","sequenceNumber":"%d","media":{%s"chunk":"1","timestamp":"20","payload":"%s"},'
            b'"streamSid":"%s"}' % (seq, t, payload, SID))


def _mark(name: bytes) -> bytes:
    return b'{"event":"mark","sequenceNumber":"3","streamSid":"%s","mark":{"name":"%s"}}' % (SID, name)


AUDIO = st.binary(min_size=0, max_size=200).map(base64.b64encode)
CARRIER_FRAME = st.one_of(
    st.tuples(st.just(1), st.builds(_media, AUDIO)),
    st.tuples(st.just(1), st.builds(_media, AUDIO, st.sampled_from([None, b"inbound_track", b"outbound", b"in"]))),
    st.tuples(st.just(1), st.builds(_media, st.sampled_from([b"AAA", b"AA=A", b"A*AA", b"", b"AA==AAAA"]))),
    st.tuples(st.just(1), st.builds(_mark, st.sampled_from([b"0.1", b"0.2", b"0.3", b"1.1", b"0.99", b"x", b"0.",
                                                             b"0.\\u00b2", b"0.1.1", b"", b"-1.1"]))),
    st.tuples(st.just(1), st.sampled_from([
        START, b'{"event":"stop","sequenceNumber":"9","streamSid":"%s","stop":{}}' % SID,
        b'{"event":"connected","protocol":"Call","version":"1.0.0"}',
        b'{"event":"dtmf","streamSid":"%s","dtmf":{"digit":"5"}}' % SID,
        b'{"event":"media","media":{"payload":"QUJD","track":"inbound","x":"\\u0041"},"streamSid":"MZ"}',
        b'{"event":"mark","mark":{"name":1}}', b'{"event":"nope"}', b"not json", b"[]"])),
    st.tuples(st.just(2), st.binary(max_size=8)),
    st.tuples(st.just(9), st.binary(max_size=4)),
)
DELTA = base64.b64encode(bytes(range(256)) * 4)[:1068]      # 800 bytes of audio, 100 ms of μ-law


def _transcript(rid: int, tail: bytes = b'"delta":"word "') -> bytes:
    return (b'{"type":"response.output_audio_transcript.delta","event_id":"e","response_id":"resp_%d",'
            b'"item_id":"item_%d","output_index":0,"content_index":0,%s}' % (rid // 5, rid // 5, tail))


# What else the model sends beside the plain deltas, in shapes the model lane must take
# (a transcript delta with non-ASCII words) or leave to the general path (every other one).
MODEL_OTHERS = [
    _transcript(0, b'"delta":"caf\\u00e9 \\"ok\\" \xc3\xbc"'),
    _transcript(0, b'"delta":"w","logprobs":[]'),              # an extra key
    _transcript(0, b'"delta":"w","logprobs":5'),               # one the parser refuses
    _transcript(0, b'"delta":5'),                               # the parser refuses it
    _transcript(0, b'"delta":null'),
    _transcript(0, b'"delta":"w"').replace(b'"output_index":0', b'"output_index":true'),
    _transcript(0, b'"delta":"w"').replace(b'"output_index":0', b'"output_index":-2'),
    _transcript(0, b'"delta":"w"').replace(b'"item_id":"item_0",', b''),
    _transcript(0, b'"delta":"w"')[:-1],                        # not JSON
    _transcript(0, b'"delta":"w","type":"response.done"'),     # JSON's last "type" is the one it means
    b'{"type":"response.audio_transcript.delta","event_id":"e","response_id":"resp_0","item_id":"item_0",'
    b'"output_index":0,"content_index":0,"delta":"w"}',          # the beta name
    b'{"type":"response.output_audio.delta","event_id":"e","response_id":"resp_0","item_id":"item_0",'
    b'"output_index":0,"content_index":0,"delta":"AA*A"}',       # audio that is not base64
    b'{"type":"response.output_audio.delta","event_id":"e","response_id":"resp_0","item_id":"item_0",'
    b'"output_index":0,"content_index":1,"delta":"AAAAAA=="}',   # another content part
    b'{"type":"response.output_audio.delta","event_id":"e","response_id":"resp_0","item_id":"it\\u0065m_0",'
    b'"output_index":0,"content_index":0,"delta":"AAAA"}',       # escapes: the scanner declines
    b'{"type":"response.output_audio.done","event_id":"e","response_id":"resp_0","item_id":"item_0",'
    b'"output_index":0,"content_index":0}',
    b'{"type":"response.created","event_id":"e","response":{"id":"resp_9","object":"realtime.response",'
    b'"status":"in_progress","output":[]}}',
    b'{"type":"error","event_id":"e","error":{"type":"invalid_request_error","message":"no"}}',
    b'{"type":"nope"}', b"[]",
]
MODEL_OTHER = st.sampled_from(MODEL_OTHERS)


def _live_delta(k: int) -> bytes:
    return b'{"type":"session.output_audio.delta","delta":"%s"}' % (DELTA if k % 3 else DELTA[:400])


def _live_transcript(k: int, tail: bytes = b'"end_ms":%d}') -> bytes:
    return (b'{"type":"session.output_transcript.delta","event_id":"e","delta":"word ","start_ms":%d,'
            % (k * 100) + (tail % (k * 100 + 100) if b"%d" in tail else tail))


# GPT-Live's side: its odd frames, and the ones beside the deltas it sends while it speaks.
LIVE_OTHERS = [
    _live_transcript(0, b'"end_ms":100,"client_event_id":"c1"}'),     # an optional key: the general way
    _live_transcript(0, b'"end_ms":100,"client_event_id":7}'),        # which the parser refuses
    _live_transcript(0, b'"end_ms":1.5}'),
    _live_transcript(0, b'"end_ms":true}'),
    _live_transcript(0, b'"end_ms":null}'),
    _live_transcript(0, b'"stop_ms":100}'),                              # a required key missing
    _live_transcript(0, b'"end_ms":100,"type":"error"}'),
    _live_transcript(0, b'"end_ms":100'),                                # not JSON
    b'{"type":"session.output_transcript.delta","event_id":"e","delta":"caf\\u00e9","start_ms":0,"end_ms":1}',
    b'{"type":"session.input_transcript.delta","event_id":"e","delta":"hi","start_ms":0,"end_ms":100}',
    b'{"type":"session.output_audio.delta","delta":"AA*A"}',
    b'{"type":"session.output_audio.delta","delta":"AAAA","extra":1}',
    b'{"type":"error","event_id":"e","error":{"type":"invalid_request_error","message":"no"}}',
    b'{"type":"nope"}', b"[]",
]
LIVE_REPLIES = st.lists(st.one_of(
    st.integers(0, 30).map(lambda k: (1, _live_delta(k))),
    st.integers(0, 30).map(lambda k: (1, _live_transcript(k))),
    st.tuples(st.just(1), st.sampled_from(LIVE_OTHERS)),
    st.tuples(st.just(9), st.binary(max_size=4)),
    st.just((8, b"\x03\xe8"))), min_size=1, max_size=4)


def _model(rid: int) -> list[bytes]:
    if rid % 5 == 4:
        return [b'{"type":"response.done","event_id":"e","response":{"id":"resp_%d","object":"realtime.response",'
                b'"status":"completed","output":[]}}' % (rid // 5)]
    if rid % 7 == 6:
        return [b'{"type":"input_audio_buffer.speech_started","event_id":"e","audio_start_ms":1,"item_id":"in_1"}']
    return [b'{"type":"response.output_audio.delta","event_id":"e","response_id":"resp_%d","item_id":"item_%d",'
            b'"output_index":0,"content_index":0,"delta":"%s"}' % (rid // 5, rid // 5, DELTA)]


STEP = st.one_of(
    st.tuples(st.just("carrier"), st.lists(CARRIER_FRAME, min_size=1, max_size=4)),
    st.tuples(st.just("model"), st.integers(0, 30)),
    # A read of several model messages: deltas with their transcript, and the odd ones.
    st.tuples(st.just("replies"), st.lists(st.one_of(
        st.integers(0, 30).map(_model).map(lambda m: (1, m[0])),
        st.integers(0, 30).map(lambda rid: (1, _transcript(rid))),
        st.tuples(st.just(1), MODEL_OTHER),
        st.tuples(st.just(2), st.binary(max_size=8)),
        st.tuples(st.just(9), st.binary(max_size=4)),
        st.just((8, b"\x03\xe8"))), min_size=1, max_size=4)),       # the model's close: nothing after it counts
    st.tuples(st.just("tick"), st.just(0)),
    st.tuples(st.just("state"), st.sampled_from(["hold", "release", "drop", "undrop", "rt_closed", "close"])),
)

def _play(steps, monkeypatch, protocol: str = "realtime", carrier: str = "twilio", call_class=None) -> list:
    """Runs the steps through a call with the shortcuts and one without; returns both observations."""
    async def run() -> list:
        obs = []
        now = [0.0]
        monkeypatch.setattr(server_mod, "_now_ms", lambda: now[0])
        calls = [_call(True, monkeypatch, protocol, carrier, call_class),
                 _call(False, monkeypatch, protocol, carrier, call_class)]
        cw, mw = FrameWriter(client=True), FrameWriter(client=False)
        general = [0, 0]                      # carrier frames each call's general path saw
        general_rt = [0, 0]                   # and model frames
        calls[1][1].call._pump = MethodType(reference_pump, calls[1][1].call)   # the oracle's loop
        for k, (_, io) in enumerate(calls):
            io.rt.data_received(mw.frames([SESSION_STARTED if protocol == "live" else SESSION_UPDATED]))
            handler = io.ws._on_message         # wrapped in place: setting on_message drops the lane

            def counted(msg, binary, handler=handler, k=k):
                general[k] += 1
                handler(msg, binary)
            io.ws._on_message = counted
            rt_handler = io.rt._on_message

            def counted_rt(msg, binary, handler=rt_handler, k=k):
                general_rt[k] += 1
                handler(msg, binary)
            io.rt._on_message = counted_rt
        for kind, arg in steps:
            now[0] += 10.0
            if kind == "record":                  # a recorder on each call from here on
                for k, (_, io) in enumerate(calls):
                    io.call.recorder = Recorder(arg[0], f"call-{k}", audio_format=io.call.carrier_format,
                                                start_ms=now[0], writer=arg[1])
                continue
            if kind == "carrier":
                data = cw.frames(arg)
            elif kind == "model":
                data = mw.frames(_model(arg))
            elif kind == "replies":
                kind, data = "model", mw.frames(arg)
            elif kind == "delta":                 # 100 ms of item arg's audio
                kind, data = "model", mw.frames([
                    b'{"type":"response.output_audio.delta","event_id":"e","response_id":"resp_x","item_id":"it_%d",'
                    b'"output_index":0,"content_index":0,"delta":"%s"}' % (arg, DELTA)])
            for bridge, io in calls:
                if kind == "carrier":
                    io.ws.data_received(data)
                elif kind == "model":
                    io.rt.data_received(data)
                elif kind == "tick":
                    bridge._pace_due(now[0])
                elif arg == "hold":
                    io.held = [] if io.held is None else io.held
                elif arg == "release":
                    if io.held is not None:
                        io.session_ready([])
                elif arg in ("drop", "undrop"):
                    io.hold_realtime(arg == "drop")
                elif arg == "rt_closed":
                    io.rt.state = CLOSED
                else:
                    io.ws.data_received(cw.frame(b"\x03\xe8", 8))
        for bridge, io in calls:
            rt_msgs = [m for c in io.rt.transport.chunks for m in FrameParser(client=False, max_size=1 << 24).feed(c)]
            call = io.call
            obs.append((b"".join(io.ws.transport.chunks), rt_msgs, len(io.rt.transport.chunks), call.summary(),
                        list(call._ledger), dict(call.played_ms), dict(call.sent_ms), call._play_end, call._seq,
                        bytes(call._pending), [list(x) for x in call._segments], repr(io.failure), io.held, io.ws.state,
                        io.ws._inbound_done, io.done.done(), call.stale_marks, io.rt._inbound_done,
                        *(getattr(call.session, k, None) for k in ("frames_in", "response_id", "speaking")),
                        {k: (v.response_id, dict(v.received), v.truncated_ms)
                         for k, v in getattr(call.session, "items", {}).items()},
                        call._receiving, sorted(call._cut_items), sorted(call._cut_responses), call.first_ms,
                        call.last_ms, io in bridge._pacing, io.bad_frames_quiet, bool(io.bad_frames_log_at),
                        *(repr(getattr(call, k, None)) for k in ("output_transcript_deltas", "input_transcript_deltas",
                                                                 "_last_delta", "_runs", "_run_at", "silence_ms")),
                        getattr(call.session, "audio_received", None),
                        call.recorder and (bytes(call.recorder._left), bytes(call.recorder._right))))  # its channels
        return obs, (general, general_rt)

    return asyncio.run(run())


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, max_size=40))
def test_lane_matches_the_general_path(steps, monkeypatch):
    (with_lane, without), (general, general_rt) = _play([("carrier", [(1, START)])] + steps, monkeypatch)
    assert with_lane == without
    assert general[0] <= general[1] and general_rt[0] <= general_rt[1]


@pytest.mark.parametrize("carrier", ["telnyx", "plivo", "exotel"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, max_size=30))
def test_lane_matches_the_general_path_on_every_json_carrier(carrier, steps, monkeypatch):
    """Telnyx reorders (so its media take the general path), Plivo's marks are not "mark"
    events, Exotel's PCM16 is transcoded: the lane must decline what it does not mirror."""
    (with_lane, without), _ = _play([("carrier", [(1, STARTS[carrier])])] + steps, monkeypatch,
                                    carrier=carrier)
    assert with_lane == without


@pytest.mark.parametrize("protocol", ["realtime", "live"])
def test_lane_matches_on_a_plain_call(monkeypatch, protocol):
    """Ten seconds of a call as the carrier sends it: the echo of every mark the bridge
    sent comes back, and the lane takes every media frame and mark (GPT-Live's appends
    are session.input_audio.append); on Realtime the model lane takes every audio and
    transcript delta, which arrive together as the API sends them."""
    steps = [("carrier", [(1, START)])]
    for i in range(500):
        frames = [(1, _media(base64.b64encode(bytes([i % 256]) * 160), seq=i + 2))]
        frames += [(1, _mark(b"0.%d" % j)) for j in range(1 + i // 3 * 2 - 2, 1 + i // 3 * 2) if i % 3 == 0 and j > 0]
        steps.append(("carrier", frames))
        if i % 5 == 0 and protocol == "live":
            steps.append(("replies", [(1, _live_delta(i // 5)), (1, _live_transcript(i // 5))]))
        elif i % 5 == 0:
            rid = i // 5 % 20
            steps.append(("replies", [(1, m) for m in _model(rid)] + [(1, _transcript(rid))] * (rid % 5 < 4)))
        steps.append(("tick", 0))
    (with_lane, without), (general, general_rt) = _play(steps, monkeypatch, protocol)
    assert with_lane == without
    head = b'{"type":"session.input_audio.append"' if protocol == "live" else b'{"type":"input_audio_buffer.append"'
    assert sum(m[1].startswith(head) for m in with_lane[1]) == 500
    summary = with_lane[3]
    assert summary["frames_from_carrier"] == general[1] > 800 and summary["frames_to_realtime"] >= 500
    assert general[0] == 1                      # only the start took the general path
    assert summary["audio_bytes_in"] == 500 * 160
    # Only the response ends and speech starts went the general way, each with the rest of its read.
    deltas = (b'{"type":"response.output_audio.delta"', b'{"type":"response.output_audio_transcript.delta"',
              b'{"type":"session.output_audio.delta"', b'{"type":"session.output_transcript.delta"')
    rest = sum(len(ms) - next(i for i, m in enumerate(ms + [(1, b"")]) if not m[1].startswith(deltas))
               for kind, ms in steps if kind == "replies")
    assert summary["frames_from_realtime"] == general_rt[1] + 1 > 150       # (+ the session's update)
    assert general_rt[0] == rest == (0 if protocol == "live" else 40)


def _plain_steps(n: int = 500) -> list:
    steps = [("carrier", [(1, START)])]
    for i in range(n):
        frames = [(1, _media(base64.b64encode(bytes([i % 256]) * 160), seq=i + 2))]
        frames += [(1, _mark(b"0.%d" % j)) for j in range(1 + i // 3 * 2 - 2, 1 + i // 3 * 2) if i % 3 == 0 and j > 0]
        steps.append(("carrier", frames))
        if i % 5 == 0:
            rid = i // 5 % 20
            steps.append(("replies", [(1, m) for m in _model(rid)] + [(1, _transcript(rid))] * (rid % 5 < 4)))
        steps.append(("tick", 0))
    return steps


def test_the_lanes_read_a_subclass_property_and_call_its_mark_handler(monkeypatch):
    """The lanes read the call's slots in place (rtfast._lane._slot), as the type resolves
    them: a subclass that makes one a property is read through it, and one that handles
    marks itself gets every echo, exactly as on the general path."""
    class Sub(call_mod.Call):
        __slots__ = ("reads", "marks", "_rec")
        made: list = []

        def __init__(self, *args, **kwargs):
            self.reads, self.marks = 0, []
            Sub.made.append(self)
            super().__init__(*args, **kwargs)

        @property
        def recorder(self):
            self.reads += 1
            return self._rec

        @recorder.setter
        def recorder(self, value):
            self._rec = value

        def _on_mark(self, name):
            self.marks.append(name)
            super()._on_mark(name)

    (with_lane, without), (general, general_rt) = _play(_plain_steps(), monkeypatch, call_class=Sub)
    assert with_lane == without
    assert general[0] == 1                                    # the carrier lane took the rest
    lane_call, plain_call = Sub.made
    assert lane_call.marks == plain_call.marks and len(lane_call.marks) > 300
    assert lane_call.reads >= 500                             # each media frame read the property


@pytest.mark.parametrize("patched", [("_pump",), ("_on_mark",), ("tick",), ("wake_at",), ("send_many",)])
def test_the_lanes_call_methods_patched_onto_one_call(monkeypatch, patched):
    """A Call keeps a __dict__ for what is patched onto one call: the lanes and the pacer
    call such a _pump, _on_mark, tick or wake_at (and a socket's own send_many) rather
    than their compiled copies."""
    now = [1000.0]
    monkeypatch.setattr(server_mod, "_now_ms", lambda: now[0])

    async def run() -> list:
        out = []
        for lane in (True, False):
            now[0] = 1000.0
            bridge, io, mw = _started(lane, monkeypatch)
            assert (io.pacer is not None) == lane
            calls: list = []
            for name in patched:
                owner = io.ws if name == "send_many" else io.call
                method = getattr(owner, name)

                def counted(*args, method=method, name=name):
                    calls.append(name)
                    return method(*args)
                setattr(owner, name, counted)
            io.rt.data_received(mw.frames([_model(0)[0], _transcript(0), _model(0)[0]]))
            names = re.findall(rb'"name":"([^"]+)"', b"".join(io.ws.transport.chunks))
            io.ws.data_received(FrameWriter(client=True).frames([_mark(n) for n in names]))
            for _ in range(30):                 # the pacer sends the rest, 20 ms at a time
                now[0] += 20.0
                bridge._pace_due(now[0])
            call = io.call
            out.append((calls, len(names), call.summary(), list(call._ledger), dict(call.played_ms),
                        io in bridge._pacing, b"".join(io.ws.transport.chunks)))
        return out

    with_lane, without = asyncio.run(run())
    assert with_lane == without
    calls, marks = with_lane[0], with_lane[1]
    assert marks >= 5 and len(calls) >= {"_pump": 5, "_on_mark": marks, "tick": 2, "wake_at": 5, "send_many": 2}[patched[0]]
    assert not with_lane[5]                     # drained: out of the pacer's set


def test_the_compiled_pacer_step_matches_livecalls_tick_after_every_tick(monkeypatch):
    """GPT-Live's pacer step (rtfast._lane.pace_due for a LiveCall): the model's audio
    arriving ahead of real time; a caller heard while it plays, a cut armed and dropped as
    the model keeps talking; the run ending in silence (its last chunk padded); a second run,
    a caller heard, the cut made once the model is silent: after every tick, the call and
    what it wrote are as with LiveCall's own wake_at and tick."""
    now = [1000.0]
    monkeypatch.setattr(server_mod, "_now_ms", lambda: now[0])
    heard = b'{"type":"session.input_transcript.delta","event_id":"e","delta":"hi","start_ms":0,"end_ms":100000}'

    async def run() -> list:
        out = []
        for lane in (True, False):
            now[0] = 1000.0
            bridge, io = _call(lane, monkeypatch, "live", silence_ms=60)
            assert (io.pacer is not None) == lane
            cw, mw = FrameWriter(client=True), FrameWriter(client=False)
            io.rt.data_received(mw.frames([SESSION_STARTED]))
            io.ws.data_received(cw.frames([START]))
            seen = []
            for step in range(80):
                if step in (0, 40):
                    io.rt.data_received(mw.frames([_live_delta(k) for k in range(6)]))
                if step in (3, 42):
                    io.rt.data_received(mw.frames([heard]))
                if step == 4:
                    io.rt.data_received(mw.frames([_live_delta(7)]))       # the model keeps talking
                now[0] += 10.0
                bridge._pace_due(now[0])
                call = io.call
                seen.append((call._receiving, call._arm, len(call._pending), len(call._ledger), call._play_end,
                             len(b"".join(io.ws.transport.chunks)), io in bridge._pacing, call.frames_to_carrier))
            out.append(seen)
        return out

    with_lane, without = asyncio.run(run())
    assert with_lane == without
    assert without[3][1] is not None and without[7][1] is None    # armed, then dropped: it kept talking
    assert without[7][0] is not None and without[9][0] is None    # the run ended in silence,
    assert without[20][2] > 0                                     # its audio still playing out
    assert without[42][1] is not None and without[45][2] == 0     # armed again, and cut: nothing held


def test_lane_is_dropped_with_its_handler_and_refused_without_one():
    async def run() -> None:
        ws = WebSocket(client=False, keep_handshake=False)
        open_ws(ws)
        try:
            ws.set_lane(lambda frames: 0)
        except ValueError as exc:
            assert str(exc) == "a lane goes beside an on_message callback: set_handlers first"
        else:
            raise AssertionError("a lane without a handler was accepted")
        seen = []
        ws.set_handlers(lambda m, b: seen.append(m))
        ws.set_lane(lambda frames: 1)                 # takes the first frame of each read
        ws.data_received(FrameWriter(client=True).frames([b"a", b"b"]))
        assert seen == [b"b"]
        ws.set_handlers(lambda m, b: seen.append(m))
        assert ws.lane is None
        ws.data_received(FrameWriter(client=True).frames([b"c"]))
        assert seen == [b"b", b"c"]

    asyncio.run(run())


def test_frame_sampler_times_the_lane_and_keeps_it(monkeypatch):
    """The pacer's frame-time sample swaps the handler for one frame: the lane must come back,
    and a read the lane takes is timed per frame."""
    clock = iter(range(10 ** 9, 2 * 10 ** 9, 1000))    # each reading of the clock 1 µs later
    monkeypatch.setattr(server_mod, "_perf_ns", lambda: next(clock))

    async def run() -> None:
        bridge, io = _call(True, monkeypatch)
        lane = io.ws.lane
        bridge.active[io.id] = io
        io.ws.data_received(FrameWriter(client=True).frames([START]))
        times = bridge.ops.frame_times
        bridge._sample_frame()
        assert io.ws.lane is not None and io.ws.lane is not lane      # the timing lane is in place
        io.ws.data_received(FrameWriter(client=True).frames([_media(b"QUJD"), _media(b"QUJE")]))
        assert io.ws.lane is lane and io.ws.on_message == io.from_carrier
        assert sum(times.counts) == 1 and times.sum_ns == 500           # 1 µs for the read's two frames
        bridge._sample_frame()                        # a frame the lane declines: timed on the general path
        io.ws.data_received(FrameWriter(client=True).frames([b'{"event":"nope"}']))
        assert io.ws.lane is lane and io.ws.on_message == io.from_carrier
        assert sum(times.counts) == 2

    asyncio.run(run())


def test_nothing_after_a_close_goes_through_the_lane(monkeypatch):
    """A close frame ends what the socket delivers, in the same read or a later one."""
    media = _media(b"QUJD")
    for steps, before in (([("state", "close"), ("carrier", [(1, media)])], 0),
                          ([("carrier", [(1, media), (8, b"\x03\xe8"), (1, media)]),
                            ("carrier", [(1, media), (1, _mark(b"0.1"))])], 1)):
        (with_lane, without), _ = _play([("carrier", [(1, START)])] + steps, monkeypatch)
        assert with_lane == without
        assert with_lane[3]["frames_from_carrier"] == 1 + before        # the start, and what came before the close


async def test_a_real_bridge_call_runs_on_the_lane():
    """Through BridgeServer and real sockets (the embedded Realtime server): the call's carrier
    socket has the lane, and the caller's audio reaches the model."""
    from carrier_sim import TwilioCall, tone
    from rtfast.server import RealtimeServer, Script

    async with RealtimeServer(script=Script(reply_text="Hello.", audio_ms=200)) as rt, \
            server_mod.BridgeServer(realtime_url=rt.url, api_key="sk-test") as bridge:
        async with TwilioCall(bridge.url) as call:
            loop = asyncio.get_running_loop()
            end = loop.time() + 10
            while not bridge.active and loop.time() < end:
                await asyncio.sleep(0.01)
            (io,) = bridge.active.values()
            while io.ws.lane is None and loop.time() < end:
                await asyncio.sleep(0.01)
            assert io.ws.lane is not None
            await call.say(tone(200))
            while io.call.frames_to_realtime < 10 and loop.time() < end:
                await asyncio.sleep(0.01)
            assert io.call.audio_bytes_in >= 10 * 160
            await call.hang_up()


def test_media_before_start_and_a_recording_call_take_the_general_path(monkeypatch, tmp_path):
    """Media before the carrier's start is an error the general path reports; a recorded call's
    caller audio goes to its recorder: the lane takes neither."""
    media = [(1, _media(base64.b64encode(bytes([i]) * 160))) for i in range(3)]
    writer = RecordingWriter()
    try:
        steps = [("carrier", media[:1]), ("carrier", [(1, START)]), ("record", (tmp_path, writer)),
                 ("carrier", media[1:]), ("carrier", [(1, _mark(b"0.1"))])]
        (with_lane, without), (general, _) = _play(steps, monkeypatch)
    finally:
        writer.close(5)
    assert with_lane == without
    assert with_lane[-1][0] == bytes([1]) * 160 + bytes([2]) * 160  # the recorder heard what followed it
    assert with_lane[3]["errors"] == 1                               # the media before start
    assert general[0] == 4                          # all but the mark took the general path


def test_a_failure_inside_the_lane_ends_the_call_as_the_general_path_does(monkeypatch):
    """A bug in the call logic or a transport that raises: the call ends, loudly, its failure
    recorded the same way whichever path met it, and the read's other frames still arrive."""
    async def run() -> list:
        out = []
        for lane in (True, False):
            _, io = _call(lane, monkeypatch)
            cw = FrameWriter(client=True)
            io.ws.data_received(cw.frames([START]))

            def broken(name, io=io):
                raise RuntimeError(f"ledger bug at {name}")
            io.call._on_mark = broken
            io.ws.data_received(cw.frames([_mark(b"0.1"), _media(b"QUJD")]))
            first = (repr(io.failure), io.done.done(), io.call.frames_from_carrier, io.call.frames_to_realtime)

            def refuse(data):
                raise OSError("socket gone")
            io.failure = None
            io.rt.transport.write = refuse
            io.ws.data_received(cw.frames([_media(b"QUJE")]))
            out.append((first, repr(io.failure), io.call.frames_to_realtime))
        return out

    with_lane, without = asyncio.run(run())
    assert with_lane == without
    assert with_lane[0] == ("RuntimeError('ledger bug at 0.1')", True, 3, 2)
    assert with_lane[1] == "OSError('socket gone')"


@pytest.mark.parametrize("frame", MODEL_OTHERS)
def test_model_lane_matches_on_each_odd_frame(frame, monkeypatch):
    """Each of the model's odd frames alone, and between a delta and a transcript in one read,
    after a first delta and before the pacer runs: the same state with the lane as without."""
    steps = [("carrier", [(1, START)]), ("model", 0), ("replies", [(1, frame)]), ("tick", 0),
             ("replies", [(1, _model(1)[0]), (1, frame), (1, _transcript(1))]), ("tick", 0), ("model", 2)]
    (with_lane, without), (_, general_rt) = _play(steps, monkeypatch)
    assert with_lane == without
    assert general_rt[0] < general_rt[1]        # the lane took the deltas at least


LIVE_STEP = st.one_of(
    st.tuples(st.just("carrier"), st.lists(CARRIER_FRAME, min_size=1, max_size=4)),
    st.tuples(st.just("replies"), LIVE_REPLIES),
    st.tuples(st.just("tick"), st.just(0)),
    st.tuples(st.just("state"), st.sampled_from(["hold", "release", "drop", "undrop", "rt_closed", "close"])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(LIVE_STEP, max_size=40))
def test_model_lane_matches_the_general_path_on_live(steps, monkeypatch):
    """GPT-Live's audio and output transcript deltas (no ids; the call times the model's
    silences by the clock), and its odd frames, through a LiveCall with the lanes and one without."""
    (with_lane, without), (_, general_rt) = _play([("carrier", [(1, START)])] + steps, monkeypatch, "live")
    assert with_lane == without
    assert general_rt[0] <= general_rt[1]


@pytest.mark.parametrize("frame", LIVE_OTHERS)
def test_model_lane_matches_on_each_odd_live_frame(frame, monkeypatch):
    steps = [("carrier", [(1, START)]), ("replies", [(1, _live_delta(1))]), ("replies", [(1, frame)]), ("tick", 0),
             ("replies", [(1, _live_delta(2)), (1, frame), (1, _live_transcript(2))]), ("tick", 0),
             ("replies", [(1, _live_transcript(3))])]
    (with_lane, without), (_, general_rt) = _play(steps, monkeypatch, "live")
    assert with_lane == without
    assert general_rt[0] < general_rt[1]


def test_a_failure_inside_the_model_lane_ends_the_call_as_the_general_path_does(monkeypatch):
    """A bug met while the model lane takes a delta (the call logic, the carrier's socket):
    the call ends with that failure, its counters and pacing state as the general path leaves
    them, and the read's frames after it are still taken."""
    delta = _model(0)[0]

    async def run() -> list:
        out = []
        for lane in (True, False):
            bridge, io, mw = _started(lane, monkeypatch)

            def broken(ev, frame, a, now):
                raise RuntimeError(f"segment bug at {ev.item_id}")
            io.call._take_delta = broken
            io.rt.data_received(mw.frames([delta, _transcript(0)]))
            first = (repr(io.failure), io.done.done(), io.call.frames_from_realtime, io.call.session.frames_in,
                     io in bridge._pacing)
            del io.call._take_delta

            def refuse(data):
                raise OSError("carrier socket gone")
            io.failure = None
            io.ws.transport.write = refuse
            io.rt.data_received(mw.frames([delta]))
            out.append((first, repr(io.failure), io.call.frames_from_realtime, io.call.frames_to_carrier))
        return out

    with_lane, without = asyncio.run(run())
    assert with_lane == without
    assert with_lane[0] == ("RuntimeError('segment bug at item_0')", True, 3, 3, True)
    assert with_lane[1] == "OSError('carrier socket gone')"


def test_a_long_one_way_reply_keeps_the_ledger_and_sent_times_bounded_alike(monkeypatch):
    """A caller that never echoes a mark, and a reply of more items than the call remembers:
    the ledger stops at its bound (oldest forgotten) and the sent-time table at ITEMS_KEPT,
    the same with the compiled loop as with the Python one."""
    steps = [("carrier", [(1, START)])]
    for i in range(700):                               # 70 s of audio, a new item every 1 s
        steps += [("delta", i // 10)] + [("tick", 0)] * 10
    (fast, slow), _ = _play(steps, monkeypatch)
    assert fast == slow
    ledger, sent = fast[4], fast[6]
    assert len(ledger) == call_mod._LEDGER_MAX and len(sent) == call_mod.ITEMS_KEPT


@pytest.mark.parametrize("carrier", ["twilio", "vonage"])
def test_the_compiled_pacing_loop_matches_the_oracle_while_recording(monkeypatch, tmp_path, carrier):
    """A recorded reply, and Vonage's binary audio (its media built by its own method): the
    compiled loop hands the recorder and the carrier the same chunks at the same times."""
    opening = (b'{"event":"websocket:connected","content-type":"audio/l16;rate=16000","uuid":"u1"}'
               if carrier == "vonage" else START)
    writer = RecordingWriter()
    try:
        steps = [("carrier", [(1, opening)]), ("record", (tmp_path, writer))]
        for i in range(60):
            steps += [("delta", i // 20), ("tick", 0), ("tick", 0)]
            if i % 7 == 3:
                steps.append(("model", 6))              # speech started: a barge-in mid-reply
        (fast, slow), _ = _play(steps, monkeypatch, carrier=carrier)
    finally:
        writer.close(5)
    assert fast == slow
    assert fast[3]["frames_to_carrier"] > 20 and fast[3]["barge_ins"] >= 2
    assert any(fast[-1][1].strip(b"\x00\xff"))           # the recorder's assistant channel has audio


def test_the_pacing_loop_stays_in_bounds_if_a_callable_empties_pending():
    """The loop reads pending only before it calls out; a callable that empties it (none of the
    bridge's do) gets a clear error, not a read past the buffer's end."""
    from collections import deque

    from rtfast import _pace

    pending = bytearray(range(256)) * 5                   # 1280 bytes: 8 chunks of 160

    class Emptying:
        def assistant(self, play_at, piece):
            pending.clear()

    out, ledger = [], deque()
    try:
        _pace.pump(pending, 160, 0.0, 0.0, 0, 0, 20, 100, 0, False, deque([["it", 0, 1280]]), ledger, 500, {},
                   call_mod.remember, out, b'{"m":"', b'"}', None, False, b'{"k":', None, Emptying())
    except RuntimeError as exc:
        assert "shrank" in str(exc)
    else:
        raise AssertionError("no error")
    assert out[0] == b'{"m":"' + base64.b64encode(bytes(range(160))) + b'"}'   # the first chunk, intact


def _pump_pair(**options):
    """Two started Calls with ``options``, the second pacing with the Python oracle."""
    from rtfast.bridge.call import Call
    from rtfast.bridge.carriers import TwilioCodec

    calls = []
    for oracle in (False, True):
        c = Call(TwilioCodec(), vad=None, **options)
        if oracle:
            c._pump = MethodType(reference_pump, c)
        c.from_carrier(START, False, 0.0)
        c.from_realtime(SESSION_UPDATED, 0.0)
        calls.append(c)
    return calls


def _state(c) -> tuple:
    return (bytes(c._pending), [list(s) for s in c._segments], list(c._ledger), dict(c.sent_ms), c._seq,
            c._play_end, c.frames_to_carrier, c.audio_bytes_out)


DELTA_FRAME = (b'{"type":"response.output_audio.delta","event_id":"e","response_id":"resp_x","item_id":"it_1",'
               b'"output_index":0,"content_index":0,"delta":"%s"}' % DELTA)


@pytest.mark.parametrize("options", [{"startup_buffer_ms": 60.0}, {"startup_buffer_ms": 12.5}, {"lead_ms": 100.0}])
def test_the_pacing_loop_takes_float_options_as_the_python_loop_did(options):
    fast, oracle = _pump_pair(**options)
    outs = [c.from_realtime(DELTA_FRAME, 10.0).to_carrier for c in (fast, oracle)]
    assert outs[0] == outs[1] and len(outs[0]) >= 2
    assert _state(fast) == _state(oracle)


def test_a_recorder_that_raises_leaves_the_call_as_the_python_loop_did(monkeypatch):
    """An exception from a callable mid-loop (a recorder's disk is full): what was sent is gone
    from pending, as when each chunk was deleted as it went; the next tick carries on the same."""
    class Failing:
        def __init__(self) -> None:
            self.n = 0

        def assistant(self, play_at, piece):
            self.n += 1
            if self.n == 2:
                raise OSError("disk full")

    states = []
    for c in _pump_pair():
        c.recorder = Failing()
        try:
            c.from_realtime(DELTA_FRAME, 10.0)
        except OSError:
            pass
        c.recorder = None
        states.append((_state(c), c.tick(1000.0).to_carrier, _state(c)))
    assert states[0] == states[1]
    assert len(states[0][1]) == 8                       # the 4 chunks left go at the next tick


def test_the_lane_declines_what_is_not_the_parsers_text_message(monkeypatch):
    """Frames the parser never makes (wrong shape or types) are handed back, not read blindly."""
    async def run() -> None:
        _, io = _call(True, monkeypatch)
        io.ws.data_received(FrameWriter(client=True).frames([START]))
        lane = io.ws.lane
        media = _media(b"QUJD")
        for frames in ([(1,)], [[1, media]], [(1, media, 0)], [(1, bytearray(media))], [("1", media)], [None]):
            assert lane(frames) == 0
        assert lane([(1, media), (1,)]) == 1                # its own kind first, then stops

    asyncio.run(run())


def test_model_lane_follows_a_session_the_call_moves_to(monkeypatch):
    """Call.realtime_reset() gives the call a new RealtimeSession: the deltas that follow are
    that session's (its frames and item audio, which a barge-in truncates by), with the
    model lane as without it."""
    async def run() -> list:
        out = []
        for lane in (True, False):
            _, io, mw = _started(lane, monkeypatch)
            io.rt.data_received(mw.frames([_model(0)[0], _transcript(0)]))
            io.call.realtime_reset()
            io.rt.data_received(mw.frames([_model(5)[0], _transcript(5), _model(5)[0]]))
            s = io.call.session
            out.append((s.frames_in, {k: dict(v.received) for k, v in s.items.items()}, s.audio_received_ms("item_1"),
                        io.call.frames_from_realtime))
        return out

    with_lane, without = asyncio.run(run())
    assert with_lane == without
    assert with_lane[0] == 3 and with_lane[2] == 200            # two 100 ms deltas of item_1


def test_model_lane_leaves_a_session_of_another_kind_to_its_own_receive(monkeypatch):
    """A call given a session of another class (its own receive) after the lane was set up:
    that receive sees every frame, as on the general path."""
    from rtfast.session import RealtimeSession

    class Counting(RealtimeSession):
        __slots__ = ("seen",)

        def receive(self, frame):
            self.seen = getattr(self, "seen", 0) + 1
            return super().receive(frame)

    async def run() -> list:
        out = []
        for lane in (True, False):
            _, io, mw = _started(lane, monkeypatch)
            io.call.session = Counting()
            io.rt.data_received(mw.frames([_model(0)[0], _transcript(0), _model(0)[0]]))
            out.append((io.call.session.seen, io.call.session.frames_in, io.call.frames_from_realtime))
        return out

    with_lane, without = asyncio.run(run())
    assert with_lane == without
    assert with_lane == (3, 3, 4)
