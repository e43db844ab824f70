"""Sans-I/O pieces of :mod:`rtfast.server`: script, session config, energy VAD, tone.

Nothing here touches a socket. :class:`Script` / :class:`Reply` say what the
local model answers; :class:`SessionConfig` keeps one effective session
configuration and renders it in the GA or the beta shape (field names from the
official ``openai`` models); :class:`EnergyVad` turns PCM16 into speech
start/stop decisions; :func:`tone` makes speech-like audio to stream.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtfast import g711

__all__ = ["FunctionCall", "Reply", "UserInput", "Script", "ServerSession", "ClientError", "SessionConfig",
           "parse_modalities", "parse_format_ga", "EnergyVad", "tone", "encode_audio", "decode_audio",
           "bytes_per_ms", "FORMATS_GA", "FORMATS_BETA"]

#: Wire name of each audio format, by internal name.
FORMATS_GA = {"pcm": "audio/pcm", "pcmu": "audio/pcmu", "pcma": "audio/pcma"}
FORMATS_BETA = {"pcm": "pcm16", "pcmu": "g711_ulaw", "pcma": "g711_alaw"}
_RATE = {"pcm": 24000, "pcmu": 8000, "pcma": 8000}


def bytes_per_ms(fmt: str) -> int:
    """Wire bytes per millisecond of audio: PCM16 24 kHz is 48, G.711 8 kHz is 8."""
    return 48 if fmt == "pcm" else 8


def decode_audio(raw: bytes, fmt: str) -> bytes:
    """Wire bytes of format ``fmt`` to PCM16 at the format's own rate."""
    if fmt == "pcmu":
        return g711.ulaw_decode(raw)
    if fmt == "pcma":
        return g711.alaw_decode(raw)
    return raw[: len(raw) & ~1]


def encode_audio(pcm: bytes, fmt: str) -> bytes:
    """PCM16 at the format's rate to wire bytes of format ``fmt``."""
    if fmt == "pcmu":
        return g711.ulaw_encode(pcm)
    if fmt == "pcma":
        return g711.alaw_encode(pcm)
    return pcm


def tone(ms: int, fmt: str) -> bytes:
    """``ms`` milliseconds of a speech-like voice (gliding fundamental, harmonics,
    syllable envelope) as wire bytes of ``fmt`` (PCM16 24 kHz or G.711 8 kHz)."""
    rate = _RATE[fmt]
    t = np.arange(rate * ms // 1000) / rate
    phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(2 * np.pi * 0.5 * t)) / rate
    env = np.abs(np.sin(2 * np.pi * 3 * t))
    wave = 8000 * env * (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase))
    return encode_audio(wave.astype("<i2").tobytes(), fmt)


class ClientError(Exception):
    """A client event the real API would answer with an ``error`` event."""

    def __init__(self, code: str | None, message: str, param: str | None = None,
                 type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.code, self.message, self.param, self.type = code, message, param, type


def _unknown(prefix: str, key: str) -> ClientError:
    return ClientError("unknown_parameter", f"Unknown parameter: '{prefix}{key}'.", prefix + key)


def _invalid(param: str, value: Any, allowed) -> ClientError:
    listed = ", ".join(f"'{a}'" for a in allowed)
    return ClientError("invalid_value", f"Invalid value: {value!r}. Supported values are: {listed}.", param)


def _check_keys(obj: Any, known, prefix: str) -> dict:
    if not isinstance(obj, dict):
        raise ClientError("invalid_type", f"Invalid type for '{prefix.rstrip('.')}': expected an object.",
                          prefix.rstrip("."))
    for key in obj:
        if key not in known:
            raise _unknown(prefix, key)
    return obj


_TD_KEYS = {
    "server_vad": {"type", "threshold", "prefix_padding_ms", "silence_duration_ms", "create_response",
                   "interrupt_response", "idle_timeout_ms"},
    "semantic_vad": {"type", "eagerness", "create_response", "interrupt_response"},
}
_TD_DEFAULTS = {
    "server_vad": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
                   "idle_timeout_ms": None, "create_response": True, "interrupt_response": True},
    "semantic_vad": {"type": "semantic_vad", "eagerness": "auto", "create_response": True,
                     "interrupt_response": True},
}
_EAGERNESS_SILENCE_MS = {"low": 1000, "medium": 500, "auto": 500, "high": 250}

_GA_KEYS = {"type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice",
            "max_output_tokens", "tracing", "truncation", "prompt", "include", "reasoning", "parallel_tool_calls"}
_BETA_KEYS = {"model", "instructions", "modalities", "voice", "input_audio_format", "output_audio_format",
              "input_audio_transcription", "input_audio_noise_reduction", "turn_detection", "tools",
              "tool_choice", "temperature", "max_response_output_tokens", "speed", "tracing", "include"}


