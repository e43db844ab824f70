import array
import base64
import functools

import numpy as np
import pytest
from hypothesis import given, strategies as st

from _audioop import audioop
from reference import g711_ref
from rtfast import _g711, g711
from rtfast.errors import Base64Error

ALL_PCM = array.array("h", range(-32768, 32768)).tobytes()
ALL_CODES = bytes(range(256))

CODECS = {
    "ulaw": (audioop.lin2ulaw, audioop.ulaw2lin),
    "alaw": (audioop.lin2alaw, audioop.alaw2lin),
}


# The loops are compiled per instruction set and picked at import; every one
# this machine runs is checked exhaustively, not only the one in use.
ISAS = ["sse2", "avx2", "avx512", "avx512fp16"]


@pytest.fixture(params=[*ISAS, "reference"])
def impl(request):
    if request.param == "reference":
        yield g711_ref
        return
    best = _g711.isa()
    if not _g711._use_isa(request.param):
        pytest.skip(f"this CPU does not run the {request.param} loops")
    try:
        yield g711
    finally:
        assert _g711._use_isa(best)


@functools.lru_cache(maxsize=None)
def g191_ulaw_of_all_pcm() -> bytes:
    """The slow G.191 transcription, once."""
    return bytes(g711_ref.ulaw_from_linear_g191(x) for x in range(-32768, 32768))


def fns(impl, codec):
    return (getattr(impl, f"{codec}_encode"), getattr(impl, f"{codec}_decode"),
            getattr(impl, f"{codec}_encode_into"), getattr(impl, f"{codec}_decode_into"),
            getattr(impl, f"{codec}_encode_b64"), getattr(impl, f"{codec}_decode_b64"))


@pytest.mark.parametrize("codec", CODECS)
def test_every_int16_encodes_like_audioop(impl, codec):
    encode = fns(impl, codec)[0]
    assert encode(ALL_PCM) == CODECS[codec][0](ALL_PCM, 2)


