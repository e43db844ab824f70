import base64
import binascii

import numpy as np
import pytest
from hypothesis import given, strategies as st

from reference import b64_ref
from rtfast import b64
from rtfast.b64 import Base64Error
from rtfast._b64 import _force

LEVELS = {1: "scalar", 2: "ssse3", 3: "avx2"}


@pytest.fixture(params=sorted(LEVELS), ids=list(LEVELS.values()))
def level(request):
    """Run a test once per code path the CPU has (a missing one falls back)."""
    _force(request.param)
    yield request.param
    _force(0)


@pytest.fixture(autouse=True, scope="module")
def _restore():
    yield
    _force(0)


def test_every_length_0_to_4096(level):
    data = np.random.default_rng(level).integers(0, 256, 4096 + 3, dtype=np.uint8).tobytes()
    for n in range(4097):
        chunk = data[n & 3: (n & 3) + n]
        text = b64.encode(chunk)
        assert text == binascii.b2a_base64(chunk, newline=False)
        assert b64.decode(text) == chunk


@given(data=st.binary(max_size=4096))
def test_random_data_matches_binascii(data):
    for lv in LEVELS:
        _force(lv)
        text = b64.encode(data)
        assert text == base64.b64encode(data)
        assert b64.decode(text) == data
        assert b64.decode(text.decode()) == data
    _force(0)


@given(data=st.binary(max_size=300), junk=st.binary(min_size=1, max_size=3),
       where=st.integers(min_value=0))
def test_invalid_input_raises_at_the_first_bad_offset(data, junk, where):
    text = bytearray(base64.b64encode(data))
    pos = where % (len(text) + 1)
    text[pos:pos] = junk
    for lv in LEVELS:
        _force(lv)
        expected = b64_ref.check(bytes(text))
        if expected is None:
            assert b64.decode(bytes(text)) == b64_ref.decode(bytes(text))
            continue
        with pytest.raises(Base64Error) as info:
            b64.decode(bytes(text))
        assert (info.value.reason, info.value.offset) == expected
    _force(0)


@given(text=st.binary(max_size=200))
def test_no_input_crashes_and_valid_means_binascii_agrees(text):
    try:
        out = b64.decode(text)
    except Base64Error as exc:
        assert b64_ref.check(text) == (exc.reason, exc.offset)
        return
    assert out == base64.b64decode(text, validate=True)


@pytest.mark.parametrize("size", [1 << 20, (1 << 20) + 1, (1 << 20) + 2])
def test_large_buffers_every_path(level, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    text = b64.encode(data)
    assert text == binascii.b2a_base64(data, newline=False)
    assert b64.decode(text) == data
    corrupt = bytearray(text)
    corrupt[size // 2] = ord("\n")
    with pytest.raises(Base64Error) as info:
        b64.decode(corrupt)
    assert info.value.offset == size // 2


@pytest.mark.parametrize("text,reason,offset", [
    (b"QQ=", "padding", 2), (b"QQ", "length", 2), (b"Q", "length", 1),
    (b"A===", "padding", 1), (b"====", "padding", 0), (b"QQ==QQ==", "padding", 2),
    (b"QU=D", "padding", 3), (b"QU=\n", "character", 3), (b"QUJD\n", "character", 4), (b"QU-D", "character", 2),
    (b"QU_D", "character", 2), (b"\xffQUJ", "character", 0), (b" QUJD", "character", 0),
])
def test_error_cases(level, text, reason, offset):
    with pytest.raises(Base64Error) as info:
        b64.decode(text)
    assert (info.value.reason, info.value.offset) == (reason, offset)
    assert str(offset) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_canonical_trailing_bits_are_accepted_like_binascii():
    for text in (b"QR==", b"QUJ=", b"QUK="):
        assert b64.decode(text) == binascii.a2b_base64(text)


def test_str_input_and_non_ascii_str():
    assert b64.decode("QUJD") == b"ABC"
    with pytest.raises(Base64Error) as info:
        b64.decode("QUJDé===")
    assert info.value.offset == 4 and info.value.reason == "character"


def test_empty():
    assert b64.encode(b"") == b"" and b64.decode(b"") == b"" and b64.decode("") == b""
    assert b64.encode_into(b"", bytearray()) == 0 and b64.decode_into(b"", bytearray()) == 0


def test_into_forms():
    data = bytes(range(200))
    out = bytearray(300)
    n = b64.encode_into(data, memoryview(out)[5:])
    assert n == b64.encoded_length(200) == 268
    assert bytes(out[5:5 + n]) == base64.b64encode(data)
    back = np.zeros(200, dtype=np.uint8)
    assert b64.decode_into(bytes(out[5:5 + n]), back) == 200
    assert back.tobytes() == data
    with pytest.raises(ValueError, match="room for 267 bytes, 268 needed"):
        b64.encode_into(data, bytearray(267))
    with pytest.raises(ValueError, match="room for 199 bytes, 200 needed"):
        b64.decode_into(base64.b64encode(data), bytearray(199))


def test_any_buffer_encodes_its_raw_bytes():
    pcm = np.arange(-5, 5, dtype=np.int16)
    assert b64.encode(pcm) == base64.b64encode(pcm.tobytes())
    assert b64.encode(memoryview(b"xxabcxx")[2:5]) == b"YWJj"


def test_type_errors():
    with pytest.raises(TypeError):
        b64.encode("text is not bytes")
    with pytest.raises(TypeError, match="1-byte items"):
        b64.decode(np.zeros(4, dtype=np.int16))
    with pytest.raises(TypeError, match="writable"):
        b64.encode_into(b"abc", b"....")


def test_error_is_picklable():
    import pickle

    err = pickle.loads(pickle.dumps(Base64Error("x", 3, "character")))
    assert (err.offset, err.reason) == (3, "character")


def test_implementation_is_reported():
    assert b64.implementation() in ("avx2", "ssse3", "scalar")
    import rtfast
    assert rtfast.build_info()["b64"] == b64.implementation()


def test_decode_fuzz_rounds():
    """Mutated base64 on every code path: decoded as binascii does, or refused at
    the first bad byte. Time-boxed with RTFAST_FUZZ_SECONDS (CI: under ASan/UBSan)."""
    from fuzz import mutations, rounds, seeded

    rng = seeded()
    try:
        for _ in rounds(20):
            text = base64.b64encode(rng.randbytes(rng.choice([0, 1, 2, 3, 30, 31, 95, 300, 1500, 4100])))
            for bad in mutations(text, rng, 10):
                expected = b64_ref.check(bad)
                for lv in LEVELS:
                    _force(lv)
                    if expected is None:
                        assert b64.decode(bad) == base64.b64decode(bad, validate=True)
                        continue
                    with pytest.raises(Base64Error) as info:
                        b64.decode(bad)
                    assert (info.value.reason, info.value.offset) == expected, (lv, bad)
    finally:
        _force(0)
