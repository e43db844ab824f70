"""G.711 mu-law / A-law kernels (private; see rtfast.g711 for the public API).

PCM16 is little-endian mono int16; G.711 is one byte per sample. The loops
live in g711core.h; this module only takes buffers, checks sizes and decides
whether to drop the GIL.
"""
from libc.stdint cimport uint8_t
from bufutil cimport new_bytes, get_buffer, get_text, release, PCM16_ITEMS, BYTE_ITEMS, NOGIL_BYTES
from g711core cimport *
from b64core cimport *

rt_g711_init()

# Fused forms work through an L1-sized scratch block, never the whole
# intermediate: 3072 codes <-> 4096 base64 chars (a multiple of 3 and 4, so
# blocks concatenate without padding in the middle).
cdef enum:
    CODES_BLOCK = 3072
    CHARS_BLOCK = 4096


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


cdef object _apply(object data, object out, g711_kernel kernel, bint encoding):
    """One kernel pass: PCM16 -> codes when encoding, codes -> PCM16 otherwise.

    With out=None returns new bytes; else writes into out, returns the count.
    """
    cdef Py_buffer src, dst
    cdef Py_ssize_t n, need
    cdef uint8_t* dst_ptr
    if encoding:
        get_buffer(data, &src, False, PCM16_ITEMS, b"pcm")
        n = _pcm_samples(&src)
        need = n
    else:
        get_buffer(data, &src, False, BYTE_ITEMS, b"data")
        n = src.len
        need = 2 * n
    try:
        if out is None:
            result = new_bytes(need, &dst_ptr)
            _run(kernel, src.buf, n, dst_ptr)
            return result
        get_buffer(out, &dst, True, BYTE_ITEMS if encoding else PCM16_ITEMS, b"out")
        try:
            if dst.len < need:
                raise ValueError(f"out has room for {dst.len} bytes, {need} needed")
            _run(kernel, src.buf, n, dst.buf)
        finally:
            release(&dst)
        return need
    finally:
        release(&src)


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
    get_buffer(pcm, &src, False, PCM16_ITEMS, b"pcm")
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


def ulaw_encode(pcm, /):
    """PCM16 little-endian mono -> mu-law, one byte per sample.

    pcm: bytes-like or int16 buffer with an even byte count (ValueError if odd).
    Bit-exact with audioop.lin2ulaw(pcm, 2).
    """
    return _apply(pcm, None, rt_ulaw_encode, True)

def alaw_encode(pcm, /):
    """PCM16 little-endian mono -> A-law, one byte per sample (audioop.lin2alaw)."""
    return _apply(pcm, None, rt_alaw_encode, True)

def ulaw_decode(data, /):
    """mu-law bytes -> PCM16 little-endian, two bytes per input byte (audioop.ulaw2lin)."""
    return _apply(data, None, rt_ulaw_decode, False)

def alaw_decode(data, /):
    """A-law bytes -> PCM16 little-endian, two bytes per input byte (audioop.alaw2lin)."""
    return _apply(data, None, rt_alaw_decode, False)

def ulaw_encode_into(pcm, out, /):
    """Encode PCM16 into the writable buffer out; returns bytes written (len(pcm) // 2).

    A too-small out raises ValueError before anything is written.
    """
    return _apply(pcm, out, rt_ulaw_encode, True)

def alaw_encode_into(pcm, out, /):
    """Like ulaw_encode_into, for A-law."""
    return _apply(pcm, out, rt_alaw_encode, True)

def ulaw_decode_into(data, out, /):
    """Decode mu-law into the writable buffer out; returns bytes written (2 * len(data)).

    out may be a byte buffer or an int16 array; too small raises ValueError first.
    """
    return _apply(data, out, rt_ulaw_decode, False)

def alaw_decode_into(data, out, /):
    """Like ulaw_decode_into, for A-law."""
    return _apply(data, out, rt_alaw_decode, False)

def ulaw_decode_b64(b64, /):
    """base64 mu-law (bytes or str) -> PCM16, without materialising the mu-law bytes.

    A Twilio media payload (216 chars) gives 320 bytes of PCM16 at 8 kHz.
    Invalid base64 raises rtfast.errors.Base64Error with the offset.
    """
    return _decode_b64(b64, rt_ulaw_decode)

def alaw_decode_b64(b64, /):
    """Like ulaw_decode_b64, for A-law."""
    return _decode_b64(b64, rt_alaw_decode)

def ulaw_encode_b64(pcm, /):
    """PCM16 -> base64 mu-law (bytes), without materialising the mu-law bytes."""
    return _encode_b64(pcm, rt_ulaw_encode)

def alaw_encode_b64(pcm, /):
    """Like ulaw_encode_b64, for A-law."""
    return _encode_b64(pcm, rt_alaw_encode)
