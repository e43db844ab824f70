"""Transcoder on Twilio <-> OpenAI frames beside the composed path users write today.

Inbound: a 216-char Twilio media payload (base64 mu-law 8 kHz, 20 ms) to
base64 PCM16 24 kHz (an input_audio_buffer.append). Outbound: 20 ms of
base64 PCM16 24 kHz (960 bytes, a response.output_audio.delta) to a 216-char
mu-law payload. Baseline: base64.b64decode -> audioop -> np.frombuffer ->
soxr.ResampleStream.resample_chunk -> astype(int16).tobytes -> b64encode, at
the same soxr quality. Frames differ between calls (a pool of 256 cycled).
soxr filters in blocks, so frame costs alternate: each round is one second of
a call (50 frames); per-frame cost = round time / 50.
"""

import base64

import numpy as np
import pytest
import soxr

from conftest import audioop, cycler, pool
from rtfast.transcode import Transcoder

BATCH = 50  # frames per round: 1 s of audio


def payloads(direction):
    if direction == "twilio->openai":
        return [base64.b64encode(audioop.lin2ulaw(f, 2)) for f in pool("frame8k")]
    return [base64.b64encode(f) for f in pool("frame24k")]


def composed(direction, quality):
    b64decode, b64encode, frombuffer, int16 = base64.b64decode, base64.b64encode, np.frombuffer, np.int16
    if direction == "twilio->openai":
        s = soxr.ResampleStream(8000, 24000, 1, dtype="int16", quality=quality)
        ulaw2lin = audioop.ulaw2lin
        return lambda b64: b64encode(
            s.resample_chunk(frombuffer(ulaw2lin(b64decode(b64), 2), int16)).astype(int16).tobytes())
    s = soxr.ResampleStream(24000, 8000, 1, dtype="int16", quality=quality)
    lin2ulaw = audioop.lin2ulaw
    return lambda b64: b64encode(
        lin2ulaw(s.resample_chunk(frombuffer(b64decode(b64), int16)).astype(int16).tobytes(), 2))


@pytest.mark.parametrize("quality", ["HQ", "VHQ"])
@pytest.mark.parametrize("direction", ["twilio->openai", "openai->twilio"])
@pytest.mark.parametrize("impl", ["rtfast", "composed"])
def test_frame(benchmark, direction, quality, impl):
    benchmark.group = f"transcode {direction} b64, 1 s as 50 frames, {quality}"
    items = payloads(direction)
    assert len(items[0]) == (216 if direction == "twilio->openai" else 1280)
    nxt = cycler(items)
    if impl == "rtfast":
        src, dst = ("pcmu/8000", "pcm16/24000") if direction == "twilio->openai" else ("pcm16/24000", "pcmu/8000")
        t = Transcoder(src, dst, quality=quality)
        feed = t.feed_b64_to_b64
    else:
        feed = composed(direction, quality)
    benchmark(lambda: [feed(nxt()) for _ in range(BATCH)])
