"""Operations of one bridge process: health, readiness, metrics, admission,
drain on SIGTERM and JSON logs, against real sockets on loopback."""

import asyncio
import http.client
import json
import logging
import re
import signal
import socket
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus

from carrier_sim import TwilioCall, silence, tone
from child import CWD, child_env
from rtfast.bridge.ops import FrameTimes, JsonFormatter, Ops, merge
from rtfast.bridge.server import BridgeServer, build_parser
from rtfast.bridge.workers import available_cores
from rtfast.server import RealtimeServer, Script



def get(port: int, path: str, timeout: float = 5.0):
    """A plain HTTP/1.1 GET (no upgrade): (status, content type, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        conn.close()


async def aget(port: int, path: str):
    return await asyncio.to_thread(get, port, path)


def metrics(text: str) -> dict:
    """{(sample name, frozenset of labels): value} from the Prometheus text format."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def m(values: dict, name: str, **labels) -> float:
    return values[(name, frozenset(labels.items()))]


async def open_http(port: int):
    """A TCP connection to ask one plain HTTP question later (after the listening socket closed)."""
    return await asyncio.open_connection("127.0.0.1", port)


async def ask(conn, path: str):
    reader, writer = conn
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bridge\r\n\r\n".encode())
    raw = await asyncio.wait_for(reader.read(), 5)              # the bridge closes after answering
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


async def settle(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.01)


# -- sans-I/O parts ---------------------------------------------------------------------------------

def test_frame_times_buckets_and_merge_sums_processes():
    ft = FrameTimes((10, 100))
    for ns in (5, 10, 11, 100, 1000):
        ft.observe(ns)
    assert ft.counts == [2, 2, 1] and ft.sum_ns == 1126         # le=10: 5, 10; le=100: 11, 100; above: 1000
    a = {"active_calls": 2, "ended": {"stop": 3}, "frame_time_counts": [1, 2, 0], "frame_time_bounds_ns": [10, 100]}
    b = {"active_calls": 5, "ended": {"stop": 1, "error": 2}, "frame_time_counts": [0, 1, 4],
         "frame_time_bounds_ns": [10, 100]}
    assert merge([a, b]) == {"active_calls": 7, "ended": {"stop": 4, "error": 2}, "frame_time_counts": [1, 3, 4],
                             "frame_time_bounds_ns": [10, 100]}


def test_readiness_says_why_and_max_calls_is_checked():
    admitted = [0]
    ops = Ops(max_calls=2, live=list, admitted=lambda: admitted[0])
    assert ops.refusal() is None and ops.answer("/readyz").status_code == 200
    admitted[0] = 2
    r = ops.answer("/readyz")
    assert r.status_code == 503 and r.body == b"at the call limit: 2 of 2 calls\n"
    ops.draining = True
    assert ops.answer("/readyz").body == b"draining: no new calls\n"
    assert ops.answer("/healthz").status_code == 200               # alive while draining
    with pytest.raises(ValueError, match="max_calls"):
        Ops(max_calls=0, live=list, admitted=int)
    parser = build_parser()
    assert parser.parse_args([]).drain_timeout == 3600 and parser.parse_args([]).max_calls is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--max-calls", "0"])


