"""rtfast.transcode: every format pair against the composed path, streaming, errors."""

import base64
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from _audioop import audioop
from rtfast.errors import Base64Error
from rtfast.resample import Resampler
from rtfast.transcode import FORMATS, Transcoder

DIRECT, FALLBACK = "libsoxr-direct", "soxr.ResampleStream"
RATE = {f: int(f.split("/")[1]) for f in FORMATS}


def speech(seconds: float, rate: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 8000 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 2.5 * t) + rng.normal(0, 600, len(t))
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def source(fmt: str, seconds: float = 0.5, seed: int = 0) -> bytes:
    pcm = speech(seconds, RATE[fmt], seed)
    return {"pcmu": lambda: audioop.lin2ulaw(pcm, 2),
            "pcma": lambda: audioop.lin2alaw(pcm, 2)}.get(fmt[:4], lambda: pcm)()


def composed(data: bytes, src: str, dst: str, quality: str = "HQ") -> bytes:
    """The path users write: decode, resample the whole stream, encode."""
    pcm = {"pcmu": lambda: audioop.ulaw2lin(data, 2),
           "pcma": lambda: audioop.alaw2lin(data, 2)}.get(src[:4], lambda: data)()
    if RATE[src] != RATE[dst]:
        r = Resampler(RATE[src], RATE[dst], quality=quality)
        pcm = r.process(pcm) + r.flush()
    return {"pcmu": lambda: audioop.lin2ulaw(pcm, 2),
            "pcma": lambda: audioop.lin2alaw(pcm, 2)}.get(dst[:4], lambda: pcm)()


def frame_bytes(fmt: str) -> int:
    """Bytes in 20 ms of fmt."""
    return RATE[fmt] // 50 * (2 if fmt.startswith("pcm16") else 1)


@pytest.mark.parametrize("src,dst", list(itertools.product(FORMATS, FORMATS)))
def test_every_pair(src, dst):
    data = source(src)
    ref = composed(data, src, dst)
    step = frame_bytes(src)
    chunks = [data[i:i + step] for i in range(0, len(data), step)]
    t = Transcoder(src, dst)
    assert t.feed(data) + t.flush() == ref                                   # whole call
    assert b"".join(t.feed(c) for c in chunks) + t.flush() == ref            # 20 ms frames
    b64 = [base64.b64encode(c) for c in chunks]
    out = [t.feed_b64_to_b64(c) for c in b64] + [t.flush_b64()]
    assert b"".join(base64.b64decode(o, validate=True) for o in out) == ref  # each a whole message
    out = [t.feed_b64(c.decode()) for c in b64] + [t.flush()]                # str payloads
    assert b"".join(out) == ref
    out = [t.feed_to_b64(c) for c in chunks] + [t.flush_b64()]
    assert b"".join(base64.b64decode(o) for o in out) == ref


@pytest.mark.parametrize("quality", ["HQ", "VHQ"])
@pytest.mark.parametrize("src,dst", [("pcmu/8000", "pcm16/24000"), ("pcm16/24000", "pcmu/8000"),
                                     ("pcma/8000", "pcm16/16000")])
def test_engines_identical(src, dst, quality):
    data = source(src, 0.3, seed=5)
    outs = []
    for eng in (DIRECT, FALLBACK):
        t = Transcoder(src, dst, quality=quality, _engine=eng)
        assert t.engine == eng
        step = frame_bytes(src)
        outs.append(b"".join(t.feed_b64_to_b64(base64.b64encode(data[i:i + step]))
                             for i in range(0, len(data), step)) + t.flush_b64())
    assert outs[0] == outs[1]


@settings(max_examples=30)
@given(st.lists(st.integers(0, 300), max_size=30),
       st.sampled_from([("pcm16/24000", "pcmu/8000"), ("pcm16/8000", "pcma/8000"),
                        ("pcm16/16000", "pcm16/48000"), ("pcmu/8000", "pcm16/16000")]))
def test_irregular_splits(cuts, pair):
    src, dst = pair
    data = source(src, 0.2, seed=len(cuts))
    t = Transcoder(src, dst)
    out, pos = [], 0
    for c in cuts:                        # odd cuts split PCM16 samples
        out.append(t.feed(data[pos:pos + c]))
        pos += c
    out.append(t.feed(data[pos:]))
    assert b"".join(out) + t.flush() == composed(data, src, dst)


@pytest.mark.parametrize("fmt", FORMATS)
def test_passthrough_no_copy(fmt):
    t = Transcoder(fmt, fmt.upper())
    data = source(fmt, 0.02) + b"\x01"    # an odd byte passes through too
    b64 = base64.b64encode(data)
    assert t.feed(data) is data
    assert t.feed_b64_to_b64(b64) is b64
    assert t.feed_b64(b64) == data
    assert t.feed_to_b64(data) == b64
    assert t.feed_b64_to_b64(b64.decode()) == b64
    assert t.feed(bytearray(data)) == data
    assert t.flush() == b"" and t.flush_b64() == b""
    assert t.engine is None and t.delay == 0.0
    with pytest.raises(Base64Error):
        t.feed_b64_to_b64(b64[:-1])       # checked, not trusted


