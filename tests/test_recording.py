"""Call recording: a stereo WAV aligned to what was played, a JSONL transcript, off the event loop.

The expected recordings are built here from first principles (audioop decodes,
a plain numpy timeline where every chunk is placed and every cut applied), and
compared sample for sample with what the stdlib ``wave`` module reads back.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
import tracemalloc
import wave

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _audioop import audioop
from rtfast import b64
from rtfast.bridge.recording import FORMATS, Recorder, RecordingWriter
from rtfast.errors import Base64Error

START = 1000.0      # the call's clock at the start of the recording (ms)


@pytest.fixture
def writer():
    w = RecordingWriter()
    yield w
    assert w.close(10)


def decode(fmt: str, raw: bytes) -> np.ndarray:
    """The reference decode: audioop for G.711, the bytes themselves for PCM16."""
    if fmt == "pcmu/8000":
        raw = audioop.ulaw2lin(raw, 2)
    elif fmt == "pcma/8000":
        raw = audioop.alaw2lin(raw, 2)
    return np.frombuffer(raw, "<i2")


def read_wav(path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as f:
        assert f.getnchannels() == 2 and f.getsampwidth() == 2 and f.getcomptype() == "NONE"
        data = f.readframes(f.getnframes())
        assert len(data) == 4 * f.getnframes()
        return f.getframerate(), np.frombuffer(data, "<i2").reshape(-1, 2)


def noise(fmt: str, ms: int, rng) -> bytes:
    """Audio that never decodes to 0 (so silence in a channel is unambiguous)."""
    rate, bps, _ = FORMATS[fmt]
    n = ms * rate // 1000
    if bps == 1:
        bad = (0xFF, 0x7F) if fmt == "pcmu/8000" else ()
        codes = np.array([c for c in range(256) if c not in bad], np.uint8)
        return rng.choice(codes, n).tobytes()
    pcm = rng.integers(1, 20000, n) * rng.choice([-1, 1], n)
    return pcm.astype("<i2").tobytes()


class Timeline:
    """The oracle: what each channel must hold. Chunks are placed in order;
    a cut truncates every chunk placed before it at the cut's frame."""

    def __init__(self, fmt: str):
        self.fmt = fmt
        self.rate, self.bps, _ = FORMATS[fmt]
        self.caller: list[bytes] = []
        self.chunks: list[list] = []          # [start frame, pcm16 array]

    def frame(self, t_ms: float) -> int:
        return round((t_ms - START) * (self.rate / 1000))

    def play(self, t_ms: float, audio: bytes) -> None:
        self.chunks.append([self.frame(t_ms), decode(self.fmt, audio)])

    def cut(self, t_ms: float) -> None:
        c = self.frame(t_ms)
        for ch in self.chunks:
            ch[1] = ch[1][:max(0, c - ch[0])]

    def render(self, end_ms: float) -> np.ndarray:
        left = decode(self.fmt, b"".join(self.caller))
        total = max(self.frame(end_ms), len(left))
        out = np.zeros((total, 2), "<i2")
        out[:len(left), 0] = left
        for start, pcm in self.chunks:
            out[start:start + len(pcm), 1] = pcm
        return out


def simulate(tmp_path, writer, fmt, *, seconds=4.0, chunk_ms=20, lead_ms=100, turns=((200, 1500), (2200, 3000)),
             barge_ins=(), end_extra_ms=37.0, seed=0, events=True, **kw):
    """A call on the bridge's schedule: every 20 ms the caller's last 20 ms arrive and
    the assistant's chunks leave at most lead_ms ahead of real time (play times laid
    end to end, from now when idle); a barge-in (a time between two ticks) cuts
    playback and cancels the turn. Returns the recorder, the oracle and the end time."""
    rng = np.random.default_rng(seed)
    rec = Recorder(tmp_path, "CA-test", audio_format=fmt, start_ms=START, writer=writer, **kw)
    tl = Timeline(fmt)
    rate, bps, _ = FORMATS[fmt]
    turns = sorted(turns)
    barge_ins = sorted(barge_ins)
    pending = 0                               # ms of the current turn not yet sent
    play_end = float("-inf")
    steps = round(seconds * 1000 / 20)
    for k in range(1, steps + 1):
        now = START + 20 * k
        audio = noise(fmt, 20, rng)           # the caller's [now - 20, now)
        tl.caller.append(audio)
        if k % 2:
            rec.caller(audio)
        else:
            rec.caller_b64(b64.encode(audio))
        while turns and START + turns[0][0] <= now:
            _, dur = turns.pop(0)
            pending = dur
            if events:
                rec.event("transcript", now, role="assistant", text=f"turn at {now}")
        while barge_ins and START + barge_ins[0] < now + 20:
            at = max(now, START + barge_ins.pop(0))     # between this tick and the next
            rec.cut(at)
            tl.cut(at)
            if events:
                rec.event("barge_in", at)
            pending = 0
            play_end = float("-inf")
        while pending > 0 and play_end - now + chunk_ms <= lead_ms:
            at = max(now, play_end)
            chunk = noise(fmt, chunk_ms, rng)
            rec.assistant(at, chunk)
            tl.play(at, chunk)
            play_end = at + chunk_ms
            pending -= chunk_ms
    end = START + 20 * steps + end_extra_ms
    tl.cut(end)
    rec.close(end)
    assert writer.flush(10)
    return rec, tl, end


