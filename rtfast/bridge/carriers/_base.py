"""What every carrier codec shares: the typed events, the orjson path for the
messages the scanner does not take, and the outbound byte templates."""

from __future__ import annotations

import orjson

from rtfast._loader import load
from rtfast.errors import ProtocolError

_k = load("_carrier")
Media = _k.Media
scan_media = _k.scan_media
scan_hot = _k.scan_hot
binary_media = _k.binary_media
wrap_audio = _k.wrap_audio
wrap_b64 = _k.wrap_b64

__all__ = [
    "CarrierEvent", "Connected", "Start", "Media", "Dtmf", "Mark", "Cleared", "Stop", "CarrierAlert",
    "Unknown", "CarrierCodec", "JsonCodec", "FORMATS", "bytes_per_ms", "media_from_dict",
]

#: Audio formats a carrier may speak, and their bytes per millisecond.
FORMATS = {"pcmu/8000": 8, "pcma/8000": 8, "pcm16/8000": 16, "pcm16/16000": 32, "pcm16/24000": 48}


def bytes_per_ms(fmt: str) -> int:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown carrier audio format {fmt!r}; expected one of {', '.join(FORMATS)}") from None


# -- events --------------------------------------------------------------------------------


class CarrierEvent:
    """Base of the typed carrier events (Media is the compiled rtfast._carrier.Media)."""

    __slots__ = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__ if k != "raw")
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)


class Connected(CarrierEvent):
    """The socket is up (Twilio, Telnyx, Exotel ``connected``)."""

    __slots__ = ("protocol", "version", "raw")

    def __init__(self, protocol=None, version=None, raw=None):
        self.protocol, self.version, self.raw = protocol, version, raw


class Start(CarrierEvent):
    """The stream starts: ids and the audio format (``"pcmu/8000"``, ...)."""

    __slots__ = ("stream_id", "call_id", "account_id", "tracks", "custom_parameters", "audio_format", "raw")

    def __init__(self, stream_id=None, call_id=None, account_id=None, tracks=None, custom_parameters=None,
                 audio_format=None, raw=None):
        self.stream_id, self.call_id, self.account_id = stream_id, call_id, account_id
        self.tracks, self.custom_parameters, self.audio_format, self.raw = tracks, custom_parameters, audio_format, raw


class Dtmf(CarrierEvent):
    """A key the caller pressed."""

    __slots__ = ("digit", "duration", "raw")

    def __init__(self, digit, duration=None, raw=None):
        self.digit, self.duration, self.raw = digit, duration, raw


class Mark(CarrierEvent):
    """A mark came back: the audio sent before it has played, or a clear dropped
    it (Twilio/Telnyx/Exotel ``mark``, Plivo ``playedStream``, Vonage ``websocket:notify``)."""

    __slots__ = ("name", "raw")

    def __init__(self, name, raw=None):
        self.name, self.raw = name, raw


class Cleared(CarrierEvent):
    """The carrier confirms a clear (Plivo ``clearedAudio``, Vonage ``websocket:cleared``)."""

    __slots__ = ("raw",)

    def __init__(self, raw=None):
        self.raw = raw


class Stop(CarrierEvent):
    """The stream ended (the call hung up or the stream was stopped)."""

    __slots__ = ("call_id", "reason", "raw")

    def __init__(self, call_id=None, reason=None, raw=None):
        self.call_id, self.reason, self.raw = call_id, reason, raw


class CarrierAlert(CarrierEvent):
    """An error the carrier reports on the stream (Telnyx ``error``, Vonage ``websocket:error``)."""

    __slots__ = ("code", "message", "raw")

    def __init__(self, code=None, message=None, raw=None):
        self.code, self.message, self.raw = code, message, raw


class Unknown(CarrierEvent):
    """A well-formed message of a type the codec does not know, kept whole."""

    __slots__ = ("event", "raw")

    def __init__(self, event, raw):
        self.event, self.raw = event, raw


# -- the orjson path -----------------------------------------------------------------------

# Every carrier's spelling of the same fields (the scanner takes all of them, so must this).
_SEQ_KEYS = ("sequenceNumber", "sequence_number")
_STREAM_KEYS = ("streamSid", "stream_id", "streamId", "stream_sid")
_KNOWN_TOP = frozenset(("event", "media") + _SEQ_KEYS + _STREAM_KEYS)


def _int(value, field: str, data):
    """A carrier number: JSON int or a string of ASCII digits (Twilio sends strings)."""
    if value is None or (type(value) is int):
        return value
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    raise ProtocolError(f"media: field {field!r} must be an integer or a string of digits", data)


