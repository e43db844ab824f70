"""The asyncio bridge end to end: a simulated Twilio call through rtfast's
bridge to the embedded Realtime server, all on loopback."""

import asyncio
import base64
import logging

import pytest

from carrier_sim import TwilioCall, silence, tone
from rtfast.bridge.server import BridgeServer, twilio_signature
from rtfast.server import RealtimeServer, Script


async def settle(server, predicate, timeout=10.0, state=lambda: None):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, f"timed out; state: {state()}"
        await asyncio.sleep(0.01)


def sent_types(rt):
    return [m.get("type") for m in rt.received[0]]


async def test_a_call_with_barge_in_dtmf_and_hang_up(caplog):
    caplog.set_level(logging.INFO, logger="rtfast.bridge")
    script = Script(reply_text="Thanks for calling, how can I help you today?", audio_ms=3000)
    async with RealtimeServer(script=script) as rt, BridgeServer(realtime_url=rt.url, api_key="sk-test",
                                                                  lead_ms=100) as bridge:
        before = set(asyncio.all_tasks())
        async with TwilioCall(bridge.url) as call:
            await call.say(silence(300) + tone(800) + silence(900))          # the caller speaks, then pauses
            await call.wait_for(lambda: call.played_ms >= 600)              # the agent's reply is playing
            assert call.marks_echoed                                         # marks come back as audio plays
            await call.say(tone(600) + silence(900))                         # ... and the caller talks over it
            await call.wait_for(lambda: call.clears >= 1)
            await settle(rt, lambda: "conversation.item.truncate" in sent_types(rt)
                         or "conversation.item.delete" in sent_types(rt),
                         state=lambda: (sent_types(rt)[-8:], [io.call.summary() for io in bridge.active.values()],
                                        call.played_ms, len(call.marks_echoed)))
            await call.dtmf("7")
            await call.hang_up()
            await settle(bridge, lambda: bridge.summaries)
        sent = rt.received[0]
        types = [m.get("type") for m in sent]
        assert types[0] == "session.update"
        assert sent[0]["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        appends = [m for m in sent if m["type"] == "input_audio_buffer.append"]
        assert len(appends) == (300 + 800 + 900 + 600 + 900) // 20
        # passthrough: the carrier's payloads reach the model unchanged, in order
        assert [a["audio"].encode() for a in appends] == call.sent_payloads
        truncate = next(m for m in sent if m["type"] == "conversation.item.truncate")
        # truncated where the caller stopped hearing it: not beyond what was played
        played_when_cleared = len(call.marks_echoed) * 20
        assert 0 < truncate["audio_end_ms"] <= played_when_cleared + 20
        assert truncate["audio_end_ms"] < 3000
        summary = bridge.summaries[0]
        assert summary["barge_ins"] == 1 and summary["ended"] == "stop" and summary["errors"] == 0
        assert "DTMF 7" in caplog.text and "summary" in caplog.text
        await asyncio.sleep(0.05)
        assert set(asyncio.all_tasks()) - before == set()            # nothing left after hang-up
        assert not bridge.active


async def test_outbound_audio_is_paced_in_20ms_frames_not_dumped():
    async with RealtimeServer(script=Script(reply_text="A long answer.", audio_ms=2000)) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test", lead_ms=100) as bridge:
        async with TwilioCall(bridge.url) as call:
            await call.say(tone(600) + silence(900))
            await call.wait_for(lambda: call.played_ms >= 40)
            t0 = asyncio.get_running_loop().time()
            await asyncio.sleep(0.3)
            # 300 ms later: at most ~300 ms + lead + startup of audio has been sent, not 2 s
            assert call.played_ms <= 300 + 100 + 60 + 40 + 40
            await call.wait_for(lambda: call.played_ms >= 2000, timeout=5)
            elapsed = asyncio.get_running_loop().time() - t0
            assert elapsed >= 1.7                                   # real time, give or take the lead
            media = [m for m in call.messages if m["event"] == "media"]
            assert all(len(m["media"]["payload"]) == 216 for m in media)   # steady 20 ms frames
            assert len(call.marks_received) == len(media)
            await call.hang_up()


async def test_bad_carrier_input_is_logged_and_the_other_calls_carry_on(caplog):
    caplog.set_level(logging.WARNING, logger="rtfast.bridge")
    async with RealtimeServer(script=Script(reply_text="ok", audio_ms=200)) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test") as bridge:
        async with TwilioCall(bridge.url, sid="MZbad") as bad, TwilioCall(bridge.url, sid="MZgood") as good:
            await bad.send_raw(b"{not json")
            await bad.send_raw(b'{"event":"media","streamSid":"MZbad","media":{"payload":"!!!!"}}')
            await good.say(tone(400) + silence(900))
            await good.wait_for(lambda: good.played_ms >= 200)
            await bad.say(tone(100))
            await good.hang_up()
            await bad.hang_up()
            await settle(bridge, lambda: len(bridge.summaries) == 2)
    assert "bad frame" in caplog.text
    errors = sorted(s["errors"] for s in bridge.summaries)
    assert errors == [0, 2]


async def test_media_before_start_is_an_error_not_a_crash(caplog):
    caplog.set_level(logging.WARNING, logger="rtfast.bridge")
    from websockets.asyncio.client import connect
    async with RealtimeServer() as rt, BridgeServer(realtime_url=rt.url, api_key="sk-test") as bridge:
        async with connect(bridge.url) as ws:
            await ws.send(b'{"event":"media","streamSid":"x","media":{"payload":"/w=="}}', text=True)
            await ws.send(b'{"event":"stop","streamSid":"x"}', text=True)
            await settle(bridge, lambda: bridge.summaries)
    assert "before start" in caplog.text


async def test_carrier_disconnecting_mid_reply_ends_the_call_cleanly():
    async with RealtimeServer(script=Script(reply_text="a long reply", audio_ms=4000)) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test") as bridge:
        call = TwilioCall(bridge.url)
        await call.__aenter__()
        await call.say(tone(500) + silence(900))
        await call.wait_for(lambda: call.played_ms >= 100)
        await call.ws.close()                                   # the phone line drops
        await call.__aexit__(None, None, None)
        await settle(bridge, lambda: bridge.summaries)
        await settle(rt, lambda: all(c.closed for c in rt.connections))
    assert bridge.summaries[0]["ended"] == "carrier_closed"


async def test_realtime_unreachable_ends_the_call_with_a_clear_log(caplog):
    caplog.set_level(logging.ERROR, logger="rtfast.bridge")
    async with BridgeServer(realtime_url="ws://127.0.0.1:9/v1/realtime", api_key="sk-test") as bridge:
        async with TwilioCall(bridge.url):
            await settle(bridge, lambda: bridge.summaries)
    assert "realtime connection failed" in caplog.text


async def test_twilio_signature_is_checked(caplog):
    token = "twilio-token"
    async with RealtimeServer() as rt:
        bridge = BridgeServer(realtime_url=rt.url, api_key="sk-test", twilio_auth_token=token,
                              trust_host_header=True)
        async with bridge:
            url = bridge.url + "stream?x=1"
            signed = twilio_signature(token, f"wss://127.0.0.1:{bridge.port}/stream?x=1")
            async with TwilioCall(url, headers={"X-Twilio-Signature": signed}) as call:
                await call.hang_up()
                await settle(bridge, lambda: bridge.summaries)
            from websockets.exceptions import InvalidStatus
            with pytest.raises(InvalidStatus) as info:
                async with TwilioCall(url, headers={"X-Twilio-Signature": "forged"}):
                    pass
            assert info.value.response.status_code == 403
            # Forged headers that are not even comparable text are refused the same way, quietly.
            for forged in ([b"X-Twilio-Signature: \xe9t\xe9"], [b"X-Twilio-Signature: " + signed.encode()] * 2):
                reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
                writer.write(b"\r\n".join([
                    b"GET /stream?x=1 HTTP/1.1", b"Host: 127.0.0.1:%d" % bridge.port, b"Upgrade: websocket",
                    b"Connection: Upgrade", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                    b"Sec-WebSocket-Version: 13", *forged, b"", b""]))
                assert (await reader.readline()).startswith(b"HTTP/1.1 403")
                writer.close()
    assert "process_request failed" not in caplog.text


def test_twilio_signature_matches_twilios_documented_example():
    # The example of twilio-php's request validation docs: URL + sorted POST params, HMAC-SHA1, base64.
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}
    assert twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == \
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="


