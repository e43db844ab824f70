"""The bridge's carrier fast lane (private; see rtfast.bridge.server).

Nearly every frame a caller's socket delivers is either 20 ms of audio (a
``media`` event) or an echoed ``mark``. Through the general path each one
costs six Python calls and an ``Actions`` object: the websocket's dispatch,
the call I/O's handler, ``Call.from_carrier``, the codec's ``feed``, the
send, the writer. The lane does the same work for those two shapes in one C
loop over a read's frames, with the same scanner (carrierscan.h) the codec
uses: a media frame becomes the model's append, spliced and written to the
realtime socket; a mark goes straight to the call's ledger.

It is an exact shortcut: for every frame it takes it leaves the call, the
counters and the sockets as the general path would (where it runs a step
compiled rather than calling it, the usual mark echo, Call._pump with
_CallIO.act and the pacer's step, tests/test_lane.py holds it to the Python
one, and a method patched onto one call or socket is called instead), and whenever anything is not the plain case (binary or control
frames, a payload that is not base64, another track, a call still holding or
recording, a realtime socket not open, an unknown append shape, an inbound
side already done) it stops and hands that frame and the rest of the read to
the general path, which owns every error and every rare event.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport uint8_t
from libc.string cimport memcpy, memcmp
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from types import MemberDescriptorType as _Member

from rtfast._carrier import Media

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
        int flags
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

cdef enum:
    _T_OBJECT_EX = 16                           # structmember.h: a __slots__ entry
    _READONLY = 1

cdef extern from "carrierscan.h" nogil:
    enum:
        RT_SCAN_OK
        RT_C_TRACK, RT_C_PAYLOAD
    ctypedef struct rt_cscan_t:
        Py_ssize_t start[4]
        Py_ssize_t end[4]
    int rt_scan_carrier_media(const uint8_t *p, Py_ssize_t n, rt_cscan_t *s)
    int rt_scan_carrier_mark(const uint8_t *p, Py_ssize_t n, rt_cscan_t *s)
    int rt_b64_check(const uint8_t *p, size_t n, size_t *err)
    size_t rt_b64_decoded_len(const uint8_t *p, size_t n)

# The two append shapes a Call splices into (Call._append_of): Realtime's and GPT-Live's.
cdef object _APPEND = Media.append
cdef object _APPEND_LIVE = Media.append_live
cdef bytes _HEAD = b'{"type":"input_audio_buffer.append","audio":"'
cdef bytes _LIVE_HEAD = b'{"type":"session.input_audio.append","audio":"'


# The lanes read and write the call's, its I/O's and the sockets' attributes in place. Most
# are __slots__ entries: through the type, each read is a getattr (the type's lookup, the
# descriptor, PyMember_GetOne), about a tenth of the bridge's CPU under load. The member
# descriptor's offset, found once per lane on the object's own type, reads exactly what the
# descriptor reads; anything else (an instance attribute, a subclass's property) is read
# and written the Python way (offset -1).

cdef Py_ssize_t _slot(object cls, str name) except -2:
    """The offset of name's __slots__ entry as cls resolves it, or -1 if it is not one."""
    d = None
    for k in cls.__mro__:
        if name in k.__dict__:
            d = k.__dict__[name]
            break
    if type(d) is not _Member:
        return -1
    cdef PyMemberDef* m = (<PyMemberDescrObject*><PyObject*>d).d_member
    if m.type != _T_OBJECT_EX or m.flags & _READONLY:
        return -1
    return m.offset


cdef extern from "Python.h":
    PyObject** _PyObject_GetDictPtr(PyObject* obj)

# At hundreds of calls a call's objects are out of the nearer caches when its frame arrives,
# and the reads below miss one after another (each slot read was ~6 % of the bridge's CPU,
# nearly all of it waiting on memory). Asking for every line of the objects a frame will
# touch first lets those misses overlap, and the frame's scan runs while they arrive.
cdef extern from *:
    """
    static inline void rt_lane_prefetch(PyObject *o) {
        const char *p = (const char *)o;
        Py_ssize_t n = Py_TYPE(o)->tp_basicsize;
        for (Py_ssize_t i = 0; i < n; i += 64)
            __builtin_prefetch(p + i);
    }
    """
    void rt_lane_prefetch(PyObject* o) noexcept nogil


