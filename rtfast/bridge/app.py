"""The application API of the bridge: a phone agent in a page of Python.

    from rtfast.bridge import Agent, BridgeServer

    agent = Agent(instructions="You are the front desk of Hotel Sol. Be brief.", voice="marin")

    @agent.setup
    async def per_call(ctx):                       # before the session starts
        name = (ctx.start.custom_parameters or {}).get("caller_name")
        if name:
            ctx.config.instructions += f" The caller's name is {name}; greet them by name."

    @agent.tool
    async def get_weather(ctx, city: str) -> dict:
        '''The current weather in a city.'''
        return {"city": city, "temperature": 21}

    @agent.on("transcript")
    def show(ctx, ev):
        print(ctx.call_id, ev.role, ev.text)

    async with BridgeServer(carrier="twilio", agent=agent) as server: ...

Everything an agent decides per call lives on its :class:`CallContext`
(``ctx.config`` before the session starts, then ``say``, ``send_text``,
``hangup``, ``transfer``). The sans-I/O parts it drives are
:class:`~rtfast.bridge.call.Call` (audio, barge-in) and
:class:`~rtfast.bridge.dialog.Dialog` (tools, digits, transcripts, replay);
:class:`~rtfast.bridge.server.BridgeServer` runs the handlers on its loop.
Nothing here runs per audio frame.
"""

from __future__ import annotations

import copy
import inspect
import logging
from typing import Any, Callable

from rtfast.bridge.call import BargeIn, CallEnded
from rtfast.bridge.carriers import Dtmf, Start
from rtfast.bridge.dialog import ToolCall, Transcript
from rtfast.bridge.tools import Tool, tool as make_tool
from rtfast.errors import RtfastError

__all__ = ["Agent", "CallContext", "CallConfig", "Request", "Refused", "ToolResult", "CallSummary", "CallError",
           "Reconnected", "Transcript", "ToolCall", "BargeIn", "Dtmf", "Start", "EVENT_NAMES"]

log = logging.getLogger("rtfast.bridge")


class Refused(RtfastError):
    """Raised by ``ctx.refuse(reason)`` in a setup handler: the call is not taken."""


class Request:
    """The carrier's websocket upgrade request: ``path``, ``query`` (first
    value of each parameter), ``headers`` (case-insensitive, websockets'
    ``Headers``) and ``remote`` (the peer's address)."""

    __slots__ = ("path", "query", "headers", "remote")

    def __init__(self, path: str = "/", query: dict | None = None, headers: Any = None, remote: Any = None) -> None:
        self.path, self.query, self.headers, self.remote = path, query or {}, headers or {}, remote

    def __repr__(self) -> str:
        # Headers may carry credentials (a carrier's signature, a proxy's auth): not shown.
        return f"Request(path={self.path!r}, query={sorted(self.query)!r})"


class ToolResult:
    """A tool answered: its ``output`` (what the model got), ``error`` (True if
    the output is an error) and how long it took."""

    __slots__ = ("call_id", "name", "output", "error", "ms")

    def __init__(self, call_id: str, name: str, output: str, error: bool, ms: float) -> None:
        self.call_id, self.name, self.output, self.error, self.ms = call_id, name, output, error, ms

    def __repr__(self) -> str:
        return f"ToolResult({self.name}, error={self.error}, {self.ms:.0f} ms)"


class CallSummary:
    """The call is over: the counters of :meth:`Call.summary` and how it ended."""

    __slots__ = ("summary",)

    def __init__(self, summary: dict) -> None:
        self.summary = summary

    def __repr__(self) -> str:
        return f"CallSummary({self.summary!r})"


class CallError:
    """Something went wrong in the call that the application may want to know
    (a realtime error event, a bad carrier frame, a failed reconnect, a
    handler that raised)."""

    __slots__ = ("kind", "message")

    def __init__(self, kind: str, message: str) -> None:
        self.kind, self.message = kind, message

    def __repr__(self) -> str:
        return f"CallError({self.kind}: {self.message})"


