"""FrameRing vs the bytearray framer people write today.

Each round pushes 10 s of audio, arriving in chunks of irregular sizes (model
deltas), through a framer and reads it out as 20 ms frames; consecutive rounds
use different audio and different chunk sizes. The timed loops only bind
each frame and drop it at the next one (what any consumer costs comes on top
of every framer alike); test_framers_agree checks the frames themselves.
"""

import itertools

import numpy as np
import pytest

from rtfast.g711 import ulaw_encode
from rtfast.ring import FrameRing

SECONDS = 10


def speech_like(rate, seed):
    """PCM16: a voiced tone with a syllable-rate envelope, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(rate * SECONDS) / rate
    envelope = np.abs(np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6)))
    voice = np.sin(2 * np.pi * rng.uniform(110, 220) * t) * envelope * 9000
    return (voice + rng.normal(0, 300, t.size)).astype("<i2").tobytes()


def chunked(data, seed, low, high):
    cuts = np.cumsum(np.random.default_rng(seed).integers(low, high, len(data) // low + 1))
    cuts = cuts[cuts < len(data)]
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


# (frame bytes, how audio is made, chunk sizes): Twilio/RTP mu-law deltas of
# 5..300 ms; the same cut into small network reads; Vonage PCM16 16 kHz deltas.
CASES = {
    "ulaw-160": (160, lambda s: ulaw_encode(speech_like(8000, s)), 40, 2400),
    "ulaw-160-small-reads": (160, lambda s: ulaw_encode(speech_like(8000, s)), 1, 400),
    "pcm16-640": (640, lambda s: speech_like(16000, s), 160, 9600),
}


def inputs(case):
    frame, make, low, high = CASES[case]
    rounds = [chunked(make(seed), seed, low, high) for seed in range(4)]
    return frame, itertools.cycle(rounds)


def ring_iterate(ring, chunks):
    for chunk in chunks:
        ring.write(chunk)
        for frame in ring:
            pass


def ring_read_frame(ring, chunks):
    for chunk in chunks:
        ring.write(chunk)
        while (frame := ring.read_frame()) is not None:
            pass


def bytearray_framer(size, chunks):
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            frame = bytes(buf[:size])
            del buf[:size]


def test_framers_agree():
    """What the timed loops drop on the floor: the same frames, in order."""
    for case in CASES:
        frame, rounds = inputs(case)
        chunks = next(rounds)
        ring, out = FrameRing(frame, frame * 50 * SECONDS), []
        for chunk in chunks:
            ring.write(chunk)
            out += [bytes(f) for f in ring]
        assert b"".join(out) == b"".join(chunks) and len(out) == SECONDS * 50


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("framer", ["ring_iterate", "ring_read_frame", "bytearray"])
def test_framer(benchmark, case, framer):
    frame, rounds = inputs(case)
    benchmark.group = f"ring-{case}"
    if framer == "bytearray":
        run = lambda: bytearray_framer(frame, next(rounds))
    else:
        ring = FrameRing(frame, frame * 50 * SECONDS)
        pump = ring_iterate if framer == "ring_iterate" else ring_read_frame

        def run():
            pump(ring, next(rounds))
            assert ring.readable == 0  # 10 s is a whole number of frames
    benchmark(run)
