"""Every strict base64 path names the same first bad byte as rtfast.b64.decode.

The fused G.711 decoders, the carrier payload check and
``wire.build_append_b64`` validate in 4096-char blocks. Padding may close only
the whole input, never a block, so a ``=`` at offset 4094 followed by data is
a misplaced pad at 4094 (not "data after padding" at 4095, as the block-wise
checkers once said). Bad bytes are put at every position around the block
boundaries, and at random ones, and each path's offset is compared with
``b64.decode``, with the slow reference oracle and with binascii.
"""

import base64
import binascii
import re

import pytest
from hypothesis import given, settings, strategies as st

from reference import b64_ref
from rtfast import b64, g711, wire
from rtfast._b64 import _force
from rtfast._carrier import wrap_b64
from rtfast.errors import Base64Error, ProtocolError

BLOCK = 4096
LEVELS = (1, 2, 3)                              # scalar, ssse3, avx2 (capped at what the CPU has)
BAD = [b"=A", b"=!", b"==A", b"=", b"!", b"\x80", b"A=", b"-", b"==", b"==="]


def _carrier_offset(text: bytes):
    try:
        wrap_b64(b"", text, b"")
    except ProtocolError as exc:
        message = str(exc)
        m = re.search(r"at offset (\d+)", message)
        if m:
            return ("padding" if "padding" in message else "character", int(m.group(1)))
        m = re.search(r"its length (\d+) is not a multiple of 4", message)
        return ("length", int(m.group(1)))
    return None


def _offset(fn, text: bytes):
    try:
        fn(text)
    except Base64Error as exc:
        return (exc.reason, exc.offset)
    return None


PATHS = {
    "b64.decode": lambda t: _offset(b64.decode, t),
    "g711.ulaw_decode_b64": lambda t: _offset(g711.ulaw_decode_b64, t),
    "g711.alaw_decode_b64": lambda t: _offset(g711.alaw_decode_b64, t),
    "wire.build_append_b64": lambda t: _offset(wire.build_append_b64, t),
    "carrier payload check": _carrier_offset,
}


def _check_all_paths(text: bytes) -> None:
    expected = b64_ref.check(text)
    strict_ok = True
    try:
        binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        strict_ok = False
    # binascii's strict mode lets a few extra '=' through ("AAAA==="); never the reverse.
    assert strict_ok or expected is not None
    if expected is not None:
        # binascii agrees that everything before the bad byte's quantum is fine.
        q = expected[1] - expected[1] % 4
        assert binascii.a2b_base64(text[:q], strict_mode=True) == base64.b64decode(text[:q])
    for level in LEVELS:
        _force(level)
        try:
            for name, path in PATHS.items():
                assert path(text) == expected, (name, level, len(text))
        finally:
            _force(0)


def _with_bad(n: int, pos: int, bad: bytes) -> bytes:
    text = bytearray(base64.b64encode(bytes(range(256)) * (n // 256 + 1))[:n])
    bad = bad[:n - pos]                 # the length stays n
    text[pos:pos + len(bad)] = bad
    return bytes(text)


def test_pad_at_4094_then_data_is_4094_on_every_path():
    text = bytearray(b"A" * (2 * BLOCK))
    text[4094] = ord("=")
    _check_all_paths(bytes(text))
    assert PATHS["g711.ulaw_decode_b64"](bytes(text)) == ("padding", 4094)


@pytest.mark.parametrize("n", [BLOCK, BLOCK + 4, 2 * BLOCK, 2 * BLOCK + 3, 3 * BLOCK - 4])
def test_every_position_around_block_boundaries(n):
    edges = set(range(0, 8)) | set(range(n - 8, n))
    for boundary in range(BLOCK, n + 1, BLOCK):
        edges |= set(range(boundary - 8, boundary + 8))
    for pos in sorted(p for p in edges if 0 <= p < n):
        for bad in BAD:
            _check_all_paths(_with_bad(n, pos, bad))


@settings(max_examples=150, deadline=None)
@given(n=st.integers(min_value=1, max_value=3 * BLOCK + 8), where=st.integers(min_value=0),
       bad=st.sampled_from(BAD), near=st.booleans())
def test_random_bad_inputs(n, where, bad, near):
    if near:                            # a few bytes either side of a block boundary
        pos = BLOCK * (1 + where % 2) - 6 + where % 12
    else:
        pos = where
    pos %= n
    _check_all_paths(_with_bad(n, pos, bad))
