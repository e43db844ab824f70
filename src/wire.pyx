"""The two hot Realtime messages, never turned into dicts (private; see rtfast.wire).

Inbound, ``response.output_audio.delta`` (GA) / ``response.audio.delta`` (beta) /
``session.output_audio.delta`` (GPT-Live) is scanned in place (wirescan.h) and its
base64 audio decoded straight into a caller's buffer. Outbound,
``input_audio_buffer.append`` (GPT-Live: ``session.input_audio.append``; translation:
``session.input_audio_buffer.append``) is built from a byte template, base64-encoding
the audio straight into the frame, or splicing an already-base64 payload (a
carrier's) without decoding it.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeASCII

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_1BYTE_DATA(object o)
from libc.stdint cimport uint8_t
from libc.string cimport memcpy
from bufutil cimport new_bytes, get_buffer, get_text, release, ANY_ITEMS, BYTE_ITEMS
from b64core cimport *

import orjson
from rtfast.errors import ProtocolError

cdef extern from "wirescan.h" nogil:
    enum:
        RT_SCAN_OK
        RT_SCAN_OTHER
        RT_SCAN_FALLBACK
        RT_F_TYPE, RT_F_EVENT_ID, RT_F_RESPONSE_ID, RT_F_ITEM_ID, RT_F_DELTA
    ctypedef struct rt_scan_t:
        Py_ssize_t start[5]
        Py_ssize_t end[5]
        long long output_index
        long long content_index
        long long start_ms
        long long end_ms
        int generation
    int rt_scan_audio_delta(const uint8_t *p, Py_ssize_t n, rt_scan_t *s)

AUDIO_DELTA_TYPES = ("response.output_audio.delta", "response.audio.delta", "session.output_audio.delta")
_GENERATIONS = {"response.output_audio.delta": "ga", "response.audio.delta": "beta",
                "session.output_audio.delta": "live"}
_FIELDS = ("type", "event_id", "response_id", "item_id", "output_index", "content_index", "start_ms", "end_ms",
           "delta")
_INT_FIELDS = ("output_index", "content_index", "start_ms", "end_ms")


cdef class AudioDelta:
    """An audio delta event; field names as the official models' (GA/beta: the ids and
    indexes; GPT-Live: ``start_ms``/``end_ms``, set only on a sideband's reflected audio).

    ``delta`` (the base64 text, as ``str``) is only materialised when read;
    ``audio()`` / ``audio_into(out)`` decode it straight from the raw frame.
    """
    cdef readonly str type
    cdef readonly object event_id, response_id, item_id, output_index, content_index, start_ms, end_ms
    cdef bytes _frame        # bytes holding the base64 audio at [_start, _end): the raw
    cdef Py_ssize_t _start, _end  # frame (scanned), or the delta's ASCII (built/slow path)
    cdef object _delta       # str, when parsed the slow way or once read
    cdef dict _extra         # keys the spec does not know (kept for round trips)

    def __init__(self, *, type, delta, event_id=None, response_id=None, item_id=None,
                 output_index=None, content_index=None, start_ms=None, end_ms=None, **extra):
        if type not in AUDIO_DELTA_TYPES:
            raise ValueError(f"not an audio delta type: {type!r}")
        if not isinstance(delta, str):
            raise ProtocolError(f"{type}: field 'delta' must be a string", repr(delta)[:200])
        for name, value in (("output_index", output_index), ("content_index", content_index),
                            ("start_ms", start_ms), ("end_ms", end_ms)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ProtocolError(f"{type}: field {name!r} must be an integer", repr(value))
        for name, value in (("event_id", event_id), ("response_id", response_id), ("item_id", item_id)):
            if value is not None and not isinstance(value, str):
                raise ProtocolError(f"{type}: field {name!r} must be a string", repr(value))
        self.type = type
        self._delta = delta
        self.event_id = event_id
        self.response_id = response_id
        self.item_id = item_id
        self.output_index = output_index
        self.content_index = content_index
        self.start_ms = start_ms
        self.end_ms = end_ms
        self._extra = extra or None
        self._frame = delta.encode("ascii", "replace")   # non-ASCII fails as bad base64
        self._start = 0
        self._end = len(self._frame)

    @property
    def delta(self):
        """The base64 audio as str (what the official models expose)."""
        cdef Py_ssize_t n
        if self._delta is None:
            # Only the scanner leaves _delta unset, and it let no byte >= 0x80 (or < 0x20)
            # into the span: copy it into an ASCII str as is (decoding would check it again).
            n = self._end - self._start
            text = PyUnicode_New(n, 127)
            memcpy(PyUnicode_1BYTE_DATA(text), PyBytes_AS_STRING(self._frame) + self._start, n)
            self._delta = text
        return self._delta

    @property
    def generation(self):
        return _GENERATIONS[self.type]

    cdef inline const uint8_t* _text(self) noexcept:
        return <const uint8_t*>PyBytes_AS_STRING(self._frame) + self._start

    @property
    def audio_length(self):
        """Bytes the decoded audio will take (from the base64 length and padding)."""
        return rt_b64_decoded_len(self._text(), self._end - self._start)

    cdef int _decode(self, uint8_t* out, size_t* written) except -1:
        cdef size_t err = 0
        cdef Py_ssize_t n = self._end - self._start
        rc = rt_b64_decode(self._text(), n, out, written, &err)
        if rc != RT_B64_OK:
            raise_b64_error(rc, err, self._text(), n)
        return 0

    def audio(self):
        """The decoded audio bytes (PCM16 or G.711, per the session's output format)."""
        cdef uint8_t* dst
        cdef size_t written = 0
        out = new_bytes(rt_b64_decoded_len(self._text(), self._end - self._start), &dst)
        self._decode(dst, &written)
        return out

    def audio_into(self, out):
        """Decode the audio into the writable buffer out; returns bytes written.

        A too-small out raises ValueError before anything is written.
        """
        cdef Py_buffer dst
        cdef size_t written = 0
        cdef size_t need = rt_b64_decoded_len(self._text(), self._end - self._start)
        get_buffer(out, &dst, True, ANY_ITEMS, b"out")
        try:
            if <size_t>dst.len < need:
                raise ValueError(f"out has room for {dst.len} bytes, {need} needed")
            self._decode(<uint8_t*>dst.buf, &written)
        finally:
            release(&dst)
        return written

    def to_dict(self):
        d = {"type": self.type}
        for name in _FIELDS[1:8]:
            value = getattr(self, name)
            if value is not None:
                d[name] = value
        d["delta"] = self.delta
        if self._extra:
            d.update(self._extra)
        return d

    def to_event(self):
        """The same event as its typed class in rtfast.events (what parse() makes of every other
        event), built when asked: for what only the models offer (pydantic's API)."""
        from rtfast import events          # (events imports this module: not at import time)
        return events.SERVER_EVENTS[self.generation][self.type].from_dict(self.to_dict())

    def model_dump(self, **options):
        """pydantic's ``model_dump``, as the official delta event's (through :meth:`to_event`)."""
        return self.to_event().model_dump(**options)

    def model_dump_json(self, **options):
        """pydantic's ``model_dump_json``, as the official delta event's (through :meth:`to_event`)."""
        return self.to_event().model_dump_json(**options)

    def to_json(self, **options):
        """The official models' ``to_json`` (through :meth:`to_event`)."""
        return self.to_event().to_json(**options)

    def __eq__(self, other):
        if isinstance(other, AudioDelta):
            return self.to_dict() == other.to_dict()
        return NotImplemented

    def __repr__(self):
        return (f"AudioDelta(type={self.type!r}, item_id={self.item_id!r}, "
                f"content_index={self.content_index!r}, audio_length={self.audio_length})")


cdef inline object _span_str(const char* base, rt_scan_t* s, int f):
    if s.start[f] < 0:
        return None
    return PyUnicode_DecodeASCII(base + s.start[f], s.end[f] - s.start[f], NULL)


def scan_audio_delta(frame, /):
    """Scan a raw frame (bytes) for an audio delta without building a dict.

    Returns an AudioDelta, or None when the frame is not an audio delta or
    not of the plain shape the scanner handles; use parse_audio_delta() (or
    the full parser) for those.
    """
    if type(frame) is not bytes:
        frame = bytes(frame)
    cdef rt_scan_t s
    cdef const char* base = PyBytes_AS_STRING(frame)
    if rt_scan_audio_delta(<const uint8_t*>base, PyBytes_GET_SIZE(frame), &s) != RT_SCAN_OK:
        return None
    cdef AudioDelta ev = AudioDelta.__new__(AudioDelta)
    ev.type = AUDIO_DELTA_TYPES[s.generation - 1]
    ev.event_id = _span_str(base, &s, RT_F_EVENT_ID)
    ev.response_id = _span_str(base, &s, RT_F_RESPONSE_ID)
    ev.item_id = _span_str(base, &s, RT_F_ITEM_ID)
    ev.output_index = s.output_index if s.output_index >= 0 else None
    ev.content_index = s.content_index if s.content_index >= 0 else None
    ev.start_ms = s.start_ms if s.start_ms >= 0 else None
    ev.end_ms = s.end_ms if s.end_ms >= 0 else None
    ev._frame = frame
    ev._start = s.start[RT_F_DELTA]
    ev._end = s.end[RT_F_DELTA]
    return ev


def parse_audio_delta(frame, /):
    """An AudioDelta from any legal JSON audio-delta frame: the scanner when it
    can, orjson otherwise (escapes, extra keys, any key order or spacing).

    Raises ProtocolError for frames that are not JSON or not an audio delta.
    """
    ev = scan_audio_delta(frame)
    if ev is not None:
        return ev
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not valid JSON ({exc})", frame) from None
    if not isinstance(obj, dict):
        raise ProtocolError("frame is not a JSON object", frame)
    if obj.get("type") not in AUDIO_DELTA_TYPES:
        raise ProtocolError("frame is not an audio delta", frame)
    if "delta" not in obj:
        raise ProtocolError(f"{obj['type']}: field 'delta' is missing", frame)
    return AudioDelta(**obj)


# -- builder ------------------------------------------------------------------------------

cdef bytes _APPEND_HEAD = b'{"type":"input_audio_buffer.append","audio":"'
cdef bytes _APPEND_TAIL = b'"}'
# the append event's type per protocol generation (GPT-Live's carries the same "audio" key)
APPEND_TYPES = {"ga": "input_audio_buffer.append", "beta": "input_audio_buffer.append",
                "translation": "session.input_audio_buffer.append", "live": "session.input_audio.append"}
cdef dict _HEADS = {g: b'{"type":"' + t.encode() + b'","audio":"' for g, t in APPEND_TYPES.items()}


cdef bytes _head(object event_id, object generation):
    cdef object head
    if event_id is None:
        if generation == "ga":
            return _APPEND_HEAD
        head = _HEADS.get(generation)
        if head is None:
            raise ValueError(f"generation must be one of {tuple(APPEND_TYPES)}, not {generation!r}")
        return head
    if not isinstance(event_id, str):
        raise TypeError(f"event_id must be a str, not {type(event_id).__name__}")
    if generation not in APPEND_TYPES:
        raise ValueError(f"generation must be one of {tuple(APPEND_TYPES)}, not {generation!r}")
    return (b'{"type":"' + APPEND_TYPES[generation].encode() + b'","event_id":' + orjson.dumps(event_id)
            + b',"audio":"')


def append_frame_length(Py_ssize_t audio_bytes, event_id=None, *, generation="ga"):
    """Length of the frame build_append() makes for audio_bytes of raw audio."""
    return len(_head(event_id, generation)) + rt_b64_encoded_len(audio_bytes) + 2


cdef Py_ssize_t _write_append(bytes head, const uint8_t* audio, Py_ssize_t n, uint8_t* out) noexcept:
    cdef Py_ssize_t h = PyBytes_GET_SIZE(head)
    memcpy(out, PyBytes_AS_STRING(head), h)
    cdef size_t m = rt_b64_encode(audio, n, out + h)
    out[h + m] = b'"'
    out[h + m + 1] = b'}'
    return h + m + 2


def build_append(audio, /, event_id=None, *, generation="ga"):
    """An input_audio_buffer.append frame (bytes, compact JSON) for raw audio
    (PCM16 or G.711 bytes, any buffer): base64 is written straight into it.
    ``generation="live"`` makes GPT-Live's ``session.input_audio.append``."""
    cdef Py_buffer src
    cdef uint8_t* dst
    head = _head(event_id, generation)
    get_buffer(audio, &src, False, ANY_ITEMS, b"audio")
    try:
        out = new_bytes(PyBytes_GET_SIZE(head) + rt_b64_encoded_len(src.len) + 2, &dst)
        _write_append(head, <const uint8_t*>src.buf, src.len, dst)
    finally:
        release(&src)
    return out


def build_append_into(audio, out, /, event_id=None, *, generation="ga"):
    """build_append into a caller's writable buffer; returns bytes written.

    A too-small out raises ValueError before anything is written.
    """
    cdef Py_buffer src, dst
    head = _head(event_id, generation)
    get_buffer(audio, &src, False, ANY_ITEMS, b"audio")
    try:
        get_buffer(out, &dst, True, BYTE_ITEMS, b"out")
        try:
            need = PyBytes_GET_SIZE(head) + <Py_ssize_t>rt_b64_encoded_len(src.len) + 2
            if dst.len < need:
                raise ValueError(f"out has room for {dst.len} bytes, {need} needed")
            return _write_append(head, <const uint8_t*>src.buf, src.len, <uint8_t*>dst.buf)
        finally:
            release(&dst)
    finally:
        release(&src)


cdef enum:
    CHECK_BLOCK = 4096      # base64 chars validated per step
    CHECK_BYTES = 3072      # what they decode to (scratch, discarded)


cdef int _check_b64(const uint8_t* text, Py_ssize_t n) except -1:
    """Validate base64 without keeping the bytes (block by block)."""
    cdef uint8_t scratch[CHECK_BYTES]
    cdef size_t written = 0, err = 0
    cdef Py_ssize_t pos = 0, chunk
    cdef int rc
    while True:
        chunk = min(n - pos, CHECK_BLOCK)
        rc = rt_b64_decode_block(text + pos, chunk, pos + chunk == n, scratch, &written, &err)
        if rc != RT_B64_OK:
            raise_b64_error(rc, pos + err, text, n)
        pos += chunk
        if pos >= n:
            return 0


def build_append_b64(payload, /, event_id=None, bint validate=True, *, generation="ga"):
    """An input_audio_buffer.append frame around an already-base64 payload
    (bytes or str, e.g. a Twilio media payload), spliced without decoding.

    The payload is checked to be strict base64 (so the frame is valid JSON and
    the server will accept it) unless validate=False. ``generation="live"``
    makes GPT-Live's ``session.input_audio.append``.
    """
    cdef Py_buffer src
    cdef const char* text = NULL
    cdef Py_ssize_t n
    cdef uint8_t* dst
    cdef Py_ssize_t h
    head = _head(event_id, generation)
    if get_text(payload, &src, &text, &n, b"payload") == 1:
        raise_b64_error(RT_B64_BAD_CHAR, n, <const uint8_t*>b"", 0)
    try:
        if validate:
            _check_b64(<const uint8_t*>text, n)
        h = PyBytes_GET_SIZE(head)
        out = new_bytes(h + n + 2, &dst)
        memcpy(dst, PyBytes_AS_STRING(head), h)
        memcpy(dst + h, text, n)
        dst[h + n] = b'"'
        dst[h + n + 1] = b'}'
    finally:
        release(&src)
    return out
