"""Telnyx media streaming over WebSocket (``stream_bidirectional_mode: rtp``).

Like Twilio's, in snake_case: ``start`` carries ``stream_id`` (top level),
``start.call_control_id``, ``call_session_id``, ``custom_parameters`` and
``media_format`` ``{"encoding": "PCMU" | "PCMA", "sample_rate": 8000,
"channels": 1}``; ``media`` frames carry ``sequence_number`` and
``media.track``/``chunk``/``timestamp``/``payload``. Telnyx does not guarantee
frame order: :meth:`TelnyxCodec.order` puts them back in ``media.chunk``
order with a small reorder window. Outbound ``media`` (RTP payload, base64),
``mark`` and ``clear`` need no stream id. Telnyx also sends ``error`` frames.
"""

from __future__ import annotations

import orjson

from rtfast.bridge.carriers._base import CarrierAlert, JsonCodec, Start, _obj

__all__ = ["TelnyxCodec"]

_ENCODINGS = {"PCMU": "pcmu", "PCMA": "pcma"}


class TelnyxCodec(JsonCodec):
    """``reorder_window``: how many later frames may wait for a missing one
    before it is given up for lost (each frame is 20 ms: the window bounds the
    delay a loss adds)."""

    __slots__ = ("_held", "_next", "dropped", "reorder_window", "reordered")

    name = "telnyx"
    HANDLERS = {"connected": "_connected", "start": "_start", "media": "_media", "dtmf": "_dtmf",
                "mark": "_mark", "stop": "_stop", "error": "_carrier_error"}
    reorders = True

    def __init__(self, audio_format: str = "pcmu/8000", reorder_window: int = 3) -> None:
        if audio_format not in ("pcmu/8000", "pcma/8000"):
            raise ValueError(f"Telnyx streams pcmu/8000 or pcma/8000, not {audio_format!r}")
        super().__init__(audio_format)
        if reorder_window < 0:
            raise ValueError("reorder_window must be >= 0")
        self.reorder_window = reorder_window
        self._next: int | None = None    # chunk expected next
        self._held: dict[int, object] = {}
        self.reordered = 0               # frames that arrived early and waited
        self.dropped = 0                 # frames that came after their turn (or twice)

    def _start(self, d, frame):
        s = _obj(d, "start")
        sid = d.get("stream_id") or s.get("stream_id")
        if type(sid) is not str:
            raise self._error("start: no string 'stream_id'", frame)
        fmt = _obj(s, "media_format")
        if fmt:
            codec = _ENCODINGS.get(fmt.get("encoding"))
            if codec is None or fmt.get("sample_rate", 8000) != 8000:
                raise self._error(f"start: unsupported media_format {fmt} (PCMU or PCMA at 8000 Hz)", frame)
            self._set_format(f"{codec}/8000", frame)
        return self._started(Start(sid, s.get("call_control_id"), s.get("user_id"), s.get("tracks"),
                                   s.get("custom_parameters"), self.audio_format, d))

    def _carrier_error(self, d, frame):
        p = _obj(d, "payload")
        return CarrierAlert(p.get("code"), p.get("detail") or p.get("title"), d)

    def order(self, media):
        """Media in chunk order: returns the frames now ready (possibly none).

        A frame ahead of the expected chunk waits; once more than
        ``reorder_window`` frames wait, the gap is given up and the waiting
        frames go out in order. A frame behind the expected one is dropped.
        Frames without a chunk number pass straight through.
        """
        c = media.chunk
        if c is None:
            return [media]
        if self._next is None:
            self._next = c
        if c < self._next or c in self._held:
            self.dropped += 1
            return []
        if c > self._next:
            self.reordered += 1
            self._held[c] = media
            if len(self._held) <= self.reorder_window:
                return []
            self._next = min(self._held)
            out = []
        else:
            out = [media]
            self._next += 1
        held = self._held
        while self._next in held:
            out.append(held.pop(self._next))
            self._next += 1
        return out

    def flush_order(self):
        """The frames still waiting, in order (at the end of the stream)."""
        out = [self._held[c] for c in sorted(self._held)]
        self._held.clear()
        return out

    def _media_head(self) -> bytes:
        return b'{"event":"media","media":{"payload":"'

    def mark(self, name: str) -> bytes:
        self._need_start("mark")
        return orjson.dumps({"event": "mark", "mark": {"name": name}})

    def clear(self) -> bytes:
        self._need_start("clear")
        return b'{"event":"clear"}'
