"""rtfast.resample: chunk invariance against soxr's one-shot, both engines, state."""

import threading

import numpy as np
import pytest
import soxr
from hypothesis import given, settings, strategies as st

from rtfast.resample import QUALITIES, Resampler, engine

DIRECT, FALLBACK = "libsoxr-direct", "soxr.ResampleStream"
PAIRS = [(8000, 24000), (24000, 8000), (8000, 16000), (16000, 8000),
         (16000, 24000), (24000, 16000), (24000, 48000), (48000, 24000)]
LENGTHS = [0, 1, 2, 99, 160, 4799, 100_000]        # samples
CHUNKS = [1, 17, 160, 320, 480, 509, 960, 4800, 9600]  # bytes: odd ones split samples


def signal(n: int, seed: int = 0) -> bytes:
    """Speech-like PCM16 with a stretch of full-scale samples (the filter overshoots: clipping)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000
    x = 9000 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) + rng.normal(0, 800, n)
    x[n // 3: n // 3 + min(n // 10, 400)] = 32767
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def oneshot(pcm: bytes, in_rate: int, out_rate: int, quality: str) -> bytes:
    """soxr's one-shot resample, undithered: what Resampler promises to equal."""
    x = np.frombuffer(pcm, "<i2").astype(np.float64) / 32768
    y = soxr.resample(x, in_rate, out_rate, quality)
    return np.clip(np.rint(y * 32768), -32768, 32767).astype("<i2").tobytes()


def streamed(r: Resampler, pcm: bytes, chunk: int, offset: int = 0) -> bytes:
    """Feed pcm in chunk-byte pieces, from a buffer misaligned by offset bytes."""
    buf = memoryview(bytearray(offset) + pcm)[offset:]
    return b"".join([r.process(buf[i:i + chunk]) for i in range(0, len(pcm), chunk)]) + r.flush()


def test_engine_is_direct():
    assert engine() == DIRECT
    assert Resampler(8000, 24000).engine == DIRECT


@pytest.mark.parametrize("quality", ["HQ", "VHQ"])
@pytest.mark.parametrize("in_rate,out_rate", PAIRS)
def test_chunk_invariance(in_rate, out_rate, quality):
    for n in LENGTHS:
        pcm = signal(n, seed=n)
        ref = oneshot(pcm, in_rate, out_rate, quality)
        r = Resampler(in_rate, out_rate, quality=quality)
        assert r.process(pcm) + r.flush() == ref, n
        for chunk in CHUNKS:
            if n * 2 // chunk > 20_000:   # keep the run short: at most 20k calls
                continue
            assert streamed(r, pcm, chunk, offset=chunk & 1) == ref, (n, chunk)


@pytest.mark.parametrize("quality", ["HQ", "VHQ"])
def test_int16_oneshot_differs_only_by_dither(quality):
    """soxr.resample on int16 dithers (+-1 LSB); ours is the same signal undithered."""
    pcm = signal(8000)
    ours = np.frombuffer(oneshot(pcm, 8000, 24000, quality), "<i2").astype(int)
    theirs = soxr.resample(np.frombuffer(pcm, "<i2"), 8000, 24000, quality).astype(int)
    assert len(ours) == len(theirs)
    assert np.abs(ours - theirs).max() <= 1


def test_default_quality_is_soxr_default():
    pcm = signal(2000)
    r = Resampler(8000, 24000)
    assert r.quality == "HQ"
    x = np.frombuffer(pcm, "<i2") / 32768
    y = np.clip(np.rint(soxr.resample(x, 8000, 24000) * 32768), -32768, 32767).astype("<i2")
    assert r.process(pcm) + r.flush() == y.tobytes()


@settings(max_examples=40)
@given(st.lists(st.integers(0, 700), max_size=40), st.sampled_from(PAIRS),
       st.sampled_from([DIRECT, FALLBACK]))
