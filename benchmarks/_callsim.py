"""One bridge call's traffic in-process, no sockets: the bridge's per-message Python work alone.

A recorded script of what a Twilio caller and a Realtime peer send (as the load benchmark's
generator does: a 20 ms masked media frame every 20 ms, each mark echoed in the next read once
the audio before it has played; the model speaking 2 s in 100 ms deltas with their transcript,
then 1 s quiet) is replayed through the real ``WebSocket.data_received`` -> ``_CallIO`` ->
``Call`` -> ``WebSocket.send_many`` path over transports that only keep what is written, with
the server's pacer loop run every 10 ms. The clock is the script's (``server._now_ms`` is
swapped while it runs), so a replay is deterministic: ``digest()`` of every message written
is the same on every run and before and after any change that keeps behaviour.

    python benchmarks/_callsim.py [seconds] [--calls=N] [--profile]

``relay`` replays the same inbound bytes through two websockets that forward each message
unchanged (benchmarks/_load_bridge.py's relay): the floor of the glue.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
import time

import numpy as np

from rtfast import g711
from rtfast.bridge import server as server_mod
from rtfast.websocket import OPEN, WebSocket
from rtfast._wsframe import FrameParser, FrameWriter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from memtransport import bridge_call, open_ws  # noqa: E402  (tests/: shared with the in-process tests)

SID = b"MZ18ad3ab5a66817a0e6a6c5c5bcd4f31b"
START = (b'{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC0123","streamSid":"%s",'
         b'"callSid":"CA0123","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw",'
         b'"sampleRate":8000,"channels":1},"customParameters":{}},"streamSid":"%s"}' % (SID, SID))
SESSION_UPDATED = (b'{"type":"session.updated","event_id":"e0","session":{"type":"realtime","id":"sess_1",'
                   b'"audio":{"input":{"format":{"type":"audio/pcmu"}},"output":{"format":{"type":"audio/pcmu"}}}}}')


def _ulaw(seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 8000)) / 8000
    pcm = np.sin(2 * np.pi * 180 * t) * 6000 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + rng.normal(0, 300, t.size)
    return g711.ulaw_encode(np.clip(pcm, -32768, 32767).astype("<i2").tobytes())


CALLER = _ulaw(10.0, 1)                     # 500 distinct 20 ms frames, cycled
SPEECH = _ulaw(2.0, 2)                      # 20 distinct 100 ms deltas
DELTAS = [base64.b64encode(SPEECH[i:i + 800]) for i in range(0, len(SPEECH), 800)]


def record(seconds: int) -> list:
    """The script: (ms, "carrier" | "model" | "tick", wire bytes) in time order. The marks the
    caller echoes come from running the bridge once and playing back what it sent."""
    return asyncio.run(_record(seconds))


async def _record(seconds: int) -> list:
    script: list = []
    carrier_w, model_w = FrameWriter(client=True), FrameWriter(client=False)
    bridge, io, cws, rws = _bridge(keep=True)
    out_parser = FrameParser(client=True, max_size=1 << 20)     # what the caller reads
    play_end, marks, seen = 0.0, [], 0
    now = [0.0]
    saved, server_mod._now_ms = server_mod._now_ms, lambda: now[0]
    try:
        def feed(kind, data):
            script.append((now[0], kind, data))
            (cws if kind == "carrier" else rws).data_received(data)

        feed("carrier", carrier_w.frames([START], 1))
        feed("model", model_w.frames([SESSION_UPDATED], 1))
        k, rid = -1, 0
        model_next = 200.0
        for step in range(seconds * 100):           # 10 ms steps
            t = step * 10.0
            now[0] = t
            if step % 2 == 0:                       # the caller: a media frame and the marks due
                i = step // 2
                payload = base64.b64encode(CALLER[i * 160 % len(CALLER):][:160])
                msgs = [b'{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d",'
                        b'"timestamp":"%d","payload":"%s"},"streamSid":"%s"}' % (i + 2, i + 1, i * 20, payload, SID)]
                while marks and marks[0][0] <= t:
                    msgs.append(b'{"event":"mark","sequenceNumber":"%d","streamSid":"%s","mark":{"name":"%s"}}'
                                % (i + 2, SID, marks.pop(0)[1]))
                feed("carrier", carrier_w.frames(msgs, 1))
            if t >= model_next:                     # the model: 2 s of speech in 100 ms deltas, 1 s quiet
                if k < 0:
                    rid += 1
                    feed("model", model_w.frames([
                        b'{"type":"response.created","event_id":"e","response":{"id":"resp_%d","object":'
                        b'"realtime.response","status":"in_progress","output":[]}}' % rid], 1))
                    k, started = 0, t
                if k < len(DELTAS):
                    feed("model", model_w.frames([
                        b'{"type":"response.output_audio.delta","event_id":"e","response_id":"resp_%d",'
                        b'"item_id":"item_%d","output_index":0,"content_index":0,"delta":"%s"}' % (rid, rid, DELTAS[k]),
                        b'{"type":"response.output_audio_transcript.delta","event_id":"e","response_id":"resp_%d",'
                        b'"item_id":"item_%d","output_index":0,"content_index":0,"delta":"word "}' % (rid, rid)], 1))
                    k += 1
                    model_next = started + k * 100.0
                else:
                    feed("model", model_w.frames([
                        b'{"type":"response.output_audio_transcript.done","event_id":"e","response_id":"resp_%d",'
                        b'"item_id":"item_%d","output_index":0,"content_index":0,"transcript":"%s"}'
                        % (rid, rid, b"word " * len(DELTAS)),
                        b'{"type":"response.output_audio.done","event_id":"e","response_id":"resp_%d",'
                        b'"item_id":"item_%d","output_index":0,"content_index":0}' % (rid, rid),
                        b'{"type":"response.done","event_id":"e","response":{"id":"resp_%d","object":'
                        b'"realtime.response","status":"completed","output":[]}}' % rid], 1))
                    k, model_next = -1, t + 1000.0
            script.append((t, "tick", None))
            bridge._pace_due(t)
            # The caller plays what arrived and will echo each mark once the audio before it has played.
            chunks = cws.transport.chunks
            for data in chunks[seen:]:
                for op, msg in out_parser.feed(data):
                    if msg.startswith(b'{"event":"media"'):
                        play_end = max(play_end, t) + 20.0
                    elif msg.startswith(b'{"event":"mark"'):
                        j = msg.index(b'"name":"') + 8
                        marks.append((play_end, msg[j:msg.index(b'"', j)]))
            seen = len(chunks)
    finally:
        server_mod._now_ms = saved
    return script


def _bridge(keep: bool, bridge=None):
    if bridge is None:
        bridge = server_mod.BridgeServer(realtime_url="ws://127.0.0.1:9/", api_key="sk-sim", control=None,
                                         vad=None, gc_freeze=False)
    io, cws, rws = bridge_call(bridge, keep)
    return bridge, io, cws, rws


def replay(script: list, keep: bool = False, calls: int = 1):
    """Run the script through fresh bridge calls (``calls`` of them on one bridge, each
    message fed to every call in turn, one pacer for all: their state no longer fits the
    caches, as at hundreds of calls); returns (seconds of CPU, carrier ws, realtime ws) (the first call's)."""
    return asyncio.run(_replay(script, keep, calls))


async def _replay(script, keep, calls=1):
    bridge, io, cws, rws = _bridge(keep)
    ios = [io] + [_bridge(keep, bridge)[1] for _ in range(calls - 1)]
    for x in ios:
        bridge.active[x.id] = x
    carriers = [x.ws.data_received for x in ios]
    models = [x.rt.data_received for x in ios]
    now = [0.0]
    saved, server_mod._now_ms = server_mod._now_ms, lambda: now[0]
    try:
        cpu = _feed(script, carriers, models, now, bridge._pace_due)
    finally:
        server_mod._now_ms = saved
    for x in ios:
        assert x.failure is None and not x.done.done(), x.failure
    return cpu / calls, cws, rws


def replay_relay(script: list, calls: int = 1):
    """The same inbound bytes through two websockets forwarding each message unchanged."""
    return asyncio.run(_replay_relay(script, calls))


async def _replay_relay(script, calls=1):
    carriers, models = [], []
    for _ in range(calls):
        cws = WebSocket(client=False, keep_handshake=False)
        rws = WebSocket(client=True, keep_handshake=False)
        open_ws(cws, False)
        open_ws(rws, False)
        cws.set_handlers(lambda msg, binary, rws=rws: rws.send(msg, binary) if rws.state == OPEN else None)
        rws.set_handlers(lambda msg, binary, cws=cws: cws.send(msg, binary) if cws.state == OPEN else None)
        carriers.append(cws.data_received)
        models.append(rws.data_received)
    return _feed(script, carriers, models) / calls, cws, rws


def _feed(script, carriers, models, now=None, tick=None) -> float:
    """Every message of the script to every call's socket (ticks to ``tick``, the clock in
    ``now[0]``); returns the CPU seconds it took."""
    t0 = time.process_time()
    for t, kind, data in script:
        if now is not None:
            now[0] = t
        if kind == "carrier":
            for f in carriers:
                f(data)
        elif kind == "model":
            for f in models:
                f(data)
        elif tick is not None:
            tick(t)
    return time.process_time() - t0


def digest(cws, rws) -> str:
    """A hash of every message the bridge wrote to each socket (the realtime side unmasked)."""
    h = hashlib.sha256()
    for ws, parser in ((cws, FrameParser(client=True, max_size=1 << 24)), (rws, FrameParser(client=False, max_size=1 << 24))):
        for data in ws.transport.chunks:
            for op, msg in parser.feed(data):
                h.update(b"%d:%d:" % (op, len(msg)) + msg)
        h.update(b"|")
    return h.hexdigest()


def counts(script: list) -> dict:
    """Messages per kind in the script (what one call-second holds)."""
    p = FrameParser(client=False, max_size=1 << 24)
    q = FrameParser(client=True, max_size=1 << 24)
    c = {"media": 0, "mark": 0, "model": 0, "tick": 0}
    for _, kind, data in script:
        if kind == "tick":
            c["tick"] += 1
        elif kind == "model":
            c["model"] += len(q.feed(data))
        else:
            for _, msg in p.feed(data):
                c["mark" if b'"event":"mark"' in msg else "media"] += 1
    return c


if __name__ == "__main__":
    seconds = int(next((a for a in sys.argv[1:] if a.isdigit()), "30"))
    calls = int(next((a[8:] for a in sys.argv[1:] if a.startswith("--calls=")), "1"))
    script = record(seconds)
    print("per call-second:", {k: v / seconds for k, v in counts(script).items()})
    _, c, r = replay(script, keep=True)
    print("digest", digest(c, r), "writes carrier/realtime per s", c.transport.writes / seconds,
          r.transport.writes / seconds)
    if "--profile" in sys.argv:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        for _ in range(3):
            replay(script)
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(30)
    else:
        for name, fn in (("rtfast", replay), ("relay", replay_relay)):
            best = min(fn(script, calls=calls)[0] for _ in range(15 if calls == 1 else 3))
            print(f"{name:8s} {best / seconds * 1e6:8.1f} us per call-second ({calls} calls)")
