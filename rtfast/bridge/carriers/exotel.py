"""Exotel AgentStream / Voicebot applet (bidirectional).

Inbound: ``connected``, ``start`` (``stream_sid``, ``start.call_sid``,
``account_sid``, ``custom_parameters``, ``media_format`` ``{"encoding":
"audio/x-raw"?, "sample_rate": "8000", "bit_rate": "16"}``), ``media``
(``sequence_number``, ``stream_sid``, ``media.chunk``/``timestamp``/``payload``:
base64 PCM16 little-endian at 8, 16 or 24 kHz), ``dtmf``, ``mark``, ``stop``.
Outbound: ``media``, ``mark``, ``clear`` with the ``stream_sid``. Outbound
audio must come in chunks of a multiple of 320 bytes and at least 3.2 KB
(100 ms at 8 kHz): :meth:`ExotelCodec.chunk_bytes` rounds up to that.
"""

from __future__ import annotations

from math import lcm

from rtfast.bridge.carriers._base import JsonCodec, Start, _obj

__all__ = ["ExotelCodec", "MIN_CHUNK", "CHUNK_MULTIPLE"]

MIN_CHUNK = 3200
CHUNK_MULTIPLE = 320


class ExotelCodec(JsonCodec):
    __slots__ = ()
    name = "exotel"
    STREAM_KEY = "stream_sid"
    HANDLERS = {"connected": "_connected", "start": "_start", "media": "_media", "dtmf": "_dtmf",
                "mark": "_mark", "stop": "_stop"}

    def __init__(self, audio_format: str = "pcm16/8000") -> None:
        if not audio_format.startswith("pcm16/"):
            raise ValueError(f"Exotel speaks PCM16 at 8, 16 or 24 kHz, not {audio_format!r}")
        super().__init__(audio_format)

    def chunk_bytes(self, ms: int = 20) -> int:
        """At least ``ms`` of audio, rounded up to whole 20 ms frames, a multiple
        of 320 bytes and at least 3200 bytes (Exotel's rule)."""
        unit = lcm(self.frame_bytes, CHUNK_MULTIPLE)
        want = max(ms * self.bytes_per_ms, MIN_CHUNK)
        return -(-want // unit) * unit

    def _start(self, d, frame):
        s = _obj(d, "start")
        sid = d.get("stream_sid") or s.get("stream_sid")
        if type(sid) is not str:
            raise self._error("start: no string 'stream_sid'", frame)
        rate = _obj(s, "media_format").get("sample_rate")
        if rate is not None:
            if str(rate) not in ("8000", "16000", "24000"):
                raise self._error(f"start: unsupported sample_rate {rate!r}", frame)
            self._set_format(f"pcm16/{rate}", frame)
        return self._started(Start(sid, s.get("call_sid"), s.get("account_sid"), None,
                                   s.get("custom_parameters"), self.audio_format, d))
