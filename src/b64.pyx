"""Base64 kernels (private; see rtfast.b64 for the public API).

RFC 4648 standard alphabet with padding, strict: the engine (b64core.h)
picks AVX2, SSSE3 or scalar code at run time.
"""
from libc.stdint cimport uint8_t
from bufutil cimport new_bytes, get_buffer, get_text, release, ANY_ITEMS, BYTE_ITEMS, NOGIL_BYTES
from b64core cimport *


def encode(data, /):
    """Base64-encode any C-contiguous buffer (its raw bytes), with padding -> bytes."""
    cdef Py_buffer src
    get_buffer(data, &src, False, ANY_ITEMS, b"data")
    cdef bytes out
    cdef uint8_t* dst_ptr
    try:
        out = new_bytes(rt_b64_encoded_len(src.len), &dst_ptr)
        if src.len >= NOGIL_BYTES:
            with nogil:
                rt_b64_encode(<const uint8_t*>src.buf, src.len, dst_ptr)
        else:
            rt_b64_encode(<const uint8_t*>src.buf, src.len, dst_ptr)
    finally:
        release(&src)
    return out


def encode_into(data, out, /):
    """Base64-encode into the writable byte buffer out; returns bytes written.

    A too-small out raises ValueError before anything is written.
    """
    cdef Py_buffer src, dst
    get_buffer(data, &src, False, ANY_ITEMS, b"data")
    try:
        get_buffer(out, &dst, True, BYTE_ITEMS, b"out")
    except BaseException:
        release(&src)
        raise
    cdef size_t need = rt_b64_encoded_len(src.len)
    try:
        if <size_t>dst.len < need:
            raise ValueError(f"out has room for {dst.len} bytes, {need} needed")
        if src.len >= NOGIL_BYTES:
            with nogil:
                rt_b64_encode(<const uint8_t*>src.buf, src.len, <uint8_t*>dst.buf)
        else:
            rt_b64_encode(<const uint8_t*>src.buf, src.len, <uint8_t*>dst.buf)
    finally:
        release(&dst)
        release(&src)
    return need


cdef inline int _decode(const char* text, Py_ssize_t n, uint8_t* out) except -1:
    cdef size_t written = 0, err = 0
    cdef int rc
    if n >= NOGIL_BYTES:
        with nogil:
            rc = rt_b64_decode(<const uint8_t*>text, n, out, &written, &err)
    else:
        rc = rt_b64_decode(<const uint8_t*>text, n, out, &written, &err)
    if rc != RT_B64_OK:
        raise_b64_error(rc, err, <const uint8_t*>text, n)
    return 0


def decode(data, /):
    """Strictly decode base64 (bytes, ASCII str or byte buffer) -> bytes.

    Padding is required; any character outside the alphabet, misplaced
    padding or a bad length raises Base64Error carrying the offset.
    """
    cdef Py_buffer src
    cdef const char* text = NULL
    cdef Py_ssize_t n
    if get_text(data, &src, &text, &n, b"data") == 1:
        raise_b64_error(RT_B64_BAD_CHAR, n, <const uint8_t*>b"", 0)
    cdef bytes out
    cdef uint8_t* dst_ptr
    try:
        out = new_bytes(rt_b64_decoded_len(<const uint8_t*>text, n), &dst_ptr)
        _decode(text, n, dst_ptr)
    finally:
        release(&src)
    return out


def decode_into(data, out, /):
    """Decode into the writable buffer out; returns bytes written.

    A too-small out raises ValueError before anything is written; on invalid
    input (Base64Error) the content of out is unspecified.
    """
    cdef Py_buffer src, dst
    cdef const char* text = NULL
    cdef Py_ssize_t n
    if get_text(data, &src, &text, &n, b"data") == 1:
        raise_b64_error(RT_B64_BAD_CHAR, n, <const uint8_t*>b"", 0)
    try:
        get_buffer(out, &dst, True, ANY_ITEMS, b"out")
    except BaseException:
        release(&src)
        raise
    cdef size_t need = rt_b64_decoded_len(<const uint8_t*>text, n)
    try:
        if <size_t>dst.len < need:
            raise ValueError(f"out has room for {dst.len} bytes, {need} needed")
        _decode(text, n, <uint8_t*>dst.buf)
    finally:
        release(&dst)
        release(&src)
    return need


def implementation():
    """The base64 code path in use: "avx2", "ssse3" or "scalar"."""
    return rt_b64_impl().decode()


def _force(int level):
    """Tests only: 0 auto, 1 scalar, 2 ssse3, 3 avx2 (falls back if the CPU lacks it)."""
    rt_b64_force(level)
