"""The asyncio bridge end to end for Telnyx, Vonage, Plivo and Exotel: a
simulated carrier call through ``BridgeServer`` to the embedded Realtime
server, on loopback (Twilio's are in test_bridge.py).

Every call follows one script: the caller speaks and pauses, the agent's
first reply (FIRST_MS) plays, the caller talks over it half-way, the agent's
short second reply (SECOND_MS) plays in full, the caller presses a key and
hangs up. Audio is checked byte for byte against the embedded server's tone:
G.711 passes through untouched, PCM16 carriers get the one-shot transcode.
"""

import asyncio
import base64
import logging


from carrier_sim import settle
from carrier_sims_more import CarrierSim, ExotelSim, PlivoSim, TelnyxSim, VonageSim, silence, speech
from rtfast._server_session import tone
from rtfast.bridge.server import BridgeServer
from rtfast.server import RealtimeServer, Reply
from rtfast.transcode import Transcoder

FIRST_MS, SECOND_MS = 2000, 600
MODEL_PCM = "pcm16/24000"


def script(session, user):
    """A long first answer (the caller barges in half-way), short ones after."""
    answered = sum(1 for item in session.items if item.get("role") == "assistant")
    return Reply("Thanks for calling, how can I help you today?", FIRST_MS if not answered else SECOND_MS)


