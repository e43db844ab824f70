"""Sans-I/O call logic between a carrier stream and a GPT-Live session.

:class:`LiveCall` is :class:`rtfast.bridge.call.Call` on GPT-Live
(``/v1/live/sessions``): the same carrier codecs, ledger, pacing and
counters, the same ``from_carrier`` / ``from_realtime`` / ``tick`` /
``wake_at`` interface (``from_realtime`` takes the GPT-Live socket's frames)::

    call = LiveCall(TwilioCodec(), model="gpt-live-1")
    on carrier frame:   act = call.from_carrier(data, binary, now_ms)   # the carrier's start gives session.start
    on live frame:      act = call.from_realtime(data, now_ms)
    at call.wake_at():  act = call.tick(now_ms)

What differs from Realtime, and why:

- **Start.** GPT-Live fixes the audio format in ``session.start`` (a
  ``session.update`` cannot change it), so ``session.start`` goes out when the
  carrier's start names its format, in that format: ``audio/pcmu`` or
  ``audio/pcma`` at 8 kHz for G.711 carriers (passthrough both ways: the
  payloads are never decoded), ``audio/pcm`` 24 kHz for PCM16 carriers
  (transcoded as on Realtime). Caller audio waits (bounded) until
  ``session.started``, as the protocol asks.
- **Audio.** Caller media becomes ``session.input_audio.append`` spliced from
  the carrier frame (``Media.append_live()``); ``session.output_audio.delta``
  is scanned in place (no dict) into the same pacer as Realtime: whole
  ``frame_ms`` chunks, each with its mark, at most ``lead_ms`` ahead of real time.
- **The model stopping.** No event ends a model turn or says it was
  interrupted: the audio just stops. So a *run* of model audio is what
  arrives without a gap of ``silence_ms``; when a run ends, its last partial
  chunk is padded with silence and leaves (nothing else is owed to the
  carrier). Runs stand in for Realtime's items in the ledger (``turn_1``, ...).
- **Interruption.** The model owns barge-in and stops sending; what the
  caller still hears is what the bridge holds: at most ``lead_ms`` at the
  carrier when the model streams at real time, more when it sent ahead of real
  time. The bridge drops that audio (the carrier's clear, then the queue) when
  a ``session.input_transcript.delta`` shows the model heard the caller speak
  *after* the queued audio began (its ``end_ms`` on the session timeline, which
  the bridge keeps as the input audio it sent), and the model is silent: it has
  sent nothing for ``silence_ms``, now or within ``silence_ms`` of the
  fragment. A model that keeps talking through the caller's words (it heard a
  "mm-hm") keeps playing. The transcript is the model's own word that it heard
  speech (line noise and echo do not make one), and it costs nothing per
  caller frame, which an energy detector in the bridge would.
"""

from __future__ import annotations

from rtfast import wire
from rtfast.bridge.call import Actions, BargeIn, Call, remember
from rtfast.bridge.carriers import Media, Start
from rtfast.errors import Base64Error, ProtocolError
from rtfast.live.session import LiveSession

__all__ = ["LiveCall"]

_LIVE_FORMATS = {"pcmu/8000": {"type": "audio/pcmu", "rate": 8000}, "pcma/8000": {"type": "audio/pcma", "rate": 8000},
                 "pcm16/24000": {"type": "audio/pcm", "rate": 24000}}
_INPUT_TRANSCRIPT = "session.input_transcript.delta"
_OUTPUT_TRANSCRIPT = "session.output_transcript.delta"
# Caller frames held until session.started (2 s of 20 ms frames; the newest kept).
_HELD_MAX = 100
_NEVER = float("-inf")


