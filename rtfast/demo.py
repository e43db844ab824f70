"""``rtfast demo``: a short voice conversation over the Realtime API.

Without ``OPENAI_API_KEY`` it starts the embedded local server and talks to
it; with a key, the same conversation goes to OpenAI. The "caller" is a
generated voice-like tone sent as 20 ms G.711 μ-law frames (base64 payloads
spliced into append frames, as a Twilio bridge does); the reply comes back as
μ-law audio deltas plus a transcript, which is printed. A line of figures
closes it (events per second, CPU per event), followed by the audio core's
per-frame cost beside the stdlib path people write today.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import time
import warnings
from array import array

from rtfast import events, g711

FRAME = 160  # samples per 20 ms at 8 kHz


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


async def _converse(client, model: str, turns: list[str]) -> dict:
    stats = {"events": 0, "audio_bytes": 0, "frames_sent": 0, "cpu": 0.0, "wall": 0.0}
    caller = _payloads(_voice(1.2))
    async with client.realtime.connect(model=model) as conn:
        await conn.send(events.session_update_g711(
            "ga", codec="pcmu", vad=None, voice="alloy",
            instructions="You are a friendly phone agent. Answer in one short sentence."))
        for n, prompt in enumerate(turns, 1):
            cpu, wall = time.process_time(), time.perf_counter()
            for payload in caller:
                await conn.send_audio_b64(payload)
            await conn.input_audio_buffer.commit()
            await conn.conversation.item.create(item={
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]})
            await conn.response.create()
            stats["frames_sent"] += len(caller) + 3
            print(f"  caller  > {prompt}  (+ {len(caller) * 20} ms of μ-law audio)")
            transcript = []
            async for event in conn:
                stats["events"] += 1
                if event.type == "response.output_audio.delta":
                    stats["audio_bytes"] += event.audio_length
                elif event.type in ("response.output_audio_transcript.delta", "response.output_text.delta"):
                    transcript.append(event.delta)
                elif event.type == "error":
                    print(f"  error: {event.error.message}")
                elif event.type == "response.done":
                    break
            stats["cpu"] += time.process_time() - cpu
            stats["wall"] += time.perf_counter() - wall
            print(f"  agent   < {''.join(transcript).strip()}  "
                  f"({stats['audio_bytes'] // 8} ms of μ-law audio so far)")
    return stats


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


def run(seconds: float = 10.0) -> int:
    import rtfast

    turns = ["Hello, is this the pizza place?", "Great, one large margherita please."]
    key = os.environ.get("OPENAI_API_KEY")

    async def main() -> dict:
        if key:
            print("rtfast demo: talking to the OpenAI Realtime API (gpt-realtime)")
            return await _converse(rtfast.AsyncOpenAI(api_key=key), "gpt-realtime", turns)
        from rtfast.server import RealtimeServer, Reply

        def script(session, user):
            if user.text and "margherita" in user.text:
                return Reply("One large margherita, ready in twenty minutes. Anything else?")
            return Reply("Hello! Yes, this is Luigi's. What would you like to order today?")

        async with RealtimeServer(script=script) as server:
            print(f"rtfast demo: no OPENAI_API_KEY, talking to the embedded server at {server.url}")
            client = rtfast.AsyncOpenAI(api_key="sk-local-demo", websocket_base_url=server.base_url)
            return await _converse(client, "gpt-realtime", turns)

    stats = asyncio.run(main())
    per_event = stats["cpu"] / max(stats["events"], 1)
    print(f"  figures: {stats['events']} events received, {stats['frames_sent']} frames sent, "
          f"{stats['events'] / max(stats['wall'], 1e-9):,.0f} events/s, "
          f"{per_event * 1e6:.1f} µs CPU per event (client and local server together)"
          if not key else
          f"  figures: {stats['events']} events, {per_event * 1e6:.1f} µs CPU per event")
    _audio_core_figures(seconds)
    return 0
