import rtfast.errors
import gc
import itertools
import pickle

import numpy as np
import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from reference import ring_ref
from rtfast.errors import RtfastError
from rtfast.ring import ALAW_SILENCE, PCM16_SILENCE, ULAW_SILENCE, FrameRing, RingOverflow

POLICIES = ["raise", "drop_oldest", "drop_newest"]


def stream(n, start=0):
    """n bytes that say where they are in the stream (a shifted copy shows)."""
    return bytes((start + i) * 7 % 251 for i in range(n))


def frames(ring):
    return [bytes(f) for f in ring]


def read(ring):
    """read_frame() as bytes, releasing the view at once."""
    view = ring.read_frame()
    return None if view is None else bytes(view)


# -- against the reference model --------------------------------------------


class RingMachine(RuleBasedStateMachine):
    """Random writes, reads, clears and drains; views are held at random."""

    @initialize(f=st.sampled_from([1, 2, 3, 5, 8, 160]), policy=st.sampled_from(POLICIES),
                data=st.data())
    def setup(self, f, policy, data):
        cap = data.draw(st.integers(f, 5 * f + 3), label="capacity_bytes")
        self.ring = FrameRing(f, cap, overflow=policy)
        self.ref = ring_ref.FrameRing(f, cap, overflow=policy)
        self.f = f
        self.pos = 0
        self.held = []  # (view, its bytes when read)

    @rule(data=st.data())
    def write(self, data):
        size = data.draw(st.integers(0, 3 * self.f), label="size")
        data = stream(size, self.pos)
        try:
            got = self.ring.write(data)
        except BufferError:
            assert self.held, "BufferError without a live view"
            assert self.ring.readable == self.ref.readable
            return
        except RingOverflow:
            with pytest.raises(ring_ref.RingOverflow):
                self.ref.write(data)
            return
        assert got == self.ref.write(data)
        self.pos += size

    @rule(hold=st.booleans())
    def read_frame(self, hold):
        view = self.ring.read_frame()
        want = self.ref.read_frame()
        if want is None:
            assert view is None
            return
        assert view.readonly and view.nbytes == self.f and bytes(view) == want
        if hold:
            self.held.append((view, want))

    @rule(frames_room=st.integers(0, 4), slack=st.integers(0, 7))
    def read_into(self, frames_room, slack):
        out, out_ref = bytearray(frames_room * self.f + slack), bytearray(frames_room * self.f + slack)
        n = self.ring.read_into(out)
        assert n == self.ref.read_into(out_ref)
        assert out[:n] == out_ref[:n]

    @rule()
    def iterate(self):
        assert frames(self.ring) == list(iter(self.ref.read_frame, None))

    @rule()
    def clear(self):
        self.ring.clear()
        self.ref.clear()

    @rule(pad=st.sampled_from([ULAW_SILENCE, ALAW_SILENCE, PCM16_SILENCE]))
    def drain(self, pad):
        assert self.ring.drain(pad) == self.ref.drain(pad)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def release_one(self, data):
        view, _ = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
        view.release()

    @invariant()
    def same_state(self):
        assert self.ring.readable == self.ref.readable
        assert self.ring.pending == self.ref.pending
        assert self.ring.dropped == self.ref.dropped
        assert self.ring.exports == len(self.held)
        for view, want in self.held:
            assert bytes(view) == want, "a held frame was overwritten"

    def teardown(self):
        for view, _ in self.held:
            view.release()
        assert self.ring.exports == 0


TestRingMachine = RingMachine.TestCase
TestRingMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("f,cap", [(1, 7), (3, 10), (160, 640), (160, 720), (320, 3200)])
def test_random_sequences_match_reference(policy, f, cap):
    rng = np.random.default_rng(f * 1000 + cap)
    ring = FrameRing(f, cap, overflow=policy)
    ref = ring_ref.FrameRing(f, cap, overflow=policy)
    pos = 0
    for _ in range(3000):
        op = rng.integers(0, 10)
        if op < 5:
            data = stream(int(rng.integers(0, 3 * f + 1)), pos)
            try:
                got = ring.write(data)
            except RingOverflow:
                with pytest.raises(ring_ref.RingOverflow):
                    ref.write(data)
                continue
            assert got == ref.write(data)
            pos += len(data)
        elif op < 8:
            assert read(ring) == ref.read_frame()
        elif op == 8:
            assert frames(ring) == list(iter(ref.read_frame, None))
        else:
            assert ring.drain(ULAW_SILENCE) == ref.drain(ULAW_SILENCE)
        assert (ring.readable, ring.pending, ring.dropped) == (ref.readable, ref.pending, ref.dropped)


# -- wrap-around and split frames ----------------------------------------------