async def test_the_twilio_bridge_example_serves_a_call():
    import os
    import socket
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN")}
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "twilio_bridge.py")
    proc = await asyncio.create_subprocess_exec(sys.executable, example, "--port", str(port), "--seconds", "20",
                                                env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        while b"Twilio bridge listening" not in (line := await proc.stdout.readline()):
            assert line, "the example exited early"
        async with TwilioCall(f"ws://127.0.0.1:{port}/stream") as call:
            await call.say(silence(200) + tone(600) + silence(900))
            await call.wait_for(lambda: call.played_ms >= 200)
            await call.hang_up()
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_carrier_that_stops_reading_ends_only_its_own_call(caplog):
    import socket

    from rtfast._wsframe import FrameWriter

    caplog.set_level(logging.ERROR, logger="rtfast.bridge")
    async with RealtimeServer(script=Script(reply_text="a very long reply", audio_ms=30000)) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test", lead_ms=100) as bridge:
        bridge.max_backlog = 4000
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", bridge.port))
        # A raw carrier that upgrades, speaks, then never reads again (buffers kept small).
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        async with TwilioCall(bridge.url) as good:
            stuck_io = next(io for io in bridge.active.values() if io.ws.remote_address[1] == sock.getsockname()[1])
            # No kernel autotuning: the bridge's own buffer must be what fills up.
            stuck_io.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            audio = tone(800) + silence(1200)                      # the caller speaks, then waits
            frames = [b'{"event":"start","streamSid":"MZstuck","start":{"streamSid":"MZstuck",'
                      b'"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}']
            frames += [b'{"event":"media","streamSid":"MZstuck","media":{"payload":"%s"}}'
                       % base64.b64encode(audio[i:i + 160]) for i in range(0, len(audio), 160)]
            writer.write(FrameWriter(client=True).frames(frames))
            await good.say(tone(400) + silence(900))
            await settle(bridge, lambda: bridge.summaries, timeout=20)
            assert "carrier not reading" in bridge.summaries[0]["error"]
            assert "carrier not reading" in caplog.text
            await good.wait_for(lambda: good.played_ms >= 200)     # the other call carries on
            await good.hang_up()
        writer.close()


async def test_the_realtime_leg_follows_the_proxy_environment(monkeypatch):
    from test_proxy import PROXY_VARS, Proxy

    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    async with RealtimeServer(script=Script(reply_text="ok", audio_ms=200)) as rt, Proxy() as proxy, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test") as bridge:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        async with TwilioCall(bridge.url) as call:
            await call.say(tone(400) + silence(900))
            await call.wait_for(lambda: call.played_ms >= 200)
            await call.hang_up()
        assert proxy.targets == [f"127.0.0.1:{rt.port}"]


# -- bounded memory and logs under bad input -------------------------------------------------


async def _silent_realtime():
    """A 'Realtime server' that accepts TCP and never answers the upgrade."""
    async def handle(reader, writer):
        await reader.read()
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/realtime"


async def test_frames_held_while_the_realtime_socket_opens_are_bounded(caplog):
    import re

    import websockets

    caplog.set_level(logging.INFO, logger="rtfast.bridge")
    silent, url = await _silent_realtime()
    async with silent, BridgeServer(realtime_url=url, api_key="sk-test", realtime_open_timeout=30) as bridge:
        bridge.max_held = 64 * 1024
        t0 = asyncio.get_running_loop().time()
        async with TwilioCall(bridge.url) as call:
            try:
                await call.say(silence(30_000))              # ~400 KB of appends, as fast as possible
            except websockets.ConnectionClosed:
                pass                                         # the bridge ended the call mid-flood
            await settle(bridge, lambda: bridge.summaries)
        elapsed = asyncio.get_running_loop().time() - t0
    assert elapsed < 10                                      # ended by the bound, not by the 30 s open timeout
    error = bridge.summaries[0]["error"]
    held, limit = map(int, re.search(r"sent (\d+) bytes meanwhile \(limit (\d+)\)", error).groups())
    assert limit == 64 * 1024 and limit < held <= limit + 400          # at most one frame over
    ending = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(ending) == 1 and "still opening" in ending[0].getMessage()


async def test_opening_the_realtime_socket_is_bounded_in_time(caplog):
    caplog.set_level(logging.ERROR, logger="rtfast.bridge")
    silent, url = await _silent_realtime()
    async with silent, BridgeServer(realtime_url=url, api_key="sk-test", realtime_open_timeout=0.3) as bridge:
        t0 = asyncio.get_running_loop().time()
        async with TwilioCall(bridge.url):
            await settle(bridge, lambda: bridge.summaries, timeout=5)
        assert asyncio.get_running_loop().time() - t0 < 3
    assert bridge.summaries[0]["error"].startswith("ConnectTimeout: ")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "realtime connection failed" in lines[0]
    assert "did not answer the websocket upgrade within 0.3 s" in lines[0]


async def test_summaries_keep_a_bounded_window_and_go_to_the_callback():
    got = []
    async with RealtimeServer() as rt, BridgeServer(realtime_url=rt.url, api_key="sk-test", summaries_kept=2,
                                                    on_summary=got.append) as bridge:
        for n in range(1, 4):
            async with TwilioCall(bridge.url) as call:
                await call.say(silence(100))
                await call.hang_up()
                await settle(bridge, lambda: len(got) == n)
    assert [s["call"] for s in got] == ["call-1", "call-2", "call-3"]
    assert [s["call"] for s in bridge.summaries] == ["call-2", "call-3"]       # memory stays flat


async def test_bad_carrier_frames_are_logged_once_then_counted_per_call(caplog):
    caplog.set_level(logging.WARNING, logger="rtfast.bridge")

    def bad_lines(call_id):
        return [r.getMessage() for r in caplog.records if "bad frame" in r.getMessage()
                and r.getMessage().startswith(f"call {call_id}:")]

    async with RealtimeServer() as rt, BridgeServer(realtime_url=rt.url, api_key="sk-test") as bridge:
        bridge.bad_frame_log_interval = 1.0
        async with TwilioCall(bridge.url, sid="MZa") as a, TwilioCall(bridge.url, sid="MZb") as b:
            for _ in range(50):
                await a.send_raw(b"{not json")
            await b.send_raw(b"{not json")
            await settle(bridge, lambda: sum(io.call.errors for io in bridge.active.values()) == 51)
            assert len(bad_lines("call-1")) == 1 and "more" not in bad_lines("call-1")[0]
            assert len(bad_lines("call-2")) == 1                  # each call has its own limit
            await asyncio.sleep(1.05)
            await a.send_raw(b"{not json")                        # after the interval: the count
            for _ in range(3):
                await a.send_raw(b"{not json")                    # within it again: quiet
            await settle(bridge, lambda: bridge.active["call-1"].call.errors == 54)
            assert len(bad_lines("call-1")) == 2 and "call-1: 50 more bad frames; latest:" in bad_lines("call-1")[1]
            await a.hang_up()
            await b.hang_up()
            await settle(bridge, lambda: len(bridge.summaries) == 2)
    lines = bad_lines("call-1")
    assert len(lines) == 3 and lines[2] == "call call-1: 3 more bad frames (not logged one by one)"
    assert sorted(s["errors"] for s in bridge.summaries) == [1, 54]


async def test_the_summary_line_gives_the_calls_duration_and_audio_each_way(caplog):
    import re

    caplog.set_level(logging.INFO, logger="rtfast.bridge")
    async with RealtimeServer(script=Script(reply_text="ok", audio_ms=400)) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test") as bridge:
        async with TwilioCall(bridge.url) as call:
            await call.say(tone(400) + silence(900))
            await call.wait_for(lambda: call.played_ms >= 400)
            await call.hang_up()
            await settle(bridge, lambda: bridge.summaries)
    summary = bridge.summaries[0]
    line = next(r.getMessage() for r in caplog.records if "summary:" in r.getMessage())
    m = re.search(r"summary: (\d+\.\d) s, audio (\d+\.\d) s from carrier, (\d+\.\d) s to carrier", line)
    assert m, line
    assert [float(x) for x in m.groups()] == [
        round(summary.get(k, 0) / 1000, 1) for k in ("duration_ms", "audio_ms_from_carrier", "audio_ms_to_carrier")]


def test_the_pacer_sends_a_reply_that_arrived_at_once_in_real_time(monkeypatch):
    """Two seconds of the model's audio arrive in one burst: the pacer's ticks (not the
    model's messages) let it out 20 ms at a time, never more than the lead ahead, all of it
    by the end; then the call leaves the set of calls the pacer looks at."""
    from memtransport import bridge_call
    from rtfast._wsframe import FrameParser, FrameWriter
    from rtfast.bridge import server as server_mod

    now = [0.0]
    monkeypatch.setattr(server_mod, "_now_ms", lambda: now[0])
    start = (b'{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1",'
             b'"tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},'
             b'"customParameters":{}},"streamSid":"MZ1"}')
    updated = (b'{"type":"session.updated","event_id":"e0","session":{"type":"realtime","id":"s1","audio":{"input":'
               b'{"format":{"type":"audio/pcmu"}},"output":{"format":{"type":"audio/pcmu"}}}}}')
    delta = base64.b64encode(bytes(range(256)) * 4)[:1068]      # 100 ms of μ-law

    async def run() -> list:
        bridge = BridgeServer(realtime_url="ws://127.0.0.1:9/", api_key="sk-test", gc_freeze=False, lead_ms=100)
        io, cws, rws = bridge_call(bridge)
        cws.data_received(FrameWriter(client=True).frames([start]))
        rws.data_received(FrameWriter(client=False).frames([updated] + [
            b'{"type":"response.output_audio.delta","event_id":"e","response_id":"r1","item_id":"i1",'
            b'"output_index":0,"content_index":0,"delta":"%s"}' % delta] * 20))
        parser, sent, writes = FrameParser(client=True, max_size=1 << 20), [], 0
        for step in range(1, 300):                  # 3 s of 10 ms ticks
            now[0] = step * 10.0
            bridge._pace_due(now[0])
            chunks, cws.transport.chunks = cws.transport.chunks, []
            writes += len(chunks)
            media = sum(m.startswith(b'{"event":"media"') for c in chunks for _, m in parser.feed(c))
            sent.append(media)
            # never more than the lead (100 ms, 5 chunks) ahead of the clock
            assert sum(sent) * 20 <= now[0] + 100 + 20, (now[0], sum(sent))
        assert not bridge._pacing                     # drained: the pacer no longer looks at it
        assert writes <= 50                           # topped up two chunks a write, not one a tick
        return sent

    sent = asyncio.run(run())
    assert sum(sent) == 100                           # 2 s in 20 ms chunks
    assert sum(sent[:100]) < 60                       # by 1 s, about half: paced, not dumped
