"""Plivo audio streams (``<Stream bidirectional="true">``).

Inbound: ``start`` (``start.callId``, ``streamId``, ``accountId``, ``tracks``,
``mediaFormat`` ``{"encoding": "audio/x-mulaw" | "audio/x-l16", "sampleRate":
8000 | 16000}``), ``media`` (``sequenceNumber``, ``streamId``,
``media.track``/``timestamp``/``chunk``/``payload``, ``extra_headers``),
``dtmf``, ``playedStream`` (a ``checkpoint`` came back: the audio before it
played), ``clearedAudio``, ``stop``. Outbound: ``playAudio`` with ``media:
{contentType, sampleRate, payload}``, ``checkpoint`` (name) and
``clearAudio``. μ-law 8 kHz, or L16 (PCM16 little-endian) at 8 or 16 kHz.
"""

from __future__ import annotations

import orjson

from rtfast.bridge.carriers._base import Cleared, JsonCodec, Mark, Start, _obj

__all__ = ["PlivoCodec"]

_ENCODINGS = {("audio/x-mulaw", 8000): "pcmu/8000", ("audio/x-l16", 8000): "pcm16/8000",
              ("audio/x-l16", 16000): "pcm16/16000"}
_CONTENT_TYPES = {"pcmu/8000": (b"audio/x-mulaw", b"8000"), "pcm16/8000": (b"audio/x-l16", b"8000"),
                  "pcm16/16000": (b"audio/x-l16", b"16000")}


class PlivoCodec(JsonCodec):
    __slots__ = ()
    name = "plivo"
    STREAM_KEY = "streamId"
    HANDLERS = {"start": "_start", "media": "_media", "dtmf": "_dtmf", "playedStream": "_played",
                "clearedAudio": "_cleared", "stop": "_stop"}

    def __init__(self, audio_format: str = "pcmu/8000") -> None:
        if audio_format not in _CONTENT_TYPES:
            raise ValueError(f"Plivo speaks {', '.join(_CONTENT_TYPES)}, not {audio_format!r}")
        super().__init__(audio_format)

    def _start(self, d, frame):
        s = _obj(d, "start")
        sid = s.get("streamId") or d.get("streamId")
        if type(sid) is not str:
            raise self._error("start: no string 'streamId'", frame)
        fmt = _obj(s, "mediaFormat")
        if fmt:
            found = _ENCODINGS.get((fmt.get("encoding"), fmt.get("sampleRate")))
            if found is None:
                raise self._error(f"start: unsupported mediaFormat {fmt}", frame)
            self._set_format(found, frame)
        return self._started(Start(sid, s.get("callId"), s.get("accountId"), s.get("tracks"),
                                   d.get("extra_headers"), self.audio_format, d))

    def _played(self, d, frame):
        name = d.get("name")
        if type(name) is not str:
            raise self._error("playedStream: field 'name' must be a string", frame)
        return Mark(name, d)

    def _cleared(self, d, frame):
        return Cleared(d)

    def _media_head(self) -> bytes:
        ctype, rate = _CONTENT_TYPES[self.audio_format]
        return b'{"event":"playAudio","media":{"contentType":"' + ctype + b'","sampleRate":' + rate + b',"payload":"'

    def mark(self, name: str) -> bytes:
        """A ``checkpoint``: Plivo answers ``playedStream`` with this name once
        the audio sent before it has played."""
        self._need_start("checkpoint")
        return orjson.dumps({"event": "checkpoint", "streamId": self.stream_id, "name": name})

    def clear(self) -> bytes:
        self._need_start("clearAudio")
        return orjson.dumps({"event": "clearAudio", "streamId": self.stream_id})