def test_json_log_lines_carry_the_call_id():
    record = logging.LogRecord("rtfast.bridge", logging.INFO, __file__, 1, "call %s: DTMF %s", ("call-7", "5"), None)
    record.call = "call-7"                       # what the _CallIO LoggerAdapter adds
    line = JsonFormatter().format(record)
    assert "\n" not in line
    obj = json.loads(line)
    assert obj["level"] == "INFO" and obj["logger"] == "rtfast.bridge" and obj["call"] == "call-7"
    assert obj["message"] == "call call-7: DTMF 5" and obj["time"].endswith("Z")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("rtfast.bridge", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line and "call" not in json.loads(line) and "boom" in json.loads(line)["exception"]


# -- on the bridge's port ----------------------------------------------------------------------------

async def test_health_readiness_and_metrics_answer_plain_http_on_the_carrier_port():
    script = Script(reply_text="Hello there, how can I help?", audio_ms=1500)
    async with RealtimeServer(script=script) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test") as bridge:
        assert await aget(bridge.port, "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
        assert (await aget(bridge.port, "/readyz"))[::2] == (200, "ready\n")
        async with TwilioCall(bridge.url) as call:
            await call.say(silence(300) + tone(800) + silence(1900))      # 150 frames: one is timed
            await call.wait_for(lambda: call.played_ms >= 400)
            status, ctype, body = await aget(bridge.port, "/metrics?x=1")
            assert status == 200 and ctype.startswith("text/plain; version=")
            live = metrics(body)
            assert m(live, "rtfast_active_calls") == 1
            io = next(iter(bridge.active.values()))
            assert m(live, "rtfast_frames_total", direction="from_carrier") <= io.call.frames_from_carrier
            assert m(live, "rtfast_frames_total", direction="from_carrier") >= 2 + 150
            assert m(live, "rtfast_carrier_frame_seconds_count") >= 1
            assert m(live, "rtfast_carrier_frame_seconds_bucket", le="+Inf") == \
                m(live, "rtfast_carrier_frame_seconds_count")
            await call.hang_up()
            await settle(lambda: bridge.summaries)
        summary = bridge.summaries[0]
        done = metrics((await aget(bridge.port, "/metrics"))[2])
        assert m(done, "rtfast_active_calls") == 0
        assert m(done, "rtfast_calls_total", ended="stop") == 1
        for direction in ("from_carrier", "to_carrier", "from_realtime", "to_realtime"):
            assert m(done, "rtfast_frames_total", direction=direction) == summary[f"frames_{direction}"]
        assert m(done, "rtfast_audio_bytes_total", direction="from_carrier") == summary["audio_bytes_in"] == 3000 * 8
        assert m(done, "rtfast_audio_bytes_total", direction="to_carrier") == summary["audio_bytes_out"] > 0
        for name in ("rtfast_barge_ins_total", "rtfast_tool_calls_total", "rtfast_realtime_reconnects_total",
                     "rtfast_audio_underruns_total", "process_cpu_seconds_total"):
            assert (name, frozenset()) in done
        # Any other path is still a websocket endpoint: a plain GET there is refused by the handshake.
        assert (await aget(bridge.port, "/stream"))[0] == 426


async def test_probes_need_no_twilio_signature():
    async with RealtimeServer() as rt, BridgeServer(realtime_url=rt.url, api_key="sk-test", twilio_auth_token="tok",
                                                    public_url="wss://example.com/s") as bridge:
        assert (await aget(bridge.port, "/healthz"))[0] == 200
        assert (await aget(bridge.port, "/readyz"))[0] == 200
        with pytest.raises(InvalidStatus) as info:
            async with TwilioCall(bridge.url + "s"):
                pass
        assert info.value.response.status_code == 403


async def test_max_calls_refuses_the_upgrade_with_503_and_readyz_says_so():
    async with RealtimeServer() as rt, BridgeServer(realtime_url=rt.url, api_key="sk-test", max_calls=2) as bridge:
        # Three at once: places are held from the upgrade on, so exactly one is refused.
        opened = await asyncio.gather(*(TwilioCall(bridge.url, sid=f"MZ{i}").__aenter__() for i in range(3)),
                                      return_exceptions=True)
        calls = [c for c in opened if isinstance(c, TwilioCall)]
        refused = [e for e in opened if not isinstance(e, TwilioCall)]
        assert len(calls) == 2 and len(refused) == 1
        assert isinstance(refused[0], InvalidStatus) and refused[0].response.status_code == 503
        assert b"at the call limit: 2 of 2" in refused[0].response.body
        status, _, body = await aget(bridge.port, "/readyz")
        assert (status, body) == (503, "at the call limit: 2 of 2 calls\n")
        values = metrics((await aget(bridge.port, "/metrics"))[2])
        assert m(values, "rtfast_calls_total", ended="refused") == 1 and m(values, "rtfast_max_calls") == 2
        # One hangs up: a place is free again.
        await calls[0].hang_up()
        await calls[0].__aexit__(None, None, None)
        await settle(lambda: len(bridge.active) == 1)
        assert (await aget(bridge.port, "/readyz"))[0] == 200
        async with TwilioCall(bridge.url, sid="MZnext") as again:
            await again.say(tone(200))
        await calls[1].__aexit__(None, None, None)


async def test_drain_stops_accepting_lets_calls_finish_and_can_time_out():
    script = Script(reply_text="Hello there, how can I help?", audio_ms=4000, realtime=True)
    async with RealtimeServer(script=script) as rt, BridgeServer(realtime_url=rt.url, api_key="sk-test") as bridge:
        port = bridge.port
        async with TwilioCall(bridge.url) as call:
            await call.say(silence(200) + tone(600) + silence(800))
            await call.wait_for(lambda: call.played_ms >= 100)
            early = await open_http(port)                    # accepted before the drain: still answered
            drain = asyncio.create_task(bridge.drain(timeout=30))
            await asyncio.sleep(0.05)
            assert await ask(early, "/readyz") == (503, "draining: no new calls\n")
            with pytest.raises(ConnectionRefusedError):      # the listening socket is closed
                await asyncio.open_connection("127.0.0.1", port)
            heard = call.played_ms
            await call.wait_for(lambda: call.played_ms >= heard + 500)   # the call goes on
            assert not drain.done()
            await call.hang_up()
            assert await asyncio.wait_for(drain, 10) is True
        assert bridge.summaries[0]["ended"] == "stop"

    # A call that outlasts the drain's timeout: drain says so, close() ends it.
    async with RealtimeServer() as rt, BridgeServer(realtime_url=rt.url, api_key="sk-test") as bridge:
        async with TwilioCall(bridge.url) as call:
            await call.say(tone(100))
            await settle(lambda: bridge.active)
            t0 = time.monotonic()
            assert await bridge.drain(timeout=0.2) is False
            assert time.monotonic() - t0 < 2
            assert bridge.ops.refusal() == "draining: no new calls"
            await bridge.close()
            assert not bridge.active
            values = bridge.ops.snapshot()
            assert values["ended"] == {"shutdown": 1}


async def test_a_late_pacer_counts_stalls_and_underruns():
    script = Script(reply_text="Hello there, how can I help?", audio_ms=3000)      # all of it at once
    async with RealtimeServer(script=script) as rt, BridgeServer(realtime_url=rt.url, api_key="sk-test") as bridge:
        async with TwilioCall(bridge.url) as call:
            await call.say(silence(200) + tone(600) + silence(800))
            await call.wait_for(lambda: call.played_ms >= 200)
            io = next(iter(bridge.active.values()))
            await settle(lambda: io.call.buffered_ms >= 1000)          # the reply waits in the bridge
            # A loaded machine may have made some already: count from here.
            stalls, underruns = bridge.ops.pacer_stalls, bridge.ops.underruns
            time.sleep(0.3)                                            # the event loop stalls 300 ms
            await settle(lambda: bridge.ops.pacer_stalls > stalls)
            assert bridge.ops.underruns == underruns + 1               # the one call with audio waiting
            await call.hang_up()


# -- the command: SIGTERM drains --------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bridge_env() -> dict:
    return child_env(("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN"))


async def start_bridge(*args: str):
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtfast", "bridge", "--local", "--listen", f"127.0.0.1:{port}", *args,
        env=bridge_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=CWD)
    out = b""
    while b"listening on" not in out:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, out.decode()
        out += line
    return proc, port


async def test_sigterm_drains_the_bridge_and_it_exits_when_the_last_call_ends():
    proc, port = await start_bridge("--log-format", "json")
    try:
        async with TwilioCall(f"ws://127.0.0.1:{port}/") as call:
            await call.say(silence(200) + tone(800) + silence(900))
            await call.wait_for(lambda: call.played_ms >= 100)
            early = await open_http(port)                  # a probe connected just before the signal
            await asyncio.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            await settle(lambda: not _listening(port), timeout=5)
            assert await ask(early, "/readyz") == (503, "draining: no new calls\n")
            with pytest.raises(ConnectionRefusedError):             # new connections refused
                await asyncio.open_connection("127.0.0.1", port)
            heard = call.played_ms
            await call.say(tone(800) + silence(900))                 # the call goes on: the model answers again
            await call.wait_for(lambda: call.played_ms >= heard + 400)
            assert proc.returncode is None
            await call.hang_up()
            assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = [json.loads(line) for line in (await proc.stderr.read()).decode().splitlines() if line.strip()]
    # The default is a worker per core: call ids say which worker (call-2.1), and so do the lines.
    call_id = next(obj["call"] for obj in lines if obj["message"].endswith("carrier connected from 127.0.0.1"))
    call_lines = [obj for obj in lines if obj["message"].startswith(f"call {call_id}:")]
    assert len(call_lines) >= 2 and all(obj["call"] == call_id for obj in call_lines)
    workers = available_cores()
    assert re.fullmatch(r"call-[1-9]\.1" if workers > 1 else "call-1", call_id)
    if workers > 1:
        assert all(obj["worker"] == int(call_id[5]) for obj in call_lines)
    assert any("SIGTERM: draining" in obj["message"] for obj in lines)
    assert any(obj["message"] == "drained: no call in progress" for obj in lines)
    assert {"time", "level", "logger", "message"} <= set(lines[0])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
async def test_a_second_signal_during_a_drain_ends_at_once(second):
    proc, port = await start_bridge("--drain-timeout", "600")
    try:
        async with TwilioCall(f"ws://127.0.0.1:{port}/") as call:
            await call.say(silence(200) + tone(300))
            await settle(lambda: m(metrics(get(port, "/metrics")[2]), "rtfast_active_calls") == 1)
            proc.send_signal(signal.SIGTERM)
            await settle(lambda: not _listening(port), timeout=5)
            await asyncio.sleep(0.2)
            assert proc.returncode is None                  # draining: the call holds the process
            t0 = time.monotonic()
            proc.send_signal(second)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
            assert time.monotonic() - t0 < 5
            await asyncio.wait_for(call.ws.wait_closed(), 5)     # the call was cut
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = (await proc.stderr.read()).decode()
    assert f"{second.name}: ending 1 calls in progress" in err
