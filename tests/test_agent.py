"""Phone agents end to end: BridgeServer(agent=...) with simulated carrier calls
against the embedded Realtime server, all on loopback."""

import asyncio
import logging
import time

import pytest

from carrier_sim import TwilioCall, settle, silence, tone
from carrier_sims_more import ExotelSim, PlivoSim, TelnyxSim, VonageSim
from carrier_sims_more import silence as silence_fmt
from carrier_sims_more import speech
from rtfast.bridge import BridgeServer
from rtfast.bridge.app import Agent, CallSummary, Reconnected, ToolResult
from rtfast.bridge.dialog import ToolCall, Transcript
from rtfast.server import FunctionCall, RealtimeServer, Reply, Script

WEATHER = FunctionCall("get_weather", '{"city": "Paris"}')


def of_type(rt, kind, conn=None):
    conns = rt.received if conn is None else [rt.received[conn]]
    return [m for c in conns for m in c if m.get("type") == kind]


def weather_agent(**kw):
    agent = Agent("You are a weather line.", **kw)
    seen = []

    @agent.tool
    async def get_weather(ctx, city: str) -> dict:
        """The weather in a city."""
        await asyncio.sleep(0.05)                       # the call's audio keeps flowing meanwhile
        return {"city": city, "temperature": 21, "caller": ctx.state.get("caller")}

    for name in ("transcript", "tool_call", "tool_result", "barge_in", "dtmf", "call_ended", "error", "reconnected"):
        agent.on(name)(lambda ctx, ev: seen.append(ev))
    return agent, seen


async def test_setup_sees_the_caller_and_a_tool_answers_mid_call():
    agent, seen = weather_agent()

    @agent.setup
    async def setup(ctx):
        assert ctx.request.path == "/stream/7" and ctx.request.query == {"lang": "fr"}
        assert ctx.request.headers["X-Team"] == "blue"
        name = ctx.start.custom_parameters["caller_name"]
        ctx.state["caller"] = name
        ctx.config.instructions += f" The caller is {name}; greet them by name."
        ctx.config.voice = "cedar"

    script = Script(reply_text="It is sunny in Paris", function_call=WEATHER, audio_ms=600)
    async with RealtimeServer(script=script) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=agent, control=None) as bridge:
        url = bridge.url + "stream/7?lang=fr"
        async with TwilioCall(url, custom_parameters={"caller_name": "Ada"}, headers={"X-Team": "blue"}) as call:
            await call.say(silence(200) + tone(800) + silence(900))
            await settle(lambda: call.played_ms >= 400, state=lambda: rt.received)
            await call.hang_up()
            await settle(lambda: bridge.summaries)
    sent = rt.received[0]
    first = sent[0]
    assert first["type"] == "session.update"
    s = first["session"]
    assert s["instructions"] == "You are a weather line. The caller is Ada; greet them by name."
    assert s["audio"]["output"]["voice"] == "cedar"
    assert s["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    assert s["tools"][0]["name"] == "get_weather" and s["tool_choice"] == "auto"
    outputs = [m for m in of_type(rt, "conversation.item.create") if m["item"]["type"] == "function_call_output"]
    assert len(outputs) == 1
    assert outputs[0]["item"]["output"] == '{"city":"Paris","temperature":21,"caller":"Ada"}'
    kinds = [m["type"] for m in sent]
    assert kinds.index("response.create") > kinds.index("conversation.item.create")
    # the caller's audio held during setup reached the model after the session.update, all of it
    assert len(of_type(rt, "input_audio_buffer.append")) == (200 + 800 + 900) // 20
    tool_calls = [e for e in seen if isinstance(e, ToolCall)]
    results = [e for e in seen if isinstance(e, ToolResult)]
    assert [t.name for t in tool_calls] == ["get_weather"] and results[0].error is False and results[0].ms >= 50
    transcripts = [(e.role, e.text) for e in seen if isinstance(e, Transcript)]
    assert ("user", "(1500 ms of speech)") in transcripts and ("assistant", "It is sunny in Paris") in transcripts
    summary = [e for e in seen if isinstance(e, CallSummary)][0].summary
    assert summary["tool_calls"] == 1 and summary["reconnects"] == 0 and summary["ended"] == "stop"


async def test_a_tool_that_raises_or_is_unknown_gives_the_model_an_error_and_the_call_goes_on():
    agent = Agent("x")

    @agent.tool
    def get_weather(city: str) -> dict:
        raise RuntimeError("weather service down")

    script = Script(reply_text="Sorry, I cannot check that now", function_call=WEATHER, audio_ms=400)
    async with RealtimeServer(script=script) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=agent, control=None) as bridge:
        async with TwilioCall(bridge.url) as call:
            await call.say(silence(200) + tone(800) + silence(900))
            await settle(lambda: call.played_ms >= 300)              # the apology plays: the call lives
            await call.hang_up()
            await settle(lambda: bridge.summaries)
    output = [m["item"]["output"] for m in of_type(rt, "conversation.item.create")][0]
    assert output == '{"error":"RuntimeError: weather service down"}'
    assert bridge.summaries[0]["ended"] == "stop"


