"""The asyncio side of one agent call: runs the application's handlers.

:class:`AgentCall` sits beside the server's per-call I/O object (``io``, see
:mod:`rtfast.bridge.server`) and turns what the sans-I/O :class:`Call` and
:class:`Dialog` report into handler runs: per-call setup, tools (each in its
own task, so audio keeps flowing while one runs), digits, event handlers,
hang-up and transfer through the carrier's REST API, the recording, and the
replacement of the Realtime connection when it drops or nears its time cap.

What ``io`` offers it: ``call``, ``id``, ``log``, ``server``,
``send_realtime(frames)``, ``hold_realtime(bool)``, ``end()``, ``done``, and
``reopen_realtime()`` (a coroutine returning a new, not yet attached socket)
with ``attach_realtime(ws, frames)``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from rtfast.bridge.app import (Agent, CallContext, CallError, CallSummary, Reconnected, Refused, Request,
                               ToolResult, call_handler)
from rtfast.bridge.call import BargeIn, CallEnded
from rtfast.bridge.carriers import Dtmf, Start
from rtfast.bridge.dialog import Dialog, ToolCall, Transcript
from rtfast.bridge.tools import error_output
from rtfast.errors import CallControlError, ProtocolError

__all__ = ["AgentCall"]

log = logging.getLogger("rtfast.bridge")


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class AgentCall:
    """One call's application state (see the module's docstring)."""

    def __init__(self, io, agent: Agent, request: Request) -> None:
        self.io, self.agent = io, agent
        self.ctx = CallContext(self, agent, io.id, io.server.carrier, request)
        # What the server was given (--instructions, --voice, session=...) fills what the agent leaves open.
        opts, cfg = io.server.call_options, self.ctx.config
        if cfg.instructions is None:
            cfg.instructions = opts.get("instructions")
        if cfg.voice is None:
            cfg.voice = opts.get("voice")
        cfg.session = {**(opts.get("session") or {}), **cfg.session}
        self.dialog = Dialog(io.call.session)
        self.tasks: set[asyncio.Task] = set()
        self.ready = not agent.setups          # no setup handler: the session starts at once
        self.recorder = None
        self.reconnects = 0
        self.reconnecting = False
        self.closing = False
        self._recycle: asyncio.TimerHandle | None = None
        self._failed_handlers: set = set()
        if self.ready:
            io.call.reconfigure(**self.ctx.config.call_options())

    # -- the first frames -------------------------------------------------------------------------
    def opening_frames(self) -> list[bytes]:
        """What opens the Realtime session: nothing yet if a setup handler must
        run first (the server holds the caller's audio until then)."""
        if not self.ready:
            return []
        return [self.io.call.session_update(), *self._first_turn()]

    def _first_turn(self) -> list[bytes]:
        out: list[bytes] = []
        cfg = self.ctx.config
        if cfg.greeting:
            self.dialog.say(cfg.greeting, out)
        elif cfg.speak_first:
            self.dialog.want_response = True
            self.dialog._next(out)
        return out

    def started(self, loop: asyncio.AbstractEventLoop) -> None:
        """The Realtime socket is open for the first time."""
        self._schedule_recycle(loop)

    # -- events from the call ---------------------------------------------------------------------
    def events(self, evs) -> None:
        """Everything but audio that the Call reported, in order."""
        for ev in evs:
            t = type(ev)
            if t is Start:
                self._on_start(ev)
            elif t is Dtmf:
                if self.recorder is not None:
                    self.recorder.event("dtmf", _now_ms(), digit=ev.digit)
                if self.agent.dtmf_to_model and self.ready:
                    self.do(lambda d, out, digit=ev.digit: d.dtmf(digit, out))
                self.emit(ev)
            elif t is BargeIn:
                if self.recorder is not None:
                    self.recorder.event("barge_in", _now_ms(), item_id=ev.item_id, action=ev.action,
                                        audio_end_ms=ev.audio_end_ms)
                self.emit(ev)
            elif t is CallEnded:
                self.emit(ev)
            elif isinstance(ev, ProtocolError):
                self.emit(CallError("bad_frame", str(ev)))
            else:
                kind = getattr(ev, "type", None)
                if kind is None:
                    self.emit(ev)
                    continue
                out: list = []
                found: list = []
                self.dialog.feed(ev, out, found)
                if out:
                    self.io.send_realtime(out)
                for f in found:
                    if type(f) is ToolCall:
                        self._run_tool(f)
                    elif type(f) is Transcript and self.recorder is not None:
                        self.recorder.event("transcript", _now_ms(), role=f.role, text=f.text)
                    self.emit(f)
                if kind == "error":
                    err = ev.error
                    if getattr(err, "code", None) not in ("response_cancel_not_active",):
                        self.emit(CallError("realtime", getattr(err, "message", None) or str(err)))

    def emit(self, ev) -> None:
        handlers = self.agent.handlers.get(type(ev))
        if not handlers:
            return
        for fn in handlers:
            try:
                result = fn(self.ctx, ev)
            except Exception as exc:
                self._handler_failed(fn, exc)
                continue
            if asyncio.iscoroutine(result):
                self._spawn(self._await_handler(fn, result))

    async def _await_handler(self, fn, coro) -> None:
        try:
            await coro
        except Exception as exc:
            self._handler_failed(fn, exc)

    def _handler_failed(self, fn, exc: BaseException) -> None:
        # Once per handler per call: a handler failing on every transcript must not flood the log.
        if fn not in self._failed_handlers:
            self._failed_handlers.add(fn)
            self.io.log.error("call %s: handler %s raised %s: %s", self.io.id, getattr(fn, "__name__", fn),
                              type(exc).__name__, exc, exc_info=exc)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- setup ------------------------------------------------------------------------------------
    def _on_start(self, start: Start) -> None:
        self.ctx.start = start
        if self.agent.record and self.recorder is None:
            from rtfast.bridge.recording import Recorder    # only agents that record pay for it

            self.recorder = Recorder(self.agent.record, self.io.id, audio_format=self.io.call.carrier_format,
                                     start_ms=_now_ms())
            self.io.call.recorder = self.recorder
        if not self.ready:
            self._spawn(self._setup())
        else:
            self.emit(start)

    async def _setup(self) -> None:
        ctx = self.ctx
        try:
            for fn in self.agent.setups:
                await call_handler(fn, ctx)
        except Refused as exc:
            self.io.log.info("call %s: refused by the application: %s", self.io.id, exc)
            await self._end_call(reason="refused")
            return
        except Exception as exc:                        # the call goes on with the configuration so far
            self._handler_failed(self.agent.setups[0], exc)
            self.emit(CallError("setup", f"{type(exc).__name__}: {exc}"))
        call = self.io.call
        try:
            call.reconfigure(**ctx.config.call_options())
        except ValueError as exc:
            self.emit(CallError("setup", str(exc)))
        self.ready = True
        self.dialog.session = call.session
        self.io.session_ready([call.session_update(), *self._first_turn()])
        self.emit(ctx.start)

    # -- tools --------------------------------------------------------------------------------------
    def _run_tool(self, call: ToolCall) -> None:
        self._spawn(self._tool(call))

    async def _tool(self, call: ToolCall) -> None:
        t0 = _now_ms()
        tool = self.ctx.config.tool(call.name)
        if tool is None:
            output = error_output(f"no tool named {call.name!r}")
        else:
            output = await tool.run(self.ctx, call.arguments)
        error = output.startswith('{"error":')
        self.do(lambda d, out: d.tool_output(call.call_id, output, out))
        ms = _now_ms() - t0
        if self.recorder is not None:
            self.recorder.event("tool_call", _now_ms(), name=call.name, arguments=call.arguments, output=output,
                                error=error)
        if error:
            self.io.log.warning("call %s: tool %s answered an error: %s", self.io.id, call.name, output[:200])
        self.emit(ToolResult(call.call_id, call.name, output, error, ms))

    def do(self, fn) -> None:
        """Run a Dialog step and send what it produced."""
        out: list = []
        fn(self.dialog, out)
        if out:
            self.io.send_realtime(out)

    # -- ending, transferring ------------------------------------------------------------------------
    async def _played(self, timeout: float) -> None:
        """Until what the model was asked to say has been said and played."""
        deadline = _now_ms() + timeout * 1000
        call = self.io.call
        while _now_ms() < deadline and not self.io.done.done():
            if not self.dialog.saying and not self.dialog.session.response_id and call.buffered_ms == 0 \
                    and call.playing_until <= _now_ms():
                return
            await asyncio.sleep(0.02)

    async def hangup(self, say: str | None, timeout: float) -> None:
        if say:
            self.do(lambda d, out: d.say(say, out))
            await self._played(timeout)
        await self._end_call(reason="hangup")

    async def transfer(self, to: str, say: str | None, timeout: float) -> None:
        control = self.io.server.control
        if control is None:
            raise CallControlError(self.io.server.carrier, "transfer", None, "no call control is configured: "
                                   "set the carrier's credentials in the environment (see rtfast.bridge.control)")
        if say:
            self.do(lambda d, out: d.say(say, out))
            await self._played(timeout)
        await control.transfer(self.ctx.start, to)
        self.io.log.info("call %s: transferred", self.io.id)
        if self.recorder is not None:
            self.recorder.event("transfer", _now_ms(), to=to)

    async def _end_call(self, reason: str) -> None:
        self.closing = True
        control = self.io.server.control
        if control is not None and self.ctx.start is not None:
            try:
                await control.hangup(self.ctx.start)
            except Exception as exc:                    # closing the stream below still ends our side
                self.io.log.warning("call %s: REST hang-up failed: %s", self.io.id, exc)
        self.io.log.info("call %s: ended by the application (%s)", self.io.id, reason)
        self.io.end()

    # -- the Realtime connection's life --------------------------------------------------------------
    def realtime_lost(self, code: int, reason: str) -> bool:
        """The Realtime socket closed while the call goes on: reconnect (True),
        or give up at once (False: no attempts configured, or we are ending)."""
        if self.closing or self.agent.reconnect_attempts <= 0:
            return False
        if self.reconnecting:
            self.io.hold_realtime(True)       # a recycle under way lost its old socket: its new one takes over
            return True
        self._spawn(self._reconnect("dropped", f"{code} {reason}".strip()))
        return True

    async def _reconnect(self, why: str, detail: str) -> None:
        io = self.io
        self.reconnecting = True
        t0 = _now_ms()
        planned = why == "recycled"
        if not planned:
            io.hold_realtime(True)                       # nothing goes to a socket that is gone
            io.log.warning("call %s: realtime connection lost (%s): reconnecting", io.id, detail)
        ws = None
        attempt = 0
        try:
            for attempt in range(1, self.agent.reconnect_attempts + 1):
                if attempt > 1:
                    await asyncio.sleep(min(0.25 * 2 ** (attempt - 2), 2.0))
                try:
                    ws = await io.reopen_realtime()
                    break
                except Exception as exc:
                    io.log.warning("call %s: reconnect attempt %d failed: %s: %s", io.id, attempt,
                                   type(exc).__name__, exc)
            if ws is None:
                io.log.error("call %s: the realtime connection could not be restored after %d attempts: "
                             "ending the call", io.id, attempt)
                self.emit(CallError("reconnect", f"gave up after {attempt} attempts"))
                await self._end_call(reason="realtime lost")
                return
            call = io.call
            frames = [call.realtime_reset()]
            self.dialog.session = call.session
            items = self.dialog.replay(frames)
            io.attach_realtime(ws, frames)
            self.reconnects += 1
            gap = _now_ms() - t0
            io.log.info("call %s: realtime %s after %.0f ms (attempt %d, %d items replayed)", io.id,
                        "recycled" if planned else "reconnected", gap, attempt, items)
            self.emit(Reconnected(why, gap, attempt, items))
            self._schedule_recycle(asyncio.get_running_loop())
        finally:
            self.reconnecting = False
            io.hold_realtime(False)

    def _schedule_recycle(self, loop) -> None:
        if self._recycle is not None:
            self._recycle.cancel()
        after = self.agent.recycle_after_s
        if after is not None and self.agent.reconnect_attempts > 0:
            self._recycle = loop.call_later(after, self._maybe_recycle, loop)

    def _maybe_recycle(self, loop) -> None:
        """Replace the session before the API's time cap, while the model is idle
        (no response, nothing queued or running); ask again in a second if it is not."""
        self._recycle = None
        if self.io.done.done() or self.closing:
            return
        call, dialog = self.io.call, self.dialog
        idle = (call.session.response_id is None and not dialog.running and not dialog.saying
                and call.buffered_ms == 0 and not call.session.speaking and not self.reconnecting)
        if idle:
            self._spawn(self._reconnect("recycled", "session age"))
        else:
            self._recycle = loop.call_later(1.0, self._maybe_recycle, loop)

    # -- the end ----------------------------------------------------------------------------------
    async def finish(self, summary: dict) -> None:
        """The call is over: stop what still runs for it and report."""
        if self._recycle is not None:
            self._recycle.cancel()
        current = asyncio.current_task()
        running = [t for t in self.tasks if t is not current]
        for t in running:
            t.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        summary["reconnects"] = self.reconnects
        summary["tool_calls"] = self.dialog.tool_calls
        if self.recorder is not None:
            self.recorder.close(_now_ms())
            summary["recording"] = str(self.recorder.wav_path) if hasattr(self.recorder, "wav_path") else True
        self.ctx.summary = summary
        handlers = self.agent.handlers.get(CallSummary)
        if handlers:
            ev = CallSummary(summary)
            for fn in handlers:
                try:
                    await call_handler(fn, self.ctx, ev)
                except Exception as exc:
                    self._handler_failed(fn, exc)
