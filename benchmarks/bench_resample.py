"""Resampler.process per 20 ms frame beside soxr.ResampleStream, same frames, same run.

Baselines: the bare ``resample_chunk`` call with the frame already an int16
array (soxr's own floor), and the numpy-wrapped path users write today
(frombuffer -> resample_chunk -> astype -> tobytes). Each impl owns one
stream fed consecutive frames, as in a call. soxr filters in blocks (HQ
8k->24k emits ~1468 samples every third frame), so one frame is cheap and
the next expensive: each round is one second of a call (50 frames), and the
per-frame cost is the round's time / 50. HQ-LL (minimum phase, 256-point
DFT blocks: the bridge's default) runs more, smaller transforms; compare it
with the HQ rows (bench_transcode.py's held-back rows show what it buys).
"""

import numpy as np
import pytest
import soxr

from conftest import cycler, pool
from rtfast.resample import Resampler

BATCH = 50  # frames per round: 1 s of audio
DIRECTIONS = {"8k->24k": (8000, 24000, "frame8k"), "24k->8k": (24000, 8000, "frame24k")}


@pytest.mark.parametrize("quality", ["HQ", "HQ-LL", "VHQ"])
@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("impl", ["rtfast", "soxr-bare", "soxr-numpy"])
def test_frame(benchmark, direction, quality, impl):
    if quality == "HQ-LL" and impl != "rtfast":
        pytest.skip("python-soxr has no minimum-phase / small-block setting (HQ-LL's baseline is HQ)")
    in_rate, out_rate, size = DIRECTIONS[direction]
    benchmark.group = f"resample {direction} 1 s as 50 frames of 20 ms, {quality}"
    frames = pool(size)
    if impl == "rtfast":
        r = Resampler(in_rate, out_rate, quality=quality)
        step, nxt = r.process, cycler(frames)
    else:
        s = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)
        if impl == "soxr-bare":
            step, nxt = s.resample_chunk, cycler([np.frombuffer(f, np.int16) for f in frames])
        else:
            frombuffer, int16, nxt = np.frombuffer, np.int16, cycler(frames)
            step = lambda f: s.resample_chunk(frombuffer(f, int16)).astype(int16).tobytes()  # noqa: E731
    benchmark(lambda: [step(nxt()) for _ in range(BATCH)])
