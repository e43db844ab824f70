"""The bridge on GPT-Live end to end: simulated carrier calls through
``BridgeServer(protocol="live")`` to the embedded server's ``/v1/live/sessions``,
on loopback. G.711 passes through both ways; PCM16 carriers transcode; the
model owns barge-in (its audio just stops), and the bridge drops what it still
holds once the model has heard the caller and fallen silent (rtfast.bridge.livecall)."""

import asyncio
import base64
import logging
import signal
import time

import pytest

from carrier_sim import TwilioCall, settle, silence, tone
from carrier_sims_more import ExotelSim, TelnyxSim, VonageSim
from test_bridge_carriers import FIRST_MS, SECOND_MS, _pad, reference_audio, scripted_call
from rtfast._server_session import tone as model_tone
from rtfast.bridge.server import BridgeServer, main
from rtfast.server import RealtimeServer, Reply, Script
from rtfast.transcode import Transcoder


def live_frames(rt):
    return rt.received[0]


def media_after_clear(call) -> bytes:
    clear_at = next(i for i, m in enumerate(call.messages) if m["event"] == "clear")
    return b"".join(base64.b64decode(m["media"]["payload"]) for m in call.messages[clear_at:] if m["event"] == "media")


def first_reply_then_short(session, user):
    """A long first answer sent ahead of real time (the caller talks over it), short ones after."""
    answered = sum(1 for item in session.items if item.get("role") == "assistant")
    return Reply("Thanks for calling, how can I help you today?", FIRST_MS if not answered else SECOND_MS)


async def test_a_twilio_call_on_live_is_g711_passthrough_both_ways(caplog):
    caplog.set_level(logging.INFO, logger="rtfast.bridge")
    async with RealtimeServer(script=Script(reply_text="Hello from GPT-Live", audio_ms=610)) as rt, \
            BridgeServer(realtime_url=rt.live_url, api_key="sk-test", protocol="live",
                         instructions="Be brief.", voice="marin") as bridge:
        before = set(asyncio.all_tasks())
        async with TwilioCall(bridge.url) as call:
            await call.say(silence(300) + tone(800) + silence(900))
            await call.wait_for(lambda: call.played_ms >= 620)
            await asyncio.sleep(0.45)                       # longer than silence_ms + the lead: nothing else comes
            await call.hang_up()
            await settle(lambda: bridge.summaries)
        await asyncio.sleep(0.05)
        assert set(asyncio.all_tasks()) - before == set()
    sent = live_frames(rt)
    assert sent[0] == {"type": "session.start", "session": {
        "model": "gpt-live-1", "instructions": "Be brief.",
        "audio": {"format": {"type": "audio/pcmu", "rate": 8000}, "output": {"voice": "marin"}}}}
    appends = [m for m in sent if m["type"] == "session.input_audio.append"]
    assert len(appends) == len(sent) - 1 == (300 + 800 + 900) // 20
    assert [a["audio"].encode() for a in appends] == call.sent_payloads     # the carrier's payloads, untouched
    # the model's μ-law, byte for byte, its last partial chunk padded with μ-law silence once it stopped
    ref = model_tone(610, "pcmu")
    assert bytes(call.received_audio) == ref + b"\xff" * (-len(ref) % 160)
    media = [m for m in call.messages if m["event"] == "media"]
    assert all(len(m["media"]["payload"]) == 216 for m in media) and call.clears == 0
    assert len(call.marks_received) == len(media)
    s = bridge.summaries[0]
    assert s["protocol"] == "live" and s["mode"] == "passthrough" and s["errors"] == 0 and s["barge_ins"] == 0
    assert s["audio_bytes_in"] == 2000 * 8 and s["audio_bytes_out"] == len(call.received_audio)
    assert s["input_transcript_deltas"] >= 1 and s["output_transcript_deltas"] >= 1
    assert s["frames_to_realtime"] == 1 + len(appends) and s["ended"] == "stop"
    assert "summary" in caplog.text