@pytest.mark.parametrize("f,cap", [(1, 5), (3, 9), (3, 11), (160, 640), (160, 700)])
def test_wrap_at_every_offset(f, cap):
    """Fill to capacity from every byte offset of the storage, after a wrap."""
    size = -(-cap // f) * f  # the storage: capacity rounded up to whole frames
    for start in range(size):
        ring = FrameRing(f, cap)
        written = 0
        while written < size + start:  # the write position ends at `start`
            k = ring.write(bytes(min(cap - ring.readable, size + start - written)))
            written += k
            frames(ring)
        data = stream(cap - ring.readable, start)
        buffered = bytes(ring.readable) + data
        assert ring.write(data) == len(data)
        assert ring.readable == cap
        whole = cap // f * f
        assert b"".join(frames(ring)) == buffered[:whole]
        rest = buffered[whole:]
        assert ring.drain(0xAA) == (rest + b"\xaa" * (f - len(rest)) if rest else None)


@pytest.mark.parametrize("f", [1, 2, 160, 640])
def test_frame_split_at_every_offset(f):
    ring = FrameRing(f, 3 * f + 1)
    for split in range(f + 1):
        for first in (0, f // 2 + 1):  # the ring's write position: aligned or not
            ring.clear()
            ring.write(bytes(first))
            frame = stream(f, split)
            assert ring.write(frame[:split]) == split
            if first + split < f:
                assert ring.read_frame() is None
            ring.write(frame[split:])
            got = frames(ring)
            assert b"".join(got) == (bytes(first) + frame)[: len(got) * f]


def test_frame_split_across_three_writes():
    frame = stream(160)
    for a, b in itertools.combinations(range(0, 161, 8), 2):
        ring = FrameRing(160, 480)
        ring.write(frame[:a])
        ring.write(frame[a:b])
        if b < 160:
            assert ring.read_frame() is None
        ring.write(frame[b:])
        assert frames(ring) == [frame]


# -- zero-copy views ---------------------------------------------------------------


def test_held_view_blocks_only_writes_over_its_memory():
    ring = FrameRing(160, 640)  # four slots
    ring.write(stream(640))
    first = ring.read_frame()  # slot 0, now free but viewed
    assert ring.exports == 1
    with pytest.raises(BufferError, match="exported by read_frame"):
        ring.write(b"x")
    assert ring.readable == 480 and bytes(first) == stream(640)[:160]
    del first
    assert ring.exports == 0
    assert ring.write(b"x") == 1


def test_view_away_from_the_write_does_not_block():
    ring = FrameRing(160, 640)
    ring.write(stream(320))
    held = ring.read_frame()  # slot 0
    assert ring.write(stream(320)) == 320  # slots 2 and 3
    with pytest.raises(BufferError):
        ring.write(b"y")  # would reach slot 0
    assert ring.readable == 480
    held.release()
    ring.write(stream(160))
    assert ring.readable == 640


@pytest.mark.parametrize("how", ["release", "with", "del", "slice"])
def test_release_makes_writes_work_again(how):
    ring = FrameRing(4, 8)
    ring.write(b"abcdefgh")
    view = ring.read_frame()
    part = view[1:3]  # a slice keeps the frame exported too
    ring.read_frame().release()
    with pytest.raises(BufferError):
        ring.write(b"12345")
    if how == "release":
        part.release()
        view.release()
    elif how == "with":
        with view, part:
            assert bytes(part) == b"bc"
    elif how == "del":
        del view, part
    else:
        del view
        with pytest.raises(BufferError):
            ring.write(b"12345")
        del part
    gc.collect()
    assert ring.exports == 0
    assert ring.write(b"12345") == 5
    assert frames(ring) == [b"1234"]


def test_numpy_view_of_a_frame_holds_it():
    ring = FrameRing(4, 4)
    ring.write(np.arange(2, dtype=np.int16))
    samples = np.frombuffer(ring.read_frame(), dtype=np.int16)
    assert samples.tolist() == [0, 1] and not samples.flags.writeable
    with pytest.raises(BufferError):
        ring.write(b"z")
    del samples
    assert ring.write(b"zzzz") == 4


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_views_block_dropping_policies_too(policy):
    ring = FrameRing(2, 8, overflow=policy)
    ring.write(b"abcdefgh")
    ring.read_frame().release()
    view = ring.read_frame()  # slot 1
    ring.write(b"ij")  # slot 0
    with pytest.raises(BufferError):
        ring.write(b"klmn")  # needs slots 1, 2 (dropping "ef" or "mn")
    assert ring.readable == 6 and ring.dropped == 0 and bytes(view) == b"cd"
    view.release()
    ring.write(b"klmn")
    assert b"".join(frames(ring)) == (b"ghijklmn" if policy == "drop_oldest" else b"efghijkl")


def test_frame_views_are_read_only_and_the_ring_is_not_a_buffer():
    ring = FrameRing(2, 4)
    ring.write(b"ab")
    view = ring.read_frame()
    with pytest.raises(TypeError):
        view[0] = 1
    with pytest.raises(BufferError, match="not a buffer"):
        memoryview(ring)
    assert view.format == "B" and view.shape == (2,) and view.contiguous


def test_clear_and_drain_keep_held_views_valid():
    ring = FrameRing(3, 9)
    ring.write(b"abcdef")
    view = ring.read_frame()  # slot 0
    ring.clear()  # the next write goes to slot 2
    assert ring.drain(0) is None
    assert ring.write(b"xyz") == 3
    with pytest.raises(BufferError):
        ring.write(b"u")
    assert bytes(view) == b"abc"


# -- overflow policies ----------------------------------------------------------------


def test_raise_writes_nothing():
    ring = FrameRing(160, 400)
    ring.write(stream(300))
    with pytest.raises(RingOverflow) as info:
        ring.write(stream(101))
    err = info.value
    assert isinstance(err, RtfastError) and isinstance(err, OverflowError)
    assert (err.needed, err.room) == (101, 100)
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.needed, again.room, str(again)) == (RingOverflow, 101, 100, str(err))
    assert ring.readable == 300 and ring.dropped == 0
    assert ring.write(stream(100)) == 100
    with pytest.raises(RingOverflow):
        FrameRing(160, 400).write(bytes(401))  # larger than the whole capacity


def test_drop_oldest_drops_whole_frames():
    ring = FrameRing(4, 10, overflow="drop_oldest")
    ring.write(b"abcdefgh")
    assert ring.write(b"ijk") == 3  # 11 > 10: one frame goes
    assert ring.dropped == 4
    assert frames(ring) == [b"efgh"] and ring.drain(0x2E) == b"ijk."


def test_drop_oldest_larger_than_capacity_keeps_the_newest_frames():
    ring = FrameRing(4, 10, overflow="drop_oldest")
    ring.write(b"ab")
    data = bytes(range(65, 65 + 20))  # ab + 20 bytes = 22: keep the last 10 on a frame boundary
    assert ring.write(data) == 20
    assert ring.dropped == 12 and ring.readable == 10
    assert frames(ring) == [data[10:14], data[14:18]] and ring.drain(0) == data[18:] + b"\0\0"


def test_drop_newest_writes_what_fits():
    ring = FrameRing(4, 10, overflow="drop_newest")
    ring.write(b"abcdefgh")
    assert ring.write(b"ijk") == 2
    assert ring.write(b"l") == 0
    assert ring.dropped == 2
    assert frames(ring) == [b"abcd", b"efgh"] and ring.drain(0x2E) == b"ij.."
    assert ring.write(bytes(25)) == 10 and ring.dropped == 17


@pytest.mark.parametrize("policy", POLICIES)
def test_empty_write_and_exact_capacity(policy):
    ring = FrameRing(160, 480, overflow=policy)
    assert ring.write(b"") == 0
    assert ring.write(stream(480)) == 480
    assert ring.write(b"") == 0 and ring.readable == 480 and ring.pending == 3
    assert frames(ring) == [stream(480)[i:i + 160] for i in (0, 160, 320)]
    assert ring.read_frame() is None and ring.drain(0) is None


@pytest.mark.parametrize("policy", POLICIES)
def test_capacity_not_a_multiple_of_the_frame(policy):
    ring = FrameRing(160, 500, overflow=policy)
    for i in range(20):
        data = stream(250, 250 * i)
        try:
            ring.write(data)
        except RingOverflow:
            assert policy == "raise"
        assert ring.readable <= 500
        for frame in ring:
            assert len(frame) == 160
    assert ring.capacity_bytes == 500


# -- buffers, sizes, errors --------------------------------------------------------------


def test_accepts_any_contiguous_buffer():
    ring = FrameRing(4, 64)
    ring.write(bytearray(b"ab"))
    ring.write(memoryview(b"xxcdxx")[2:4])
    ring.write(np.array([0x6665, 0x6867], dtype="<i2"))  # raw little-endian bytes
    ring.write(np.frombuffer(b"ijkl", dtype=np.uint8)[1:3])
    assert frames(ring) == [b"abcd", b"efgh"] and ring.drain(0) == b"jk\0\0"
    with pytest.raises(TypeError):
        ring.write(np.zeros(8, dtype=np.uint8)[::2])
    with pytest.raises(TypeError):
        ring.write("text")
    with pytest.raises(TypeError):
        ring.write(3)


def test_read_into_copies_whole_frames():
    ring = FrameRing(320, 6400)
    ring.write(stream(320 * 12 + 100))
    out = bytearray(3300)
    assert ring.read_into(out) == 3200  # Exotel: ten 320-byte frames at once
    assert out[:3200] == stream(3200)
    assert ring.read_into(bytearray(319)) == 0
    pcm = np.zeros(400, dtype=np.int16)  # 800 bytes: two frames fit
    assert ring.read_into(pcm) == 640
    assert pcm.tobytes()[:640] == stream(320 * 12)[3200:]
    assert ring.read_into(bytearray(5000)) == 0 and ring.readable == 100
    with pytest.raises(TypeError):
        ring.read_into(b"read-only")


def test_big_copies_release_the_gil_and_stay_exact():
    n = 1 << 20
    ring = FrameRing(640, 2 * n)
    data = np.random.default_rng(3).integers(0, 256, n + 123, dtype=np.uint8).tobytes()
    ring.write(data[:1000])
    assert ring.read_into(bytearray(640)) == 640
    ring.write(data[1000:])  # wraps around the end of the storage
    out = bytearray(n)
    whole = (len(data) - 640) // 640 * 640
    assert ring.read_into(out) == whole
    assert out[:whole] == data[640: 640 + whole]
    rest = data[640 + whole:]
    assert ring.drain(0) == rest + bytes(640 - len(rest))


@pytest.mark.parametrize("f,cap,overflow,error", [
    (0, 10, "raise", "frame_bytes must be >= 1"),
    (-1, 10, "raise", "frame_bytes"),
    (10, 9, "raise", "capacity_bytes .9. must be >= frame_bytes .10."),
    (10, 10, "oldest", "overflow must be one of"),
])
def test_bad_arguments(f, cap, overflow, error):
    with pytest.raises(ValueError, match=error):
        FrameRing(f, cap, overflow=overflow)


def test_bad_pad_and_properties():
    ring = FrameRing(160, 1000, overflow="drop_newest")
    with pytest.raises(ValueError, match="pad"):
        ring.drain(256)
    with pytest.raises(TypeError):
        FrameRing(160, 1000, "raise")  # overflow is keyword-only
    assert (ring.frame_bytes, ring.capacity_bytes, ring.overflow) == (160, 1000, "drop_newest")
    assert "frame_bytes=160" in repr(ring)
    assert RingOverflow is rtfast.errors.RingOverflow


# -- drain and carrier framing -------------------------------------------------------------


@pytest.mark.parametrize("pad,f", [(ULAW_SILENCE, 160), (ALAW_SILENCE, 160), (PCM16_SILENCE, 640)])
def test_drain_pads_with_the_codec_silence(pad, f):
    ring = FrameRing(f, 4 * f)
    assert ring.drain(pad) is None
    ring.write(stream(f + 10))
    assert ring.drain(pad=pad) == stream(f + 10) + bytes([pad]) * (f - 10)
    assert ring.readable == 0 and ring.drain(pad) is None
    ring.write(stream(f))  # a drained ring starts on a fresh frame
    assert frames(ring) == [stream(f)]
    assert (ULAW_SILENCE, ALAW_SILENCE, PCM16_SILENCE) == (0xFF, 0xD5, 0x00)


def test_twilio_and_rtp_20ms_ulaw_from_irregular_deltas():
    rng = np.random.default_rng(7)
    ring = FrameRing(160, 8000)  # 1 s of 8 kHz mu-law
    audio, sent = stream(8000 * 3 + 77), []
    pos = 0
    while pos < len(audio):
        k = int(rng.integers(1, 2000))
        ring.write(audio[pos:pos + k])
        pos += k
        sent += frames(ring)
    tail = ring.drain(ULAW_SILENCE)
    assert all(len(f) == 160 for f in sent) and len(sent) == len(audio) // 160
    assert b"".join(sent) + tail == audio + b"\xff" * (160 - 77)


def test_vonage_pcm16_16khz_20ms_frames():
    ring = FrameRing(640, 640 * 50)
    pcm = (np.sin(np.arange(16000) / 9) * 8000).astype("<i2")
    for chunk in np.array_split(pcm, 37):  # odd-sized int16 chunks
        ring.write(chunk)
    got = frames(ring)
    assert len(got) == 16000 * 2 // 640 and b"".join(got) == pcm.tobytes()


def test_exotel_chunks_are_multiples_of_320_and_at_least_3200():
    ring = FrameRing(3200, 64000)
    ring.write(stream(3200 * 2 + 1000))
    chunks = frames(ring) + [ring.drain(PCM16_SILENCE)]
    assert [len(c) for c in chunks] == [3200, 3200, 3200]
    assert all(len(c) % 320 == 0 and len(c) >= 3200 for c in chunks)