def test_irregular_splits(cuts, pair, eng):
    pcm = signal(sum(cuts) // 2 + 50, seed=len(cuts))
    r = Resampler(*pair, _engine=eng)
    out, pos = [], 0
    for c in cuts:
        out.append(r.process(pcm[pos:pos + c]))
        pos += c
    out.append(r.process(pcm[pos:]))
    assert b"".join(out) + r.flush() == oneshot(pcm, *pair, "HQ")


@pytest.mark.parametrize("quality", [q for q in QUALITIES if q != "HQ-LL"])
@pytest.mark.parametrize("in_rate,out_rate", [(8000, 24000), (24000, 8000), (16000, 48000)])
def test_engines_identical(in_rate, out_rate, quality):
    pcm = signal(3000, seed=7)
    outs = []
    for eng in (DIRECT, FALLBACK):
        r = Resampler(in_rate, out_rate, quality=quality, _engine=eng)
        assert r.engine == eng
        outs.append([streamed(r, pcm, 321), r.process(pcm[:999]) + r.flush()])
    assert outs[0] == outs[1]


@pytest.mark.parametrize("eng", [DIRECT, FALLBACK])
def test_float32(eng):
    x = (np.frombuffer(signal(4000), "<i2") / 32768).astype("<f4")
    ref = soxr.resample(x, 8000, 24000, "HQ").astype("<f4").tobytes()
    r = Resampler(8000, 24000, dtype="float32", _engine=eng)
    assert streamed(r, x.tobytes(), 7) == ref            # 7 bytes: split float samples
    assert r.process(x) + r.flush() == ref               # a float32 array as raw bytes


@pytest.mark.parametrize("eng", [DIRECT, FALLBACK])
def test_odd_byte_carried(eng):
    pcm = signal(480)
    r = Resampler(24000, 8000, _engine=eng)
    assert r.process(pcm[:1]) == b""
    out = r.process(pcm[1:321]) + r.process(pcm[321:]) + r.flush()
    assert out == oneshot(pcm, 24000, 8000, "HQ")
    # flush drops an incomplete sample: the next utterance starts clean.
    r.process(pcm[:5])
    r.flush()
    assert r.process(pcm) + r.flush() == oneshot(pcm, 24000, 8000, "HQ")


@pytest.mark.parametrize("eng", [DIRECT, FALLBACK])
def test_process_into(eng):
    pcm = signal(4000)
    r, ref = Resampler(8000, 24000, _engine=eng), Resampler(8000, 24000)
    out = bytearray(20000)
    got = []
    for i in range(0, len(pcm), 320):
        frame = pcm[i:i + 320]
        bound = r.max_output(len(frame))
        small = bytearray(bound - 1)
        with pytest.raises(ValueError, match="max_output"):
            r.process_into(frame, small)
        assert small == bytearray(len(small))            # nothing written
        n = r.process_into(frame, out)
        assert n <= bound
        got.append(bytes(out[:n]))
        assert got[-1] == ref.process(frame)             # nothing consumed by the failed call
    assert b"".join(got) + r.flush() == oneshot(pcm, 8000, 24000, "HQ")
    a = np.zeros(13000, np.int16)                        # an int16 array as out
    assert r.process_into(np.frombuffer(pcm, np.int16), a) > 0


@pytest.mark.parametrize("eng", [DIRECT, FALLBACK])
def test_flush_reset_delay(eng):
    pcm = signal(2000)
    ref = oneshot(pcm, 8000, 24000, "VHQ")
    r = Resampler(8000, 24000, quality="VHQ", _engine=eng)
    assert r.delay == 0
    assert r.flush() == b""                              # nothing fed: nothing out
    first = r.process(pcm[:320])
    assert r.delay > 0 and len(first) < 960              # the filter holds samples back
    r.reset()
    assert r.delay == 0
    assert r.process(pcm) + r.flush() == ref             # reset: as new
    assert r.delay == 0
    assert r.process(pcm) + r.flush() == ref             # flush leaves it ready too
    held = r.process(pcm)
    assert len(held) // 2 + r.delay == pytest.approx(len(ref) // 2, abs=1)  # delay: samples


def test_bad_arguments():
    with pytest.raises(ValueError, match="quality"):
        Resampler(8000, 24000, quality="best")
    with pytest.raises(ValueError, match="dtype"):
        Resampler(8000, 24000, dtype="int32")
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 24000)
    with pytest.raises(ValueError, match="_engine"):
        Resampler(8000, 24000, _engine="scipy")
    with pytest.raises(ValueError, match="n_bytes"):
        Resampler(8000, 24000).max_output(-1)
    r = Resampler(8000, 24000)
    with pytest.raises(TypeError, match="PCM16"):
        r.process(np.zeros(4, np.float64))
    with pytest.raises(TypeError):
        r.process("text")
    with pytest.raises(TypeError, match="writable"):
        r.process_into(b"\0\0", b"\0" * 100)
    assert Resampler(8000, 24000, quality="vhq").quality == "VHQ"


def test_threads_large_input():
    """Large inputs drop the GIL; separate resamplers run side by side."""
    pcm = signal(100_000)
    ref = oneshot(pcm, 24000, 8000, "HQ")
    results = [None] * 4

    def work(i):
        r = Resampler(24000, 8000)
        results[i] = r.process(pcm) + r.flush()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [ref] * 4


# -- HQ-LL: minimum phase, small blocks ---------------------------------------------------

