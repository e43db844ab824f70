"""Sans-I/O Realtime session: received frames in, typed events out; client
events in, frames to send out. No sockets, no asyncio (h11-style).

It keeps what a bridge needs to act correctly:
- the effective session config and the audio formats it implies,
- the response being generated (if any),
- for every assistant item, the audio received so far per content index
  (bytes and milliseconds), so a barge-in can truncate at the right place,
- the last ``session.update`` sent, so a reconnect can re-send it (sessions
  cannot be resumed).

Audio deltas never become dicts: they go through :mod:`rtfast.wire`'s scanner
and arrive as :class:`rtfast.wire.AudioDelta` (``.audio()``, ``.delta``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from rtfast import events, wire

__all__ = ["RealtimeSession", "AudioFormat", "ItemAudio"]

# Bytes of audio per millisecond for each format the API speaks.
_BYTES_PER_MS = {"pcm16": 48, "pcmu": 8, "pcma": 8}
#: Assistant items whose audio is remembered per session (and per bridge call):
#: the oldest is forgotten past this, so a call of hours keeps a bounded memory.
ITEMS_KEPT = 64
_GA_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "pcmu", "audio/pcma": "pcma"}
_BETA_FORMATS = {"pcm16": "pcm16", "g711_ulaw": "pcmu", "g711_alaw": "pcma"}


@dataclass(frozen=True)
class AudioFormat:
    """An audio format of the session: ``codec`` is pcm16, pcmu or pcma."""

    codec: str
    rate: int

    @property
    def bytes_per_ms(self) -> int:
        # PCM16 at 24 kHz is 48 bytes a millisecond; GPT-Live also takes PCM16 at 16 kHz (32)
        return _BYTES_PER_MS[self.codec] if self.rate in (8000, 24000) else self.rate * (2 if self.codec == "pcm16" else 1) // 1000

    def ms(self, nbytes: int) -> int:
        """Whole milliseconds of audio in nbytes."""
        return nbytes // self.bytes_per_ms

    def __str__(self) -> str:
        return f"{self.codec}/{self.rate}"


PCM16_24K = AudioFormat("pcm16", 24000)


def _format_from_ga(fmt) -> AudioFormat:
    if not isinstance(fmt, dict):
        return PCM16_24K
    codec = _GA_FORMATS.get(fmt.get("type"), "pcm16")
    return AudioFormat(codec, 24000 if codec == "pcm16" else 8000)


def _format_from_beta(name) -> AudioFormat:
    codec = _BETA_FORMATS.get(name, "pcm16")
    return AudioFormat(codec, 24000 if codec == "pcm16" else 8000)


@dataclass
class ItemAudio:
    """Audio received for one assistant item, per content index (bytes)."""

    item_id: str
    response_id: str | None = None
    received: dict[int, int] = field(default_factory=dict)
    truncated_ms: int | None = None

    def bytes(self, content_index: int = 0) -> int:
        return self.received.get(content_index, 0)


class RealtimeSession:
    """State of one Realtime conversation, driven by frames.

    ``receive(frame)`` parses a frame from the server, updates the state and
    returns the event. ``send(event)`` serialises a client event (or dict)
    to the frame to put on the socket, remembering ``session.update``.
    """

    # (__weakref__: a session can be referred to weakly, as before the slots)
    __slots__ = ("__weakref__", "config", "frames_in", "frames_out", "generation", "input_format", "items",
                 "last_session_update", "output_format", "refused", "response_id", "session_id", "speaking")

    def __init__(self, generation: str = "ga") -> None:
        if generation not in ("ga", "beta", "translation"):
            raise ValueError(f"generation must be 'ga', 'beta' or 'translation', not {generation!r}")
        self.generation = generation
        self.config: dict = {}
        self.session_id: str | None = None
        self.input_format: AudioFormat = PCM16_24K
        self.output_format: AudioFormat = PCM16_24K
        self.response_id: str | None = None
        self.items: dict[str, ItemAudio] = {}
        self.last_session_update: bytes | None = None
        self.speaking = False
        self.refused: str | None = None
        self.frames_in = 0
        self.frames_out = 0

    # -- inbound --------------------------------------------------------------------------
    def receive(self, frame: bytes | str):
        """Parse one server frame; raises ProtocolError for a malformed one
        (the session state is untouched then)."""
        if type(frame) is str:
            frame = frame.encode()
        delta = wire.scan_audio_delta(frame)
        if delta is None:
            event = events.parse(frame, generation=self.generation)
            if event.type in wire.AUDIO_DELTA_TYPES:
                # A legal delta the scanner declined (escapes, extra keys).
                event = wire.parse_audio_delta(frame)
                self._on_audio(event)
            else:
                self._on_event(event)
        else:
            event = delta
            self._on_audio(delta)
        self.frames_in += 1
        return event

    def _on_audio(self, ev) -> None:
        items = self.items
        item = items.get(ev.item_id)
        if item is None:
            if len(items) >= ITEMS_KEPT:
                del items[next(iter(items))]      # bounded: only recent items are ever truncated
            item = items[ev.item_id] = ItemAudio(ev.item_id, ev.response_id)
        index = ev.content_index or 0
        item.received[index] = item.received.get(index, 0) + ev.audio_length

    def _on_event(self, event) -> None:
        t = event.type
        if t in ("session.created", "session.updated"):
            session = event.to_dict().get("session") or {}
            self.config = session
            self.session_id = session.get("id", self.session_id)
            self._take_formats(session, default=PCM16_24K)
        elif t == "response.created":
            self.response_id = getattr(event.response, "id", None)
        elif t == "response.done":
            self.response_id = None
        elif t == "input_audio_buffer.speech_started":
            self.speaking = True
        elif t == "input_audio_buffer.speech_stopped":
            self.speaking = False
        elif t == "conversation.item.truncated":
            item = self.items.get(event.item_id)
            if item is not None:
                item.truncated_ms = event.audio_end_ms
        elif t == "conversation.item.deleted":
            self.items.pop(event.item_id, None)
        elif t == "error":
            err = event.error
            if getattr(err, "code", None) == "beta_api_shape_disabled":
                # The server closes with 4000 next; the client turns that into BetaShapeRefused.
                self.refused = getattr(err, "message", None) or "the server refuses the beta API shape"

    def _take_formats(self, session: dict, default: AudioFormat | None) -> None:
        """Formats named in a session object; absent ones become default (None: keep)."""
        if self.generation == "beta":
            found = (session.get("input_audio_format"), session.get("output_audio_format"))
            parse = _format_from_beta
        else:
            audio = session.get("audio") or {}
            found = ((audio.get("input") or {}).get("format"), (audio.get("output") or {}).get("format"))
            parse = _format_from_ga
        current = (self.input_format, self.output_format)
        self.input_format, self.output_format = (
            parse(f) if f is not None else (default or now) for f, now in zip(found, current))

    # -- what a bridge asks ----------------------------------------------------------------
    def audio_received_ms(self, item_id: str, content_index: int = 0) -> int:
        """Milliseconds of audio received for an item (in the output format)."""
        item = self.items.get(item_id)
        return self.output_format.ms(item.bytes(content_index)) if item else 0

    # -- outbound --------------------------------------------------------------------------
    def send(self, event) -> bytes:
        """The frame for a client event (event object or dict)."""
        body = event if isinstance(event, dict) else event.to_dict()
        frame = events.dumps(body)
        if body.get("type") == "session.update":
            self.last_session_update = frame
            # Until session.updated confirms it, count audio in the formats we asked for.
            session = body.get("session") or {}
            if type(session) is not dict:       # an object (ours, or a pydantic one): as sent
                session = orjson.loads(frame).get("session") or {}
            self._take_formats(session, default=None)
        self.frames_out += 1
        return frame

    def append_audio(self, audio, event_id: str | None = None) -> bytes:
        """``input_audio_buffer.append`` for raw audio in the input format."""
        self.frames_out += 1
        return wire.build_append(audio, event_id=event_id)

    def append_audio_b64(self, payload, event_id: str | None = None) -> bytes:
        """``input_audio_buffer.append`` around an already-base64 payload, spliced."""
        self.frames_out += 1
        return wire.build_append_b64(payload, event_id=event_id)

    def truncate(self, item_id: str, audio_end_ms: int, content_index: int = 0) -> bytes:
        """``conversation.item.truncate`` for item at audio_end_ms, clamped to
        the audio actually received (the server refuses more)."""
        end = max(0, min(int(audio_end_ms), self.audio_received_ms(item_id, content_index)))
        return self.send(events.conversation_item_truncate(item_id, content_index, end,
                                                           generation=self.generation))

