"""``rtfast demo``: push a simulated phone call through the audio core.

A generated voice-like tone stands in for the caller: it is cut into 20 ms
Twilio media payloads (base64 mu-law 8 kHz) and taken through the inbound leg
(payload -> PCM16) and the outbound leg (PCM16 -> payload), with rtfast and
with the stdlib path people write today (base64 + audioop), checking both
give the same bytes and printing the throughput of each.
"""

from __future__ import annotations

import base64
import math
import time
import warnings
from array import array

from rtfast import g711

FRAME = 160  # samples per 20 ms at 8 kHz


def _tone(seconds: float, rate: int = 8000) -> bytes:
    """A 'voice': a gliding fundamental with harmonics and a syllable envelope."""
    out = array("h")
    phase = 0.0
    for i in range(int(seconds * rate)):
        t = i / rate
        phase += 2 * math.pi * (140 + 30 * math.sin(2 * math.pi * 0.5 * t)) / rate
        env = abs(math.sin(2 * math.pi * 3 * t))
        out.append(int(8000 * env * (math.sin(phase) + 0.5 * math.sin(2 * phase) + 0.25 * math.sin(3 * phase))))
    return out.tobytes()


def _time(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - start


def run(seconds: float = 30.0) -> int:
    pcm = _tone(seconds)
    frames = [pcm[i:i + 2 * FRAME] for i in range(0, len(pcm) - 2 * FRAME + 1, 2 * FRAME)]
    payloads = [g711.ulaw_encode_b64(f) for f in frames]
    print(f"rtfast demo: {len(frames)} frames of 20 ms ({len(frames) / 50:.0f} s of call audio), "
          f"{len(payloads[0])}-char base64 mu-law payloads")

    legs = {"inbound  payload -> pcm16": (g711.ulaw_decode_b64, payloads),
            "outbound pcm16 -> payload": (g711.ulaw_encode_b64, frames)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop
    except ImportError:  # Python 3.13+ without audioop-lts
        audioop = None
    if audioop is not None:
        stdlib = {"inbound  payload -> pcm16": lambda p: audioop.ulaw2lin(base64.b64decode(p), 2),
                  "outbound pcm16 -> payload": lambda f: base64.b64encode(audioop.lin2ulaw(f, 2))}

    for name, (fn, items) in legs.items():
        ours = min(_time(fn, items) for _ in range(3))
        line = f"  {name}: {ours / len(items) * 1e9:7.0f} ns/frame, {len(items) / ours / 50:9.0f}x real time"
        if audioop is not None:
            ref = stdlib[name]
            if [fn(i) for i in items[:200]] != [ref(i) for i in items[:200]]:
                print(f"  {name}: MISMATCH with the stdlib")
                return 1
            theirs = min(_time(ref, items) for _ in range(3))
            line += f"   stdlib {theirs / len(items) * 1e9:7.0f} ns/frame -> {theirs / ours:4.1f}x faster"
        print(line)
    return 0