async def test_unknown_tool_and_refused_call():
    agent = Agent("x")                                      # no tools, but the model calls one
    refused = Agent("y")

    @refused.setup
    def setup(ctx):
        if ctx.start.custom_parameters.get("blocked"):
            ctx.refuse("caller is blocked")

    script = Script(reply_text="ok", function_call=FunctionCall("nonexistent"), audio_ms=300)
    async with RealtimeServer(script=script) as rt:
        async with BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=agent, control=None,
                                session={"tools": [{"type": "function", "name": "nonexistent",
                                                    "parameters": {"type": "object"}}]}) as bridge:
            async with TwilioCall(bridge.url) as call:
                await call.say(silence(200) + tone(800) + silence(900))
                await settle(lambda: of_type(rt, "conversation.item.create"))
                await call.hang_up()
                await settle(lambda: bridge.summaries)
        output = of_type(rt, "conversation.item.create")[0]["item"]["output"]
        assert output == '{"error":"no tool named \'nonexistent\'"}'
        before = len(rt.received)
        async with BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=refused, control=None) as bridge:
            async with TwilioCall(bridge.url, custom_parameters={"blocked": "1"}) as call:
                await call.say(silence(400))
                await settle(lambda: bridge.summaries)
                await settle(lambda: call.ws.close_code is not None)       # the bridge hung up on the caller
        # no session was started for the refused call, and none of its audio went anywhere
        assert [m["type"] for c in rt.received[before:] for m in c] == []


async def test_digits_reach_the_model_by_default_or_the_application_when_it_asks():
    async with RealtimeServer(script=Script(reply_text="Sales, hello", audio_ms=300)) as rt:
        async with BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=Agent("menu"), control=None) as bridge:
            async with TwilioCall(bridge.url) as call:
                await call.say(silence(100))
                await call.dtmf("1")
                await settle(lambda: of_type(rt, "response.create"))
                await call.hang_up()
                await settle(lambda: bridge.summaries)
        item = of_type(rt, "conversation.item.create")[0]["item"]
        assert item["content"][0]["text"] == "The caller pressed 1 on the phone keypad."
        taken = []
        agent = Agent("menu")

        @agent.on_dtmf
        async def digits(ctx, digit):
            taken.append(digit)

        n = len(of_type(rt, "conversation.item.create"))
        async with BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=agent, control=None) as bridge:
            async with TwilioCall(bridge.url) as call:
                await call.say(silence(100))
                await call.dtmf("4")
                await call.dtmf("2")
                await settle(lambda: len(taken) == 2)
                await call.hang_up()
                await settle(lambda: bridge.summaries)
        assert taken == ["4", "2"] and len(of_type(rt, "conversation.item.create")) == n


async def test_the_realtime_socket_dropped_twice_the_call_lives_and_the_conversation_is_replayed(caplog):
    caplog.set_level(logging.INFO, logger="rtfast.bridge")
    agent, seen = weather_agent()

    def script(session, user):
        if user.function_output is None and not any(i.get("type") == "function_call" for i in session.items):
            return Reply("checking", function_call=WEATHER)
        return Reply("It is twenty one degrees", audio_ms=400)

    # the first two connections drop (no close frame, as a network would) after 30 events each
    async with RealtimeServer(script=script, close_after_events=30, close_code=None, misbehave_connections=2) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=agent, control=None) as bridge:
        async with TwilioCall(bridge.url) as call:
            for _ in range(4):
                await call.say(silence(200) + tone(800) + silence(900))
                await asyncio.sleep(0.3)
            await settle(lambda: len(rt.connections) == 3, state=lambda: [len(c) for c in rt.received])
            heard = call.played_ms
            await call.say(silence(200) + tone(800) + silence(900))     # the third session answers
            await settle(lambda: call.played_ms >= heard + 300)
            await call.hang_up()
            await settle(lambda: bridge.summaries)
    reconnects = [e for e in seen if isinstance(e, Reconnected)]
    assert [r.reason for r in reconnects] == ["dropped", "dropped"]
    assert all(r.gap_ms < 1000 and r.attempt == 1 for r in reconnects)
    summary = bridge.summaries[0]
    assert summary["reconnects"] == 2 and summary["ended"] == "stop" and "error" not in summary
    # each new session starts with the session.update, then the conversation so far
    for conn in (1, 2):
        sent = rt.received[conn]
        assert sent[0]["type"] == "session.update" and sent[0]["session"]["tools"][0]["name"] == "get_weather"
    replayed = [m["item"] for m in rt.received[2] if m["type"] == "conversation.item.create"]
    texts = [i["content"][0]["text"] for i in replayed if i["type"] == "message" and i["role"] == "user"]
    assert texts and all(t.endswith("ms of speech)") for t in texts)
    kinds = [i["type"] for i in replayed]
    assert "function_call" in kinds and "function_call_output" in kinds
    assert kinds.index("function_call") < kinds.index("function_call_output")
    assert "realtime reconnected after" in caplog.text


