"""G.711 mu-law / A-law kernels (private; see rtfast.g711 for the public API).

PCM16 is little-endian mono int16; G.711 is one byte per sample. The loops
live in g711core.h; this module only takes buffers, checks sizes and decides
whether to drop the GIL. A 20 ms frame is a few ns of loop, so the wrapper is
what a small call costs: bytes input is read in place (no buffer export) and
the result is allocated uninitialised and written once.
"""
from cpython.bytes cimport PyBytes_CheckExact, PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t
from libc.string cimport memset
from bufutil cimport new_bytes, get_buffer, get_text, release, PCM16_ITEMS, BYTE_ITEMS, NOGIL_BYTES
from g711core cimport *
from b64core cimport *

rt_g711_init()


def isa():
    """The instruction set the G.711 loops run with: "avx512fp16", "avx512", "avx2" or "sse2"."""
    return (<bytes>rt_g711_isa).decode()


def _use_isa(str name, /):
    """Tests: run the loops for name (see isa()); False if this CPU cannot."""
    return rt_g711_use(name.encode()) == 0

# Fused forms work through an L1-sized scratch block, never the whole
# intermediate: 3072 codes <-> 4096 base64 chars (a multiple of 3 and 4, so
# blocks concatenate without padding in the middle).
cdef enum:
    CODES_BLOCK = 3072
    CHARS_BLOCK = 4096


cdef inline int _input(object data, Py_buffer* view, int items, const char* what) except -1:
    """data's bytes as view.buf / view.len; release() it after. bytes are read in
    place: a buffer export and release cost more than a 20 ms frame's loop."""
    if PyBytes_CheckExact(data):
        memset(view, 0, sizeof(Py_buffer))           # obj NULL: release() is a no-op
        view.buf = <void*>PyBytes_AS_STRING(data)
        view.len = PyBytes_GET_SIZE(data)
        return 0
    return get_buffer(data, view, False, items, what)


cdef inline Py_ssize_t _pcm_samples(Py_buffer* v) except -1:
    if v.len & 1:
        release(v)
        raise ValueError(f"PCM16 input must have an even number of bytes, got {v.len}")
    return v.len >> 1


cdef inline void _run(g711_kernel kernel, const void* src, size_t n, void* dst) noexcept:
    if n >= NOGIL_BYTES:
        with nogil:
            kernel(<const uint8_t*>src, n, <uint8_t*>dst)
    else:
        kernel(<const uint8_t*>src, n, <uint8_t*>dst)


cdef object _new(object data, g711_kernel kernel, bint encoding):
    """One kernel pass into new bytes: PCM16 -> codes when encoding, else codes -> PCM16."""
    cdef Py_buffer src
    cdef Py_ssize_t n
    cdef uint8_t* dst_ptr
    if encoding:
        _input(data, &src, PCM16_ITEMS, b"pcm")
        n = _pcm_samples(&src)
    else:
        _input(data, &src, BYTE_ITEMS, b"data")
        n = src.len
    try:
        result = new_bytes(n if encoding else 2 * n, &dst_ptr)
        _run(kernel, src.buf, n, dst_ptr)
    finally:
        release(&src)
    return result


cdef Py_ssize_t _into(object data, object out, g711_kernel kernel, bint encoding) except -1:
    """One kernel pass into the caller's writable out; returns the bytes written."""
    cdef Py_buffer src, dst
    cdef Py_ssize_t n, need
    if encoding:
        _input(data, &src, PCM16_ITEMS, b"pcm")
        n = _pcm_samples(&src)
        need = n
    else:
        _input(data, &src, BYTE_ITEMS, b"data")
        n = src.len
        need = 2 * n
    try:
        get_buffer(out, &dst, True, BYTE_ITEMS if encoding else PCM16_ITEMS, b"out")
        try:
            if dst.len < need:
                raise ValueError(f"out has room for {dst.len} bytes, {need} needed")
            _run(kernel, src.buf, n, dst.buf)
        finally:
            release(&dst)
    finally:
        release(&src)
    return need