async def test_talking_over_audio_sent_ahead_of_real_time_clears_it(caplog):
    """The model sent its whole first reply at once; the caller talks over it: once the
    model's transcript of that speech arrives (the model heard it, and is silent), the
    carrier is cleared and the queued rest is dropped; the next reply plays in full."""
    caplog.set_level(logging.INFO, logger="rtfast.bridge")
    async with RealtimeServer(script=first_reply_then_short) as rt, \
            BridgeServer(realtime_url=rt.live_url, api_key="sk-test", protocol="live") as bridge:
        async with TwilioCall(bridge.url) as call:
            await call.say(silence(300) + tone(800) + silence(900))
            await call.wait_for(lambda: call.played_ms >= 600)
            heard_before = call.played_ms
            await call.say(tone(400) + silence(900))               # the caller talks over it
            t_said = time.monotonic()
            await call.wait_for(lambda: call.clears == 1)
            cleared_after = time.monotonic() - t_said
            await call.wait_for(lambda: len(media_after_clear(call)) >= SECOND_MS * 8)
            await asyncio.sleep(0.5)
            await call.hang_up()
            await settle(lambda: bridge.summaries)
    after = media_after_clear(call)
    before = bytes(call.received_audio[:len(call.received_audio) - len(after)])
    ref_first, ref_second = model_tone(FIRST_MS, "pcmu"), model_tone(SECOND_MS, "pcmu")
    # no stale audio after the clear: only the second reply, in full
    assert after == ref_second + b"\xff" * (-len(ref_second) % 160)
    # the first was cut: what had been sent of it is its beginning, not all of it
    assert before == ref_first[:len(before)] and len(before) < len(ref_first) // 2
    # the caller's speech (400 ms) then the server's end-of-turn silence (500 ms) before the transcript;
    # the bridge acts on the first fragment (the model had long stopped)
    assert cleared_after < 1.5, cleared_after
    assert heard_before * 8 <= len(before)
    s = bridge.summaries[0]
    assert s["barge_ins"] == 1 and s["errors"] == 0 and s["stale_marks"] >= 0
    assert "barge-in: clear turn_1" in caplog.text


async def test_a_model_streaming_in_real_time_stops_within_the_lead():
    """The model streams at 1x and stops when the caller talks (GPT-Live's own barge-in,
    no event): what reaches the carrier after that is at most the lead and one delta."""
    def realtime_reply(session, user):
        answered = sum(1 for item in session.items if item.get("role") == "assistant")
        # the second answer comes a second late, so it cannot be mistaken for the first's tail
        return Reply("A long answer at real time.", 4000, realtime=True, chunk_ms=100, latency_ms=1000 * answered)

    async with RealtimeServer(script=realtime_reply) as rt, \
            BridgeServer(realtime_url=rt.live_url, api_key="sk-test", protocol="live", lead_ms=100) as bridge:
        async with TwilioCall(bridge.url, realtime=True) as call:
            await call.say(silence(200) + tone(600) + silence(700))
            await call.wait_for(lambda: call.played_ms >= 800)
            # nothing queued in the bridge beyond the startup buffer: 1x in, 1x out
            io = next(iter(bridge.active.values()))
            assert io.call.buffered_ms <= 100
            at = call.played_ms
            await call.say(tone(600) + silence(600))       # the caller talks; the model stops at its onset
            after = call.played_ms
            # what the carrier got after the caller began: the VAD's onset (a frame or two of
            # speech, and a loaded machine's delays), the lead at the carrier and the rest of the
            # 100 ms delta the bridge held; not the 3 s the model had left to say
            assert after - at <= 150 + 100 + 100 + 40, (at, after)
            assert io.call.buffered_ms == 0 and call.clears == 0
            await call.hang_up()
            await settle(lambda: bridge.summaries)
    assert bridge.summaries[0]["errors"] == 0