def check(rec, tl, end):
    rate, got = read_wav(rec.wav_path)
    want = tl.render(end)
    assert rate == tl.rate
    assert got.shape == want.shape
    np.testing.assert_array_equal(got[:, 0], want[:, 0])
    np.testing.assert_array_equal(got[:, 1], want[:, 1])
    return got


# -- alignment ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_records_what_was_played(tmp_path, writer, fmt):
    # One turn heard in full, one cut by a barge-in 7 ms into a chunk, one after it.
    rec, tl, end = simulate(tmp_path, writer, fmt, seconds=5, turns=((200, 1000), (1800, 2000), (3500, 800)),
                            barge_ins=(2807,), block_ms=500)
    got = check(rec, tl, end)
    rate = tl.rate
    # The call's length: from start_ms to the close, to the sample.
    assert len(got) == round((end - START) * rate / 1000)
    # Left: the caller's audio, decoded, end to end.
    caller = decode(fmt, b"".join(tl.caller))
    np.testing.assert_array_equal(got[:len(caller), 0], caller)
    assert not got[len(caller):, 0].any()
    # Right: the first chunk starts exactly at its play time (the tick at 220 ms), and
    # nothing plays between the barge-in and the next turn.
    first = tl.chunks[0][0]
    assert first == 200 * rate // 1000
    assert not got[:first, 1].any() and got[first, 1] != 0
    cut = round(2807 * rate / 1000)
    assert got[cut - 1, 1] != 0 and not got[cut:round(3500 * rate / 1000), 1].any()
    s = rec.stats
    assert s["dropped_bytes"] == 0 and s["late_bytes"] == 0 and s["late_cuts"] == 0 and s["error"] is None
    assert s["cut_bytes"] > 0


def test_chunk_at_exact_offset_and_straddling_cut(tmp_path, writer):
    fmt = "pcm16/16000"
    rec = Recorder(tmp_path, "c1", audio_format=fmt, start_ms=START, writer=writer)
    rng = np.random.default_rng(3)
    a, b, c = noise(fmt, 20, rng), noise(fmt, 20, rng), noise(fmt, 20, rng)
    rec.caller(bytes(2 * 16 * 200))              # 200 ms of caller silence
    rec.assistant(START + 50.5, a)               # 50.5 ms -> sample 808
    rec.assistant(START + 70.5, b)
    rec.assistant(START + 90.5, c)               # scheduled, never played
    rec.cut(START + 80.5)                        # 10 ms into b
    rec.close(START + 200)
    assert writer.flush(10)
    _, got = read_wav(rec.wav_path)
    assert len(got) == 3200
    right = got[:, 1]
    assert not right[:808].any()
    np.testing.assert_array_equal(right[808:1128], decode(fmt, a))
    np.testing.assert_array_equal(right[1128:1288], decode(fmt, b)[:160])
    assert not right[1288:].any()
    assert rec.stats["cut_bytes"] == 2 * (160 + 320)


