"""``rtfast demo``: a short voice conversation over the Realtime API.

With ``OPENAI_API_KEY`` it talks to OpenAI; without it (or with ``--local``)
to the embedded local server, run in its own thread. The "caller" is a
generated voice-like tone sent as 20 ms G.711 μ-law frames (base64 payloads
spliced into append frames, as a Twilio bridge does); the reply comes back as
μ-law audio deltas plus a transcript, which is printed.

Then the figures a user can compare: the client's own CPU (its thread only,
not the server's) per second of audio carried each way, and, when the official
``openai`` package is installed and the server is local, the official client's
CPU for the same conversation in the same run. Last, the audio core's cost per
20 ms frame beside the stdlib path people write today.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import threading
import time
import warnings
from array import array
from urllib.parse import urlsplit

from rtfast import events, g711
from rtfast._cliutil import connect_failed, is_connect_failure

FRAME = 160  # samples per 20 ms at 8 kHz
INSTRUCTIONS = "You are a friendly phone agent. Answer in one short sentence."
TURNS = ["Hello, is this the pizza place?", "Great, one large margherita please."]


def _voice(seconds: float, rate: int = 8000) -> bytes:
    """A 'voice': a gliding fundamental with harmonics and a syllable envelope."""
    out = array("h")
    phase = 0.0
    for i in range(int(seconds * rate)):
        t = i / rate
        phase += 2 * math.pi * (140 + 30 * math.sin(2 * math.pi * 0.5 * t)) / rate
        env = abs(math.sin(2 * math.pi * 3 * t))
        out.append(int(8000 * env * (math.sin(phase) + 0.5 * math.sin(2 * phase) + 0.25 * math.sin(3 * phase))))
    return out.tobytes()


def _payloads(pcm: bytes) -> list[bytes]:
    step = 2 * FRAME
    return [g711.ulaw_encode_b64(pcm[i:i + step]) for i in range(0, len(pcm) - step + 1, step)]


class _Unreachable(Exception):
    """Opening the Realtime connection failed (the cause says why)."""


class _Stats:
    """What one client did in the timed turns (every turn after the first, which
    pays one-time set-up): CPU of its own thread, audio and messages each way."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.sent_ms = self.received_bytes = self.messages = 0

    def add(self, cpu: float, sent_ms: int, received_bytes: int, messages: int) -> None:
        self.cpu += cpu
        self.sent_ms += sent_ms
        self.received_bytes += received_bytes
        self.messages += messages

    @property
    def audio_s(self) -> float:
        return (self.sent_ms + self.received_bytes // 8) / 1000   # μ-law 8 kHz: 8 bytes a ms

    def cpu_ms_per_audio_s(self) -> float:
        return self.cpu * 1000 / max(self.audio_s, 1e-9)


async def _converse(client, model: str, turns: list[str], caller: list[bytes], show: bool = True) -> _Stats:
    """rtfast's client: the conversation, timing only the turns (not connect or close)."""
    stats = _Stats()
    manager = client.realtime.connect(model=model)
    try:
        conn = await manager.enter()
    except Exception as exc:
        if is_connect_failure(exc):
            raise _Unreachable() from exc
        raise
    try:
        await conn.send(events.session_update_g711("ga", codec="pcmu", vad=None, voice="alloy",
                                                   instructions=INSTRUCTIONS))
        for n, prompt in enumerate(turns):
            transcript, received, messages = [], 0, len(caller) + 3
            cpu = time.thread_time()
            for payload in caller:
                await conn.send_audio_b64(payload)
            await conn.input_audio_buffer.commit()
            await conn.conversation.item.create(item={
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]})
            await conn.response.create()
            async for event in conn:
                messages += 1
                if event.type == "response.output_audio.delta":
                    received += len(event.audio())     # the μ-law bytes, as a user needs them
                elif event.type in ("response.output_audio_transcript.delta", "response.output_text.delta"):
                    transcript.append(event.delta)
                elif event.type == "error":
                    print(f"  error: {event.error.message}")
                elif event.type == "response.done":
                    break
            cpu = time.thread_time() - cpu
            if n:
                stats.add(cpu, len(caller) * 20, received, messages)
            if show:
                print(f"  caller  > {prompt}  (+ {len(caller) * 20} ms of μ-law audio)")
                print(f"  agent   < {''.join(transcript).strip()}  (+ {received // 8} ms of μ-law audio)")
    finally:
        await manager.__aexit__(None, None, None)
    return stats


async def _converse_openai(base_url: str, model: str, turns: list[str], caller: list[bytes]) -> _Stats:
    """The official client over the same conversation, timed the same way."""
    import openai

    stats = _Stats()
    caller_str = [p.decode() for p in caller]     # what a carrier's JSON gives: text
    session = events.session_update_g711("ga", codec="pcmu", vad=None, voice="alloy",
                                         instructions=INSTRUCTIONS).to_dict()["session"]
    client = openai.AsyncOpenAI(api_key="sk-local-demo", websocket_base_url=base_url)
    async with client.realtime.connect(model=model) as conn:
        await conn.session.update(session=session)
        for n, prompt in enumerate(turns):
            received, messages = 0, len(caller) + 3
            cpu = time.thread_time()
            for payload in caller_str:
                await conn.input_audio_buffer.append(audio=payload)
            await conn.input_audio_buffer.commit()
            await conn.conversation.item.create(item={
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]})
            await conn.response.create()
            async for event in conn:
                messages += 1
                if event.type == "response.output_audio.delta":
                    received += len(base64.b64decode(event.delta))
                elif event.type == "response.done":
                    break
            cpu = time.thread_time() - cpu
            if n:
                stats.add(cpu, len(caller) * 20, received, messages)
    await client.close()
    return stats


