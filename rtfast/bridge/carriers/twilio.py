"""Twilio Media Streams (bidirectional, ``<Connect><Stream>``).

Inbound JSON text frames: ``connected``, ``start`` (``start.streamSid``,
``callSid``, ``accountSid``, ``tracks``, ``customParameters``, ``mediaFormat``
``{"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}``),
``media`` (``sequenceNumber``, ``media.track``/``chunk``/``timestamp``/``payload``:
base64 μ-law 8 kHz, 160 bytes per 20 ms), ``dtmf`` (``dtmf.digit``), ``mark``
(``mark.name``), ``stop``. Outbound: ``media``, ``mark``, ``clear``, each with
the ``streamSid``.
"""

from __future__ import annotations

from rtfast.bridge.carriers._base import JsonCodec, Start, _obj

__all__ = ["TwilioCodec"]

_ENCODINGS = {"audio/x-mulaw": "pcmu", "audio/x-alaw": "pcma"}


class TwilioCodec(JsonCodec):
    __slots__ = ()
    name = "twilio"
    STREAM_KEY = "streamSid"
    HANDLERS = {"connected": "_connected", "start": "_start", "media": "_media", "dtmf": "_dtmf",
                "mark": "_mark", "stop": "_stop"}

    def __init__(self, audio_format: str = "pcmu/8000") -> None:
        if audio_format not in ("pcmu/8000", "pcma/8000"):
            raise ValueError(f"Twilio speaks pcmu/8000 or pcma/8000, not {audio_format!r}")
        super().__init__(audio_format)

    def _start(self, d, frame):
        s = _obj(d, "start")
        sid = s.get("streamSid") or d.get("streamSid")
        if type(sid) is not str:
            raise self._error("start: no string 'streamSid'", frame)
        fmt = _obj(s, "mediaFormat")
        if fmt:
            codec = _ENCODINGS.get(fmt.get("encoding"))
            if codec is None or fmt.get("sampleRate") != 8000:
                raise self._error(f"start: unsupported mediaFormat {fmt}", frame)
            self._set_format(f"{codec}/8000", frame)
        return self._started(Start(sid, s.get("callSid"), s.get("accountSid"), s.get("tracks"),
                                   s.get("customParameters"), self.audio_format, d))
