"""Sans-I/O call logic between a carrier stream and a Realtime session.

A :class:`Call` owns a :class:`~rtfast.session.RealtimeSession` and a carrier
codec and holds everything a phone bridge decides; an asyncio layer only moves
bytes::

    call = Call(TwilioCodec())
    realtime_ws.send(call.session_update())            # before the carrier's start if you like
    on carrier frame:   act = call.from_carrier(data, binary)
    on realtime frame:  act = call.from_realtime(data, now_ms)
    every ~frame_ms:    act = call.tick(now_ms)         # pacing of outbound audio
    then send act.to_carrier / act.to_realtime, look at act.events, close both if act.hangup

Audio paths:

- **passthrough** (the default, when the carrier speaks G.711): the carrier's
  base64 payload is spliced into ``input_audio_buffer.append`` without
  decoding; the model's deltas (same codec) are decoded once into a byte FIFO
  and leave re-framed in whole ``frame_ms`` chunks, base64 written straight
  into the carrier's template.
- **transcode** (PCM16 24 kHz to the model; always for PCM16 carriers, Vonage
  and Exotel, and whenever asked): one stateful :class:`~rtfast.transcode.Transcoder`
  per direction.

Playback ledger and barge-in: every outbound chunk is followed by the
carrier's mark (``mark`` / ``checkpoint`` / ``notify``) named
``"<generation>.<seq>"``; an echoed mark of the current generation counts the
chunks before it as played (ms per item). On
``input_audio_buffer.speech_started`` while assistant audio is in flight, the
call sends the carrier's clear first, then ``response.cancel`` if a response
is active, then truncates the playing item at ``min(played, received)`` ms,
or deletes it (``conversation.item.delete``) when none of it has played;
the generation moves on so marks the clear flushes back are not counted, and
late deltas of the interrupted response or items are dropped.

Pacing: outbound audio leaves in whole chunks, at most ``lead_ms`` ahead of
real time (``tick(now_ms)``), never a whole response at once, after a
start-up buffer of ``startup_buffer_ms`` when playback starts from idle.
Times are the caller's monotonic clock in milliseconds.
"""

from __future__ import annotations

from collections import deque

from rtfast import _pace, events, wire
from rtfast.bridge.carriers import Mark, Media, Start, Stop
from rtfast.bridge.carriers._base import JsonCodec
from rtfast.errors import Base64Error, ProtocolError
from rtfast.session import ITEMS_KEPT, RealtimeSession
from rtfast.transcode import Transcoder

__all__ = ["Call", "Actions", "BargeIn", "CallEnded"]

_SILENCE = {"pcmu/8000": b"\xff", "pcma/8000": b"\xd5"}     # PCM16: b"\0"
_G711 = {"pcmu/8000": "pcmu", "pcma/8000": "pcma"}
_MODEL_PCM = "pcm16/24000"
_SPEECH_STARTED = "input_audio_buffer.speech_started"
_AUDIO_DONE = ("response.output_audio.done", "response.audio.done")


# Chunks awaiting their mark, at most (10 s of 20 ms chunks). A carrier echoes
# a mark within the lead plus a round trip (a handful of chunks); one that
# never does (a one-way stream) must not grow the ledger, nor the cyclic GC's
# walk over every call's ledger (at 300 calls, 10 minutes' worth each made a
# full collection take seconds).
_LEDGER_MAX = 500

_NOTHING = ()       # the empty to_carrier / events of the hot path (no list to allocate)

# A JSON carrier's media and mark methods: the compiled pacing loop builds theirs from templates.
_JSON_MEDIA, _JSON_MARK = JsonCodec.media, JsonCodec.mark


def remember(d: dict, key, value=None) -> None:
    """d[key] = value, forgetting the oldest key beyond ITEMS_KEPT: a call of
    hours keeps a bounded memory; barge-in only ever needs the recent items."""
    if key not in d and len(d) >= ITEMS_KEPT:
        del d[next(iter(d))]
    d[key] = value


