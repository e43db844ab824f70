"""RFC 6455 websocket frames, sans-I/O (private; see rtfast.websocket).

``FrameParser`` turns received bytes into whole messages and control frames,
checking every rule of the framing layer (masking by direction, reserved
bits, opcodes, control-frame limits, fragmentation order, UTF-8 of text,
size limit). ``FrameWriter`` turns messages into frames, many at once into
one ``bytes`` so a caller can hand a socket one write. No extensions are
negotiated (the bridge turns compression off), so reserved bits must be 0.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_CheckExact
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.unicode cimport PyUnicode_Check
from cpython.buffer cimport PyObject_CheckBuffer
from libc.stdint cimport uint8_t, uint64_t
from libc.string cimport memcpy
from bufutil cimport get_buffer, release, ANY_ITEMS

import os
from rtfast.errors import FrameError

cdef extern from "wsframe.h" nogil:
    void rt_ws_mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], size_t phase)
    int rt_utf8_valid(const uint8_t *p, size_t n)

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


cdef inline bint _valid_close_code(int code) noexcept:
    return (1000 <= code <= 1003 or 1007 <= code <= 1014) or 3000 <= code <= 4999


def parse_close(payload) -> tuple:
    """A close frame's (code, reason): (1005, "") when it has no payload."""
    cdef bytes data = bytes(payload)
    cdef Py_ssize_t n = len(data)
    if n == 0:
        return 1005, ""
    if n == 1:
        raise FrameError("close frame with a 1-byte payload", 1002)
    code = (data[0] << 8) | data[1]
    if not _valid_close_code(code):
        raise FrameError(f"close frame with invalid code {code}", 1002)
    if not rt_utf8_valid(<const uint8_t*>PyBytes_AS_STRING(data) + 2, n - 2):
        raise FrameError("close frame reason is not valid UTF-8", 1007)
    return code, data[2:].decode()


def close_payload(int code=1000, str reason="") -> bytes:
    """The payload of a close frame for code and reason (at most 123 bytes)."""
    cdef bytes r = reason.encode()
    if not _valid_close_code(code) or code in (1004, 1005, 1006):
        raise ValueError(f"invalid close code {code}")
    if len(r) > 123:
        raise ValueError("close reason longer than 123 bytes")
    return bytes(((code >> 8) & 0xFF, code & 0xFF)) + r


