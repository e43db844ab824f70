"""Slow, obviously-correct G.711 written from the segment formulas.

Same API as rtfast.g711, so every kernel test can run against both. The
quantisation is audioop's (the contract): mu-law works on floor(x / 4)
(14 bits), A-law on floor(x / 8) (13 bits). With itu=True, mu-law encodes as
the ITU-T G.191 reference does (ulaw_compress in its g711.c), transcribed
below step by step: a negative sample folds to (~x) >> 2 there.
"""

from __future__ import annotations

import base64
import binascii
import struct

from rtfast.errors import Base64Error

ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5


def ulaw_from_linear(x: int) -> int:
    v = x >> 2                      # 14-bit sample, floor division
    sign = 0x80 if v < 0 else 0x00
    magnitude = min(abs(v), 8159) + 33
    segment = max(0, magnitude.bit_length() - 6)
    if segment > 7:
        code = 0x7F
    else:
        code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    return (code | sign) ^ 0xFF     # mu-law transmits every bit inverted


def ulaw_from_linear_g191(x: int) -> int:
    """G.191's ulaw_compress for one 16-bit sample (its 14 most significant bits)."""
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    if absno > 0x1FFF:
        absno = 0x1FFF
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high_nibble = 0x8 - segno
    low_nibble = 0xF - ((absno >> segno) & 0xF)
    code = (high_nibble << 4) | low_nibble
    if x >= 0:
        code |= 0x80
    return code


def alaw_from_linear(x: int) -> int:
    v = x >> 3                      # 13-bit sample, floor division
    if v >= 0:
        mask, magnitude = 0xD5, v
    else:
        mask, magnitude = 0x55, -v - 1
    segment = max(0, magnitude.bit_length() - 5)
    if segment > 7:
        return 0x7F ^ mask
    shift = 1 if segment < 2 else segment
    return ((segment << 4) | ((magnitude >> shift) & 0x0F)) ^ mask


def ulaw_to_linear(code: int) -> int:
    u = ~code & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F) << 3) + 0x84) << exponent) - 0x84
    return -magnitude if u & 0x80 else magnitude


def alaw_to_linear(code: int) -> int:
    a = code ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    if exponent == 0:
        magnitude = (mantissa << 4) + 8
    else:
        magnitude = ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if a & 0x80 else -magnitude


def _samples(pcm) -> list[int]:
    data = memoryview(pcm).cast("B")
    if len(data) % 2:
        raise ValueError(f"PCM16 input must have an even number of bytes, got {len(data)}")
    return [s for (s,) in struct.iter_unpack("<h", data)]


def _pcm(values) -> bytes:
    return struct.pack(f"<{len(values)}h", *values)


def _b64decode(text) -> bytes:
    if isinstance(text, str):
        text = text.encode("ascii")
    try:
        return base64.b64decode(bytes(text), validate=True)
    except binascii.Error as exc:
        raise Base64Error(str(exc), -1, "unknown") from None


def _into(result: bytes, out) -> int:
    view = memoryview(out).cast("B")
    if len(view) < len(result):
        raise ValueError(f"out has room for {len(view)} bytes, {len(result)} needed")
    view[: len(result)] = result
    return len(result)


def ulaw_encode(pcm, *, itu: bool = False) -> bytes:
    one = ulaw_from_linear_g191 if itu else ulaw_from_linear
    return bytes(one(s) for s in _samples(pcm))


def alaw_encode(pcm, *, itu: bool = False) -> bytes:
    return bytes(alaw_from_linear(s) for s in _samples(pcm))   # G.191's A-law is audioop's


def ulaw_decode(data) -> bytes:
    return _pcm([ulaw_to_linear(c) for c in bytes(data)])


def alaw_decode(data) -> bytes:
    return _pcm([alaw_to_linear(c) for c in bytes(data)])


def ulaw_encode_into(pcm, out, *, itu: bool = False) -> int:
    return _into(ulaw_encode(pcm, itu=itu), out)


def alaw_encode_into(pcm, out, *, itu: bool = False) -> int:
    return _into(alaw_encode(pcm), out)


def ulaw_decode_into(data, out) -> int:
    return _into(ulaw_decode(data), out)


def alaw_decode_into(data, out) -> int:
    return _into(alaw_decode(data), out)


def ulaw_decode_b64(text) -> bytes:
    return ulaw_decode(_b64decode(text))


def alaw_decode_b64(text) -> bytes:
    return alaw_decode(_b64decode(text))


def ulaw_encode_b64(pcm, *, itu: bool = False) -> bytes:
    return base64.b64encode(ulaw_encode(pcm, itu=itu))


def alaw_encode_b64(pcm, *, itu: bool = False) -> bytes:
    return base64.b64encode(alaw_encode(pcm))
