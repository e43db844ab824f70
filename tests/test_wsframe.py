"""The websocket frame codec (rtfast._wsframe), sans-I/O: byte literals in,
messages out, checked against websockets' own frame codec as the oracle."""

import os

import pytest
from hypothesis import given, strategies as st
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from rtfast._wsframe import FrameParser, FrameWriter, close_payload, parse_close
from rtfast.errors import FrameError

LENGTHS = [0, 1, 2, 7, 8, 9, 125, 126, 127, 65535, 65536, 70000]


def oracle_frames(data: bytes, mask: bool) -> list[Frame]:
    """Parse frames with websockets' codec."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        gen = Frame.parse(reader.read_exact, mask=mask, max_size=None)
        try:
            next(gen)
        except StopIteration as stop:
            frames.append(stop.value)
    return frames


def ws_bytes(opcode: Opcode, data: bytes, mask: bool, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=mask)


# -- parsing what websockets writes ------------------------------------------------------------


@pytest.mark.parametrize("client", [True, False])
@pytest.mark.parametrize("n", LENGTHS)
def test_parses_websockets_frames_of_every_length_class(client, n):
    data = os.urandom(n)
    text = data.hex()[:n].encode()
    stream = (ws_bytes(Opcode.TEXT, text, mask=not client) + ws_bytes(Opcode.BINARY, data, mask=not client))
    assert FrameParser(client=client).feed(stream) == [(1, text), (2, data)]


@pytest.mark.parametrize("client", [True, False])
def test_control_frames_come_out_as_they_are(client):
    m = not client
    stream = (ws_bytes(Opcode.PING, b"p1", m) + ws_bytes(Opcode.PONG, b"", m)
              + ws_bytes(Opcode.CLOSE, b"\x03\xe8bye", m))
    assert FrameParser(client=client).feed(stream) == [(9, b"p1"), (10, b""), (8, b"\x03\xe8bye")]


def test_fragments_are_joined_and_control_frames_may_interleave():
    stream = (ws_bytes(Opcode.TEXT, b"frag", True, fin=False) + ws_bytes(Opcode.PING, b"x", True)
              + ws_bytes(Opcode.CONT, b"men", True, fin=False) + ws_bytes(Opcode.CONT, b"ted", True))
    assert FrameParser(client=False).feed(stream) == [(9, b"x"), (1, b"fragmented")]


def test_a_stream_split_at_every_offset_gives_the_same_messages():
    stream = b"".join([ws_bytes(Opcode.TEXT, b'{"event":"media"}', True),
                       ws_bytes(Opcode.BINARY, bytes(range(256)) * 2, True),
                       ws_bytes(Opcode.TEXT, b"a" * 300, True, fin=False),
                       ws_bytes(Opcode.CONT, b"b" * 3, True),
                       ws_bytes(Opcode.PING, b"", True)])
    expected = FrameParser(client=False).feed(stream)
    assert len(expected) == 4
    for cut in range(len(stream) + 1):
        p = FrameParser(client=False)
        got = p.feed(stream[:cut]) + p.feed(stream[cut:])
        assert got == expected, cut
        assert p.pending == 0
    p = FrameParser(client=False)
    assert sum((p.feed(stream[i:i + 1]) for i in range(len(stream))), []) == expected


def test_pending_counts_an_incomplete_frame():
    frame = ws_bytes(Opcode.TEXT, b"x" * 1000, False)
    p = FrameParser(client=True)
    assert p.feed(frame[:500]) == [] and p.pending == 500
    assert p.feed(memoryview(frame)[500:]) == [(1, b"x" * 1000)] and p.pending == 0


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=300), st.integers(1, 3)), max_size=8),
       st.lists(st.integers(1, 200), min_size=1, max_size=20), st.booleans())
def test_any_messages_any_fragmentation_any_chunking(messages, cuts, client):
    stream, expected = b"", []
    for op, data, parts in messages:
        if op == 1:
            data = data.decode("latin-1").encode()         # valid UTF-8
        size = -(-len(data) // parts) if data else 1
        pieces = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
        for i, piece in enumerate(pieces):
            stream += ws_bytes(Opcode(op) if i == 0 else Opcode.CONT, piece, not client, fin=i == len(pieces) - 1)
        expected.append((op, data))
    p, got, pos, k = FrameParser(client=client), [], 0, 0
    while pos < len(stream):
        step = cuts[k % len(cuts)]
        got += p.feed(stream[pos:pos + step])
        pos, k = pos + step, k + 1
    assert got == expected


# -- writing what websockets reads -------------------------------------------------------------


@pytest.mark.parametrize("client", [True, False])
@pytest.mark.parametrize("n", LENGTHS)
def test_written_frames_parse_with_websockets(client, n):
    data = os.urandom(n)
    frame = FrameWriter(client=client).frame(data, 2)
    (parsed,) = oracle_frames(frame, mask=client)
    assert (parsed.opcode, parsed.data, parsed.fin) == (Opcode.BINARY, data, True)
    assert len(frame) == n + (2 if n < 126 else 4 if n < 65536 else 10) + (4 if client else 0)


def test_frames_builds_many_in_one_write_with_mixed_kinds():
    w = FrameWriter(client=True)
    out = w.frames([b'{"a":1}', "héllo", (2, b"\x00\x01"), (9, b"p"), bytearray(b"z" * 200)])
    parsed = oracle_frames(out, mask=True)
    assert [(f.opcode, f.data) for f in parsed] == [
        (Opcode.TEXT, b'{"a":1}'), (Opcode.TEXT, "héllo".encode()), (Opcode.BINARY, b"\x00\x01"),
        (Opcode.PING, b"p"), (Opcode.TEXT, b"z" * 200)]
    assert w.frames([]) == b""


def test_client_masks_use_fresh_keys():
    w = FrameWriter(client=True)
    keys = {w.frame(b"x")[2:6] for _ in range(2000)}        # crosses the 4096-byte key pool
    assert len(keys) > 1990
    assert FrameWriter(client=False).frame(b"abc") == b"\x81\x03abc"


def test_the_writer_refuses_what_no_frame_may_hold():
    w = FrameWriter(client=False)
    for op in (3, 7, 11, 15, -1, 256):
        with pytest.raises(ValueError, match="invalid websocket opcode"):
            w.frame(b"x", op)
        with pytest.raises(ValueError, match="invalid websocket opcode"):
            w.frames([(op, b"x")])
    for op in (8, 9, 10):
        assert w.frame(b"x" * 125, op)[1] == 125
        with pytest.raises(ValueError, match="control frame payload of 126 bytes"):
            w.frame(b"x" * 126, op)
        with pytest.raises(ValueError, match="at most 125"):
            w.frames([b"ok", (op, b"x" * 126)])
    with pytest.raises(TypeError, match="bytes-like or str, not int"):
        w.frames([3])                              # not three NUL bytes
    with pytest.raises(TypeError):
        w.frames([None])


def test_round_trip_through_our_own_parser():
    for client in (True, False):
        w, p = FrameWriter(client=client), FrameParser(client=not client)
        msgs = [(1, b"t" * n) for n in LENGTHS] + [(2, os.urandom(n)) for n in LENGTHS]
        assert p.feed(w.frames(msgs)) == msgs


# -- every rule of the framing layer -----------------------------------------------------------


def fails(parser: FrameParser, data: bytes, code: int, words: str) -> None:
    with pytest.raises(FrameError) as info:
        parser.feed(data)
    assert info.value.close_code == code and words in str(info.value)
    with pytest.raises(FrameError):
        parser.feed(b"")                                    # a failed parser stays failed


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10])
def test_reserved_bits(rsv):
    fails(FrameParser(client=True), bytes([0x81 | rsv, 1]) + b"x", 1002, "reserved bits")


def test_masking_is_checked_by_direction():
    fails(FrameParser(client=False), ws_bytes(Opcode.TEXT, b"x", mask=False), 1002, "unmasked frame from the client")
    fails(FrameParser(client=True), ws_bytes(Opcode.TEXT, b"x", mask=True), 1002, "masked frame from the server")


@pytest.mark.parametrize("op", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_unknown_opcodes(op):
    fails(FrameParser(client=True), bytes([0x80 | op, 0]), 1002, f"unknown opcode {op}")


def test_control_frame_rules():
    fails(FrameParser(client=True), bytes([0x09, 0]), 1002, "fragmented control frame")
    fails(FrameParser(client=True), bytes([0x89, 126, 0, 126]) + b"x" * 126, 1002, "longer than 125")


def test_fragmentation_order():
    fails(FrameParser(client=True), bytes([0x80, 1]) + b"x", 1002, "continuation frame without")
    fails(FrameParser(client=True), bytes([0x01, 1]) + b"x" + bytes([0x81, 1]) + b"y", 1002, "before the fragmented")


def test_size_limit_is_checked_from_the_header_before_the_payload_arrives():
    p = FrameParser(client=True, max_size=1000)
    assert p.feed(ws_bytes(Opcode.BINARY, b"x" * 1000, False)) == [(2, b"x" * 1000)]
    fails(p, bytes([0x82, 126, 0x03, 0xE9]), 1009, "exceeds the limit of 1000")
    p = FrameParser(client=True, max_size=1000)
    p.feed(ws_bytes(Opcode.TEXT, b"x" * 600, False, fin=False))
    fails(p, bytes([0x80, 126, 0x01, 0x91]), 1009, "exceeds")        # fragments add up: 600 + 401


def test_messages_before_a_violation_in_the_same_read_travel_with_the_error():
    good = ws_bytes(Opcode.TEXT, b"hello", False) + ws_bytes(Opcode.PING, b"p", False)
    with pytest.raises(FrameError) as info:
        FrameParser(client=True).feed(good + bytes([0x85, 0]))          # then an unknown opcode
    assert info.value.messages == [(1, b"hello"), (9, b"p")]
    p = FrameParser(client=True)
    assert p.feed(good[:3]) == []                                        # and from the held buffer
    with pytest.raises(FrameError) as info:
        p.feed(good[3:] + bytes([0x81, 2, 0xC3, 0x28]))
    assert info.value.messages == [(1, b"hello"), (9, b"p")] and info.value.close_code == 1007
    with pytest.raises(FrameError) as info:
        FrameParser(client=True).feed(bytes([0x85, 0]))
    assert info.value.messages == []


def test_64_bit_length_with_the_top_bit_set():
    fails(FrameParser(client=True), bytes([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]), 1002, "most significant bit")


def test_text_must_be_utf8_even_across_fragments():
    fails(FrameParser(client=True), bytes([0x81, 2, 0xC3, 0x28]), 1007, "not valid UTF-8")
    p = FrameParser(client=True)
    # é split across two fragments is fine
    assert p.feed(bytes([0x01, 1, 0xC3, 0x80, 1, 0xA9])) == [(1, "é".encode())]
    assert FrameParser(client=True).feed(bytes([0x82, 2, 0xC3, 0x28])) == [(2, b"\xc3(")]   # binary: any bytes


def text_ok(data: bytes) -> bool:
    try:
        return FrameParser(client=True).feed(FrameWriter(client=False).frame(data, 1)) == [(1, data)]
    except FrameError as exc:
        assert exc.close_code == 1007
        return False


def python_ok(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_utf8_validation_matches_python_for_every_one_and_two_byte_sequence():
    for a in range(256):
        assert text_ok(bytes([a])) == python_ok(bytes([a])), a
        for b in range(256):
            s = bytes([a, b])
            assert text_ok(s) == python_ok(s), s


@pytest.mark.parametrize("s", [b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xed\x9f\xbf", b"\xef\xbf\xbf", b"\xf0\x8f\xbf\xbf",
                               b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
                               b"abcdefgh\xe2\x82\xac", b"abcdefg\xe2\x82", b"\xc0\x80", b"\xc1\xbf", b"\xc2\x80"])
def test_utf8_edges(s):
    assert text_ok(s) == python_ok(s)


@given(st.binary(max_size=40))
def test_utf8_validation_matches_python_on_any_bytes(data):
    assert text_ok(data) == python_ok(data)


@given(st.text(max_size=40))
def test_any_text_is_valid(text):
    assert text_ok(text.encode("utf-8", "replace")) is True


# -- close frames ----------------------------------------------------------------------------


def test_close_payloads():
    assert parse_close(b"") == (1005, "")
    assert parse_close(close_payload(4000, "beta shape")) == (4000, "beta shape")
    assert parse_close(close_payload()) == (1000, "")
    for bad, code in [(b"\x03", 1002), (b"\x03\xed", 1002), (b"\x0b\xb7", 1002), (b"\x03\xe8\xff", 1007)]:
        with pytest.raises(FrameError) as info:
            parse_close(bad)
        assert info.value.close_code == code
    for code in (999, 1004, 1005, 1006, 1015, 2999, 5000):
        with pytest.raises(ValueError):
            close_payload(code)
    with pytest.raises(ValueError, match="123 bytes"):
        close_payload(1000, "x" * 124)


def test_one_byte_payloads_leave_the_interpreters_shared_bytes_alone():
    # CPython shares every 1-byte bytes object; unmasking must never write into one.
    key = b"\x5a\x00\x00\x00"
    for c in range(256):
        frame = bytes([0x82, 0x81]) + key + bytes([c ^ 0x5A])
        assert FrameParser(client=False).feed(frame) == [(2, bytes([c]))]
    every = bytes(range(256))
    assert [every[i:i + 1][0] for i in range(256)] == list(range(256))     # 1-byte slices are the shared ones


# -- fuzz: mutated streams, any chunking: same messages, same error, never a crash ---------


def test_mutated_streams_parse_the_same_however_they_are_cut():
    """Time-boxed with RTFAST_FUZZ_SECONDS (CI runs it under ASan/UBSan)."""
    from fuzz import mutations, rounds, seeded

    def run(parser, stream, cuts):
        got, pos, k = [], 0, 0
        try:
            while pos < len(stream):
                step = cuts[k % len(cuts)]
                got += parser.feed(stream[pos:pos + step])
                pos, k = pos + step, k + 1
        except FrameError as exc:
            return got + exc.messages, (exc.close_code, str(exc))
        return got, None

    rng = seeded()
    for _ in rounds(30):
        client = rng.random() < 0.5
        parts = []
        for _ in range(rng.randrange(1, 4)):
            op = rng.choice([1, 2, 9, 10])
            size = rng.choice([0, 5, 125] + ([126, 300, 70000] if op < 8 else []))   # control frames: <= 125
            data = rng.randbytes(size).decode("latin-1").encode()[:size] if op == 1 else rng.randbytes(size)
            parts.append(ws_bytes(Opcode(op), data, not client))
        stream = b"".join(parts)
        for frame in mutations(stream, rng, 10):
            cuts = [rng.randrange(1, 40) for _ in range(5)]
            whole = run(FrameParser(client=client, max_size=1 << 16), frame, [len(frame) or 1])
            assert run(FrameParser(client=client, max_size=1 << 16), frame, cuts) == whole, frame
