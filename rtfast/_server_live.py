"""One GPT-Live websocket of :mod:`rtfast.server` (``/v1/live/sessions``).

The protocol as the server plays it: the first client event must be ``session.start``
(answered by ``session.started`` with the resolved session); then audio flows both ways and
the stand-in model owns the turns. An energy VAD (the Realtime server's) finds the user's
speech; when it ends, the user's transcript goes out (``session.input_transcript.delta``) and
the model answers from the :class:`Script`: a tone in the session's format
(``session.output_audio.delta``, no dicts) with its words as ``session.output_transcript.delta``.
Speech that starts while the model talks interrupts it (barge-in: the audio stops mid-reply, as
GPT-Live does; no event announces it). With ``delegation: {"type": "client"}``, a script reply
that is a function call becomes ``session.delegation.created``; the client answers with
``session.commentary.append`` (or ``instructions``/``thinking``) naming the delegation, and the
model then speaks the script's answer. Refused commands get an ``error`` event (the API's
``Error`` shape, ``client_event_id`` carried) and the connection stays open.

A sideband (``/v1/live/sessions/{id}/attach``, :class:`SidebandConnection`) sees the session's
server events, with the audio reflected as the API does (mono PCM16 24 kHz: input as
``session.input_audio.append`` server events, output deltas with ``start_ms``/``end_ms``), and
its commands act on the session (answering a delegation from a backend, say). A fork
(``/v1/live/sessions/{id}/fork``) of a session started with ``store: true`` is a new session
whose ``session.start`` carries overrides only: the model, instructions and conversation are
the stored session's.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from rtfast import b64
from rtfast._server_conn import _Connection, _field, next_client_event
from rtfast._server_session import (ClientError, EnergyVad, Reply, Script, ServerSession, UserInput, decode_audio,
                                    tone)
from rtfast.errors import Base64Error

if TYPE_CHECKING:
    from rtfast.server import RealtimeServer

_SESSION_KEYS = ("model", "audio", "client", "delegation", "input", "instructions", "safety_identifier", "store",
                 "triggers")
_UPDATE_KEYS = ("delegation", "triggers")
_FORK_KEYS = ("audio", "client", "delegation", "store")
_FORMATS = {"audio/pcmu": "pcmu", "audio/pcma": "pcma", "audio/pcm": "pcm"}
_VOICES = ("marin", "cedar", "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse")


def live_format(fmt: Any) -> tuple[str, int]:
    """(codec, rate) of an ``audio.format`` object; ClientError for what the API refuses."""
    if fmt is None:
        return "pcm", 24000
    if not isinstance(fmt, dict):
        raise ClientError("invalid_type", "Invalid type for 'session.audio.format': expected an object.",
                          "session.audio.format")
    for key in fmt:
        if key not in ("type", "rate"):
            raise ClientError("unknown_parameter", f"Unknown parameter: 'session.audio.format.{key}'.",
                              f"session.audio.format.{key}")
    codec = _FORMATS.get(fmt.get("type"))
    if codec is None:
        raise ClientError("invalid_value", f"Invalid value: {fmt.get('type')!r}. Supported values are: "
                          "'audio/pcm', 'audio/pcmu', and 'audio/pcma'.", "session.audio.format.type")
    allowed = (16000, 24000) if codec == "pcm" else (8000,)
    rate = fmt.get("rate", allowed[-1])
    if rate not in allowed:
        raise ClientError("invalid_value", f"Invalid value: {rate!r}. Supported values are: "
                          + ", ".join(map(str, allowed)) + ".", "session.audio.format.rate")
    return codec, rate


def _bytes_per_ms(codec: str, rate: int) -> int:
    return rate // 500 if codec == "pcm" else rate // 1000


def _tone(ms: int, codec: str, rate: int) -> bytes:
    if codec != "pcm" or rate == 24000:
        return tone(ms, codec)
    import numpy as np

    # PCM16 at 16 kHz: the 24 kHz tone taken to 8 kHz and each sample doubled (a stand-in voice)
    t24 = np.frombuffer(tone(ms, "pcm"), "<i2")
    return t24[::3].repeat(2)[: rate * ms // 1000].astype("<i2").tobytes()


class _Turn:
    """One spoken reply of the model: cancelled by barge-in or session.close."""

    __slots__ = ("stop", "task", "reason", "at")

    def __init__(self, at: float) -> None:
        self.at = int(at)                   # where on the session timeline the turn began
        self.stop = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.reason: str | None = None


def to_pcm24(raw: bytes, codec: str, rate: int) -> bytes:
    """Wire audio as the sideband hears it: mono PCM16 at 24 kHz (a stand-in resampler)."""
    import numpy as np

    pcm = np.frombuffer(decode_audio(raw, codec), "<i2")
    rate = 8000 if codec != "pcm" else rate
    if rate == 24000:
        return pcm.tobytes()
    return pcm.repeat(3)[:: rate // 8000].astype("<i2").tobytes()


def _error_event(err: ClientError, event_id: str | None, new_id: str) -> bytes:
    error = {"type": err.type, "code": err.code or "invalid_request", "message": err.message}
    if err.param is not None:
        error["param"] = err.param
    event = {"type": "error", "event_id": new_id, "error": error}
    if event_id is not None:
        error["client_event_id"] = event["client_event_id"] = event_id
    return orjson.dumps(event)


class LiveConnection:
    """Drives one GPT-Live websocket of the embedded server (a primary one, or a fork)."""

    def __init__(self, server: RealtimeServer, ws: ServerConnection, state: ServerSession,
                 fork_of: LiveConnection | None = None) -> None:
        self.server, self.ws, self.s = server, ws, state
        self.fork_of = fork_of
        self.observers: set[SidebandConnection] = set()
        self._prefix = secrets.token_hex(5)
        self._n = itertools.count(1)
        self.started = False
        self.resource: dict = {}
        self.codec, self.rate = "pcm", 24000
        self.vad = EnergyVad(24000)
        self.muted = False
        self.clock_ms = 0.0                 # the session timeline: input audio received, in ms
        self.speech: list[bytes] = []       # the current user turn's audio (wire bytes)
        self.turn: _Turn | None = None
        self.pending: dict[str, dict] = {}  # open client delegations: id -> {"function_call": ...}
        self.sent = 0
        self.stalled = False
        self.tasks: set[asyncio.Task] = set()
        self.misbehave = True
        self.t0 = time.monotonic()

    def new_id(self, kind: str) -> str:
        return f"{kind}_{self._prefix}{next(self._n):09d}"

    # -- sending (the Realtime connection's fault switches apply) -----------------------------------

    async def send(self, type_: str, client_event_id: str | None = None, **fields: Any) -> None:
        event = {"type": type_, "event_id": self.new_id("event"), **fields}
        if client_event_id is not None:
            event["client_event_id"] = client_event_id
        await self.send_frame(orjson.dumps(event))

    async def send_frame(self, data: bytes, reflect: bool = True) -> None:
        await _Connection.send_frame(self, data)    # one implementation of the fault switches
        if reflect and self.observers:
            await self.reflect(data)

    async def reflect(self, data: bytes) -> None:
        for observer in list(self.observers):
            await observer.push(data)

    async def send_audio(self, chunk: bytes, start_ms: int, end_ms: int) -> None:
        """One output delta: the primary's shape (no dict), and the sideband's (PCM16 24 kHz, timed)."""
        await self.send_frame(b'{"type":"session.output_audio.delta","delta":"' + b64.encode(chunk) + b'"}',
                              reflect=False)
        if self.observers:
            await self.reflect(orjson.dumps({"type": "session.output_audio.delta",
                                             "delta": b64.encode(to_pcm24(chunk, self.codec, self.rate)).decode(),
                                             "start_ms": start_ms, "end_ms": end_ms}))

    async def error(self, err: ClientError, event_id: str | None) -> None:
        # errors go to the connection whose command failed, not to observers
        await self.send_frame(_error_event(err, event_id, self.new_id("event")), reflect=False)

    async def expire(self, seconds: float) -> None:
        try:
            await self.send("session.closed", reason="expired", session=self.resource or self._resource({}),
                            usage=self.usage())
            await self.ws.close(1000, "session expired")
        except ConnectionClosed:
            pass

    # -- the read loop --------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            for observer in list(self.observers):   # the session is over: so are its sidebands
                self.observers.discard(observer)
                await observer.ws.close(1000, "session ended")

    async def _run(self) -> None:
        while True:
            event, event_id = await next_client_event(self)
            try:
                if await self.dispatch(event, event_id):
                    return
            except ClientError as err:
                await self.error(err, event_id)

    async def dispatch(self, event: Any, event_id: str | None) -> bool:
        if not isinstance(event, dict):
            raise ClientError("invalid_type", "Invalid event: expected a JSON object.")
        kind = _field(event, "type", str)
        handler = self.HANDLERS.get(kind)
        if handler is None:
            raise ClientError("invalid_value", f"Invalid value: '{kind}'. Supported values are: "
                              + ", ".join(f"'{k}'" for k in self.HANDLERS) + ".", "type")
        if not self.started and kind != "session.start":
            raise ClientError("session_not_started", "Send session.start first, and wait for session.started "
                              "before other commands.", "type")
        return bool(await handler(self, event, event_id))

    # -- session ------------------------------------------------------------------------------------

    def _resource(self, session: dict) -> dict:
        audio = session.get("audio") or {}
        out = dict(audio.get("output") or {})
        out.setdefault("voice", "marin")
        fmt = {"type": {v: k for k, v in _FORMATS.items()}[self.codec], "rate": self.rate}
        res = {"id": self.s.config.id, "expires_at": self.s.config.expires_at,
               "model": session.get("model", self.s.config.model), "status": "active",
               "audio": {"format": fmt, "output": out}, "delegation": session.get("delegation"),
               "instructions": session.get("instructions", self.s.config.instructions), "store": False}
        for key in ("client", "input", "safety_identifier", "store", "triggers"):
            if key in session:
                res[key] = session[key]
        return res

    async def session_start(self, ev: dict, event_id: str | None) -> None:
        if self.started:
            raise ClientError("session_already_started", "The session has already started.", "type")
        session = _field(ev, "session", dict)
        if self.fork_of is not None:
            session = self._fork_session(session)
        for key in session:
            if key not in _SESSION_KEYS:
                raise ClientError("unknown_parameter", f"Unknown parameter: 'session.{key}'.", f"session.{key}")
        _field(session, "model", str, "session.")
        audio = session.get("audio") or {}
        if not isinstance(audio, dict):
            raise ClientError("invalid_type", "Invalid type for 'session.audio': expected an object.", "session.audio")
        self.codec, self.rate = live_format(audio.get("format"))
        voice = (audio.get("output") or {}).get("voice")
        if isinstance(voice, str) and voice not in _VOICES:
            raise ClientError("invalid_value", f"Invalid value: {voice!r}. Supported values are: "
                              + ", ".join(f"'{v}'" for v in _VOICES) + ".", "session.audio.output.voice")
        delegation = session.get("delegation")
        if delegation is not None and (not isinstance(delegation, dict)
                                       or delegation.get("type") not in ("client", "responses", "decisions")):
            raise ClientError("invalid_value", "Invalid 'session.delegation': expected an object whose type is "
                              "'client', 'responses' or 'decisions'.", "session.delegation.type")
        self.s.config.model = session["model"]
        if isinstance(session.get("instructions"), str):
            self.s.config.instructions = session["instructions"]
        self.s.config.input_format = self.s.config.output_format = self.codec
        self.vad.reset(self.rate if self.codec == "pcm" else 8000)
        self.resource = self._resource(session)
        self.started = True
        self.server.live_sessions[self.s.config.id] = self
        await self.send("session.started", event_id, session=self.resource)

    def _fork_session(self, overrides: dict) -> dict:
        """A fork's session.start: overrides only; the rest (and the conversation) is the stored session's."""
        for key in overrides:
            if key not in _FORK_KEYS:
                raise ClientError("unknown_parameter", f"Unknown parameter: 'session.{key}'.", f"session.{key}")
        stored = self.fork_of.resource
        session = {k: stored[k] for k in ("model", "instructions", "input", "triggers", "client") if k in stored}
        session["audio"] = {"format": stored["audio"]["format"], "output": stored["audio"].get("output") or {}}
        if "format" in (overrides.get("audio") or {}):
            session["audio"]["format"] = overrides["audio"]["format"]
        if stored.get("delegation") is not None:
            session["delegation"] = stored["delegation"]
        for key in ("client", "delegation", "store"):
            if key in overrides:
                session[key] = overrides[key]
        self.s.items = [dict(item) for item in self.fork_of.s.items]
        return session

    async def session_update(self, ev: dict, event_id: str | None) -> None:
        session = _field(ev, "session", dict)
        for key in session:
            if key not in _UPDATE_KEYS:
                raise ClientError("unknown_parameter", f"Unknown parameter: 'session.{key}'.", f"session.{key}")
        delegation = session.get("delegation")
        if delegation is not None:
            current = (self.resource.get("delegation") or {}).get("type")
            if not isinstance(delegation, dict) or delegation.get("type") != current:
                raise ClientError("invalid_value", "The delegation type must match the current session's "
                                  f"({current!r}).", "session.delegation.type")
            self.resource["delegation"] = {**self.resource["delegation"], **delegation}
        if "triggers" in session:
            self.resource["triggers"] = session["triggers"]
        await self.send("session.updated", event_id, session=self.resource)

    async def session_close(self, ev: dict, event_id: str | None) -> bool:
        self.stop_turn("closed")
        await self.send("session.closed", event_id, reason="close_requested", session=self.resource,
                        usage=self.usage())
        await self.ws.close(1000, "session closed")
        return True

    def usage(self) -> dict:
        return {"seconds": round(time.monotonic() - self.t0, 3)}

    # -- input audio and turn-taking ------------------------------------------------------------------

    async def input_audio_append(self, ev: dict, event_id: str | None) -> None:
        try:
            raw = b64.decode(_field(ev, "audio", str))
        except Base64Error as exc:
            raise ClientError("invalid_value", f"Invalid 'audio': not valid base64 ({exc}).", "audio") from None
        self.clock_ms += len(raw) / _bytes_per_ms(self.codec, self.rate)
        if self.observers:          # reflected before muting, as the API does: PCM16 24 kHz, no event_id
            await self.reflect(orjson.dumps({"type": "session.input_audio.append",
                                             "audio": b64.encode(to_pcm24(raw, self.codec, self.rate)).decode()}))
        if self.muted:
            return
        if self.vad.speaking:
            self.speech.append(raw)
        for what, _ in self.vad.feed(decode_audio(raw, self.codec), 0.5, 300, 500):
            if what == "start":
                self.speech = [raw]
                self.stop_turn("barge_in")       # the model owns barge-in: stop talking at once
            else:
                # on the session's timeline (the VAD's clock stops while input is muted)
                await self.end_of_turn(int(self.clock_ms))

    async def end_of_turn(self, end_ms: int) -> None:
        audio_ms = sum(len(r) for r in self.speech) // _bytes_per_ms(self.codec, self.rate)
        self.speech = []
        given = self.server.user_transcript
        text = given(self.s, audio_ms) if callable(given) else given or f"({audio_ms} ms of speech)"
        words = re.findall(r"\s*\S+", text) or [text]
        begin = max(0, int(end_ms) - audio_ms)
        for i, word in enumerate(words):
            await self.send("session.input_transcript.delta", delta=word,
                            start_ms=begin + (end_ms - begin) * i // len(words),
                            end_ms=begin + (end_ms - begin) * (i + 1) // len(words))
        self.s.items.append({"role": "user", "text": text, "audio_ms": audio_ms})
        self.start_turn(UserInput(text, audio_ms, None, self.s.items[-1]))

    async def input_audio_mute(self, ev: dict, event_id: str | None) -> None:
        self.muted = True
        self.vad.reset()
        await self.send("session.input_audio.muted", event_id)

    async def input_audio_unmute(self, ev: dict, event_id: str | None) -> None:
        self.muted = False
        await self.send("session.input_audio.unmuted", event_id)

    # -- context and delegations --------------------------------------------------------------------

    async def _append(self, ev: dict, event_id: str | None, kind: str) -> None:
        content = _field(ev, "content", str)
        if "delegation_id" not in ev:
            raise ClientError("missing_required_parameter", "Missing required parameter: 'delegation_id' "
                              "(null for general context).", "delegation_id")
        delegation_id = ev["delegation_id"]
        if delegation_id is not None:
            if not isinstance(delegation_id, str) or delegation_id not in self.pending:
                raise ClientError("invalid_value", f"Unknown delegation_id: {delegation_id!r}.", "delegation_id")
        at = int(self.clock_ms)
        await self.send(f"session.{kind}.appended", event_id, start_ms=at, end_ms=at)
        self.s.items.append({"role": "developer", "kind": kind, "text": content, "delegation_id": delegation_id})
        if delegation_id is not None:
            # the delegated work is answered: the model speaks again, with the result
            call = self.pending.pop(delegation_id)
            self.start_turn(UserInput(None, 0, {"call_id": delegation_id, "output": content, "name": call["name"]},
                                      self.s.items[-1]))

    async def instructions_append(self, ev: dict, event_id: str | None) -> None:
        await self._append(ev, event_id, "instructions")

    async def thinking_append(self, ev: dict, event_id: str | None) -> None:
        await self._append(ev, event_id, "thinking")

    async def commentary_append(self, ev: dict, event_id: str | None) -> None:
        await self._append(ev, event_id, "commentary")

    async def needs_backend(self, ev: dict, event_id: str | None) -> None:
        kind = ev["type"]
        need = "Decisions" if kind.startswith("decision") else "Responses"
        raise ClientError("invalid_request", f"'{kind}' requires {need} delegation; this session has "
                          f"{(self.resource.get('delegation') or {}).get('type') or 'no'} delegation.", "type")

    async def fixture_play(self, ev: dict, event_id: str | None) -> None:
        try:
            raw = b64.decode(_field(ev, "audio", str))
        except Base64Error as exc:
            raise ClientError("invalid_value", f"Invalid 'audio': not valid base64 ({exc}).", "audio") from None
        self.stop_turn("fixture")
        await self.send("session.output_audio.fixture.playing", event_id)
        at = int(self.clock_ms)
        await self.send_audio(raw, at, at + len(raw) // _bytes_per_ms(self.codec, self.rate))
        await self.send("session.output_audio.fixture.played", event_id)

    HANDLERS: dict[str, Any] = {
        "session.start": session_start,
        "session.update": session_update,
        "session.input_audio.append": input_audio_append,
        "session.input_audio.mute": input_audio_mute,
        "session.input_audio.unmute": input_audio_unmute,
        "session.output_audio.fixture.play": fixture_play,
        "session.instructions.append": instructions_append,
        "session.thinking.append": thinking_append,
        "session.commentary.append": commentary_append,
        "decision.create": needs_backend,
        "decision.item.create": needs_backend,
        "decision.item.delete": needs_backend,
        "response.item.create": needs_backend,
        "response.create": needs_backend,
        "session.close": session_close,
    }

    # -- the model speaking ---------------------------------------------------------------------------

    def stop_turn(self, reason: str) -> None:
        turn = self.turn
        if turn is not None and not turn.stop.is_set():
            turn.reason = reason
            turn.stop.set()

    def start_turn(self, user: UserInput) -> None:
        self.stop_turn("superseded")
        turn = self.turn = _Turn(self.clock_ms)
        turn.task = asyncio.create_task(self.speak(turn, user))
        self.tasks.add(turn.task)
        turn.task.add_done_callback(self.tasks.discard)

    async def pause(self, turn: _Turn, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait_for(turn.stop.wait(), seconds)
        except TimeoutError:
            pass

    async def speak(self, turn: _Turn, user: UserInput) -> None:
        try:
            script = self.server.script
            delegation = (self.resource.get("delegation") or {}).get("type")
            if isinstance(script, Script):
                # a scripted function call is delegated to the client only under client delegation
                call = script.function_call
                reply = script(self.s, user, [call.name] if call is not None and delegation == "client" else [])
            else:
                reply = script(self.s, user)
            await self.pause(turn, reply.latency_ms / 1000)
            if turn.stop.is_set():
                return
            if reply.function_call is not None and delegation == "client":
                did = self.new_id("del")
                self.pending[did] = {"name": reply.function_call.name, "arguments": reply.function_call.arguments}
                await self.send("session.delegation.created", offset_ms=turn.at,
                                delegation={"id": did, "target": "client", "type": "delegation"})
                return
            await self.stream(turn, reply)
            await self.send("session.usage.updated", usage=self.usage())
        except ConnectionClosed:
            pass
        finally:
            if self.turn is turn:
                self.turn = None

    async def stream(self, turn: _Turn, reply: Reply) -> None:
        ms = reply.audio_ms if reply.audio_ms is not None else max(300, 70 * len(reply.text))
        audio = _tone(ms, self.codec, self.rate)
        step = _bytes_per_ms(self.codec, self.rate) * reply.chunk_ms
        chunks = max(1, math.ceil(len(audio) / step))
        words = re.findall(r"\s*\S+", reply.text) or [reply.text]
        said = 0
        at = turn.at
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(chunks):
            if turn.stop.is_set():
                break
            want = round(len(words) * (i + 1) / chunks)
            while said < want and not turn.stop.is_set():
                await self.send("session.output_transcript.delta", delta=words[said],
                                start_ms=at + i * reply.chunk_ms, end_ms=at + (i + 1) * reply.chunk_ms)
                said += 1
            if turn.stop.is_set():
                break
            # the hot frame, from a template: no dict, no event_id (the API's primary-socket shape)
            await self.send_audio(audio[i * step:(i + 1) * step], at + i * reply.chunk_ms, at + (i + 1) * reply.chunk_ms)
            delay = start + (i + 1) * reply.chunk_ms / 1000 - loop.time()
            await self.pause(turn, delay if reply.realtime else 0)
        self.s.items.append({"role": "assistant", "text": "".join(words[:said]),
                             "interrupted": turn.reason if turn.stop.is_set() else None})


class SidebandConnection:
    """A sideband attached to a running session: sees its events, sends commands on its behalf."""

    def __init__(self, server: RealtimeServer, ws: ServerConnection, state: ServerSession,
                 primary: LiveConnection) -> None:
        self.server, self.ws, self.s, self.primary = server, ws, state, primary
        self.tasks: set[asyncio.Task] = set()
        self.misbehave = False
        self._n = itertools.count(1)
        self._prefix = secrets.token_hex(5)

    async def push(self, data: bytes) -> None:
        try:
            await self.ws.send(data, text=True)
        except ConnectionClosed:
            self.primary.observers.discard(self)

    async def expire(self, seconds: float) -> None:
        await self.ws.close(1000, "session expired")

    async def run(self) -> None:
        self.primary.observers.add(self)
        try:
            while True:
                event, event_id = await next_client_event(self)
                try:
                    kind = event.get("type") if isinstance(event, dict) else None
                    if kind == "session.start":
                        raise ClientError("invalid_request", "The session has already started: do not send "
                                          "session.start on a sideband.", "type")
                    if kind == "session.input_audio.append":
                        raise ClientError("invalid_request", "session.input_audio.append is accepted on the "
                                          "primary WebSocket only.", "type")
                    if kind == "transport.dtmf.send":
                        raise ClientError("invalid_request", "transport.dtmf.send is supported only for SIP "
                                          "calls.", "type")
                    await self.primary.dispatch(event, event_id)
                except ClientError as err:
                    await self.error(err, event_id)
        finally:
            self.primary.observers.discard(self)

    async def error(self, err: ClientError, event_id: str | None) -> None:
        await self.ws.send(_error_event(err, event_id, f"event_{self._prefix}{next(self._n):09d}"), text=True)

