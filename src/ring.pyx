"""Frame ring (private; see rtfast.ring for the public API).

Layout: the storage is the capacity rounded up to whole frames, and every
frame starts at a multiple of frame_bytes in it (reads take whole frames;
clear/drain skip to the next frame boundary; drop_oldest drops whole frames).
So a frame never wraps and read_frame() is always zero copy: the view is
exported through the buffer protocol of the ring itself, and one flag per
frame slot records which slots are still viewed, so a write can refuse to
overwrite them. Nothing here allocates per byte or per frame except the
memoryview the caller asked for.
"""
cimport cython
from libc.stdint cimport uint8_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from cpython.buffer cimport PyBUF_WRITABLE, PyBUF_FORMAT, PyBUF_ND, PyBUF_STRIDES
from cpython.memoryview cimport PyMemoryView_FromObject
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from bufutil cimport get_buffer, release, new_bytes, ANY_ITEMS, NOGIL_BYTES

from rtfast.errors import RingOverflow


cdef enum Overflow:
    RAISE
    DROP_OLDEST
    DROP_NEWEST

cdef tuple _POLICIES = ("raise", "drop_oldest", "drop_newest")


cdef inline void _copy(uint8_t* dst, const uint8_t* src, Py_ssize_t n) noexcept:
    if n == 0:      # the second half of an unwrapped copy; pointers may be NULL
        return
    if n >= NOGIL_BYTES:
        with nogil:
            memcpy(dst, src, n)
    else:
        memcpy(dst, src, n)