cdef class FrameParser:
    """Feed received bytes; get complete messages and control frames.

    ``client``: True when we are the client (frames must arrive unmasked),
    False on the server side (frames must arrive masked). ``max_size``: the
    largest message accepted, None for no limit. ``feed(data)`` returns a
    list of ``(opcode, payload)``: text (1) and binary (2) messages with
    fragments joined, and close (8), ping (9), pong (10) frames. A violation
    raises ``rtfast.errors.FrameError`` whose ``close_code`` is the code to
    close with and whose ``messages`` are those completed before the
    violation in the same ``feed`` (deliver them, then close); the parser is
    then unusable.
    """
    cdef bytearray _buf
    cdef bint _client
    cdef Py_ssize_t _max_size
    cdef int _op
    cdef list _parts
    cdef Py_ssize_t _size
    cdef readonly bint failed

    def __init__(self, *, bint client, max_size=None):
        self._buf = bytearray()
        self._client = client
        self._max_size = -1 if max_size is None else max_size
        self._op = 0
        self._parts = []
        self._size = 0
        self.failed = False

    @property
    def pending(self) -> int:
        """Bytes held for a frame not yet complete."""
        return PyByteArray_GET_SIZE(self._buf) + self._size

    def feed(self, data) -> list:
        cdef Py_buffer view
        cdef Py_ssize_t used, n
        cdef list out = []
        if self.failed:
            raise FrameError("the connection already failed", 1002)
        try:
            if PyByteArray_GET_SIZE(self._buf) == 0:
                get_buffer(data, &view, False, ANY_ITEMS, b"data")
                try:
                    used = self._parse(<const uint8_t*>view.buf, view.len, out)
                    if used < view.len:
                        self._buf += (<const char*>view.buf)[used:view.len]
                finally:
                    release(&view)
            else:
                self._buf += data
                n = PyByteArray_GET_SIZE(self._buf)
                used = self._parse(<const uint8_t*>PyByteArray_AS_STRING(self._buf), n, out)
                if used:
                    del self._buf[:used]
        except FrameError as exc:
            exc.messages = out          # what arrived intact before the violation
            raise
        return out

    cdef Py_ssize_t _fail(self, str message, int code) except -1:
        self.failed = True
        raise FrameError(message, code)

    cdef Py_ssize_t _parse(self, const uint8_t* p, Py_ssize_t n, list out) except -1:
        cdef Py_ssize_t pos = 0, hdr
        cdef uint64_t ln
        cdef int b0, b1, op
        cdef bint fin, masked
        cdef bytes payload
        while n - pos >= 2:
            b0 = p[pos]
            b1 = p[pos + 1]
            fin = (b0 & 0x80) != 0
            op = b0 & 0x0F
            masked = (b1 & 0x80) != 0
            ln = b1 & 0x7F
            hdr = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = (<uint64_t>p[pos + 2] << 8) | p[pos + 3]
                hdr = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = 0
                for i in range(8):
                    ln = (ln << 8) | p[pos + 2 + i]
                if ln >> 63:
                    self._fail("frame length has its most significant bit set", 1002)
                hdr = 10
            # Check the header before waiting for the payload: an oversized or
            # bad frame fails at once instead of being buffered.
            if b0 & 0x70:
                self._fail("reserved bits set (no extension was negotiated)", 1002)
            if masked == self._client:
                self._fail("masked frame from the server" if self._client else
                           "unmasked frame from the client", 1002)
            if op >= 8:
                if op > 10:
                    self._fail(f"unknown opcode {op}", 1002)
                if not fin:
                    self._fail("fragmented control frame", 1002)
                if ln > 125:
                    self._fail("control frame longer than 125 bytes", 1002)
            else:
                if op > 2:
                    self._fail(f"unknown opcode {op}", 1002)
                if op == 0 and self._op == 0:
                    self._fail("continuation frame without a message to continue", 1002)
                if op != 0 and self._op != 0:
                    self._fail("new message before the fragmented one ended", 1002)
                if self._max_size >= 0 and <uint64_t>self._size + ln > <uint64_t>self._max_size:
                    self._fail(f"message of at least {self._size + ln} bytes exceeds the limit "
                               f"of {self._max_size}", 1009)
            if masked:
                hdr += 4
            if <uint64_t>(n - pos) < <uint64_t>hdr + ln:
                break
            if masked:
                # A fresh object to unmask into: bytes made from data may be a shared
                # singleton (CPython caches every 1-byte bytes), never write those.
                payload = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>ln)
                if ln:
                    rt_ws_mask(<uint8_t*>PyBytes_AS_STRING(payload), p + pos + hdr, <size_t>ln,
                               p + pos + hdr - 4, 0)
            else:
                payload = PyBytes_FromStringAndSize(<const char*>p + pos + hdr, <Py_ssize_t>ln)
            pos += hdr + <Py_ssize_t>ln
            if op >= 8:
                out.append((op, payload))
                continue
            if op == 0:
                self._parts.append(payload)
                self._size += <Py_ssize_t>ln
                if not fin:
                    continue
                op = self._op
                payload = b"".join(self._parts)
                self._op = 0
                self._parts = []
                self._size = 0
            elif not fin:
                self._op = op
                self._parts = [payload]
                self._size = <Py_ssize_t>ln
                continue
            if op == 1 and not rt_utf8_valid(<const uint8_t*>PyBytes_AS_STRING(payload),
                                             PyBytes_GET_SIZE(payload)):
                self._fail("text message is not valid UTF-8", 1007)
            out.append((op, payload))
        return pos