class Reconnected:
    """The Realtime connection was replaced: ``reason`` (``"dropped"``,
    ``"recycled"``), the ``gap_ms`` without a model, the ``attempt`` that worked
    and how many conversation ``items`` were replayed."""

    __slots__ = ("reason", "gap_ms", "attempt", "items")

    def __init__(self, reason: str, gap_ms: float, attempt: int, items: int) -> None:
        self.reason, self.gap_ms, self.attempt, self.items = reason, gap_ms, attempt, items

    def __repr__(self) -> str:
        return f"Reconnected({self.reason}, gap {self.gap_ms:.0f} ms, attempt {self.attempt}, {self.items} items)"


#: Event names ``Agent.on`` takes, and the classes they stand for.
EVENT_NAMES = {"start": Start, "transcript": Transcript, "tool_call": ToolCall, "tool_result": ToolResult,
               "barge_in": BargeIn, "dtmf": Dtmf, "call_ended": CallSummary, "error": CallError,
               "reconnected": Reconnected, "hangup": CallEnded}


class CallConfig:
    """What one call's session will be; a copy of the agent's, which a setup
    handler may change (``ctx.config.voice = "cedar"``). ``session``: any other
    session fields, in the generation's shape."""

    __slots__ = ("instructions", "voice", "tools", "vad", "mode", "transcription", "greeting", "speak_first",
                 "session")

    def __init__(self, *, instructions: str | None = None, voice: str | None = None, tools: list | None = None,
                 vad: str | None = "server_vad", mode: str | None = None, transcription: str | None = None,
                 greeting: str | None = None, speak_first: bool = False, session: dict | None = None) -> None:
        self.instructions, self.voice, self.tools, self.vad = instructions, voice, list(tools or ()), vad
        self.mode, self.transcription, self.greeting, self.speak_first = mode, transcription, greeting, speak_first
        self.session = dict(session or {})

    def copy(self) -> CallConfig:
        new = object.__new__(CallConfig)
        for k in self.__slots__:
            setattr(new, k, copy.copy(getattr(self, k)))
        return new

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    def call_options(self) -> dict:
        """What :meth:`rtfast.bridge.call.Call.reconfigure` takes."""
        extra = dict(self.session)
        if self.tools:
            extra.setdefault("tools", [t.schema() for t in self.tools])
            extra.setdefault("tool_choice", "auto")
        return {"instructions": self.instructions, "voice": self.voice, "vad": self.vad,
                "transcription": self.transcription, "session": extra,
                **({"mode": self.mode} if self.mode else {})}


