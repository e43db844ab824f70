"""examples/phone_agent.py run as a user would, driven by a simulated Twilio call."""

import asyncio
import os
import re
import sys

from carrier_sim import TwilioCall, silence, tone
from child import CWD, child_env

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "phone_agent.py")


async def read_until(proc, pattern, lines, timeout=15.0):
    async def scan():
        while True:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise AssertionError(f"the example exited; it printed: {''.join(lines)}")
            lines.append(line)
            m = re.search(pattern, line)
            if m:
                return m
    return await asyncio.wait_for(scan(), timeout)


async def test_the_phone_agent_example_greets_by_name_and_answers(tmp_path):
    env = child_env(("OPENAI_API_KEY",))
    proc = await asyncio.create_subprocess_exec(sys.executable, EXAMPLE, "--carrier", "twilio", "--listen",
                                                "127.0.0.1:0", "--seconds", "30", "--record", str(tmp_path),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                env=env, cwd=CWD)
    lines = []
    try:
        url = (await read_until(proc, r"listening on (ws://\S+)", lines)).group(1)
        async with TwilioCall(url, custom_parameters={"caller_name": "Ada"}) as call:
            await read_until(proc, r"assistant: Hello Ada, Harbour Hotel, how can I help\?", lines)
            await call.say(silence(200) + tone(800) + silence(900))
            await read_until(proc, r"user: \(\d+ ms of speech\)", lines)
            await call.wait_for(lambda: call.played_ms > 500)
            await call.hang_up()
            await read_until(proc, r"ended \(stop\)", lines)
    finally:
        proc.terminate()
        await proc.wait()
    assert any(p.suffix == ".wav" for p in tmp_path.iterdir()), list(tmp_path.iterdir())


async def test_rtfast_bridge_runs_the_same_agent_with_app(tmp_path):
    env = child_env(("OPENAI_API_KEY",))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "rtfast", "bridge", "--app",
                                                f"{EXAMPLE}:agent", "--listen", "127.0.0.1:0", "--local",
                                                "--record", str(tmp_path), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, env=env, cwd=tmp_path)
    lines = []
    try:
        url = (await read_until(proc, r"listening on (ws://\S+)", lines)).group(1)
        async with TwilioCall(url, custom_parameters={"caller_name": "Grace"}) as call:
            await read_until(proc, r"assistant: Hello Grace, Harbour Hotel", lines)
            await call.hang_up()
            call_id = (await read_until(proc, r"(call-[0-9.]+): summary", lines)).group(1)
    finally:
        proc.terminate()
        await proc.wait()
    # The recording is named for the call, whose id says which worker took it (call-2.1).
    assert (tmp_path / f"{call_id}.jsonl").exists()


def test_app_names_what_is_wrong():
    import pytest

    from rtfast.bridge.server import load_agent

    with pytest.raises(ValueError, match="MODULE:OBJECT"):
        load_agent("phone_agent")
    with pytest.raises(ValueError, match="no file"):
        load_agent("nowhere/agent.py:agent")
    with pytest.raises(ValueError, match="cannot import 'no_such_module_xyz'"):
        load_agent("no_such_module_xyz:agent")
    with pytest.raises(ValueError, match="has no 'missing'"):
        load_agent(f"{EXAMPLE}:missing")
    with pytest.raises(ValueError, match="is a str, not an rtfast.bridge.Agent"):
        load_agent(f"{EXAMPLE}:__doc__")
    assert load_agent(f"{EXAMPLE}:agent").config.tool("get_weather") is not None
