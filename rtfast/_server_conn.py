"""One websocket connection of :mod:`rtfast.server`: reads client events, streams responses.

The handlers answer as the real API does, raising :class:`ClientError` for what it
refuses (the read loop turns that into an ``error`` event carrying the client's
``event_id``). Audio deltas, the hot frames, are built from a byte template.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import re
import secrets
from typing import TYPE_CHECKING, Any, Callable

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from rtfast import b64
from rtfast._server_session import (ClientError, EnergyVad, FunctionCall, Reply, Script, ServerSession,
                                    SessionConfig, UserInput, bytes_per_ms, decode_audio, parse_format_ga,
                                    parse_modalities, tone)
from rtfast.errors import Base64Error

if TYPE_CHECKING:
    from rtfast.server import RealtimeServer

log = logging.getLogger("rtfast.server")

_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([^"\\]{0,128})"')


async def next_client_event(conn) -> tuple[Any, str | None]:
    """The next client event on ``conn.ws`` and its ``event_id`` (a str, else None), as
    every protocol's connection reads them. Invalid JSON is recorded, answered with the
    API's ``invalid_json`` error (its event_id found by a scan of the bytes) and skipped."""
    while True:
        data = await conn.ws.recv(decode=False)
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            conn.s.received.append({"_invalid": data.decode("utf-8", "replace")})
            m = _EVENT_ID.search(data)
            await conn.error(ClientError("invalid_json", "Invalid JSON: the event could not be parsed."),
                             m.group(1).decode() if m else None)
            continue
        conn.s.received.append(event)
        event_id = event.get("event_id") if isinstance(event, dict) else None
        return event, event_id if isinstance(event_id, str) else None


_SAY_EXACTLY = re.compile(r"[Ss]ay exactly[^:]*:\s*(.+)$", re.S)


class _Response:
    __slots__ = ("id", "cancelled", "reason", "task", "audio", "conversation", "params", "output", "fmt", "voice")

    def __init__(self, rid: str, audio: bool, fmt: str, voice: Any, conversation: bool, params: dict) -> None:
        self.id, self.audio, self.fmt, self.voice, self.conversation, self.params = \
            rid, audio, fmt, voice, conversation, params
        self.cancelled = asyncio.Event()
        self.reason: str | None = None
        self.task: asyncio.Task | None = None
        self.output: list[dict] = []