cdef inline bint _patched(object obj, str name) except -1:
    """Whether obj's own __dict__ holds name (a method patched onto one call or socket,
    which the lane must call rather than its compiled copy of the class's)."""
    cdef PyObject** dp = _PyObject_GetDictPtr(<PyObject*>obj)
    if dp == NULL or dp[0] == NULL:
        return False
    return len(<dict>dp[0]) != 0 and name in <dict>dp[0]


cdef inline object _get(object obj, Py_ssize_t off, str name):
    if off < 0:
        return getattr(obj, name)
    cdef PyObject* p = (<PyObject**>((<char*><PyObject*>obj) + off))[0]
    if p == NULL:
        raise AttributeError(f"'{type(obj).__name__}' object has no attribute '{name}'")
    return <object>p


cdef inline int _set(object obj, Py_ssize_t off, str name, object value) except -1:
    if off < 0:
        setattr(obj, name, value)
        return 0
    cdef PyObject** slot = <PyObject**>((<char*><PyObject*>obj) + off)
    cdef PyObject* old = slot[0]
    Py_INCREF(value)
    slot[0] = <PyObject*>value
    Py_XDECREF(old)
    return 0


cdef inline int _bump(object obj, Py_ssize_t off, str name, object by) except -1:
    return _set(obj, off, name, _get(obj, off, name) + by)


cdef class _Lane:
    """A socket's lane: ``run(frames)`` takes the leading frames of one read that ``_one``
    takes off the general path, and returns how many it took (``WebSocket.set_lane``)."""

    cdef object ws, ws_type, open_state
    cdef Py_ssize_t o_inbound_done, o_state, o_transport, o_writer

    cdef _socket(self, ws):
        self.ws, self.ws_type = ws, type(ws)
        self.o_inbound_done = _slot(self.ws_type, "_inbound_done")
        self.o_state = _slot(self.ws_type, "state")
        self.o_transport = _slot(self.ws_type, "transport")
        self.o_writer = _slot(self.ws_type, "_writer")

    cdef void _warm(self) noexcept:
        pass

    def run(self, list frames) -> int:
        cdef Py_ssize_t i, n = len(frames)
        cdef object f
        self._warm()
        for i in range(n):
            f = frames[i]
            # As _dispatch: nothing after a close (or a failure) is delivered. Anything but the
            # parser's (1, bytes) text message goes the general way.
            if (_get(self.ws, self.o_inbound_done, "_inbound_done") or type(f) is not tuple
                    or len(<tuple>f) != 2 or f[0] != 1
                    or type(f[1]) is not bytes or not self._one(<bytes>f[1])):
                return i
        return n

    cdef bint _one(self, bytes msg) except -1:
        return False


