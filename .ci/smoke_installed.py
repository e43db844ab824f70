"""CI: drive the installed `rtfast` commands as a user would, from outside the checkout.

1. `rtfast serve --port 0`, then one turn against it with rtfast.AsyncOpenAI
   (base_url pointed at it, as OPENAI_BASE_URL would be).
2. `rtfast bridge --listen 127.0.0.1:0` (no key: calls go to its embedded
   server), then one simulated Twilio call: the caller speaks, hears the reply,
   speaks over it (barge-in) and must get a `clear`.

Run with the interpreter of the venv that has the wheel installed; the
`rtfast` console script next to it is what is tested.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))   # carrier_sim only: no rtfast there

import rtfast  # noqa: E402
from carrier_sim import TwilioCall, silence, tone  # noqa: E402

RTFAST = str(Path(sys.executable).parent / "rtfast")


def start(*args: str, pattern: str) -> tuple[subprocess.Popen, re.Match]:
    """Start `rtfast ARGS` and wait (10 s at most) for a stdout line matching pattern."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.Popen([RTFAST, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 10
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if m := re.search(pattern, line):
            return proc, m
    proc.kill()
    raise SystemExit(f"rtfast {' '.join(args)} did not start:\n{''.join(seen)}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("did not stop on SIGTERM")


async def one_turn(port: int) -> None:
    client = rtfast.AsyncOpenAI(api_key="sk-ci", base_url=f"http://127.0.0.1:{port}/v1")
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.conversation.item.create(item={
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]})
        await conn.response.create()
        text, audio = "", 0
        async for event in conn:
            if event.type == "response.output_audio_transcript.delta":
                text += event.delta
            elif event.type == "response.output_audio.delta":
                audio += len(event.audio())
            elif event.type == "response.done":
                break
    assert text == "Thanks for calling." and audio > 0, (text, audio)
    print(f"serve: one turn, reply {text!r} with {audio} bytes of audio")


async def one_call(url: str) -> None:
    async with TwilioCall(url, realtime=True) as call:
        await call.say(silence(200) + tone(600) + silence(900))          # speak, then wait for the reply
        await call.wait_for(lambda: call.played_ms >= 200, timeout=20)
        played = call.played_ms
        await call.say(tone(800))                                       # speak over the reply
        await call.wait_for(lambda: call.clears >= 1, timeout=10)
        await call.hang_up()
    print(f"bridge: one call, {played} ms of reply heard before the barge-in, {call.clears} clear, "
          f"{len(call.marks_echoed)} marks echoed")


def main() -> None:
    proc, m = start("serve", "--port", "0", "--say", "Thanks for calling.", "--latency-ms", "0", "--fast",
                    pattern=r"ws://127\.0\.0\.1:(\d+)/v1/realtime")
    try:
        asyncio.run(asyncio.wait_for(one_turn(int(m.group(1))), 30))
    finally:
        stop(proc)
    proc, m = start("bridge", "--carrier", "twilio", "--listen", "127.0.0.1:0",
                    pattern=r"listening on (ws://\S+)")
    try:
        asyncio.run(asyncio.wait_for(one_call(m.group(1)), 60))
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
