"""Carrier simulators: websocket clients that play a scripted phone call.

A simulator behaves like the carrier's media server: it streams the caller's
audio in 20 ms frames, plays what it receives against a wall clock, echoes
each mark when the audio before it has played (all pending marks at once on
a clear, as Twilio does), and records everything for assertions.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time

import orjson
from websockets.asyncio.client import connect

from rtfast import g711

FRAME = 160


def tone(ms: int, amplitude: int = 9000) -> bytes:
    """μ-law 'speech': a loud two-tone signal the energy VAD hears."""
    n = ms * 8
    pcm = b"".join(int(amplitude * (math.sin(2 * math.pi * 300 * i / 8000) + 0.5 * math.sin(2 * math.pi * 700 * i / 8000)) / 1.5)
                   .to_bytes(2, "little", signed=True) for i in range(n))
    return g711.ulaw_encode(pcm)


def silence(ms: int) -> bytes:
    return b"\xff" * (ms * 8)


async def settle(predicate, timeout: float = 8.0, state=lambda: None) -> None:
    """Wait until predicate() holds; on timeout, fail showing state()."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, f"timed out; state: {state()}"
        await asyncio.sleep(0.01)


class TwilioCall:
    """One simulated Twilio Media Streams call."""

    def __init__(self, url: str, *, sid: str = "MZ0001", call_sid: str = "CA0001", realtime: bool = False,
                 headers: dict | None = None, custom_parameters: dict | None = None) -> None:
        self.url, self.sid, self.call_sid = url, sid, call_sid
        self.custom_parameters = custom_parameters or {}
        self.realtime = realtime            # send inbound frames at 1x (else as fast as possible)
        self.headers = headers or {}
        self.seq = 0
        self.chunk = 0
        self.received_audio = bytearray()
        self.marks_received: list[str] = []
        self.marks_echoed: list[str] = []
        self.clears = 0
        self.messages: list[dict] = []
        self.sent_payloads: list[bytes] = []
        self.sent_at: dict[bytes, float] = {}   # payload -> time sent (latency measurements)
        self._play_end = 0.0
        self._pending: list[tuple[float, str]] = []
        self.underruns = 0

    async def __aenter__(self):
        self.ws = await connect(self.url, additional_headers=self.headers, max_size=None, compression=None)
        self._reader = asyncio.create_task(self._read())
        self._echo = asyncio.create_task(self._echo_marks())
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send({"event": "start", "sequenceNumber": "1", "streamSid": self.sid, "start": {
            "streamSid": self.sid, "accountSid": "AC0001", "callSid": self.call_sid, "tracks": ["inbound"],
            "customParameters": self.custom_parameters, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        return self

    async def __aexit__(self, *exc):
        self._reader.cancel()
        self._echo.cancel()
        await asyncio.gather(self._reader, self._echo, return_exceptions=True)
        await self.ws.close()

    async def _send(self, message: dict) -> None:
        self.seq += 1
        await self.ws.send(orjson.dumps(message), text=True)

    async def say(self, ulaw: bytes) -> None:
        """Stream μ-law audio in 20 ms media frames."""
        start = time.monotonic()
        for i in range(0, len(ulaw), FRAME):
            payload = base64.b64encode(ulaw[i:i + FRAME])
            self.chunk += 1
            chunk = self.chunk
            self.sent_payloads.append(payload)
            self.sent_at[payload] = time.monotonic()
            await self.ws.send(b'{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d",'
                               b'"timestamp":"%d","payload":"%s"},"streamSid":"%s"}'
                               % (self.seq, chunk, chunk * 20, payload, self.sid.encode()), text=True)
            self.seq += 1
            if self.realtime:
                delay = start + (i // FRAME + 1) * 0.02 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif i % (FRAME * 25) == 0:
                await asyncio.sleep(0)

    async def dtmf(self, digit: str) -> None:
        await self._send({"event": "dtmf", "streamSid": self.sid, "sequenceNumber": str(self.seq),
                          "dtmf": {"track": "inbound_track", "digit": digit}})

    async def hang_up(self) -> None:
        await self._send({"event": "stop", "sequenceNumber": str(self.seq), "streamSid": self.sid,
                          "stop": {"accountSid": "AC0001", "callSid": self.call_sid}})

    async def send_raw(self, data: bytes) -> None:
        await self.ws.send(data, text=True)

    @property
    def played_ms(self) -> int:
        return len(self.received_audio) // 8

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("simulator: timed out waiting")
            await asyncio.sleep(0.005)

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = orjson.loads(raw)
            self.messages.append(msg)
            event = msg.get("event")
            now = time.monotonic()
            if event == "media":
                audio = base64.b64decode(msg["media"]["payload"])
                self.received_audio += audio
                if self._play_end and now > self._play_end + 0.02 and self._pending:
                    self.underruns += 1
                self._play_end = max(now, self._play_end) + len(audio) / 8000
            elif event == "mark":
                name = msg["mark"]["name"]
                self.marks_received.append(name)
                self._pending.append((self._play_end, name))
            elif event == "clear":
                self.clears += 1
                for _, name in self._pending:          # Twilio returns pending marks on clear
                    await self._echo_one(name)
                self._pending.clear()
                self._play_end = now

    async def _echo_one(self, name: str) -> None:
        self.marks_echoed.append(name)
        await self._send({"event": "mark", "sequenceNumber": str(self.seq), "streamSid": self.sid,
                          "mark": {"name": name}})

    async def _echo_marks(self) -> None:
        while True:
            now = time.monotonic()
            while self._pending and self._pending[0][0] <= now:
                await self._echo_one(self._pending.pop(0)[1])
            await asyncio.sleep(0.005)