class Agent:
    """A phone agent: its configuration and the handlers the bridge runs per call.

    ``instructions``, ``voice``, ``vad``, ``mode`` (``"passthrough"`` /
    ``"transcode"``; default: the server's), ``tools`` (functions or
    :class:`~rtfast.bridge.tools.Tool`), ``transcription``: the model that
    transcribes the caller (needed for user transcripts, recordings' JSONL and
    the replay after a reconnect; None turns it off), ``greeting``: words the
    assistant says first, or ``speak_first``: the model opens the call by its
    instructions. ``dtmf_to_model``: digits go to the model as user messages
    unless an ``on_dtmf``/``on("dtmf")`` handler takes them. ``record``: a
    folder for a WAV and a JSONL per call. ``reconnect_attempts``: tries to
    restore a dropped Realtime connection before the call ends (0: never);
    ``recycle_after_s``: the session's age at which an idle one is replaced
    (before the API's 60-minute cap; None: never).
    """

    def __init__(self, instructions: str | None = None, *, voice: str | None = None, tools=(),
                 vad: str | None = "server_vad", mode: str | None = None,
                 transcription: str | None = "gpt-4o-mini-transcribe", greeting: str | None = None,
                 speak_first: bool = False, session: dict | None = None, dtmf_to_model: bool = True,
                 record: str | None = None, reconnect_attempts: int = 4,
                 recycle_after_s: float | None = 55 * 60) -> None:
        self.config = CallConfig(instructions=instructions, voice=voice, vad=vad, mode=mode,
                                 transcription=transcription, greeting=greeting, speak_first=speak_first,
                                 session=session)
        for t in tools:
            self.tool(t)
        self.dtmf_to_model = dtmf_to_model
        self.record = record
        self.reconnect_attempts = reconnect_attempts
        self.recycle_after_s = recycle_after_s
        self.setups: list[Callable] = []
        self.handlers: dict[type, list[Callable]] = {}

    def __repr__(self) -> str:
        return f"<Agent tools={[t.name for t in self.config.tools]}>"

    # -- declaring ----------------------------------------------------------------------------
    def tool(self, fn: Callable | Tool | None = None, **options):
        """Register a tool (``@agent.tool`` or ``@agent.tool(timeout=30)``); see
        :func:`rtfast.bridge.tools.tool`. Returns the function unchanged."""
        def add(f):
            t = f if isinstance(f, Tool) else make_tool(f, **options)
            if self.config.tool(t.name) is not None:
                raise ValueError(f"a tool named {t.name!r} is already registered")
            self.config.tools.append(t)
            return f
        return add(fn) if fn is not None else add

    def setup(self, fn: Callable) -> Callable:
        """Register a per-call setup handler ``(ctx)``, run once the carrier's
        start message arrived and before the session starts: it may change
        ``ctx.config`` or call ``ctx.refuse(reason)``."""
        self.setups.append(fn)
        return fn

    def on(self, kind):
        """Register an event handler ``(ctx, event)`` for an event class or one of
        :data:`EVENT_NAMES` (``"transcript"``, ``"tool_call"``, ``"barge_in"``,
        ``"dtmf"``, ``"call_ended"``, ``"error"``, ``"reconnected"``...)."""
        cls = EVENT_NAMES.get(kind, kind) if isinstance(kind, str) else kind
        if not isinstance(cls, type):
            raise ValueError(f"unknown event {kind!r}; expected a class or one of {', '.join(EVENT_NAMES)}")

        def add(fn):
            self.handlers.setdefault(cls, []).append(fn)
            return fn
        return add

    def on_dtmf(self, fn: Callable) -> Callable:
        """Take the keypad digits: ``fn(ctx, digit)``; they no longer reach the model."""
        self.dtmf_to_model = False
        self.handlers.setdefault(Dtmf, []).append(lambda ctx, ev: fn(ctx, ev.digit))
        return fn


class CallContext:
    """One call, as the application sees it.

    ``call_id`` (the bridge's), ``carrier``, ``start`` (the carrier's typed
    :class:`~rtfast.bridge.carriers.Start`: ``call_id``, ``custom_parameters``...),
    ``request`` (the websocket upgrade: path, query, headers), ``config`` (this
    call's :class:`CallConfig`; changes count until the session starts),
    ``state`` (a dict for the application), ``summary`` (at the end).
    """

    __rtfast_context__ = True
    __slots__ = ("call_id", "carrier", "start", "request", "config", "state", "summary", "agent", "_io", "__weakref__")

    def __init__(self, io, agent: Agent, call_id: str, carrier: str, request: Request) -> None:
        self._io, self.agent = io, agent
        self.call_id, self.carrier, self.request = call_id, carrier, request
        self.start: Start | None = None
        self.config = agent.config.copy()
        self.state: dict = {}
        self.summary: dict | None = None

    def __repr__(self) -> str:
        return f"<CallContext {self.call_id} {self.carrier}>"

    def refuse(self, reason: str = "refused by the application"):
        """In a setup handler: do not take this call (the bridge hangs up)."""
        raise Refused(reason)

    def say(self, text: str) -> None:
        """The assistant says ``text`` (after whatever it is saying now)."""
        self._io.do(lambda d, out: d.say(text, out))

    def send_text(self, text: str) -> None:
        """Tell the model something as the user and let it answer."""
        self._io.do(lambda d, out: d.user_text(text, out))

    async def hangup(self, say: str | None = None, timeout: float = 30.0) -> None:
        """End the call, after ``say`` (if given) has been spoken and played."""
        await self._io.hangup(say, timeout)

    async def transfer(self, to: str, say: str | None = None, timeout: float = 30.0) -> None:
        """Hand the call to ``to`` (a number or SIP URI) through the carrier's
        REST API (:mod:`rtfast.bridge.control`), after ``say`` has played."""
        await self._io.transfer(to, say, timeout)


async def call_handler(fn: Callable, *args) -> Any:
    """Run a handler that may be a plain function or a coroutine function."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