class LiveCall(Call):
    """The per-call logic of a carrier <-> GPT-Live bridge, sans I/O.

    ``model``, ``instructions``, ``voice`` and ``session`` (extra fields of
    the session object: ``delegation``, ``triggers``...) make the
    ``session.start``. ``mode``, ``startup_buffer_ms``, ``lead_ms``,
    ``frame_ms`` and ``quality`` are :class:`Call`'s. ``silence_ms``: the gap
    in the model's audio taken as the model having stopped (see the module's
    notes). There is no ``vad`` or ``transcription``: GPT-Live owns
    turn-taking and always transcribes.
    """

    __slots__ = ("_arm", "_held", "_last_delta", "_model", "_run_at", "_runs", "_started_sent",
                 "input_transcript_deltas", "output_transcript_deltas", "silence_ms")

    protocol = "live"

    def __init__(self, codec, *, mode: str = "passthrough", model: str = "gpt-live-1", instructions: str | None = None,
                 voice: str | None = None, session: dict | None = None, startup_buffer_ms: int = 60,
                 lead_ms: int = 100, frame_ms: int = 20, quality: str = "HQ-LL", silence_ms: int = 300,
                 generation: str = "live", vad=None, transcription=None) -> None:
        if generation != "live":
            raise ValueError(f"a LiveCall speaks GPT-Live (generation 'live'), not {generation!r}")
        if vad is not None or transcription is not None:
            raise ValueError("GPT-Live owns turn-taking and transcribes the caller itself: no vad or transcription")
        if silence_ms <= 0:
            raise ValueError(f"silence_ms must be positive, not {silence_ms}")
        self._model = model
        self.silence_ms = silence_ms
        self._started_sent = False       # session.start sent
        self._held: list | None = []     # caller appends until session.started (None once it came)
        self._last_delta = _NEVER        # when the latest output delta arrived (the call's clock)
        self._arm: float | None = None   # a heard caller: cut unless a delta arrives after this one
        self._runs = 0
        self._run_at: dict = {}          # run -> input timeline (ms) when its first audio arrived
        self.input_transcript_deltas = self.output_transcript_deltas = 0
        super().__init__(codec, mode=mode, generation="ga", instructions=instructions, voice=voice, vad=None,
                         startup_buffer_ms=startup_buffer_ms, lead_ms=lead_ms, frame_ms=frame_ms, session=session,
                         quality=quality)
        self.session = LiveSession()
        self.generation = "live"

    def _configure(self) -> None:
        super()._configure()
        self._append_of = Media.append_live
        # Caller audio is spliced once the session has started (held before that).
        self._splice = self._splice and self._held is None

    # -- session.start ----------------------------------------------------------------------------
    def session_update(self) -> bytes | None:
        """The ``session.start`` frame once the carrier's start fixed the format, else
        None (``from_carrier`` then returns it with the start); the name is
        :class:`Call`'s, for the asyncio layer."""
        if not self.codec.started or self._started_sent:
            return None
        return self._session_start()

    def _session_start(self) -> bytes:
        self._started_sent = True
        self._update_format = self.model_format
        self.frames_to_realtime += 1
        session = {"model": self._model}
        if self._instructions is not None:
            session["instructions"] = self._instructions
        audio = {"format": dict(_LIVE_FORMATS[self.model_format])}
        if self._voice:
            audio["output"] = {"voice": self._voice}
        session["audio"] = audio
        session.update(self._extra)
        return self.session.send({"type": "session.start", "session": session})

    def opening_frames(self) -> list:
        """What to send as the GPT-Live socket opens: ``session.start`` if the carrier has started."""
        frame = self.session_update()
        return [frame] if frame is not None else []

    def reconfigure(self, **kwargs) -> None:
        raise NotImplementedError("agents (per-call setup) do not run on GPT-Live yet")

    def realtime_reset(self) -> bytes:
        raise NotImplementedError("a GPT-Live call does not move to a new session yet")

    # -- carrier -> -------------------------------------------------------------------------------
    def _inbound(self, m, a: Actions) -> None:
        self.audio_bytes_in += m.audio_length
        if self.recorder is not None:
            self.recorder.caller(m.audio())
        if self._tin is None:
            frame = m.append_live()
        else:
            b64 = self._tin.feed_to_b64(m.audio()) if m.binary else self._tin.feed_b64_to_b64(m.payload)
            if not b64:
                return
            frame = wire.build_append_b64(b64, validate=False, generation="live")
        self.frames_to_realtime += 1
        held = self._held
        if held is None:
            a.to_realtime.append(frame)
            return
        held.append(frame)                       # the session has not started: the protocol says wait
        if len(held) > _HELD_MAX:
            del held[0]

    def _on_start(self, ev: Start, a: Actions) -> None:
        if ev.audio_format != self.carrier_format:
            self._configure()
        if not self._started_sent:
            a.to_realtime.append(self._session_start())
        a.events.append(ev)

    # -- live -> ----------------------------------------------------------------------------------
    def from_realtime(self, frame, now_ms: float | None = None) -> Actions:
        """Feed one frame from the GPT-Live socket; with ``now_ms``, audio that may
        leave now does (the clock also times the model's silences: pass it)."""
        a = Actions()
        self.frames_from_realtime += 1
        try:
            ev = self.session.receive(frame)
        except ProtocolError as exc:
            self.errors += 1
            a.events.append(exc)
            return a
        if now_ms is None:
            now_ms = self.last_ms if self.last_ms is not None else 0.0
        if type(ev) is wire.AudioDelta:
            self._take_delta(ev, frame, a, now_ms)
        else:
            t = ev.type
            if t == _INPUT_TRANSCRIPT:
                self.input_transcript_deltas += 1
                self._heard(ev, now_ms, a)
            elif t == _OUTPUT_TRANSCRIPT:
                self.output_transcript_deltas += 1
            elif t == "session.started":
                self._session_started(a)
            elif t == "error":
                self.errors += 1
            a.events.append(ev)
        self._pump(now_ms, a)
        return a

    def _take_delta(self, ev, frame, a: Actions, now_ms: float) -> None:
        # (also the model lane's step for a delta, rtfast._lane.ModelLane)
        try:
            self._on_delta_live(ev.audio(), now_ms)
        except Base64Error as exc:
            self.errors += 1
            a.events.append(ProtocolError(f"audio delta is not base64 ({exc})", frame))

    def _session_started(self, a: Actions) -> None:
        held, self._held = self._held, None
        if held:
            a.to_realtime.extend(held)
        self._splice = self._tin is None and not self.codec.reorders     # the splice path opens

    def _on_delta_live(self, audio: bytes, now: float) -> None:
        self._last_delta = now
        if self._receiving is None:
            # A new run of model audio: it stands in for an item in the ledger.
            self._runs += 1
            item = f"turn_{self._runs}"
            remember(self._run_at, item, self.audio_bytes_in // self.codec.bytes_per_ms)
            self._receiving = (item, 0)
            self._rseg = [item, 0, 0]
            self._segments.append(self._rseg)
        elif not self._segments or self._segments[-1] is not self._rseg:
            self._segments.append(self._rseg)      # all of it had been sent: it queues again
        if self._tout is not None:
            audio = self._tout.feed(audio)
        self._pending += audio
        self._rseg[2] += len(audio)

    # -- the model stopping, the caller heard ------------------------------------------------------
    def _outstanding(self, now: float) -> str | None:
        """The oldest run the caller has not finished hearing, or None."""
        if self._ledger and self._play_end > now:
            return self._ledger[0][1]
        if self._segments:
            return self._segments[0][0]
        if self._receiving is not None and self._pending:
            return self._receiving[0]
        return None

    def _heard(self, ev, now: float, a: Actions) -> None:
        run = self._outstanding(now)
        if run is None:
            return
        end = getattr(ev, "end_ms", None)
        if isinstance(end, int) and end <= self._run_at.get(run, 0):
            return                   # speech from before that audio began: what the model answers
        if now - self._last_delta >= self.silence_ms:
            self._cut(now, a)        # the model had already stopped
        else:
            self._arm = self._last_delta     # cut if the model stops now (checked by tick)

    def _cut(self, now: float, a: Actions) -> None:
        """The caller spoke and the model stopped: what the bridge still holds is stale."""
        self._arm = None
        run = self._outstanding(now)
        if run is None:
            return
        self.barge_ins += 1
        cleared = bool(self._ledger) or self._play_end > now
        if cleared:
            a.to_carrier.append(self.codec.clear())
            self.frames_to_carrier += 1
        played = self.played_ms.get(run, 0)
        received = self.sent_ms.get(run, 0) + sum(s[2] for s in self._segments if s[0] == run) // self.codec.bytes_per_ms
        a.events.append(BargeIn(run, "clear", played, played, received, False, cleared))
        if self.recorder is not None:
            self.recorder.cut(now)
        self._gen += 1                # marks the clear flushes back are not "played"
        self._ledger.clear()
        self._pending.clear()
        self._segments.clear()
        self._receiving = None
        self._play_end = _NEVER
        if self._tout is not None:
            self._tout.reset()

    def tick(self, now_ms: float) -> Actions:
        a = Actions()
        if self._arm is not None:
            if self._last_delta != self._arm:
                self._arm = None                      # the model kept talking: it did not yield
            elif now_ms - self._last_delta >= self.silence_ms:
                self._cut(now_ms, a)
        if self._receiving is not None and now_ms - self._last_delta >= self.silence_ms:
            self._finish_item()                       # the run ended: its last chunk leaves, padded
        self._pump(now_ms, a)
        return a

    def wake_at(self, now_ms: float) -> float | None:
        # Call's, inlined (the pacer asks every tick), and the end of the model's silence
        # when a run is open or a cut armed.
        watch = self._receiving is not None or self._arm is not None
        if len(self._pending) >= self._chunk:
            due = max(now_ms, self._play_end + self._refill_ms - self.lead_ms)
            return min(due, self._last_delta + self.silence_ms) if watch else due
        return self._last_delta + self.silence_ms if watch else None

    def summary(self, now_ms: float | None = None) -> dict:
        s = super().summary(now_ms)
        s["protocol"] = "live"
        s["input_transcript_deltas"] = self.input_transcript_deltas
        s["output_transcript_deltas"] = self.output_transcript_deltas
        return s