cdef int _check_frame(int op, Py_ssize_t n) except -1:
    if not (0 <= op <= 2 or 8 <= op <= 10):
        raise ValueError(f"invalid websocket opcode {op}")
    if op >= 8 and n > 125:
        raise ValueError(f"control frame payload of {n} bytes (at most 125)")
    return 0


cdef class FrameWriter:
    """Messages to frames. ``client``: mask every frame (a client must), with
    keys from ``os.urandom``. ``frames(items)`` builds many frames into one
    ``bytes``: an item is bytes-like or str (sent with ``opcode``), or an
    ``(opcode, data)`` tuple."""
    cdef bint _mask
    cdef bytes _keys
    cdef Py_ssize_t _key_pos

    def __init__(self, *, bint client):
        self._mask = client
        self._keys = b""
        self._key_pos = 0

    cdef const uint8_t* _key(self):
        if self._key_pos + 4 > PyBytes_GET_SIZE(self._keys):
            self._keys = os.urandom(4096)
            self._key_pos = 0
        self._key_pos += 4
        return <const uint8_t*>PyBytes_AS_STRING(self._keys) + self._key_pos - 4

    cdef inline Py_ssize_t _size(self, Py_ssize_t n) noexcept:
        return n + (2 if n < 126 else 4 if n < 65536 else 10) + (4 if self._mask else 0)

    cdef Py_ssize_t _put(self, uint8_t* o, int op, const uint8_t* src, Py_ssize_t n):
        cdef Py_ssize_t h = 0
        cdef int m = 0x80 if self._mask else 0
        cdef const uint8_t* key
        o[0] = 0x80 | op
        if n < 126:
            o[1] = m | n
            h = 2
        elif n < 65536:
            o[1] = m | 126
            o[2] = (n >> 8) & 0xFF
            o[3] = n & 0xFF
            h = 4
        else:
            o[1] = m | 127
            for i in range(8):
                o[2 + i] = (<uint64_t>n >> (56 - 8 * i)) & 0xFF
            h = 10
        if self._mask:
            key = self._key()
            memcpy(o + h, key, 4)
            h += 4
            rt_ws_mask(o + h, src, n, key, 0)
        else:
            memcpy(o + h, src, n)
        return h + n

    def frame(self, data, int opcode=1) -> bytes:
        """One frame holding data (bytes-like, or str sent as UTF-8)."""
        cdef Py_buffer view
        cdef uint8_t* o
        if PyUnicode_Check(data):
            data = (<str>data).encode()
        get_buffer(data, &view, False, ANY_ITEMS, b"data")
        try:
            _check_frame(opcode, view.len)
            out = PyBytes_FromStringAndSize(NULL, self._size(view.len))
            o = <uint8_t*>PyBytes_AS_STRING(out)
            self._put(o, opcode, <const uint8_t*>view.buf, view.len)
        finally:
            release(&view)
        return out

    def frames(self, items, int opcode=1) -> bytes:
        """Frames for every item, concatenated (one socket write)."""
        cdef list ops = [], datas = []
        cdef Py_ssize_t total = 0, pos = 0
        cdef uint8_t* o
        cdef bytes d
        for item in items:
            if type(item) is tuple:
                op, item = item
            else:
                op = opcode
            if not PyBytes_CheckExact(item):
                if PyUnicode_Check(item):
                    item = (<str>item).encode()
                elif PyObject_CheckBuffer(item):
                    item = bytes(item)
                else:
                    raise TypeError(f"frame data must be bytes-like or str, not {type(item).__name__}")
            _check_frame(op, PyBytes_GET_SIZE(item))
            ops.append(op)
            datas.append(item)
            total += self._size(PyBytes_GET_SIZE(item))
        out = PyBytes_FromStringAndSize(NULL, total)
        o = <uint8_t*>PyBytes_AS_STRING(out)
        for i in range(len(datas)):
            d = <bytes>datas[i]
            pos += self._put(o + pos, <int>ops[i], <const uint8_t*>PyBytes_AS_STRING(d), PyBytes_GET_SIZE(d))
        return out
