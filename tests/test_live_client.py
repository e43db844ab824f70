"""rtfast.AsyncOpenAI(...).live against the embedded server, beside the official client.

The same user code runs with ``openai.AsyncOpenAI`` and ``rtfast.AsyncOpenAI`` and must see the
same events; then what only rtfast has (audio fast paths, ``start()``), the manager's methods
before connecting, handlers, and reconnecting after a drop."""

from __future__ import annotations

import asyncio
import base64

import orjson
import pytest

pytest.importorskip("openai")
import openai  # noqa: E402

import rtfast  # noqa: E402
from rtfast import g711, wire  # noqa: E402
from rtfast._server_session import tone  # noqa: E402
from rtfast.events import live as live_events  # noqa: E402
from rtfast.server import FunctionCall, RealtimeServer, Script  # noqa: E402

SESSION = {"model": "gpt-live-1", "audio": {"format": {"type": "audio/pcmu", "rate": 8000}},
           "delegation": {"type": "client"}}
SPEECH = tone(500, "pcmu") + g711.ulaw_encode(bytes(16 * 700))


def normal(event) -> dict:
    """An event as a dict without what differs between two connections (ids, times)."""
    d = event.to_dict()
    d.pop("event_id", None)
    if "session" in d:
        d["session"] = {k: v for k, v in d["session"].items() if k not in ("id", "expires_at")}
    if d.get("type") == "session.delegation.created":
        d["delegation"] = {**d["delegation"], "id": "del"}
    if d.get("type") in ("session.usage.updated", "session.closed"):
        d.pop("usage")
    return d


async def user_code(client) -> list[dict]:
    """What an application writes: start, talk, answer the delegation, hear the reply, close."""
    seen = []
    async with client.live.connect() as conn:
        await conn.session.start(session=SESSION, event_id="start_1")
        async for event in conn:
            seen.append(normal(event))
            if event.type == "session.started":
                for i in range(0, len(SPEECH), 160):
                    await conn.session.input_audio.append(audio=base64.b64encode(SPEECH[i:i + 160]).decode())
            elif event.type == "session.delegation.created":
                await conn.session.commentary.append(content='{"temp": 21}', delegation_id=event.delegation.id,
                                                     event_id="res_1")
            elif event.type == "session.usage.updated":
                await conn.session.close(event_id="close_1")
            elif event.type == "session.closed":
                break
    return seen


def script() -> Script:
    return Script(reply_text="It is 21 degrees", audio_ms=400,
                  function_call=FunctionCall("get_weather", {"city": "Paris"}))


async def test_same_user_code_same_events_as_the_official_client():
    async with RealtimeServer(script=script()) as server:
        official = await user_code(openai.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url))
        ours = await user_code(rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url))
        assert ours == official
        kinds = [e["type"] for e in ours]
        assert kinds[0] == "session.started" and kinds[-1] == "session.closed"
        assert "session.delegation.created" in kinds and "session.output_audio.delta" in kinds
        # and the server received the same client frames from both
        def sent(conn):
            return [{**e, "delegation_id": "del"} if "delegation_id" in e else e for e in conn.received]

        assert sent(server.connections[0]) == sent(server.connections[1])


async def test_fast_paths_start_and_typed_events():
    async with RealtimeServer(script=Script(reply_text="Hi", audio_ms=300)) as server:
        client = rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url.replace("ws://", "http://"))
        async with client.live.connect() as conn:
            started = await conn.start({**SESSION, "delegation": None}, event_id="s1")
            assert type(started) is live_events.SessionStartedEvent and started.client_event_id == "s1"
            assert str(conn.state.format) == "pcmu/8000" and conn.state.session_id == started.session.id
            half = len(SPEECH) // 2
            await conn.send_audio(SPEECH[:half])                              # raw μ-law, base64 in the frame
            await conn.send_audio_b64(base64.b64encode(SPEECH[half:]))        # a carrier's base64, spliced
            audio = bytearray()
            async for event in conn:
                if type(event) is wire.AudioDelta:
                    assert event.generation == "live"
                    audio += event.audio()
                if event.type == "session.usage.updated":
                    break
            assert len(audio) == 300 * 8 and conn.state.audio_received_ms == 300
        received = server.connections[0].received
        appended = b"".join(base64.b64decode(e["audio"]) for e in received if e["type"] == "session.input_audio.append")
        assert appended == SPEECH