async def test_a_capped_session_is_replaced_and_an_idle_one_recycled_before_the_cap():
    agent, seen = weather_agent(recycle_after_s=0.4)
    async with RealtimeServer(script=Script(reply_text="hi", audio_ms=200), max_session_s=1.5) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=agent, control=None) as bridge:
        async with TwilioCall(bridge.url) as call:
            await call.say(silence(200) + tone(600) + silence(900))
            await settle(lambda: len(rt.connections) >= 3, state=lambda: seen)
            await call.hang_up()
            await settle(lambda: bridge.summaries)
    reasons = [e.reason for e in seen if isinstance(e, Reconnected)]
    assert reasons and set(reasons) == {"recycled"}          # never hit the cap: replaced while idle
    # recycling closes the old session: no session_expired error ever reached the call
    assert not [e for e in seen if getattr(e, "kind", None) == "realtime"]


async def test_when_reconnecting_fails_the_call_ends_with_a_clear_log_line(caplog):
    caplog.set_level(logging.INFO, logger="rtfast.bridge")
    agent = Agent("x", reconnect_attempts=2)
    rt = await RealtimeServer(script=Script(audio_ms=200)).start()
    async with BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=agent, control=None) as bridge:
        async with TwilioCall(bridge.url) as call:
            await call.say(silence(200))
            await settle(lambda: any(io.rt is not None for io in bridge.active.values()))
            await rt.close()                                  # the model's server goes away for good
            await settle(lambda: bridge.summaries, timeout=10)
    assert "could not be restored after 2 attempts" in caplog.text


async def test_hangup_after_a_last_sentence_plays_it_first():
    agent = Agent("x")
    ended = []

    @agent.on("transcript")
    async def bye(ctx, ev):
        if ev.role == "user":
            await ctx.hangup(say="Goodbye!")
            ended.append(True)

    async with RealtimeServer(script=Script(reply_text="Goodbye!", audio_ms=500)) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=agent, control=None) as bridge:
        async with TwilioCall(bridge.url) as call:
            await call.say(silence(200) + tone(800) + silence(900))
            await settle(lambda: bridge.summaries, timeout=10)
            # every chunk of the goodbye was sent and had played before the bridge hung up
            assert call.played_ms >= 500
    creates = of_type(rt, "response.create")
    assert any("Goodbye!" in (m.get("response") or {}).get("instructions", "") for m in creates)
    assert ended == [True]


@pytest.mark.parametrize("sim_cls,fmt", [(TelnyxSim, "pcmu/8000"), (PlivoSim, "pcmu/8000"), (ExotelSim, "pcm16/8000"),
                                         (VonageSim, "pcm16/16000")])
async def test_every_carrier_runs_tools_and_digits(sim_cls, fmt):
    agent, seen = weather_agent()
    script = Script(reply_text="Sunny", function_call=WEATHER, audio_ms=400)
    async with RealtimeServer(script=script) as rt, \
            BridgeServer(carrier=sim_cls.name, realtime_url=rt.url, api_key="sk-test", agent=agent,
                         control=None) as bridge:
        sim = sim_cls(bridge.url, fmt)
        async with sim:
            await sim.say(silence_fmt(200, fmt) + speech(800, fmt) + silence_fmt(900, fmt))
            await sim.wait_for(lambda: sim.heard_ms >= 200)
            await sim.dtmf("9")
            await settle(lambda: any("pressed 9" in str(m.get("item")) for m in of_type(rt, "conversation.item.create")))
            await sim.hang_up()
            await settle(lambda: bridge.summaries)
    assert [e.name for e in seen if isinstance(e, ToolResult)] == ["get_weather"]
    assert [e.digit for e in seen if type(e).__name__ == "Dtmf"] == ["9"]
    assert bridge.summaries[0]["errors"] == 0


