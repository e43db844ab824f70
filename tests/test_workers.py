"""``rtfast bridge --workers N``, the command itself on loopback: calls spread over
the workers, admission and scrapes cover the group, a dead worker comes back,
SIGTERM drains every worker. (The shared numbers alone: test_workers_group.py.)"""

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time

import pytest
from websockets.exceptions import InvalidStatus

from carrier_sim import TwilioCall, silence, tone
from child import CWD, child_env
from test_ops import get, m, metrics

def val(values: dict, name: str, **labels) -> float:
    """A sample's value, 0 when the family has no such sample yet."""
    return values.get((name, frozenset(labels.items())), 0)


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreading is Linux's")


# -- the command ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bridge:
    """``rtfast bridge --workers N --local --log-format json`` in a child process;
    its JSON log lines are read as they come."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.port = free_port()
        self.lines: list[dict] = []
        self.out: list[str] = []

    async def __aenter__(self):
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rtfast", "bridge", "--local", "--listen", f"127.0.0.1:{self.port}",
            "--log-format", "json", *self.args, env=child_env(("OPENAI_API_KEY", "TWILIO_AUTH_TOKEN")),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=CWD)
        self._err = asyncio.create_task(self._read_err())
        while True:
            line = (await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode()
            assert line, f"the bridge exited: {self.out} {self.lines}"
            self.out.append(line)
            if "listening on" in line:
                return self

    async def _read_err(self) -> None:
        while line := await self.proc.stderr.readline():
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                self.lines.append({"message": line.decode(), "level": "RAW"})

    async def __aexit__(self, *exc) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            for pid in self.worker_pids().values():      # they would drain, given time
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            await self.proc.wait()
        await asyncio.wait_for(self._err, 5)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def scrape(self) -> dict:
        status, _, body = get(self.port, "/metrics")
        assert status == 200
        return metrics(body)

    def worker_pids(self) -> dict[int, int]:
        pids = {}
        for obj in self.lines:
            if found := re.fullmatch(r"worker (\d+) started \(pid (\d+)\)", obj["message"]):
                pids[int(found[1])] = int(found[2])
        return pids

    def worker_of(self, call_sid: str) -> int | None:
        for obj in self.lines:
            if f"(carrier call {call_sid}," in obj["message"]:
                return obj["worker"]
        return None

    async def wait(self, predicate, timeout: float = 15.0, what: str = "") -> None:
        end = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < end, f"timed out waiting for {what}; log: {self.lines[-5:]}"
            await asyncio.sleep(0.05)


async def open_calls(bridge: Bridge, n: int, tag: str, both: bool = False) -> list[TwilioCall]:
    """n calls; with both=True, more (up to 32) until each of two workers has one: the
    kernel spreads connections by a hash of their addresses, so n alone can land on one."""
    calls = []

    async def one() -> None:
        i = len(calls)
        call = TwilioCall(bridge.url, sid=f"MZ{tag}{i}", call_sid=f"CA{tag}{i}")
        await call.__aenter__()
        calls.append(call)
    for _ in range(n):
        await one()
    await bridge.wait(lambda: all(bridge.worker_of(c.call_sid) for c in calls), what="every call started")
    while both and {bridge.worker_of(c.call_sid) for c in calls} != {1, 2} and len(calls) < n + 32:
        await one()
        await bridge.wait(lambda: bridge.worker_of(calls[-1].call_sid), what="the call started")
    return calls


async def close_calls(calls) -> None:
    for call in calls:
        await call.__aexit__(None, None, None)


async def replies(calls, timeout: float = 15.0) -> None:
    """Each call speaks and hears the model answer: it is alive end to end."""
    before = [c.played_ms for c in calls]
    await asyncio.gather(*(c.say(silence(100) + tone(500) + silence(800)) for c in calls))
    await asyncio.gather(*(c.wait_for(lambda c=c, b=b: c.played_ms >= b + 200, timeout)
                           for c, b in zip(calls, before)))


@linux_only
async def test_calls_spread_over_the_workers_and_any_scrape_reports_the_group():
    async with Bridge("--workers", "2") as bridge:
        assert set(bridge.worker_pids()) == {1, 2}
        calls = await open_calls(bridge, 16, "S", both=True)
        try:
            n = len(calls)                 # 16, or a few more until both workers had one
            assert {bridge.worker_of(c.call_sid) for c in calls} == {1, 2}
            # Whichever worker answers (each scrape is a new connection), it counts every call;
            # the others' counters are at most a second old.
            await bridge.wait(lambda: m(bridge.scrape(), "rtfast_active_calls") == n, what="every call active")
            for _ in range(6):
                values = bridge.scrape()
                assert m(values, "rtfast_active_calls") == n and m(values, "rtfast_workers") == 2
            await replies(calls[:4])
            for call in calls:
                await call.hang_up()
            await bridge.wait(lambda: val(bridge.scrape(), "rtfast_calls_total", ended="stop") == n, what="every call ended")
            values = bridge.scrape()
            assert m(values, "rtfast_active_calls") == 0
            assert m(values, "rtfast_frames_total", direction="from_carrier") >= n * 2
        finally:
            await close_calls(calls)
        ids = {obj["call"] for obj in bridge.lines if "call" in obj}
        assert len(ids) == n and all(re.fullmatch(r"call-[12]\.\d+", i) for i in ids)


@linux_only
async def test_max_calls_is_the_groups_limit():
    async with Bridge("--workers", "2", "--max-calls", "4") as bridge:
        calls, refused = [], 0
        try:
            for i in range(8):
                call = TwilioCall(bridge.url, sid=f"MZL{i}", call_sid=f"CAL{i}")
                try:
                    await call.__aenter__()
                    calls.append(call)
                except InvalidStatus as exc:
                    assert exc.response.status_code == 503
                    assert b"at the call limit: 4 of 4 calls" in exc.response.body
                    refused += 1
            assert (len(calls), refused) == (4, 4)
            status, _, body = get(bridge.port, "/readyz")
            assert (status, body) == (503, "at the call limit: 4 of 4 calls\n")
            await calls.pop().hang_up()                 # a place comes free, in whichever worker
            await bridge.wait(lambda: get(bridge.port, "/readyz")[0] == 200, what="ready again")
            call = TwilioCall(bridge.url, sid="MZL9", call_sid="CAL9")
            await call.__aenter__()
            calls.append(call)
            await bridge.wait(lambda: val(bridge.scrape(), "rtfast_calls_total", ended="refused") == 4,
                              what="4 refusals counted")
            assert m(bridge.scrape(), "rtfast_max_calls") == 4
        finally:
            await close_calls(calls)


@linux_only
async def test_a_dead_worker_comes_back_and_the_other_workers_calls_go_on():
    async with Bridge("--workers", "2") as bridge:
        calls = await open_calls(bridge, 12, "D", both=True)
        try:
            pid = bridge.worker_pids()[1]
            doomed = [c for c in calls if bridge.worker_of(c.call_sid) == 1]
            spared = [c for c in calls if bridge.worker_of(c.call_sid) == 2]
            assert doomed and spared
            await bridge.wait(lambda: m(bridge.scrape(), "rtfast_active_calls") == 12, what="12 active")
            os.kill(pid, signal.SIGKILL)
            await bridge.wait(lambda: bridge.worker_pids()[1] != pid, what="worker 1 restarted")
            assert any(re.fullmatch(rf"worker 1 \(pid {pid}\) died \(exit -9\) after [\d.]+ s; restarting it.*",
                                    obj["message"]) for obj in bridge.lines)
            for call in doomed:                            # its calls ended with it
                await asyncio.wait_for(call.ws.wait_closed(), 10)
            await replies(spared)                          # the other worker's calls never noticed
            assert all(c.ws.close_code is None for c in spared)
            # The group is whole again, and counts what the dead worker had counted.
            await bridge.wait(lambda: m(bridge.scrape(), "rtfast_workers") == 2, what="2 workers")
            await bridge.wait(lambda: m(bridge.scrape(), "rtfast_active_calls") == len(spared), what="active")
            values = bridge.scrape()
            assert val(values, "rtfast_calls_total", ended="worker_died") == len(doomed)
            new = await open_calls(bridge, 6, "N")         # new calls are taken (by both workers)
            calls += new
            await replies(new[:2])
        finally:
            await close_calls(calls)


@linux_only
async def test_sigterm_drains_every_worker_and_cuts_no_call():
    async with Bridge("--workers", "2") as bridge:
        calls = await open_calls(bridge, 8, "T", both=True)
        try:
            assert {bridge.worker_of(c.call_sid) for c in calls} == {1, 2}
            bridge.proc.send_signal(signal.SIGTERM)
            await bridge.wait(lambda: sum("drained" in o["message"] or "draining:" in o["message"]
                                          for o in bridge.lines) >= 2, what="both workers draining")

            def refused() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", bridge.port), timeout=1).close()
                    return False
                except ConnectionRefusedError:
                    return True
            await bridge.wait(refused, what="no new connections")
            await replies(calls)                           # every call goes on, in both workers
            assert bridge.proc.returncode is None
            for call in calls:
                await call.hang_up()
            assert await asyncio.wait_for(bridge.proc.wait(), 15) == 0
            assert all(c.ws.close_code in (None, 1000, 1001) for c in calls)
        finally:
            await close_calls(calls)
    ended = [o for o in bridge.lines if re.match(r"call call-[12]\.\d+: summary", o["message"])]
    assert len(ended) == len(calls)
    assert not [o for o in bridge.lines if o.get("level") in ("ERROR", "RAW")], bridge.lines