@dataclass
class SessionConfig:
    """The effective session configuration of one connection (generation-neutral).

    Formats are ``"pcm"`` (PCM16 24 kHz), ``"pcmu"`` or ``"pcma"`` (G.711 8 kHz);
    ``turn_detection`` is ``None`` or a dict in the API's shape.
    """

    model: str = "gpt-realtime"
    id: str = "sess_local"
    instructions: str = "You are a helpful, witty and friendly AI."
    voice: Any = "alloy"
    speed: float = 1.0
    input_format: str = "pcm"
    output_format: str = "pcm"
    audio_out: bool = True
    turn_detection: dict | None = field(default_factory=lambda: dict(_TD_DEFAULTS["server_vad"]))
    transcription: dict | None = None
    noise_reduction: dict | None = None
    tools: list = field(default_factory=list)
    tool_choice: Any = "auto"
    temperature: float = 0.8
    max_output_tokens: Any = "inf"
    tracing: Any = None
    truncation: Any = "auto"
    prompt: Any = None
    include: Any = None
    expires_at: int = field(default_factory=lambda: int(time.time()) + 3600)

    # -- reading -------------------------------------------------------------------------

    def silence_ms(self) -> int:
        """Quiet time that ends a turn under the current turn detection."""
        td = self.turn_detection or {}
        if td.get("type") == "semantic_vad":
            return _EAGERNESS_SILENCE_MS[td.get("eagerness") or "auto"]
        return int(td.get("silence_duration_ms") or 500)

    def vad_threshold(self) -> float:
        return float((self.turn_detection or {}).get("threshold") or 0.5)

    def tool_names(self) -> list[str]:
        return [t.get("name") for t in self.tools if isinstance(t, dict) and t.get("name")]

    # -- rendering -----------------------------------------------------------------------

    @staticmethod
    def format_ga(fmt: str) -> dict:
        return {"type": "audio/pcm", "rate": 24000} if fmt == "pcm" else {"type": FORMATS_GA[fmt]}

    def render(self, beta: bool) -> dict:
        """The ``session`` object of session.created / session.updated."""
        td = self.turn_detection
        if beta:
            if td is not None:
                td = {k: v for k, v in td.items() if k != "idle_timeout_ms"}
            return {
                "id": self.id, "object": "realtime.session", "model": self.model, "expires_at": self.expires_at,
                "modalities": ["text", "audio"] if self.audio_out else ["text"],
                "instructions": self.instructions, "voice": self.voice,
                "input_audio_format": FORMATS_BETA[self.input_format],
                "output_audio_format": FORMATS_BETA[self.output_format],
                "input_audio_transcription": self.transcription, "input_audio_noise_reduction": self.noise_reduction,
                "turn_detection": td, "tools": self.tools, "tool_choice": self.tool_choice,
                "temperature": self.temperature, "max_response_output_tokens": self.max_output_tokens,
                "speed": self.speed, "tracing": self.tracing,
            }
        return {
            "type": "realtime", "object": "realtime.session", "id": self.id, "model": self.model,
            "output_modalities": ["audio"] if self.audio_out else ["text"],
            "instructions": self.instructions, "tools": self.tools, "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens, "tracing": self.tracing, "truncation": self.truncation,
            "prompt": self.prompt, "expires_at": self.expires_at,
            "audio": {
                "input": {"format": self.format_ga(self.input_format), "transcription": self.transcription,
                          "noise_reduction": self.noise_reduction, "turn_detection": td},
                "output": {"format": self.format_ga(self.output_format), "voice": self.voice, "speed": self.speed},
            },
            "include": self.include,
        }

    # -- updating ------------------------------------------------------------------------

    def updated(self, session: Any, beta: bool) -> SessionConfig:
        """A new config with a ``session.update`` payload merged in; raises
        :class:`ClientError` (and leaves ``self`` untouched) on a bad field."""
        new = copy.deepcopy(self)
        if beta:
            new._apply_beta(_check_keys(session, _BETA_KEYS, "session."))
        else:
            new._apply_ga(_check_keys(session, _GA_KEYS, "session."))
        return new

    def _apply_ga(self, s: dict) -> None:
        if "type" not in s:
            raise ClientError("missing_required_parameter", "Missing required parameter: 'session.type'.",
                              "session.type")
        if s["type"] != "realtime":
            raise _invalid("session.type", s["type"], ["realtime"])
        self._common(s)
        if "output_modalities" in s:
            self.audio_out = parse_modalities(s["output_modalities"], "session.output_modalities")
        if "max_output_tokens" in s:
            self.max_output_tokens = s["max_output_tokens"]
        for key in ("truncation", "prompt", "include"):
            if key in s:
                setattr(self, key, s[key])
        audio = _check_keys(s.get("audio", {}), {"input", "output"}, "session.audio.")
        inp = _check_keys(audio.get("input", {}), {"format", "transcription", "noise_reduction", "turn_detection"},
                          "session.audio.input.")
        if "format" in inp:
            self.input_format = parse_format_ga(inp["format"], "session.audio.input.format")
        if "turn_detection" in inp:
            self.turn_detection = self._turn_detection(inp["turn_detection"], "session.audio.input.turn_detection")
        if "transcription" in inp:
            self.transcription = inp["transcription"]
        if "noise_reduction" in inp:
            self.noise_reduction = inp["noise_reduction"]
        out = _check_keys(audio.get("output", {}), {"format", "voice", "speed"}, "session.audio.output.")
        if "format" in out:
            self.output_format = parse_format_ga(out["format"], "session.audio.output.format")
        if "voice" in out:
            self.voice = out["voice"]
        if "speed" in out:
            self.speed = out["speed"]

    def _apply_beta(self, s: dict) -> None:
        self._common(s)
        if "modalities" in s:
            self.audio_out = parse_modalities(s["modalities"], "session.modalities")
        for key, attr in (("input_audio_format", "input_format"), ("output_audio_format", "output_format")):
            if key in s:
                if s[key] not in FORMATS_BETA.values():
                    raise _invalid(f"session.{key}", s[key], FORMATS_BETA.values())
                setattr(self, attr, {v: k for k, v in FORMATS_BETA.items()}[s[key]])
        if "turn_detection" in s:
            self.turn_detection = self._turn_detection(s["turn_detection"], "session.turn_detection")
        for key, attr in (("voice", "voice"), ("speed", "speed"), ("temperature", "temperature"),
                          ("max_response_output_tokens", "max_output_tokens"),
                          ("input_audio_transcription", "transcription"),
                          ("input_audio_noise_reduction", "noise_reduction")):
            if key in s:
                setattr(self, attr, s[key])

    def _common(self, s: dict) -> None:
        if "instructions" in s:
            if not isinstance(s["instructions"], str):
                raise ClientError("invalid_type", "Invalid type for 'session.instructions': expected a string.",
                                  "session.instructions")
            self.instructions = s["instructions"]
        if "tools" in s:
            tools = s["tools"]
            if not isinstance(tools, list) or not all(isinstance(t, dict) and t.get("name") for t in tools):
                raise ClientError("invalid_value", "Invalid 'session.tools': each tool needs a 'name'.",
                                  "session.tools")
            self.tools = [dict(t, type=t.get("type", "function")) for t in tools]
        for key in ("model", "tool_choice", "tracing"):
            if key in s:
                setattr(self, key, s[key])

    def _turn_detection(self, td: Any, param: str) -> dict | None:
        if td is None:
            return None
        if not isinstance(td, dict):
            raise ClientError("invalid_type", f"Invalid type for '{param}': expected an object or null.", param)
        kind = td.get("type", "server_vad")
        if kind not in _TD_KEYS:
            raise _invalid(param + ".type", kind, _TD_KEYS)
        _check_keys(td, _TD_KEYS[kind], param + ".")
        thr = td.get("threshold", 0.5)
        if not isinstance(thr, (int, float)) or not 0.0 <= thr <= 1.0:
            raise ClientError("decimal_above_max_value" if isinstance(thr, (int, float)) else "invalid_type",
                              f"Invalid '{param}.threshold': expected a number between 0 and 1.",
                              param + ".threshold")
        eager = td.get("eagerness", "auto")
        if eager not in _EAGERNESS_SILENCE_MS:
            raise _invalid(param + ".eagerness", eager, _EAGERNESS_SILENCE_MS)
        base = self.turn_detection if self.turn_detection and self.turn_detection["type"] == kind else None
        merged = dict(base or _TD_DEFAULTS[kind])
        merged.update(td, type=kind)
        return merged


