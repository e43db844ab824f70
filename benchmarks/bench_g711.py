"""G.711 kernels beside the stdlib audioop, same inputs, same run.

1 s and 60 s: one call per round, cycling through distinct buffers. One 20 ms
frame: each round converts every frame of the pool (256 distinct frames) once
through ``map``, so the per-call cost is the round's time / 256 and the
harness adds ~10 ns a call to both sides rather than the ~50 ns of a lambda
and a cycler, which would swamp a ~60 ns call and flatten the ratio.
``rtfast-itu`` is the G.191 mu-law mode beside the audioop-exact default
(called through a lambda to pass the keyword: ~30 ns more a call).
``floor-memcpy`` copies the input into new bytes (``bytes(memoryview(pcm))``,
one memcpy): it reads what the encoder reads and writes twice as much, so an
encoder near it is bound by memory, not by arithmetic (at 60 s, where the
buffers no longer fit in cache, it is slower than the encoders).
"""

import base64

import pytest

from conftest import SIZES, audioop, cycler, pool
from rtfast import _g711, g711

CODECS = {
    "ulaw": (g711.ulaw_encode, g711.ulaw_decode, audioop.lin2ulaw, audioop.ulaw2lin),
    "alaw": (g711.alaw_encode, g711.alaw_decode, audioop.lin2alaw, audioop.alaw2lin),
}
FRAMES = ("frame8k", "frame24k")


def run(benchmark, fn, size, items, width=None):
    """Benchmark fn over items; returns one result. width: audioop's extra argument."""
    benchmark.extra_info["isa"] = _g711.isa()
    if size in FRAMES:
        benchmark.extra_info["calls_per_round"] = len(items)
        twos = [width] * len(items)
        if width is None:
            return benchmark(lambda: list(map(fn, items)))[0]
        return benchmark(lambda: list(map(fn, items, twos)))[0]
    nxt = cycler(items)
    if width is None:
        return benchmark(lambda: fn(nxt()))
    return benchmark(lambda: fn(nxt(), width))


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("impl", ["rtfast", "rtfast-itu", "audioop", "floor-memcpy"])
def test_encode(benchmark, codec, size, impl):
    if impl == "rtfast-itu" and codec == "alaw":
        pytest.skip("G.191 A-law is audioop's A-law")
    if impl == "floor-memcpy":
        benchmark.group = f"g711 {codec} encode {size}"
        result = run(benchmark, lambda p: bytes(memoryview(p)), size, pool(size))
        assert len(result) == 2 * SIZES[size][0]
        return
    benchmark.group = f"g711 {codec} encode {size}"
    rt_encode, _, au_encode, _ = CODECS[codec]
    if impl == "rtfast":
        result = run(benchmark, rt_encode, size, pool(size))
    elif impl == "rtfast-itu":
        result = run(benchmark, lambda p: rt_encode(p, itu=True), size, pool(size))
    else:
        result = run(benchmark, au_encode, size, pool(size), width=2)
    assert len(result) == SIZES[size][0]


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("impl", ["rtfast", "audioop"])
def test_decode(benchmark, codec, size, impl):
    benchmark.group = f"g711 {codec} decode {size}"
    rt_encode, rt_decode, _, au_decode = CODECS[codec]
    codes = [rt_encode(p) for p in pool(size)]
    if impl == "rtfast":
        result = run(benchmark, rt_decode, size, codes)
    else:
        result = run(benchmark, au_decode, size, codes, width=2)
    assert len(result) == 2 * SIZES[size][0]


@pytest.mark.parametrize("impl", ["rtfast", "stdlib"])
def test_twilio_payload_to_pcm(benchmark, impl):
    """A 216-char Twilio media payload (base64 mu-law) to PCM16 8 kHz."""
    benchmark.group = "g711 ulaw base64 payload -> pcm16 (twilio frame)"
    payloads = [base64.b64encode(g711.ulaw_encode(p)) for p in pool("frame8k")]
    assert len(payloads[0]) == 216
    nxt = cycler(payloads)
    if impl == "rtfast":
        result = benchmark(lambda: g711.ulaw_decode_b64(nxt()))
    else:
        b64decode, ulaw2lin = base64.b64decode, audioop.ulaw2lin
        result = benchmark(lambda: ulaw2lin(b64decode(nxt()), 2))
    assert len(result) == 320


@pytest.mark.parametrize("impl", ["rtfast", "stdlib"])
def test_pcm_to_twilio_payload(benchmark, impl):
    """20 ms of PCM16 8 kHz to a base64 mu-law Twilio media payload."""
    benchmark.group = "g711 pcm16 -> ulaw base64 payload (twilio frame)"
    nxt = cycler(pool("frame8k"))
    if impl == "rtfast":
        result = benchmark(lambda: g711.ulaw_encode_b64(nxt()))
    else:
        b64encode, lin2ulaw = base64.b64encode, audioop.lin2ulaw
        result = benchmark(lambda: b64encode(lin2ulaw(nxt(), 2)))
    assert len(result) == 216