cdef class CarrierLane(_Lane):
    """Takes the leading media and mark frames of one carrier read off the general path
    (see the module's doc).

    ``io``: the call's I/O (``held``, ``dropping``, ``rt``, ``fail``); ``ws``: the
    carrier socket; ``call``: the Call; ``open_state``: the websocket's OPEN."""

    cdef object io, call, codec, remember
    cdef Py_ssize_t o_started, o_mark_names, o_splice, o_recorder, o_append_of, o_from_carrier
    cdef Py_ssize_t o_bytes_in, o_to_realtime, o_held, o_dropping, o_rt, o_ledger, o_played

    def __init__(self, io, ws, call, open_state, remember=None):
        self._socket(ws)
        self.io, self.call, self.codec = io, call, call.codec
        self.open_state, self.remember = open_state, remember
        if remember is not None:                # the stock Call._on_mark: its usual echo inline
            self.o_ledger, self.o_played = _slot(type(call), "_ledger"), _slot(type(call), "played_ms")
        ct, cc, it = type(call), type(self.codec), type(io)
        self.o_started, self.o_mark_names = _slot(cc, "started"), _slot(cc, "_mark_names")
        self.o_splice, self.o_recorder = _slot(ct, "_splice"), _slot(ct, "recorder")
        self.o_append_of, self.o_from_carrier = _slot(ct, "_append_of"), _slot(ct, "frames_from_carrier")
        self.o_bytes_in, self.o_to_realtime = _slot(ct, "audio_bytes_in"), _slot(ct, "frames_to_realtime")
        self.o_held, self.o_dropping, self.o_rt = _slot(it, "held"), _slot(it, "dropping"), _slot(it, "rt")

    cdef void _warm(self) noexcept:
        rt_lane_prefetch(<PyObject*>self.call)
        rt_lane_prefetch(<PyObject*>self.io)
        rt_lane_prefetch(<PyObject*>self.codec)
        rt_lane_prefetch(<PyObject*>self.ws)

    cdef bint _one(self, bytes msg) except -1:
        cdef rt_cscan_t s
        cdef const uint8_t* base = <const uint8_t*>PyBytes_AS_STRING(msg)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(msg), ps, pe, h
        cdef size_t err = 0
        cdef uint8_t* o
        call = self.call
        if rt_scan_carrier_media(base, n, &s) == RT_SCAN_OK:
            ps, pe = s.start[RT_C_PAYLOAD], s.end[RT_C_PAYLOAD]
            if rt_b64_check(base + ps, pe - ps, &err) != 0:
                return False                    # the general path says what is wrong
            if s.start[RT_C_TRACK] >= 0 and not (s.end[RT_C_TRACK] - s.start[RT_C_TRACK] >= 7 and
                                                 memcmp(base + s.start[RT_C_TRACK], b"inbound", 7) == 0):
                return False                    # another direction's audio: not the caller's
            if (not _get(self.codec, self.o_started, "started") or not _get(call, self.o_splice, "_splice")
                    or _get(call, self.o_recorder, "recorder") is not None):
                return False
            io = self.io
            if _get(io, self.o_held, "held") is not None or _get(io, self.o_dropping, "dropping"):
                return False
            rt = _get(io, self.o_rt, "rt")
            # (another kind of socket than the carrier's: its attributes are not these slots)
            if type(rt) is not self.ws_type or _get(rt, self.o_state, "state") != self.open_state:
                return False
            append = _get(call, self.o_append_of, "_append_of")
            if append is _APPEND:
                head = _HEAD
            elif append is _APPEND_LIVE:
                head = _LIVE_HEAD
            else:
                return False
            h = PyBytes_GET_SIZE(head)
            out = PyBytes_FromStringAndSize(NULL, h + pe - ps + 2)
            o = <uint8_t*>PyBytes_AS_STRING(out)
            memcpy(o, PyBytes_AS_STRING(head), h)
            memcpy(o + h, base + ps, pe - ps)
            o[h + pe - ps] = b'"'
            o[h + pe - ps + 1] = b'}'
            # Call.from_carrier's bookkeeping for a spliced frame.
            _bump(call, self.o_from_carrier, "frames_from_carrier", 1)
            _bump(call, self.o_bytes_in, "audio_bytes_in", <Py_ssize_t>rt_b64_decoded_len(base + ps, pe - ps))
            _bump(call, self.o_to_realtime, "frames_to_realtime", 1)
            try:
                _get(rt, self.o_transport, "transport").write(_get(rt, self.o_writer, "_writer").frame(out, 1))
            except Exception as exc:            # as _CallIO.from_carrier: this call ends, loudly
                io.fail(exc)
            return True
        if rt_scan_carrier_mark(base, n, &s) == RT_SCAN_OK and _get(self.codec, self.o_mark_names, "_mark_names"):
            name = PyUnicode_DecodeASCII(<const char*>base + s.start[RT_C_PAYLOAD],
                                         s.end[RT_C_PAYLOAD] - s.start[RT_C_PAYLOAD], NULL)
            _bump(call, self.o_from_carrier, "frames_from_carrier", 1)
            try:
                if self.remember is not None and not _patched(call, "_on_mark"):
                    # Call._on_mark's usual case, the oldest chunk's own mark (see there); any
                    # other name (older, stale, not ours) goes to the method.
                    ledger = _get(call, self.o_ledger, "_ledger")
                    if ledger and (<tuple?>ledger[0])[4] == name:
                        entry = <tuple?>ledger.popleft()
                        played = <dict?>_get(call, self.o_played, "played_ms")
                        item, ms = entry[1], entry[3]
                        if ms > played.get(item, 0):
                            if item in played:          # remember()'s own step for a known key
                                played[item] = ms
                            else:
                                self.remember(played, item, ms)
                        return True
                call._on_mark(name)
            except Exception as exc:
                self.io.fail(exc)
            return True
        return False