def held_back_ms(r: Resampler, pcm: bytes, in_rate: int) -> tuple[list[float], list[int]]:
    """Feed 20 ms frames; after each, the input time fed minus the output time
    emitted (ms), and the output samples that frame returned."""
    step, out_rate = in_rate // 50 * 2, r.out_rate
    held, sizes, fed, got = [], [], 0, 0
    for i in range(0, len(pcm) - step + 1, step):
        out = r.process(pcm[i:i + step])
        fed += step // 2
        got += len(out) // 2
        held.append(1000 * (fed / in_rate - got / out_rate))
        sizes.append(len(out) // 2)
    return held, sizes


@pytest.mark.parametrize("in_rate,out_rate", [(8000, 24000), (24000, 8000), (16000, 24000), (24000, 16000)])
def test_low_latency_holds_back_under_10_ms_and_answers_every_frame(in_rate, out_rate):
    pcm = signal(in_rate * 5, seed=3)                     # 5 s: 250 frames
    held, sizes = held_back_ms(Resampler(in_rate, out_rate, quality="HQ-LL"), pcm, in_rate)
    assert np.median(held) <= 10 and max(held) <= 20 and min(held) >= 0, (np.median(held), max(held))
    assert min(sizes) > 0                                 # output for every 20 ms frame
    # What it replaces: HQ's linear-phase filter in large blocks holds back
    # 2-4x as much and answers only some frames.
    held, sizes = held_back_ms(Resampler(in_rate, out_rate, quality="HQ"), pcm, in_rate)
    assert np.median(held) > 20 and max(held) > 30 and min(sizes) == 0


@pytest.mark.parametrize("in_rate,out_rate", PAIRS)
def test_low_latency_chunk_invariance(in_rate, out_rate):
    r = Resampler(in_rate, out_rate, quality="HQ-LL")
    for n in LENGTHS:
        pcm = signal(n, seed=n)
        whole = r.process(pcm) + r.flush()
        assert len(whole) // 2 == pytest.approx(n * out_rate / in_rate, abs=1)
        for chunk in CHUNKS:
            if n * 2 // chunk > 20_000:
                continue
            assert streamed(r, pcm, chunk, offset=chunk & 1) == whole, (n, chunk)


def tone(freq: float, rate: int, seconds: float = 2.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype("<f4")


def amplitudes(quality: str, in_rate: int, out_rate: int, x: np.ndarray) -> np.ndarray:
    """Resample x in 20 ms frames; the amplitude per 1 Hz bin of 1 s of steady state
    (integer-Hz tones fill whole bins: no window, no leakage)."""
    r = Resampler(in_rate, out_rate, quality=quality, dtype="float32")
    raw, step = x.tobytes(), in_rate // 50 * 4
    y = np.frombuffer(b"".join(r.process(raw[i:i + step]) for i in range(0, len(raw), step)), "<f4")
    seg = y[out_rate // 2: out_rate // 2 + out_rate].astype(np.float64)
    assert len(seg) == out_rate
    return np.abs(np.fft.rfft(seg)) / (out_rate / 2)


def db(a: float) -> float:
    return 20 * np.log10(max(a, 1e-30) / 0.5)


@pytest.mark.parametrize("quality", ["HQ", "HQ-LL"])
@pytest.mark.parametrize("in_rate,out_rate,above", [(24000, 8000, [4100, 5000, 11000]),
                                                    (24000, 16000, [8100, 10000, 11500])])
def test_low_latency_keeps_hq_alias_rejection_and_passband_down(quality, in_rate, out_rate, above):
    for f in above:                                       # above the output Nyquist
        assert db(amplitudes(quality, in_rate, out_rate, tone(f, in_rate)).max()) <= -80, f
    assert abs(db(amplitudes(quality, in_rate, out_rate, tone(3000, in_rate))[3000])) <= 0.5


@pytest.mark.parametrize("quality", ["HQ", "HQ-LL"])
@pytest.mark.parametrize("in_rate,out_rate", [(8000, 24000), (16000, 24000)])
def test_low_latency_keeps_hq_image_rejection_and_passband_up(quality, in_rate, out_rate):
    for f in (3000, in_rate // 2 - 200):
        a = amplitudes(quality, in_rate, out_rate, tone(f, in_rate))
        assert db(a[in_rate // 2 + 1:].max()) <= -80, f   # images above the input's band
    a = amplitudes(quality, in_rate, out_rate, tone(3000, in_rate))
    assert abs(db(a[3000])) <= 0.5


def test_low_latency_needs_the_direct_engine():
    with pytest.raises(RuntimeError, match="HQ-LL.*libsoxr-direct"):
        Resampler(8000, 24000, quality="HQ-LL", _engine=FALLBACK)
    r = Resampler(8000, 24000, quality="hq-ll")
    assert r.quality == "HQ-LL" and r.engine == DIRECT