def parse_modalities(value: Any, param: str) -> bool:
    """Whether the modalities list asks for audio output."""
    if not isinstance(value, list) or not value or any(m not in ("text", "audio") for m in value):
        raise _invalid(param, value, ["text", "audio"])
    return "audio" in value


def parse_format_ga(fmt: Any, param: str) -> str:
    if isinstance(fmt, str):  # an early GA preview accepted the bare type
        fmt = {"type": fmt}
    _check_keys(fmt, {"type", "rate"}, param + ".")
    kind = fmt.get("type")
    for name, wire in FORMATS_GA.items():
        if kind == wire:
            if name == "pcm" and fmt.get("rate", 24000) != 24000:
                raise _invalid(param + ".rate", fmt["rate"], [24000])
            return name
    raise _invalid(param + ".type", kind, FORMATS_GA.values())


class EnergyVad:
    """Energy-based turn detection over 20 ms windows of PCM16.

    A window is speech when its RMS, as a fraction of full scale, exceeds
    ``threshold * 0.05`` (the default 0.5 is about -32 dBFS). ``feed`` returns
    ``("start", audio_start_ms)`` when speech begins (backdated by
    ``prefix_padding_ms``) and ``("stop", audio_end_ms)`` once ``silence_ms`` of
    quiet followed it. Times are milliseconds of audio since the session began.
    """

    __slots__ = ("rate", "clock_ms", "speaking", "_quiet_ms", "_rest")

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.clock_ms = 0.0
        self.speaking = False
        self._quiet_ms = 0
        self._rest = np.zeros(0, "<i2")

    def reset(self, rate: int | None = None) -> None:
        """Forget any speech in progress (after a commit or a clear); the clock runs on."""
        if rate is not None and rate != self.rate:
            self.clock_ms += len(self._rest) * 1000 / self.rate
            self.rate = rate
        self.speaking = False
        self._quiet_ms = 0
        self._rest = np.zeros(0, "<i2")

    def feed(self, pcm: bytes, threshold: float, prefix_ms: int, silence_ms: int) -> list[tuple[str, int]]:
        win = self.rate // 50
        samples = np.concatenate((self._rest, np.frombuffer(pcm, "<i2")))
        n = len(samples) // win
        self._rest = samples[n * win:]
        if not n:
            return []
        frames = samples[: n * win].astype(np.float64).reshape(n, win)
        loud = np.sqrt(np.mean(frames * frames, axis=1)) / 32768.0 > threshold * 0.05
        out = []
        for is_speech in loud.tolist():
            start = self.clock_ms
            self.clock_ms += 20.0
            if is_speech:
                self._quiet_ms = 0
                if not self.speaking:
                    self.speaking = True
                    out.append(("start", int(max(0.0, start - prefix_ms))))
            elif self.speaking:
                self._quiet_ms += 20
                if self._quiet_ms >= silence_ms:
                    self.speaking = False
                    self._quiet_ms = 0
                    out.append(("stop", int(self.clock_ms)))
        return out


