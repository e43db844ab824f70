"""Sans-I/O GPT-Live session: frames in, typed events out; client events in, frames out.

GPT-Live (``/v1/live/sessions``) differs from Realtime where a client keeps state: the first
client event is ``session.start`` (answered by ``session.started``), the model owns turn-taking
and barge-in (there is no response to cancel, no item to truncate), and audio has one format for
both directions, chosen at start (``audio.format``: ``audio/pcmu``/``audio/pcma`` at 8 kHz or
``audio/pcm`` at 16/24 kHz). What is kept:

- the resolved session (``session.started``/``session.updated``), its id and audio format,
- the milliseconds of output audio received, and where the current run of it began,
- the delegations handed to the client (``session.delegation.created`` with target ``client``)
  that have not been answered yet,
- the last ``session.start`` sent, so a reconnect can start the same session again.

Output audio deltas never become dicts (rtfast.wire's scanner, ``AudioDelta``); the input append
is built from a template (``append_audio`` / ``append_audio_b64``).
"""

from __future__ import annotations

from rtfast import events, wire
from rtfast.session import PCM16_24K, AudioFormat

__all__ = ["LiveSession", "audio_format"]

_CODECS = {"audio/pcm": "pcm16", "audio/pcmu": "pcmu", "audio/pcma": "pcma"}
#: Client delegations remembered while unanswered: past this the oldest is forgotten.
DELEGATIONS_KEPT = 64


def audio_format(fmt) -> AudioFormat:
    """The AudioFormat a GPT-Live ``audio.format`` object names (PCM16 24 kHz when absent)."""
    if not isinstance(fmt, dict):
        return PCM16_24K
    codec = _CODECS.get(fmt.get("type"))
    if codec is None:
        return PCM16_24K
    rate = fmt.get("rate")
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        rate = 24000 if codec == "pcm16" else 8000
    return AudioFormat(codec, rate)


class LiveSession:
    """State of one GPT-Live session, driven by frames (no sockets, no asyncio)."""

    generation = "live"

    def __init__(self) -> None:
        self.config: dict = {}
        self.session_id: str | None = None
        self.started = False
        self.closed = False
        self.format: AudioFormat = PCM16_24K
        self.audio_received = 0          # bytes of output audio, the whole session
        self.delegations: dict[str, dict] = {}   # id -> the delegation object, client target, unanswered
        self.last_session_start: bytes | None = None
        self.frames_in = 0
        self.frames_out = 0

    # Realtime's names for the one format, so code written for RealtimeSession reads it too.
    @property
    def input_format(self) -> AudioFormat:
        return self.format

    @property
    def output_format(self) -> AudioFormat:
        return self.format

    @property
    def audio_received_ms(self) -> int:
        return self.format.ms(self.audio_received)

    # -- inbound ------------------------------------------------------------------------------
    def receive(self, frame: bytes | str):
        """Parse one server frame; a malformed one raises ProtocolError (state untouched)."""
        if type(frame) is str:
            frame = frame.encode()
        delta = wire.scan_audio_delta(frame)
        if delta is None:
            event = events.parse(frame, generation="live")
            if event.type == "session.output_audio.delta":
                event = wire.parse_audio_delta(frame)     # a legal delta the scanner declined
                self._on_audio(event)
            else:
                self._on_event(event)
        else:
            event = delta
            self._on_audio(delta)
        self.frames_in += 1
        return event

    def _on_audio(self, ev) -> None:
        self.audio_received += ev.audio_length

    def _on_event(self, event) -> None:
        t = event.type
        if t in ("session.started", "session.updated"):
            session = event.to_dict().get("session") or {}
            self.config = session
            self.session_id = session.get("id", self.session_id)
            self.started = True
            fmt = (session.get("audio") or {}).get("format")
            if fmt is not None or t == "session.started":
                self.format = audio_format(fmt)
        elif t == "session.delegation.created":
            d = event.delegation
            if d is not None and d.target == "client" and d.id:
                if len(self.delegations) >= DELEGATIONS_KEPT:
                    del self.delegations[next(iter(self.delegations))]
                self.delegations[d.id] = d.to_dict()
        elif t == "session.closed":
            self.closed = True

    # -- outbound -----------------------------------------------------------------------------
    def send(self, event) -> bytes:
        """The frame for a client event (an event object or a dict)."""
        body = event if isinstance(event, dict) else event.to_dict()
        frame = events.dumps(body)
        t = body.get("type")
        if t == "session.start":
            self.last_session_start = frame
            # until session.started says otherwise, count audio in the format asked for
            self.format = audio_format(((body.get("session") or {}).get("audio") or {}).get("format"))
        elif t in ("session.instructions.append", "session.thinking.append", "session.commentary.append"):
            self.delegations.pop(body.get("delegation_id"), None)
        self.frames_out += 1
        return frame

    def append_audio(self, audio, event_id: str | None = None) -> bytes:
        """``session.input_audio.append`` for raw audio in the session's format (base64 written in place)."""
        self.frames_out += 1
        return wire.build_append(audio, event_id, generation="live")

    def append_audio_b64(self, payload, event_id: str | None = None) -> bytes:
        """``session.input_audio.append`` around already-base64 audio (a carrier's), spliced."""
        self.frames_out += 1
        return wire.build_append_b64(payload, event_id, generation="live")