cdef inline int _decode_b64_blocks(const uint8_t* text, size_t n, uint8_t* pcm,
                                   g711_kernel kernel, size_t* err_offset) noexcept nogil:
    """base64 text -> codes (scratch block) -> PCM16. Returns an RT_B64_* kind."""
    cdef uint8_t codes[CODES_BLOCK]
    cdef size_t pos = 0, chunk, got = 0, rc
    while True:
        chunk = n - pos if n - pos <= CHARS_BLOCK else CHARS_BLOCK
        rc = rt_b64_decode_block(text + pos, chunk, pos + chunk == n, codes, &got, err_offset)
        if rc != RT_B64_OK:
            err_offset[0] += pos
            return <int>rc
        if pos + chunk < n and got != chunk // 4 * 3:
            # Padding closed a block that is not the last one.
            err_offset[0] = pos + chunk - (chunk // 4 * 3 - got)
            return RT_B64_BAD_PADDING
        kernel(codes, got, pcm)
        pcm += 2 * got
        pos += chunk
        if pos >= n:
            return RT_B64_OK


cdef bytes _decode_b64(object b64, g711_kernel kernel):
    cdef Py_buffer src
    cdef const char* text = NULL
    cdef Py_ssize_t n
    cdef size_t err = 0
    cdef int rc
    if get_text(b64, &src, &text, &n, b"b64") == 1:
        raise_b64_error(RT_B64_BAD_CHAR, n, <const uint8_t*>b"", 0)
    cdef bytes out
    cdef uint8_t* dst_ptr
    try:
        out = new_bytes(2 * rt_b64_decoded_len(<const uint8_t*>text, n), &dst_ptr)
        if n >= NOGIL_BYTES:
            with nogil:
                rc = _decode_b64_blocks(<const uint8_t*>text, n,
                                        dst_ptr, kernel, &err)
        else:
            rc = _decode_b64_blocks(<const uint8_t*>text, n,
                                    dst_ptr, kernel, &err)
        if rc != RT_B64_OK:
            raise_b64_error(rc, err, <const uint8_t*>text, n)
    finally:
        release(&src)
    return out


cdef inline void _encode_b64_blocks(const uint8_t* pcm, size_t n, uint8_t* text,
                                    g711_kernel kernel) noexcept nogil:
    """PCM16 (n samples) -> codes (scratch block) -> base64 text."""
    cdef uint8_t codes[CODES_BLOCK]
    cdef size_t pos = 0, chunk
    while pos < n:
        chunk = n - pos if n - pos <= CODES_BLOCK else CODES_BLOCK
        kernel(pcm + 2 * pos, chunk, codes)
        text += rt_b64_encode(codes, chunk, text)
        pos += chunk


cdef bytes _encode_b64(object pcm, g711_kernel kernel):
    cdef Py_buffer src
    _input(pcm, &src, PCM16_ITEMS, b"pcm")
    cdef Py_ssize_t n = _pcm_samples(&src)
    cdef bytes out
    cdef uint8_t* dst_ptr
    try:
        out = new_bytes(rt_b64_encoded_len(n), &dst_ptr)
        if n >= NOGIL_BYTES:
            with nogil:
                _encode_b64_blocks(<const uint8_t*>src.buf, n,
                                   dst_ptr, kernel)
        else:
            _encode_b64_blocks(<const uint8_t*>src.buf, n,
                               dst_ptr, kernel)
    finally:
        release(&src)
    return out


# itu: mu-law as ITU-T G.191 instead of audioop (they differ on 508 negative
# inputs); A-law is the same either way, and takes it so callers need not care.

def ulaw_encode(pcm, /, *, bint itu=False):
    """PCM16 little-endian mono -> mu-law, one byte per sample.

    pcm: bytes-like or int16 buffer with an even byte count (ValueError if odd).
    Bit-exact with audioop.lin2ulaw(pcm, 2); with itu=True, with the ITU-T
    G.191 reference encoder instead (one code step apart on 508 negative inputs).
    """
    return _new(pcm, rt_ulaw_encode_itu if itu else rt_ulaw_encode, True)

def alaw_encode(pcm, /, *, bint itu=False):
    """PCM16 little-endian mono -> A-law, one byte per sample (audioop.lin2alaw,
    which is also G.191: itu changes nothing)."""
    return _new(pcm, rt_alaw_encode, True)

def ulaw_decode(data, /):
    """mu-law bytes -> PCM16 little-endian, two bytes per input byte (audioop.ulaw2lin)."""
    return _new(data, rt_ulaw_decode, False)

def alaw_decode(data, /):
    """A-law bytes -> PCM16 little-endian, two bytes per input byte (audioop.alaw2lin)."""
    return _new(data, rt_alaw_decode, False)

def ulaw_encode_into(pcm, out, /, *, bint itu=False):
    """Encode PCM16 into the writable buffer out; returns bytes written (len(pcm) // 2).

    A too-small out raises ValueError before anything is written.
    """
    return _into(pcm, out, rt_ulaw_encode_itu if itu else rt_ulaw_encode, True)

def alaw_encode_into(pcm, out, /, *, bint itu=False):
    """Like ulaw_encode_into, for A-law."""
    return _into(pcm, out, rt_alaw_encode, True)

def ulaw_decode_into(data, out, /):
    """Decode mu-law into the writable buffer out; returns bytes written (2 * len(data)).

    out may be a byte buffer or an int16 array; too small raises ValueError first.
    """
    return _into(data, out, rt_ulaw_decode, False)

def alaw_decode_into(data, out, /):
    """Like ulaw_decode_into, for A-law."""
    return _into(data, out, rt_alaw_decode, False)

def ulaw_decode_b64(b64, /):
    """base64 mu-law (bytes or str) -> PCM16, without materialising the mu-law bytes.

    A Twilio media payload (216 chars) gives 320 bytes of PCM16 at 8 kHz.
    Invalid base64 raises rtfast.errors.Base64Error with the offset.
    """
    return _decode_b64(b64, rt_ulaw_decode)

def alaw_decode_b64(b64, /):
    """Like ulaw_decode_b64, for A-law."""
    return _decode_b64(b64, rt_alaw_decode)

def ulaw_encode_b64(pcm, /, *, bint itu=False):
    """PCM16 -> base64 mu-law (bytes), without materialising the mu-law bytes."""
    return _encode_b64(pcm, rt_ulaw_encode_itu if itu else rt_ulaw_encode)

def alaw_encode_b64(pcm, /, *, bint itu=False):
    """Like ulaw_encode_b64, for A-law."""
    return _encode_b64(pcm, rt_alaw_encode)