# -- the model side ------------------------------------------------------------------------------

from orjson import loads as _loads
from rtfast._pace import pump as _pace_pump
from rtfast._wire import scan_audio_delta as _scan_delta

# A transcript delta of the canonical shape, which the typed parser takes as it is; any other
# (extra or missing keys, other types) goes the general way and meets the parser there.
# Realtime: response.output_audio_transcript.delta; GPT-Live: session.output_transcript.delta.
cdef tuple _TRANSCRIPTS = (
    (b'{"type":"response.output_audio_transcript.delta",', "response.output_audio_transcript.delta",
     {"event_id": str, "response_id": str, "item_id": str, "output_index": int, "content_index": int,
      "delta": str}),
    (b'{"type":"session.output_transcript.delta",', "session.output_transcript.delta",
     {"event_id": str, "delta": str, "start_ms": int, "end_ms": int}),
)


cdef bint _plain_transcript(bytes msg, bytes head, str kind, dict fields) except -1:
    cdef Py_ssize_t n = PyBytes_GET_SIZE(msg), h = PyBytes_GET_SIZE(head)
    if n < h or memcmp(PyBytes_AS_STRING(msg), PyBytes_AS_STRING(head), h) != 0:
        return False
    try:
        d = _loads(msg)
    except Exception:
        return False                            # the general path says what is wrong
    if type(d) is not dict or len(<dict>d) != len(fields) + 1 or d.get("type") != kind:
        return False
    for k, t in fields.items():                 # exact types: JSON's true is no int here
        if type((<dict>d).get(k)) is not t:
            return False
    return True


