"""Stateful audio transcoder (private; see rtfast.transcode for the public API).

One pass per stage over instance scratch memory, all in C: base64 decode,
G.711 decode, libsoxr resampling (the rt_rs of an owned Resampler), G.711
encode, base64 encode. A 20 ms Twilio frame touches a few KB of L1.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_CheckExact
from cpython.buffer cimport PyBUF_READ
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.mem cimport PyMem_Realloc, PyMem_Free
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport uint8_t
from libc.string cimport memcpy
from bufutil cimport get_buffer, get_text, release, new_bytes, BYTE_ITEMS, PCM16_ITEMS, NOGIL_BYTES
from g711core cimport *
from b64core cimport *
from soxrapi cimport *

from rtfast._resample import Resampler

rt_g711_init()

cdef enum Codec:
    PCM16
    ULAW
    ALAW

FORMATS = {
    "pcmu/8000": (ULAW, 8000), "pcma/8000": (ALAW, 8000),
    "pcm16/8000": (PCM16, 8000), "pcm16/16000": (PCM16, 16000),
    "pcm16/24000": (PCM16, 24000), "pcm16/48000": (PCM16, 48000),
}

cdef enum:
    ARENA_MIN = 16384       # first scratch allocation: a frame needs a few KB
    ARENA_KEEP = 1 << 20    # scratch above this is freed after the call


cdef tuple _parse(fmt, str what):
    try:
        return FORMATS[fmt.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown {what} format {fmt!r}; expected one of "
                         f"{', '.join(FORMATS)}") from None


cdef inline void _kernel(g711_kernel k, const uint8_t* src, size_t n, uint8_t* dst) noexcept:
    if n >= NOGIL_BYTES:
        with nogil:
            k(src, n, dst)
    else:
        k(src, n, dst)


cdef class Transcoder:
    """Converts one audio stream between two formats, statefully.

    Transcoder(src, dst, *, quality="HQ")

    Formats: "pcmu/8000", "pcma/8000" (G.711 mu-law / A-law) and
    "pcm16/8000", "pcm16/16000", "pcm16/24000", "pcm16/48000" (PCM16
    little-endian mono). quality is the soxr quality used when the rates
    differ (see rtfast.resample; "HQ-LL" is the low-latency one). Feeding a stream in pieces gives the same bytes as feeding it at
    once (the resampler's state and a partial PCM16 sample are carried), and
    every base64 output is the complete base64 of that call's bytes, so each
    call's result can be sent as one Realtime append / carrier media message.
    With src == dst nothing is converted and bytes input comes back as is.
    """

    cdef readonly str src
    cdef readonly str dst
    cdef Codec _src_codec
    cdef Codec _dst_codec
    cdef bint _same
    cdef object _resampler     # Resampler, or None when the rates are equal
    cdef rt_rs* _rs            # its libsoxr stream; NULL with the fallback engine
    cdef size_t _ncarry        # a partial PCM16 input sample (0 or 1 byte)
    cdef uint8_t _carry
    cdef uint8_t* _arena
    cdef size_t _cap
    cdef bint _busy            # guards the arena and stream while the GIL is dropped

    def __cinit__(self, src, dst, *, quality="HQ", _engine=None):
        s_codec, s_rate = _parse(src, "source")
        d_codec, d_rate = _parse(dst, "destination")
        self.src = src.lower()
        self.dst = dst.lower()
        self._src_codec = s_codec
        self._dst_codec = d_codec
        self._same = self.src == self.dst
        if s_rate != d_rate:
            self._resampler = Resampler(s_rate, d_rate, quality=quality, _engine=_engine)
            capsule = self._resampler._c_stream()
            if capsule is not None:
                self._rs = <rt_rs*>PyCapsule_GetPointer(capsule, RT_RS_CAPSULE)

    def __dealloc__(self):
        PyMem_Free(self._arena)

    def __repr__(self):
        return f"Transcoder({self.src!r}, {self.dst!r})"

    @property
    def engine(self):
        """The resampler's engine, or None when no resampling happens."""
        return None if self._resampler is None else self._resampler.engine

    @property
    def delay(self):
        """Output samples still inside the resampler (0.0 without one)."""
        return 0.0 if self._resampler is None else self._resampler.delay

    cdef uint8_t* _reserve(self, size_t need) except NULL:
        if need > self._cap:
            need = max(need, <size_t>ARENA_MIN)
            p = <uint8_t*>PyMem_Realloc(self._arena, need)
            if p == NULL:
                raise MemoryError()
            self._arena = p
            self._cap = need
        return self._arena

    cdef void _trim(self) noexcept:
        if self._cap > ARENA_KEEP:
            PyMem_Free(self._arena)
            self._arena = NULL
            self._cap = 0

    cdef size_t _bound(self, size_t pcm_bytes) except? 0:
        """Resampled PCM16 bytes that pcm_bytes more input can give at most."""
        if self._rs != NULL:
            return rt_rs_bound(self._rs, pcm_bytes) * 2
        return self._resampler.max_output(pcm_bytes)

    cdef int _enter(self) except -1:
        if self._busy:
            raise RuntimeError("Transcoder is in use by another thread")
        self._busy = True
        return 0

    cdef object _run(self, data, bint b64_in, bint b64_out):
        if self._same:
            return self._passthrough(data, b64_in, b64_out)
        self._enter()
        try:
            return self._convert(data, b64_in, b64_out)
        finally:
            self._busy = False

    cdef object _convert(self, data, bint b64_in, bint b64_out):
        cdef Py_buffer view
        cdef const char* text
        cdef Py_ssize_t n
        cdef const uint8_t* raw
        cdef size_t nraw, ns, nb, err = 0, written = 0
        cdef size_t off_pcm, off_res, off_enc
        cdef uint8_t* arena
        cdef uint8_t* pcm
        cdef uint8_t* res
        cdef int rc
        cdef bint pcm_src = self._src_codec == PCM16
        cdef size_t carry = self._ncarry
        if b64_in:
            if get_text(data, &view, &text, &n, b"b64") == 1:
                raise_b64_error(RT_B64_BAD_CHAR, n, <const uint8_t*>b"", 0)
            nraw = rt_b64_decoded_len(<const uint8_t*>text, n)
        else:
            get_buffer(data, &view, False, PCM16_ITEMS if pcm_src else BYTE_ITEMS, b"data")
            nraw = view.len
        try:
            # Arena: carry + raw input | decoded PCM16 | resampled PCM16 | G.711 codes
            ns = (carry + nraw) // 2 if pcm_src else nraw
            nb = self._bound(2 * ns) if self._resampler is not None else 2 * ns
            off_pcm = 1 + nraw
            off_res = off_pcm + 2 * ns
            off_enc = off_res + nb
            arena = self._reserve(off_enc + nb // 2 + 1)
            raw = <const uint8_t*>view.buf
            if b64_in or carry:
                arena[0] = self._carry
                if b64_in:
                    rc = rt_b64_decode(<const uint8_t*>text, n, arena + carry, &nraw, &err)
                    if rc != RT_B64_OK:
                        raise_b64_error(rc, err, <const uint8_t*>text, n)  # state untouched
                else:
                    memcpy(arena + 1, raw, nraw)
                raw = arena
                nraw += carry
            # From here on the stream's state moves.
            if pcm_src:
                ns = nraw // 2
                self._ncarry = nraw & 1
                if self._ncarry:
                    self._carry = raw[nraw - 1]
                pcm = <uint8_t*>raw
            else:
                ns = nraw
                pcm = arena + off_pcm
                _kernel(rt_ulaw_decode if self._src_codec == ULAW else rt_alaw_decode, raw, ns, pcm)
            if self._resampler is None:
                return self._emit(pcm, 2 * ns, arena + off_enc, b64_out)
            res = arena + off_res
            fallback_out = self._resample(pcm, 2 * ns, res, &written)
            if fallback_out is not None:
                res = <uint8_t*>PyBytes_AS_STRING(fallback_out)
            return self._emit(res, written, arena + off_enc, b64_out)
        finally:
            release(&view)
            self._trim()

    cdef object _resample(self, uint8_t* pcm, size_t n, uint8_t* out, size_t* written):
        """Resample n PCM16 bytes into out; the fallback returns its bytes instead."""
        cdef rt_soxr_error_t e
        if self._rs == NULL:
            result = self._resampler.process(PyMemoryView_FromMemory(<char*>pcm, n, PyBUF_READ))
            written[0] = len(result)
            return result
        if n >= NOGIL_BYTES:
            with nogil:
                e = rt_rs_process(self._rs, pcm, n, out, written)
        else:
            e = rt_rs_process(self._rs, pcm, n, out, written)
        if e != NULL:
            raise RuntimeError(f"libsoxr: {e.decode('utf-8', 'replace')}")
        return None

    cdef object _emit(self, uint8_t* pcm, size_t n, uint8_t* scratch, bint b64_out):
        """PCM16 (n bytes) -> destination codec -> bytes or base64 bytes.

        scratch has room for n // 2 codes when the destination is G.711.
        """
        cdef uint8_t* dst
        cdef const uint8_t* payload = pcm
        if self._dst_codec != PCM16:
            n //= 2
            if not b64_out:
                out = new_bytes(n, &dst)
                _kernel(rt_ulaw_encode if self._dst_codec == ULAW else rt_alaw_encode, pcm, n, dst)
                return out
            _kernel(rt_ulaw_encode if self._dst_codec == ULAW else rt_alaw_encode, pcm, n, scratch)
            payload = scratch
        if not b64_out:
            return PyBytes_FromStringAndSize(<const char*>payload, n)
        out = new_bytes(rt_b64_encoded_len(n), &dst)
        if n >= NOGIL_BYTES:
            with nogil:
                rt_b64_encode(payload, n, dst)
        else:
            rt_b64_encode(payload, n, dst)
        return out

    cdef object _passthrough(self, data, bint b64_in, bint b64_out):
        cdef Py_buffer view
        cdef const char* text
        cdef Py_ssize_t n
        cdef size_t err = 0, got = 0
        cdef int rc
        cdef uint8_t* dst
        if not b64_in:
            get_buffer(data, &view, False,
                       PCM16_ITEMS if self._src_codec == PCM16 else BYTE_ITEMS, b"data")
            try:
                if b64_out:
                    out = new_bytes(rt_b64_encoded_len(view.len), &dst)
                    rt_b64_encode(<const uint8_t*>view.buf, view.len, dst)
                    return out
                if PyBytes_CheckExact(data):
                    return data
                return PyBytes_FromStringAndSize(<const char*>view.buf, view.len)
            finally:
                release(&view)
        if get_text(data, &view, &text, &n, b"b64") == 1:
            raise_b64_error(RT_B64_BAD_CHAR, n, <const uint8_t*>b"", 0)
        try:
            # Decoded even for base64 -> base64: the input is checked, not trusted.
            out = new_bytes(rt_b64_decoded_len(<const uint8_t*>text, n), &dst)
            rc = rt_b64_decode(<const uint8_t*>text, n, dst, &got, &err)
            if rc != RT_B64_OK:
                raise_b64_error(rc, err, <const uint8_t*>text, n)
            if not b64_out:
                return out
            if PyBytes_CheckExact(data):
                return data
            return PyBytes_FromStringAndSize(text, n)
        finally:
            release(&view)

    def feed(self, data, /):
        """Raw source bytes in, raw destination bytes out (possibly empty).

        data: bytes-like (G.711 codes, or PCM16 / an int16 array). A PCM16
        source may have any byte count: a partial sample waits for the next call.
        """
        return self._run(data, False, False)

    def feed_b64(self, b64, /):
        """Base64 source (bytes or ASCII str) in, raw destination bytes out.

        Invalid base64 raises rtfast.errors.Base64Error (with the offset) and
        leaves the transcoder's state as it was.
        """
        return self._run(b64, True, False)

    def feed_to_b64(self, data, /):
        """Raw source bytes in, base64 destination bytes out."""
        return self._run(data, False, True)

    def feed_b64_to_b64(self, b64, /):
        """Base64 in, base64 out: a Twilio media payload -> a Realtime append, and back."""
        return self._run(b64, True, True)

    cdef object _flush(self, bint b64_out):
        self._enter()
        try:
            return self._drain(b64_out)
        finally:
            self._busy = False

    cdef object _drain(self, bint b64_out):
        """Flush the resampler (which resets it) and encode what it held."""
        cdef size_t nb, written = 0
        cdef uint8_t* arena
        cdef rt_soxr_error_t e
        self._ncarry = 0
        if self._resampler is None:
            return self._emit(NULL, 0, NULL, b64_out)
        if self._rs == NULL:
            result = self._resampler.flush()
            return self._emit(<uint8_t*>PyBytes_AS_STRING(result), len(result),
                              self._reserve(len(result) // 2 + 1), b64_out)
        nb = self._bound(0)
        arena = self._reserve(nb + nb // 2)
        e = rt_rs_flush(self._rs, arena, &written)
        if e != NULL:
            raise RuntimeError(f"libsoxr: {e.decode('utf-8', 'replace')}")
        return self._emit(arena, written, arena + written, b64_out)

    def flush(self):
        """End the utterance: the destination bytes the resampler still holds.

        Leaves the transcoder ready for a new utterance (as reset()); a
        partial PCM16 input sample still carried is dropped.
        """
        return self._flush(False)

    def flush_b64(self):
        """flush(), base64-encoded."""
        return self._flush(True)

    def reset(self):
        """Forget the stream (resampler history, partial sample): a new utterance."""
        self._ncarry = 0
        if self._resampler is not None:
            self._resampler.reset()