async def test_start_raises_on_refusal():
    async with RealtimeServer() as server:
        client = rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        async with client.live.connect() as conn:
            with pytest.raises(rtfast.RtfastError, match="session.audio.format.type"):
                await conn.start({"model": "gpt-live-1", "audio": {"format": {"type": "audio/opus"}}})


async def test_manager_send_on_off_once_and_dispatch_events():
    async with RealtimeServer(script=Script(reply_text="Hi", audio_ms=200)) as server:
        client = rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        mgr = client.live.connect()
        mgr.send(live_events.SessionStartEvent(session={**SESSION, "delegation": None}))   # queued before connecting
        seen, once, everything = [], [], []

        def dropped(event):
            raise AssertionError("off() did not remove it")

        mgr.on("session.started", lambda e: seen.append(e.type))
        mgr.once("session.output_audio.delta", lambda e: once.append(e))
        mgr.on("session.output_audio.delta", dropped).off("session.output_audio.delta", dropped)
        async with mgr as conn:
            @conn.on("event")
            async def any_event(event):
                everything.append(event.type)
                if event.type == "session.started":
                    await conn.send_audio(SPEECH)
                if event.type == "session.usage.updated":
                    await conn.session.close()

            await asyncio.wait_for(conn.dispatch_events(), 10)
        assert seen == ["session.started"] and len(once) == 1
        assert everything[0] == "session.started" and everything[-1] == "session.closed"


async def test_recv_bytes_and_parse_event():
    async with RealtimeServer() as server:
        client = rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        async with client.live.connect() as conn:
            await conn.session.start(session=SESSION)
            raw = await conn.recv_bytes()
            assert orjson.loads(raw)["type"] == "session.started"
            assert conn.parse_event(raw).session.audio.format.type == "audio/pcmu"


async def test_reconnects_after_a_drop_and_starts_again():
    drops, tasks = [], []
    async with RealtimeServer(close_after_events=1, close_code=1011, misbehave_connections=1) as server:
        client = rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)

        opened = {}

        def on_reconnecting(event):
            drops.append((event.attempt, event.close_code))
            # a new connection is a new session: this start is queued and sent once it is up
            tasks.append(asyncio.get_running_loop().create_task(opened["conn"].session.start(session=SESSION)))

        async with client.live.connect(on_reconnecting=on_reconnecting, initial_delay=0.01) as conn:
            opened["conn"] = conn
            await conn.session.start(session=SESSION)
            events = []
            async for event in conn:
                events.append(event.type)
                if len(events) == 2:
                    break
            assert events == ["session.started", "session.started"]
            assert conn.state.started and conn.state.last_session_start is not None
        assert drops == [(1, 1011)] and len(server.connections) == 2
        assert [e["type"] for e in server.connections[1].received] == ["session.start"]
        await asyncio.gather(*tasks)


async def test_the_official_reconnect_options_are_accepted():
    import inspect

    ours = inspect.signature(rtfast.AsyncOpenAI(api_key="k").live.connect).parameters
    theirs = inspect.signature(openai.AsyncOpenAI(api_key="k").live.connect).parameters
    assert set(theirs) <= set(ours)
    assert ours["max_queue_size"].default == theirs["max_queue_size"].default
    for name in ("max_retries", "initial_delay", "max_delay"):
        assert ours[name].default == theirs[name].default


async def test_module_connect_and_manual_reconnect_start_the_same_session_again():
    from rtfast.live import connect

    async with RealtimeServer() as server:
        async with connect(server.live_url.replace("ws://", "http://"), api_key="sk-test") as conn:
            first = await conn.start({**SESSION, "delegation": None})
            await conn.reconnect()                          # a new socket: the last session.start goes again
            again = await conn.recv()
            assert again.type == "session.started" and again.session.id != first.session.id
            assert conn.state.started and conn.state.session_id == again.session.id
        assert [c.received[0]["type"] for c in server.connections] == ["session.start", "session.start"]
        assert server.connections[0].received[0] == server.connections[1].received[0]
