"""base64 kernels beside binascii and pybase64, same inputs, same run."""

import binascii

import pybase64
import pytest

from conftest import SIZES, cycler, pool
from rtfast import b64

ENCODERS = {
    "rtfast": b64.encode,
    "binascii": lambda d: binascii.b2a_base64(d, newline=False),
    "pybase64": pybase64.b64encode,
}
DECODERS = {
    "rtfast": b64.decode,
    "binascii": lambda t: binascii.a2b_base64(t, strict_mode=True),
    "pybase64": lambda t: pybase64.b64decode(t, validate=True),
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl", list(ENCODERS))
def test_encode(benchmark, size, impl):
    benchmark.group = f"base64 encode pcm16 {size}"
    nxt = cycler(pool(size))
    encode = ENCODERS[impl]
    result = benchmark(lambda: encode(nxt()))
    assert len(result) == b64.encoded_length(2 * SIZES[size][0])


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl", list(DECODERS))
def test_decode(benchmark, size, impl):
    benchmark.group = f"base64 decode pcm16 {size}"
    nxt = cycler([b64.encode(p) for p in pool(size)])
    decode = DECODERS[impl]
    result = benchmark(lambda: decode(nxt()))
    assert len(result) == 2 * SIZES[size][0]
