"""Streaming resampler (private; see rtfast.resample for the public API).

One Resampler per call and direction. The engine is libsoxr itself, taken
from the copy the `soxr` wheel already loaded (soxrapi.h): soxr_process runs
on the caller's buffer, with no numpy array and no Python call per frame.
When those symbols are not there, soxr.ResampleStream does the same work
(same filters, same bytes) through numpy.
"""
import os

import numpy as np
import soxr
import soxr.soxr_ext

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint8_t
from bufutil cimport get_buffer, release, new_bytes, ANY_ITEMS, PCM16_ITEMS, NOGIL_BYTES
from soxrapi cimport *

DIRECT = "libsoxr-direct"
FALLBACK = "soxr.ResampleStream"

# soxr.h quality recipes, as python-soxr maps its names, and whether the
# stream is built for low latency (soxrapi.h: minimum phase, small DFT blocks).
# "hq-ll" is HQ's filter magnitude (passband, alias rejection) at a fifth of
# its delay; python-soxr has no such setting, so only the direct engine runs it.
_RECIPES = {"qq": (0, 0), "lq": (1, 0), "mq": (2, 0), "hq": (4, 0), "vhq": (6, 0),
            "hq-ll": (4, 1)}
_DTYPES = {"int16": RT_SOXR_INT16_I, "float32": RT_SOXR_FLOAT32_I}

cdef rt_soxr_api _api
cdef bint _have_api = rt_soxr_load(os.fsencode(soxr.soxr_ext.__file__), &_api) == 0

# Output of up to this many bytes goes through the instance scratch (then one
# copy into the result); larger output is written straight into its bytes.
cdef enum:
    SCRATCH = 16384


def engine():
    """The engine new Resamplers use: "libsoxr-direct" or "soxr.ResampleStream"."""
    return DIRECT if _have_api else FALLBACK


cdef inline int _check(rt_soxr_error_t err) except -1:
    if err != NULL:
        raise RuntimeError(f"libsoxr: {err.decode('utf-8', 'replace')}")
    return 0


