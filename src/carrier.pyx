"""Carrier media messages, never turned into dicts (private; see rtfast.carriers).

Inbound, a carrier's JSON ``media`` event (Twilio, Telnyx, Plivo, Exotel) is
scanned in place (carrierscan.h): a :class:`Media` keeps the raw frame and the
span of its base64 payload, which is checked once and then spliced straight
into a Realtime ``input_audio_buffer.append`` frame, or decoded. Outbound
carrier messages are built from byte templates with the base64 written (or
spliced) straight in: the base64 alphabet needs no JSON escaping.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport uint8_t
from libc.string cimport memcpy, memcmp
from bufutil cimport new_bytes, get_buffer, get_text, release, ANY_ITEMS
from b64core cimport *

from rtfast.errors import ProtocolError

cdef extern from "carrierscan.h" nogil:
    enum:
        RT_SCAN_OK
        RT_SCAN_OTHER
        RT_SCAN_FALLBACK
        RT_C_EVENT, RT_C_STREAM, RT_C_TRACK, RT_C_PAYLOAD
        RT_C_SEQ, RT_C_CHUNK, RT_C_TS
    ctypedef struct rt_cscan_t:
        Py_ssize_t start[4]
        Py_ssize_t end[4]
        long long num[3]
        int nextra
        Py_ssize_t xkey[4][2]
        Py_ssize_t xval[4][2]
    int rt_scan_carrier_media(const uint8_t *p, Py_ssize_t n, rt_cscan_t *s)
    int rt_scan_carrier_mark(const uint8_t *p, Py_ssize_t n, rt_cscan_t *s)
    int rt_b64_check(const uint8_t *p, size_t n, size_t *err)


cdef bytes _APPEND_HEAD = b'{"type":"input_audio_buffer.append","audio":"'
cdef bytes _APPEND_TAIL = b'"}'
cdef bytes _LIVE_APPEND_HEAD = b'{"type":"session.input_audio.append","audio":"'


cdef int _check_payload(const uint8_t* p, Py_ssize_t n) except -1:
    cdef size_t err = 0
    cdef int rc = rt_b64_check(p, n, &err)
    if rc == RT_B64_OK:
        return 0
    what = {RT_B64_BAD_LENGTH: f"its length {n} is not a multiple of 4",
            RT_B64_BAD_PADDING: f"misplaced padding at offset {err}"}.get(
        rc, f"bad character {bytes([p[err]]) if <Py_ssize_t>err < n else b''!r} at offset {err}")
    raise ProtocolError(f"media payload is not base64: {what}",
                        PyUnicode_DecodeASCII(<const char*>p, min(n, 200), "replace"))


cdef inline object _span(bytes frame, Py_ssize_t start, Py_ssize_t end):
    return PyUnicode_DecodeASCII(PyBytes_AS_STRING(frame) + start, end - start, NULL)


cdef class Media:
    """A carrier ``media`` event: caller audio.

    Media(payload, *, stream_id=None, sequence_number=None, track=None,
          chunk=None, timestamp=None, extra=None)

    ``payload`` is the base64 audio as the carrier sent it (str or bytes;
    strict base64 is required, else ProtocolError). The numeric fields are
    ints whatever the carrier's JSON type (Twilio sends strings); ``extra``
    holds other top-level keys (Plivo's ``extra_headers``). A binary carrier
    (Vonage) gives a Media whose ``binary`` is True and whose audio is the frame.
    Scanned events keep the raw frame and materialise strings only when read.
    """
    cdef readonly object sequence_number, chunk, timestamp
    cdef readonly dict extra
    cdef readonly bint binary
    cdef bytes _frame                # holds the payload at [_ps, _pe) (all of it when binary)
    cdef Py_ssize_t _ps, _pe
    cdef Py_ssize_t _span[2][2]      # stream id, track spans in _frame; -1 when given as objects
    cdef object _stream, _track

    def __init__(self, payload, *, stream_id=None, sequence_number=None, track=None,
                 chunk=None, timestamp=None, extra=None):
        cdef Py_buffer view
        cdef const char* text = NULL
        cdef Py_ssize_t n
        if get_text(payload, &view, &text, &n, b"payload") == 1:
            raise ProtocolError(f"media payload is not base64: non-ASCII character at offset {n}",
                                str(payload)[:200])
        try:
            _check_payload(<const uint8_t*>text, n)
            self._frame = PyBytes_FromStringAndSize(text, n)
        finally:
            release(&view)
        self._ps, self._pe = 0, n
        self._span[0][0] = self._span[1][0] = -1
        self._stream, self._track = stream_id, track
        self.sequence_number, self.chunk, self.timestamp = sequence_number, chunk, timestamp
        self.extra = extra or None

    @property
    def stream_id(self):
        if self._span[0][0] >= 0:
            self._stream = _span(self._frame, self._span[0][0], self._span[0][1])
            self._span[0][0] = -1
        return self._stream

    @property
    def track(self):
        if self._span[1][0] >= 0:
            self._track = _span(self._frame, self._span[1][0], self._span[1][1])
            self._span[1][0] = -1
        return self._track

    @property
    def inbound(self):
        """True unless the track names another direction (the caller's audio:
        no track, or "inbound", "inbound_track")."""
        if self._span[1][0] >= 0:
            return (self._span[1][1] - self._span[1][0] >= 7 and
                    memcmp(PyBytes_AS_STRING(self._frame) + self._span[1][0], b"inbound", 7) == 0)
        return self._track is None or (isinstance(self._track, str) and self._track.startswith("inbound"))

    @property
    def payload(self):
        """The base64 audio (bytes)."""
        cdef uint8_t* dst
        if self.binary:
            out = new_bytes(rt_b64_encoded_len(PyBytes_GET_SIZE(self._frame)), &dst)
            rt_b64_encode(<const uint8_t*>PyBytes_AS_STRING(self._frame), PyBytes_GET_SIZE(self._frame), dst)
            return out
        if self._ps == 0 and self._pe == PyBytes_GET_SIZE(self._frame):
            return self._frame
        return self._frame[self._ps:self._pe]

    @property
    def audio_length(self):
        """Bytes of audio (decoded)."""
        if self.binary:
            return PyBytes_GET_SIZE(self._frame)
        return rt_b64_decoded_len(<const uint8_t*>PyBytes_AS_STRING(self._frame) + self._ps, self._pe - self._ps)

    def audio(self):
        """The raw audio bytes, in the carrier's format."""
        cdef uint8_t* dst
        cdef size_t written = 0, err = 0
        cdef const uint8_t* p
        if self.binary:
            return self._frame
        p = <const uint8_t*>PyBytes_AS_STRING(self._frame) + self._ps
        out = new_bytes(rt_b64_decoded_len(p, self._pe - self._ps), &dst)
        rt_b64_decode(p, self._pe - self._ps, dst, &written, &err)  # checked when made
        return out

    def append(self):
        """The Realtime ``input_audio_buffer.append`` frame carrying this audio,
        byte-identical to ``rtfast.wire.build_append_b64(self.payload)``: the
        payload is spliced from the carrier's frame, never decoded."""
        return self._append(_APPEND_HEAD)

    def append_live(self):
        """GPT-Live's ``session.input_audio.append`` carrying this audio, byte-identical
        to ``rtfast.wire.build_append_b64(self.payload, generation="live")``; spliced
        as :meth:`append` (a method of its own: the Realtime path parses no argument)."""
        return self._append(_LIVE_APPEND_HEAD)

    cdef bytes _append(self, bytes head):
        cdef uint8_t* dst
        cdef Py_ssize_t h = PyBytes_GET_SIZE(head)
        cdef Py_ssize_t n
        if self.binary:
            n = rt_b64_encoded_len(PyBytes_GET_SIZE(self._frame))
        else:
            n = self._pe - self._ps
        out = new_bytes(h + n + 2, &dst)
        memcpy(dst, PyBytes_AS_STRING(head), h)
        if self.binary:
            rt_b64_encode(<const uint8_t*>PyBytes_AS_STRING(self._frame), PyBytes_GET_SIZE(self._frame), dst + h)
        else:
            memcpy(dst + h, PyBytes_AS_STRING(self._frame) + self._ps, n)
        dst[h + n] = b'"'
        dst[h + n + 1] = b'}'
        return out

    def to_dict(self):
        """The fields (absent ones as None), payload as str: what the tests compare."""
        return {"stream_id": self.stream_id, "sequence_number": self.sequence_number,
                "track": self.track, "chunk": self.chunk, "timestamp": self.timestamp,
                "payload": self.payload.decode("ascii"), "extra": self.extra, "binary": self.binary}

    def __eq__(self, other):
        if isinstance(other, Media):
            return self.to_dict() == other.to_dict()
        return NotImplemented

    def __repr__(self):
        return (f"Media(stream_id={self.stream_id!r}, track={self.track!r}, chunk={self.chunk!r}, "
                f"timestamp={self.timestamp!r}, audio_length={self.audio_length})")


def binary_media(audio, /):
    """A Media for a binary frame of raw audio (Vonage): no base64 involved."""
    cdef Media ev = Media.__new__(Media)
    ev._frame = audio if type(audio) is bytes else bytes(audio)
    ev._ps, ev._pe = 0, PyBytes_GET_SIZE(ev._frame)
    ev._span[0][0] = ev._span[1][0] = -1
    ev.binary = True
    return ev


cdef inline object _num(long long v):
    return v if v >= 0 else None


cdef Media _media(bytes frame, rt_cscan_t* sp):
    cdef const char* base = PyBytes_AS_STRING(frame)
    cdef int x
    _check_payload(<const uint8_t*>base + sp.start[RT_C_PAYLOAD], sp.end[RT_C_PAYLOAD] - sp.start[RT_C_PAYLOAD])
    cdef Media ev = Media.__new__(Media)
    ev._frame = frame
    ev._ps, ev._pe = sp.start[RT_C_PAYLOAD], sp.end[RT_C_PAYLOAD]
    ev._span[0][0], ev._span[0][1] = sp.start[RT_C_STREAM], sp.end[RT_C_STREAM]
    ev._span[1][0], ev._span[1][1] = sp.start[RT_C_TRACK], sp.end[RT_C_TRACK]
    ev.sequence_number = _num(sp.num[RT_C_SEQ])
    ev.chunk = _num(sp.num[RT_C_CHUNK])
    ev.timestamp = _num(sp.num[RT_C_TS])
    if sp.nextra:
        ev.extra = {_span(frame, sp.xkey[x][0], sp.xkey[x][1]): _span(frame, sp.xval[x][0], sp.xval[x][1])
                    for x in range(sp.nextra)}
    return ev


def scan_media(frame, /):
    """Scan a raw carrier frame (bytes) for a plain ``media`` event, without a dict.

    Returns a Media, or None when the frame is not a media event or not of the
    plain shape the scanner handles (the caller parses those with orjson).
    A payload that is not strict base64 raises ProtocolError.
    """
    if type(frame) is not bytes:
        frame = frame.encode() if isinstance(frame, str) else bytes(frame)
    cdef rt_cscan_t s
    if rt_scan_carrier_media(<const uint8_t*>PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame), &s) != RT_SCAN_OK:
        return None
    return _media(frame, &s)


