"""Carrier simulators for Telnyx, Vonage, Plivo and Exotel (Twilio's is in carrier_sim.py).

Each is a websocket client that plays a scripted call the way the carrier's
media server does: its opening messages, the caller's audio in the carrier's
format and framing, the outbound audio played against the wall clock, each
played-audio marker (``mark`` / ``checkpoint`` / ``notify``) answered once the
audio sent before it has played, ``clear`` answered the carrier's way, DTMF,
and hang-up. Everything is recorded for assertions.

What a clear does to the markers still pending differs; the simulators assume:
Telnyx and Exotel send them back at once (as Twilio does), Vonage sends them
back and then ``websocket:cleared``, Plivo drops them and sends
``clearedAudio``. The bridge must cope with both: a marker flushed back by a
clear does not count as played.
"""

from __future__ import annotations

import asyncio
import base64
import time

import numpy as np
import orjson
from websockets.asyncio.client import connect

from rtfast import g711
from rtfast.bridge.carriers import FORMATS

__all__ = ["CarrierSim", "TelnyxSim", "VonageSim", "PlivoSim", "ExotelSim", "SIMS", "speech", "silence"]

_SILENCE = {"pcmu/8000": b"\xff", "pcma/8000": b"\xd5"}          # PCM16: zeros


def speech(ms: int, fmt: str, amplitude: int = 9000) -> bytes:
    """``ms`` of a loud two-tone signal (the embedded server's energy VAD hears it) in carrier format ``fmt``."""
    rate = 8000 if fmt.endswith("/8000") else int(fmt.rpartition("/")[2])
    t = np.arange(rate * ms // 1000) / rate
    wave = amplitude * (np.sin(2 * np.pi * 300 * t) + 0.5 * np.sin(2 * np.pi * 700 * t)) / 1.5
    pcm = wave.astype("<i2").tobytes()
    if fmt == "pcmu/8000":
        return g711.ulaw_encode(pcm)
    if fmt == "pcma/8000":
        return g711.alaw_encode(pcm)
    return pcm


def silence(ms: int, fmt: str) -> bytes:
    return _SILENCE.get(fmt, b"\x00") * (ms * FORMATS[fmt])


class CarrierSim:
    """What every carrier's media server does; subclasses give the wire shapes.

    Recorded: ``sent_audio`` / ``sent_payloads`` (the caller's audio and its
    frames' payloads, in playback order), ``played`` (outbound audio per
    playback generation: a clear starts a new one), ``chunks`` (bytes of each
    outbound audio message), ``markers`` (names received, in order),
    ``acked`` (answered as played), ``flushed`` (returned or dropped by a
    clear), ``clears``, ``acked_ms_at_clear`` / ``heard_ms_at_clear`` (ms of
    the current generation confirmed / actually played when each clear came),
    ``messages`` (every text message from the bridge, parsed).
    """

    name = "carrier"
    #: inbound audio per media frame (ms)
    inbound_ms = 20
    #: a clear sends the pending markers back (else it drops them)
    clear_returns_markers = True
    #: audio travels in binary frames (Vonage)
    binary_audio = False

    def __init__(self, url: str, fmt: str, *, call_id: str = "call-0001") -> None:
        self.url, self.fmt, self.call_id = url, fmt, call_id
        self.bpm = FORMATS[fmt]
        self.sent_audio = bytearray()
        self.sent_payloads: list[bytes] = []
        self.played: list[bytearray] = [bytearray()]
        self.chunks: list[int] = []
        self.markers: list[str] = []
        self.acked: list[str] = []
        self.flushed: list[str] = []
        self.clears = 0
        self.acked_ms_at_clear: list[int] = []
        self.heard_ms_at_clear: list[int] = []
        self.messages: list[dict] = []
        self.seq = 0
        self._play_end = 0.0                                   # monotonic s when what was received has played
        self._since_marker = 0                                 # audio bytes since the last marker
        self._pending: list[tuple[float, str, int]] = []       # (plays by, name, bytes before it)
        self._acked_bytes = 0                                  # of the current generation

    # -- the socket ---------------------------------------------------------------------------
    async def __aenter__(self):
        self.ws = await connect(self.url, max_size=None, compression=None)
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._play())]
        for message in self.opening():
            await self.send_json(message)
        return self

    async def __aexit__(self, *exc) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ws.close()

    async def send_json(self, message: dict) -> None:
        self.seq += 1
        await self.ws.send(orjson.dumps(message), text=True)

    # -- what the subclasses say --------------------------------------------------------------
    def opening(self) -> list[dict]:
        """The messages that open the stream (connected, start, ...)."""
        raise NotImplementedError

    def media_frame(self, audio: bytes, chunk: int) -> bytes:
        """The inbound media message carrying ``audio`` (the ``chunk``-th frame, from 1)."""
        raise NotImplementedError

    def arrange(self, frames: list[bytes]) -> list[bytes]:
        """The order frames go out in (Telnyx may swap some)."""
        return frames

    async def ack(self, name: str) -> None:
        """Answer a marker: the audio before it has played (or a clear flushed it)."""
        raise NotImplementedError

    async def cleared(self) -> None:
        """Confirm a clear (Plivo, Vonage)."""

    def on_message(self, frame) -> None:
        """Dispatch one frame from the bridge to on_audio / on_marker / on_clear (may return a coroutine)."""
        raise NotImplementedError

    async def dtmf(self, digit: str) -> None:
        raise NotImplementedError

    async def hang_up(self) -> None:
        raise NotImplementedError

    # -- the scripted call ----------------------------------------------------------------------
    async def say(self, audio: bytes) -> None:
        """Stream the caller's audio in ``inbound_ms`` frames (as fast as the socket takes them)."""
        step = self.inbound_ms * self.bpm
        frames = []
        for i in range(0, len(audio), step):
            piece = audio[i:i + step]
            self.sent_audio += piece
            frames.append(self.media_frame(piece, len(self.sent_payloads) + 1))
        for i, frame in enumerate(self.arrange(frames)):
            await self.ws.send(frame, text=not self.binary_audio)
            self.seq += 1
            if i % 25 == 24:
                await asyncio.sleep(0)

    @property
    def played_ms(self) -> int:
        """Audio received in the current playback generation (ms)."""
        return len(self.played[-1]) // self.bpm

    @property
    def heard_ms(self) -> int:
        """Audio of the current playback generation played by now (ms)."""
        ahead = max(0.0, self._play_end - time.monotonic()) * 1000
        return max(0, int(self.played_ms - ahead))

    @property
    def idle(self) -> bool:
        """Everything received has played and every marker is answered."""
        return not self._pending and time.monotonic() >= self._play_end

    async def wait_for(self, predicate, timeout: float = 8.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} simulator: timed out waiting")
            await asyncio.sleep(0.005)

    # -- playback against the wall clock ------------------------------------------------------
    def on_audio(self, audio: bytes) -> None:
        now = time.monotonic()
        self.played[-1] += audio
        self.chunks.append(len(audio))
        self._since_marker += len(audio)
        self._play_end = max(now, self._play_end) + len(audio) / (1000 * self.bpm)

    def on_marker(self, name: str) -> None:
        self.markers.append(name)
        self._pending.append((self._play_end, name, self._since_marker))
        self._since_marker = 0

    async def on_clear(self) -> None:
        now = time.monotonic()
        self.clears += 1
        self.heard_ms_at_clear.append(self.heard_ms)
        self.acked_ms_at_clear.append(self._acked_bytes // self.bpm)
        pending, self._pending = self._pending, []
        for _, name, _ in pending:
            self.flushed.append(name)
            if self.clear_returns_markers:
                await self.ack(name)
        await self.cleared()
        self.played.append(bytearray())
        self._play_end = now
        self._since_marker = self._acked_bytes = 0

    async def _read(self) -> None:
        async for frame in self.ws:
            if type(frame) is str:
                self.messages.append(orjson.loads(frame))
            step = self.on_message(frame)
            if step is not None:
                await step

    async def _play(self) -> None:
        while True:
            now = time.monotonic()
            while self._pending and self._pending[0][0] <= now:
                _, name, nbytes = self._pending.pop(0)
                self._acked_bytes += nbytes
                self.acked.append(name)
                await self.ack(name)
            await asyncio.sleep(0.005)


class _JsonSim(CarrierSim):
    """Carriers whose messages are JSON with an ``event`` key (Telnyx, Plivo, Exotel)."""

    AUDIO, MARKER, CLEAR = "media", "mark", "clear"

    def on_message(self, frame):
        msg = self.messages[-1]
        event = msg.get("event")
        if event == self.AUDIO:
            self.on_audio(base64.b64decode(msg["media"]["payload"], validate=True))
        elif event == self.MARKER:
            self.on_marker(self.marker_name(msg))
        elif event == self.CLEAR:
            return self.on_clear()
        return None

    def marker_name(self, msg: dict) -> str:
        return msg["mark"]["name"]

    def payload(self, audio: bytes) -> bytes:
        b64 = base64.b64encode(audio)
        self.sent_payloads.append(b64)
        return b64


class TelnyxSim(_JsonSim):
    """Telnyx media streaming: snake_case, PCMU or PCMA; every ``swap_every``-th
    pair of neighbouring frames goes out swapped (Telnyx does not guarantee order)."""

    name = "telnyx"

    def __init__(self, url: str, fmt: str = "pcmu/8000", *, swap_every: int = 7, **kw) -> None:
        super().__init__(url, fmt, **kw)
        self.stream_id = "32DE0DEA-53CB-" + self.call_id
        self.swap_every = swap_every
        self.swaps = 0

    def opening(self):
        enc = {"pcmu/8000": "PCMU", "pcma/8000": "PCMA"}[self.fmt]
        return [{"event": "connected", "version": "1.0.0"},
                {"event": "start", "sequence_number": "1", "stream_id": self.stream_id,
                 "start": {"user_id": "3E6F995F", "call_control_id": "v3:" + self.call_id,
                           "call_session_id": "ff55a038", "from": "+13122010094", "to": "+13122123456",
                           "custom_parameters": {}, "media_format": {"encoding": enc, "sample_rate": 8000,
                                                                     "channels": 1}}}]

    def media_frame(self, audio, chunk):
        return (b'{"event":"media","sequence_number":"%d","media":{"track":"inbound","chunk":"%d",'
                b'"timestamp":"%d","payload":"%s"},"stream_id":"%s"}'
                % (chunk + 1, chunk, chunk * 20, self.payload(audio), self.stream_id.encode()))

    def arrange(self, frames):
        frames = list(frames)
        for i in range(self.swap_every - 1, len(frames) - 1, self.swap_every):
            frames[i], frames[i + 1] = frames[i + 1], frames[i]
            self.swaps += 1
        return frames

    async def ack(self, name):
        await self.send_json({"event": "mark", "sequence_number": str(self.seq), "stream_id": self.stream_id,
                              "mark": {"name": name}})

    async def dtmf(self, digit):
        await self.send_json({"event": "dtmf", "sequence_number": str(self.seq), "stream_id": self.stream_id,
                              "dtmf": {"digit": digit}})

    async def hang_up(self):
        await self.send_json({"event": "stop", "sequence_number": str(self.seq), "stream_id": self.stream_id,
                              "stop": {"user_id": "3E6F995F", "call_control_id": "v3:" + self.call_id}})


class PlivoSim(_JsonSim):
    """Plivo audio streams: ``playAudio`` in, ``checkpoint`` answered by
    ``playedStream``; ``clearAudio`` drops pending checkpoints and is confirmed by ``clearedAudio``."""

    name = "plivo"
    AUDIO, MARKER, CLEAR = "playAudio", "checkpoint", "clearAudio"
    clear_returns_markers = False

    def __init__(self, url: str, fmt: str = "pcmu/8000", **kw) -> None:
        super().__init__(url, fmt, **kw)
        self.stream_id = "20170ada-f610-" + self.call_id
        self.content_types: set[tuple[str, int]] = set()

    def opening(self):
        enc = {"pcmu/8000": ("audio/x-mulaw", 8000), "pcm16/8000": ("audio/x-l16", 8000),
               "pcm16/16000": ("audio/x-l16", 16000)}[self.fmt]
        return [{"event": "start", "sequenceNumber": 0, "start": {
            "callId": self.call_id, "streamId": self.stream_id, "accountId": "MA123", "tracks": ["inbound"],
            "mediaFormat": {"encoding": enc[0], "sampleRate": enc[1]}}, "extra_headers": "{}"}]

    def media_frame(self, audio, chunk):
        return (b'{"sequenceNumber":%d,"event":"media","streamId":"%s","media":{"track":"inbound",'
                b'"timestamp":"%d","chunk":%d,"payload":"%s"},"extra_headers":"{}"}'
                % (chunk, self.stream_id.encode(), 1710000000000 + chunk * 20, chunk, self.payload(audio)))

    def on_message(self, frame):
        msg = self.messages[-1]
        if msg.get("event") == self.AUDIO:
            self.content_types.add((msg["media"]["contentType"], msg["media"]["sampleRate"]))
        return super().on_message(frame)

    def marker_name(self, msg):
        return msg["name"]

    async def ack(self, name):
        await self.send_json({"event": "playedStream", "sequenceNumber": self.seq, "streamId": self.stream_id,
                              "name": name})

    async def cleared(self):
        await self.send_json({"event": "clearedAudio", "sequenceNumber": self.seq, "streamId": self.stream_id})

    async def dtmf(self, digit):
        await self.send_json({"event": "dtmf", "sequenceNumber": self.seq, "streamId": self.stream_id,
                              "dtmf": {"track": "inbound", "digit": digit}})

    async def hang_up(self):
        await self.send_json({"event": "stop", "sequenceNumber": self.seq, "streamId": self.stream_id})


class ExotelSim(_JsonSim):
    """Exotel voicebot stream: base64 PCM16 (8/16/24 kHz) in ``inbound_ms`` chunks;
    outbound ``media`` must be a multiple of 320 bytes and at least 3.2 KB."""

    name = "exotel"
    inbound_ms = 100

    def __init__(self, url: str, fmt: str = "pcm16/8000", **kw) -> None:
        super().__init__(url, fmt, **kw)
        self.stream_sid = "MZexo" + self.call_id

    def opening(self):
        return [{"event": "connected"},
                {"event": "start", "sequence_number": "1", "stream_sid": self.stream_sid, "start": {
                    "stream_sid": self.stream_sid, "call_sid": self.call_id, "account_sid": "ACexo",
                    "from": "+919876543210", "to": "+918047491899", "custom_parameters": {},
                    "media_format": {"encoding": "audio/x-raw", "sample_rate": self.fmt.rpartition("/")[2],
                                     "bit_rate": "16"}}}]

    def media_frame(self, audio, chunk):
        return (b'{"event":"media","sequence_number":"%d","stream_sid":"%s","media":{"chunk":"%d",'
                b'"timestamp":"%d","payload":"%s"}}'
                % (chunk + 1, self.stream_sid.encode(), chunk, chunk * self.inbound_ms, self.payload(audio)))

    async def ack(self, name):
        await self.send_json({"event": "mark", "sequence_number": str(self.seq), "stream_sid": self.stream_sid,
                              "mark": {"name": name}})

    async def dtmf(self, digit):
        await self.send_json({"event": "dtmf", "sequence_number": str(self.seq), "stream_sid": self.stream_sid,
                              "dtmf": {"digit": digit, "duration": "100"}})

    async def hang_up(self):
        await self.send_json({"event": "stop", "sequence_number": str(self.seq), "stream_sid": self.stream_sid,
                              "stop": {"call_sid": self.call_id, "reason": "callended"}})


class VonageSim(CarrierSim):
    """Vonage websocket: a ``websocket:connected`` header, then binary PCM16
    frames of 20 ms both ways; ``notify`` answered by ``websocket:notify``,
    ``clear`` by the pending notifies and ``websocket:cleared``; hang-up closes the socket."""

    name = "vonage"
    binary_audio = True

    def __init__(self, url: str, fmt: str = "pcm16/16000", **kw) -> None:
        super().__init__(url, fmt, **kw)

    def opening(self):
        return [{"event": "websocket:connected", "content-type": f"audio/l16;rate={self.fmt.rpartition('/')[2]}",
                 "uuid": self.call_id, "caller": "447700900000"}]

    def media_frame(self, audio, chunk):
        self.sent_payloads.append(audio)
        return audio

    def on_message(self, frame):
        if type(frame) is bytes:
            self.on_audio(frame)
            return None
        msg = self.messages[-1]
        action = msg.get("action")
        if action == "notify":
            self.on_marker(msg["payload"]["name"])
        elif action == "clear":
            return self.on_clear()
        return None

    async def ack(self, name):
        await self.send_json({"event": "websocket:notify", "payload": {"name": name}})

    async def cleared(self):
        await self.send_json({"event": "websocket:cleared"})

    async def dtmf(self, digit):
        await self.send_json({"event": "websocket:dtmf", "digit": digit, "duration": 260})

    async def hang_up(self):
        await self.ws.close()


#: simulator class by carrier name
SIMS = {"telnyx": TelnyxSim, "plivo": PlivoSim, "exotel": ExotelSim, "vonage": VonageSim}