@pytest.mark.parametrize("bad", ["pcmu/16000", "opus/48000", "pcm16", "", "pcm16/44100", None, 8000])
def test_bad_formats(bad):
    with pytest.raises(ValueError, match="format"):
        Transcoder(bad, "pcm16/24000")
    with pytest.raises(ValueError, match="format"):
        Transcoder("pcmu/8000", bad)


def test_bad_quality():
    with pytest.raises(ValueError, match="quality"):
        Transcoder("pcmu/8000", "pcm16/24000", quality="ultra")


@pytest.mark.parametrize("src,dst", [("pcmu/8000", "pcm16/24000"), ("pcm16/24000", "pcmu/8000"),
                                     ("pcm16/8000", "pcmu/8000")])
@pytest.mark.parametrize("to_b64", [False, True])
def test_bad_base64_leaves_state(src, dst, to_b64):
    data = source(src, 0.2, seed=3)
    step = frame_bytes(src) + 1 if src.startswith("pcm16") else frame_bytes(src)  # odd: a carry pends
    frames = [base64.b64encode(data[i:i + step]) for i in range(0, len(data), step)]
    good, bad = Transcoder(src, dst), Transcoder(src, dst)
    feed_good = good.feed_b64_to_b64 if to_b64 else good.feed_b64
    feed_bad = bad.feed_b64_to_b64 if to_b64 else bad.feed_b64
    out_good, out_bad = [], []
    for i, f in enumerate(frames):
        if i % 3 == 1:
            corrupt = f[:8] + b"*" + f[9:]
            with pytest.raises(Base64Error) as exc:
                feed_bad(corrupt)
            assert exc.value.offset == 8 and exc.value.reason == "character"
            with pytest.raises(Base64Error) as exc:
                feed_bad(f[:-1])
            assert exc.value.reason in ("length", "padding")
            with pytest.raises(Base64Error):
                feed_bad("é" + f.decode()[1:])
        out_good.append(feed_good(f))
        out_bad.append(feed_bad(f))
    assert out_bad == out_good
    assert bad.flush() == good.flush()


def test_types():
    t = Transcoder("pcmu/8000", "pcm16/24000")
    with pytest.raises(TypeError):
        t.feed("text")
    with pytest.raises(TypeError, match="1-byte"):
        t.feed(np.zeros(4, np.int16))              # G.711 is bytes
    t2 = Transcoder("pcm16/8000", "pcmu/8000")
    assert t2.feed(np.zeros(4, np.int16)) == b"\xff" * 4
    with pytest.raises(TypeError, match="PCM16"):
        t2.feed(np.zeros(4, np.float32))
    assert repr(t) == "Transcoder('pcmu/8000', 'pcm16/24000')"


def test_reset_and_delay():
    data = source("pcmu/8000", 0.3)
    t = Transcoder("pcmu/8000", "pcm16/24000", quality="VHQ")
    ref = composed(data, "pcmu/8000", "pcm16/24000", "VHQ")
    t.feed(data[:500])
    assert t.delay > 0
    t.reset()
    assert t.delay == 0
    assert t.feed(data) + t.flush() == ref
    t3 = Transcoder("pcm16/8000", "pcmu/8000")
    assert t3.feed(b"\x00") == b""                 # half a sample waits
    t3.reset()                                     # and reset drops it
    assert t3.feed(b"\x00\x00") == b"\xff"


def test_large_feed():
    """A whole call in one feed (GIL released, scratch freed after)."""
    data = source("pcm16/24000", 6.0)
    t = Transcoder("pcm16/24000", "pcmu/8000")
    assert t.feed(data) + t.flush() == composed(data, "pcm16/24000", "pcmu/8000")


@pytest.mark.parametrize("src,dst", [("pcmu/8000", "pcm16/24000"), ("pcm16/24000", "pcmu/8000"),
                                     ("pcma/8000", "pcm16/16000"), ("pcm16/16000", "pcm16/24000")])
def test_low_latency_quality_passes_through(src, dst):
    """quality="HQ-LL" (the bridge's): same bytes framed or whole, as the composed
    path at that quality, and to or from 24 kHz a non-empty message for every
    20 ms frame (8 <-> 16 kHz runs a 2x stage that still answers every other one)."""
    data = source(src, 1.0, seed=9)
    ref = composed(data, src, dst, "HQ-LL")
    assert ref != composed(data, src, dst, "HQ")          # a different filter really ran
    t = Transcoder(src, dst, quality="HQ-LL")
    assert t.feed(data) + t.flush() == ref
    step = frame_bytes(src)
    out = [t.feed_b64_to_b64(base64.b64encode(data[i:i + step])) for i in range(0, len(data), step)]
    assert all(out) or RATE[src] * RATE[dst] == 8000 * 16000
    assert b"".join(base64.b64decode(o) for o in out) + t.flush() == ref
    with pytest.raises(RuntimeError, match="libsoxr-direct"):
        Transcoder(src, dst, quality="HQ-LL", _engine=FALLBACK)