def test_every_int16_encodes_like_g191_in_itu_mode(impl):
    assert impl.ulaw_encode(ALL_PCM, itu=True) == g191_ulaw_of_all_pcm()
    out = bytearray(len(ALL_PCM) // 2)
    assert impl.ulaw_encode_into(ALL_PCM, out, itu=True) == len(out)
    assert bytes(out) == g191_ulaw_of_all_pcm()
    assert impl.ulaw_encode_b64(ALL_PCM, itu=True) == base64.b64encode(g191_ulaw_of_all_pcm())


def test_alaw_itu_mode_is_audioop():
    # G.191's A-law folds a negative sample as audioop does: one answer.
    assert g711.alaw_encode(ALL_PCM, itu=True) == audioop.lin2alaw(ALL_PCM, 2)
    out = bytearray(len(ALL_PCM) // 2)
    assert g711.alaw_encode_into(ALL_PCM, out, itu=True) == len(out)
    assert bytes(out) == audioop.lin2alaw(ALL_PCM, 2)
    assert g711.alaw_encode_b64(ALL_PCM, itu=True) == base64.b64encode(bytes(out))


def test_audioop_and_g191_mu_law_differ_on_508_negative_inputs_by_one_step():
    ours, itu = g711.ulaw_encode(ALL_PCM), g711.ulaw_encode(ALL_PCM, itu=True)
    differ = [i - 32768 for i in range(65536) if ours[i] != itu[i]]
    assert len(differ) == 508 and max(differ) == -1
    assert all(itu[x + 32768] == ours[x + 32768] + 1 for x in differ)   # one code step
    assert g711.ulaw_encode(array.array("h", [-1, -2, -3, -4]).tobytes()) == b"\x7e" * 4
    assert g711.ulaw_encode(array.array("h", [-1, -2, -3, -4]).tobytes(), itu=True) == b"\x7f" * 4
    # Both decode back to the same sign: 0x7E is -8, 0x7F is 0.
    assert g711.ulaw_decode(b"\x7e\x7f") == array.array("h", [-8, 0]).tobytes()


def test_isa_reports_the_widest_loops_this_cpu_runs():
    assert _g711.isa() in ISAS
    supported = [isa for isa in ISAS if _g711._use_isa(isa)]
    assert supported[0] == "sse2"                  # the baseline always runs
    assert _g711._use_isa(supported[-1]) and _g711.isa() == supported[-1]
    assert not _g711._use_isa("neon")


@pytest.mark.parametrize("codec", CODECS)
def test_every_code_decodes_like_audioop(impl, codec):
    decode = fns(impl, codec)[1]
    assert decode(ALL_CODES) == CODECS[codec][1](ALL_CODES, 2)


@pytest.mark.parametrize("codec", CODECS)
def test_decode_encode_is_identity_on_codes(impl, codec):
    encode, decode = fns(impl, codec)[:2]
    back = encode(decode(ALL_CODES))
    if codec == "ulaw":
        # 0x7F and 0xFF both decode to 0; the encoder picks 0xFF (positive zero).
        expected = ALL_CODES.replace(b"\x7f", b"\xff")
    else:
        expected = ALL_CODES
    assert back == expected


@pytest.mark.parametrize("codec", CODECS)
def test_into_forms_write_the_same_bytes(impl, codec):
    encode, decode, encode_into, decode_into = fns(impl, codec)[:4]
    out = bytearray(len(ALL_PCM) // 2 + 7)
    assert encode_into(ALL_PCM, out) == len(ALL_PCM) // 2
    assert bytes(out[: len(ALL_PCM) // 2]) == encode(ALL_PCM)
    assert out[len(ALL_PCM) // 2:] == bytearray(7)          # nothing past the end
    pcm = bytearray(512)
    assert decode_into(ALL_CODES, pcm) == 512
    assert bytes(pcm) == decode(ALL_CODES)


@pytest.mark.parametrize("codec", CODECS)
def test_fused_b64_forms_equal_composed(impl, codec):
    encode, decode, _, _, encode_b64, decode_b64 = fns(impl, codec)
    assert encode_b64(ALL_PCM) == base64.b64encode(encode(ALL_PCM))
    text = base64.b64encode(ALL_CODES)
    assert decode_b64(text) == decode(ALL_CODES)
    assert decode_b64(text.decode()) == decode(ALL_CODES)


# -- the compiled kernel only: buffers, errors, sizes ---------------------------------------

speech = st.binary(max_size=4096)


@given(pcm=st.binary(max_size=4096).filter(lambda b: len(b) % 2 == 0))
def test_random_pcm_matches_audioop_and_reference(pcm):
    for codec, (lin2x, _) in CODECS.items():
        encode = getattr(g711, f"{codec}_encode")
        assert encode(pcm) == lin2x(pcm, 2) == getattr(g711_ref, f"{codec}_encode")(pcm)
    assert g711.ulaw_encode(pcm, itu=True) == g711_ref.ulaw_encode(pcm, itu=True)


@given(data=st.binary(max_size=300), start=st.integers(0, 3))
def test_every_length_and_alignment(data, start):
    # The vector loops run in blocks of up to 64 samples with a scalar tail,
    # from any address: every length and both alignments give the same bytes.
    pcm = data[: len(data) // 2 * 2]
    view = memoryview(bytearray(start) + pcm)[start:]
    assert g711.ulaw_encode(view) == audioop.lin2ulaw(pcm, 2)
    assert g711.alaw_encode(view) == audioop.lin2alaw(pcm, 2)
    assert g711.ulaw_encode(view, itu=True) == g711_ref.ulaw_encode(pcm, itu=True)
    codes = memoryview(bytearray(start) + data)[start:]
    out = bytearray(2 * len(data) + start + 2)
    assert g711.ulaw_decode_into(codes, memoryview(out)[start:]) == 2 * len(data)
    assert bytes(out[start:start + 2 * len(data)]) == audioop.ulaw2lin(data, 2)
    assert out[start + 2 * len(data):] == bytearray(2)      # nothing past the end
    assert g711.alaw_decode(codes) == audioop.alaw2lin(data, 2)


def test_every_tail_length_writes_exactly_its_codes(impl):
    # The widest loops take 64 samples a step and the last 1..63 under masks:
    # every count up to two blocks and a tail, at both alignments, encodes
    # like audioop and writes nothing past its codes.
    pcm = ALL_PCM[2 * 12000:2 * 12200]            # around zero: every segment, both signs
    pcm = bytes(reversed(pcm)) + pcm              # and loud samples (bytes swapped)
    for n in range(0, 131):
        for start in (0, 1):
            src = memoryview(bytearray(start) + pcm[: 2 * n])[start:]
            for codec, itu in (("ulaw", False), ("ulaw", True), ("alaw", False)):
                want = (g711_ref.ulaw_encode(pcm[: 2 * n], itu=True) if itu
                        else CODECS[codec][0](pcm[: 2 * n], 2))
                out = bytearray(b"\xAA" * (n + 70))
                into = getattr(impl, f"{codec}_encode_into")
                assert into(src, memoryview(out)[start:], itu=itu) == n
                assert bytes(out[start:start + n]) == want, (codec, itu, n, start)
                assert out[start + n:] == b"\xAA" * (70 - start), (codec, itu, n, start)


# g711core.h's RT_G711_NT_MIN: from this many codes the AVX512-FP16 encoders
# store whole 64-byte lines with streaming stores, after a masked head up to
# out's next 64-byte boundary, walking the rest as four interleaved quarters
# (each with its own remainder, then a common one); all prefetch the input.
NT_MIN = 1 << 19


@functools.lru_cache(maxsize=None)
def code_table(codec: str, itu: bool) -> np.ndarray:
    """The code of every int16, indexed by x + 32768."""
    codes = g191_ulaw_of_all_pcm() if itu else CODECS[codec][0](ALL_PCM, 2)
    return np.frombuffer(codes, dtype=np.uint8)


@pytest.mark.parametrize("codec,itu", [("ulaw", False), ("ulaw", True), ("alaw", False)])
def test_large_buffers_around_the_streaming_threshold(impl, codec, itu):
    # Lengths either side of the threshold, with remainders past the quarters
    # of up to 199 codes, into out at every kind of 64-byte alignment (the
    # head is then 0, 1, 32 or 63 codes), from an even and an odd input
    # address: the same codes as audioop (G.191), nothing written outside them.
    if impl is g711_ref:
        pytest.skip("the pure-Python reference is too slow for 0.5 M samples; it has no such path")
    rng = np.random.default_rng(7)
    pcm = rng.integers(-32768, 32768, NT_MIN + 200, dtype=np.int16)
    want_all = code_table(codec, itu)[pcm.astype(np.int32) + 32768].tobytes()
    raw = pcm.tobytes()
    into = getattr(impl, f"{codec}_encode_into")
    for n in (NT_MIN - 1, NT_MIN, NT_MIN + 1, NT_MIN + 64 + 63, NT_MIN + 199):
        for start in (0, 1):
            src = memoryview(bytearray(start) + raw[: 2 * n])[start:]
            for align in (0, 1, 32, 63):
                out = bytearray(b"\xAA" * (n + 200))
                base = np.frombuffer(out, dtype=np.uint8).ctypes.data
                off = 64 + (align - base) % 64          # (base + off) % 64 == align
                assert into(src, memoryview(out)[off:], itu=itu) == n
                assert out[off:off + n] == want_all[:n], (n, start, align)
                assert out[:off] == b"\xAA" * off and out[off + n:] == b"\xAA" * (200 - off)
    # and into new bytes, as the plain form allocates them
    assert getattr(impl, f"{codec}_encode")(raw, itu=itu) == want_all


@given(pcm=st.binary(max_size=9000).filter(lambda b: len(b) % 2 == 0), codec=st.sampled_from(list(CODECS)))
def test_fused_round_trip_properties(pcm, codec):
    encode, decode, encode_into, _, encode_b64, decode_b64 = fns(g711, codec)
    codes = encode(pcm)
    assert encode_b64(pcm) == base64.b64encode(codes)
    assert decode_b64(encode_b64(pcm)) == decode(codes)
    out = bytearray(len(codes))
    assert encode_into(pcm, out) == len(codes) and bytes(out) == codes


@given(data=st.binary(min_size=1, max_size=12000), codec=st.sampled_from(list(CODECS)))
def test_fused_decode_spans_blocks(data, codec):
    # 3072 codes per internal block: lengths around and past it must concatenate.
    decode, decode_b64 = fns(g711, codec)[1], fns(g711, codec)[5]
    assert decode_b64(base64.b64encode(data)) == decode(data)


def test_fused_decode_of_a_twilio_frame():
    codes = bytes((i * 37) & 0xFF for i in range(160))
    payload = base64.b64encode(codes)
    assert len(payload) == 216
    assert g711.ulaw_decode_b64(payload) == audioop.ulaw2lin(codes, 2)
    assert g711.alaw_decode_b64(payload) == audioop.alaw2lin(codes, 2)


@pytest.mark.parametrize("codec", CODECS)
def test_empty_input(codec):
    encode, decode, encode_into, decode_into, encode_b64, decode_b64 = fns(g711, codec)
    assert encode(b"") == b"" and decode(b"") == b""
    assert encode_b64(b"") == b"" and decode_b64(b"") == b"" and decode_b64("") == b""
    assert encode_into(b"", bytearray()) == 0 and decode_into(b"", bytearray()) == 0


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("n", [1, 3, 161])
def test_odd_pcm_length_is_a_value_error_naming_it(codec, n):
    encode, _, encode_into, _, encode_b64, _ = fns(g711, codec)
    for call in (lambda: encode(b"\0" * n), lambda: encode_b64(b"\0" * n),
                 lambda: encode_into(b"\0" * n, bytearray(n))):
        with pytest.raises(ValueError, match=f"even number of bytes, got {n}"):
            call()


def test_one_code_decodes_to_one_sample():
    assert g711.ulaw_decode(b"\x00") == audioop.ulaw2lin(b"\x00", 2)
    assert len(g711.alaw_decode(b"\xd5")) == 2


def test_too_small_out_is_a_value_error_and_nothing_is_written():
    out = bytearray(b"\xaa" * 3)
    with pytest.raises(ValueError, match="room for 3 bytes, 4 needed"):
        g711.ulaw_encode_into(b"\x01\x00" * 4, out)
    assert out == bytearray(b"\xaa" * 3)
    out = bytearray(b"\xaa" * 7)
    with pytest.raises(ValueError, match="room for 7 bytes, 8 needed"):
        g711.alaw_decode_into(b"\x01" * 4, out)
    assert out == bytearray(b"\xaa" * 7)


def test_memoryview_slices_with_offsets():
    buf = bytearray(ALL_PCM[:2000])
    view = memoryview(buf)[2:1002]          # odd start address, even length
    assert g711.ulaw_encode(view) == audioop.lin2ulaw(bytes(view), 2)
    out = bytearray(1001)
    assert g711.ulaw_encode_into(view, memoryview(out)[1:]) == 500
    assert bytes(out[1:501]) == audioop.lin2ulaw(bytes(view), 2)
    codes = memoryview(ALL_CODES)[17:99]
    target = bytearray(200)
    assert g711.alaw_decode_into(codes, memoryview(target)[3:]) == 164
    assert bytes(target[3:167]) == audioop.alaw2lin(bytes(codes), 2)


def test_read_only_buffers_are_accepted_as_input_and_refused_as_output():
    ro = memoryview(ALL_PCM[:320]).toreadonly()
    assert g711.ulaw_encode(ro) == audioop.lin2ulaw(ALL_PCM[:320], 2)
    with pytest.raises(TypeError, match="out must be a writable"):
        g711.ulaw_encode_into(ro, bytes(160))
    with pytest.raises(TypeError, match="out must be a writable"):
        g711.ulaw_decode_into(b"\xff", memoryview(bytearray(2)).toreadonly())


def test_numpy_arrays():
    pcm = np.arange(-32768, 32768, 7, dtype=np.int16)
    assert g711.ulaw_encode(pcm) == audioop.lin2ulaw(pcm.tobytes(), 2)
    out = np.zeros(len(pcm), dtype=np.uint8)
    assert g711.alaw_encode_into(pcm, out) == len(pcm)
    assert out.tobytes() == audioop.lin2alaw(pcm.tobytes(), 2)
    samples = np.zeros(256, dtype=np.int16)
    assert g711.ulaw_decode_into(np.arange(256, dtype=np.uint8), samples) == 512
    assert samples.tobytes() == audioop.ulaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float64, np.uint16])
def test_numpy_arrays_of_other_dtypes_are_a_clear_type_error(dtype):
    with pytest.raises(TypeError, match="PCM16"):
        g711.ulaw_encode(np.zeros(16, dtype=dtype))
    with pytest.raises(TypeError, match="1-byte items"):
        g711.ulaw_decode(np.zeros(16, dtype=dtype))


def test_non_contiguous_and_non_buffers_are_type_errors():
    strided = np.zeros(32, dtype=np.int16)[::2]
    with pytest.raises(TypeError, match="C-contiguous"):
        g711.ulaw_encode(strided)
    with pytest.raises(TypeError, match="bytes-like"):
        g711.ulaw_encode("not bytes")
    with pytest.raises(TypeError, match="bytes-like"):
        g711.ulaw_decode(12)


def test_fused_decode_reports_bad_base64_with_offset():
    good = base64.b64encode(bytes(160)).decode()
    bad = good[:100] + "!" + good[101:]
    with pytest.raises(Base64Error) as info:
        g711.ulaw_decode_b64(bad)
    assert info.value.offset == 100 and info.value.reason == "character"
    with pytest.raises(Base64Error) as info:
        g711.ulaw_decode_b64(good[:-1])          # ends "=": padding where data must be
    assert info.value.offset == 214 and info.value.reason == "padding"
    unpadded = base64.b64encode(bytes(162))[:-1]
    with pytest.raises(Base64Error) as info:
        g711.ulaw_decode_b64(unpadded)
    assert info.value.offset == 215 and info.value.reason == "length"
    with pytest.raises(Base64Error) as info:
        g711.alaw_decode_b64("AAAA" + "é" + "AAA")
    assert info.value.offset == 4


def test_fused_decode_rejects_padding_closing_an_inner_block():
    # 4096 chars is one internal block; a padded quantum there is misplaced.
    text = b"A" * 4094 + b"==" + b"AAAA"
    with pytest.raises(Base64Error) as info:
        g711.ulaw_decode_b64(text)
    assert info.value.offset == 4094 and info.value.reason == "padding"


def test_huge_input_in_one_call():
    # 64 MiB of PCM16 through the GIL-free path.
    pcm = np.resize(np.frombuffer(ALL_PCM, dtype=np.int16), 32 * 1024 * 1024)
    codes = g711.ulaw_encode(pcm)
    assert len(codes) == 32 * 1024 * 1024
    assert codes[:65536] == audioop.lin2ulaw(ALL_PCM, 2)
    assert codes[-65536:] == audioop.lin2ulaw(ALL_PCM, 2)
    back = g711.ulaw_decode(codes)
    assert len(back) == 64 * 1024 * 1024
    assert back[:131072] == audioop.ulaw2lin(codes[:65536], 2)


def test_kernels_release_the_gil_on_large_buffers():
    import threading
    import time

    pcm = np.resize(np.frombuffer(ALL_PCM, dtype=np.int16), 8 * 1024 * 1024)
    ticks = 0
    stop = False

    def count():
        nonlocal ticks
        while not stop:
            ticks += 1
            time.sleep(0)

    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.01)
        before = ticks
        for _ in range(5):
            g711.alaw_encode(pcm)
        during = ticks - before
    finally:
        stop = True
        t.join()
    assert during > 0


MXCSR_C = r"""
#include <xmmintrin.h>
unsigned rt_test_setcsr(unsigned v) { unsigned old = _mm_getcsr(); _mm_setcsr(v); return old; }
"""


@pytest.fixture
def flush_denormals(tmp_path):
    """MXCSR's flush-to-zero and denormals-are-zero set on this thread, as some
    audio hosts and -ffast-math libraries leave them; restored after."""
    import ctypes
    import os
    import platform
    import shutil
    import subprocess

    if platform.machine() not in ("x86_64", "AMD64") or shutil.which("cc") is None:
        pytest.skip("needs x86-64 and a C compiler to set MXCSR")
    lib = tmp_path / "mxcsr.so"
    (tmp_path / "mxcsr.c").write_text(MXCSR_C)
    # (without the sanitizer runtime CI preloads into this process)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(tmp_path / "mxcsr.c")], check=True, env=env)
    setcsr = ctypes.CDLL(str(lib)).rt_test_setcsr
    setcsr.restype, setcsr.argtypes = ctypes.c_uint, [ctypes.c_uint]
    old = setcsr(0)
    setcsr(old | 0x8040)                      # FTZ (bit 15) | DAZ (bit 6)
    try:
        yield
    finally:
        setcsr(old)


def test_every_int16_encodes_exactly_with_denormals_flushed(impl, flush_denormals):
    """The FP16 A-law step relies on subnormal halves: FTZ/DAZ must not change a code."""
    tiny = float.fromhex("0x0.0000000000001p-1022")
    assert tiny * 1.0 == 0.0                   # the mode is really on (DAZ reads it as zero)
    assert impl.alaw_encode(ALL_PCM) == audioop.lin2alaw(ALL_PCM, 2)
    assert impl.ulaw_encode(ALL_PCM) == audioop.lin2ulaw(ALL_PCM, 2)
    assert impl.ulaw_encode(ALL_PCM, itu=True) == g191_ulaw_of_all_pcm()
    assert impl.alaw_decode(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)