def _str(value, field: str, data):
    if value is None or type(value) is str:
        return value
    raise ProtocolError(f"media: field {field!r} must be a string", data)


def _first(d: dict, keys):
    for k in keys:
        if k in d:
            return d[k]
    return None


def media_from_dict(d: dict, data=None) -> Media:
    """A Media from an already-parsed ``media`` message (the reference the scanner must match)."""
    m = d.get("media")
    if type(m) is not dict:
        raise ProtocolError("media: field 'media' must be an object", data)
    payload = m.get("payload")
    if type(payload) is not str:
        raise ProtocolError("media: field 'media.payload' must be a string", data)
    extra = {k: v for k, v in d.items() if k not in _KNOWN_TOP}
    return Media(payload, stream_id=_str(_first(d, _STREAM_KEYS), "stream id", data),
                 sequence_number=_int(_first(d, _SEQ_KEYS), "sequence number", data),
                 track=_str(m.get("track"), "media.track", data),
                 chunk=_int(m.get("chunk"), "media.chunk", data),
                 timestamp=_int(m.get("timestamp"), "media.timestamp", data),
                 extra=extra or None)


def _obj(d: dict, key: str) -> dict:
    v = d.get(key)
    return v if type(v) is dict else {}


# -- codecs --------------------------------------------------------------------------------


class CarrierCodec:
    """Sans-I/O codec of one carrier stream: frames in, typed events out; and
    the outbound messages (``media``, ``mark``, ``clear``) as bytes.

    Stateful: it learns the stream id and the audio format from ``start`` and
    refuses ``media`` before it. Any bad frame raises ProtocolError and leaves
    the codec as it was. Attributes:

    - ``audio_format``: ``"pcmu/8000"``, ``"pcma/8000"``, ``"pcm16/8000"``, ... (what
      is expected before ``start``, what ``start`` said after it);
    - ``binary_media``: outbound (and inbound) media are binary frames (Vonage);
    - ``frame_bytes``: bytes of 20 ms of audio; ``chunk_bytes(ms)``: bytes per
      outbound media message for ``ms`` of audio, rounded to the carrier's rule.
    """

    # Slots as rtfast.bridge.call.Call's (each subclass adds its own, or ()).
    __slots__ = ("__dict__", "__weakref__", "audio_format", "start_event", "started", "stream_id")

    name = "carrier"
    binary_media = False
    #: Inbound media may arrive out of order: pass them through ``order()``.
    reorders = False

    def __init__(self, audio_format: str = "pcmu/8000") -> None:
        bytes_per_ms(audio_format)
        self.audio_format = audio_format
        self.stream_id: str | None = None
        self.started = False
        self.start_event: Start | None = None

    @property
    def bytes_per_ms(self) -> int:
        return FORMATS[self.audio_format]

    @property
    def frame_bytes(self) -> int:
        return 20 * self.bytes_per_ms

    def chunk_bytes(self, ms: int = 20) -> int:
        """Bytes of audio per outbound media message carrying ``ms`` of audio."""
        return ms * self.bytes_per_ms

    def feed(self, frame, binary: bool = False):
        """:meth:`parse` for a bridge's hot path (``Call``): the same event, except that
        a codec may answer an echoed mark with its name alone (a ``str``), no Mark built."""
        return self.parse(frame, binary)

    def order(self, media: Media) -> list[Media]:
        """Media in playback order (only carriers with ``reorders`` need it)."""
        return [media]

    def _error(self, reason: str, data=None) -> ProtocolError:
        return ProtocolError(f"{self.name}: {reason}", data)

    def _json_event(self, frame) -> tuple[dict, str]:
        """A text frame as (its JSON object, its ``event``), or ProtocolError."""
        try:
            d = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            # orjson says so for a frame of the wrong type as well: that is the caller's bug.
            if not isinstance(frame, (bytes, bytearray, memoryview, str)):
                raise TypeError(f"frame must be bytes or str, not {type(frame).__name__}") from None
            raise self._error(f"not JSON ({exc.msg})", frame) from None
        if type(d) is not dict:
            raise self._error("not a JSON object", frame)
        event = d.get("event")
        if type(event) is not str:
            raise self._error("no string 'event'", frame)
        return d, event

    def _set_format(self, fmt: str, data) -> None:
        if fmt not in FORMATS:
            raise self._error(f"unsupported audio format {fmt}", data)
        self.audio_format = fmt

    def _need_start(self, what: str) -> None:
        if not self.started:
            raise self._error(f"{what} before start (no stream yet)")