async def scripted_call(sim: CarrierSim, bridge: BridgeServer) -> None:
    """Speech, silence, a reply, a barge-in half-way through it, a second reply heard in full, DTMF, hang-up."""
    fmt = sim.fmt
    async with sim:
        await sim.say(silence(300, fmt) + speech(800, fmt) + silence(700, fmt))
        await sim.wait_for(lambda: sim.heard_ms >= FIRST_MS // 3)
        await sim.say(speech(400, fmt) + silence(700, fmt))              # the caller talks over the reply
        await sim.wait_for(lambda: sim.clears == 1)
        second = SECOND_MS * sim.bpm
        await sim.wait_for(lambda: len(sim.played[-1]) >= second * 0.95 and sim.idle)
        await asyncio.sleep(0.15)                                        # more than the lead: nothing else comes
        await sim.wait_for(lambda: sim.idle)
        await sim.dtmf("7")
        await asyncio.sleep(0.02)
        await sim.hang_up()
        await settle(lambda: bridge.summaries, state=lambda: [io.call.summary() for io in bridge.active.values()])


def reference_audio(ms: int, fmt: str) -> bytes:
    """What the carrier should play of a reply of ``ms``: the server's tone, in ``fmt``."""
    if fmt in ("pcmu/8000", "pcma/8000"):
        return tone(ms, fmt[:4])
    t = Transcoder(MODEL_PCM, fmt, quality="HQ-LL")  # the bridge's default
    return t.feed(tone(ms, "pcm")) + t.flush()


def _pad(fmt: str) -> bytes:
    """One byte of the silence the bridge pads a reply's last chunk with."""
    return silence(1, fmt)[:1]


def session_format(update: dict) -> tuple:
    audio = update["session"]["audio"]
    return audio["input"]["format"], audio["output"]["format"]


def check_call(sim: CarrierSim, sent: list[dict], summary: dict, *, mode: str, chunk: int) -> None:
    """Everything one scripted call must show, whichever the carrier."""
    fmt = sim.fmt
    # formats: the session.update in force before the first append
    types = [m.get("type") for m in sent]
    first_append = types.index("input_audio_buffer.append")
    update = [m for m in sent[:first_append] if m["type"] == "session.update"][-1]
    if mode == "passthrough":
        want = {"type": "audio/" + fmt[:4]}
    else:
        want = {"type": "audio/pcm", "rate": 24000}
    assert session_format(update) == (want, want)
    assert all(m["type"] != "session.update" for m in sent[first_append:])

    # the caller's audio reached the model in order: spliced untouched, or transcoded as one stream
    appends = [m["audio"].encode() for m in sent if m["type"] == "input_audio_buffer.append"]
    if mode == "passthrough":
        assert appends == sim.sent_payloads
    else:
        assert b"".join(base64.b64decode(a) for a in appends) == Transcoder(fmt, MODEL_PCM, quality="HQ-LL").feed(sim.sent_audio)

    # the audio that came back: the carrier's codec and rate, framed as it requires
    assert sim.clears == 1 and len(sim.played) == 2
    assert set(sim.chunks) == {chunk}
    first, second = sim.played
    ref_first, ref_second = reference_audio(FIRST_MS, fmt), reference_audio(SECOND_MS, fmt)
    assert 0 < len(first) < len(ref_first) and first == ref_first[:len(first)]    # cut half-way
    assert second == ref_second + _pad(fmt) * (-len(ref_second) % chunk)   # heard in full

    # one marker after each audio message, generation 0 before the clear and 1 after; each answered once
    n_first = len(first) // chunk
    assert len(sim.markers) == len(sim.chunks)
    assert [m.split(".")[0] for m in sim.markers] == ["0"] * n_first + ["1"] * (len(sim.markers) - n_first)
    assert [int(m.split(".")[1]) for m in sim.markers] == sorted(int(m.split(".")[1]) for m in sim.markers)
    assert set(sim.acked).isdisjoint(sim.flushed) and set(sim.acked) | set(sim.flushed) == set(sim.markers)
    assert all(m.startswith("0.") for m in sim.flushed)                 # the second reply played in full

    # barge-in: truncated at what had played (as the markers confirmed it), never beyond
    truncates = [m for m in sent if m["type"] == "conversation.item.truncate"]
    assert len(truncates) == 1
    end = truncates[0]["audio_end_ms"]
    assert 0 < end <= sim.acked_ms_at_clear[0] <= sim.heard_ms_at_clear[0] < FIRST_MS
    assert "conversation.item.delete" not in types

    assert summary["carrier"] == sim.name and summary["mode"] == mode and summary["carrier_format"] == fmt
    assert summary["barge_ins"] == 1 and summary["errors"] == 0
    assert summary["ended"] == ("carrier_closed" if sim.name == "vonage" else "stop")
    if sim.clear_returns_markers:
        assert summary["stale_marks"] >= len(sim.flushed)         # flushed back, not counted as played


async def run_one(sim_factory, carrier: str, caplog, *, mode: str, chunk: int) -> CarrierSim:
    caplog.set_level(logging.INFO, logger="rtfast.bridge")
    async with RealtimeServer(script=script) as rt, \
            BridgeServer(carrier=carrier, realtime_url=rt.url, api_key="sk-test") as bridge:
        before = set(asyncio.all_tasks())
        sim = sim_factory(bridge.url)
        await scripted_call(sim, bridge)
        await asyncio.sleep(0.05)
        assert set(asyncio.all_tasks()) - before == set()           # nothing left after hang-up
        assert not bridge.active and len(bridge.summaries) == 1
        check_call(sim, rt.received[0], bridge.summaries[0], mode=mode, chunk=chunk)
    assert "DTMF 7" in caplog.text and "summary" in caplog.text
    return sim


async def test_telnyx_pcma_passthrough_with_reordered_frames(caplog):
    sim = await run_one(lambda url: TelnyxSim(url, "pcma/8000"), "telnyx", caplog, mode="passthrough", chunk=160)
    assert sim.swaps >= 5                        # frames did go out of order; the model got them in chunk order


async def test_vonage_binary_pcm16_transcoded(caplog):
    await run_one(lambda url: VonageSim(url, "pcm16/16000"), "vonage", caplog, mode="transcode", chunk=640)


async def test_plivo_mulaw_passthrough_checkpoints(caplog):
    sim = await run_one(lambda url: PlivoSim(url, "pcmu/8000"), "plivo", caplog, mode="passthrough", chunk=160)
    assert sim.content_types == {("audio/x-mulaw", 8000)}
    assert sim.flushed                            # clearAudio dropped checkpoints; none came back


async def test_exotel_pcm16_transcoded_in_3200_byte_chunks(caplog):
    sim = await run_one(lambda url: ExotelSim(url, "pcm16/8000"), "exotel", caplog, mode="transcode", chunk=3200)
    assert all(c % 320 == 0 and c >= 3200 for c in sim.chunks)


async def test_two_carriers_at_once_on_two_bridges(caplog):
    caplog.set_level(logging.INFO, logger="rtfast.bridge")
    async with RealtimeServer(script=script) as rt, \
            BridgeServer(carrier="telnyx", realtime_url=rt.url, api_key="sk-test") as telnyx, \
            BridgeServer(carrier="vonage", realtime_url=rt.url, api_key="sk-test") as vonage:
        before = set(asyncio.all_tasks())
        a = TelnyxSim(telnyx.url, "pcmu/8000", call_id="tx-1")
        b = VonageSim(vonage.url, "pcm16/8000", call_id="vg-1")
        await asyncio.gather(scripted_call(a, telnyx), scripted_call(b, vonage))
        await asyncio.sleep(0.05)
        assert set(asyncio.all_tasks()) - before == set()
        assert not telnyx.active and not vonage.active
        by_format = {session_format(next(m for m in sent if m["type"] == "session.update"))[0]["type"]: sent
                     for sent in rt.received}
        check_call(a, by_format["audio/pcmu"], telnyx.summaries[0], mode="passthrough", chunk=160)
        check_call(b, by_format["audio/pcm"], vonage.summaries[0], mode="transcode", chunk=320)
    assert caplog.text.count("DTMF 7") == 2


async def test_vonage_hanging_up_mid_reply_ends_the_call_promptly():
    long_reply = Reply("A long answer.", 120000, chunk_ms=20)
    async with RealtimeServer(script=lambda session, user: long_reply) as rt, \
            BridgeServer(carrier="vonage", realtime_url=rt.url, api_key="sk-test") as bridge:
        async with VonageSim(bridge.url) as sim:
            await sim.say(speech(500, sim.fmt) + silence(700, sim.fmt))
            # hang up as the reply starts streaming: the bridge is still working through its deltas
            await sim.wait_for(lambda: rt.connections and any(i.get("role") == "assistant"
                                                              for i in rt.connections[0].items))
            await sim.hang_up()                                     # Vonage ends a call by closing the socket
            await settle(lambda: bridge.summaries, timeout=2.0)
        assert bridge.summaries[0]["ended"] == "carrier_closed"


async def test_the_summary_times_the_whole_call_and_counts_audio_each_way():
    """A caller who says little and hangs up a second later: the call lasted that second,
    though no audio ever left for the carrier (the summary once said ~0 s)."""
    import time

    for carrier, sim_cls, fmt in (("telnyx", TelnyxSim, "pcmu/8000"), ("vonage", VonageSim, "pcm16/8000")):
        async with RealtimeServer(script=script) as rt, \
                BridgeServer(carrier=carrier, realtime_url=rt.url, api_key="sk-test", vad=None) \
                as bridge:
            t0 = time.monotonic()
            async with sim_cls(bridge.url, fmt) as sim:
                await sim.say(silence(300, fmt))
                await asyncio.sleep(1.0)
                t_hang = time.monotonic()
                await sim.hang_up()
                await settle(lambda: bridge.summaries)
            t1 = time.monotonic()
            (s,) = bridge.summaries
            assert (t_hang - t0) * 1000 - 150 <= s["duration_ms"] <= (t1 - t0) * 1000, (carrier, s)
            assert s["audio_ms_from_carrier"] == 300 and s["audio_bytes_in"] == 300 * sim.bpm
            assert s["audio_ms_to_carrier"] == 0 and s["audio_bytes_out"] == 0 and s["frames_to_carrier"] == 0
            assert s["ended"] == ("carrier_closed" if carrier == "vonage" else "stop")