@pytest.mark.parametrize("carrier,sim_factory,mode,chunk", [
    ("vonage", lambda url: VonageSim(url, "pcm16/16000"), "transcode", 640),
    ("exotel", lambda url: ExotelSim(url, "pcm16/8000"), "transcode", 3200),
    ("telnyx", lambda url: TelnyxSim(url, "pcma/8000"), "passthrough", 160),
])
async def test_other_carriers_on_live_transcode_or_pass_through_and_barge_in_clears(carrier, sim_factory, mode, chunk):
    async with RealtimeServer(script=first_reply_then_short) as rt, \
            BridgeServer(carrier=carrier, realtime_url=rt.live_url, api_key="sk-test", protocol="live") as bridge:
        sim = sim_factory(bridge.url)
        await scripted_call(sim, bridge)
    sent = live_frames(rt)
    assert sent[0]["type"] == "session.start"
    want = {"type": "audio/pcm", "rate": 24000} if mode == "transcode" else {"type": "audio/pcma", "rate": 8000}
    assert sent[0]["session"]["audio"]["format"] == want
    appends = [m["audio"].encode() for m in sent if m["type"] == "session.input_audio.append"]
    if mode == "transcode":
        assert b"".join(base64.b64decode(a) for a in appends) == \
            Transcoder(sim.fmt, "pcm16/24000", quality="HQ-LL").feed(sim.sent_audio)
    else:
        assert appends == sim.sent_payloads          # in chunk order, untouched
    assert sim.clears == 1 and len(sim.played) == 2 and set(sim.chunks) == {chunk}
    first, second = sim.played
    ref_first, ref_second = reference_audio(FIRST_MS, sim.fmt), reference_audio(SECOND_MS, sim.fmt)
    assert 0 < len(first) < len(ref_first) and first == ref_first[:len(first)]
    assert second == ref_second + _pad(sim.fmt) * (-len(ref_second) % chunk)
    s = bridge.summaries[0]
    assert s["mode"] == mode and s["protocol"] == "live" and s["barge_ins"] == 1 and s["errors"] == 0
    assert s["ended"] == ("carrier_closed" if carrier == "vonage" else "stop")


async def test_server_errors_are_logged_and_the_call_goes_on(caplog):
    caplog.set_level(logging.INFO, logger="rtfast.bridge")
    async with RealtimeServer(script=Script(reply_text="ok", audio_ms=200)) as rt, \
            BridgeServer(realtime_url=rt.live_url, api_key="sk-test", protocol="live",
                         session={"delegation": {"type": "nonsense"}}) as bridge:
        async with TwilioCall(bridge.url) as call:
            # session.start is refused: the API's error is logged, the call ends clearly
            await settle(lambda: bridge.summaries or "realtime error" in caplog.text)
            await call.say(silence(100))
            await call.hang_up()
            await settle(lambda: bridge.summaries)
    assert "realtime error" in caplog.text and "delegation" in caplog.text
    assert bridge.summaries[0]["errors"] >= 1


async def test_agents_are_refused_on_live():
    from rtfast.bridge import Agent

    with pytest.raises(ValueError, match="protocol='realtime' only"):
        BridgeServer(protocol="live", agent=Agent("hi"))
    with pytest.raises(ValueError, match="protocol must be"):
        BridgeServer(protocol="gpt-live")
    with pytest.raises(SystemExit):
        main(["--protocol", "live", "--record", "/tmp/x"])


async def test_rtfast_bridge_protocol_live_local_carries_a_call_and_counts_it():
    """`rtfast bridge --protocol live --local`: the embedded server's /v1/live/sessions, a call
    through it, and /metrics counting its frames and audio while it is live."""
    from prometheus_client.parser import text_string_to_metric_families
    from test_ops import ask, open_http, start_bridge

    proc, port = await start_bridge("--protocol", "live", "--workers", "1")
    try:
        async with TwilioCall(f"ws://127.0.0.1:{port}/") as call:
            await call.say(silence(200) + tone(800) + silence(900))
            await call.wait_for(lambda: call.played_ms >= 300)
            status, body = await ask(await open_http(port), "/metrics")
            assert status == 200
            samples = {(s.name, s.labels.get("direction")): s.value
                       for f in text_string_to_metric_families(body) for s in f.samples}
            assert samples[("rtfast_frames_total", "to_realtime")] >= (200 + 800 + 900) // 20
            assert samples[("rtfast_audio_bytes_total", "from_carrier")] == (200 + 800 + 900) * 8
            assert samples[("rtfast_audio_bytes_total", "to_carrier")] >= 300 * 8
            await call.hang_up()
            await asyncio.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 15)
    err = (await proc.stderr.read()).decode()
    assert "summary" in err and "0 errors" in err, err