async def test_transfer_and_hang_up_go_through_the_carriers_rest_api(monkeypatch):
    from carrier_fakes import TwilioFake

    agent = Agent("x")

    @agent.tool
    async def transfer_call(ctx, department: str) -> str:
        """Put the caller through to a department."""
        await ctx.transfer("+15550100", say="Putting you through.", timeout=5)
        return "transferred"

    def script(session, user):
        if user.item and user.item.get("type") == "function_call":         # the say() while the tool runs
            return Reply("Putting you through.", audio_ms=300)
        return Reply("", function_call=FunctionCall("transfer_call", '{"department": "sales"}'))
    async with TwilioFake("AC0001", "tok", calls={"CA0001", "CA0002"}) as fake, RealtimeServer(script=script) as rt:
        monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC0001")
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok")
        monkeypatch.setenv("RTFAST_TWILIO_API_BASE", fake.base_url)
        async with BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=agent) as bridge:
            async with TwilioCall(bridge.url) as call:
                await call.say(silence(200) + tone(800) + silence(900))
                await settle(lambda: fake.transfers, timeout=10)
                await call.hang_up()                               # Twilio ends the stream once it dials
                await settle(lambda: bridge.summaries)
            assert fake.transfers == [("CA0001", ("number", "+15550100"))]
            assert call.played_ms >= 300                          # the sentence played before the transfer

            bye = Agent("y")

            @bye.on("transcript")
            async def done(ctx, ev):
                if ev.role == "user":
                    await ctx.hangup()

            bridge.agent = bye
            async with TwilioCall(bridge.url, call_sid="CA0002") as call:
                await call.say(silence(200) + tone(800) + silence(900))
                await settle(lambda: len(bridge.summaries) == 2)
            assert fake.calls["CA0002"] == "completed"


async def test_a_recording_matches_what_was_played_and_cut_where_the_caller_barged_in(tmp_path):
    import json
    import wave

    import numpy as np

    from rtfast import g711
    from rtfast.bridge.recording import default_writer

    agent = Agent("x", record=str(tmp_path))
    async with RealtimeServer(script=Script(reply_text="A long answer", audio_ms=3000)) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=agent, control=None, lead_ms=100) as bridge:
        t0 = time.monotonic()
        async with TwilioCall(bridge.url, realtime=True) as call:          # the caller's audio at 1x, as a phone

            caller = silence(300) + tone(800) + silence(900)
            await call.say(caller)
            await call.wait_for(lambda: call.played_ms >= 800)
            barge = tone(600) + silence(900)
            await call.say(barge)                                   # talks over the reply: it is cut
            await call.wait_for(lambda: call.clears >= 1)
            await asyncio.sleep(0.3)
            await call.hang_up()
            await settle(lambda: bridge.summaries)
        wall = time.monotonic() - t0
        received = bytes(call.received_audio)
    await asyncio.get_running_loop().run_in_executor(None, default_writer().flush, 5.0)
    with wave.open(str(tmp_path / "call-1.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    left, right = pcm[:, 0], pcm[:, 1]
    said = np.frombuffer(g711.ulaw_decode(caller + barge), "<i2")
    # as long as the call
    assert len(said) <= len(pcm) <= (wall + 0.1) * 8000
    # the caller's channel is exactly what the caller said, from the start
    assert np.array_equal(left[:len(said)], said)
    # the assistant's channel holds what the carrier played, and stops where the barge-in cut it
    voiced = np.flatnonzero(right)
    played = np.frombuffer(g711.ulaw_decode(received), "<i2")
    first = voiced[0] - np.flatnonzero(played)[0]                           # the reply may open on a zero sample
    assert np.array_equal(right[first:first + 1600], played[:1600])        # the first 200 ms, sample exact
    heard = len(voiced) / 8                                                 # ms of the reply in the file
    assert 600 < heard < len(received) / 8 + 1 and heard < 3000
    lines = [json.loads(x) for x in (tmp_path / "call-1.jsonl").read_text().splitlines()]
    kinds = [x["kind"] for x in lines]
    assert "barge_in" in kinds and "transcript" in kinds
    assert [x["t_ms"] for x in lines] == sorted(x["t_ms"] for x in lines)


async def test_a_transfer_without_call_control_tells_the_model_why():
    agent = Agent("x")

    @agent.tool
    async def transfer_call(ctx) -> str:
        """Put the caller through."""
        await ctx.transfer("+15550100")
        return "transferred"

    script = Script(reply_text="Sorry, I cannot transfer you", function_call=FunctionCall("transfer_call"),
                    audio_ms=300)
    async with RealtimeServer(script=script) as rt, \
            BridgeServer(realtime_url=rt.url, api_key="sk-test", agent=agent, control=None) as bridge:
        async with TwilioCall(bridge.url) as call:
            await call.say(silence(200) + tone(800) + silence(900))
            await settle(lambda: of_type(rt, "conversation.item.create"))
            await call.hang_up()
            await settle(lambda: bridge.summaries)
    output = of_type(rt, "conversation.item.create")[0]["item"]["output"]
    assert output.startswith('{"error":"CallControlError: twilio transfer failed: no call control is configured')