# -- the script ------------------------------------------------------------------------------

@dataclass
class FunctionCall:
    """A tool call the scripted model makes; ``arguments`` is JSON text or a dict."""

    name: str
    arguments: str | dict = "{}"
    call_id: str | None = None


@dataclass
class Reply:
    """One scripted response.

    ``audio_ms`` of tone (default: 70 ms per character of ``text``, at least
    300 ms) when the response has audio; ``function_call`` makes it a tool call
    instead of a message. Pacing: wait ``latency_ms`` after response.created,
    then send ``chunk_ms`` of audio per delta, as fast as the socket takes it,
    or at 1x when ``realtime``.
    """

    text: str = "Hello there"
    audio_ms: int | None = None
    function_call: FunctionCall | None = None
    latency_ms: float = 0.0
    realtime: bool = False
    chunk_ms: int = 100


@dataclass
class UserInput:
    """What the script sees of the latest turn: the newest user message's text
    (``None`` for audio), its audio length, the function output just given (if the
    newest item is a ``function_call_output``) and the newest item itself."""

    text: str | None
    audio_ms: int
    function_output: dict | None
    item: dict | None


@dataclass
class Script:
    """The default script: answer ``reply_text``; call ``function_call`` (when that
    tool is configured) or any configured tool the user's text names; after a
    function output, answer ``reply_text``. Calling it gives the :class:`Reply`.
    A plain ``callable(session, user_input) -> Reply`` works in its place."""

    reply_text: str = "Hello there"
    audio_ms: int | None = None
    latency_ms: float = 0.0
    function_call: FunctionCall | None = None
    realtime: bool = False
    chunk_ms: int = 100

    def __call__(self, session: ServerSession, user: UserInput, tools: list[str] | None = None) -> Reply:
        tools = session.config.tool_names() if tools is None else tools
        call = None
        if user.function_output is None:
            if self.function_call is not None and self.function_call.name in tools:
                call = self.function_call
            elif user.text:
                call = next((FunctionCall(n) for n in tools if n.lower() in user.text.lower()), None)
        return Reply(self.reply_text, self.audio_ms, call, self.latency_ms, self.realtime, self.chunk_ms)


@dataclass
class ServerSession:
    """One client connection as the server sees it (what a script callable gets).

    ``items`` is the conversation in order, in the connection's generation shape;
    ``received`` every event the client sent (parsed; an unparsable frame as
    ``{"_invalid": text}``).
    """

    beta: bool
    path: str
    query: dict
    headers: dict
    config: SessionConfig
    received: list = field(default_factory=list)
    items: list = field(default_factory=list)
    closed: bool = False
    #: "realtime", "live" on a GPT-Live socket (``items`` then holds its turns as plain dicts; a fork is
    #: "live" too), "live-sideband" on a sideband attached to one
    protocol: str = "realtime"