class _Connection:
    """Drives one websocket: reads client events, streams responses."""

    def __init__(self, server: RealtimeServer, ws: ServerConnection, state: ServerSession) -> None:
        self.server, self.ws, self.s = server, ws, state
        self.beta = state.beta
        self._prefix = secrets.token_hex(5)
        self._n = itertools.count(1)
        self.conv_id = self.new_id("conv")
        self.vad = EnergyVad(24000 if state.config.input_format == "pcm" else 8000)
        self.buf: list[bytes] = []          # uncommitted input audio, wire bytes
        self.buf_ms = 0.0
        self.speech_item: str | None = None  # id of the item the current speech will commit to
        self.audio: dict[str, tuple[str, bytearray]] = {}  # item id -> (format, wire bytes)
        self.active: _Response | None = None
        self.last_response_id: str | None = None
        self.sent = 0
        self.stalled = False
        self.tasks: set[asyncio.Task] = set()
        self.misbehave = True
        self.on_start: Callable | None = None    # a coroutine function run once session.created is out

    def new_id(self, kind: str) -> str:
        return f"{kind}_{self._prefix}{next(self._n):09d}"

    # -- sending -------------------------------------------------------------------------------

    async def send(self, type_: str, **fields: Any) -> None:
        await self.send_frame(orjson.dumps({"type": type_, "event_id": self.new_id("event"), **fields}))

    async def send_frame(self, data: bytes) -> None:
        srv = self.server
        if self.stalled:
            return
        await self.ws.send(data, text=True)
        self.sent += 1
        if not self.misbehave:
            return
        if self.sent == srv.garbage_after_events:
            await self.ws.send(b"}{ this is not json", text=True)
        if self.sent == srv.stall_after_events:
            self.stalled = True
        if self.sent == srv.close_after_events:
            if srv.close_code is None:
                self.ws.transport.abort()
            else:
                await self.ws.close(srv.close_code, "closed by the test server (close_after_events)")
            raise ConnectionClosed(None, None)

    async def expire(self, seconds: float) -> None:
        """The session reached its length cap: say so and close, as the API does."""
        minutes = f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} seconds"
        message = f"Your session hit the maximum duration of {minutes}."
        try:
            await self.error(ClientError("session_expired", message), None)
            await self.ws.close(1001, message)
        except ConnectionClosed:
            pass

    async def error(self, err: ClientError, event_id: str | None) -> None:
        await self.send("error", error={"type": err.type, "code": err.code, "message": err.message,
                                        "param": err.param, "event_id": event_id})

    # -- the read loop --------------------------------------------------------------------------

    async def run(self) -> None:
        await self.send("session.created", session=self.s.config.render(self.beta))
        if self.on_start is not None:       # a simulated SIP caller (rtfast._server_calls)
            task = asyncio.create_task(self.on_start(self))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        while True:
            event, event_id = await next_client_event(self)
            try:
                await self.dispatch(event)
            except ClientError as err:
                await self.error(err, event_id)

    async def dispatch(self, event: Any) -> None:
        if not isinstance(event, dict):
            raise ClientError("invalid_type", "Invalid event: expected a JSON object.")
        kind = _field(event, "type", str)
        handler = self.HANDLERS.get(kind)
        if handler is None or (kind == "transcription_session.update" and not self.beta):
            allowed = [k for k in self.HANDLERS if self.beta or k != "transcription_session.update"]
            raise ClientError("invalid_value", f"Invalid value: '{kind}'. Supported values are: "
                              + ", ".join(f"'{k}'" for k in allowed) + ".", "type")
        await handler(self, event)

    # -- session ----------------------------------------------------------------------------------

    async def session_update(self, ev: dict) -> None:
        old_fmt = self.s.config.input_format
        self.s.config = self.s.config.updated(_field(ev, "session", dict), self.beta)
        if self.s.config.input_format != old_fmt:
            self.vad.reset(24000 if self.s.config.input_format == "pcm" else 8000)
        await self.send("session.updated", session=self.s.config.render(self.beta))

    async def transcription_session_update(self, ev: dict) -> None:
        s = _field(ev, "session", dict)
        update = {k: s[k] for k in ("input_audio_format", "input_audio_transcription", "turn_detection",
                                    "input_audio_noise_reduction") if k in s}
        self.s.config = self.s.config.updated(update, True)
        c = self.s.config
        td = c.turn_detection and {k: c.turn_detection.get(k) for k in
                                   ("type", "threshold", "prefix_padding_ms", "silence_duration_ms")}
        await self.send("transcription_session.updated", session={
            "client_secret": {"value": "ek_" + secrets.token_hex(12), "expires_at": c.expires_at},
            "input_audio_format": update.get("input_audio_format", "pcm16"),
            "input_audio_transcription": c.transcription, "modalities": ["text"], "turn_detection": td})

    # -- input audio --------------------------------------------------------------------------------

    async def input_audio_buffer_append(self, ev: dict) -> None:
        try:
            raw = b64.decode(_field(ev, "audio", str))
        except Base64Error as exc:
            raise ClientError("invalid_value", f"Invalid 'audio': not valid base64 ({exc}).", "audio") from None
        c = self.s.config
        self.buf.append(raw)
        self.buf_ms += len(raw) / bytes_per_ms(c.input_format)
        if c.turn_detection is None:
            return
        td = c.turn_detection
        for what, ms in self.vad.feed(decode_audio(raw, c.input_format), c.vad_threshold(),
                                      int(td.get("prefix_padding_ms") or 0), c.silence_ms()):
            if what == "start":
                self.speech_item = self.new_id("item")
                await self.send("input_audio_buffer.speech_started", audio_start_ms=ms, item_id=self.speech_item)
                if self.active is not None and td.get("interrupt_response", True):
                    self.cancel_active("turn_detected")
            else:
                item_id, self.speech_item = self.speech_item, None
                await self.send("input_audio_buffer.speech_stopped", audio_end_ms=ms, item_id=item_id)
                await self.commit(item_id)
                if td.get("create_response", True) and self.active is None:
                    self.start_response({})

    async def input_audio_buffer_commit(self, ev: dict) -> None:
        if self.buf_ms < 100:
            raise ClientError("input_audio_buffer_commit_empty",
                              "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                              f"of audio, but buffer only has {self.buf_ms:.2f}ms of audio.")
        item_id, self.speech_item = self.speech_item or self.new_id("item"), None
        self.vad.reset()
        await self.commit(item_id)

    async def input_audio_buffer_clear(self, ev: dict) -> None:
        self.buf, self.buf_ms, self.speech_item = [], 0.0, None
        self.vad.reset()
        await self.send("input_audio_buffer.cleared")

    async def commit(self, item_id: str) -> None:
        raw = b"".join(self.buf)
        self.buf, self.buf_ms = [], 0.0
        prev = self.s.items[-1]["id"] if self.s.items else None
        await self.send("input_audio_buffer.committed", previous_item_id=prev, item_id=item_id)
        self.audio[item_id] = (self.s.config.input_format, bytearray(raw))
        item = {"id": item_id, "type": "message", "object": "realtime.item", "status": "completed",
                "role": "user", "content": [{"type": "input_audio", "transcript": None}]}
        await self.add_item(item)
        if self.s.config.transcription:
            ms = len(raw) / (48 if self.s.config.input_format == "pcm" else 8)
            given = self.server.user_transcript
            text = given(self.s, ms) if callable(given) else given or f"({ms:.0f} ms of speech)"
            item["content"][0]["transcript"] = text
            await self.send("conversation.item.input_audio_transcription.completed", item_id=item_id,
                            content_index=0, transcript=text, usage={"type": "duration", "seconds": ms / 1000})

    # -- conversation items ------------------------------------------------------------------------

    async def add_item(self, item: dict, after: str = "end", done: bool = True) -> None:
        """Insert after the item ``after`` (or at the ``"end"``, or first: ``"root"``) and announce it
        (GA: ``added``, then ``done`` unless the item is still being generated)."""
        items = self.s.items
        at = {"end": len(items), "root": 0}.get(after)
        if at is None:
            at = items.index(self.find(after, "invalid_value", "previous_item_id")) + 1
        items.insert(at, item)
        prev = items[at - 1]["id"] if at else None
        shown = _without_audio(item)
        if self.beta:
            await self.send("conversation.item.created", previous_item_id=prev, item=shown)
        else:
            await self.send("conversation.item.added", previous_item_id=prev, item=shown)
            if done:
                await self.send("conversation.item.done", previous_item_id=prev, item=shown)

    def previous_id(self, item: dict) -> str | None:
        items = self.s.items
        at = next((i for i, it in enumerate(items) if it is item), 0)
        return items[at - 1]["id"] if at else None

    def find(self, item_id: str, code: str, param: str = "item_id") -> dict:
        for item in self.s.items:
            if item["id"] == item_id:
                return item
        raise ClientError(code, f"Item with item_id not found: {item_id}", param)

    async def conversation_item_create(self, ev: dict) -> None:
        item = dict(_field(ev, "item", dict))
        kind = item.get("type")
        need = {"message": ("role", "content"), "function_call": ("name", "arguments"),
                "function_call_output": ("call_id", "output")}
        if kind not in need:
            raise ClientError("invalid_value", f"Invalid value: {kind!r}. Supported values are: 'message', "
                              "'function_call', and 'function_call_output'.", "item.type")
        for key in need[kind]:
            _field(item, key, list if key == "content" else str, "item.")
        if kind == "message" and item["role"] not in ("user", "assistant", "system"):
            raise ClientError("invalid_value", f"Invalid value: {item['role']!r}. Supported values are: "
                              "'user', 'assistant', and 'system'.", "item.role")
        after = ev.get("previous_item_id") or "end"
        if after not in ("end", "root"):
            self.find(after, "invalid_value", "previous_item_id")
        if item.get("id") and any(it["id"] == item["id"] for it in self.s.items):
            raise ClientError("invalid_value", f"Item with id '{item['id']}' already exists.", "item.id")
        item.setdefault("id", self.new_id("item"))
        item.update(object="realtime.item", status="completed")
        await self.add_item(item, after)

    async def conversation_item_truncate(self, ev: dict) -> None:
        item_id = _field(ev, "item_id", str)
        index = _field(ev, "content_index", int)
        end = _field(ev, "audio_end_ms", int)
        item = self.find(item_id, "item_truncate_invalid_item_id")
        content = item.get("content") or []
        audio_types = ("audio",) if self.beta else ("output_audio",)
        if (item.get("role") != "assistant" or index >= len(content) or index < 0
                or content[index].get("type") not in audio_types or item_id not in self.audio):
            raise ClientError("unsupported_content_type", "Only model output audio messages can be truncated",
                              "content_index")
        fmt, data = self.audio[item_id]
        have = len(data) // bytes_per_ms(fmt)
        if end < 0 or end > have:
            raise ClientError("invalid_value", f"Audio content of {have}ms is already shorter than {end}ms",
                              "audio_end_ms")
        del data[end * bytes_per_ms(fmt):]
        content[index]["transcript"] = ""
        await self.send("conversation.item.truncated", item_id=item_id, content_index=index, audio_end_ms=end)

    async def conversation_item_delete(self, ev: dict) -> None:
        item = self.find(_field(ev, "item_id", str), "item_delete_invalid_item_id")
        self.s.items.remove(item)
        self.audio.pop(item["id"], None)
        await self.send("conversation.item.deleted", item_id=item["id"])

    async def conversation_item_retrieve(self, ev: dict) -> None:
        item = self.find(_field(ev, "item_id", str), "item_retrieve_invalid_item_id")
        shown = _without_audio(item)
        if item["id"] in self.audio and shown.get("content"):
            shown["content"][0]["audio"] = b64.encode(bytes(self.audio[item["id"]][1])).decode()
        await self.send("conversation.item.retrieved", item=shown)

    # -- responses ------------------------------------------------------------------------------

    async def response_create(self, ev: dict) -> None:
        if self.active is not None:
            raise ClientError("conversation_already_has_active_response",
                              f"Conversation already has an active response in progress: {self.active.id}. "
                              "Wait until the response is finished before creating a new response.")
        params = ev.get("response") or {}
        if not isinstance(params, dict):
            raise ClientError("invalid_type", "Invalid type for 'response': expected an object.", "response")
        known = ({"modalities", "instructions", "voice", "output_audio_format", "tools", "tool_choice",
                  "temperature", "max_response_output_tokens", "conversation", "metadata", "input"} if self.beta else
                 {"output_modalities", "instructions", "audio", "tools", "tool_choice", "max_output_tokens",
                  "conversation", "metadata", "input", "prompt", "parallel_tool_calls", "reasoning"})
        for key in params:
            if key not in known:
                raise ClientError("unknown_parameter", f"Unknown parameter: 'response.{key}'.", f"response.{key}")
        self.start_response(params)

    def start_response(self, params: dict) -> None:
        c = self.s.config
        audio, fmt, voice = c.audio_out, c.output_format, c.voice
        mods = params.get("modalities" if self.beta else "output_modalities")
        if mods is not None:
            audio = parse_modalities(mods, "response.modalities" if self.beta else "response.output_modalities")
        if self.beta:
            fmt = {"pcm16": "pcm", "g711_ulaw": "pcmu", "g711_alaw": "pcma"}.get(params.get("output_audio_format"), fmt)
            voice = params.get("voice", voice)
        else:
            out = (params.get("audio") or {}).get("output") or {}
            if "format" in out:
                fmt = parse_format_ga(out["format"], "response.audio.output.format")
            voice = out.get("voice", voice)
        resp = _Response(self.new_id("resp"), audio, fmt, voice, params.get("conversation", "auto") != "none", params)
        self.active = resp
        resp.task = asyncio.create_task(self.stream(resp))
        self.tasks.add(resp.task)
        resp.task.add_done_callback(self.tasks.discard)

    def cancel_active(self, reason: str) -> None:
        resp = self.active
        if resp is not None and not resp.cancelled.is_set():
            resp.reason = reason
            resp.cancelled.set()

    async def response_cancel(self, ev: dict) -> None:
        rid = ev.get("response_id")
        if self.active is None or (rid is not None and rid != self.active.id):
            raise ClientError("response_cancel_not_active", "Cancellation failed: no active response found.")
        self.cancel_active("client_cancelled")

    async def output_audio_buffer_clear(self, ev: dict) -> None:
        rid = self.active.id if self.active else self.last_response_id
        if rid is None:
            raise ClientError("invalid_value", "No response audio to clear.")
        await self.send("output_audio_buffer.cleared", response_id=rid)

    HANDLERS: dict[str, Callable] = {
        "session.update": session_update,
        "input_audio_buffer.append": input_audio_buffer_append,
        "input_audio_buffer.commit": input_audio_buffer_commit,
        "input_audio_buffer.clear": input_audio_buffer_clear,
        "conversation.item.create": conversation_item_create,
        "conversation.item.truncate": conversation_item_truncate,
        "conversation.item.delete": conversation_item_delete,
        "conversation.item.retrieve": conversation_item_retrieve,
        "response.create": response_create,
        "response.cancel": response_cancel,
        "output_audio_buffer.clear": output_audio_buffer_clear,
        "transcription_session.update": transcription_session_update,
    }

    # -- streaming a response -----------------------------------------------------------------

    def user_input(self) -> UserInput:
        items = self.s.items
        last = items[-1] if items else None
        output = last if last and last.get("type") == "function_call_output" else None
        text, audio_ms = None, 0
        for item in reversed(items):
            if item.get("role") == "user":
                for part in item.get("content") or []:
                    if part.get("type") == "input_text":
                        text = part.get("text")
                if item["id"] in self.audio:
                    fmt, data = self.audio[item["id"]]
                    audio_ms = len(data) // bytes_per_ms(fmt)
                break
        return UserInput(text, audio_ms,
                         output and {"call_id": output.get("call_id"), "output": output.get("output")}, last)

    def render_response(self, resp: _Response, status: str, usage: dict | None = None) -> dict:
        details = None
        limit = resp.params.get("max_response_output_tokens" if self.beta else "max_output_tokens",
                                self.s.config.max_output_tokens)
        if status == "cancelled":
            details = {"type": "cancelled", "reason": resp.reason}
        common = {"object": "realtime.response", "id": resp.id, "status": status, "status_details": details,
                  "output": resp.output, "conversation_id": self.conv_id if resp.conversation else None,
                  "usage": usage, "metadata": resp.params.get("metadata")}
        if self.beta:
            return {**common, "modalities": ["text", "audio"] if resp.audio else ["text"], "voice": resp.voice,
                    "output_audio_format": {"pcm": "pcm16", "pcmu": "g711_ulaw", "pcma": "g711_alaw"}[resp.fmt],
                    "temperature": self.s.config.temperature, "max_output_tokens": limit}
        return {**common, "output_modalities": ["audio"] if resp.audio else ["text"],
                "max_output_tokens": limit,
                "audio": {"output": {"format": SessionConfig.format_ga(resp.fmt), "voice": resp.voice}}}

    async def pause(self, resp: _Response, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)  # let the reader see a cancel or a barge-in
            return
        try:
            await asyncio.wait_for(resp.cancelled.wait(), seconds)
        except TimeoutError:
            pass

    async def stream(self, resp: _Response) -> None:
        try:
            await self.send("response.created", response=self.render_response(resp, "in_progress"))
            tools = self.s.config.tool_names() + [t.get("name") for t in resp.params.get("tools") or []
                                                  if isinstance(t, dict) and t.get("name")]
            script = self.server.script
            user = self.user_input()
            try:
                said = _SAY_EXACTLY.search(str(resp.params.get("instructions") or ""))
                if said and isinstance(script, Script):
                    # Asked to say given words (a greeting, a last sentence): the stand-in model does.
                    reply = Reply(said.group(1).strip(), script.audio_ms, None, script.latency_ms, script.realtime,
                                  script.chunk_ms)
                else:
                    reply = script(self.s, user, tools) if isinstance(script, Script) else script(self.s, user)
            except Exception as exc:  # a test's script bug: fail this response, keep the connection
                log.exception("rtfast.server: the script raised")
                self.active = None
                failed = self.render_response(resp, "failed")
                failed["status_details"] = {"type": "failed", "error": {"type": "server_error", "code": "script_error",
                                                                        "message": repr(exc)}}
                await self.send("response.done", response=failed)
                return
            await self.pause(resp, reply.latency_ms / 1000)
            if not resp.cancelled.is_set():
                if reply.function_call is not None:
                    await self.stream_call(resp, reply.function_call)
                else:
                    await self.stream_message(resp, reply)
            status = "cancelled" if resp.cancelled.is_set() else "completed"
            self.active, self.last_response_id = None, resp.id
            await self.send("response.done", response=self.render_response(resp, status, self.usage(resp)))
            await self.send("rate_limits.updated", rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5}])
        except ConnectionClosed:
            pass
        finally:
            if self.active is resp:
                self.active = None

    async def open_item(self, resp: _Response, item: dict) -> int:
        index = len(resp.output)
        resp.output.append(item)
        await self.send("response.output_item.added", response_id=resp.id, output_index=index, item=item)
        if resp.conversation:
            await self.add_item(item, done=False)
        return index

    async def close_item(self, resp: _Response, index: int, item: dict) -> None:
        item["status"] = "incomplete" if resp.cancelled.is_set() else "completed"
        await self.send("response.output_item.done", response_id=resp.id, output_index=index, item=item)
        if resp.conversation and not self.beta:
            await self.send("conversation.item.done", previous_item_id=self.previous_id(item), item=item)

    async def stream_message(self, resp: _Response, reply: Reply) -> None:
        beta = self.beta
        item = {"id": self.new_id("item"), "type": "message", "object": "realtime.item", "status": "in_progress",
                "role": "assistant", "content": []}
        index = await self.open_item(resp, item)
        ids = {"response_id": resp.id, "item_id": item["id"], "output_index": index, "content_index": 0}
        words = re.findall(r"\s*\S+", reply.text) or [""]
        sent_words: list[str] = []
        if resp.audio:
            part_type, content_type, key = "audio", "audio" if beta else "output_audio", "transcript"
            delta_name = "response.audio_transcript.delta" if beta else "response.output_audio_transcript.delta"
        else:
            part_type, content_type, key = "text", "text" if beta else "output_text", "text"
            delta_name = "response.text.delta" if beta else "response.output_text.delta"
        await self.send("response.content_part.added", **ids, part={"type": part_type, key: ""})

        async def words_until(n: int) -> None:
            while len(sent_words) < n and not resp.cancelled.is_set():
                sent_words.append(words[len(sent_words)])
                await self.send(delta_name, **ids, delta=sent_words[-1])

        if resp.audio:
            ms = reply.audio_ms if reply.audio_ms is not None else max(300, 70 * len(reply.text))
            audio = tone(ms, resp.fmt)
            step = bytes_per_ms(resp.fmt) * reply.chunk_ms
            chunks = max(1, math.ceil(len(audio) / step))
            played = bytearray()
            if resp.conversation:
                self.audio[item["id"]] = (resp.fmt, played)
            name = b"response.audio.delta" if beta else b"response.output_audio.delta"
            head = b'{"type":"' + name + b'","event_id":"'
            tail = orjson.dumps(ids)[1:-1]
            start = asyncio.get_running_loop().time()
            for i in range(chunks):
                await words_until(round(len(words) * (i + 1) / chunks))
                if resp.cancelled.is_set():
                    break
                piece = audio[i * step:(i + 1) * step]
                await self.send_frame(b"".join((head, self.new_id("event").encode(), b'",', tail,
                                                b',"delta":"', b64.encode(piece), b'"}')))
                played += piece
                delay = start + (i + 1) * reply.chunk_ms / 1000 - asyncio.get_running_loop().time()
                await self.pause(resp, delay if reply.realtime else 0)
            await self.send("response.audio.done" if beta else "response.output_audio.done", **ids)
        else:
            await words_until(len(words))
        text = "".join(sent_words)
        done_name = ("response.audio_transcript.done" if beta else "response.output_audio_transcript.done") \
            if resp.audio else ("response.text.done" if beta else "response.output_text.done")
        await self.send(done_name, **ids, **{key: text})
        await self.send("response.content_part.done", **ids, part={"type": part_type, key: text})
        item["content"] = [{"type": content_type, key: text}]
        await self.close_item(resp, index, item)

    async def stream_call(self, resp: _Response, call: FunctionCall) -> None:
        args = call.arguments if isinstance(call.arguments, str) else orjson.dumps(call.arguments).decode()
        item = {"id": self.new_id("item"), "type": "function_call", "object": "realtime.item",
                "status": "in_progress", "name": call.name, "call_id": call.call_id or self.new_id("call"),
                "arguments": ""}
        index = await self.open_item(resp, item)
        ids = {"response_id": resp.id, "item_id": item["id"], "output_index": index, "call_id": item["call_id"]}
        for i in range(0, len(args), 16):
            await self.send("response.function_call_arguments.delta", **ids, delta=args[i:i + 16])
            await self.pause(resp, 0)
        item["arguments"] = args
        extra = {} if self.beta else {"name": call.name}
        await self.send("response.function_call_arguments.done", **ids, arguments=args, **extra)
        await self.close_item(resp, index, item)

    def usage(self, resp: _Response) -> dict:
        out_text = sum(len(c.get("transcript") or c.get("text") or c.get("arguments") or "")
                       for it in resp.output for c in (it.get("content") or [it])) // 4 + 1
        out_audio = sum(len(self.audio[it["id"]][1]) // bytes_per_ms(self.audio[it["id"]][0]) // 50
                        for it in resp.output if it["id"] in self.audio)
        in_audio = sum(len(d) // bytes_per_ms(f) // 100 for i, (f, d) in self.audio.items()
                       if any(it["id"] == i and it.get("role") == "user" for it in self.s.items))
        in_text = len(self.s.config.instructions) // 4 + 1
        inp = {"text_tokens": in_text, "audio_tokens": in_audio, "cached_tokens": 0}
        if not self.beta:
            inp.update(image_tokens=0, cached_tokens_details={"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0})
        return {"total_tokens": in_text + in_audio + out_text + out_audio, "input_tokens": in_text + in_audio,
                "output_tokens": out_text + out_audio, "input_token_details": inp,
                "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio}}


def _field(obj: dict, key: str, kind: type, prefix: str = "") -> Any:
    """``obj[key]``, or the error the API gives when it is missing or of the wrong kind."""
    if key not in obj:
        raise ClientError("missing_required_parameter", f"Missing required parameter: '{prefix}{key}'.",
                          prefix + key)
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {str: "a string", int: "an integer", dict: "an object", list: "an array"}
        raise ClientError("invalid_type", f"Invalid type for '{prefix}{key}': expected {names[kind]}, "
                          f"but got {type(value).__name__} instead.", prefix + key)
    return value


def _without_audio(item: dict) -> dict:
    """A copy of ``item`` for events: content parts never carry their audio."""
    shown = dict(item)
    if "content" in shown:
        shown["content"] = [{k: v for k, v in part.items() if k != "audio"} for part in shown["content"]]
    return shown