class Actions:
    """What to do after feeding a Call.

    Read them; do not append to them (an empty field may be a shared empty tuple).
    ``to_carrier``: frames for the carrier socket, in order: ``bytes`` is a
    text frame, a tuple ``(2, bytes)`` a binary frame (Vonage audio; 2 is the
    websocket opcode, as ``rtfast.websocket.WebSocket.send_many`` takes it).
    ``to_realtime``: text frames for the Realtime socket. ``events``: what to
    surface (carrier Start/Dtmf/Stop/..., Realtime events other than audio
    deltas, :class:`BargeIn`, :class:`CallEnded`, and ProtocolError instances
    for frames that could not be parsed). ``hangup``: the call is over; close
    the Realtime socket cleanly (and the carrier's if still open).
    """

    __slots__ = ("to_carrier", "to_realtime", "events", "hangup")

    def __init__(self) -> None:
        self.to_carrier: list = []
        self.to_realtime: list[bytes] = []
        self.events: list = []
        self.hangup = False

    def __bool__(self) -> bool:
        return bool(self.to_carrier or self.to_realtime or self.events or self.hangup)

    def __repr__(self) -> str:
        return (f"Actions(to_carrier={len(self.to_carrier)}, to_realtime={len(self.to_realtime)}, "
                f"events={self.events!r}, hangup={self.hangup})")


_new_actions = object.__new__
_NO_ACTIONS = _new_actions(Actions)     # read-only, shared: an echoed mark asks for nothing
_NO_ACTIONS.to_carrier = _NO_ACTIONS.to_realtime = _NO_ACTIONS.events = _NOTHING
_NO_ACTIONS.hangup = False


class BargeIn:
    """The caller spoke over the assistant: what the call did about it.

    ``action`` is ``"truncate"`` (at ``audio_end_ms``), ``"delete"`` (nothing
    had played) or None (all of it had played) for ``item_id``; ``cancelled``
    says whether a ``response.cancel`` was sent; ``cleared`` whether the
    carrier's playback was cleared.
    """

    __slots__ = ("item_id", "action", "audio_end_ms", "played_ms", "received_ms", "cancelled", "cleared")

    def __init__(self, item_id, action, audio_end_ms, played_ms, received_ms, cancelled, cleared):
        self.item_id, self.action, self.audio_end_ms = item_id, action, audio_end_ms
        self.played_ms, self.received_ms, self.cancelled, self.cleared = played_ms, received_ms, cancelled, cleared

    def __repr__(self) -> str:
        return (f"BargeIn(item_id={self.item_id!r}, action={self.action!r}, audio_end_ms={self.audio_end_ms}, "
                f"played_ms={self.played_ms}, received_ms={self.received_ms}, cancelled={self.cancelled})")