def test_chunks_after_close_time_are_dropped_and_audio_is_copied(tmp_path, writer):
    fmt = "pcmu/8000"
    rec = Recorder(tmp_path, "c2", audio_format=fmt, start_ms=START, writer=writer)
    buf = bytearray(b"\x10" * 160)
    rec.caller(bytes(b"\x20" * 800))
    rec.assistant(START + 60, buf)
    buf[:] = b"\x30" * 160                       # the bridge reuses its buffer: the recording must not see it
    rec.assistant(START + 90, memoryview(buf))
    rec.close(START + 100)
    assert writer.flush(10)
    _, got = read_wav(rec.wav_path)
    assert len(got) == 800
    u10, u30 = decode(fmt, b"\x10")[0], decode(fmt, b"\x30")[0]
    assert (got[480:640, 1] == u10).all()
    assert (got[720:800, 1] == u30).all()        # cut by the close at 100 ms
    assert not got[640:720, 1].any()


def test_caller_audio_longer_than_the_clock_is_kept(tmp_path, writer):
    rec = Recorder(tmp_path, "c3", audio_format="pcma/8000", start_ms=START, writer=writer)
    rec.caller(b"\x55" * 8000)                   # 1 s of audio by a clock that says 0.5 s
    rec.close(START + 500)
    assert writer.flush(10)
    _, got = read_wav(rec.wav_path)
    assert len(got) == 8000 and (got[:, 0] == decode("pcma/8000", b"\x55")[0]).all()


def test_a_stream_without_caller_audio_still_records_in_bounded_memory(tmp_path, writer):
    # A one-way stream: the caller channel never advances; the assistant talks for 30 s.
    rec, tl, end = simulate(tmp_path, writer, "pcm16/24000", seconds=30, turns=((0, 30000),), events=False,
                            max_window_ms=2000, max_lead_ms=500)
    # simulate() gave the caller's audio to the recorder; do it again without it:
    rec2 = Recorder(tmp_path, "one-way", audio_format="pcm16/24000", start_ms=START, writer=writer,
                    max_window_ms=2000, max_lead_ms=500)
    peak = 0
    for start, pcm in tl.chunks:
        rec2.assistant(START + start * 1000 / 24000, pcm.tobytes())
        peak = max(peak, rec2.stats["buffered_bytes"])
    rec2.close(end)
    assert writer.flush(10)
    assert peak <= 2000 * 48 + 2 * 48 * 20
    _, got = read_wav(rec2.wav_path)
    want = tl.render(end)
    assert len(got) == len(want)
    assert not got[:, 0].any()
    np.testing.assert_array_equal(got[:, 1], want[:, 1])
    assert rec2.stats["caller_gap_ms"] > 20000


def test_late_chunk_and_late_cut_are_counted(tmp_path, writer):
    fmt = "pcmu/8000"
    rec = Recorder(tmp_path, "c4", audio_format=fmt, start_ms=START, writer=writer, block_ms=100, guard_ms=0)
    rec.caller(b"\x20" * 1600)                   # 200 ms: all of it handed over (no guard)
    rec.assistant(START + 180, b"\x10" * 160)    # starts 20 ms before what is written
    rec.cut(START + 150)                         # after its time was written
    rec.close(START + 400)
    assert writer.flush(10)
    s = rec.stats
    assert s["late_bytes"] == 160 and s["late_cuts"] == 1
    _, got = read_wav(rec.wav_path)
    assert len(got) == 3200 and not got[:, 1].any()


@settings(max_examples=40, deadline=None)
@given(fmt=st.sampled_from(list(FORMATS)), chunk_ms=st.sampled_from([20, 40, 100]),
       lead_mult=st.integers(2, 6), block_ms=st.sampled_from([20, 60, 300, 1000]),
       guard_ms=st.sampled_from([0, 20, 250]), extra_lead_ms=st.sampled_from([0, 40, 900]),
       turns=st.lists(st.tuples(st.integers(0, 3000), st.integers(20, 1500)), max_size=4),
       barge_ins=st.lists(st.integers(0, 3200), max_size=4), end_extra=st.floats(0, 300), seed=st.integers(0, 9))
