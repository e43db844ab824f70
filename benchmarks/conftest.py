"""Shared inputs for the benchmarks: speech-like audio that varies between calls.

A fixed 160-sample input lets the branch predictor memorise a scalar loop
(audioop's segment search) and flatters it, so every small-size benchmark
cycles through a pool of different frames.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # noqa: F401  (re-exported for the benchmark modules)


def speech(seconds: float, rate: int, seed: int = 0) -> bytes:
    """PCM16 that looks like voiced speech: a wandering pitch with harmonics,
    syllable-rate amplitude envelope, pauses and a little noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + rng.normal(0, 3, n).cumsum() / max(rate, 1) * 50
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 0.5
    pauses = (np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6)) > -0.6).astype(float)
    signal = voice * envelope * pauses * 9000 + rng.normal(0, 200, n)
    return np.clip(signal, -32768, 32767).astype("<i2").tobytes()


def frames(frame_samples: int, rate: int, count: int = 256, seed: int = 1) -> list[bytes]:
    """count consecutive, different 20 ms-style frames of PCM16."""
    pcm = speech(frame_samples * count / rate + 0.01, rate, seed)
    step = 2 * frame_samples
    return [pcm[i * step:(i + 1) * step] for i in range(count)]


def cycler(items):
    """A zero-argument callable returning the next item, round robin."""
    return itertools.cycle(items).__next__


# Sizes the issues name: one 20 ms frame at 8 kHz and at 24 kHz, 1 s, 60 s.
SIZES = {
    "frame8k": (160, 8000),
    "frame24k": (480, 24000),
    "1s": (24000, 24000),
    "60s": (24000 * 60, 24000),
}


@functools.lru_cache(maxsize=None)
def pool(size: str) -> list[bytes]:
    samples, rate = SIZES[size]
    if samples <= 480:
        return frames(samples, rate)
    count = 8 if samples <= 24000 else 2
    return [speech(samples / rate, rate, seed)[: 2 * samples] for seed in range(count)]