def scan_hot(frame, /):
    """Scan a raw carrier frame (bytes) for either hot message, without a dict.

    Returns a Media for a plain ``media`` event (as :func:`scan_media`), the
    name (str) of a plain ``mark`` event (``{"event":"mark","mark":{"name":...}}``
    with at most the sequence number and stream id beside it), or None: the
    caller parses anything else with orjson.
    """
    if type(frame) is not bytes:
        frame = frame.encode() if isinstance(frame, str) else bytes(frame)
    cdef rt_cscan_t s
    cdef const uint8_t* base = <const uint8_t*>PyBytes_AS_STRING(frame)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(frame)
    if rt_scan_carrier_media(base, n, &s) == RT_SCAN_OK:
        return _media(frame, &s)
    if rt_scan_carrier_mark(base, n, &s) == RT_SCAN_OK:
        return PyUnicode_DecodeASCII(<const char*>base + s.start[RT_C_PAYLOAD],
                                     s.end[RT_C_PAYLOAD] - s.start[RT_C_PAYLOAD], NULL)
    return None


# -- outbound templates ------------------------------------------------------------------

def wrap_audio(bytes head, audio, bytes tail, /):
    """head + base64(audio) + tail, the base64 written straight into the result
    (audio: any C-contiguous buffer, its raw bytes)."""
    cdef Py_buffer src
    cdef uint8_t* dst
    cdef Py_ssize_t h = PyBytes_GET_SIZE(head), t = PyBytes_GET_SIZE(tail), m
    get_buffer(audio, &src, False, ANY_ITEMS, b"audio")
    try:
        m = rt_b64_encoded_len(src.len)
        out = new_bytes(h + m + t, &dst)
        memcpy(dst, PyBytes_AS_STRING(head), h)
        rt_b64_encode(<const uint8_t*>src.buf, src.len, dst + h)
        memcpy(dst + h + m, PyBytes_AS_STRING(tail), t)
    finally:
        release(&src)
    return out


def wrap_b64(bytes head, payload, bytes tail, /, bint validate=True):
    """head + payload + tail for an already-base64 payload (bytes or str),
    checked to be strict base64 (ProtocolError) unless validate=False."""
    cdef Py_buffer src
    cdef const char* text = NULL
    cdef Py_ssize_t n
    cdef uint8_t* dst
    cdef Py_ssize_t h = PyBytes_GET_SIZE(head), t = PyBytes_GET_SIZE(tail)
    if get_text(payload, &src, &text, &n, b"payload") == 1:
        raise ProtocolError(f"media payload is not base64: non-ASCII character at offset {n}",
                            str(payload)[:200])
    try:
        if validate:
            _check_payload(<const uint8_t*>text, n)
        out = new_bytes(h + n + t, &dst)
        memcpy(dst, PyBytes_AS_STRING(head), h)
        memcpy(dst + h, text, n)
        memcpy(dst + h + n, PyBytes_AS_STRING(tail), t)
    finally:
        release(&src)
    return out
