"""Vonage Voice API WebSocket (``connect`` action, endpoint type ``websocket``).

The first text frame is a JSON header, ``{"event": "websocket:connected",
"content-type": "audio/l16;rate=16000", ...}`` (plus the headers the NCCO set);
then audio arrives as binary frames of raw PCM16 little-endian, 20 ms each
(320 bytes at 8 kHz, 640 at 16 kHz). Text frames carry events:
``websocket:notify`` (a ``notify`` action came back once the audio sent
before it played), ``websocket:cleared``, ``websocket:dtmf``,
``websocket:error``. Outbound: binary frames of exactly 20 ms,
``{"action": "clear"}`` and ``{"action": "notify", "payload": {...}}``.
Vonage sends no stop message: the socket closes when the call ends.
"""

from __future__ import annotations

import re

import orjson

from rtfast.b64 import decode as _b64decode
from rtfast.bridge.carriers._base import (CarrierCodec, CarrierAlert, Cleared, Dtmf, Mark, Start, Unknown,
                                   binary_media)
from rtfast.errors import Base64Error

__all__ = ["VonageCodec"]

_CONTENT_TYPE = re.compile(r"audio/l16;\s*rate=(8000|16000)$", re.IGNORECASE)


class VonageCodec(CarrierCodec):
    __slots__ = ()
    name = "vonage"
    binary_media = True

    def __init__(self, audio_format: str = "pcm16/16000") -> None:
        if audio_format not in ("pcm16/8000", "pcm16/16000"):
            raise ValueError(f"Vonage speaks pcm16/8000 or pcm16/16000, not {audio_format!r}")
        super().__init__(audio_format)

    def chunk_bytes(self, ms: int = 20) -> int:
        """Vonage wants every binary frame to be exactly 20 ms."""
        return self.frame_bytes

    def parse(self, frame, binary: bool = False):
        """A binary frame is caller audio (a Media with ``binary`` True); a text frame is JSON."""
        if binary:
            self._need_start("audio")
            return binary_media(frame)
        d, event = self._json_event(frame)
        if event == "websocket:connected":
            ctype = d.get("content-type")
            if ctype is not None:
                m = _CONTENT_TYPE.match(ctype) if type(ctype) is str else None
                if m is None:
                    raise self._error(f"unsupported content-type {ctype!r}", frame)
                self._set_format(f"pcm16/{m.group(1)}", frame)
            self.started = True
            self.start_event = Start(None, d.get("uuid") or d.get("call_uuid"), None, None,
                                     {k: v for k, v in d.items() if k not in ("event", "content-type")},
                                     self.audio_format, d)
            return self.start_event
        if event == "websocket:notify":
            payload = d.get("payload")
            name = payload.get("name") if type(payload) is dict else None
            if type(name) is not str:
                raise self._error("websocket:notify: field 'payload.name' must be a string", frame)
            return Mark(name, d)
        if event == "websocket:cleared":
            return Cleared(d)
        if event == "websocket:dtmf":
            dtmf = d.get("dtmf") if type(d.get("dtmf")) is dict else d
            digit = dtmf.get("digit")
            if type(digit) is not str:
                raise self._error("websocket:dtmf: no string 'digit'", frame)
            return Dtmf(digit, dtmf.get("duration"), d)
        if event == "websocket:error":
            return CarrierAlert(d.get("code"), d.get("reason") or d.get("message"), d)
        return Unknown(event, d)

    feed = parse        # the bridge's hot path is parse itself (binary audio; no frame in between)

    def media(self, audio) -> bytes:
        """The binary frame for raw PCM16 audio (the audio itself)."""
        return audio if type(audio) is bytes else bytes(audio)

    def media_b64(self, payload, validate: bool = True) -> bytes:
        try:
            return _b64decode(payload)
        except Base64Error as exc:
            raise self._error(f"payload is not base64 ({exc})") from None

    def mark(self, name: str) -> bytes:
        """A ``notify`` action: Vonage answers ``websocket:notify`` with this
        payload once the audio sent before it has played."""
        return orjson.dumps({"action": "notify", "payload": {"name": name}})

    def clear(self) -> bytes:
        return b'{"action":"clear"}'