cdef class ModelLane(_Lane):
    """Takes the leading audio deltas and plain transcript deltas of one read from the
    realtime socket off the general path (``_CallIO.from_realtime`` ->
    ``Call.from_realtime`` -> ``RealtimeSession.receive`` -> ``_CallIO.act``), and returns
    how many it took.

    The model sends these two, a hundred milliseconds of audio and its words, ten times a
    second while it speaks; through the general path each costs a dozen Python calls, a typed
    event and an ``Actions``, and the transcript's event is read by nobody in a bridge without
    an app. The lane runs the same steps the general path does for them (the session's audio
    bookkeeping, ``Call._take_delta``, ``Call._pump``, ``_CallIO.act`` with what that made),
    calling the same methods, except that for the stock call and I/O the pump and act run
    compiled (``_pump_send``); anything else (other events, frames the scanners decline,
    binary or control frames) goes the general way.

    Only for the stock ``Call`` on a ``RealtimeSession`` or ``LiveCall`` on a ``LiveSession``
    (``live``), with no app (see ``_CallIO.install_model_lane``): an app reads every event.
    ``clock``: the server module, whose ``_now_ms`` is read per frame as the general path
    reads it; ``pacing``: the pacer's set."""

    cdef object io, call, clock, pacing, actions, session_type
    cdef bint live
    cdef Py_ssize_t o_session, o_from_realtime, o_frames_in, o_transcripts
    # The stock Call._pump and _CallIO.act (``stock``), compiled: see _pump_send.
    cdef object remember, ledger_max, tail, binary_media, codec, carrier
    cdef bint stock, json_media, json_mark, carrier_slots
    cdef Py_ssize_t o_first, o_last, o_chunk, o_pending, o_play_end, o_seq, o_gen, o_chunk_ms, o_lead_ms
    cdef Py_ssize_t o_startup, o_receiving, o_segments, o_ledger, o_sent_ms, o_recorder, o_to_carrier
    cdef Py_ssize_t o_bytes_out, o_started, o_head, o_mark_head, o_refill
    cdef Py_ssize_t o_arm, o_last_delta, o_silence  # LiveCall's (live)
    cdef bint paces                             # the pacer's step too (see pace_due)
    cdef bytes t_head
    cdef str t_kind
    cdef dict t_fields

    def __init__(self, io, ws, call, clock, pacing, actions, bint live=False, stock=None):
        self._socket(ws)
        self.io, self.call = io, call
        if stock is not None:
            self._stock(stock[0], stock[1], stock[2], stock[3], stock[4])
        self.session_type = type(call.session)
        self.o_session = _slot(type(call), "session")
        self.o_from_realtime = _slot(type(call), "frames_from_realtime")
        self.o_frames_in = _slot(self.session_type, "frames_in")
        if live:
            self.o_transcripts = _slot(type(call), "output_transcript_deltas")
        self.clock, self.pacing, self.actions = clock, pacing, actions
        self.live = live
        self.t_head, self.t_kind, self.t_fields = _TRANSCRIPTS[1 if live else 0]

    cdef _stock(self, remember, ledger_max, json_media_fn, json_mark_fn, open_state):
        """The call's pump and its I/O's act are the stock ones (``Call._pump``,
        ``_CallIO.act``): remember, _LEDGER_MAX, JsonCodec.media and .mark as call.py has
        them, and the websocket's OPEN."""
        call, ct = self.call, type(self.call)
        self.open_state = open_state
        self.stock, self.remember, self.ledger_max = True, remember, ledger_max
        self.codec = call.codec                 # (a Call keeps its codec)
        cc = type(self.codec)
        self.json_media, self.json_mark = cc.media is json_media_fn, cc.mark is json_mark_fn
        self.tail = cc._TAIL if self.json_media else None
        self.binary_media = self.codec.binary_media
        self.carrier = self.io.ws               # (an I/O keeps its carrier socket)
        self.carrier_slots = type(self.carrier) is self.ws_type
        self.o_first, self.o_last = _slot(ct, "first_ms"), _slot(ct, "last_ms")
        self.o_chunk, self.o_pending = _slot(ct, "_chunk"), _slot(ct, "_pending")
        self.o_play_end, self.o_seq, self.o_gen = _slot(ct, "_play_end"), _slot(ct, "_seq"), _slot(ct, "_generation")
        self.o_chunk_ms, self.o_lead_ms = _slot(ct, "chunk_ms"), _slot(ct, "lead_ms")
        self.o_startup, self.o_receiving = _slot(ct, "_startup_bytes"), _slot(ct, "_receiving")
        self.o_segments, self.o_ledger, self.o_sent_ms = _slot(ct, "_segments"), _slot(ct, "_ledger"), _slot(ct, "sent_ms")
        self.o_recorder, self.o_to_carrier = _slot(ct, "recorder"), _slot(ct, "frames_to_carrier")
        self.o_bytes_out = _slot(ct, "audio_bytes_out")
        self.o_started, self.o_head, self.o_mark_head = _slot(cc, "started"), _slot(cc, "_head"), _slot(cc, "_mark_head")
        self.o_refill = _slot(ct, "_refill_ms")

    def pacer(self, tick, wake_at):
        """Let pace_due run this call's pacer step compiled: when its tick and wake_at are
        ``tick`` and ``wake_at`` (Call's, or LiveCall's for a live lane), as its pump is Call's.
        Returns whether it will."""
        self.paces = (self.stock and type(self.call).tick is tick and type(self.call).wake_at is wake_at)
        if self.paces and self.live:
            ct = type(self.call)
            self.o_arm, self.o_last_delta = _slot(ct, "_arm"), _slot(ct, "_last_delta")
            self.o_silence = _slot(ct, "silence_ms")
        return self.paces

    cdef int _pump_send(self, now) except -1:
        """``Call._pump(now, a)`` then ``_CallIO.act(a)`` for an ``a`` that held nothing
        before: the same loop (rtfast._pace.pump) on the same values, read in place, and
        what it made written to the carrier as ``act`` writes it."""
        call, codec = self.call, self.codec
        if _get(call, self.o_first, "first_ms") is None:
            _set(call, self.o_first, "first_ms", now)
        _set(call, self.o_last, "last_ms", now)
        chunk = _get(call, self.o_chunk, "_chunk")
        pending = _get(call, self.o_pending, "_pending")
        if len(pending) < chunk or not _get(codec, self.o_started, "started"):
            return 0
        mark_head = _get(codec, self.o_mark_head, "_mark_head") if self.json_mark else None
        out = []
        play_end, seq, n = _pace_pump(
            pending, chunk, now, _get(call, self.o_play_end, "_play_end"), _get(call, self.o_seq, "_seq"),
            _get(call, self.o_gen, "_generation"), _get(call, self.o_chunk_ms, "chunk_ms"),
            _get(call, self.o_lead_ms, "lead_ms"), _get(call, self.o_startup, "_startup_bytes"),
            _get(call, self.o_receiving, "_receiving") is not None, _get(call, self.o_segments, "_segments"),
            _get(call, self.o_ledger, "_ledger"), self.ledger_max, _get(call, self.o_sent_ms, "sent_ms"),
            self.remember, out, _get(codec, self.o_head, "_head") if self.json_media else None, self.tail,
            None if self.json_media else codec.media, self.binary_media, mark_head,
            codec.mark if mark_head is None else None, _get(call, self.o_recorder, "recorder"))
        _set(call, self.o_play_end, "_play_end", play_end)
        _set(call, self.o_seq, "_seq", seq)
        _bump(call, self.o_to_carrier, "frames_to_carrier", 2 * n)
        _bump(call, self.o_bytes_out, "audio_bytes_out", n * chunk)
        ws = self.carrier
        if not out:
            return 0
        if not self.carrier_slots:
            if ws.state == self.open_state:
                ws.send_many(out)
        elif _get(ws, self.o_state, "state") == self.open_state:      # WebSocket.send_many
            _get(ws, self.o_transport, "transport").write(_get(ws, self.o_writer, "_writer").frames(out, 1))
        return 0

    cdef bint _compiled(self) except -1:
        """Whether _pump_send may stand for Call._pump and _CallIO.act now: the stock ones,
        with nothing patched onto this call or its carrier socket."""
        return self.stock and not _patched(self.call, "_pump") and not _patched(self.carrier, "send_many")

    cdef void _warm(self) noexcept:
        rt_lane_prefetch(<PyObject*>self.call)
        rt_lane_prefetch(<PyObject*>self.io)
        rt_lane_prefetch(<PyObject*>self.ws)
        if self.stock:
            rt_lane_prefetch(<PyObject*>self.codec)
            rt_lane_prefetch(<PyObject*>self.carrier)

    cdef bint _one(self, bytes msg) except -1:
        # Read per frame: Call.realtime_reset() replaces the session; another kind than the
        # lane was set up for (its own receive) takes the general path.
        session = _get(self.call, self.o_session, "session")
        if type(session) is not self.session_type:
            return False
        delta = None
        if not _plain_transcript(msg, self.t_head, self.t_kind, self.t_fields):
            delta = _scan_delta(msg)
            if delta is None:
                return False
        io, call = self.io, self.call
        a = None
        try:                                    # as _CallIO.from_realtime
            now = self.clock._now_ms()
            _bump(call, self.o_from_realtime, "frames_from_realtime", 1)
            if delta is not None:               # the session's receive, then the call's, for a delta
                session._on_audio(delta)
                _bump(session, self.o_frames_in, "frames_in", 1)
                a = self.actions()
                call._take_delta(delta, msg, a, now)
                if not (a.to_carrier or a.to_realtime or a.events or a.hangup):
                    a = None                    # (the usual: only the pump's chunks follow)
            else:                               # a transcript: its event goes to nobody
                _bump(session, self.o_frames_in, "frames_in", 1)
                if self.live:
                    _bump(call, self.o_transcripts, "output_transcript_deltas", 1)
            if a is None and self._compiled():
                self._pump_send(now)
            else:
                if a is None:
                    a = self.actions()
                call._pump(now, a)
                if a.to_carrier or a.to_realtime or a.events or a.hangup:
                    io.act(a)
        except Exception as exc:
            io.fail(exc)
        self.pacing.add(io)
        return True


