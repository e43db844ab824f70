"""rtfast.server: the local Realtime server, driven by plain websockets clients
and by the official openai client; every frame checked against the official models."""

from __future__ import annotations

import asyncio
import base64
import functools

import orjson
import pytest
import websockets
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent as GAServerEvent
from pydantic import BaseModel, TypeAdapter

from rtfast import g711
from rtfast._server_session import EnergyVad, tone
from rtfast.server import FunctionCall, RealtimeServer, Reply, Script

GA_EVENTS = TypeAdapter(GAServerEvent)
BETA_EVENTS = TypeAdapter(BetaServerEvent)
# The real API sends these session fields, which the SDK's session models do not declare.
SESSION_EXTRAS = {"object", "id", "expires_at"}
GENERATIONS = pytest.mark.parametrize("beta", [False, True], ids=["ga", "beta"])
TOOL = {"type": "function", "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def run(fn):
    """Run an async test on a fresh loop with a deadline."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 20))
    return wrapper


def extras(model, path):
    """Fields of a validated model (recursively) that the official model does not declare."""
    if isinstance(model, BaseModel):
        for key in model.model_extra or {}:
            if not (key in SESSION_EXTRAS and path.endswith("session")):
                yield f"{path}.{key}"
        for name in type(model).model_fields:
            yield from extras(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list):
        for i, value in enumerate(model):
            yield from extras(value, f"{path}[{i}]")


def check_frame(frame: bytes, beta: bool) -> dict:
    """Validate one server frame against the official union of its generation; no unknown fields."""
    event = orjson.loads(frame)
    model = (BETA_EVENTS if beta else GA_EVENTS).validate_python(event)
    assert model.type == event["type"]
    unknown = list(extras(model, event["type"]))
    assert not unknown, unknown
    return event


class Client:
    """A plain websockets client that keeps every frame it receives."""

    def __init__(self, ws, beta: bool) -> None:
        self.ws, self.beta, self.frames = ws, beta, []

    async def send(self, **event) -> None:
        await self.ws.send(orjson.dumps(event), text=True)

    async def recv(self, timeout: float = 5.0) -> dict:
        frame = await asyncio.wait_for(self.ws.recv(decode=False), timeout)
        self.frames.append(frame)
        return orjson.loads(frame)

    async def until(self, type_: str, timeout: float = 5.0) -> list[dict]:
        """Events up to and including the first of ``type_``."""
        got = []
        while not got or got[-1]["type"] != type_:
            got.append(await self.recv(timeout))
        return got

    async def response(self, timeout: float = 5.0) -> list[dict]:
        """Events up to response.done, having also read the rate_limits.updated that follows it."""
        events = await self.until("rate_limits.updated", timeout)
        assert events[-2]["type"] == "response.done"
        return events[:-1]

    def validate(self) -> None:
        for frame in self.frames:
            check_frame(frame, self.beta)


def connect(server: RealtimeServer, beta: bool = False, path: str = "/v1/realtime?model=gpt-realtime",
            headers: dict | None = None):
    hdrs = {"Authorization": "Bearer sk-test"} if headers is None else headers
    if beta:
        hdrs = {**hdrs, "OpenAI-Beta": "realtime=v1"}
    return websockets.connect(f"ws://127.0.0.1:{server.port}{path}", additional_headers=hdrs, max_size=None)


def session_update(beta: bool, **kw) -> dict:
    """A session.update in the generation's shape: fmt, td (turn detection), text_only, tools."""
    fmt = kw.get("fmt")
    if beta:
        s = {}
        if fmt:
            s["input_audio_format"] = s["output_audio_format"] = {"pcm": "pcm16", "pcmu": "g711_ulaw",
                                                                  "pcma": "g711_alaw"}[fmt]
        if "td" in kw:
            s["turn_detection"] = kw["td"]
        if kw.get("text_only"):
            s["modalities"] = ["text"]
    else:
        s = {"type": "realtime"}
        audio = {}
        if fmt:
            f = {"type": "audio/pcm", "rate": 24000} if fmt == "pcm" else {"type": f"audio/{fmt}"}
            audio = {"input": {"format": f}, "output": {"format": f}}
        if "td" in kw:
            audio.setdefault("input", {})["turn_detection"] = kw["td"]
        if audio:
            s["audio"] = audio
        if kw.get("text_only"):
            s["output_modalities"] = ["text"]
    if "tools" in kw:
        s["tools"] = kw["tools"]
    if "instructions" in kw:
        s["instructions"] = kw["instructions"]
    return {"type": "session.update", "event_id": "ev_update", "session": s}


def speech_frames(fmt: str, pattern) -> list[str]:
    """Base64 20 ms frames: ``pattern`` is [(ms, speech?)...] of voice tone or silence."""
    out = []
    for ms, speech in pattern:
        raw = tone(ms, fmt) if speech else (
            bytes(ms * 48) if fmt == "pcm" else bytes([g711.ULAW_SILENCE if fmt == "pcmu" else g711.ALAW_SILENCE])
            * (ms * 8))
        step = 960 if fmt == "pcm" else 160
        out += [base64.b64encode(raw[i:i + step]).decode() for i in range(0, len(raw), step)]
    return out


def user_text(text: str) -> dict:
    return {"type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}


def names(beta: bool) -> dict:
    return {"audio": "response.audio.delta" if beta else "response.output_audio.delta",
            "transcript": "response.audio_transcript.delta" if beta else "response.output_audio_transcript.delta",
            "text": "response.text.delta" if beta else "response.output_text.delta",
            "item": "conversation.item.created" if beta else "conversation.item.added"}


# -- session lifecycle ------------------------------------------------------------------------

@GENERATIONS
@run
async def test_session_created_and_updated(beta):
    async with RealtimeServer() as server:
        assert server.url == f"ws://127.0.0.1:{server.port}/v1/realtime" and server.port
        async with connect(server, beta) as ws:
            c = Client(ws, beta)
            created = (await c.recv())["session"]
            if beta:
                assert created["input_audio_format"] == "pcm16" and created["modalities"] == ["text", "audio"]
                assert created["turn_detection"]["type"] == "server_vad"
            else:
                assert created["type"] == "realtime" and created["object"] == "realtime.session"
                assert created["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
                assert created["output_modalities"] == ["audio"]
                assert created["audio"]["input"]["turn_detection"]["type"] == "server_vad"
            assert created["model"] == "gpt-realtime" and created["id"].startswith("sess_")

            await c.send(**session_update(beta, fmt="pcmu", td=None, tools=[TOOL], instructions="Be brief."))
            updated = (await c.recv())["session"]
            assert updated["instructions"] == "Be brief." and updated["tools"][0]["name"] == "get_weather"
            if beta:
                assert updated["input_audio_format"] == updated["output_audio_format"] == "g711_ulaw"
                assert updated["turn_detection"] is None
            else:
                assert updated["audio"]["output"]["format"] == {"type": "audio/pcmu"}
                assert updated["audio"]["input"]["turn_detection"] is None
            # A partial update merges: the format stays, semantic VAD comes in with its defaults.
            await c.send(**session_update(beta, td={"type": "semantic_vad", "eagerness": "high"}))
            merged = (await c.recv())["session"]
            td = merged["turn_detection"] if beta else merged["audio"]["input"]["turn_detection"]
            assert td == {"type": "semantic_vad", "eagerness": "high", "create_response": True,
                          "interrupt_response": True}
            assert merged["instructions"] == "Be brief."
            # Bad values are refused with the client's event_id and change nothing.
            bad = session_update(beta)
            bad["session"]["input_audio_format" if beta else "audio"] = (
                "mp3" if beta else {"input": {"format": {"type": "audio/mp3"}}})
            bad["event_id"] = "ev_bad"
            await c.send(**bad)
            err = await c.recv()
            assert err["type"] == "error" and err["error"]["event_id"] == "ev_bad"
            assert err["error"]["code"] == "invalid_value" and err["error"]["type"] == "invalid_request_error"
            await c.send(type="session.update", event_id="ev_unk", session={"type": "realtime", "bogus": 1}
                         if not beta else {"bogus": 1})
            err = await c.recv()
            assert err["error"]["code"] == "unknown_parameter" and err["error"]["param"] == "session.bogus"
            if not beta:  # GA requires session.type
                await c.send(type="session.update", event_id="ev_t", session={"instructions": "x"})
                assert (await c.recv())["error"]["code"] == "missing_required_parameter"
            c.validate()
        assert server.received[0][0]["event_id"] == "ev_update"
        assert server.connections[0].beta is beta and server.connections[0].path == "/v1/realtime"


# -- one scripted session per generation: every frame validates ----------------------------------

@GENERATIONS
@run
async def test_every_frame_of_a_scripted_session_validates(beta):
    script = Script(reply_text="Sure, it is sunny.", audio_ms=400, function_call=FunctionCall("get_weather",
                                                                                              {"city": "Paris"}))
    async with RealtimeServer(script=script) as server:
        async with connect(server, beta) as ws:
            c = Client(ws, beta)
            await c.recv()
            await c.send(**session_update(beta, fmt="pcmu", tools=[TOOL]))
            await c.until("session.updated")
            # Speech then silence: VAD, commit, user item, automatic response (a tool call here).
            for frame in speech_frames("pcmu", [(200, False), (600, True), (700, False)]):
                await c.send(type="input_audio_buffer.append", audio=frame)
            events = await c.response()
            call = next(e for e in events if e["type"] == "response.function_call_arguments.done")
            assert orjson.loads(call["arguments"]) == {"city": "Paris"}
            await c.send(type="conversation.item.create", item={"type": "function_call_output",
                                                                "call_id": call["call_id"], "output": "sunny"})
            await c.send(type="response.create")
            events = await c.response()
            assert events[-1]["response"]["status"] == "completed"
            answer = events[-1]["response"]["output"][0]
            # Text-only response, out of band, with metadata.
            mods = {"modalities": ["text"]} if beta else {"output_modalities": ["text"]}
            await c.send(type="response.create", response={**mods, "conversation": "none", "metadata": {"k": "v"}})
            events = await c.response()
            assert events[-1]["response"]["conversation_id"] is None
            # Items: retrieve, truncate, delete, and their errors.
            await c.send(type="conversation.item.retrieve", item_id=answer["id"])
            await c.send(type="conversation.item.truncate", item_id=answer["id"], content_index=0, audio_end_ms=100)
            await c.send(type="conversation.item.truncate", item_id=answer["id"], content_index=0, audio_end_ms=9000)
            await c.send(type="conversation.item.delete", item_id=answer["id"])
            await c.send(type="conversation.item.retrieve", item_id=answer["id"], event_id="ev_gone")
            await c.send(type="output_audio_buffer.clear")
            await c.send(type="response.cancel", event_id="ev_cancel")
            await c.send(type="input_audio_buffer.clear")  # drops the trailing silence the VAD left
            await c.send(type="input_audio_buffer.commit")
            await c.send(type="no.such.event", event_id="ev_unknown")
            await ws.send(b'{"type": "response.create", "event_id": "ev_json", ', text=True)
            if beta:
                await c.send(type="transcription_session.update",
                             session={"input_audio_transcription": {"model": "whisper-1"}})
            got = [await c.recv() for _ in range(12 if beta else 11)]
            kinds = [e["type"] for e in got]
            assert kinds[:5] == ["conversation.item.retrieved", "conversation.item.truncated", "error",
                                 "conversation.item.deleted", "error"]
            assert kinds[5:10] == ["output_audio_buffer.cleared", "error", "input_audio_buffer.cleared", "error",
                                   "error"]
            assert [got[i]["error"]["code"] for i in (6, 8, 9)] == [
                "response_cancel_not_active", "input_audio_buffer_commit_empty", "invalid_value"]
            assert got[10]["error"]["event_id"] == "ev_json"
        c.validate()
        assert len(c.frames) > 40


# -- VAD --------------------------------------------------------------------------------------

@run
async def test_server_vad_on_mulaw_speech_then_silence():
    async with RealtimeServer(script=Script(reply_text="Hi", audio_ms=1000)) as server:
        async with connect(server) as ws:
            c = Client(ws, False)
            await c.recv()
            await c.send(**session_update(False, fmt="pcmu"))
            await c.until("session.updated")
            frames = speech_frames("pcmu", [(600, False), (1000, True), (700, False)])
            assert len(frames) == 115 and len(base64.b64decode(frames[0])) == 160
            for frame in frames:
                await c.send(type="input_audio_buffer.append", audio=frame)
            events = await c.response()
            kinds = [e["type"] for e in events]
            assert kinds[:6] == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                                 "input_audio_buffer.committed", "conversation.item.added",
                                 "conversation.item.done", "response.created"]
            started, stopped, committed, added = events[:4]
            # speech starts a little after 600 ms (the tone's envelope opens from zero), backdated 300 ms
            assert 300 <= started["audio_start_ms"] <= 360
            # 500 ms of silence after the last loud window ends the turn
            assert 2060 <= stopped["audio_end_ms"] <= 2120
            assert started["item_id"] == stopped["item_id"] == committed["item_id"] == added["item"]["id"]
            assert added["item"]["role"] == "user" and added["item"]["content"][0]["type"] == "input_audio"
            # the automatic response streams G.711 mu-law, 100 ms (800 bytes) per delta
            deltas = [base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"]
            assert [len(d) for d in deltas] == [800] * 10
            assert b"".join(deltas) == tone(1000, "pcmu")
            c.validate()


def test_energy_vad_windows_and_split_input():
    vad = EnergyVad(8000)
    speech = g711.ulaw_decode(tone(400, "pcmu"))
    pcm = bytes(1600) + speech + bytes(8000)  # 100 ms quiet, 400 ms voice, 500 ms quiet
    one = EnergyVad(8000).feed(pcm, 0.5, 0, 200)
    # the same stream fed in odd-sized pieces gives the same decisions
    pieces = []
    for i in range(0, len(pcm), 202):
        pieces += vad.feed(pcm[i:i + 202], 0.5, 0, 200)
    assert one == pieces and [k for k, _ in one] == ["start", "stop"]
    assert 100 <= one[0][1] <= 140 and vad.clock_ms == 1000


# -- responses ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["pcm", "pcmu", "pcma"])
@GENERATIONS
@run
async def test_scripted_audio_response(beta, fmt):
    n = names(beta)
    async with RealtimeServer(script=Script(reply_text="Hello there, how are you?", audio_ms=750)) as server:
        async with connect(server, beta) as ws:
            c = Client(ws, beta)
            await c.recv()
            await c.send(**session_update(beta, fmt=fmt, td=None))
            await c.until("session.updated")
            await c.send(**user_text("hi"))
            await c.send(type="response.create", event_id="ev_rc")
            events = await c.until("rate_limits.updated")
            deltas = [base64.b64decode(e["delta"]) for e in events if e["type"] == n["audio"]]
            per = 4800 if fmt == "pcm" else 800
            assert [len(d) for d in deltas] == [per] * 7 + [per // 2]
            assert b"".join(deltas) == tone(750, fmt)
            words = [e["delta"] for e in events if e["type"] == n["transcript"]]
            assert "".join(words) == "Hello there, how are you?" and len(words) == 5
            done = events[-2]
            assert done["type"] == "response.done" and done["response"]["status"] == "completed"
            assert done["response"]["usage"]["output_token_details"]["audio_tokens"] == 15
            out = done["response"]["output"][0]
            assert out["content"][0]["transcript"] == "Hello there, how are you?"
            assert out["content"][0]["type"] == ("audio" if beta else "output_audio")
            c.validate()


@GENERATIONS
@run
async def test_text_only_response(beta):
    n = names(beta)
    async with RealtimeServer(script=Script(reply_text="Just text here")) as server:
        async with connect(server, beta) as ws:
            c = Client(ws, beta)
            await c.recv()
            await c.send(**session_update(beta, text_only=True))
            await c.until("session.updated")
            await c.send(type="response.create")
            events = await c.response()
            kinds = {e["type"] for e in events}
            assert n["audio"] not in kinds and n["transcript"] not in kinds
            assert "".join(e["delta"] for e in events if e["type"] == n["text"]) == "Just text here"
            done_type = "response.text.done" if beta else "response.output_text.done"
            done = next(e for e in events if e["type"] == done_type)
            assert done["text"] == "Just text here"
            assert events[-1]["response"]["output"][0]["content"] == [
                {"type": "text" if beta else "output_text", "text": "Just text here"}]
            c.validate()


@GENERATIONS
@run
async def test_function_call_round_trip_when_the_user_names_a_tool(beta):
    async with RealtimeServer(script=Script(reply_text="It is sunny in Paris.")) as server:
        async with connect(server, beta) as ws:
            c = Client(ws, beta)
            await c.recv()
            await c.send(**session_update(beta, td=None, tools=[TOOL]))
            await c.until("session.updated")
            await c.send(**user_text("please get_weather for Paris"))
            await c.send(type="response.create")
            events = await c.response()
            item = events[-1]["response"]["output"][0]
            assert item["type"] == "function_call" and item["name"] == "get_weather" and item["arguments"] == "{}"
            args = next(e for e in events if e["type"] == "response.function_call_arguments.done")
            assert args["call_id"] == item["call_id"] and args["item_id"] == item["id"]
            await c.send(type="conversation.item.create",
                         item={"type": "function_call_output", "call_id": item["call_id"], "output": '{"sky":"clear"}'})
            await c.send(type="response.create")
            events = await c.response()
            out = events[-1]["response"]["output"][0]
            assert out["type"] == "message" and out["content"][0]["transcript"] == "It is sunny in Paris."
            c.validate()
        assert [it["type"] for it in server.connections[0].items] == [
            "message", "function_call", "function_call_output", "message"]


@run
async def test_callable_script_sees_the_session_and_the_user_input():
    seen = []

    def script(session, user):
        seen.append((session.config.instructions, user.text, user.function_output))
        return Reply(text=f"You said {user.text}", audio_ms=200)

    async with RealtimeServer(script=script) as server:
        async with connect(server) as ws:
            c = Client(ws, False)
            await c.recv()
            await c.send(**session_update(False, instructions="Echo."))
            await c.send(**user_text("ping"))
            await c.send(type="response.create")
            events = await c.response()
            assert events[-1]["response"]["output"][0]["content"][0]["transcript"] == "You said ping"
    assert seen == [("Echo.", "ping", None)]


@run
async def test_a_script_that_raises_fails_the_response_only():
    def script(session, user):
        raise RuntimeError("boom")

    async with RealtimeServer(script=script) as server:
        async with connect(server) as ws:
            c = Client(ws, False)
            await c.recv()
            await c.send(type="response.create")
            done = (await c.until("response.done"))[-1]["response"]
            assert done["status"] == "failed" and done["status_details"]["error"]["code"] == "script_error"
            await c.send(**user_text("still open"))
            assert (await c.recv())["type"] == "conversation.item.added"
            c.validate()


# -- items, cancel, errors ---------------------------------------------------------------------------

@GENERATIONS
@run
async def test_truncate_delete_retrieve_and_their_errors(beta):
    async with RealtimeServer(script=Script(audio_ms=1000)) as server:
        async with connect(server, beta) as ws:
            c = Client(ws, beta)
            await c.recv()
            await c.send(**user_text("hello"))
            user_item = (await c.until(names(beta)["item"]))[-1]["item"]
            if not beta:
                await c.until("conversation.item.done")
            await c.send(type="response.create")
            item = (await c.response())[-1]["response"]["output"][0]

            async def error_of(**event):
                await c.send(**event, event_id="ev_x")
                e = await c.recv()
                assert e["type"] == "error" and e["error"]["event_id"] == "ev_x", e
                return e["error"]["code"]

            assert await error_of(type="conversation.item.truncate", item_id="item_nope", content_index=0,
                                  audio_end_ms=0) == "item_truncate_invalid_item_id"
            assert await error_of(type="conversation.item.truncate", item_id=user_item["id"], content_index=0,
                                  audio_end_ms=0) == "unsupported_content_type"
            assert await error_of(type="conversation.item.truncate", item_id=item["id"], content_index=0,
                                  audio_end_ms=1001) == "invalid_value"
            assert await error_of(type="conversation.item.truncate", item_id=item["id"],
                                  content_index=0) == "missing_required_parameter"
            assert await error_of(type="conversation.item.truncate", item_id=item["id"], content_index=0,
                                  audio_end_ms="5") == "invalid_type"
            assert await error_of(type="conversation.item.delete", item_id="item_nope") == "item_delete_invalid_item_id"
            assert await error_of(type="conversation.item.retrieve",
                                  item_id="item_nope") == "item_retrieve_invalid_item_id"
            assert await error_of(type="conversation.item.create", item={"type": "weird"}) == "invalid_value"

            await c.send(type="conversation.item.truncate", item_id=item["id"], content_index=0, audio_end_ms=400)
            truncated = await c.recv()
            del truncated["event_id"]
            assert truncated == {"type": "conversation.item.truncated", "item_id": item["id"], "content_index": 0,
                                 "audio_end_ms": 400}
            await c.send(type="conversation.item.retrieve", item_id=item["id"])
            got = (await c.recv())["item"]
            assert len(base64.b64decode(got["content"][0]["audio"])) == 400 * 48
            assert got["content"][0]["transcript"] == ""
            # truncated to 400 ms: 401 is now beyond the audio
            assert await error_of(type="conversation.item.truncate", item_id=item["id"], content_index=0,
                                  audio_end_ms=401) == "invalid_value"
            await c.send(type="conversation.item.delete", item_id=user_item["id"])
            assert (await c.recv())["item_id"] == user_item["id"]
            # an item inserted first with previous_item_id "root"
            await c.send(type="conversation.item.create", previous_item_id="root",
                         item={"type": "message", "role": "system", "content": [{"type": "input_text", "text": "S"}]})
            assert (await c.recv())["previous_item_id"] is None
            c.validate()
        assert [it["role"] for it in server.connections[0].items] == ["system", "assistant"]


@GENERATIONS
@run
async def test_cancel(beta):
    async with RealtimeServer(script=Script(latency_ms=5000)) as server:
        async with connect(server, beta) as ws:
            c = Client(ws, beta)
            await c.recv()
            await c.send(type="response.cancel", event_id="ev_c1")
            err = await c.recv()
            assert err["error"]["code"] == "response_cancel_not_active" and err["error"]["event_id"] == "ev_c1"
            await c.send(type="response.create")
            created = await c.recv()
            await c.send(type="response.create", event_id="ev_twice")
            err = await c.recv()
            assert err["error"]["code"] == "conversation_already_has_active_response"
            await c.send(type="response.cancel")
            done = (await c.response(1))[-1]["response"]
            assert done["id"] == created["response"]["id"] and done["status"] == "cancelled"
            assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
            c.validate()


@run
async def test_barge_in_cancels_the_streaming_response():
    async with RealtimeServer(script=Script(audio_ms=5000, realtime=True)) as server:
        async with connect(server) as ws:
            c = Client(ws, False)
            await c.recv()
            await c.send(type="response.create")
            await c.until("response.output_audio.delta")
            for frame in speech_frames("pcm", [(200, True)]):
                await c.send(type="input_audio_buffer.append", audio=frame)
            events = await c.response(2)
            assert "input_audio_buffer.speech_started" in [e["type"] for e in events]
            done = events[-1]["response"]
            assert done["status"] == "cancelled" and done["status_details"]["reason"] == "turn_detected"
            assert done["output"][0]["status"] == "incomplete"
            sent_ms = 100 * sum(e["type"] == "response.output_audio.delta" for e in events) + 100
            assert sent_ms < 1000  # stopped long before the 5 s of audio at 1x
            c.validate()


@GENERATIONS
@run
async def test_unknown_event_and_invalid_json_keep_the_connection_open(beta):
    async with RealtimeServer() as server:
        async with connect(server, beta) as ws:
            c = Client(ws, beta)
            await c.recv()
            await c.send(type="session.nope", event_id="ev_1")
            err = (await c.recv())["error"]
            assert err["type"] == "invalid_request_error" and err["event_id"] == "ev_1"
            assert err["code"] == "invalid_value" and err["param"] == "type" and "'session.nope'" in err["message"]
            await ws.send('{"event_id": "ev_2", "type": ')
            err = (await c.recv())["error"]
            assert err["code"] == "invalid_json" and err["event_id"] == "ev_2"
            await c.send(event_id="ev_3")
            assert (await c.recv())["error"]["code"] == "missing_required_parameter"
            await ws.send("[1, 2]")
            assert (await c.recv())["type"] == "error"
            await c.send(type="input_audio_buffer.append", audio="not base64!", event_id="ev_4")
            err = (await c.recv())["error"]
            assert err["param"] == "audio" and err["event_id"] == "ev_4"
            await c.send(type="input_audio_buffer.commit", event_id="ev_5")
            assert (await c.recv())["error"]["code"] == "input_audio_buffer_commit_empty"
            if not beta:
                await c.send(type="transcription_session.update", session={})
                assert (await c.recv())["type"] == "error"
            await c.send(**session_update(beta, instructions="still here"))
            assert (await c.recv())["type"] == "session.updated"
            c.validate()
        assert server.received[0][1] == {"_invalid": '{"event_id": "ev_2", "type": '}


# -- handshake: paths, auth, beta refusal --------------------------------------------------------

@run
async def test_paths_auth_and_http_errors():
    async with RealtimeServer() as server:
        for path, headers in [("/openai/realtime?api-version=2024-10-01-preview&deployment=gpt-realtime-mini",
                               {"api-key": "k"}),
                              ("/openai/v1/realtime?model=gpt-realtime", {"Authorization": "Bearer k"}),
                              ("/v1/realtime/", {"Authorization": "Bearer k"})]:
            async with connect(server, path=path, headers=headers) as ws:
                session = orjson.loads(await ws.recv())["session"]
        assert session["model"] == "gpt-realtime"  # no model in the query: the server's default
        assert server.connections[0].config.model == "gpt-realtime-mini"
        assert server.connections[0].query["api-version"] == "2024-10-01-preview"

        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
            with pytest.raises(websockets.InvalidStatus) as info:
                async with connect(server, headers=headers):
                    pass
            response = info.value.response
            assert response.status_code == 401 and response.headers["Content-Type"] == "application/json"
            error = orjson.loads(response.body)["error"]
            assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
        with pytest.raises(websockets.InvalidStatus) as info:
            async with connect(server, path="/v1/elsewhere"):
                pass
        assert info.value.response.status_code == 404
    async with RealtimeServer(require_auth=False) as server:
        async with connect(server, headers={}) as ws:
            assert orjson.loads(await ws.recv())["type"] == "session.created"


@run
async def test_refuse_beta():
    async with RealtimeServer(refuse_beta=True) as server:
        async with connect(server, beta=True) as ws:
            frame = await ws.recv(decode=False)
            err = check_frame(frame, False)["error"]
            assert err["code"] == "beta_api_shape_disabled"
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd.code == 4000
        async with connect(server) as ws:  # GA is still served
            assert orjson.loads(await ws.recv())["type"] == "session.created"


# -- misbehaviour and shutdown --------------------------------------------------------------------

@run
async def test_close_after_events():
    async with RealtimeServer(close_after_events=5, script=Script(audio_ms=2000)) as server:
        async with connect(server) as ws:
            c = Client(ws, False)
            await c.recv()
            await c.send(type="response.create")
            with pytest.raises(websockets.ConnectionClosed) as info:
                while True:
                    await c.recv()
            assert len(c.frames) == 5 and info.value.rcvd.code == 1011
    async with RealtimeServer(close_after_events=2, close_code=None) as server:
        async with connect(server) as ws:
            c = Client(ws, False)
            await c.recv()
            await c.send(type="response.create")
            with pytest.raises(websockets.ConnectionClosedError) as info:
                while True:
                    await c.recv()
            assert info.value.rcvd is None and len(c.frames) == 2  # no close frame: abnormal closure


@run
async def test_garbage_and_stall():
    async with RealtimeServer(garbage_after_events=1) as server:
        async with connect(server) as ws:
            assert orjson.loads(await ws.recv())["type"] == "session.created"
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(await ws.recv())
            await ws.send(orjson.dumps(user_text("x")), text=True)
            assert orjson.loads(await ws.recv())["type"] == "conversation.item.added"
    async with RealtimeServer(stall_after_events=2) as server:
        async with connect(server) as ws:
            c = Client(ws, False)
            await c.recv()
            await c.send(type="response.create")
            await c.recv()
            with pytest.raises(TimeoutError):
                await c.recv(timeout=0.3)
            assert server.received[0] == [{"type": "response.create"}]


@run
async def test_close_leaves_no_tasks_behind():
    before = asyncio.all_tasks()
    server = await RealtimeServer(script=Script(audio_ms=60000, realtime=True)).start()
    ws = await connect(server)
    await ws.recv()
    await ws.send(orjson.dumps({"type": "response.create"}), text=True)
    await ws.recv()
    assert len(asyncio.all_tasks()) > 1
    await server.close()
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await ws.recv()
    await ws.close()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == before
    assert server.connections[0].closed


# -- the official openai client --------------------------------------------------------------------

@run
async def test_official_openai_client_ga():
    from openai import AsyncOpenAI

    async with RealtimeServer(script=Script(reply_text="Hello from rtfast", audio_ms=300)) as server:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.session.update(session={"type": "realtime", "output_modalities": ["audio"],
                                               "audio": {"output": {"format": {"type": "audio/pcmu"}}}})
            await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                      "content": [{"type": "input_text", "text": "Say hello"}]})
            await conn.response.create()
            kinds, audio, transcript = [], b"", ""
            async for event in conn:
                kinds.append(event.type)
                if event.type == "response.output_audio.delta":
                    audio += base64.b64decode(event.delta)
                elif event.type == "response.output_audio_transcript.done":
                    transcript = event.transcript
                elif event.type == "response.done":
                    assert event.response.status == "completed"
                    break
        assert kinds[:2] == ["session.created", "session.updated"]
        assert transcript == "Hello from rtfast" and len(audio) == 2400
        await client.close()
        state = server.connections[0]
        assert state.path == "/v1/realtime" and state.query == {"model": "gpt-realtime"}
        assert state.headers["Authorization"] == "Bearer sk-test" and not state.beta


@run
async def test_official_openai_client_beta():
    from openai import AsyncOpenAI

    async with RealtimeServer(script=Script(reply_text="Beta hello", audio_ms=200)) as server:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
            await conn.session.update(session={"modalities": ["text"]})
            await conn.response.create()
            text = ""
            async for event in conn:
                if event.type == "response.text.delta":
                    text += event.delta
                if event.type == "response.done":
                    break
        await client.close()
        assert text == "Beta hello" and server.connections[0].beta


# -- rtfast serve ----------------------------------------------------------------------------------

def test_serve_command_answers_and_stops_on_interrupt():
    import os
    import re
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import sys; from rtfast.server import main; "
                             "sys.exit(main(['--port', '0', '--say', 'From the CLI', '--latency-ms', '0', '--fast']))"],
                            stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(__file__))   # not the checkout: its rtfast/ would shadow an installed one
    try:
        line = proc.stdout.readline()
        port = int(re.search(r"ws://127\.0\.0\.1:(\d+)/v1/realtime", line).group(1))

        async def talk():
            server = RealtimeServer(port=port)
            async with connect(server) as ws:
                c = Client(ws, False)
                await c.recv()
                await c.send(type="response.create")
                return (await c.response())[-1]["response"]["output"][0]["content"][0]["transcript"]

        assert asyncio.run(talk()) == "From the CLI"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.stdout.close()
