"""G.711 kernels beside the stdlib audioop, same inputs, same run."""

import base64

import pytest

from conftest import SIZES, audioop, cycler, pool
from rtfast import g711

CODECS = {
    "ulaw": (g711.ulaw_encode, g711.ulaw_decode, audioop.lin2ulaw, audioop.ulaw2lin),
    "alaw": (g711.alaw_encode, g711.alaw_decode, audioop.lin2alaw, audioop.alaw2lin),
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("impl", ["rtfast", "audioop"])
def test_encode(benchmark, codec, size, impl):
    benchmark.group = f"g711 {codec} encode {size}"
    rt_encode, _, au_encode, _ = CODECS[codec]
    nxt = cycler(pool(size))
    if impl == "rtfast":
        result = benchmark(lambda: rt_encode(nxt()))
    else:
        result = benchmark(lambda: au_encode(nxt(), 2))
    assert len(result) == SIZES[size][0]


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("impl", ["rtfast", "audioop"])
def test_decode(benchmark, codec, size, impl):
    benchmark.group = f"g711 {codec} decode {size}"
    rt_encode, rt_decode, _, au_decode = CODECS[codec]
    nxt = cycler([rt_encode(p) for p in pool(size)])
    if impl == "rtfast":
        result = benchmark(lambda: rt_decode(nxt()))
    else:
        result = benchmark(lambda: au_decode(nxt(), 2))
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