@cython.final
cdef class FrameRing:
    """FrameRing(frame_bytes, capacity_bytes, *, overflow="raise")

    A fixed-capacity FIFO of bytes read out in frames of exactly frame_bytes.
    Sizes are in bytes. Not thread-safe: one owner (thread or event loop)
    per ring; concurrent use can garble data but never touches memory
    outside the ring.
    """
    cdef uint8_t* _data          # _size bytes of frame slots
    cdef uint8_t* _viewed        # one flag per slot: a live read_frame() view
    cdef Py_ssize_t _f           # frame_bytes
    cdef Py_ssize_t _cap         # capacity_bytes: most bytes ever buffered
    cdef Py_ssize_t _size        # _cap rounded up to whole frames
    cdef Py_ssize_t _slots       # _size // _f
    cdef Py_ssize_t _head        # offset of the oldest byte, a multiple of _f
    cdef Py_ssize_t _count       # bytes buffered
    cdef Py_ssize_t _views       # live exported views
    cdef Py_ssize_t _export_at   # slot offset read_frame() is exporting, or -1
    cdef unsigned long long _dropped
    cdef Overflow _policy

    def __cinit__(self, Py_ssize_t frame_bytes, Py_ssize_t capacity_bytes, *, str overflow="raise"):
        self._export_at = -1
        if frame_bytes < 1:
            raise ValueError(f"frame_bytes must be >= 1, got {frame_bytes}")
        if capacity_bytes < frame_bytes:
            raise ValueError(f"capacity_bytes ({capacity_bytes}) must be >= frame_bytes ({frame_bytes})")
        if overflow not in _POLICIES:
            raise ValueError(f"overflow must be one of {', '.join(map(repr, _POLICIES))}, got {overflow!r}")
        self._policy = <Overflow>_POLICIES.index(overflow)
        if capacity_bytes > <Py_ssize_t>(<size_t>-1 >> 1) - frame_bytes:
            raise MemoryError(f"capacity_bytes {capacity_bytes} is too large")
        self._f = frame_bytes
        self._cap = capacity_bytes
        self._size = (capacity_bytes + frame_bytes - 1) // frame_bytes * frame_bytes
        self._data = <uint8_t*>malloc(self._size)
        self._slots = self._size // frame_bytes
        self._viewed = <uint8_t*>calloc(self._slots, 1)
        if self._data == NULL or self._viewed == NULL:
            raise MemoryError(f"cannot allocate a ring of {self._size} bytes")

    def __dealloc__(self):
        # Live views hold a reference to the ring, so none is left here.
        free(self._data)
        free(self._viewed)

    # -- buffer protocol: only read_frame() exports, one frame at a time ----

    def __getbuffer__(self, Py_buffer* buffer, int flags):
        if self._export_at < 0:
            raise BufferError("a FrameRing is not a buffer; read_frame() returns frame views")
        if flags & PyBUF_WRITABLE:
            raise BufferError("frame views are read-only")
        buffer.buf = self._data + self._export_at
        buffer.obj = self
        buffer.len = self._f
        buffer.readonly = 1
        buffer.itemsize = 1
        buffer.format = <char*>"B" if flags & PyBUF_FORMAT else NULL
        buffer.ndim = 1
        buffer.shape = &buffer.len if flags & PyBUF_ND else NULL
        buffer.strides = &buffer.itemsize if (flags & PyBUF_STRIDES) == PyBUF_STRIDES else NULL
        buffer.suboffsets = NULL
        buffer.internal = NULL
        self._viewed[self._export_at // self._f] = 1
        self._views += 1

    def __releasebuffer__(self, Py_buffer* buffer):
        self._viewed[(<uint8_t*>buffer.buf - self._data) // self._f] = 0
        self._views -= 1

    cdef int _check_views(self, Py_ssize_t at, Py_ssize_t n) except -1:
        """Refuse to write n bytes at offset at over a slot still viewed."""
        if self._views == 0 or n == 0:
            return 0
        cdef Py_ssize_t slot = at // self._f, last = (at + n - 1) // self._f
        while slot <= last:     # n <= _size: indices wrap at most once
            if self._viewed[slot if slot < self._slots else slot - self._slots]:
                raise BufferError(
                    f"writing {n} bytes would overwrite a frame still exported by read_frame(); "
                    f"release that memoryview first (del it, .release() it or use `with`)")
            slot += 1
        return 0

    # -- ring copies (at most two memcpy each) ------------------------------

    cdef void _put(self, Py_ssize_t at, const uint8_t* src, Py_ssize_t n) noexcept:
        cdef Py_ssize_t first = min(n, self._size - at)
        _copy(self._data + at, src, first)
        _copy(self._data, src + first, n - first)

    cdef void _get(self, uint8_t* dst, Py_ssize_t n) noexcept:
        """Copy the n oldest bytes to dst (does not consume them)."""
        cdef Py_ssize_t first = min(n, self._size - self._head)
        _copy(dst, self._data + self._head, first)
        _copy(dst + first, self._data, n - first)

    cdef inline void _advance(self, Py_ssize_t n) noexcept:
        """Forget the n oldest bytes (n <= _count)."""
        self._head += n
        if self._head >= self._size:    # n <= _size: no division on the hot path
            self._head -= self._size
        self._count -= n

    cdef inline void _discard_all(self) noexcept:
        """Empty the ring; the next write starts a new frame slot."""
        self._advance(self._count)
        self._head = (self._head + self._f - 1) // self._f * self._f % self._size

    # -- public API ------------------------------------------------------------

    def write(self, data, /):
        """Append the raw bytes of any C-contiguous buffer; returns bytes accepted.

        When data does not fit in the free room (capacity_bytes - readable):
        "raise" raises RingOverflow and writes nothing; "drop_oldest" discards
        the fewest whole frames from the front of the stream (buffered bytes
        first, then the start of data) so that the rest fits, and returns
        len(data); "drop_newest" writes the first bytes of data that fit and
        returns that count. Dropped bytes are counted in ``dropped``.
        A write that would overwrite a frame still held through a read_frame()
        view raises BufferError and writes nothing.
        """
        if type(data) is bytes:     # the common case, without the buffer protocol
            return self._write(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        cdef Py_buffer src
        get_buffer(data, &src, False, ANY_ITEMS, b"data")
        try:
            return self._write(<const uint8_t*>src.buf, src.len)
        finally:
            release(&src)

    cdef Py_ssize_t _write(self, const uint8_t* src, Py_ssize_t n) except -1:
        cdef Py_ssize_t room = self._cap - self._count
        cdef Py_ssize_t head = self._head, count = self._count
        cdef Py_ssize_t drop = 0, skip = 0, length = n
        if n > room:
            if self._policy == RAISE:
                raise RingOverflow(f"cannot write {n} bytes: {room} of {self._cap} free "
                                   f"(overflow='raise', nothing was written)", n, room)
            if self._policy == DROP_NEWEST:
                length = room
            else:
                drop = (n - room + self._f - 1) // self._f * self._f
                if drop <= count:
                    count -= drop
                else:
                    skip = drop - count
                    count = 0
                    length = n - skip
                head = (head + drop) % self._size
        cdef Py_ssize_t tail = head + count
        if tail >= self._size:
            tail -= self._size
        self._check_views(tail, length)
        self._put(tail, src + skip, length)
        self._head = head
        self._count = count + length
        self._dropped += drop + (n - length - skip)
        return length if self._policy == DROP_NEWEST else n

    def read_frame(self):
        """The oldest frame as a read-only memoryview of frame_bytes, or None.

        None when fewer than frame_bytes are buffered. The view points into
        the ring (zero copy): while it, or any slice of it, is alive, a write
        that would reuse its memory raises BufferError. Release it (del,
        .release(), ``with``) or copy it with bytes() if you keep it.
        """
        return self._take_frame()

    cdef object _take_frame(self):
        if self._count < self._f:
            return None
        self._export_at = self._head
        try:
            view = PyMemoryView_FromObject(self)
        finally:
            self._export_at = -1
        self._advance(self._f)
        return view

    def __iter__(self):
        """Iterating a ring reads frames (as read_frame()) until fewer than
        frame_bytes are buffered: ``for frame in ring: send(frame)``."""
        return self

    def __next__(self):
        frame = self._take_frame()
        if frame is None:
            raise StopIteration
        return frame

    def read_into(self, out, /):
        """Copy as many whole frames as fit into the writable buffer out.

        Returns the bytes written: a multiple of frame_bytes, 0 when out is
        smaller than a frame or no whole frame is buffered. A partial frame
        stays buffered.
        """
        cdef Py_buffer dst
        get_buffer(out, &dst, True, ANY_ITEMS, b"out")
        cdef Py_ssize_t n = min(self._count, dst.len) // self._f * self._f
        self._get(<uint8_t*>dst.buf, n)
        self._advance(n)
        release(&dst)
        return n

    def drain(self, int pad):
        """Everything buffered as bytes, the last partial frame padded with pad.

        pad is the codec's silence byte: 0xFF mu-law, 0xD5 A-law, 0x00 PCM16
        (rtfast.ring.ULAW_SILENCE, ALAW_SILENCE, PCM16_SILENCE). The result is
        a whole number of frames; None when nothing is buffered. Empties the
        ring.
        """
        if not 0 <= pad <= 255:
            raise ValueError(f"pad must be a byte value 0..255, got {pad}")
        if self._count == 0:
            return None
        cdef uint8_t* dst
        cdef Py_ssize_t n = (self._count + self._f - 1) // self._f * self._f
        out = new_bytes(n, &dst)
        self._get(dst, self._count)
        memset(dst + self._count, pad, n - self._count)
        self._discard_all()
        return out

    def clear(self):
        """Forget everything buffered (a partial frame too); views stay valid."""
        self._discard_all()

    @property
    def frame_bytes(self):
        """Bytes per frame."""
        return self._f

    @property
    def capacity_bytes(self):
        """Most bytes the ring buffers at once."""
        return self._cap

    @property
    def overflow(self):
        """The overflow policy: "raise", "drop_oldest" or "drop_newest"."""
        return _POLICIES[<int>self._policy]

    @property
    def readable(self):
        """Bytes buffered (whole frames and the partial one)."""
        return self._count

    @property
    def pending(self):
        """Whole frames ready to read."""
        return self._count // self._f

    @property
    def dropped(self):
        """Total bytes discarded by the overflow policy since creation."""
        return self._dropped

    @property
    def exports(self):
        """read_frame() views still alive (they block writes over their memory)."""
        return self._views

    def __repr__(self):
        return (f"<FrameRing frame_bytes={self._f} capacity_bytes={self._cap} "
                f"overflow={self.overflow!r} readable={self._count}>")