class _ServerThread:
    """The embedded server on its own event loop and thread, so that the
    client's thread CPU (time.thread_time) is the client's alone."""

    def __init__(self, script) -> None:
        self.script = script
        self.server = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _serve(self) -> None:
        from rtfast.server import RealtimeServer

        async def serve() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            async with RealtimeServer(script=self.script) as server:
                self.server = server
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(serve())
        except BaseException as exc:           # noqa: BLE001 - handed to the waiting thread
            self._error = exc
        finally:
            self._ready.set()

    def __enter__(self):
        self._thread = threading.Thread(target=self._serve, name="rtfast-demo-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self.server is None:
            raise RuntimeError(f"the embedded server did not start: {self._error!r}")
        return self.server

    def __exit__(self, *exc_info) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _script(session, user):
    from rtfast.server import Reply

    if user.text and "margherita" in user.text:
        return Reply("One large margherita, ready in twenty minutes. Anything else?")
    return Reply("Hello! Yes, this is Luigi's. What would you like to order today?")


def _figures(ours: _Stats, theirs: _Stats | None, theirs_name: str = "") -> None:
    print(f"  figures: client CPU per second of audio (its own thread; turns after the first: "
          f"{ours.audio_s:.1f} s of audio, {ours.messages} messages)")
    line = f"    rtfast {ours.cpu_ms_per_audio_s():.2f} ms"
    if theirs is not None:
        ratio = theirs.cpu_ms_per_audio_s() / max(ours.cpu_ms_per_audio_s(), 1e-9)
        line += f"; {theirs_name} {theirs.cpu_ms_per_audio_s():.2f} ms ({ratio:.1f}x)"
    print(line)


def _audio_core_figures(seconds: float = 10.0) -> None:
    from rtfast.transcode import Transcoder

    pcm = _voice(seconds)
    payloads = _payloads(pcm)
    inbound = Transcoder("pcmu/8000", "pcm16/24000")
    start = time.perf_counter()
    for p in payloads:
        inbound.feed_b64_to_b64(p)
    ours = (time.perf_counter() - start) / len(payloads)
    line = f"  audio core: Twilio payload -> base64 PCM16 24 kHz: {ours * 1e6:5.2f} µs/frame"
    try:
        import numpy as np
        import soxr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop
    except ImportError:  # Python 3.13+ without audioop-lts: nothing to compare with
        print(line)
        return
    stream = soxr.ResampleStream(8000, 24000, 1, dtype="int16", quality="HQ")
    start = time.perf_counter()
    for p in payloads:
        lin = np.frombuffer(audioop.ulaw2lin(base64.b64decode(p), 2), dtype=np.int16)
        base64.b64encode(stream.resample_chunk(lin).astype(np.int16).tobytes())
    theirs = (time.perf_counter() - start) / len(payloads)
    print(f"{line}; stdlib+soxr path {theirs * 1e6:5.2f} µs/frame ({theirs / ours:.1f}x)")


def run(seconds: float = 10.0, local: bool = False) -> int:
    """The demo; returns the exit status (1: the Realtime API could not be reached)."""
    import rtfast

    key = None if local else os.environ.get("OPENAI_API_KEY")
    caller = _payloads(_voice(1.2))
    if key:
        client = rtfast.AsyncOpenAI(api_key=key)
        where = urlsplit(client.websocket_base_url or client.base_url).netloc or client.base_url
        print(f"rtfast demo: talking to the OpenAI Realtime API (gpt-realtime) at {where}")
        try:
            ours = asyncio.run(_converse(client, "gpt-realtime", TURNS, caller))
        except _Unreachable as exc:
            return connect_failed("rtfast demo", where, exc.__cause__)
        _figures(ours, None)
    else:
        with _ServerThread(_script) as server:
            why = "--local" if local else "no OPENAI_API_KEY"
            print(f"rtfast demo: {why}, talking to the embedded server at {server.url}")
            client = rtfast.AsyncOpenAI(api_key="sk-local-demo", websocket_base_url=server.base_url)
            ours = asyncio.run(_converse(client, "gpt-realtime", TURNS, caller))
            theirs, name = None, ""
            try:
                import openai
            except ImportError:       # the official client is not a dependency: compare only when present
                pass
            else:
                theirs = asyncio.run(_converse_openai(server.base_url, "gpt-realtime", TURNS, caller))
                name = f"official openai {openai.__version__}"
        _figures(ours, theirs, name)
    _audio_core_figures(seconds)
    return 0