def pace_due(set pacing, now):
    """``BridgeServer._pace_due``: each call with audio waiting sends what is due by ``now``
    (ms); a call with none left leaves the set until the model speaks again.

    A call whose model lane paces it (``ModelLane.pacer``; ``io.pacer``) takes the stock
    ``Call.wake_at`` / ``_CallIO.pace`` steps compiled (``_pump_send``); any other goes
    through its own ``call.wake_at`` and ``io.pace``."""
    cdef ModelLane lane
    cdef list ios = list(pacing)
    cdef Py_ssize_t k, n = len(ios)
    for k in range(n):
        io = ios[k]
        if k + 1 < n:                           # the next call's I/O, while this one runs
            rt_lane_prefetch(<PyObject*>ios[k + 1])
        p = io.pacer
        lane = None
        if p is not None:
            lane = <ModelLane?>p
            call = lane.call
            rt_lane_prefetch(<PyObject*>call)
            rt_lane_prefetch(<PyObject*>lane.codec)
            rt_lane_prefetch(<PyObject*>lane.carrier)
            if not lane.paces or not lane._compiled() or _patched(call, "wake_at") or _patched(call, "tick"):
                lane = None
        if lane is None:
            due = io.call.wake_at(now)
            if due is None:
                pacing.discard(io)
            elif due <= now:
                io.pace(now)
            continue
        if lane.live:
            _pace_live(lane, io, call, pacing, now)
            continue
        # Call.wake_at: None while less than a chunk waits, else max(now, the refill time);
        # due <= now is then the refill time <= now.
        if len(_get(call, lane.o_pending, "_pending")) < _get(call, lane.o_chunk, "_chunk"):
            pacing.discard(io)
        elif (_get(call, lane.o_play_end, "_play_end") + _get(call, lane.o_refill, "_refill_ms")
                - _get(call, lane.o_lead_ms, "lead_ms")) <= now:
            try:                                # _CallIO.pace: Call.tick, then act
                lane._pump_send(now)
            except Exception as exc:            # a bug in the call logic: end this call, loudly
                io.fail(exc)


