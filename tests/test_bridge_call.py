"""rtfast.bridge.Call driven by scripted byte literals: carrier frames, realtime frames, ticks."""

import base64

import orjson
import pytest

from rtfast import wire
from rtfast.bridge import BargeIn, Call, CallEnded
from rtfast.bridge.carriers import Dtmf, ExotelCodec, Mark, Start, Stop, TelnyxCodec, TwilioCodec, VonageCodec
from rtfast.errors import ProtocolError
from test_carriers import (B64, EXOTEL_START, TELNYX_START, TWILIO_DTMF, TWILIO_MEDIA, TWILIO_START, TWILIO_STOP,
                           ULAW, VONAGE_CONNECTED, telnyx_media)

SID = "MZ18ad3ab5a668"


def session_updated(fmt="audio/pcmu"):
    f = {"type": fmt} if fmt != "audio/pcm" else {"type": fmt, "rate": 24000}
    return orjson.dumps({"type": "session.updated", "event_id": "e0", "session": {
        "type": "realtime", "id": "sess_1", "object": "realtime.session",
        "audio": {"input": {"format": f}, "output": {"format": f, "voice": "alloy"}}}})


def response_created(rid="resp_1"):
    return orjson.dumps({"type": "response.created", "event_id": "e1",
                         "response": {"id": rid, "object": "realtime.response", "status": "in_progress"}})


def response_done(rid="resp_1"):
    return orjson.dumps({"type": "response.done", "event_id": "e9",
                         "response": {"id": rid, "object": "realtime.response", "status": "completed"}})


def delta(audio, item="item_1", rid="resp_1"):
    return orjson.dumps({"type": "response.output_audio.delta", "event_id": "e", "response_id": rid,
                         "item_id": item, "output_index": 0, "content_index": 0,
                         "delta": base64.b64encode(audio).decode()})


def audio_done(item="item_1", rid="resp_1"):
    return orjson.dumps({"type": "response.output_audio.done", "event_id": "e", "response_id": rid,
                         "item_id": item, "output_index": 0, "content_index": 0})


SPEECH_STARTED = orjson.dumps({"type": "input_audio_buffer.speech_started", "event_id": "e",
                               "audio_start_ms": 1000, "item_id": "item_user"})


def twilio_call(**kw):
    call = Call(TwilioCodec(), **kw)
    call.session_update()
    call.from_carrier(TWILIO_START)
    call.from_realtime(session_updated("audio/pcmu" if call.effective_mode == "passthrough" else "audio/pcm"))
    return call


def media_payloads(frames):
    """Decoded audio of the carrier media frames in a to_carrier list (marks skipped)."""
    out = []
    for f in frames:
        d = orjson.loads(f)
        if d["event"] == "media":
            out.append(base64.b64decode(d["media"]["payload"]))
    return out


def marks(frames):
    return [orjson.loads(f)["mark"]["name"] for f in frames if orjson.loads(f)["event"] == "mark"]


def echo(call, names):
    for n in names:
        call.from_carrier(orjson.dumps({"event": "mark", "streamSid": SID, "mark": {"name": n}}))


# -- session.update -----------------------------------------------------------------------------

def test_session_update_passthrough_matches_the_carrier_codec():
    call = Call(TwilioCodec(), instructions="Be brief.", voice="marin")
    d = orjson.loads(call.session_update())
    assert d["type"] == "session.update"
    audio = d["session"]["audio"]
    assert audio["input"]["format"] == {"type": "audio/pcmu"} and audio["output"]["format"] == {"type": "audio/pcmu"}
    assert audio["input"]["turn_detection"] == {"type": "server_vad"} and audio["output"]["voice"] == "marin"
    assert d["session"]["instructions"] == "Be brief."


def test_corrective_session_update_when_start_changes_the_codec():
    call = Call(TelnyxCodec())                 # expects PCMU until start says otherwise
    assert orjson.loads(call.session_update())["session"]["audio"]["input"]["format"]["type"] == "audio/pcmu"
    a = call.from_carrier(TELNYX_START)        # PCMA
    assert isinstance(a.events[0], Start)
    (upd,) = a.to_realtime
    assert orjson.loads(upd)["session"]["audio"]["output"]["format"] == {"type": "audio/pcma"}
    assert call.carrier_format == "pcma/8000" and call.effective_mode == "passthrough"