class CallEnded:
    """The call is over; ``reason`` is ``"stop"`` (the carrier's stop message)
    or ``"carrier_closed"``."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"CallEnded({self.reason!r})"


class Call:
    """The per-call logic of a carrier <-> Realtime bridge, sans I/O.

    ``codec``: a carrier codec (``rtfast.bridge.carriers.TwilioCodec()``...), fresh.
    ``mode``: ``"passthrough"`` (G.711 end to end when the carrier speaks it;
    PCM16 carriers transcode anyway, see ``effective_mode``) or
    ``"transcode"`` (PCM16 24 kHz to the model). ``generation``: ``"ga"`` or
    ``"beta"``. ``instructions``, ``voice``, ``vad`` (``"server_vad"``,
    ``"semantic_vad"``, None) and ``session`` (extra session fields) go into
    the ``session.update``. ``frame_ms``: audio per outbound message (rounded
    up to the carrier's rule: Exotel needs >= 3.2 KB); ``lead_ms``: how far
    ahead of real time outbound audio may be (at least two messages);
    ``startup_buffer_ms``: audio gathered before playback starts from idle.
    ``transcription``: the model transcribing the caller (user transcripts), or None.
    """

    # Slots: the lanes and the per-message Python read these a few hundred times a second per call;
    # a slot is one load where an instance dict is a hash lookup, and leaves no per-call dict for the
    # collector to walk. __dict__ stays for what a test or a user patches onto one call, __weakref__
    # for an application that refers to calls weakly (as it could before the slots).
    __slots__ = ("__dict__", "__weakref__", "_append_of", "_chunk", "_cut_items", "_cut_responses", "_extra",
                 "_frame_ms", "_generation", "_instructions", "_lead_ms", "_ledger", "_mark_prefix", "_parse",
                 "_pending", "_play_end", "_quality", "_receiving", "_refill_ms", "_rseg", "_segments", "_seq",
                 "_silence", "_splice", "_startup_bytes", "_tin", "_tout", "_transcription", "_update_format", "_vad",
                 "_voice", "audio_bytes_in", "audio_bytes_out", "barge_ins", "carrier_format", "chunk_ms", "codec",
                 "effective_mode", "ended", "ended_ms", "errors", "first_ms", "frames_from_carrier",
                 "frames_from_realtime", "frames_to_carrier", "frames_to_realtime", "generation", "last_ms",
                 "late_deltas", "lead_ms", "mode", "model_format", "played_ms", "recorder", "sent_ms", "session",
                 "stale_marks", "startup_buffer_ms")

    def __init__(self, codec, *, mode: str = "passthrough", generation: str = "ga", instructions: str | None = None,
                 voice: str | None = None, vad: str | None = "server_vad", startup_buffer_ms: int = 60,
                 lead_ms: int = 100, frame_ms: int = 20, session: dict | None = None, quality: str = "HQ-LL",
                 transcription: str | None = None) -> None:
        if mode not in ("passthrough", "transcode"):
            raise ValueError(f"mode must be 'passthrough' or 'transcode', not {mode!r}")
        if generation not in ("ga", "beta"):
            raise ValueError(f"generation must be 'ga' or 'beta', not {generation!r}")
        if frame_ms <= 0 or frame_ms % 20:
            raise ValueError(f"frame_ms must be a positive multiple of 20, not {frame_ms}")
        self.codec = codec
        self.mode = mode
        self.session = RealtimeSession(generation)
        self.generation = generation
        self._instructions, self._voice, self._vad, self._extra = instructions, voice, vad, dict(session or {})
        self._transcription = transcription
        #: An opt-in recorder (rtfast.bridge.recording.Recorder): None costs the hot path one test.
        self.recorder = None
        self._quality = quality
        self._frame_ms, self._lead_ms, self.startup_buffer_ms = frame_ms, lead_ms, startup_buffer_ms
        self._update_format: str | None = None    # model format of the last session.update sent
        # outbound playback
        self._pending = bytearray()               # carrier-format audio not yet sent
        self._segments: deque = deque()           # [item_id, content_index, bytes] of _pending, in order
        self._receiving: tuple | None = None      # (item_id, content_index) deltas are arriving for
        self._rseg: list | None = None            # its segment
        self._ledger: deque = deque()             # (seq, item_id, content_index, item ms sent after it, mark name)
        self._gen = 0                             # playback generation (bumped by each clear)
        self._seq = 0
        self._play_end = float("-inf")            # when all audio sent so far will have played
        self.played_ms: dict[str, int] = {}       # per item: ms the carrier confirmed played
        self.sent_ms: dict[str, int] = {}         # per item: ms sent to the carrier
        self._cut_responses: dict = {}           # ordered sets (dicts), bounded by remember()
        self._cut_items: dict = {}
        # counters for the summary
        self.frames_from_carrier = self.frames_to_carrier = 0
        self.frames_from_realtime = self.frames_to_realtime = 0
        self.audio_bytes_in = self.audio_bytes_out = 0
        self.barge_ins = self.late_deltas = self.stale_marks = self.errors = 0
        self.first_ms: float | None = None       # the first clock fed (the call's start)
        self.last_ms: float | None = None        # the latest clock fed
        self.ended_ms: float | None = None       # the clock when the call ended
        self.ended: str | None = None
        self._configure()

    # -- formats ---------------------------------------------------------------------------
    def _configure(self) -> None:
        """(Re)derive the audio paths from the carrier's format (at init and at start)."""
        c = self.codec
        fmt = c.audio_format
        self.carrier_format = fmt
        self.effective_mode = "passthrough" if self.mode == "passthrough" and fmt in _G711 else "transcode"
        self.model_format = fmt if self.effective_mode == "passthrough" else _MODEL_PCM
        if self.effective_mode == "transcode":
            self._tin = Transcoder(fmt, _MODEL_PCM, quality=self._quality)
            self._tout = Transcoder(_MODEL_PCM, fmt, quality=self._quality)
        else:
            self._tin = self._tout = None
        self._parse = c.feed          # parse(), but a plain echoed mark is its name (a str)
        self._splice = self._tin is None and not c.reorders
        # How a spliced media frame becomes the model's append (a LiveCall's is
        # session.input_audio.append): an attribute, so one from_carrier serves both.
        self._append_of = Media.append
        self._silence = _SILENCE.get(fmt, b"\x00")
        self._chunk = c.chunk_bytes(self._frame_ms)
        self.chunk_ms = self._chunk // c.bytes_per_ms
        self.lead_ms = max(self._lead_ms, 2 * self.chunk_ms)
        # wake_at tops up two chunks at a time when the lead leaves room for it:
        # half the carrier writes (a syscall each, the bridge's main cost), while
        # playback stays at least lead - 2 chunks ahead.
        self._refill_ms = 2 * self.chunk_ms if self.lead_ms >= 4 * self.chunk_ms else self.chunk_ms
        self._startup_bytes = self.startup_buffer_ms * c.bytes_per_ms

    def session_update(self) -> bytes:
        """The ``session.update`` frame for the current formats: the first
        frame to send on the Realtime socket (may go before the carrier's start;
        if start then changes the format, ``from_carrier`` emits a corrective one)."""
        self._update_format = self.model_format
        self.frames_to_realtime += 1
        if self.effective_mode == "passthrough":
            codec = _G711[self.model_format]
            event = events.session_update_g711(self.generation, codec, self._vad, self._instructions, self._voice,
                                               **self._extra)
            body = event.to_dict()
            self._add_transcription(body["session"])
            return self.session.send(body)
        turn = {"type": self._vad} if self._vad else None
        if self.generation == "ga":
            fmt = {"type": "audio/pcm", "rate": 24000}
            out = {"format": fmt}
            if self._voice:
                out["voice"] = self._voice
            session = {"type": "realtime", "audio": {"input": {"format": fmt, "turn_detection": turn}, "output": out}}
        else:
            session = {"input_audio_format": "pcm16", "output_audio_format": "pcm16", "turn_detection": turn}
            if self._voice:
                session["voice"] = self._voice
        if self._instructions is not None:
            session["instructions"] = self._instructions
        session.update(self._extra)
        self._add_transcription(session)
        return self.session.send({"type": "session.update", "session": session})

    def _add_transcription(self, session: dict) -> None:
        if self._transcription is None:
            return
        spec = {"model": self._transcription}
        if self.generation == "ga":
            session.setdefault("audio", {}).setdefault("input", {})["transcription"] = spec
        else:
            session["input_audio_transcription"] = spec

    def reconfigure(self, *, instructions: str | None = None, voice: str | None = None, vad: str | None = "server_vad",
                    transcription: str | None = None, session: dict | None = None, mode: str | None = None) -> None:
        """Per-call settings chosen after the call started (an application's
        setup), before :meth:`session_update` is sent."""
        self._instructions, self._voice, self._vad = instructions, voice, vad
        self._transcription, self._extra = transcription, dict(session or {})
        if mode is not None and mode != self.mode:
            if mode not in ("passthrough", "transcode"):
                raise ValueError(f"mode must be 'passthrough' or 'transcode', not {mode!r}")
            self.mode = mode
            self._configure()

    def realtime_reset(self) -> bytes:
        """A new Realtime session replaces the old one (a reconnect): forget the
        old session's response and items (audio already queued for the caller
        keeps playing) and return the
        ``session.update`` that must open the new one."""
        self._finish_item()                       # a reply cut mid-stream: what arrived still plays
        # The new session knows none of the old items: a barge-in over their
        # audio still clears the carrier, and finds nothing to truncate there.
        self.session = RealtimeSession(self.generation)
        return self.session_update()

    @property
    def playing_until(self) -> float:
        """When the audio sent so far will have played (ms, the tick clock)."""
        return self._play_end

    # -- carrier -> ------------------------------------------------------------------------
    def from_carrier(self, frame, binary: bool = False, now_ms: float | None = None) -> Actions:
        """Feed one frame from the carrier socket (``binary``: it was a binary frame).

        ``now_ms``: the clock, which times the call (its start and its stop);
        media and marks do not read it (no per-frame work for the summary)."""
        self.frames_from_carrier += 1
        try:
            ev = self._parse(frame, binary)
        except ProtocolError as exc:
            self.errors += 1
            a = Actions()
            a.events.append(exc)
            return a
        if type(ev) is Media and self._splice:
            # The hot path: caller audio spliced into one append frame.
            a = _new_actions(Actions)
            a.to_carrier = a.events = _NOTHING
            a.hangup = False
            if ev.inbound:
                self.audio_bytes_in += ev.audio_length
                self.frames_to_realtime += 1
                a.to_realtime = [self._append_of(ev)]
                if self.recorder is not None:
                    self.recorder.caller_b64(ev.payload)
            else:
                a.to_realtime = []
            return a
        if type(ev) is str:                  # half the inbound frames while the model speaks
            self._on_mark(ev)
            return _NO_ACTIONS
        if type(ev) is Mark:                 # one the scanner left to orjson, or a codec's own
            self._on_mark(ev.name)
            return _NO_ACTIONS
        if now_ms is not None:
            self._clock(now_ms)
        a = Actions()
        if type(ev) is Media:
            if ev.inbound:
                if self.codec.reorders:
                    for m in self.codec.order(ev):
                        self._inbound(m, a)
                else:
                    self._inbound(ev, a)
        elif type(ev) is Start:
            self._on_start(ev, a)
        elif type(ev) is Stop:
            if self.codec.reorders:
                for m in self.codec.flush_order():
                    self._inbound(m, a)
            self._end("stop", a)
            a.events.append(ev)
        else:
            a.events.append(ev)
        return a

    def _inbound(self, m, a: Actions) -> None:
        self.audio_bytes_in += m.audio_length
        if self.recorder is not None:
            self.recorder.caller(m.audio())
        if self._tin is None:
            a.to_realtime.append(m.append())
        else:
            b64 = self._tin.feed_to_b64(m.audio()) if m.binary else self._tin.feed_b64_to_b64(m.payload)
            if not b64:
                return
            a.to_realtime.append(wire.build_append_b64(b64, validate=False))
        self.frames_to_realtime += 1

    def _on_start(self, ev: Start, a: Actions) -> None:
        if ev.audio_format != self.carrier_format:
            self._configure()
            if self._update_format is not None and self._update_format != self.model_format:
                a.to_realtime.append(self.session_update())
        a.events.append(ev)

    @property
    def _gen(self) -> int:
        return self._generation

    @_gen.setter
    def _gen(self, gen: int) -> None:
        # Marks are named "<generation>.<seq>": the prefix a current one starts with,
        # made once per clear rather than once per echoed mark.
        self._generation = gen
        self._mark_prefix = f"{gen}."

    def _on_mark(self, name: str) -> None:
        ledger, played = self._ledger, self.played_ms
        if ledger and ledger[0][4] == name:
            # The usual echo: the oldest chunk's own mark (the ledger holds the current
            # generation only), so no parse of the name.
            _, item, _, ms, _ = ledger.popleft()
            if ms > played.get(item, 0):
                remember(played, item, ms)
            return
        prefix = self._mark_prefix
        seq = name[len(prefix):]
        # isascii: str.isdigit() takes other scripts' digits too, which int() reads or refuses
        if not (name.startswith(prefix) and seq.isdigit() and seq.isascii()):
            self.stale_marks += 1          # flushed back by a clear, or not ours
            return
        seq = int(seq)
        while ledger and ledger[0][0] <= seq:
            _, item, _, ms, _ = ledger.popleft()
            if ms > played.get(item, 0):
                remember(played, item, ms)

    def carrier_closed(self, now_ms: float | None = None) -> Actions:
        """The carrier socket closed (Vonage ends calls so): the call is over."""
        if now_ms is not None:
            self._clock(now_ms)
        a = Actions()
        self._end("carrier_closed", a)
        return a

    def _end(self, reason: str, a: Actions) -> None:
        if self.ended is None:
            self.ended = reason
            self.ended_ms = self.last_ms
            a.events.append(CallEnded(reason))
        a.hangup = True

    # -- realtime -> -----------------------------------------------------------------------
    def from_realtime(self, frame, now_ms: float | None = None) -> Actions:
        """Feed one frame from the Realtime socket; with ``now_ms``, audio that
        may leave now does (otherwise it waits for the next ``tick``)."""
        a = Actions()
        self.frames_from_realtime += 1
        try:
            ev = self.session.receive(frame)
        except ProtocolError as exc:
            self.errors += 1
            a.events.append(exc)
            return a
        if type(ev) is wire.AudioDelta:
            self._take_delta(ev, frame, a, now_ms)
        else:
            t = ev.type
            if t == _SPEECH_STARTED:
                self._barge_in(a)
                if self.recorder is not None and now_ms is not None:
                    self.recorder.cut(now_ms)           # what the clear flushed never played
            elif t in _AUDIO_DONE or t == "response.done":
                self._finish_item()
            a.events.append(ev)
        if now_ms is not None:
            self._pump(now_ms, a)
        return a

    def _take_delta(self, ev, frame, a: Actions, now_ms: float | None) -> None:
        # (also the model lane's step for a delta, rtfast._lane.ModelLane)
        try:
            self._on_delta(ev)
        except Base64Error as exc:
            self.errors += 1
            a.events.append(ProtocolError(f"audio delta is not base64 ({exc})", frame))

    def _on_delta(self, ev) -> None:
        if ev.response_id in self._cut_responses or ev.item_id in self._cut_items:
            self.late_deltas += 1
            return
        audio = ev.audio()
        key = (ev.item_id, ev.content_index or 0)
        if key != self._receiving:
            self._finish_item()
            self._receiving = key
            self._rseg = [key[0], key[1], 0]
            self._segments.append(self._rseg)
        elif not self._segments or self._segments[-1] is not self._rseg:
            self._segments.append(self._rseg)      # all of it had been sent: it queues again
        if self._tout is not None:
            audio = self._tout.feed(audio)
        self._pending += audio
        self._rseg[2] += len(audio)

    def _finish_item(self) -> None:
        """The item's audio is complete: flush the resampler and pad to a whole chunk."""
        if self._receiving is None:
            return
        self._receiving = None
        seg = self._rseg
        queued = bool(self._segments) and self._segments[-1] is seg
        if self._tout is not None:
            tail = self._tout.flush()
            self._pending += tail
            seg[2] += len(tail)
        # Chunks leave whole, so what remains of the item is its length modulo a chunk.
        pad = -seg[2] % self._chunk
        if pad:
            self._pending += self._silence * pad
            seg[2] += pad
        if seg[2] and not queued:
            self._segments.append(seg)
        elif not seg[2] and queued:
            self._segments.pop()

    # -- barge-in --------------------------------------------------------------------------
    def _barge_in(self, a: Actions) -> None:
        response = self.session.response_id
        # Items with audio in flight, in play order: sent (unconfirmed), pending, arriving.
        items = [(e[1], e[2]) for e in self._ledger] + [(s[0], s[1]) for s in self._segments]
        if self._receiving is not None:
            items.append(self._receiving)
        items = list(dict.fromkeys(items))
        if not items and response is None:
            return
        self.barge_ins += 1
        cleared = bool(self._ledger)
        if cleared:
            a.to_carrier.append(self.codec.clear())
            self.frames_to_carrier += 1
        if response is not None:
            a.to_realtime.append(self.session.send({"type": "response.cancel"}))
            self.frames_to_realtime += 1
            remember(self._cut_responses, response)
        for item_id, index in items:
            remember(self._cut_items, item_id)
            played = self.played_ms.get(item_id, 0)
            received = self.session.audio_received_ms(item_id, index)
            streaming = self._receiving is not None and self._receiving[0] == item_id
            if played >= received and not streaming:
                action, end = None, received          # heard in full: nothing to cut
            elif played > 0:
                action, end = "truncate", min(played, received)
                a.to_realtime.append(self.session.truncate(item_id, end, index))
            else:
                action, end = "delete", 0
                a.to_realtime.append(self.session.send({"type": "conversation.item.delete", "item_id": item_id}))
            if action:
                self.frames_to_realtime += 1
            a.events.append(BargeIn(item_id, action, end, played, received, response is not None, cleared))
        if not items:
            a.events.append(BargeIn(None, None, 0, 0, 0, True, cleared))
        # A new playback generation: whatever the clear flushes back is not "played".
        self._gen += 1
        self._ledger.clear()
        self._pending.clear()
        self._segments.clear()
        self._receiving = None
        self._play_end = float("-inf")
        if self._tout is not None:
            self._tout.reset()

    # -- pacing ----------------------------------------------------------------------------
    def tick(self, now_ms: float) -> Actions:
        """Let the outbound audio that may leave by ``now_ms`` leave (call it
        every ``frame_ms`` or at :meth:`wake_at`)."""
        a = Actions()
        self._pump(now_ms, a)
        return a

    def wake_at(self, now_ms: float) -> float | None:
        """When to call :meth:`tick` next (ms), or None if no chunk is waiting."""
        if len(self._pending) < self._chunk:
            return None
        return max(now_ms, self._play_end + self._refill_ms - self.lead_ms)

    def _clock(self, now: float) -> None:
        if self.first_ms is None:
            self.first_ms = now
        self.last_ms = now

    def _pump(self, now: float, a: Actions) -> None:
        if self.first_ms is None:
            self.first_ms = now
        self.last_ms = now
        chunk, pending = self._chunk, self._pending
        if len(pending) < chunk or not self.codec.started:
            return
        codec = self.codec
        # The loop is compiled (rtfast._pace); a JSON carrier's media and marks are
        # built there from its templates, any other carrier's through its methods.
        json_media = type(codec).media is _JSON_MEDIA         # (a started one has its _head)
        self._play_end, self._seq, n = _pace.pump(
            pending, chunk, now, self._play_end, self._seq, self._gen, self.chunk_ms, self.lead_ms,
            self._startup_bytes, self._receiving is not None, self._segments, self._ledger, _LEDGER_MAX,
            self.sent_ms, remember, a.to_carrier, codec._head if json_media else None,
            codec._TAIL if json_media else None, codec.media, codec.binary_media,
            codec._mark_head if type(codec).mark is _JSON_MARK else None, codec.mark, self.recorder)
        self.frames_to_carrier += 2 * n
        self.audio_bytes_out += n * chunk

    # -- summary ---------------------------------------------------------------------------
    @property
    def buffered_ms(self) -> int:
        """Audio waiting to be sent to the carrier (ms)."""
        return len(self._pending) // self.codec.bytes_per_ms

    def duration_ms(self, now_ms: float | None = None) -> float:
        """How long the call has lasted by the clock it was fed: from the first
        clock to the end of the call (a Stop, or the carrier closing), or while it
        goes on to ``now_ms`` (default: the latest clock fed). 0 before any clock."""
        if self.first_ms is None:
            return 0
        if self.ended is not None and self.ended_ms is not None:
            end = self.ended_ms
        else:
            end = self.last_ms if now_ms is None else now_ms
        return end - self.first_ms

    def summary(self, now_ms: float | None = None) -> dict:
        """Per-call counters: frames and audio bytes each way, barge-ins, errors,
        the call's duration (see :meth:`duration_ms`) and the audio each way in
        ms (by the carrier's format)."""
        bpm = self.codec.bytes_per_ms
        return {
            "carrier": self.codec.name, "mode": self.effective_mode, "carrier_format": self.carrier_format,
            "frames_from_carrier": self.frames_from_carrier, "frames_to_carrier": self.frames_to_carrier,
            "frames_from_realtime": self.frames_from_realtime, "frames_to_realtime": self.frames_to_realtime,
            "audio_bytes_in": self.audio_bytes_in, "audio_bytes_out": self.audio_bytes_out,
            "barge_ins": self.barge_ins, "late_deltas": self.late_deltas, "stale_marks": self.stale_marks,
            "errors": self.errors, "ended": self.ended,
            "duration_ms": self.duration_ms(now_ms),
            "audio_ms_from_carrier": self.audio_bytes_in // bpm, "audio_ms_to_carrier": self.audio_bytes_out // bpm,
        }