def test_recording_matches_the_timeline(tmp_path_factory, fmt, chunk_ms, lead_mult, block_ms, guard_ms,
                                        extra_lead_ms, turns, barge_ins, end_extra, seed):
    # Any schedule the bridge can produce, any block size: the file is the oracle's timeline.
    tmp = tmp_path_factory.mktemp("prop")
    w = RecordingWriter()
    try:
        lead = lead_mult * chunk_ms
        rec, tl, end = simulate(tmp, w, fmt, seconds=3.3, chunk_ms=chunk_ms, lead_ms=lead, turns=turns,
                                barge_ins=barge_ins, end_extra_ms=end_extra, seed=seed, block_ms=block_ms,
                                guard_ms=guard_ms, max_lead_ms=lead + extra_lead_ms,
                                max_window_ms=lead + extra_lead_ms + 500)
        check(rec, tl, end)
        s = rec.stats
        assert (s["dropped_bytes"], s["late_bytes"], s["late_cuts"], s["caller_gap_ms"]) == (0, 0, 0, 0)
    finally:
        assert w.close(10)


# -- transcript ---------------------------------------------------------------------------------

def test_jsonl_lines_are_valid_and_ordered(tmp_path, writer):
    rec = Recorder(tmp_path, "c5", audio_format="pcmu/8000", start_ms=START, writer=writer)

    class Odd:
        def __str__(self):
            return "odd"

    n = 150                                      # past the 64 lines that hand over a batch
    for i in range(n):
        rec.caller(b"\x20" * 160)
        rec.event("transcript", START + 20 * i + 0.25, role="user" if i % 2 else "assistant",
                  text=f"línea {i} \"quoted\"\n", seq=i)
    rec.event("tool_call", START + 3000, name="get_weather", arguments={"city": "Zürich"}, obj=Odd(), n={1: 2})
    with pytest.raises(ValueError, match="t_ms"):
        rec.event("bad", START, t_ms=1)
    rec.close(START + 3100)
    rec.event("after", START + 3200)             # closed: ignored
    assert writer.flush(10)
    with open(rec.jsonl_path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == n + 1
    assert [d["seq"] for d in lines[:n]] == list(range(n))
    assert [d["t_ms"] for d in lines[:n]] == [20 * i + 0.25 for i in range(n)]
    assert lines[3] == {"t_ms": 60.25, "kind": "transcript", "role": "user", "text": "línea 3 \"quoted\"\n", "seq": 3}
    assert lines[-1] == {"t_ms": 3000.0, "kind": "tool_call", "name": "get_weather",
                         "arguments": {"city": "Zürich"}, "obj": "odd", "n": {"1": 2}}
    assert rec.stats["dropped_events"] == 0


# -- lifecycle and bad input ----------------------------------------------------------------------

def test_close_is_idempotent_and_later_calls_do_nothing(tmp_path, writer):
    rec = Recorder(tmp_path, "c6", audio_format="pcmu/8000", start_ms=START, writer=writer)
    rec.caller(b"\x20" * 400)
    rec.close(START + 100)
    rec.close(START + 900)
    rec.caller(b"\x20" * 400)
    rec.caller_b64(b"IA==")
    rec.assistant(START + 50, b"\x10" * 160)
    rec.cut(START + 60)
    assert writer.flush(10)
    assert rec.closed and rec.total_frames == 800
    _, got = read_wav(rec.wav_path)
    assert len(got) == 800 and not got[400:].any()
    assert rec.stats["dropped_bytes"] == 0
    with open(rec.jsonl_path, "rb") as f:
        assert f.read() == b""


def test_close_returns_promptly_and_the_writer_finishes(tmp_path, writer):
    recs = [Recorder(tmp_path, f"call-{i}", audio_format="pcm16/24000", start_ms=START, writer=writer)
            for i in range(20)]
    audio = bytes(range(256)) * 375              # 2 s at 24 kHz
    for r in recs:
        r.caller(audio)
    t0 = time.perf_counter()
    for r in recs:
        r.close(START + 2000)
    spent = time.perf_counter() - t0
    assert spent < 0.05                          # 20 closes, no file I/O on this thread
    assert writer.flush(10)
    for r in recs:
        assert read_wav(r.wav_path)[1].shape == (48000, 2)


def test_bad_input(tmp_path, writer):
    with pytest.raises(ValueError, match="cannot record audio format 'opus/48000'"):
        Recorder(tmp_path, "x", audio_format="opus/48000", start_ms=0, writer=writer)
    with pytest.raises(ValueError, match="empty"):
        Recorder(tmp_path, "", audio_format="pcmu/8000", start_ms=0, writer=writer)
    with pytest.raises(TypeError, match="call_id"):
        Recorder(tmp_path, 12, audio_format="pcmu/8000", start_ms=0, writer=writer)
    with pytest.raises(ValueError, match="max_window_ms"):
        Recorder(tmp_path, "x", audio_format="pcmu/8000", start_ms=0, writer=writer, max_window_ms=100)
    rec = Recorder(tmp_path / "calls", "../../etc/pass wd", audio_format="pcmu/8000", start_ms=0, writer=writer)
    assert os.path.dirname(rec.wav_path) == str(tmp_path / "calls")
    assert os.path.basename(rec.wav_path) == "_._.._etc_pass_wd.wav"
    with pytest.raises(Base64Error) as err:
        rec.caller_b64(b"AAA*")
    assert err.value.offset == 3
    rec.close(0)
    assert writer.flush(10)
    assert set(os.listdir(tmp_path / "calls")) == {"_._.._etc_pass_wd.wav", "_._.._etc_pass_wd.jsonl"}


def test_unwritable_directory_never_breaks_the_call(tmp_path, writer, caplog):
    (tmp_path / "afile").write_bytes(b"")
    bad = tmp_path / "afile" / "sub"             # a directory under a regular file: not creatable (even as root)
    good = Recorder(tmp_path / "ok", "good", audio_format="pcmu/8000", start_ms=START, writer=writer)
    with caplog.at_level(logging.WARNING, logger="rtfast.bridge.recording"):
        rec = Recorder(bad, "c7", audio_format="pcmu/8000", start_ms=START, writer=writer, block_ms=100)
        assert writer.flush(10)
        for i in range(100):
            rec.caller(b"\x20" * 160)
            rec.assistant(START + 20 * i, b"\x10" * 160)
            rec.event("transcript", START + 20 * i, text="x")
            good.caller(b"\x20" * 160)
        rec.close(START + 2000)
        good.close(START + 2000)
        assert writer.flush(10)
    s = rec.stats
    assert "NotADirectoryError" in s["error"]
    assert s["dropped_bytes"] == 100 * 320 and s["dropped_events"] == 100
    assert [r.message for r in caplog.records if "failed" in r.message and "c7.wav" in r.message]
    assert read_wav(good.wav_path)[1].shape == (16000, 2)


# -- the writer behind -----------------------------------------------------------------------------

def test_a_blocked_writer_never_blocks_a_call_and_drops_with_a_counter(tmp_path, caplog):
    # The writer thread is really stuck: recording A's WAV is a FIFO nobody reads, so
    # opening it blocks (as a hung disk or NFS mount would). Call B runs 30 s meanwhile,
    # then the writer comes back (someone reads the FIFO) and B runs 30 s more: B's
    # file keeps its timing, with silence exactly where blocks were dropped.
    w = RecordingWriter(max_pending_bytes=64 << 10, warn_interval_s=60)
    os.mkfifo(tmp_path / "A.wav")
    rec_a = Recorder(tmp_path, "A", audio_format="pcmu/8000", start_ms=START, writer=w)
    rec_b = Recorder(tmp_path, "B", audio_format="pcmu/8000", start_ms=START, writer=w, block_ms=1000)
    rng = np.random.default_rng(5)
    frames = [noise("pcmu/8000", 20, rng) for _ in range(3000)]
    slowest = []

    def call_b(first, last, flush_every=None):
        worst = 0.0
        for i in range(first, last):
            t = time.perf_counter()
            rec_b.caller(frames[i])
            if i % 500 == 0:
                rec_b.event("transcript", START + 20 * i, i=i)
            worst = max(worst, time.perf_counter() - t)
            if flush_every and i % flush_every == 0:
                assert w.flush(10)              # real time gives the writer time
        slowest.append(worst)

    with caplog.at_level(logging.WARNING, logger="rtfast.bridge.recording"):
        th = threading.Thread(target=call_b, args=(0, 1500))
        th.start()
        th.join(20)
        assert not th.is_alive(), "a recorder method blocked on the stuck writer"
        assert slowest[0] < 0.05
        # (the open and close of each recording are always taken: a few hundred bytes beyond)
        assert w.high_water_bytes <= w.max_pending_bytes + 1024
        dropped = rec_b.stats["dropped_bytes"]
        assert dropped > 0 and w.dropped_jobs > 0
        behind = [r for r in caplog.records if "is behind" in r.getMessage()]
        assert len(behind) == 1                  # rate-limited: one line for the whole burst

        rec_a.close(START + 30000)
        drained = []
        reader = threading.Thread(target=lambda: drained.append(open(tmp_path / "A.wav", "rb").read()))
        reader.start()
        assert w.flush(20)
        reader.join(10)
        call_b(1500, 3000, flush_every=250)
        rec_b.close(START + 60000)
        assert w.flush(20)
    assert drained and drained[0][:4] == b"RIFF"
    assert rec_a.stats["error"]                  # a FIFO cannot take the final header: A failed, cleanly
    assert rec_b.stats["dropped_bytes"] == dropped
    _, got = read_wav(rec_b.wav_path)
    assert len(got) == 480000
    want = decode("pcmu/8000", b"".join(frames))
    differ = got[:, 0] != want
    assert not got[differ, 0].any()              # where the file differs, it is silence (no sample moved)
    assert differ.sum() == dropped               # and the counter says exactly how much (1 byte a sample)
    np.testing.assert_array_equal(got[:6000, 0], want[:6000])     # queued before the queue filled
    np.testing.assert_array_equal(got[-200000:, 0], want[-200000:])   # after the writer came back
    with open(rec_b.jsonl_path) as f:            # transcript lines outlive dropped blocks
        assert [json.loads(x)["i"] for x in f] == [0, 500, 1000, 1500, 2000, 2500]
    assert w.close(10)


def test_silent_stretches_without_audio_are_silence(tmp_path, writer):
    # No caller audio; a chunk now and then, seconds apart: the file is silence
    # between them, each chunk at its time (the writer fills what nobody sent).
    fmt = "pcma/8000"
    rng = np.random.default_rng(9)
    rec = Recorder(tmp_path, "sparse", audio_format=fmt, start_ms=START, writer=writer, max_window_ms=1500,
                   max_lead_ms=200)
    tl = Timeline(fmt)
    for t in (0, 40, 7000, 7020, 19000.5, 31000):
        chunk = noise(fmt, 20, rng)
        rec.assistant(START + t, chunk)
        tl.play(START + t, chunk)
    rec.close(START + 40000)
    assert writer.flush(10)
    _, got = read_wav(rec.wav_path)
    want = tl.render(START + 40000)
    assert len(got) == 320000
    np.testing.assert_array_equal(got, want)
    assert rec.stats["buffered_bytes"] == 0


def test_writer_flush_close_and_restart(tmp_path):
    w = RecordingWriter()
    assert w.close(1)                            # never started
    for round_ in range(2):
        rec = Recorder(tmp_path, f"r{round_}", audio_format="pcm16/8000", start_ms=0, writer=w)
        rec.caller(bytes(1600))
        rec.close(100)
        assert w.close(10)                       # waits for the files, then the thread ends
        assert w.pending_jobs == 0 and w.pending_bytes == 0
        assert read_wav(rec.wav_path)[1].shape == (800, 2)
    with pytest.raises(ValueError):
        RecordingWriter(0)


# -- an hour ----------------------------------------------------------------------------------------

def long_call(rec, writer, minutes, pool, out, each_minute=None, flush_every_s=60):
    """A long call at fast-forward: 20 ms caller frames (base64, as carriers send
    them), the assistant speaking 10 s of every 30 s 60 ms ahead, a barge-in every
    90 s. Every ``flush_every_s`` simulated seconds the writer gets time (as real
    time would give it)."""
    caller, assistant, b64encode = rec.caller_b64, rec.assistant, b64.encode
    payloads = [b64encode(p) for p in pool]
    for k in range(1, minutes * 3000 + 1):
        now = START + 20 * k
        caller(payloads[(k - 1) % 50])
        barge = k % 4500 == 250
        if k % 1500 < 500 and not barge:
            assistant(now + 60, out[k % 50])
        if barge:
            rec.cut(now + 5)
        if k % 3000 == 0:
            rec.event("transcript", now, role="user", text="still here")
            if each_minute:
                each_minute()
        if k % (50 * flush_every_s) == 0:
            assert writer.flush(10)
    rec.close(START + minutes * 60000)
    assert writer.flush(30)


def test_an_hour_long_call_keeps_memory_flat(tmp_path, writer):
    fmt = "pcmu/8000"
    rng = np.random.default_rng(7)
    pool = [noise(fmt, 20, rng) for _ in range(50)]
    out = [noise(fmt, 20, rng) for _ in range(50)]
    rec = Recorder(tmp_path, "hour", audio_format=fmt, start_ms=START, writer=writer)
    held = []

    def measure():      # what the recorder holds, and what waits for the writer, once a minute
        held.append((rec.stats["buffered_bytes"], writer.pending_bytes, len(rec._events), rec._gaps))

    long_call(rec, writer, 60, pool, out, measure)
    assert len(held) == 60
    assert max(h[0] for h in held) < 2 * 8000    # about a second and a guard of 8 kHz G.711 each way
    assert max(h[1] for h in held) < 60 * (2 * 8000 + 512)   # at most the minute not yet written
    assert writer.high_water_bytes < 2 << 20
    assert all(h[2] == 1 and h[3] is None for h in held)
    s = rec.stats
    assert s["dropped_bytes"] == 0 and s["late_bytes"] == 0 and s["late_cuts"] == 0
    with wave.open(rec.wav_path) as f:
        assert f.getnframes() == 3600 * 8000
        # minutes 0, 17 and 59, checked sample for sample
        left_pool = decode(fmt, b"".join(pool))
        out_dec = [decode(fmt, o) for o in out]
        for minute in (0, 17, 59):
            f.setpos(minute * 480000)
            got = np.frombuffer(f.readframes(480000), "<i2").reshape(-1, 2)
            np.testing.assert_array_equal(got[:, 0], np.tile(left_pool, 60))
            np.testing.assert_array_equal(got[:, 1], hour_right(minute, out_dec))


@pytest.mark.parametrize("fmt", ["pcma/8000", "pcm16/24000"])
def test_memory_does_not_grow_with_the_call(tmp_path, writer, fmt):
    # Every Python allocation traced (tracemalloc) over six minutes: what is held
    # after minute 4, 5, 6 is what was held after minute 1, 2, 3; the peak is a few blocks.
    rng = np.random.default_rng(8)
    pool = [noise(fmt, 20, rng) for _ in range(50)]
    out = [noise(fmt, 20, rng) for _ in range(50)]
    current = []
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        rec = Recorder(tmp_path, "six", audio_format=fmt, start_ms=START, writer=writer)

        def measure():
            assert writer.flush(10)             # what is written is gone; what is held remains
            current.append(tracemalloc.get_traced_memory()[0] - base)

        long_call(rec, writer, 6, pool, out, measure, flush_every_s=5)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    rate_bytes = FORMATS[fmt][0] * FORMATS[fmt][1]          # carrier bytes per second
    # The call repeats every 3 minutes (a barge-in each 90 s): same phase, same memory.
    assert all(abs(current[i + 3] - current[i]) < 4 << 10 for i in range(3)), current
    assert max(current) - min(current) < 2 * rate_bytes, current      # a block in each channel, at most
    # At most 5 s queued (the fast-forward's flush interval) and the recorder's window, both channels.
    assert peak < (5 + 3) * 2 * rate_bytes + (64 << 10), peak
    assert read_wav(rec.wav_path)[1].shape == (360 * FORMATS[fmt][0], 2)


def hour_right(minute: int, out_dec) -> np.ndarray:
    """The assistant channel of the hour-long call for one minute: step k's chunk
    plays at 20 k + 60 ms for 20 ms when k % 1500 < 500, except at a barge-in
    step c (c % 4500 == 250, cut at 20 c + 5 ms): no chunk at c, the chunks of
    c - 2 and c - 1 (scheduled at or after the cut) never played, and c - 3's
    (playing 20 c ... 20 c + 20) stopped after 5 ms."""
    right = np.zeros(480000, "<i2")
    base = minute * 480000
    for k in range(minute * 3000 - 3, minute * 3000 + 3001):
        if k < 1 or k % 1500 >= 500 or k % 4500 == 250:
            continue
        n = 160
        if (k + 1) % 4500 == 250 or (k + 2) % 4500 == 250:
            continue
        if (k + 3) % 4500 == 250:
            n = 40
        pos = (20 * k + 60) * 8 - base
        lo, hi = max(pos, 0), min(pos + n, 480000)
        if lo < hi:
            right[lo:hi] = out_dec[k % 50][lo - pos:hi - pos]
    return right