cdef class Resampler:
    """Stateful mono resampler for one stream (one call, one direction).

    Resampler(in_rate, out_rate, *, quality="HQ", dtype="int16")

    in_rate, out_rate: sample rates in Hz. quality: "QQ", "LQ", "MQ", "HQ"
    (python-soxr's default) or "VHQ", as in soxr, or "HQ-LL": HQ's filter
    made minimum phase and run in small blocks, which holds back under 10 ms
    (median, 20 ms at most) of a 20 ms-framed stream instead of HQ's ~42 ms,
    and returns output for every frame (the bridge's default; needs the
    libsoxr-direct engine). dtype: "int16" (PCM16 little-endian bytes, or an
    int16 array) or "float32" (raw float32 bytes).

    Streaming output equals one-shot output: the concatenated results of
    process() and the final flush() do not depend on how the input was cut.
    int16 output is libsoxr's undithered result (round half to even, clipped),
    i.e. ``rint(soxr.resample(x / 32768, in, out, quality) * 32768)`` with x as
    float64; soxr's own int16 path adds a TPDF dither (+-1 LSB) that depends on
    the chunking, which is why it is not used.
    """

    cdef rt_rs _rs
    cdef bint _open
    cdef bint _busy
    cdef object _stream    # soxr.ResampleStream when the fallback engine runs
    cdef bytes _carry      # fallback: partial trailing sample
    cdef readonly double in_rate
    cdef readonly double out_rate
    cdef readonly str quality
    cdef readonly str dtype
    cdef readonly str engine
    cdef size_t _item
    cdef int _items
    cdef uint8_t _scratch[SCRATCH]

    def __cinit__(self, in_rate, out_rate, *, quality="HQ", dtype="int16", _engine=None):
        if not in_rate > 0 or not out_rate > 0:
            raise ValueError(f"sample rates must be positive, got {in_rate!r} and {out_rate!r}")
        q = quality.lower() if isinstance(quality, str) else None
        if q not in _RECIPES:
            raise ValueError(f"quality must be one of QQ, LQ, MQ, HQ, VHQ, HQ-LL, not {quality!r}")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'int16' or 'float32', not {dtype!r}")
        if _engine is None:
            _engine = engine()
        elif _engine not in (DIRECT, FALLBACK):
            raise ValueError(f"_engine must be {DIRECT!r} or {FALLBACK!r}, not {_engine!r}")
        elif _engine == DIRECT and not _have_api:
            raise RuntimeError("libsoxr's symbols were not found in soxr.soxr_ext")
        recipe, low_latency = _RECIPES[q]
        if low_latency and _engine != DIRECT:
            raise RuntimeError(f"quality {quality!r} needs the {DIRECT} engine (libsoxr's C API: "
                               f"soxr.ResampleStream has no minimum-phase setting); use 'HQ'")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.quality = q.upper()
        self.dtype = dtype
        self.engine = _engine
        self._item = 2 if dtype == "int16" else 4
        self._items = PCM16_ITEMS if dtype == "int16" else ANY_ITEMS
        if _engine == DIRECT:
            err = rt_rs_open(&self._rs, &_api, in_rate, out_rate, recipe, low_latency, _DTYPES[dtype])
            self._open = err == NULL
            _check(err)
        else:
            # int16 runs in float64 so the result is the undithered one (see above).
            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, quality=q,
                                               dtype="float64" if dtype == "int16" else dtype)
            self._carry = b""

    def __dealloc__(self):
        if self._open:
            rt_rs_close(&self._rs)

    def __repr__(self):
        return (f"Resampler({self.in_rate:g}, {self.out_rate:g}, quality={self.quality!r}, "
                f"dtype={self.dtype!r})  # {self.engine}")

    @property
    def delay(self):
        """Output samples still inside the filter (soxr_delay), a float."""
        return rt_rs_delay(&self._rs) if self._open else self._stream.delay()

    def max_output(self, Py_ssize_t n_bytes):
        """Bytes that process() of n_bytes can return at most, in the current state.

        The size process_into() requires of out. It grows and shrinks with what
        the filter holds (soxr emits in blocks: for a 20 ms frame at 8k->24k HQ
        it moves between about 1.8 and 3.8 KB), so ask before each call.
        max_output(0) bounds what flush() returns.
        """
        if n_bytes < 0:
            raise ValueError("n_bytes must be >= 0")
        if self._open:
            return rt_rs_bound(&self._rs, n_bytes) * self._item
        samples = (len(self._carry) + n_bytes) // self._item
        return (int(self._stream.delay() + samples * self.out_rate / self.in_rate) + 2) * self._item

    cdef int _enter(self) except -1:
        if self._busy:
            raise RuntimeError("Resampler is in use by another thread")
        self._busy = True
        return 0

    def process(self, pcm, /):
        """Resample the next chunk of the stream -> bytes (possibly empty).

        pcm: bytes-like (or an int16 array for dtype int16). Any byte count: a
        partial trailing sample is kept and completed by the next call.
        soxr emits output in blocks, so a single frame may return nothing and
        a later one more than its share.
        """
        if not self._open:
            return self._fallback(pcm)
        cdef Py_buffer src
        cdef uint8_t* dst
        cdef size_t written = 0
        cdef rt_soxr_error_t err
        cdef bytes out = None
        self._enter()
        try:
            get_buffer(pcm, &src, False, self._items, b"pcm")
            try:
                out = self._target(rt_rs_bound(&self._rs, src.len) * self._item, &dst)
                if src.len >= NOGIL_BYTES:
                    with nogil:
                        err = rt_rs_process(&self._rs, <const uint8_t*>src.buf, src.len, dst, &written)
                else:
                    err = rt_rs_process(&self._rs, <const uint8_t*>src.buf, src.len, dst, &written)
                _check(err)
            finally:
                release(&src)
        finally:
            self._busy = False
        return self._result(out, dst, written)

    cdef bytes _target(self, size_t need, uint8_t** dst):
        """Where output of up to need bytes goes: the scratch (None) or a new bytes."""
        if need <= SCRATCH:
            dst[0] = self._scratch
            return None
        return new_bytes(need, dst)

    cdef bytes _result(self, bytes out, uint8_t* dst, size_t written):
        if out is None:
            return PyBytes_FromStringAndSize(<char*>dst, written)
        return out if written == <size_t>len(out) else out[:written]  # bulk input: one copy is noise

    def process_into(self, pcm, out, /):
        """Like process(), writing into the writable buffer out; returns bytes written.

        out needs max_output(len(pcm)) bytes; a smaller out raises ValueError
        before anything is written or consumed.
        """
        if not self._open:
            res = self._fallback_checked(pcm, out)
            memoryview(out).cast("B")[:len(res)] = res
            return len(res)
        cdef Py_buffer src, dst
        cdef size_t written = 0
        cdef rt_soxr_error_t err
        self._enter()
        try:
            get_buffer(pcm, &src, False, self._items, b"pcm")
            try:
                get_buffer(out, &dst, True, ANY_ITEMS, b"out")
                try:
                    need = rt_rs_bound(&self._rs, src.len) * self._item
                    if <size_t>dst.len < need:
                        raise ValueError(f"out has room for {dst.len} bytes, {need} needed "
                                         f"(see max_output)")
                    if src.len >= NOGIL_BYTES:
                        with nogil:
                            err = rt_rs_process(&self._rs, <const uint8_t*>src.buf, src.len,
                                                <uint8_t*>dst.buf, &written)
                    else:
                        err = rt_rs_process(&self._rs, <const uint8_t*>src.buf, src.len,
                                            <uint8_t*>dst.buf, &written)
                    _check(err)
                finally:
                    release(&dst)
            finally:
                release(&src)
        finally:
            self._busy = False
        return written

    def flush(self):
        """End the utterance: return what the filter still holds, then reset.

        The resampler is ready for a new utterance afterwards (as after
        reset()). A partial trailing sample still carried is dropped.
        """
        cdef size_t written = 0
        cdef uint8_t* dst
        cdef bytes out
        if not self._open:
            tail = self._stream.resample_chunk(
                np.zeros(0, np.float64 if self._item == 2 else np.float32), last=True)
            self._stream.clear()
            self._carry = b""
            return self._to_bytes(tail)
        self._enter()
        try:
            out = self._target(rt_rs_bound(&self._rs, 0) * self._item, &dst)
            _check(rt_rs_flush(&self._rs, dst, &written))
        finally:
            self._busy = False
        return self._result(out, dst, written)

    def reset(self):
        """Drop the filter's history and any partial sample: a new utterance."""
        if self._open:
            _check(rt_rs_reset(&self._rs))
        else:
            self._stream.clear()
            self._carry = b""

    def _c_stream(self):
        """For rtfast._transcode: a capsule of the rt_rs (None with the fallback engine)."""
        return PyCapsule_New(&self._rs, RT_RS_CAPSULE, NULL) if self._open else None

    # The fallback engine: numpy and soxr.ResampleStream, same bytes.

    def _fallback_checked(self, pcm, out):
        n = memoryview(pcm).nbytes
        need = self.max_output(n)
        if memoryview(out).nbytes < need:
            raise ValueError(f"out has room for {memoryview(out).nbytes} bytes, {need} needed "
                             f"(see max_output)")
        return self._fallback(pcm)

    def _fallback(self, pcm):
        cdef Py_buffer src
        get_buffer(pcm, &src, False, self._items, b"pcm")
        release(&src)
        data = self._carry + memoryview(pcm).cast("B").tobytes()
        whole = len(data) - len(data) % self._item
        self._carry = data[whole:]
        x = np.frombuffer(data, "<i2" if self._item == 2 else "<f4", whole // self._item)
        if self._item == 2:
            x = x / 32768.0
        return self._to_bytes(self._stream.resample_chunk(x))

    def _to_bytes(self, y):
        if self._item == 2:
            y = np.clip(np.rint(y * 32768.0), -32768, 32767).astype("<i2")
        return y.tobytes()