cdef int _pace_live(ModelLane lane, io, call, set pacing, now) except -1:
    """pace_due's step for a LiveCall: its wake_at (Call's, and the end of the model's silence
    while a run is open or a cut armed), then its tick: the plain pump compiled, and the
    tick itself (io.pace) whenever it has more to do (an armed cut, a run that ended)."""
    receiving = _get(call, lane.o_receiving, "_receiving")
    arm = _get(call, lane.o_arm, "_arm")
    last_delta = _get(call, lane.o_last_delta, "_last_delta")
    silence = _get(call, lane.o_silence, "silence_ms")
    watch = receiving is not None or arm is not None
    if len(_get(call, lane.o_pending, "_pending")) >= _get(call, lane.o_chunk, "_chunk"):
        due = max(now, _get(call, lane.o_play_end, "_play_end") + _get(call, lane.o_refill, "_refill_ms")
                  - _get(call, lane.o_lead_ms, "lead_ms"))
        if watch:
            due = min(due, last_delta + silence)
    elif watch:
        due = last_delta + silence
    else:
        pacing.discard(io)
        return 0
    if not due <= now:
        return 0
    if arm is not None or (receiving is not None and now - last_delta >= silence):
        io.pace(now)                            # LiveCall.tick's other steps: all of it, in Python
        return 0
    try:                                        # _CallIO.pace: LiveCall.tick is only the pump here
        lane._pump_send(now)
    except Exception as exc:
        io.fail(exc)
    return 0
