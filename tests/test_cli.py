"""The rtfast command line as a new user meets it: help that says what every
option does, one clear line (not a traceback) when the network or the port is
not there, and a Twilio signature check that cannot be fooled by default."""

import argparse
import asyncio
import re
import socket
import subprocess
import sys
import time

import pytest
from websockets.exceptions import InvalidStatus

from carrier_sim import TwilioCall
from rtfast import cli, server
from rtfast.bridge import server as bridge_server
from child import CWD, child_env
from rtfast.bridge.server import BridgeServer, twilio_signature
from rtfast.server import RealtimeServer

UNSET = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TWILIO_AUTH_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
         "http_proxy", "https_proxy", "all_proxy")


def clean_env(**extra):
    return child_env(UNSET, **extra)


def rtfast(*args, timeout=60, **env):
    return subprocess.run([sys.executable, "-m", "rtfast", *map(str, args)], env=clean_env(**env),
                          capture_output=True, text=True, timeout=timeout, cwd=CWD)


def closed_port():
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unreachable_urls():
    # An unresolvable name (.invalid never resolves, and fails locally) and a refusing port.
    return ["https://nonexistent.invalid/v1", f"http://127.0.0.1:{closed_port()}/v1"]


def one_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# -- no network ----------------------------------------------------------------------------------

@pytest.mark.parametrize("base_url", unreachable_urls())
def test_demo_without_network_says_so_in_one_line(base_url):
    start = time.monotonic()
    result = rtfast("demo", OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=base_url, timeout=30)
    assert time.monotonic() - start < 20          # no hang
    assert result.returncode == 1
    line = one_line(result.stderr)
    host = base_url.split("//")[1].split("/")[0]
    assert f"could not connect to the Realtime API at {host}" in line and "--local" in line
    assert "sk-test" not in result.stdout + result.stderr


def test_demo_local_uses_the_embedded_server_despite_a_key(monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://nonexistent.invalid/v1")
    assert cli.main(["demo", "--local", "--seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "--local, talking to the embedded server" in out and "margherita" in out


def test_demo_reports_the_clients_own_cpu_per_audio_second(monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert cli.main(["demo", "--seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "client CPU per second of audio (its own thread" in out
    assert "CPU per event" not in out
    ms = re.search(r"rtfast (\d+\.\d+) ms", out)
    assert ms and 0 < float(ms.group(1)) < 1000
    pytest.importorskip("openai")
    # The official client ran the same conversation in the same run.
    theirs = re.search(r"official openai [\w.]+ (\d+\.\d+) ms \((\d+\.\d)x\)", out)
    assert theirs and float(theirs.group(1)) > 0, out


# -- a port in use -------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["serve", "--port", "{port}"], ["bridge", "--listen", "127.0.0.1:{port}"]])
def test_a_port_in_use_is_one_line_and_exit_status_2(command):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = rtfast(*[a.format(port=port) for a in command], timeout=30)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: port {port} is already in use" in lines[0]


# -- help ----------------------------------------------------------------------------------------

def demo_parser():
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["demo"]


@pytest.mark.parametrize("command", ["rtfast", "demo", "serve", "bridge"])
def test_every_option_says_what_it_does(command):
    parser = {"rtfast": cli.build_parser, "demo": demo_parser, "serve": server.build_parser,
              "bridge": bridge_server.build_parser}[command]()
    for action in parser._actions:
        assert action.help and len(action.help) > 10, f"{parser.prog} {action.option_strings}: no help"


@pytest.mark.parametrize("args,shown", [
    ([], ["demo", "serve", "bridge", "--version"]),
    (["demo"], ["--local", "(default: 10.0)"]),
    (["serve"], ["(default: 8765)", "(default: 127.0.0.1)", "(default: 300.0)"]),
    (["bridge"], ["(default: twilio)", "(default: 127.0.0.1:8080)", "(default: gpt-realtime, or gpt-live-1",
                  "(default: realtime)",
                  "(default: passthrough)", "--trust-host-header", "--local"]),
])
def test_help_shows_defaults_and_no_markup(monkeypatch, capsys, args, shown):
    monkeypatch.setenv("COLUMNS", "100")       # argparse wraps to it; a default may still wrap
    with pytest.raises(SystemExit) as exit_:
        cli.main([*args, "--help"])
    assert exit_.value.code == 0
    out = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert out.startswith(f"usage: rtfast {args[0] if args else ''}".rstrip())
    for text in shown:
        assert text in out
    assert "``" not in out and ":class:" not in out
    assert "(default: None)" not in out and "(default: False)" not in out


# -- Twilio signatures ---------------------------------------------------------------------------

def test_a_twilio_token_without_the_public_url_is_refused():
    with pytest.raises(ValueError, match="public_url"):
        BridgeServer(twilio_auth_token="secret-token")
    BridgeServer(twilio_auth_token="secret-token", public_url="wss://example.com/stream")
    BridgeServer(twilio_auth_token="secret-token", trust_host_header=True)
    BridgeServer()                      # no token, nothing to check


def test_rtfast_bridge_refuses_a_token_without_public_url():
    # Refused before it listens: a subprocess, so that a bridge that did start cannot hang the test.
    result = rtfast("bridge", "--listen", f"127.0.0.1:{closed_port()}", TWILIO_AUTH_TOKEN="secret-token", timeout=20)
    assert result.returncode == 2
    assert "needs --public-url" in result.stderr and "--trust-host-header" in result.stderr
    assert "secret-token" not in result.stderr
    # A Twilio token with another carrier is a mistake too.
    result = rtfast("bridge", "--carrier", "telnyx", "--twilio-auth-token", "secret-token", timeout=20)
    assert result.returncode == 2 and "Twilio's signature" in result.stderr


async def test_with_public_url_the_host_header_cannot_choose_the_signed_url():
    token, public = "secret-token", "wss://bridge.example.com/stream"
    async with RealtimeServer() as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test", twilio_auth_token=token, public_url=public) as bridge:
        # An attacker signs the URL its own Host header names: refused.
        forged = twilio_signature(token, f"wss://127.0.0.1:{bridge.port}/stream")
        with pytest.raises(InvalidStatus) as info:
            async with TwilioCall(bridge.url + "stream", headers={"X-Twilio-Signature": forged}):
                pass
        assert info.value.response.status_code == 403
        async with TwilioCall(bridge.url + "stream", headers={"X-Twilio-Signature": twilio_signature(token, public)}):
            pass


async def test_rtfast_bridge_starts_with_trust_host_header_and_local():
    port = closed_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtfast", "bridge", "--listen", f"127.0.0.1:{port}", "--local", "--trust-host-header",
        env=clean_env(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="https://nonexistent.invalid/v1",
                      TWILIO_AUTH_TOKEN="secret-token"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=CWD)
    out = b""
    try:
        while b"listening on" not in out:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, out.decode()
            out += line
        assert b"--local: calls go to the embedded realtime server" in out
    finally:
        proc.terminate()
        await proc.wait()
