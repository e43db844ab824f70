# Buffer acquisition shared by the kernels: one place that decides which
# buffers a kernel accepts, so every kernel raises the same clear errors.
from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS,
                             PyBUF_FORMAT, PyBUF_WRITABLE)
from cpython.unicode cimport PyUnicode_Check
from libc.string cimport memset
from libc.stdint cimport uint8_t
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL
    bint PyUnicode_IS_ASCII(object)

# What a buffer's items may be. Byte-like buffers are always accepted.
cdef enum:
    ANY_ITEMS = 0      # any format: the raw bytes are what counts (base64 of anything)
    BYTE_ITEMS = 1     # 1-byte items only (G.711 codes, base64 text)
    PCM16_ITEMS = 2    # bytes, or native int16 items (PCM16 little-endian)

# Release the GIL when a kernel touches at least this many bytes: below it
# the release/re-acquire costs more than the loop.
cdef enum:
    NOGIL_BYTES = 65536


cdef inline bint _is_byte_format(const char* fmt) noexcept nogil:
    if fmt == NULL:
        return True
    if fmt[0] in (b'@', b'=', b'<', b'>', b'!'):
        fmt += 1
    return (fmt[0] == b'B' or fmt[0] == b'b' or fmt[0] == b'c') and fmt[1] == 0


cdef inline bint _is_int16_format(const char* fmt) noexcept nogil:
    if fmt == NULL:
        return False
    if fmt[0] == b'@' or fmt[0] == b'=' or fmt[0] == b'<':
        fmt += 1
    return fmt[0] == b'h' and fmt[1] == 0


cdef inline int get_buffer(object obj, Py_buffer* view, bint writable, int items,
                           const char* what) except -1:
    """Acquire a C-contiguous buffer of obj as view; caller releases it."""
    cdef int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT
    if writable:
        flags |= PyBUF_WRITABLE
    try:
        PyObject_GetBuffer(obj, view, flags)
    except (BufferError, ValueError) as exc:
        if writable:
            raise TypeError(f"{what.decode()} must be a writable C-contiguous buffer "
                            f"(bytearray, memoryview, numpy array), not {type(obj).__name__}: {exc}") from None
        raise TypeError(f"{what.decode()} must be a C-contiguous buffer; "
                        f"{type(obj).__name__}: {exc}") from None
    except TypeError:
        raise TypeError(f"{what.decode()} must be a bytes-like object, not "
                        f"{type(obj).__name__}") from None
    if items == ANY_ITEMS or _is_byte_format(view.format):
        return 0
    if items == PCM16_ITEMS and _is_int16_format(view.format):
        return 0
    fmt = (<bytes>view.format).decode("ascii", "replace")
    PyBuffer_Release(view)
    if items == PCM16_ITEMS:
        raise TypeError(f"{what.decode()} must hold PCM16 samples: bytes-like or int16 items, "
                        f"not items of format {fmt!r}")
    raise TypeError(f"{what.decode()} must hold bytes (1-byte items), not items of format {fmt!r}")


cdef inline int get_text(object obj, Py_buffer* view, const char** ptr, Py_ssize_t* n,
                         const char* what) except -1:
    """Base64 text from str or any byte buffer; view.obj stays NULL for str.

    Returns 1 (and the offset of the first non-ASCII character in n) for a str
    that is not ASCII, so the caller can report it like any bad character.
    """
    cdef Py_ssize_t i
    if PyUnicode_Check(obj):
        if not PyUnicode_IS_ASCII(obj):
            for i, ch in enumerate(<str>obj):
                if ord(ch) > 127:
                    n[0] = i
                    memset(view, 0, sizeof(Py_buffer))
                    return 1
        ptr[0] = PyUnicode_AsUTF8AndSize(obj, n)
        memset(view, 0, sizeof(Py_buffer))
        return 0
    get_buffer(obj, view, False, BYTE_ITEMS, what)
    ptr[0] = <const char*>view.buf
    n[0] = view.len
    return 0


cdef inline void release(Py_buffer* view) noexcept:
    if <void*>view.obj != NULL:
        PyBuffer_Release(view)


cdef inline bytes new_bytes(Py_ssize_t n, uint8_t** ptr):
    """An uninitialised bytes of length n, and where to write it."""
    out = PyBytes_FromStringAndSize(NULL, n)
    ptr[0] = <uint8_t*>PyBytes_AS_STRING(out)
    return out
