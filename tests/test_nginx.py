"""nginx in front of two bridges, with the configuration we ship (deploy/nginx/rtfast.conf):
simulated Twilio calls go through it, one bridge is drained with calls in progress,
no call is cut and the new calls go to the other. Needs nginx (CI installs it from
the OS packages and sets RTFAST_REQUIRE_NGINX=1, so it cannot be skipped there)."""

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from carrier_sim import TwilioCall
from test_ops import get
from test_workers import Bridge, close_calls, free_port, replies

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)),
                                      None)
CONF = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "rtfast.conf"

if NGINX is None:
    if os.environ.get("RTFAST_REQUIRE_NGINX"):
        raise RuntimeError("RTFAST_REQUIRE_NGINX is set but nginx is not installed")
    pytest.skip("nginx is not installed (CI installs it)", allow_module_level=True)
if not CONF.exists():     # a test run from the installed wheel's tests/ has no deploy/
    pytest.skip("deploy/nginx/rtfast.conf is not here (not a checkout)", allow_module_level=True)


def site(bridge_ports: list[int], port: int) -> str:
    """The shipped configuration, with our bridges and port in place of its examples."""
    text = CONF.read_text()
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in bridge_ports)
    text, n = re.subn(r"(?m)^    server 127\.0\.0\.1:\d+ .*\n", "", text)
    assert n == 2, "the shipped upstream changed shape"
    text = text.replace("    least_conn;\n", "    least_conn;\n" + servers)
    text, n = re.subn(r"listen 80;", f"listen 127.0.0.1:{port};", text)
    assert n == 1
    return text


class Nginx:
    def __init__(self, tmp: Path, bridge_ports: list[int]) -> None:
        self.tmp, self.port = tmp, free_port()
        (tmp / "logs").mkdir()
        (tmp / "rtfast.conf").write_text(site(bridge_ports, self.port))
        user = "user root;\n" if os.geteuid() == 0 else ""       # its workers read files under our tmp dir
        (tmp / "nginx.conf").write_text(
            f"{user}worker_processes 1;\nerror_log {tmp}/logs/error.log info;\npid {tmp}/nginx.pid;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n  access_log {tmp}/logs/access.log;\n  client_body_temp_path {tmp}/body;\n"
            f"  proxy_temp_path {tmp}/proxy;\n  include {tmp}/rtfast.conf;\n}}\n")

    def __enter__(self):
        check = subprocess.run([NGINX, "-t", "-p", str(self.tmp), "-c", str(self.tmp / "nginx.conf")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen([NGINX, "-p", str(self.tmp), "-c", str(self.tmp / "nginx.conf"),
                                      "-g", "daemon off;"], stderr=subprocess.PIPE)
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < end, self.proc.stderr.read()
                time.sleep(0.05)

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGQUIT)        # graceful: let connections finish
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def errors(self) -> str:
        return (self.tmp / "logs" / "error.log").read_text()


def took(bridge: Bridge, call: TwilioCall) -> bool:
    return any(f"(carrier call {call.call_sid}," in obj["message"] for obj in bridge.lines)


async def through(proxy: Nginx, bridges, n: int, tag: str) -> list[TwilioCall]:
    calls = []
    for i in range(n):
        call = TwilioCall(proxy.url, sid=f"MZ{tag}{i}", call_sid=f"CA{tag}{i}")
        await call.__aenter__()
        calls.append(call)
    await bridges[0].wait(lambda: all(any(took(b, c) for b in bridges) for c in calls), what="calls started")
    return calls


async def test_a_drained_bridge_behind_nginx_finishes_its_calls_and_new_calls_go_to_the_other(tmp_path):
    async with Bridge("--workers", "1") as a, Bridge("--workers", "1") as b:
        with Nginx(tmp_path, [a.port, b.port]) as proxy:
            # Probes pass through as plain HTTP (an upgrade header only when the client sends one).
            assert get(proxy.port, "/healthz")[::2] == (200, "ok\n")
            first = await through(proxy, [a, b], 6, "F")
            calls = list(first)
            try:
                # least_conn: the calls are shared between the two bridges.
                on_a = [c for c in first if took(a, c)]
                on_b = [c for c in first if took(b, c)]
                assert len(on_a) == 3 and len(on_b) == 3, (len(on_a), len(on_b))
                await replies(first)

                a.proc.send_signal(signal.SIGTERM)            # drain bridge A with 3 calls in progress
                await a.wait(lambda: any(o["message"].startswith("SIGTERM: draining") for o in a.lines),
                             what="A draining")
                await asyncio.sleep(0.3)
                later = await through(proxy, [a, b], 6, "L")   # new calls: all to B
                calls += later
                assert all(took(b, c) and not took(a, c) for c in later)
                await replies(on_a + later)                    # A's calls go on through nginx
                assert a.proc.returncode is None
                for call in on_a:
                    await call.hang_up()
                assert await asyncio.wait_for(a.proc.wait(), 15) == 0      # drained: A exits by itself
                await replies(on_b + later)                    # B never noticed
                for call in on_b + later:
                    await call.hang_up()
                await b.wait(lambda: sum(" summary: " in o["message"] for o in b.lines) == 9, what="B's 9 calls")
            finally:
                await close_calls(calls)
            # No call was cut: every one ended because its caller hung up.
            summaries = [o for o in a.lines + b.lines if " summary: " in o["message"]]
            assert len(summaries) == 12
            assert all(c.ws.close_code in (1000, 1001) or c.ws.close_code is None for c in calls)
            assert not [o for o in a.lines + b.lines if o.get("level") in ("ERROR", "RAW")]
        assert "upstream prematurely closed" not in proxy.errors()


async def test_nginx_sends_the_call_on_when_a_bridge_is_at_its_limit(tmp_path):
    # A bridge at --max-calls answers the upgrade 503: nginx tries the next one.
    async with Bridge("--workers", "1", "--max-calls", "1") as a, Bridge("--workers", "1", "--max-calls", "1") as b:
        with Nginx(tmp_path, [a.port, b.port]) as proxy:
            calls = await through(proxy, [a, b], 2, "M")
            try:
                assert sum(took(a, c) for c in calls) == 1 and sum(took(b, c) for c in calls) == 1
                with pytest.raises(InvalidStatus) as refused:           # both full: the carrier fails over
                    async with TwilioCall(proxy.url, sid="MZM9", call_sid="CAM9"):
                        pass
                assert refused.value.response.status_code in (502, 503)
            finally:
                await close_calls(calls)
