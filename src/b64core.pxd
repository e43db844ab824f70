# Declarations of src/b64core.h (the base64 engine: scalar, SSSE3, AVX2).
from libc.stdint cimport uint8_t

cdef extern from "b64core.h" nogil:
    enum:
        RT_B64_OK
        RT_B64_BAD_CHAR
        RT_B64_BAD_PADDING
        RT_B64_BAD_LENGTH
    size_t rt_b64_encoded_len(size_t n)
    size_t rt_b64_encode(const uint8_t *src, size_t n, uint8_t *out)
    size_t rt_b64_decoded_len(const uint8_t *src, size_t n)
    int rt_b64_decode(const uint8_t *src, size_t n, uint8_t *out, size_t *written, size_t *err_offset)
    int rt_b64_decode_block(const uint8_t *src, size_t n, int last, uint8_t *out, size_t *written,
                            size_t *err_offset)
    const char *rt_b64_impl()
    void rt_b64_force(int level)


cdef inline int raise_b64_error(int kind, size_t offset, const uint8_t *src, size_t n) except -1:
    """Raise rtfast.errors.Base64Error for a failed rt_b64_decode."""
    from rtfast.errors import Base64Error
    if kind == RT_B64_BAD_LENGTH:
        raise Base64Error(f"invalid base64: length {n} is not a multiple of 4 "
                          f"(padding is required)", offset, "length")
    ch = f" {bytes([src[offset]])!r}" if offset < n else ""
    if kind == RT_B64_BAD_PADDING:
        raise Base64Error(f"invalid base64: misplaced padding or data after padding:{ch} "
                          f"at offset {offset}", offset, "padding")
    raise Base64Error(f"invalid base64: bad character{ch} at offset {offset}",
                      offset, "character")