def test_transcode_and_beta_session_update():
    call = Call(TwilioCodec(), mode="transcode", generation="beta", vad=None)
    d = orjson.loads(call.session_update())["session"]
    assert d["input_audio_format"] == "pcm16" and d["output_audio_format"] == "pcm16" and d["turn_detection"] is None
    d = orjson.loads(Call(TwilioCodec(), mode="transcode").session_update())["session"]
    assert d["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}


# -- inbound ------------------------------------------------------------------------------------

def test_passthrough_splice_is_byte_identical_to_build_append_b64():
    call = twilio_call()
    a = call.from_carrier(TWILIO_MEDIA)
    assert a.to_realtime == [wire.build_append_b64(B64)] and not a.to_carrier and not a.events
    outbound = TWILIO_MEDIA.replace(b'"track":"inbound"', b'"track":"outbound"')
    assert not call.from_carrier(outbound)        # only the caller's track goes to the model


def test_telnyx_out_of_order_chunks_reach_the_model_in_order():
    call = Call(TelnyxCodec())
    call.from_carrier(TELNYX_START)
    payloads = [base64.b64encode(bytes([c]) * 160).decode() for c in range(8)]
    sent = []
    for c in [0, 1, 3, 2, 4, 6, 5, 7]:
        sent += call.from_carrier(telnyx_media(c, payloads[c])).to_realtime
    assert sent == [wire.build_append_b64(p) for p in payloads]


def test_bad_frames_surface_as_errors_and_the_call_goes_on():
    call = twilio_call()
    a = call.from_carrier(b'{"event":"media","media":{"payload":"!!!!"}}')
    assert isinstance(a.events[0], ProtocolError) and not a.to_realtime
    a = call.from_realtime(b'{"type":')
    assert isinstance(a.events[0], ProtocolError)
    assert call.from_carrier(TWILIO_MEDIA).to_realtime and call.errors == 2


def test_media_before_start_is_an_error_event():
    call = Call(TwilioCodec())
    (err,) = call.from_carrier(TWILIO_MEDIA).events
    assert isinstance(err, ProtocolError) and "before start" in str(err)


def test_dtmf_and_stop():
    call = twilio_call()
    (ev,) = call.from_carrier(TWILIO_DTMF).events
    assert isinstance(ev, Dtmf) and ev.digit == "1"
    a = call.from_carrier(TWILIO_STOP)
    assert a.hangup and isinstance(a.events[0], CallEnded) and isinstance(a.events[1], Stop)
    assert call.summary()["ended"] == "stop"
    assert call.carrier_closed().hangup


# -- outbound: framing and pacing ---------------------------------------------------------------

def test_odd_sized_deltas_leave_as_steady_20ms_frames_each_followed_by_a_mark():
    call = twilio_call(startup_buffer_ms=0, lead_ms=10_000)
    call.from_realtime(response_created())
    audio = bytes(i % 255 for i in range(1234))
    pos = 0
    for n in (37, 250, 91, 160, 1, 695):
        call.from_realtime(delta(audio[pos:pos + n]))
        pos += n
    a = call.tick(0)
    frames = media_payloads(a.to_carrier)
    assert [len(f) for f in frames] == [160] * 7          # 1120 whole bytes; 114 wait for more
    call.from_realtime(audio_done())                       # the item is complete: pad its tail
    frames += media_payloads(call.tick(0).to_carrier)
    assert [len(f) for f in frames] == [160] * 8
    assert b"".join(frames) == audio + b"\xff" * (1280 - 1234)
    # every media is followed by its mark, numbered in order
    kinds = [orjson.loads(f)["event"] for f in a.to_carrier]
    assert kinds == ["media", "mark"] * 7 and marks(a.to_carrier) == [f"0.{i}" for i in range(1, 8)]


def test_pacing_never_more_than_lead_ms_ahead():
    call = twilio_call(startup_buffer_ms=0, lead_ms=100)
    call.from_realtime(response_created())
    call.from_realtime(delta(ULAW * 100))                  # 2 s at once
    call.from_realtime(audio_done())
    sent_ms, now = 0, 1000.0
    first = None
    while now < 4000:
        frames = media_payloads(call.tick(now).to_carrier)
        first = len(frames) if first is None else first
        sent_ms += 20 * len(frames)
        assert sent_ms - (now - 1000) <= 100               # at most lead_ms ahead of real time
        now += 7                                           # ticks need not be on the frame grid
    assert first == 5 and sent_ms == 2000


def test_the_pacer_tops_up_two_chunks_per_write_and_never_exceeds_the_lead():
    call = twilio_call(startup_buffer_ms=0, lead_ms=100)
    call.from_realtime(response_created())
    first = media_payloads(call.from_realtime(delta(ULAW * 100), now_ms=0).to_carrier)   # 2 s at once
    assert len(first) == 5                                  # the lead's worth leaves at once
    sent_ms, writes, now = 100, [], 0.0
    while (due := call.wake_at(now)) is not None:           # as BridgeServer's 10 ms pacer does
        now += 10
        if due <= now:
            n = len(media_payloads(call.tick(now).to_carrier))
            writes.append(n)
            sent_ms += 20 * n
            assert sent_ms - now <= 100                       # never more than lead_ms ahead
            assert sent_ms - now >= 40                        # and never close to running dry
    assert sent_ms == 2000 and writes == [2] * 47 + [1]     # 95 chunks in 48 writes, not 95


def test_startup_buffer_then_from_realtime_with_now_sends_at_once():
    call = twilio_call(startup_buffer_ms=60)
    call.from_realtime(response_created())
    assert not call.from_realtime(delta(ULAW * 2), now_ms=0).to_carrier     # 40 ms: gathering
    a = call.from_realtime(delta(ULAW), now_ms=5)                          # 60 ms: go
    assert len(media_payloads(a.to_carrier)) == 3
    assert call.wake_at(5) is None


def test_a_short_complete_item_is_not_held_by_the_startup_buffer():
    call = twilio_call(startup_buffer_ms=200)
    call.from_realtime(response_created())
    call.from_realtime(delta(ULAW[:100]))
    call.from_realtime(audio_done())
    assert len(media_payloads(call.tick(0).to_carrier)) == 1


# -- barge-in -----------------------------------------------------------------------------------

def playing_call(ms_received=400, ms_played=60):
    """A call with ms_received of item_1 received, 100 ms sent, ms_played confirmed by marks."""
    call = twilio_call(startup_buffer_ms=0, lead_ms=100)
    call.from_realtime(response_created())
    call.from_realtime(delta(ULAW * (ms_received // 20)))
    sent = call.tick(0).to_carrier
    assert len(media_payloads(sent)) == min(5, ms_received // 20)
    echo(call, marks(sent)[:ms_played // 20])
    assert call.played_ms.get("item_1", 0) == ms_played
    return call, marks(sent)


def test_barge_in_clears_first_then_cancels_and_truncates_at_played_ms():
    call, names = playing_call(ms_received=400, ms_played=60)
    a = call.from_realtime(SPEECH_STARTED)
    assert a.to_carrier == [b'{"event":"clear","streamSid":"%s"}' % SID.encode()]
    cancel, truncate = (orjson.loads(f) for f in a.to_realtime)
    assert cancel == {"type": "response.cancel"}
    assert truncate == {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0,
                        "audio_end_ms": 60}
    (b,) = [e for e in a.events if isinstance(e, BargeIn)]
    assert (b.action, b.audio_end_ms, b.played_ms, b.received_ms, b.cancelled, b.cleared) == (
        "truncate", 60, 60, 400, True, True)
    # The clear flushes the other marks back: they are not counted as played.
    echo(call, names[3:])
    assert call.played_ms["item_1"] == 60 and call.stale_marks == 2
    # Late deltas of the interrupted response are not played.
    call.from_realtime(delta(ULAW * 5))
    assert call.late_deltas == 1 and not call.tick(1000).to_carrier and call.buffered_ms == 0
    # A new response plays normally, marks of the new generation count.
    call.from_realtime(response_done())
    call.from_realtime(response_created("resp_2"))
    call.from_realtime(delta(ULAW * 3, item="item_2", rid="resp_2"))
    out = call.tick(2000).to_carrier
    assert len(media_payloads(out)) == 3 and marks(out)[0].startswith("1.")
    echo(call, marks(out))
    assert call.played_ms["item_2"] == 60 and call.summary()["barge_ins"] == 1


def test_barge_in_deletes_the_item_when_nothing_played():
    call, _ = playing_call(ms_received=400, ms_played=0)
    a = call.from_realtime(SPEECH_STARTED)
    assert len(a.to_carrier) == 1                                  # clear
    assert [orjson.loads(f) for f in a.to_realtime] == [
        {"type": "response.cancel"}, {"type": "conversation.item.delete", "item_id": "item_1"}]


def test_truncate_is_min_of_played_and_received():
    # Played can run past what was received (the item tail is padded to a whole frame).
    call = twilio_call(startup_buffer_ms=0, lead_ms=100)
    call.from_realtime(response_created())
    call.from_realtime(delta(ULAW * 2 + ULAW[:80]))                # 50 ms received
    call.from_realtime(audio_done())                               # padded to 60 ms
    call.from_realtime(delta(ULAW * 10, item="item_2"))            # then a second item, 200 ms
    sent = call.tick(0).to_carrier
    echo(call, marks(sent)[:4])                                    # item_1 fully (60 ms), item_2 20 ms
    assert call.played_ms == {"item_1": 60, "item_2": 20}
    a = call.from_realtime(SPEECH_STARTED)
    truncates = [orjson.loads(f) for f in a.to_realtime if b"truncate" in f]
    assert truncates == [{"type": "conversation.item.truncate", "item_id": "item_2", "content_index": 0,
                          "audio_end_ms": 20}]
    b1 = [e for e in a.events if isinstance(e, BargeIn) and e.item_id == "item_1"]
    assert b1 == [] or b1[0].action is None                        # item_1 played entirely: left alone


def test_an_item_still_streaming_is_truncated_even_when_all_received_audio_played():
    call, names = playing_call(ms_received=60, ms_played=60)       # playback caught up with the model
    a = call.from_realtime(SPEECH_STARTED)
    assert not a.to_carrier                                        # nothing in flight: no clear needed
    assert [orjson.loads(f) for f in a.to_realtime] == [
        {"type": "response.cancel"},
        {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 60}]


def test_cancel_only_when_a_response_is_active():
    call, _ = playing_call(ms_received=200, ms_played=40)
    call.from_realtime(response_done())                            # generation finished, audio still playing
    a = call.from_realtime(SPEECH_STARTED)
    assert len(a.to_carrier) == 1
    assert [orjson.loads(f)["type"] for f in a.to_realtime] == ["conversation.item.truncate"]
    # Nothing playing and no response: speech_started does nothing but surface.
    a = call.from_realtime(SPEECH_STARTED)
    assert not a.to_carrier and not a.to_realtime and a.events[0].type == "input_audio_buffer.speech_started"


# -- other carriers and transcode ---------------------------------------------------------------

def test_transcode_round_trip_twilio():
    call = twilio_call(mode="transcode", startup_buffer_ms=0, lead_ms=1000)
    assert call.effective_mode == "transcode"
    ins = []
    for _ in range(10):
        ins += call.from_carrier(TWILIO_MEDIA).to_realtime
    pcm = b"".join(base64.b64decode(orjson.loads(f)["audio"]) for f in ins)
    assert abs(len(pcm) - 10 * 960) <= 2 * 960                     # 8 kHz mu-law -> 24 kHz PCM16
    call.from_realtime(response_created())
    call.from_realtime(delta(pcm))
    call.from_realtime(audio_done())
    frames = media_payloads(call.tick(0).to_carrier)
    assert all(len(f) == 160 for f in frames) and 8 <= len(frames) <= 11


def test_vonage_pcm16_transcodes_with_binary_frames_and_notify_marks():
    call = Call(VonageCodec(), startup_buffer_ms=0)
    assert call.effective_mode == "transcode"
    call.session_update()
    a = call.from_carrier(VONAGE_CONNECTED)
    assert isinstance(a.events[0], Start) and call.carrier_format == "pcm16/16000"
    ins = call.from_carrier(bytes(640), binary=True).to_realtime
    ins += call.from_carrier(bytes(640), binary=True).to_realtime
    assert ins and all(f.startswith(b'{"type":"input_audio_buffer.append"') for f in ins)
    call.from_realtime(session_updated("audio/pcm"))
    call.from_realtime(response_created())
    call.from_realtime(delta(bytes(960 * 5)))
    call.from_realtime(audio_done())
    out = call.tick(0).to_carrier
    binary = [f for f in out if type(f) is tuple]
    assert binary and all(f[0] == 2 and len(f[1]) == 640 for f in binary)
    notes = [orjson.loads(f) for f in out if type(f) is bytes]
    assert notes[0] == {"action": "notify", "payload": {"name": "0.1"}}
    call.from_carrier(b'{"event":"websocket:notify","payload":{"name":"0.1"}}')
    assert call.played_ms["item_1"] == 20


def test_exotel_sends_3200_byte_chunks():
    call = Call(ExotelCodec(), startup_buffer_ms=0)
    call.from_carrier(EXOTEL_START)
    call.from_realtime(session_updated("audio/pcm"))
    call.from_realtime(response_created())
    call.from_realtime(delta(bytes(4800 * 3)))                     # 300 ms at 24 kHz
    call.from_realtime(audio_done())
    assert call.chunk_ms == 200 and call.lead_ms == 400         # 3200 bytes of 8 kHz PCM16
    sizes = [len(p) for p in media_payloads(call.tick(0).to_carrier)]
    assert sizes and all(s == 3200 for s in sizes) and len(sizes) == 2


def test_bad_arguments():
    with pytest.raises(ValueError):
        Call(TwilioCodec(), mode="fast")
    with pytest.raises(ValueError):
        Call(TwilioCodec(), frame_ms=30)


def test_deltas_slower_than_playback_keep_their_item():
    """The item's queued audio runs out between deltas (underrun): later deltas still count for it."""
    call = twilio_call(startup_buffer_ms=0, lead_ms=100)
    call.from_realtime(response_created())
    sent = []
    for i in range(6):
        sent += call.from_realtime(delta(ULAW[:80] * 3), now_ms=i * 200).to_carrier   # 30 ms per 200 ms
    call.from_realtime(audio_done())
    sent += call.tick(2000).to_carrier
    assert b"".join(media_payloads(sent)) == ULAW[:80] * 18
    echo(call, marks(sent))
    assert call.played_ms == {"item_1": 180} and call.sent_ms == {"item_1": 180}


def test_a_carrier_that_never_echoes_marks_keeps_the_ledger_bounded():
    from rtfast.bridge.call import _LEDGER_MAX

    call = twilio_call()
    call.from_realtime(response_created("resp_1"))
    sent = call.from_realtime(delta(ULAW * 4, item="item_1", rid="resp_1"), now_ms=0).to_carrier
    echo(call, marks(sent)[:3])                              # three marks come back, then none ever again
    now = 0
    for k in range(2, 40):                                   # ~11 minutes of audio, 600 chunks a minute
        call.from_realtime(delta(ULAW * 400, item="item_1", rid="resp_1"), now_ms=now)
        for _ in range(400):
            now += 20
            call.tick(now)
    assert len(call._ledger) == _LEDGER_MAX and _LEDGER_MAX * 20 == 10_000     # 10 s of 20 ms chunks
    assert call.played_ms["item_1"] == 60                    # what was confirmed stays
    a = call.from_realtime(SPEECH_STARTED, now_ms=now)
    (b,) = [e for e in a.events if isinstance(e, BargeIn)]
    assert (b.item_id, b.action, b.audio_end_ms) == ("item_1", "truncate", 60)
    assert call.codec.clear() in a.to_carrier


def test_a_call_of_hours_keeps_bounded_state_and_barge_in_still_works():
    from rtfast.session import ITEMS_KEPT

    call = twilio_call()
    now = 0
    for r in range(1, 301):                                 # 300 answers, each played and its marks echoed
        rid, item = f"resp_{r}", f"item_{r}"
        call.from_realtime(response_created(rid))
        out = call.from_realtime(delta(ULAW * 2, item=item, rid=rid), now_ms=now).to_carrier
        call.from_realtime(audio_done(item, rid))
        call.from_realtime(response_done(rid))
        out += call.tick(now + 1000).to_carrier
        echo(call, marks(out))
        if r % 3 == 0:                                      # and now and then the caller interrupts
            call.from_realtime(response_created(f"x{r}"))
            call.from_realtime(delta(ULAW * 5, item=f"xi{r}", rid=f"x{r}"), now_ms=now + 2000)
            call.from_realtime(SPEECH_STARTED, now_ms=now + 2010)
            call.from_realtime(response_done(f"x{r}"))
        now += 5000
    sizes = [len(call.played_ms), len(call.sent_ms), len(call._cut_items), len(call._cut_responses),
             len(call.session.items)]
    assert max(sizes) <= ITEMS_KEPT and min(sizes) > 0
    assert "item_300" in call.played_ms and "item_1" not in call.played_ms
    # still exact after the pruning: a late interruption truncates at what was played
    call.from_realtime(response_created("resp_last"))
    sent = call.from_realtime(delta(ULAW * 20, item="item_last", rid="resp_last"), now_ms=now).to_carrier
    echo(call, marks(sent)[:2])
    a = call.from_realtime(SPEECH_STARTED, now_ms=now + 50)
    (b,) = [e for e in a.events if isinstance(e, BargeIn)]
    assert (b.item_id, b.action, b.audio_end_ms) == ("item_last", "truncate", 40)


# -- the per-call summary -------------------------------------------------------------------------

TWILIO_CONNECTED = b'{"event": "connected", "protocol": "Call", "version": "1.0.0"}'


def bad_delta(item="item_2", rid="resp_2"):
    return orjson.dumps({"type": "response.output_audio.delta", "event_id": "e", "response_id": rid,
                         "item_id": item, "output_index": 0, "content_index": 0, "delta": "AA!A"})


def test_summary_counts_every_frame_and_byte_and_times_the_whole_call():
    call = Call(TwilioCodec(), startup_buffer_ms=0, lead_ms=100)
    call.session_update()                                          # to realtime: 1
    call.from_carrier(TWILIO_CONNECTED, now_ms=1000)               # the call starts
    call.from_carrier(TWILIO_START, now_ms=1020)
    call.from_realtime(session_updated(), now_ms=1100)
    for _ in range(5):                                             # 100 ms of caller audio: 5 appends
        call.from_carrier(TWILIO_MEDIA)
    call.from_realtime(response_created(), now_ms=1200)
    sent = call.from_realtime(delta(ULAW * 10), now_ms=1200).to_carrier   # 5 chunks + 5 marks (lead)
    assert len(sent) == 10
    echo(call, marks(sent)[:3])
    a = call.from_realtime(SPEECH_STARTED, now_ms=1260)            # clear; cancel + truncate
    assert len(a.to_carrier) == 1 and len(a.to_realtime) == 2
    echo(call, marks(sent)[3:])                                    # flushed back by the clear: stale
    call.from_realtime(delta(ULAW * 2), now_ms=1300)               # late delta of the cut response
    call.from_carrier(b'{"event":"media","media":{"payload":"!!!!"}}')     # error 1
    call.from_realtime(b'{"type":')                                         # error 2
    call.from_realtime(response_created("resp_2"), now_ms=1400)
    call.from_realtime(bad_delta(), now_ms=1400)                            # error 3
    assert call.summary()["duration_ms"] == 400                    # while the call goes on: to the latest clock
    assert call.summary(now_ms=5000)["duration_ms"] == 4000        # or to now
    call.from_carrier(TWILIO_STOP, now_ms=11020)                   # the call ends 10.02 s after it started
    call.tick(12000)                                               # the clock goes on; the call does not
    assert call.summary() == {
        "carrier": "twilio", "mode": "passthrough", "carrier_format": "pcmu/8000",
        "frames_from_carrier": 2 + 5 + 5 + 1 + 1, "frames_to_carrier": 10 + 1,
        "frames_from_realtime": 1 + 2 + 1 + 1 + 1 + 2, "frames_to_realtime": 1 + 5 + 2,
        "audio_bytes_in": 800, "audio_bytes_out": 800,
        "barge_ins": 1, "late_deltas": 1, "stale_marks": 2, "errors": 3, "ended": "stop",
        "duration_ms": 10020, "audio_ms_from_carrier": 100, "audio_ms_to_carrier": 100,
    }
    assert call.summary(now_ms=99_999)["duration_ms"] == 10020     # an ended call's duration is fixed


def test_summary_of_a_transcoded_pcm16_call_counts_audio_in_the_carriers_format():
    # Vonage: PCM16 16 kHz (32 bytes per ms) each way; the call ends when the socket closes.
    call = Call(VonageCodec(), startup_buffer_ms=0, lead_ms=100)
    call.session_update()
    call.from_carrier(VONAGE_CONNECTED, now_ms=500)
    for _ in range(3):
        call.from_carrier(bytes(640), binary=True)                 # 3 x 20 ms in
    call.from_realtime(session_updated("audio/pcm"), now_ms=600)
    call.from_realtime(response_created(), now_ms=600)
    out = call.from_realtime(delta(bytes(960 * 4)), now_ms=600).to_carrier     # 80 ms at 24 kHz
    out += call.from_realtime(audio_done(), now_ms=610).to_carrier
    out += call.tick(700).to_carrier
    chunks = [f for f in out if type(f) is tuple]
    assert call.carrier_closed(now_ms=3500).hangup
    s = call.summary()
    assert s["audio_bytes_in"] == 3 * 640 and s["audio_ms_from_carrier"] == 60
    assert s["audio_bytes_out"] == 640 * len(chunks) and s["audio_ms_to_carrier"] == 20 * len(chunks)
    assert len(chunks) == 4
    assert (s["carrier"], s["mode"], s["carrier_format"]) == ("vonage", "transcode", "pcm16/16000")
    assert s["frames_from_carrier"] == 4 and s["frames_to_carrier"] == 8
    assert s["ended"] == "carrier_closed" and s["duration_ms"] == 3000


def test_summary_before_any_clock_and_a_stop_without_one():
    call = Call(TwilioCodec())
    s = call.summary()
    assert s["duration_ms"] == 0 and s["ended"] is None and s["audio_ms_from_carrier"] == 0
    assert s["frames_to_realtime"] == 0
    call.from_carrier(TWILIO_START, now_ms=100)
    call.tick(2100)
    call.from_carrier(TWILIO_STOP)                                  # no clock with it: the latest one counts
    call.tick(9000)
    assert call.summary()["duration_ms"] == 2000


def test_a_corrective_session_update_is_counted_once():
    call = Call(TelnyxCodec())
    call.session_update()
    assert call.summary()["frames_to_realtime"] == 1
    a = call.from_carrier(TELNYX_START)                             # PCMA: a second session.update
    assert len(a.to_realtime) == 1 and call.summary()["frames_to_realtime"] == 2


# -- barge-in and the playback ledger, pinned after mutation testing ------------------------------

def test_barge_in_leaves_an_item_heard_in_full_alone():
    call = twilio_call(startup_buffer_ms=0, lead_ms=10_000)
    call.from_realtime(response_created())
    call.from_realtime(delta(ULAW * 2 + ULAW[:4]))                 # 40.5 ms: 40 ms received (whole ms)
    call.from_realtime(audio_done())                               # padded to 60 ms: three chunks
    call.from_realtime(delta(ULAW * 10, item="item_2"))
    sent = call.tick(0).to_carrier
    assert len(media_payloads(sent)) == 13
    echo(call, marks(sent)[:2])                                    # item_1's 40 ms played; its pad chunk not yet
    assert call.played_ms == {"item_1": 40} and call.sent_ms == {"item_1": 60, "item_2": 200}
    a = call.from_realtime(SPEECH_STARTED)
    assert a.to_carrier == [call.codec.clear()]
    assert [orjson.loads(f) for f in a.to_realtime] == [
        {"type": "response.cancel"}, {"type": "conversation.item.delete", "item_id": "item_2"}]
    assert [(b.item_id, b.action, b.audio_end_ms, b.played_ms, b.received_ms, b.cancelled, b.cleared)
            for b in a.events if isinstance(b, BargeIn)] == [
        ("item_1", None, 40, 40, 40, True, True), ("item_2", "delete", 0, 0, 200, True, True)]
    assert call.summary()["frames_to_realtime"] == 1 + 2            # session.update, cancel, delete: no truncate


def test_a_new_items_audio_before_the_previous_audio_done_finishes_the_previous_item():
    call = twilio_call(startup_buffer_ms=0, lead_ms=10_000)
    call.from_realtime(response_created())
    call.from_realtime(delta(ULAW * 2 + ULAW[:80]))                # item_1: 50 ms, no audio.done
    call.from_realtime(delta(ULAW * 2, item="item_2"))             # item_2 starts: item_1 is complete
    sent = call.tick(0).to_carrier
    frames = media_payloads(sent)
    # item_1's tail is padded to a whole chunk: no chunk carries both items' audio
    assert frames == [ULAW, ULAW, ULAW[:80] + b"\xff" * 80, ULAW, ULAW]
    assert call.sent_ms == {"item_1": 60, "item_2": 40}
    echo(call, marks(sent)[:4])
    assert call.played_ms == {"item_1": 60, "item_2": 20}
    a = call.from_realtime(SPEECH_STARTED)
    assert [orjson.loads(f) for f in a.to_realtime][1:] == [
        {"type": "conversation.item.truncate", "item_id": "item_2", "content_index": 0, "audio_end_ms": 20}]


def test_two_items_queued_at_once_are_charged_chunk_by_chunk():
    call = twilio_call(startup_buffer_ms=0, lead_ms=100)
    call.from_realtime(response_created())
    call.from_realtime(delta(ULAW * 3))                            # item_1: 60 ms
    call.from_realtime(audio_done())
    call.from_realtime(delta(ULAW * 4, item="item_2"))             # item_2: 80 ms, queued behind it
    call.from_realtime(audio_done("item_2"))
    assert call.buffered_ms == 140
    sent = call.tick(0).to_carrier                                 # the lead: 5 chunks
    assert call.sent_ms == {"item_1": 60, "item_2": 40} and call.buffered_ms == 40
    played = []
    for name in marks(sent):
        echo(call, [name])
        played.append(dict(call.played_ms))
    assert played == [{"item_1": 20}, {"item_1": 40}, {"item_1": 60}, {"item_1": 60, "item_2": 20},
                      {"item_1": 60, "item_2": 40}]
    sent = call.tick(100).to_carrier
    assert len(media_payloads(sent)) == 2 and call.sent_ms == {"item_1": 60, "item_2": 80}
    echo(call, marks(sent)[:1])
    assert call.played_ms == {"item_1": 60, "item_2": 60} and call.buffered_ms == 0
    # An old mark again, or a mark that is not ours, changes nothing
    echo(call, ["0.1", "0.x", "7"])
    assert call.played_ms == {"item_1": 60, "item_2": 60} and call.stale_marks == 2


def test_barge_in_with_a_response_active_but_no_audio_in_flight_only_cancels():
    call = twilio_call()
    call.from_realtime(response_created())
    a = call.from_realtime(SPEECH_STARTED)
    assert not a.to_carrier and [orjson.loads(f) for f in a.to_realtime] == [{"type": "response.cancel"}]
    (b,) = [e for e in a.events if isinstance(e, BargeIn)]
    assert (b.item_id, b.action, b.audio_end_ms, b.played_ms, b.received_ms, b.cancelled, b.cleared) == (
        None, None, 0, 0, 0, True, False)
    assert call.barge_ins == 1 and call.frames_to_realtime == 2 and call.frames_to_carrier == 0
    # the cancelled response's audio, arriving late, is dropped
    call.from_realtime(delta(ULAW * 5))
    assert call.late_deltas == 1 and call.buffered_ms == 0


def test_an_audio_delta_with_bad_base64_is_an_error_and_the_call_goes_on():
    call = twilio_call(startup_buffer_ms=0)
    call.from_realtime(response_created())
    a = call.from_realtime(bad_delta("item_1", "resp_1"), now_ms=0)
    (err,) = a.events
    assert isinstance(err, ProtocolError) and "audio delta is not base64" in str(err) and "offset 2" in str(err)
    assert call.errors == 1 and call.buffered_ms == 0 and not a.to_carrier
    out = call.from_realtime(delta(ULAW * 3), now_ms=0).to_carrier
    assert media_payloads(out) == [ULAW] * 3 and call.sent_ms == {"item_1": 60}


def test_a_twilio_call_announcing_alaw_runs_in_alaw():
    call = Call(TwilioCodec(), startup_buffer_ms=0, lead_ms=10_000)
    call.session_update()
    a = call.from_carrier(TWILIO_START.replace(b"audio/x-mulaw", b"audio/x-alaw"))
    (upd,) = a.to_realtime
    fmt = orjson.loads(upd)["session"]["audio"]
    assert fmt["input"]["format"] == fmt["output"]["format"] == {"type": "audio/pcma"}
    assert call.carrier_format == call.model_format == "pcma/8000" and call.effective_mode == "passthrough"
    call.from_realtime(session_updated("audio/pcma"))
    assert call.from_carrier(TWILIO_MEDIA).to_realtime == [wire.build_append_b64(B64)]
    call.from_realtime(response_created())
    call.from_realtime(delta(ULAW[:100]))                          # 12.5 ms of A-law
    call.from_realtime(audio_done())
    sent = call.tick(0).to_carrier
    assert media_payloads(sent) == [ULAW[:100] + b"\xd5" * 60]     # padded with A-law silence
    echo(call, marks(sent))
    call.from_realtime(delta(ULAW * 10, item="item_2"))            # 200 ms of A-law: 8 bytes a ms
    sent = call.tick(100).to_carrier
    echo(call, marks(sent)[:3])
    a = call.from_realtime(SPEECH_STARTED)
    trunc = [orjson.loads(f) for f in a.to_realtime if b"truncate" in f]
    assert trunc == [{"type": "conversation.item.truncate", "item_id": "item_2", "content_index": 0,
                      "audio_end_ms": 60}]
    assert call.session.audio_received_ms("item_2") == 200


def test_a_clear_while_nothing_was_sent_is_not_sent():
    # audio waiting for the start-up buffer (never sent): delete it, no clear for the carrier
    call = twilio_call(startup_buffer_ms=200)
    call.from_realtime(response_created())
    call.from_realtime(delta(ULAW * 2), now_ms=0)
    a = call.from_realtime(SPEECH_STARTED, now_ms=10)
    assert not a.to_carrier and call.buffered_ms == 0
    (b,) = [e for e in a.events if isinstance(e, BargeIn)]
    assert (b.item_id, b.action, b.cleared) == ("item_1", "delete", False)


def test_arguments_actions_and_reprs():
    for bad, msg in (({"mode": "fast"}, "mode must be 'passthrough' or 'transcode', not 'fast'"),
                     ({"generation": "translation"}, "generation must be 'ga' or 'beta', not 'translation'"),
                     ({"frame_ms": 0}, "frame_ms must be a positive multiple of 20, not 0"),
                     ({"frame_ms": -20}, "frame_ms must be"), ({"frame_ms": 30}, "frame_ms must be")):
        with pytest.raises(ValueError, match=msg):
            Call(TwilioCodec(), **bad)
    assert Call(TwilioCodec(), frame_ms=40).chunk_ms == 40
    from rtfast.bridge import Actions
    a = Actions()
    assert not a and repr(a) == "Actions(to_carrier=0, to_realtime=0, events=[], hangup=False)"
    for field, value in (("to_carrier", [b"x"]), ("to_realtime", [b"x"]), ("events", [1]), ("hangup", True)):
        b = Actions()
        setattr(b, field, value)
        assert b
    assert repr(BargeIn("i", "truncate", 5, 6, 7, True, False)) == (
        "BargeIn(item_id='i', action='truncate', audio_end_ms=5, played_ms=6, received_ms=7, cancelled=True)")
    assert repr(CallEnded("stop")) == "CallEnded('stop')"


def test_a_beta_call_pads_its_item_at_response_audio_done():
    call = Call(TwilioCodec(), generation="beta", startup_buffer_ms=0, lead_ms=10_000, voice="ash",
                instructions="Hi.", session={"temperature": 0.7})
    d = orjson.loads(call.session_update())["session"]
    assert (d["input_audio_format"], d["output_audio_format"], d["voice"], d["instructions"], d["temperature"]) == (
        "g711_ulaw", "g711_ulaw", "ash", "Hi.", 0.7)
    call.from_carrier(TWILIO_START)
    call.from_realtime(orjson.dumps({"type": "session.updated", "event_id": "e", "session": {
        "id": "s", "input_audio_format": "g711_ulaw", "output_audio_format": "g711_ulaw"}}))
    call.from_realtime(response_created())
    call.from_realtime(orjson.dumps({"type": "response.audio.delta", "event_id": "e", "response_id": "resp_1",
                                     "item_id": "item_1", "output_index": 0, "content_index": 0,
                                     "delta": base64.b64encode(ULAW[:100]).decode()}))
    assert not call.tick(0).to_carrier                             # 100 bytes: not a whole chunk yet
    call.from_realtime(orjson.dumps({"type": "response.audio.done", "event_id": "e", "response_id": "resp_1",
                                     "item_id": "item_1", "output_index": 0, "content_index": 0}))
    assert media_payloads(call.tick(0).to_carrier) == [ULAW[:100] + b"\xff" * 60]


def test_transcode_beta_and_ga_session_updates_carry_voice_and_instructions():
    d = orjson.loads(Call(TwilioCodec(), mode="transcode", generation="beta", voice="ash", instructions="x",
                          session={"temperature": 0.6}).session_update())["session"]
    assert d == {"input_audio_format": "pcm16", "output_audio_format": "pcm16",
                 "turn_detection": {"type": "server_vad"}, "voice": "ash", "instructions": "x", "temperature": 0.6}
    call = Call(TwilioCodec(), mode="transcode", vad="semantic_vad")
    frame = call.session_update()
    assert call.session.last_session_update == frame and orjson.loads(frame)["type"] == "session.update"
    d = orjson.loads(frame)["session"]
    assert d == {"type": "realtime", "audio": {
        "input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": {"type": "semantic_vad"}},
        "output": {"format": {"type": "audio/pcm", "rate": 24000}}}}
    d = orjson.loads(Call(TwilioCodec(), mode="transcode", voice="marin", instructions="").session_update())
    assert d["session"]["audio"]["output"]["voice"] == "marin" and d["session"]["instructions"] == ""


def test_an_echoed_mark_asks_for_nothing():
    call, names = playing_call(ms_received=200, ms_played=0)
    a = call.from_carrier(orjson.dumps({"event": "mark", "streamSid": SID, "mark": {"name": names[0]}}))
    assert not a and a.hangup is False and not a.to_carrier and not a.to_realtime and not a.events
    assert call.played_ms == {"item_1": 20}


def test_the_refill_step_follows_the_lead():
    for lead, first, refill in ((80, 4, 40), (60, 3, 20), (100, 5, 40)):
        call = twilio_call(startup_buffer_ms=0, lead_ms=lead)
        call.from_realtime(response_created())
        out = call.from_realtime(delta(ULAW * 50), now_ms=0).to_carrier
        assert len(media_payloads(out)) == first
        assert call.wake_at(0) == refill                        # play_end + refill - lead
        assert call.wake_at(refill + 5) == refill + 5           # overdue: now


def test_wake_at_with_exactly_one_chunk_waiting():
    call = twilio_call(startup_buffer_ms=0, lead_ms=40)
    call.from_realtime(response_created())
    call.from_realtime(delta(ULAW * 3), now_ms=0)               # 2 chunks leave, 1 waits
    assert call.buffered_ms == 20 and call.wake_at(0) == 20
    call.tick(20)
    assert call.buffered_ms == 0 and call.wake_at(20) is None


def test_audio_before_the_carriers_start_waits_for_it():
    call = Call(TwilioCodec(), startup_buffer_ms=0)
    call.session_update()
    call.from_realtime(response_created())
    assert not call.from_realtime(delta(ULAW * 2), now_ms=0).to_carrier     # no stream to send to yet
    assert call.buffered_ms == 40
    call.from_carrier(TWILIO_START)
    assert media_payloads(call.tick(10).to_carrier) == [ULAW, ULAW]


def test_playback_that_ran_dry_gathers_the_startup_buffer_again():
    call = twilio_call(startup_buffer_ms=60, lead_ms=100)
    call.from_realtime(response_created())
    assert len(media_payloads(call.from_realtime(delta(ULAW * 3), now_ms=0).to_carrier)) == 3   # plays to 60
    # the playback ends exactly as the next delta comes: idle again, so it waits for 60 ms
    assert not call.from_realtime(delta(ULAW), now_ms=60).to_carrier
    assert len(media_payloads(call.from_realtime(delta(ULAW * 2), now_ms=61).to_carrier)) == 3


def test_after_a_barge_in_the_next_reply_starts_clean_and_at_once():
    call, _ = playing_call(ms_received=400, ms_played=40)          # mid-stream: no audio.done yet
    call.from_realtime(SPEECH_STARTED, now_ms=50)
    call.from_realtime(response_done())
    call.from_realtime(response_created("resp_2"))
    out = call.from_realtime(delta(ULAW * 10, item="item_2", rid="resp_2"), now_ms=60).to_carrier
    # the lead's worth at once (the cut playback does not hold it back), no pad of the cut item before it
    assert media_payloads(out) == [ULAW] * 5
    assert call.sent_ms == {"item_1": 100, "item_2": 100}
    echo(call, marks(out)[:1])
    a = call.from_realtime(SPEECH_STARTED, now_ms=70)              # a second barge-in sees only item_2
    assert [(b.item_id, b.action, b.audio_end_ms) for b in a.events if isinstance(b, BargeIn)] == [
        ("item_2", "truncate", 20)]
    assert call.barge_ins == 2


def test_barge_in_resets_the_outbound_resampler():
    call = twilio_call(mode="transcode", startup_buffer_ms=0, lead_ms=10_000)
    call.from_realtime(response_created())
    pcm = bytes(range(256)) * 30
    call.from_realtime(delta(pcm), now_ms=0)
    call.from_realtime(SPEECH_STARTED, now_ms=10)
    call.from_realtime(response_done())
    call.from_realtime(response_created("resp_2"))
    out = call.from_realtime(delta(pcm, item="item_2", rid="resp_2"), now_ms=20).to_carrier
    out += call.from_realtime(audio_done("item_2", "resp_2"), now_ms=20).to_carrier
    got = b"".join(media_payloads(out + call.tick(30).to_carrier))
    from rtfast.transcode import Transcoder
    t = Transcoder("pcm16/24000", "pcmu/8000", quality="HQ-LL")          # the bridge's default
    want = t.feed(pcm) + t.flush()
    assert got == want + b"\xff" * (-len(want) % 160)             # as from a fresh resampler


def test_an_empty_item_takes_no_chunk():
    call = twilio_call(startup_buffer_ms=0, lead_ms=10_000)
    call.from_realtime(response_created())
    call.from_realtime(delta(b""))                                  # an empty delta, then done
    call.from_realtime(audio_done())
    call.from_realtime(delta(ULAW * 2, item="item_2"))
    call.from_realtime(audio_done("item_2"))
    assert media_payloads(call.tick(0).to_carrier) == [ULAW, ULAW] and call.sent_ms == {"item_2": 40}


def test_response_done_completes_an_item_without_audio_done():
    call = twilio_call(startup_buffer_ms=0, lead_ms=10_000)
    call.from_realtime(response_created())
    call.from_realtime(delta(ULAW[:100]))
    call.from_realtime(response_done())
    assert media_payloads(call.tick(0).to_carrier) == [ULAW[:100] + b"\xff" * 60]


def test_a_tiny_transcoded_frame_sends_nothing_until_there_is_audio():
    call = twilio_call(mode="transcode")
    frames = call.frames_to_realtime
    tiny = orjson.dumps({"event": "media", "streamSid": SID, "media": {"payload": "/w=="}})
    assert call.from_carrier(tiny).to_realtime == [] and call.frames_to_realtime == frames
    assert call.audio_bytes_in == 1


def test_telnyx_stop_flushes_held_frames_to_the_model_first():
    call = Call(TelnyxCodec())
    call.from_carrier(TELNYX_START)
    payloads = [base64.b64encode(bytes([c]) * 160).decode() for c in range(3)]
    assert len(call.from_carrier(telnyx_media(0, payloads[0])).to_realtime) == 1
    assert call.from_carrier(telnyx_media(2, payloads[2])).to_realtime == []          # waits for 1
    a = call.from_carrier(b'{"event":"stop","stop":{"call_control_id":"v2:T0"}}')
    assert a.to_realtime == [wire.build_append_b64(payloads[2])] and a.hangup
    assert call.frames_to_realtime == 2 and call.audio_bytes_in == 320


def test_a_start_before_any_session_update_needs_no_corrective_one():
    call = Call(TelnyxCodec())
    a = call.from_carrier(TELNYX_START)                             # PCMA, nothing sent yet
    assert a.to_realtime == [] and call.model_format == "pcma/8000"
    fmt = orjson.loads(call.session_update())["session"]["audio"]["input"]["format"]
    assert fmt == {"type": "audio/pcma"}
    same = Call(TwilioCodec())
    same.session_update()
    assert same.from_carrier(TWILIO_START).to_realtime == []        # the format it expected


def test_a_call_ends_once():
    call = twilio_call()
    a = call.from_carrier(TWILIO_STOP)
    assert [type(e) for e in a.events] == [CallEnded, Stop] and a.events[0].reason == "stop"
    b = call.carrier_closed()
    assert b.hangup and b.events == [] and call.ended == "stop"
    c = Call(VonageCodec()).carrier_closed()
    assert c.hangup and [e.reason for e in c.events] == ["carrier_closed"]


def test_late_deltas_of_a_cut_item_are_dropped_even_when_its_response_was_done():
    call, _ = playing_call(ms_received=200, ms_played=40)
    call.from_realtime(response_done())
    call.from_realtime(SPEECH_STARTED)                              # item cut, no response to cancel
    call.from_realtime(delta(ULAW * 5))                             # a late delta of the cut item
    assert call.late_deltas == 1 and call.buffered_ms == 0
    call.from_realtime(response_created("resp_2"))
    call.from_realtime(delta(ULAW, item="item_2", rid="resp_1"))    # a new item is played
    assert call.buffered_ms == 20 and call.late_deltas == 1


def test_documented_defaults():
    call = Call(TwilioCodec())
    assert (call.startup_buffer_ms, call.lead_ms, call.chunk_ms, call.mode, call.generation) == (
        60, 100, 20, "passthrough", "ga")


def test_a_pcm16_items_tail_is_padded_with_zero_samples():
    call = Call(VonageCodec("pcm16/8000"), startup_buffer_ms=0, lead_ms=1000)
    call.session_update()
    call.from_carrier(b'{"event":"websocket:connected","content-type":"audio/l16;rate=8000"}')
    call.from_realtime(response_created())
    pcm = bytes(range(1, 256)) * 12                                 # 3060 bytes: 63.75 ms at 24 kHz
    out = call.from_realtime(delta(pcm), now_ms=0).to_carrier
    out += call.from_realtime(audio_done(), now_ms=0).to_carrier
    out += call.tick(10).to_carrier
    chunks = [f[1] for f in out if type(f) is tuple]
    from rtfast.transcode import Transcoder
    t = Transcoder("pcm16/24000", "pcm16/8000", quality="HQ-LL")
    want = t.feed(pcm) + t.flush()
    assert b"".join(chunks) == want + b"\x00" * (-len(want) % 320) and len(chunks) == 4
    assert call.wake_at(20) is None and call.buffered_ms == 0


def test_items_arriving_in_several_deltas_while_queued_are_charged_exactly():
    call = twilio_call(startup_buffer_ms=0, lead_ms=60)
    call.from_realtime(response_created())
    for _ in range(2):
        call.from_realtime(delta(ULAW * 2))                        # item_1: 80 ms in two deltas
    call.from_realtime(audio_done())
    for _ in range(3):
        call.from_realtime(delta(ULAW, item="item_2"))             # item_2: 60 ms in three deltas, queued behind
    call.from_realtime(audio_done("item_2"))
    call.from_realtime(delta(ULAW * 2, item="item_3"))             # and item_3 behind it
    sent = []
    for now in range(0, 400, 20):
        sent += call.tick(now).to_carrier
    assert call.sent_ms == {"item_1": 80, "item_2": 60, "item_3": 40} and call.buffered_ms == 0
    echo(call, marks(sent))
    assert call.played_ms == {"item_1": 80, "item_2": 60, "item_3": 40}


def test_an_item_whose_audio_is_content_index_1():
    call = twilio_call(startup_buffer_ms=0, lead_ms=100)
    call.from_realtime(response_created())
    d = orjson.loads(delta(ULAW * 10))
    d["content_index"] = 1
    sent = call.from_realtime(orjson.dumps(d), now_ms=0).to_carrier
    echo(call, marks(sent)[:2])
    a = call.from_realtime(SPEECH_STARTED, now_ms=30)
    assert [orjson.loads(f) for f in a.to_realtime][1:] == [
        {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 1, "audio_end_ms": 40}]


def test_a_transcoded_items_resampler_tail_is_played_after_its_whole_chunks():
    from rtfast.transcode import Transcoder
    pcm = bytes(range(256)) * 30
    call = twilio_call(mode="transcode", startup_buffer_ms=0, lead_ms=10_000)
    call.from_realtime(response_created())
    out = call.from_realtime(delta(pcm), now_ms=0).to_carrier       # whole chunks leave at once
    assert call.buffered_ms < 20 and out
    out += call.from_realtime(audio_done(), now_ms=0).to_carrier    # the resampler's tail, padded
    out += call.tick(10).to_carrier
    t = Transcoder("pcm16/24000", "pcmu/8000", quality="HQ-LL")
    want = t.feed(pcm) + t.flush()
    assert b"".join(media_payloads(out)) == want + b"\xff" * (-len(want) % 160)
    n = -(-len(want) // 160)
    assert call.sent_ms == {"item_1": 20 * n} and call.buffered_ms == 0 and call.wake_at(20) is None


def test_a_call_first_timed_by_the_pacer():
    call = twilio_call()                                            # fed no clock so far
    call.tick(500)
    call.from_carrier(TWILIO_STOP, now_ms=1700)
    assert call.summary()["duration_ms"] == 1200


def test_playback_not_yet_dry_goes_on_without_the_startup_buffer():
    call = twilio_call(startup_buffer_ms=60, lead_ms=100)
    call.from_realtime(response_created())
    assert len(media_payloads(call.from_realtime(delta(ULAW * 3), now_ms=0).to_carrier)) == 3   # plays to 60
    # half a millisecond before it runs dry: still playing, so the next chunk follows at once
    assert len(media_payloads(call.from_realtime(delta(ULAW), now_ms=59.5).to_carrier)) == 1


def test_a_call_that_ended_before_any_clock():
    call = Call(TwilioCodec())
    call.from_carrier(TWILIO_START)
    call.from_carrier(TWILIO_STOP)                                  # ended, and no clock yet
    call.tick(100)
    call.tick(300)
    assert call.ended == "stop" and call.ended_ms is None and call.summary()["duration_ms"] == 200


def test_a_resampler_tail_after_the_items_audio_all_left_is_queued_and_charged_to_it():
    """Transcoding: five 150 ms deltas resample to exactly 37 whole chunks, which all
    leave before audio.done; the resampler's flush then adds a tail (80 bytes, padded
    to a chunk), which must be queued again under the item and counted as its audio."""
    call = twilio_call(mode="transcode", startup_buffer_ms=0, lead_ms=10_000)
    call.from_realtime(response_created())
    pcm = (ULAW * 50)[:7200]         # 3600 samples at 24 kHz; any content: only lengths matter here
    assert len(pcm) == 7200
    sent = []
    for _ in range(5):
        sent += call.from_realtime(delta(pcm), now_ms=0).to_carrier
    for t in range(0, 2000, 10):
        sent += call.tick(t).to_carrier
    assert sum(map(len, media_payloads(sent))) == 37 * 160                     # all of it left, whole chunks
    sent += call.from_realtime(audio_done(), now_ms=2000).to_carrier
    for t in range(2000, 2100, 10):
        sent += call.tick(t).to_carrier
    audio = media_payloads(sent)
    assert len(audio) == 38 and all(len(a) == 160 for a in audio)             # the tail left as one more chunk
    echo(call, marks(sent))
    assert call.sent_ms == {"item_1": 760} and call.played_ms == {"item_1": 760}


def test_marks_not_of_the_current_generation_or_not_ours_are_stale_and_harmless():
    call, names = playing_call(ms_received=200, ms_played=0)
    assert names[:2] == ["0.1", "0.2"]
    # Another script's digits (str.isdigit() takes them; int() reads "٢" as 2 and refuses "²"),
    # other generations and near misses of the "0." prefix: none counts, none raises.
    echo(call, ["0.\u0662", "0.\u00b2", "1.2", "00.2", "10.2", "0.", "0", "", "0.2.0", "0.+2", "0. 2", "x0.2", ".2"])
    assert call.played_ms == {} and call.stale_marks == 13 and len(call._ledger) == 5
    echo(call, ["0.2"])
    assert call.played_ms == {"item_1": 40} and len(call._ledger) == 3
    call.from_realtime(SPEECH_STARTED)                   # a clear: generation 1
    echo(call, ["0.3", "1.0"])                           # flushed back (stale); 1.0 precedes every chunk
    assert call.played_ms == {"item_1": 40} and call.stale_marks == 14


def test_marks_count_alike_on_the_scanner_path_and_the_orjson_path():
    call, names = playing_call(ms_received=200, ms_played=0)
    assert names[:3] == ["0.1", "0.2", "0.3"]
    escaped = b'{"event":"mark","streamSid":"%s","mark":{"name":"0.\\u0031"}}' % SID.encode()   # "0.1", via orjson
    assert call.codec.feed(escaped) == Mark("0.1", orjson.loads(escaped))
    assert call.from_carrier(escaped) is call.from_carrier(b'{"event":"mark","mark":{"name":"9.9"}}')
    assert call.played_ms == {"item_1": 20} and call.stale_marks == 1
    plain = b'{"event":"mark","sequenceNumber":"7","streamSid":"%s","mark":{"name":"0.2"}}' % SID.encode()
    assert call.codec.feed(plain) == "0.2"
    assert not call.from_carrier(plain) and call.played_ms == {"item_1": 40}
    extra = b'{"event":"mark","streamSid":"%s","mark":{"name":"0.3"},"x":"y"}' % SID.encode()
    assert type(call.codec.feed(extra)) is Mark
    assert not call.from_carrier(extra) and call.played_ms == {"item_1": 60} and call.frames_from_carrier == 5


def test_calls_sessions_and_codecs_can_be_referred_to_weakly():
    """Slots keep the per-call objects a weak reference, as a plain class has one (an app's
    WeakKeyDictionary of calls, a cache keyed on a session), and copies and pickles keep their state."""
    import copy
    import pickle
    import weakref

    from rtfast.bridge.carriers import PlivoCodec
    from rtfast.bridge.livecall import LiveCall
    from rtfast.session import RealtimeSession

    seen = weakref.WeakKeyDictionary()
    objects = [Call(TwilioCodec()), LiveCall(TwilioCodec()), RealtimeSession("beta"),
               TwilioCodec(), TelnyxCodec(), PlivoCodec(), ExotelCodec(), VonageCodec()]
    for obj in objects:
        seen[obj] = type(obj).__name__
        assert weakref.ref(obj)() is obj
    assert len(seen) == len(objects)
    call = objects[0]
    call.from_carrier(TWILIO_START)
    call.frames_from_realtime = 7
    for again in (copy.copy(call), pickle.loads(pickle.dumps(call))):
        assert (again.frames_from_realtime, again.codec.started, again.session.generation) == (7, True, "ga")
    del objects, obj, call, again
    assert len(seen) == 0                        # weak: the calls went with their last reference