class JsonCodec(CarrierCodec):
    """A carrier whose messages are JSON text frames with an ``event`` key.

    Subclasses set ``STREAM_KEY`` (the stream id's spelling), ``HANDLERS``
    (event name -> method) and implement ``_start(d)`` and the outbound
    templates (``_media_head``, ``mark``, ``clear``).
    """

    __slots__ = ("_head", "_mark_head", "_mark_names")

    STREAM_KEY = "streamSid"
    HANDLERS: dict[str, str] = {}
    _TAIL = b'"}}'

    def __init__(self, audio_format: str = "pcmu/8000") -> None:
        super().__init__(audio_format)
        self._head: bytes | None = None
        # feed() answers a plain mark with its name where "mark" means _mark here (not Plivo's)
        self._mark_names = self.HANDLERS.get("mark") == "_mark"
        self._mark_head: bytes | None = None

    def parse(self, frame: bytes | str, binary: bool = False):
        """One frame from the carrier -> a typed event (ProtocolError if bad)."""
        if binary:
            raise self._error("unexpected binary frame", b"")
        ev = scan_media(frame)
        if ev is not None:
            self._need_start("media")
            return ev
        d, event = self._json_event(frame)
        handler = self.HANDLERS.get(event)
        if handler is None:
            return Unknown(event, d)
        return getattr(self, handler)(d, frame)

    def feed(self, frame, binary: bool = False):
        """:meth:`parse`, except that a plain echoed mark comes back as its name (a
        ``str``): the scanner finds media and marks, the bridge's two frequent messages,
        in place; anything else goes the way parse() takes it."""
        if not binary:
            ev = scan_hot(frame)
            if type(ev) is str:
                if self._mark_names:
                    return ev
            elif ev is not None:
                if not self.started:
                    self._need_start("media")
                return ev
        return self.parse(frame, binary)

    # handlers shared by the Twilio-shaped carriers
    def _connected(self, d, frame):
        return Connected(d.get("protocol"), d.get("version"), d)

    def _media(self, d, frame):
        ev = media_from_dict(d, frame)
        self._need_start("media")
        return ev

    def _dtmf(self, d, frame):
        digit = _obj(d, "dtmf").get("digit")
        if type(digit) is not str:
            raise self._error("dtmf: field 'dtmf.digit' must be a string", frame)
        return Dtmf(digit, _obj(d, "dtmf").get("duration"), d)

    def _mark(self, d, frame):
        name = _obj(d, "mark").get("name")
        if type(name) is not str:
            raise self._error("mark: field 'mark.name' must be a string", frame)
        return Mark(name, d)

    def _stop(self, d, frame):
        stop = _obj(d, "stop")
        return Stop(stop.get("callSid") or stop.get("call_sid") or stop.get("call_control_id"),
                    stop.get("reason"), d)

    def _started(self, ev: Start) -> Start:
        self.stream_id = ev.stream_id
        self.started = True
        self.start_event = ev
        self._head = self._media_head()
        # An outbound mark per 20 ms chunk: the message around its name, built once
        # (orjson writes the same bytes for the whole dict, ~1 us a mark).
        self._mark_head = (b'{"event":"mark","' + self.STREAM_KEY.encode() + b'":' + orjson.dumps(self.stream_id)
                           + b',"mark":{"name":')
        return ev

    # outbound
    def _media_head(self) -> bytes:
        """The bytes of an outbound media message up to the payload's opening quote."""
        return (b'{"event":"media","' + self.STREAM_KEY.encode() + b'":' + orjson.dumps(self.stream_id)
                + b',"media":{"payload":"')

    def media(self, audio) -> bytes:
        """The outbound media message for raw audio (any buffer) in ``audio_format``:
        base64 is written straight into the frame."""
        if self._head is None:
            self._need_start("media")
        return wrap_audio(self._head, audio, self._TAIL)

    def media_b64(self, payload, validate: bool = True) -> bytes:
        """The outbound media message around an already-base64 payload, spliced."""
        if self._head is None:
            self._need_start("media")
        return wrap_b64(self._head, payload, self._TAIL, validate)

    def mark(self, name: str) -> bytes:
        if self._mark_head is None:
            self._need_start("mark")
        return self._mark_head + orjson.dumps(name) + b"}}"

    def clear(self) -> bytes:
        self._need_start("clear")
        return orjson.dumps({"event": "clear", self.STREAM_KEY: self.stream_id})
