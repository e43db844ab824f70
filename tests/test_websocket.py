"""rtfast.websocket: the lean asyncio websocket, against websockets itself
(both directions), raw peers that break the rules, and refused handshakes."""

import asyncio
import importlib.util
import logging

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Response

from rtfast import websocket
from rtfast.client import ws_log
from rtfast.errors import AuthenticationError, ConnectionClosed, HandshakeError, PermissionDeniedError
from rtfast.server import RealtimeServer
from rtfast.websocket import CLOSED, OPEN

UPGRADE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
ACCEPT = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")


async def echo(ws):
    while True:
        try:
            data, binary = await ws.recv_message()
        except ConnectionClosed:
            return
        ws.send(data, binary=binary)


def port_of(server) -> int:
    return server.sockets[0].getsockname()[1]


async def test_websockets_client_against_our_server():
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server, ws_connect(f"ws://127.0.0.1:{port_of(server)}/", max_size=None) as c:
        await c.send("héllo")
        assert await c.recv() == "héllo"
        await c.send(b"\x00\xff")
        assert await c.recv() == b"\x00\xff"
        await c.send(["frag", "mented"])                   # a fragmented message
        assert await c.recv() == "fragmented"
        big = bytes(range(256)) * 1000
        await c.send(big)
        assert await c.recv() == big
        assert await (await c.ping()) >= 0


async def test_our_client_against_websockets_server():
    async def handler(ws):
        async for message in ws:
            await ws.send(message)
        await ws.close(4000, "bye")

    async with ws_serve(handler, "127.0.0.1", 0, max_size=None) as srv:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(srv)}/x?y=1")
        assert ws.state == OPEN and ws.response.status_code == 101
        ws.send(b'{"a":1}')
        assert await ws.recv() == b'{"a":1}'
        ws.send_many([b"one", "two", (2, b"\x01")])
        assert [await ws.recv_message() for _ in range(3)] == [(b"one", False), (b"two", False), (b"\x01", True)]
        ws.send(b"y" * 200_000)
        assert len(await ws.recv()) == 200_000
        assert await ws.ping() >= 0
        await ws.aclose()
        assert ws.closed.result() == (1000, "") and ws.state == CLOSED
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        with pytest.raises(ConnectionClosed):
            ws.send(b"late")


async def test_close_codes_reach_both_sides():
    async def closer(ws):
        await ws.recv()
        ws.close(4000, "beta shape")
        await ws.wait_closed()

    server = await websocket.serve(closer, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        ws.send(b"hi")
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        assert (info.value.code, info.value.reason) == (4000, "beta shape")
        assert await ws.wait_closed() == (4000, "beta shape")


async def test_messages_queued_before_a_close_are_still_delivered():
    async def burst(ws):
        ws.send_many([b"1", b"2", b"3"])
        ws.close()
        await ws.wait_closed()

    server = await websocket.serve(burst, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        assert await ws.wait_closed() == (1000, "")                # close()'s default code
        assert [await ws.recv() for _ in range(3)] == [b"1", b"2", b"3"]
        with pytest.raises(ConnectionClosed):
            await ws.recv()


async def test_callbacks_take_over_from_recv_in_order():
    got, closed = [], []
    started = asyncio.Event()

    async def handler(ws):
        started.set()
        await asyncio.sleep(0.05)                     # messages arrive while nobody listens
        ws.set_handlers(lambda data, binary: got.append(data), lambda code, reason: closed.append(code))
        await ws.wait_closed()

    server = await websocket.serve(handler, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        await started.wait()
        ws.send_many([b"a", b"b"])
        await asyncio.sleep(0.1)
        ws.send(b"c")
        await asyncio.sleep(0.02)
        await ws.aclose(1001)
        await asyncio.sleep(0.02)
    assert got == [b"a", b"b", b"c"] and closed == [1001]


async def test_a_callback_that_raises_closes_only_its_connection(caplog):
    def boom(data, binary):
        raise RuntimeError("bug")

    async def handler(ws):
        if ws.request.path == "/bad":
            ws.set_handlers(boom)
            await ws.wait_closed()
        else:
            await echo(ws)

    server = await websocket.serve(handler, "127.0.0.1", 0)
    async with server:
        good = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/good")
        bad = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/bad")
        bad.send(b"x")
        assert await bad.wait_closed() == (1011, "internal error")
        good.send(b"still here")
        assert await good.recv() == b"still here"
        await good.aclose()
    assert "on_message callback failed" in caplog.text


async def raw_peer(port: int, request: bytes = UPGRADE):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, head


async def read_close(reader) -> int:
    data = await reader.read(100)
    assert data[0] == 0x88
    return int.from_bytes(data[2:4], "big")


@pytest.mark.parametrize("frame, code", [
    (Frame(Opcode.TEXT, b"x").serialize(mask=False), 1002),                    # a client must mask
    (Frame(Opcode.TEXT, b"\xc3\x28").serialize(mask=True), 1007),               # not UTF-8
    (bytes([0xC1, 0x80, 0, 0, 0, 0]), 1002),                                    # reserved bit
    (Frame(Opcode.BINARY, b"x" * 2000).serialize(mask=True), 1009),             # over max_size
])
async def test_a_peer_breaking_the_framing_rules_is_closed_with_the_right_code(frame, code, caplog):
    server = await websocket.serve(echo, "127.0.0.1", 0, max_size=1000)
    async with server:
        reader, writer, head = await raw_peer(port_of(server))
        assert head.startswith(b"HTTP/1.1 101")
        writer.write(frame)
        assert await read_close(reader) == code
        assert await reader.read() == b""                  # then the server ends TCP
        writer.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_handshake_split_across_reads_and_frames_right_after_the_101():
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        # the 101 in two pieces, the second glued to two frames
        writer.write(ACCEPT[:20])
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(ACCEPT[20:] + Frame(Opcode.TEXT, b"first").serialize(mask=False)
                     + Frame(Opcode.TEXT, b"second").serialize(mask=False)[:3])
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(Frame(Opcode.TEXT, b"second").serialize(mask=False)[3:])
        await writer.drain()
        await reader.read()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with srv:
        # The raw server's accept key only matches its fixed key: patch ours to it.
        ws = websocket.WebSocket(client=True)
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri
        hs = ClientProtocol(parse_uri("ws://127.0.0.1/"))
        request = hs.connect()
        del request.headers["Sec-WebSocket-Key"]
        request.headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
        hs.key = "dGhlIHNhbXBsZSBub25jZQ=="
        ws._hs, ws._request_to_send = hs, request
        await asyncio.get_running_loop().create_connection(lambda: ws, "127.0.0.1", port_of(srv))
        await ws.opened
        assert [await ws.recv(), await ws.recv()] == [b"first", b"second"]
        ws.transport.abort()


async def test_process_request_can_refuse_the_upgrade():
    def refuse(ws, request):
        if request.path != "/ok":
            return Response(403, "Forbidden", Headers([("Content-Type", "text/plain")]), b"no\n")
        return None

    server = await websocket.serve(echo, "127.0.0.1", 0, process_request=refuse)
    async with server:
        with pytest.raises(PermissionDeniedError) as info:
            await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/nope")
        assert info.value.status == 403
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/ok")
        ws.send(b"x")
        assert await ws.recv() == b"x"
        await ws.aclose()


async def test_a_refused_handshake_with_a_json_body_is_typed_and_secret_free(caplog):
    caplog.set_level(logging.DEBUG)
    body = b'{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}'

    def refuse(ws, request):
        return Response(401, "Unauthorized", Headers([("Content-Type", "application/json"),
                                                      ("Content-Length", str(len(body)))]), body)

    server = await websocket.serve(echo, "127.0.0.1", 0, process_request=refuse)
    async with server:
        with pytest.raises(AuthenticationError) as info:
            await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", logger=ws_log,
                                    headers={"Authorization": "Bearer sk-WRONGSECRET"})
    assert info.value.status == 401 and "Incorrect API key provided" in str(info.value)
    assert "Authorization" in caplog.text                  # the header was logged, redacted
    assert "sk-WRONGSECRET" not in caplog.text and "sk-WRONGSECRET" not in repr(info.value)
    # the embedded server's own refusal of a handshake without a key
    server = await RealtimeServer().start()
    try:
        with pytest.raises(AuthenticationError):
            await websocket.connect(server.url)
    finally:
        await server.close()


async def test_not_a_websocket_request_gets_an_http_error():
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await reader.read()
        assert response.startswith(b"HTTP/1.1 426") or response.startswith(b"HTTP/1.1 400")
        writer.close()


async def test_connection_refused_and_timeouts():
    with pytest.raises(OSError):
        await websocket.connect("ws://127.0.0.1:1/")

    async def silent(reader, writer):
        await reader.read()

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with srv:
        with pytest.raises(asyncio.TimeoutError):
            await websocket.connect(f"ws://127.0.0.1:{port_of(srv)}/", open_timeout=0.1)

    async def hang_up(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    srv = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with srv:
        with pytest.raises(HandshakeError, match="closed during the websocket handshake") as info:
            await websocket.connect(f"ws://127.0.0.1:{port_of(srv)}/")
    assert (info.value.status, info.value.message) == (0, "connection closed during the websocket handshake")


async def test_keepalive_ends_a_connection_whose_peer_stopped_answering():
    server = await websocket.serve(echo, "127.0.0.1", 0, ping_interval=0.05)
    async with server:
        reader, writer, head = await raw_peer(port_of(server))
        ping = await reader.readexactly(6)
        assert ping[0] == 0x89                              # a ping with a 4-byte payload
        data = await asyncio.wait_for(reader.read(), 1)      # no pong: then a close with 1011, and nothing after
        assert data == b"\x88\x18\x03\xf3keepalive ping timeout"
        writer.close()
    # and a peer that answers is kept
    server = await websocket.serve(echo, "127.0.0.1", 0, ping_interval=0.03)
    async with server:
        async with ws_connect(f"ws://127.0.0.1:{port_of(server)}/") as c:
            await asyncio.sleep(0.2)
            await c.send("alive")
            assert await c.recv() == "alive"


async def test_reading_pauses_when_nobody_reads_and_resumes():
    async def flood(ws):
        for k in range(10):
            ws.send_many([b"m%d" % i for i in range(100 * k, 100 * k + 100)])
            await asyncio.sleep(0.01)
        await ws.wait_closed()

    server = await websocket.serve(flood, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        await asyncio.sleep(0.3)
        assert ws._paused_reading and len(ws._queue) < 1000      # the rest waits in the kernel
        assert [await ws.recv() for _ in range(1000)] == [b"m%d" % i for i in range(1000)]
        assert not ws._paused_reading
        await ws.aclose()


async def test_server_close_says_going_away_to_every_connection():
    server = await websocket.serve(echo, "127.0.0.1", 0)
    clients = [await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/") for _ in range(3)]
    server.close()
    await server.wait_closed()
    assert [await c.wait_closed() for c in clients] == [(1001, "")] * 3
    assert not server.connections and not server._tasks       # nothing of the ended connections is kept


async def test_through_an_http_connect_proxy_and_a_clear_error_for_a_bad_proxy_url():
    from test_proxy import Proxy

    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server, Proxy() as proxy:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", proxy=proxy.url)
        ws.send(b"via proxy")
        assert await ws.recv() == b"via proxy"
        await ws.aclose()
        assert proxy.targets == [f"127.0.0.1:{port_of(server)}"]
        with pytest.raises(HandshakeError, match="invalid proxy URL") as info:
            await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", proxy="ftp://u:s3cret@127.0.0.1:1")
        assert "s3cret" not in str(info.value)


# -- closing is always bounded, and nothing is delivered after a failure ----------------------


async def flood_until_stuck(ws) -> None:
    """Write until the peer's socket buffers are full (the peer does not read)."""
    for _ in range(1000):                        # bounded: a broken `buffered` fails, never hangs
        if ws.buffered >= 4 * 2**20:
            return
        ws.send(b"x" * 65536, binary=True)
        await asyncio.sleep(0)
    raise AssertionError(f"64 MB sent and only {ws.buffered} bytes buffered")


@pytest.mark.parametrize("how", ["close", "fail", "keepalive"])
async def test_a_peer_that_stopped_reading_cannot_hold_a_closing_connection(how):
    released = asyncio.Event()

    async def stuck(ws):
        ws.transport.pause_reading()                   # alive, but never reads again
        await released.wait()

    server = await websocket.serve(stuck, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", close_timeout=0.3,
                                     ping_interval=0.2 if how == "keepalive" else None)
        closed = []
        ws.set_handlers(None, lambda code, reason: closed.append((code, reason)))
        await flood_until_stuck(ws)
        if how == "close":
            ws.close()
            ws.close()                                 # a second close while closing is harmless
        elif how == "fail":
            ws.fail(1011, "gave up")
        await asyncio.wait_for(ws.wait_closed(), 2)     # keepalive: ping unanswered, fail, abort
        assert ws.state == CLOSED and len(closed) == 1
        if how != "close":
            assert closed[0] == (1011, "keepalive ping timeout" if how == "keepalive" else "gave up")
        released.set()
        for c in list(server.connections):
            c.transport.abort()


async def test_a_server_drops_connections_that_never_finish_the_handshake():
    server = await websocket.serve(echo, "127.0.0.1", 0, open_timeout=0.2)
    async with server:
        peers = [await asyncio.open_connection("127.0.0.1", port_of(server)) for _ in range(2)]
        await asyncio.sleep(0.02)
        pending = list(server._handshaking)
        peers[0][1].write(b"GET / HTTP/1.1\r\nHost: x\r\n")      # a head that never ends
        for reader, _ in peers:                               # the other sends nothing at all
            assert await asyncio.wait_for(reader.read(), 2) == b""
        assert len(pending) == 2 and all(ws.opened.cancelled() for ws in pending)   # nobody waits on them
        assert not server._handshaking

    server = await websocket.serve(echo, "127.0.0.1", 0)      # default: 10 s, but close() drops them
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
    writer.write(b"GET / HTTP/1.1\r\n")
    await asyncio.sleep(0.05)
    server.close()
    await asyncio.wait_for(server.wait_closed(), 2)
    assert await asyncio.wait_for(reader.read(), 2) == b""


async def test_assigning_on_message_gets_the_messages_that_came_first():
    async def greet(ws):
        ws.send_many([b"one", b"two"])
        await ws.wait_closed()

    server = await websocket.serve(greet, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        await asyncio.sleep(0.05)                            # both arrived before a callback existed
        got = []
        ws.on_message = lambda data, binary: got.append(data)
        assert got == [b"one", b"two"] and ws.on_message is not None
        await ws.aclose()


async def test_nothing_is_delivered_after_a_failure_or_a_close_frame(caplog):
    from rtfast._wsframe import FrameWriter, close_payload

    w = FrameWriter(client=False)

    async def rude(ws):
        if ws.request.path == "/fail":
            ws.transport.write(w.frames([b"a", b"b"]))
        else:            # a message, a close, then data after the close (a peer breaking the rules)
            ws.transport.write(w.frame(b"a", 1) + w.frame(close_payload(1000), 8) + w.frame(b"late", 1))
        await ws.wait_closed()

    def raising(data, binary):
        got.append(data)
        raise RuntimeError("app bug")

    server = await websocket.serve(rude, "127.0.0.1", 0)
    async with server:
        got = []
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/fail")
        ws.set_handlers(raising)
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (1011, "internal error")
        assert got == [b"a"]
        got = []
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/close")
        ws.set_handlers(lambda data, binary: got.append(data))
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (1000, "")
        assert got == [b"a"]


async def test_a_message_just_before_a_violation_is_still_delivered():
    async def handler(ws):
        got = []
        ws.set_handlers(lambda data, binary: got.append(data))
        await ws.wait_closed()
        received.extend(got)

    received = []
    server = await websocket.serve(handler, "127.0.0.1", 0)
    async with server:
        reader, writer, head = await raw_peer(port_of(server))
        writer.write(Frame(Opcode.TEXT, b"last words").serialize(mask=True) + bytes([0x85, 0x80, 0, 0, 0, 0]))
        assert await read_close(reader) == 1002
        writer.close()
    assert received == [b"last words"]


async def test_recv_is_for_one_coroutine_at_a_time_and_unanswered_pings_stay_quiet(caplog):
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        first = asyncio.ensure_future(ws.recv())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError) as info:
            await ws.recv()
        assert str(info.value) == "another coroutine is already awaiting recv() on this websocket"
        ws.send(b"x")
        assert await first == b"x"
        ws.ping()                                            # fire and forget, then the peer vanishes
        ws.transport.abort()
        await ws.wait_closed()
        await asyncio.sleep(0)
    import gc
    gc.collect()
    assert "never retrieved" not in caplog.text


async def test_a_long_non_ascii_failure_reason_is_cut_on_a_character_boundary():
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        async with ws_connect(f"ws://127.0.0.1:{port_of(server)}/") as c:
            [ours] = server.connections
            ours.fail(4000, "é" * 100)                        # 200 bytes of UTF-8
            with pytest.raises(Exception):
                await c.recv()
            assert c.close_code == 4000 and c.close_reason == "é" * 61   # 122 bytes, not half a character


async def test_keep_handshake_false_drops_request_and_response_once_open():
    seen = []

    async def handler(ws):
        seen.append((ws.request, ws.response))
        await echo(ws)

    server = await websocket.serve(handler, "127.0.0.1", 0, keep_handshake=False)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/x", keep_handshake=False)
        ws.send(b"still works")
        assert await ws.recv() == b"still works"
        assert ws.request is None and ws.response is None and seen == [(None, None)]
        import gc
        from websockets.http11 import Request
        assert not [o for o in gc.get_referents(*gc.get_referents(ws)) if isinstance(o, Request)]  # nor kept elsewhere
        from websockets.protocol import Protocol
        held = [o for o in gc.get_referents(*gc.get_referents(ws, *server.connections)) if isinstance(o, Protocol)]
        assert held == []                                  # the handshake's parsers are let go once open
        kept = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/y")     # the default keeps them
        assert kept.response.status_code == 101
        await ws.aclose()
        await kept.aclose()


async def test_a_closed_connection_lets_go_of_its_owner_without_the_cyclic_gc():
    import gc
    import weakref

    class Owner:
        def __init__(self, ws):
            self.ws = ws                              # owner -> socket -> owner's methods: a cycle
            ws.set_handlers(self.on_message, self.on_close)
            ws.limit_backlog(1 << 20, self.on_backlog)

        def on_message(self, data, binary): pass

        def on_close(self, code, reason): pass

        def on_backlog(self, size): pass

    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        owner = Owner(ws)
        ref = weakref.ref(owner)
        del owner
        gc.disable()
        try:
            await ws.aclose()
            assert ws.state == CLOSED and ref() is None     # freed by reference counting alone
        finally:
            gc.enable()


# -- pinned wire behaviour: opcodes, the close echo, 1006, ping, backpressure marks, no leaks ----


async def raw_server(script, **kwargs):
    """A hand-written websocket server: answers the upgrade, then runs script(reader, writer)."""
    import base64
    import hashlib

    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        try:
            await script(reader, writer)
        finally:
            writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0, **kwargs)


async def read_client_frame(reader) -> tuple[int, bytes]:
    """(first byte, unmasked payload) of one short masked frame from a client."""
    b0, b1 = await reader.readexactly(2)
    assert b1 & 0x80 and (b1 & 0x7F) < 126                     # masked, short
    mask = await reader.readexactly(4)
    payload = await reader.readexactly(b1 & 0x7F)
    return b0, bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


async def test_text_goes_out_as_text_and_binary_as_binary_on_the_wire():
    async def sender(ws):
        ws.send("héllo")                         # str: a text frame
        ws.send(b'{"a":1}')                      # bytes: text by default (JSON frames, as the bridge sends)
        ws.send(b"\x00\xff", binary=True)        # binary on request
        ws.send_many(["t", (2, b"b")])
        ws.send_many([b"c", (1, b"d")], binary=True)   # binary= is the kind of the items without an opcode
        await ws.wait_closed()

    server = await websocket.serve(sender, "127.0.0.1", 0)
    async with server:
        reader, writer, head = await raw_peer(port_of(server))
        want = (b"\x81\x06h\xc3\xa9llo" + b'\x81\x07{"a":1}' + b"\x82\x02\x00\xff"
                + b"\x81\x01t" + b"\x82\x01b" + b"\x82\x01c" + b"\x81\x01d")
        assert await reader.readexactly(len(want)) == want
        writer.close()


async def test_a_close_frame_is_echoed_with_its_full_code_and_sending_stops():
    echoed, hold = [], asyncio.Event()

    async def closer(reader, writer):
        writer.write(b"\x88\x05\x0f\xa0bye")                 # close 4000 "bye", unmasked from a server
        echoed.append(await read_client_frame(reader))
        await hold.wait()                                   # keep TCP open: the client stays CLOSING

    server = await raw_server(closer)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        for _ in range(100):
            if echoed:
                break
            await asyncio.sleep(0.01)
        # The echo carries the 2-byte code (0x0FA0), not a cut one.
        assert echoed == [(0x88, b"\x0f\xa0")]
        assert ws.state == websocket.CLOSING and (ws.close_code, ws.close_reason) == (4000, "bye")
        assert repr(ws) == "<WebSocket client CLOSING>"
        for attempt in (lambda: ws.send(b"late"), lambda: ws.send_many([b"late"]), ws.ping):
            with pytest.raises(ConnectionClosed) as info:
                attempt()
            assert info.value.code == 4000
        hold.set()
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (4000, "bye")


async def test_a_server_echoes_the_full_close_code_then_ends_tcp():
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        reader, writer, head = await raw_peer(port_of(server))
        writer.write(Frame(Opcode.CLOSE, b"\x0f\xa0bye").serialize(mask=True))
        assert await reader.readexactly(4) == b"\x88\x02\x0f\xa0"
        assert await reader.read() == b""
        writer.close()


async def test_a_dropped_connection_reports_1006_on_both_sides():
    seen = []

    async def handler(ws):
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
        seen.append((info.value.code, info.value.reason, await ws.wait_closed()))

    server = await websocket.serve(handler, "127.0.0.1", 0)
    async with server:
        reader, writer, head = await raw_peer(port_of(server))
        writer.transport.abort()                            # gone without a close frame
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
    assert seen == [(1006, "", (1006, ""))]

    async def vanish(reader, writer):
        writer.transport.abort()

    server = await raw_server(vanish)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        closed = []
        ws.set_handlers(lambda data, binary: None, lambda code, reason: closed.append((code, reason)))
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (1006, "")
        assert closed == [(1006, "")] and ws.close_code == 1006


async def test_ping_resolves_with_the_round_trip_time():
    async def slow_pong(reader, writer):
        b0, payload = await read_client_frame(reader)
        assert b0 == 0x89 and len(payload) == 4
        await asyncio.sleep(0.15)
        writer.write(bytes([0x8A, len(payload)]) + payload)
        await reader.read()

    server = await raw_server(slow_pong)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        rtt = await asyncio.wait_for(ws.ping(), 2)
        assert 0.14 <= rtt < 1.0
        ws.transport.abort()             # the raw peer never echoes a close: aclose() would wait 2 s


async def test_reading_pauses_at_256_queued_messages_and_resumes_below_128():
    more = asyncio.Event()

    async def sender(ws):
        ws.send_many([b"m"] * 255)
        await more.wait()
        ws.send(b"x")
        await ws.wait_closed()

    async def queued(n):
        for _ in range(200):
            if len(ws._queue) >= n:
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"{len(ws._queue)} queued, waited for {n}")

    server = await websocket.serve(sender, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        await queued(255)
        assert ws.transport.is_reading()                    # 255 < the high mark
        more.set()
        await queued(256)
        assert not ws.transport.is_reading()                # 256: paused
        for _ in range(128):
            await ws.recv()
        assert len(ws._queue) == 128 and not ws.transport.is_reading()   # not below the low mark yet
        await ws.recv()
        assert ws.transport.is_reading()                    # 127: resumed
        await ws.aclose()


def _open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


async def test_a_failed_connect_is_typed_and_leaves_no_socket():
    from rtfast.errors import ConnectError, ConnectTimeout, ProxyError, RtfastError

    hung_up = []

    async def silent(reader, writer):
        await reader.read()                                 # until the client gives up
        hung_up.append(True)
        writer.close()

    async def settle(count):
        for _ in range(100):
            if len(hung_up) >= count:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = port_of(srv)
    async with srv:
        base = _open_fds()
        cases = [
            (f"ws://127.0.0.1:{port}/", None,
             f"127.0.0.1:{port} accepted the connection but did not answer the websocket upgrade within 0.2 s"),
            (f"wss://127.0.0.1:{port}/", None, f"no TCP/TLS connection to 127.0.0.1:{port} within 0.2 s"),
            ("ws://example.test/", f"http://127.0.0.1:{port}",
             f"no TCP/TLS connection to example.test:80 through the proxy 127.0.0.1:{port} within 0.2 s"),
        ]
        for i, (url, proxy, what) in enumerate(cases, 1):
            with pytest.raises(ConnectTimeout) as info:
                await websocket.connect(url, proxy=proxy, open_timeout=0.2)
            assert str(info.value) == what
            assert isinstance(info.value, TimeoutError) and isinstance(info.value, RtfastError)
            await settle(i)
            assert len(hung_up) == i                        # the peer saw our socket close ...
            assert _open_fds() == base                      # ... and no descriptor is left open
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectError) as info:
        await websocket.connect(f"ws://127.0.0.1:{dead}/")
    assert f"could not connect to 127.0.0.1:{dead}" in str(info.value) and isinstance(info.value, OSError)
    with pytest.raises(ProxyError) as info:
        await websocket.connect("ws://example.test/", proxy=f"http://u:s3cret@127.0.0.1:{dead}")
    assert f"the proxy 127.0.0.1:{dead}" in str(info.value) and "s3cret" not in str(info.value)


# -- pinned by mutation testing (tools/mutate.py, issue 17) -------------------------------------


async def test_a_fresh_websocket_has_its_documented_defaults():
    ws = websocket.WebSocket(client=True)
    assert (ws.remote_address, ws.request, ws.response, ws.on_close, ws.on_message) == (None,) * 5
    assert (ws.close_code, ws.close_reason, ws.buffered) == (1006, "", 0)
    assert repr(ws) == "<WebSocket client CONNECTING>"
    assert ws.eof_received() is False                 # no handshake under way: nothing to finish
    assert repr(websocket.WebSocket(client=False)) == "<WebSocket server CONNECTING>"


async def test_its_log_records_are_rtfast_websocket(caplog):
    async def handler(ws):
        ws.set_handlers(lambda data, binary: 1 / 0)
        await ws.wait_closed()

    server = await websocket.serve(handler, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        ws.send(b"x")
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (1011, "internal error")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records if "on_message" in r.getMessage()] == [
        ("rtfast.websocket", logging.ERROR, "on_message callback failed; closing the connection")]


async def test_a_request_head_may_fill_16_kib_and_not_one_byte_more():
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-Pad%d: %s\r\n" % (i, b"a" * 4000) for i in range(5))
        head = head[:16384]
        writer.write(head)
        await writer.drain()
        with pytest.raises(asyncio.TimeoutError):             # 16384 bytes without an end: still waiting
            await asyncio.wait_for(reader.read(1), 0.2)
        writer.write(b"a")                                     # one more: dropped
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()


async def test_a_refusal_with_an_empty_body_says_so():
    def refuse(ws, request):
        return Response(403, "Forbidden", Headers([("Content-Length", "0")]), b"")

    server = await websocket.serve(echo, "127.0.0.1", 0, process_request=refuse)
    async with server:
        with pytest.raises(PermissionDeniedError) as info:
            await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
    assert (info.value.status, info.value.message, info.value.body) == (403, "(no message)", b"")


async def test_a_bad_proxy_url_is_a_status_0_handshake_error():
    with pytest.raises(HandshakeError) as info:
        await websocket.connect("ws://127.0.0.1:1/", proxy="ftp://127.0.0.1:1")
    assert (info.value.status, info.value.message) == (
        0, "invalid proxy URL: expected http://, https://, socks4:// or socks5://")


async def test_a_101_with_a_wrong_accept_key_is_a_handshake_error():
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(ACCEPT)                     # the accept key of another request's key
        await reader.read()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with srv:
        with pytest.raises(HandshakeError) as info:
            await websocket.connect(f"ws://127.0.0.1:{port_of(srv)}/")
    assert type(info.value) is HandshakeError and info.value.status == 0
    assert info.value.message.startswith("websocket handshake failed: ") and "Sec-WebSocket-Accept" in info.value.message


async def test_the_default_max_size_is_16_mib():
    async def sizes(ws):
        while True:
            try:
                ws.send(b"%d" % len(await ws.recv()))
            except ConnectionClosed:
                return

    server = await websocket.serve(sizes, "127.0.0.1", 0)
    async with server:
        async with ws_connect(f"ws://127.0.0.1:{port_of(server)}/", max_size=None) as c:
            await c.send(bytes(16 * 2**20))
            assert await c.recv() == str(16 * 2**20)
            from websockets.exceptions import ConnectionClosedError
            with pytest.raises(ConnectionClosedError) as info:
                await c.send(bytes(16 * 2**20 + 1))
                await c.recv()
            assert info.value.rcvd.code == 1009


async def test_the_default_close_and_open_timeouts_are_2_and_10_seconds():
    loop = asyncio.get_running_loop()
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        await asyncio.sleep(0.05)
        [pending] = server._handshaking
        assert pending._close_handle.when() - loop.time() == pytest.approx(10.0, abs=0.2)   # the open timer
        writer.close()
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        ws.close()
        assert ws._close_handle.when() - loop.time() == pytest.approx(2.0, abs=0.1)        # the abort deadline
        await ws.wait_closed()


async def test_limit_backlog_reports_a_peer_that_stopped_reading_once_per_crossing(caplog):
    released = asyncio.Event()

    async def stuck(ws):
        ws.transport.pause_reading()
        await released.wait()

    server = await websocket.serve(stuck, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        seen = []
        ws.limit_backlog(1 << 20, seen.append)
        assert ws.transport.get_write_buffer_limits() == (1 << 19, 1 << 20)
        for _ in range(1000):                                  # bounded: fails, never hangs
            if seen:
                break
            ws.send(b"x" * 65536, binary=True)
            await asyncio.sleep(0)
        assert len(seen) == 1 and seen[0] > 1 << 20 and seen[0] == ws.buffered
        ws.send(b"x" * 65536, binary=True)                    # still above: no second call
        assert len(seen) == 1

        def broken(size):
            raise RuntimeError("bug")
        other = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        other.limit_backlog(1 << 16, broken)
        other.send(b"x" * 65536 * 4, binary=True)
        await flood_until_stuck(other)
        assert other.state == OPEN                            # a failing callback is logged, no more
        released.set()
        for c in [ws, other, *server.connections]:
            c.transport.abort()
    assert [(r.name, r.levelno, r.getMessage(), r.exc_info[0]) for r in caplog.records
            if "on_backlog" in r.getMessage()] == [("rtfast.websocket", logging.ERROR, "on_backlog callback failed",
                                                    RuntimeError)]


async def test_set_handlers_after_the_close_reports_it_at_once():
    server = await websocket.serve(lambda ws: ws.close(4001, "done") or ws.wait_closed(), "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (4001, "done")
        closed = []
        ws.set_handlers(lambda data, binary: None, lambda code, reason: closed.append((code, reason)))
        assert closed == [(4001, "done")] and ws.on_close is None
        ws.set_handlers(None, lambda code, reason: closed.append(code))
        assert closed == [(4001, "done"), 4001]


async def test_a_peer_ping_gets_its_pong_and_an_unsendable_fail_code_goes_out_as_1011():
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        reader, writer, head = await raw_peer(port_of(server))
        writer.write(Frame(Opcode.PING, b"abc").serialize(mask=True))
        assert await reader.readexactly(5) == b"\x8a\x03abc"
        [ours] = server.connections
        ours.fail(1005, "no status")                         # 1005 may not be sent
        assert await reader.readexactly(4 + 9) == b"\x88\x0b\x03\xf3no status"
        assert (ours.close_code, ours.close_reason) == (1005, "no status")
        writer.close()


async def test_a_failing_handler_is_logged_and_closes_with_1011(caplog):
    async def broken(ws):
        raise RuntimeError("bug")

    server = await websocket.serve(broken, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (1011, "internal error")
    assert not server.connections
    assert [(r.name, r.levelno, r.getMessage(), str(r.exc_info[1])) for r in caplog.records if r.levelno >= logging.ERROR] \
        == [("rtfast.websocket", logging.ERROR, "connection handler failed", "bug")]


async def test_connect_sends_the_headers_and_user_agent():
    heads = []

    async def record(reader, writer):
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()                                     # no answer: the handshake fails

    srv = await asyncio.start_server(record, "127.0.0.1", 0)
    async with srv:
        with pytest.raises(HandshakeError):
            await websocket.connect(f"ws://127.0.0.1:{port_of(srv)}/p?q=1", headers={"X-Test": "yes"},
                                    user_agent="tester/1")
        with pytest.raises(HandshakeError):
            await websocket.connect(f"ws://127.0.0.1:{port_of(srv)}/")
    assert heads[0].startswith(b"GET /p?q=1 HTTP/1.1\r\n")
    assert b"\r\nX-Test: yes\r\n" in heads[0] and b"\r\nUser-Agent: tester/1\r\n" in heads[0]
    assert b"\r\nUser-Agent: rtfast\r\n" in heads[1]


async def test_a_plain_connection_and_a_backlog_without_limit_backlog_log_no_errors(caplog):
    big = bytes(8 * 2**20)

    async def flood(ws):
        ws.send(big, binary=True)                  # far past the transport's high mark: pause_writing()
        await ws.wait_closed()

    server = await websocket.serve(flood, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        assert await asyncio.wait_for(ws.recv(), 5) == big
        [ours] = server.connections
        assert repr(ours) == "<WebSocket server OPEN>" and repr(ws) == "<WebSocket client OPEN>"
        assert ours.remote_address == ws.transport.get_extra_info("sockname")
        assert ws.remote_address == ("127.0.0.1", port_of(server))
        await ws.aclose()
        assert repr(ws) == "<WebSocket client CLOSED>"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_refusal_whose_body_comes_in_a_later_read_is_read_whole():
    async def refuse(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b'{"error":{"message":"model not here"}}')
        await reader.read()                  # TCP stays open: the body alone must end the handshake
        writer.close()

    srv = await asyncio.start_server(refuse, "127.0.0.1", 0)
    async with srv:
        with pytest.raises(PermissionDeniedError) as info:
            await websocket.connect(f"ws://127.0.0.1:{port_of(srv)}/", open_timeout=1)
    assert (info.value.status, info.value.message) == (403, "model not here")


async def test_a_peer_that_ends_tcp_without_a_close_frame_is_1006_without_errors(caplog):
    async def hang_up(reader, writer):
        pass                                                 # raw_server then closes: a FIN, no close frame

    server = await raw_server(hang_up)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (1006, "")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_pending_ping_fails_when_the_connection_drops_and_timers_let_go():
    import gc
    import weakref

    async def vanish_later(reader, writer):
        await read_client_frame(reader)                     # the ping: never answered
        writer.transport.abort()

    server = await raw_server(vanish_later)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", ping_interval=30)
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.ping(), 2)
        assert info.value.code == 1006
        ref = weakref.ref(ws)
        del ws, info
        gc.collect()
        assert ref() is None                                # the 30 s keepalive timer was cancelled


# -- pinned by mutation testing, lines 185 on (issue 17, second pass) ----------------------------


async def test_an_on_close_that_raises_is_logged_and_the_close_still_completes(caplog):
    server = await websocket.serve(lambda ws: ws.close(4002, "bye") or ws.wait_closed(), "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")

        def broken(code, reason):
            raise RuntimeError(f"bug on {code}")
        ws.set_handlers(lambda data, binary: None, broken)
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (4002, "bye")
        assert ws.state == CLOSED and ws.on_close is None and ws.on_message is None
    assert [(r.name, r.levelno, r.getMessage(), str(r.exc_info[1])) for r in caplog.records
            if "on_close" in r.getMessage()] == [("rtfast.websocket", logging.ERROR, "on_close callback failed",
                                                  "bug on 4002")]


async def test_a_request_that_is_only_a_blank_line_is_dropped_at_once(caplog):
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"\r\n\r\n")                     # a head that ends where it starts: not a request
        assert await asyncio.wait_for(reader.read(), 1) == b""     # not left waiting for the open timeout
        writer.close()
        assert not server.connections and not server._handshaking
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize("with_head", [38, 10])
async def test_a_refusal_whose_body_comes_with_its_head_is_read_whole_without_waiting_for_eof(with_head, caplog):
    body = b'{"error":{"message":"model not here"}}'

    async def refuse(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body[:with_head]))     # one write: the head and all or part of the body
        await writer.drain()
        if with_head < len(body):
            await asyncio.sleep(0.05)
            writer.write(body[with_head:])                 # the rest in a later read
        await reader.read()                  # TCP stays open: the body alone must end the handshake
        writer.close()

    srv = await asyncio.start_server(refuse, "127.0.0.1", 0)
    async with srv:
        with pytest.raises(PermissionDeniedError) as info:
            await websocket.connect(f"ws://127.0.0.1:{port_of(srv)}/", open_timeout=1)
    assert (info.value.status, info.value.message, info.value.body) == (403, "model not here", body)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_frames_in_the_same_read_as_the_upgrade_request_are_received():
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(UPGRADE + Frame(Opcode.TEXT, b"eager").serialize(mask=True))   # one write
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        assert await asyncio.wait_for(reader.readexactly(7), 2) == b"\x81\x05eager"
        writer.close()


async def test_a_process_request_that_raises_refuses_with_500_and_runs_no_handler(caplog):
    ran = []

    async def handler(ws):
        ran.append(ws)
        await echo(ws)

    def broken(ws, request):
        if request.path == "/refuse":
            return Response(403, "Forbidden", Headers([("Content-Length", "0")]), b"")
        raise RuntimeError("bug in process_request")

    server = await websocket.serve(handler, "127.0.0.1", 0, process_request=broken)
    async with server:
        with pytest.raises(HandshakeError) as info:
            await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", open_timeout=1)
        assert (info.value.status, info.value.message) == (500, "Failed to open a WebSocket connection.")
        with pytest.raises(PermissionDeniedError):
            await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/refuse", open_timeout=1)
        await asyncio.sleep(0.02)
        assert ran == [] and not server.connections           # a refused upgrade never reaches the handler
    assert [(r.name, r.getMessage(), str(r.exc_info[1])) for r in caplog.records if r.levelno >= logging.ERROR] \
        == [("rtfast.websocket", "process_request failed", "bug in process_request")]


async def test_a_server_sides_open_timer_ends_at_open_so_its_close_stays_bounded_and_it_is_freed():
    import gc
    import weakref

    refs = []

    async def closer(ws):
        refs.append(weakref.ref(ws))
        ws.close(4000)                    # the peer never answers: close_timeout must still end it
        await ws.wait_closed()

    server = await websocket.serve(closer, "127.0.0.1", 0, close_timeout=0.2, open_timeout=30)
    async with server:
        reader, writer, head = await raw_peer(port_of(server))
        try:
            assert await read_close(reader) == 4000
            t0 = asyncio.get_running_loop().time()
            try:
                rest = await asyncio.wait_for(reader.read(), 1)       # aborted after 0.2 s, not at 30 s
            except ConnectionResetError:
                rest = b""
            assert rest == b"" and asyncio.get_running_loop().time() - t0 < 1
        finally:
            writer.transport.abort()
        for _ in range(50):
            if not server.connections:
                break
            await asyncio.sleep(0.01)
    gc.collect()
    assert [r() for r in refs] == [None]           # no 30 s open timer still holds it


async def test_assigning_a_callback_drains_a_full_queue_and_resumes_reading():
    async def sender(ws):
        ws.send_many([b"m%d" % i for i in range(300)])
        await ws.wait_closed()

    server = await websocket.serve(sender, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        for _ in range(200):
            if not ws.transport.is_reading():
                break
            await asyncio.sleep(0.005)
        assert not ws.transport.is_reading()                 # 256 queued: paused
        got = []
        ws.on_message = lambda data, binary: got.append(data)
        assert ws.transport.is_reading()                     # the queue went to the callback: reading again
        for _ in range(200):
            if len(got) == 300:
                break
            await asyncio.sleep(0.005)
        assert got == [b"m%d" % i for i in range(300)]
        ws.transport.abort()


async def test_serve_with_reuse_port_shares_its_port_and_without_it_does_not():
    import socket

    first = await websocket.serve(echo, "127.0.0.1", 0, reuse_port=True)
    port = port_of(first)
    second = await websocket.serve(echo, "127.0.0.1", port, reuse_port=True)   # a second process's listener
    async with first, second:
        for server in (first, second):
            assert server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        ws = await websocket.connect(f"ws://127.0.0.1:{port}/")
        ws.send(b"either")
        assert await ws.recv() == b"either"
        await ws.aclose()
    plain = await websocket.serve(echo, "127.0.0.1", 0)
    async with plain:
        assert plain.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
        with pytest.raises(OSError):
            await websocket.serve(echo, "127.0.0.1", port_of(plain))


async def test_serve_on_an_already_bound_socket_and_serve_forever_until_closed():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await websocket.serve(echo, None, 0, sock=sock)     # host and port are ignored
    assert port_of(server) == port and server.sockets[0].fileno() == sock.fileno()
    forever = asyncio.ensure_future(server.serve_forever())
    ws = await websocket.connect(f"ws://127.0.0.1:{port}/")
    ws.send(b"on the given socket")
    assert await ws.recv() == b"on the given socket"
    await asyncio.sleep(0.02)
    assert not forever.done()                                    # serves until closed
    server.close()
    await server.wait_closed()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(forever, 1)
    assert await ws.wait_closed() == (1001, "")


@pytest.mark.parametrize("payload, code", [(b"\x03", 1002), (b"\x03\xed", 1002), (b"\x03\xe8\xff", 1007)])
async def test_a_malformed_close_frame_fails_the_connection_with_its_code(payload, code, caplog):
    closed = []

    async def handler(ws):
        ws.set_handlers(lambda data, binary: None, lambda c, reason: closed.append(c))
        await ws.wait_closed()

    server = await websocket.serve(handler, "127.0.0.1", 0)
    async with server:
        reader, writer, head = await raw_peer(port_of(server))
        writer.write(Frame(Opcode.CLOSE, payload).serialize(mask=True))   # 1 byte / code 1005 / bad UTF-8
        assert await read_close(reader) == code
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        for _ in range(50):
            if closed:
                break
            await asyncio.sleep(0.01)
    assert closed == [code]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_client_that_echoed_a_close_ends_tcp_itself_after_close_timeout():
    async def never_ends_tcp(reader, writer):
        writer.write(b"\x88\x05\x0f\xa0bye")
        await read_client_frame(reader)                        # the echo
        await reader.read()                                    # then nothing: TCP stays open

    server = await raw_server(never_ends_tcp)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", close_timeout=0.2)
        t0 = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(ws.wait_closed(), 1) == (4000, "bye")
        assert asyncio.get_running_loop().time() - t0 < 0.9


async def test_a_cancelled_wait_closed_leaves_the_closed_future_alone():
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.wait_closed(), 0.01)     # gave up waiting: cancels the wait, not the future
        assert not ws.closed.done()
        await ws.aclose(4003, "done")
        assert ws.closed.result() == (4003, "")                # the server echoes the code alone


async def test_pongs_nobody_waits_for_are_ignored(caplog):
    async def pongs(reader, writer):
        writer.write(b"\x8a\x04abcd")                            # unsolicited
        b0, payload = await read_client_frame(reader)           # our ping
        await asyncio.sleep(0.05)
        writer.write(bytes([0x8A, 4]) + payload)                # its pong, after the caller gave up
        writer.write(b"\x81\x02ok")
        await reader.read()

    server = await raw_server(pongs)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        fut = ws.ping()
        fut.cancel()
        assert await asyncio.wait_for(ws.recv(), 1) == b"ok"   # still open, nothing raised
        assert ws.state == OPEN
        ws.transport.abort()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl CLI to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


async def test_wss_uses_the_given_ssl_context_and_verifies_by_default(tls_files):
    import ssl

    from rtfast.errors import ConnectError

    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def hello(reader, writer):
        writer.write(b"\x81\x02hi")
        await reader.read()

    server = await raw_server(hello, ssl=server_ctx)
    async with server:
        url = f"wss://127.0.0.1:{port_of(server)}/"
        ws = await websocket.connect(url, ssl=ssl.create_default_context(cafile=cert), open_timeout=2)
        assert await ws.recv() == b"hi"
        assert ws.transport.get_extra_info("ssl_object").server_hostname == "127.0.0.1"
        ws.transport.abort()
        with pytest.raises(ConnectError) as info:            # the default context: a self-signed cert is refused
            await websocket.connect(url, open_timeout=2)
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


async def test_wss_through_an_http_proxy_and_tls_to_an_https_proxy(tls_files):
    import ssl

    from test_proxy import Proxy

    from rtfast.errors import ConnectError

    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def hello(reader, writer):
        writer.write(b"\x81\x02hi")
        await reader.read()

    server = await raw_server(hello, ssl=server_ctx)
    async with server, Proxy() as proxy:
        url = f"wss://127.0.0.1:{port_of(server)}/"
        ws = await websocket.connect(url, proxy=proxy.url, ssl=ssl.create_default_context(cafile=cert), open_timeout=2)
        assert await ws.recv() == b"hi"                         # TLS end to end, inside the CONNECT tunnel
        assert ws.transport.get_extra_info("ssl_object").server_hostname == "127.0.0.1"
        assert proxy.targets == [f"127.0.0.1:{port_of(server)}"]
        ws.transport.abort()
        # https:// means TLS to the proxy itself: this one speaks plain HTTP, so even a plain target fails
        plain = await websocket.serve(echo, "127.0.0.1", 0)
        async with plain:
            with pytest.raises(ConnectError):
                await websocket.connect(f"ws://127.0.0.1:{port_of(plain)}/", open_timeout=0.3,
                                        proxy=proxy.url.replace("http://", "https://"))
        assert len(proxy.targets) == 1


async def test_no_keepalive_ping_follows_our_close_frame():
    after = []

    async def peer(reader, writer):
        assert (await read_client_frame(reader))[0] == 0x88      # our close: nothing may follow it
        try:
            after.append(await asyncio.wait_for(reader.read(100), 0.25))
        except asyncio.TimeoutError:
            after.append(None)
        writer.write(b"\x88\x02\x03\xe8")                      # then answer the close

    server = await raw_server(peer)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", ping_interval=0.05, close_timeout=1)
        ws.close()
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (1000, "")
    assert after == [None]


async def test_close_and_fail_before_a_transport_or_after_the_end_do_nothing():
    import gc
    import weakref

    fresh = websocket.WebSocket(client=True)
    fresh.close()
    fresh.fail(1011, "never connected")
    assert fresh.state == websocket.CONNECTING and fresh.close_code == 1006

    async def vanish(reader, writer):
        writer.transport.abort()                               # no closing handshake: no close timer was armed

    server = await raw_server(vanish)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", close_timeout=30)
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (1006, "")
        ws.fail(1011, "too late")                              # CLOSED: no new close timer holds it
        ws.close()
        assert ws.state == CLOSED and ws.closed.result() == (1006, "")
        ref = weakref.ref(ws)
        del ws
        gc.collect()
        assert ref() is None


async def test_dropping_a_silent_handshake_is_logged_at_info(caplog):
    caplog.set_level(logging.INFO, "rtfast.websocket")
    server = await websocket.serve(echo, "127.0.0.1", 0, open_timeout=0.05)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("rtfast.websocket", logging.INFO, "dropped a connection that did not complete its opening handshake in 0 s")]


async def test_a_keepalive_failure_queued_behind_a_backlog_is_the_last_frame():
    from rtfast._wsframe import FrameParser

    resume, read_all, frames = asyncio.Event(), asyncio.Event(), []

    async def stalled(reader, writer):
        writer.transport.pause_reading()                    # not reading: our frames queue up
        await resume.wait()
        writer.transport.resume_reading()
        frames.extend(FrameParser(client=False, max_size=None).feed(await reader.read()))
        read_all.set()

    server = await raw_server(stalled)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", ping_interval=0.1, close_timeout=5)
        await flood_until_stuck(ws)
        for _ in range(100):
            if ws.state != OPEN:
                break
            await asyncio.sleep(0.01)
        assert ws.state == websocket.CLOSING                # the ping went unanswered: failed with 1011
        resume.set()
        assert await asyncio.wait_for(ws.wait_closed(), 5) == (1011, "keepalive ping timeout")
        await asyncio.wait_for(read_all.wait(), 5)
    ops = [op for op, _ in frames]
    assert ops[-1] == 8 and ops.count(8) == 1 and ops.count(9) == 1     # nothing after the close frame
    assert frames[-1][1] == b"\x03\xf3keepalive ping timeout"


async def test_after_close_nothing_more_can_be_sent_and_one_close_frame_goes_out():
    async def peer(reader, writer):
        frames.append(await read_client_frame(reader))
        try:
            frames.append(await asyncio.wait_for(read_client_frame(reader), 0.1))
        except asyncio.TimeoutError:
            pass
        writer.write(b"\x88\x02\x0f\xa1")                    # the echo: 4001

    frames = []
    server = await raw_server(peer)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", close_timeout=30)
        ws.close(4001, "bye")
        assert ws.state == websocket.CLOSING
        for attempt in (lambda: ws.send(b"late"), lambda: ws.send_many([b"late"]), ws.ping):
            with pytest.raises(ConnectionClosed):
                attempt()
        ws.close(4002)                              # already closing: no second close frame, nor a second timer
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (4001, "")
    assert frames == [(0x88, b"\x0f\xa1bye")]
    import gc
    import weakref

    ref = weakref.ref(ws)
    del ws, attempt
    gc.collect()
    assert ref() is None                            # no 30 s timer left holding it


async def test_fail_sends_a_reason_cut_to_123_bytes_and_then_refuses_to_send():
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        reader, writer, head = await raw_peer(port_of(server))
        [ours] = server.connections
        ours.fail(4000, "x" * 200)
        assert ours.state == websocket.CLOSING and (ours.close_code, ours.close_reason) == (4000, "x" * 200)
        with pytest.raises(ConnectionClosed) as info:
            ours.send(b"after the failure")
        assert info.value.code == 4000
        assert await reader.readexactly(2 + 125) == b"\x88\x7d\x0f\xa0" + b"x" * 123   # the most a close frame holds
        assert await asyncio.wait_for(reader.read(), 2) == b""                       # nothing else, then TCP ends
        writer.close()


async def test_a_proxy_that_refuses_the_connect_is_a_typed_handshake_error():
    async def refusing_proxy(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    proxy = await asyncio.start_server(refusing_proxy, "127.0.0.1", 0)
    async with proxy:
        with pytest.raises(HandshakeError) as info:
            await websocket.connect("ws://127.0.0.1:1/", proxy=f"http://u:s3cret@127.0.0.1:{port_of(proxy)}",
                                    open_timeout=2)
    assert type(info.value) is HandshakeError
    assert (info.value.status, info.value.message) == (0, "the proxy refused the connection: InvalidProxyStatus")
    assert "s3cret" not in str(info.value)


async def test_a_server_is_its_own_context_manager():
    server = await websocket.serve(echo, "127.0.0.1", 0)
    port = port_of(server)
    async with server as entered:
        assert entered is server
    with pytest.raises(OSError):                              # closed: nobody listens any more
        await websocket.connect(f"ws://127.0.0.1:{port}/", open_timeout=1)


async def test_connect_logs_its_handshake_as_rtfast_websocket_with_secrets_redacted(caplog):
    import inspect

    caplog.set_level(logging.DEBUG)
    server = await websocket.serve(echo, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", headers={"Authorization": "Bearer sk-SECRET1"})
        await ws.aclose()
    client_side = [r for r in caplog.records if r.getMessage().startswith("> ")]     # what the client sent
    assert client_side and {r.name for r in client_side} == {"rtfast.websocket"}
    assert any("Authorization" in r.getMessage() for r in client_side)
    assert "sk-SECRET1" not in caplog.text
    assert inspect.signature(websocket.connect).parameters["open_timeout"].default == 30.0


async def test_a_connection_ends_when_its_handler_returns_and_is_tracked_until_closed():
    async def done_at_once(ws):
        return None

    server = await websocket.serve(done_at_once, "127.0.0.1", 0, close_timeout=0.3)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (1000, "")        # the handler returned: 1000

        reader, writer, head = await raw_peer(port_of(server))                  # a peer that never answers the close
        assert await read_close(reader) == 1000
        [ours] = server.connections                      # still closing: still the server's until it is gone
        assert ours.state == websocket.CLOSING
        for _ in range(100):
            if not server.connections:
                break
            await asyncio.sleep(0.01)
        assert ours.state == CLOSED and not server.connections                # aborted after close_timeout
        writer.close()


async def test_server_wait_closed_waits_for_every_handler_whatever_it_raised():
    finished = []

    async def cancelled(ws):
        await ws.wait_closed()
        finished.append(ws)
        raise asyncio.CancelledError()               # e.g. a wait of its own that was cancelled

    server = await websocket.serve(cancelled, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
    # __aexit__ closed the connection (1001), waited for the handler and did not raise its CancelledError
    assert len(finished) == 1 and not server.connections
    assert await asyncio.wait_for(ws.wait_closed(), 2) == (1001, "")


@pytest.mark.skipif(importlib.util.find_spec("python_socks") is None,
                    reason="SOCKS proxies need python-socks (the socks extra)")
async def test_through_a_socks5_proxy_and_a_typed_error_when_it_refuses():
    from test_proxy import Proxy

    server = await websocket.serve(echo, "127.0.0.1", 0)
    port = port_of(server)
    async with server, Proxy(socks=True) as proxy:
        ws = await websocket.connect(f"ws://127.0.0.1:{port}/", proxy=proxy.url)
        ws.send(b"via socks")
        assert await ws.recv() == b"via socks"
        await ws.aclose()
        assert proxy.targets == [f"127.0.0.1:{port}"]

    async def refuse(reader, writer):              # a SOCKS5 proxy that refuses every CONNECT
        _, methods = await reader.readexactly(2)   # version, how many auth methods offered
        await reader.readexactly(methods)
        writer.write(b"\x05\x00")                  # "no auth" will do
        await reader.readexactly(10)               # CONNECT to an IPv4 address and port
        writer.write(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")     # 0x05: connection refused
        await writer.drain()
        writer.close()

    refuser = await asyncio.start_server(refuse, "127.0.0.1", 0)
    async with refuser:
        with pytest.raises(HandshakeError) as info:
            await websocket.connect(f"ws://127.0.0.1:{port}/",
                                    proxy=f"socks5://user:s3cret@127.0.0.1:{refuser.sockets[0].getsockname()[1]}")
    assert info.value.status == 0
    assert str(info.value) == "HTTP 0: the proxy refused the connection: ProxyError"      # no credentials in it


async def test_keepalive_ping_timeout_is_its_own_setting():
    pings = []

    async def silent(reader, writer):                   # reads our pings, never answers
        while True:
            b0, payload = await read_client_frame(reader)
            pings.append((b0, asyncio.get_running_loop().time()))
            if b0 == 0x88:
                return

    server = await raw_server(silent)
    async with server:
        # None: pings every interval, unanswered, and the connection stays
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", ping_interval=0.03, ping_timeout=None)
        await asyncio.sleep(0.25)
        assert ws.state == OPEN and len(pings) >= 4 and {b0 for b0, _ in pings} == {0x89}
        ws.transport.abort()
        # longer than the interval: no second ping and no failure before the timeout, then 1011
        pings.clear()
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", ping_interval=0.03, ping_timeout=0.4)
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (1011, "keepalive ping timeout")
        assert [b0 for b0, _ in pings] == [0x89, 0x88]
        assert pings[1][1] - pings[0][1] >= 0.35


async def test_a_keepalive_pong_arms_the_next_ping_after_the_interval():
    pings = []

    async def answering(reader, writer):
        while True:
            b0, payload = await read_client_frame(reader)
            pings.append(asyncio.get_running_loop().time())
            writer.write(bytes([0x8A, len(payload)]) + payload)

    server = await raw_server(answering)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", ping_interval=0.05, ping_timeout=1)
        await asyncio.sleep(0.4)
        assert ws.state == OPEN
        ws.transport.abort()
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert len(pings) >= 4 and min(gaps) >= 0.04        # one ping per interval, not one per pong


async def test_close_received_says_whether_the_close_code_is_the_peers():
    async def closes(reader, writer):
        writer.write(b"\x88\x05\x0f\xa1bye")            # 4001 "bye"
        await reader.read()

    async def idle(reader, writer):
        await reader.read()

    async with await raw_server(closes) as server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", close_timeout=0.2)
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (4001, "bye")
        assert ws.close_received
    async with await raw_server(idle) as server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/", close_timeout=0.2)
        assert not ws.close_received
        ws.fail(1009, "too big")                          # ours, not the peer's
        assert await asyncio.wait_for(ws.wait_closed(), 2) == (1009, "too big")
        assert not ws.close_received


async def test_drain_waits_while_the_peer_does_not_read():
    resume = asyncio.Event()

    async def stalled(reader, writer):
        writer.transport.pause_reading()
        await resume.wait()
        writer.transport.resume_reading()
        await reader.read()

    server = await raw_server(stalled)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        await ws.drain()                                  # nothing buffered: at once
        ws.transport.set_write_buffer_limits(high=2**15)
        await flood_until_stuck(ws)
        waiters = [asyncio.create_task(ws.drain()) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waiters)
        waiters[0].cancel()                               # one sender gives up; the other still waits
        await asyncio.sleep(0.01)
        assert not waiters[1].done()
        resume.set()
        await asyncio.wait_for(waiters[1], 5)
        assert ws.buffered <= 2**15
        ws.transport.abort()
        # a drop wakes a waiting sender
        resume.clear()
        ws = await websocket.connect(f"ws://127.0.0.1:{port_of(server)}/")
        await flood_until_stuck(ws)
        waiter = asyncio.create_task(ws.drain())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        ws.transport.abort()
        await asyncio.wait_for(waiter, 1)
        await ws.drain()                                  # closed: returns at once
        resume.set()


async def test_the_callers_user_agent_wins_and_none_sends_none():
    heads = []

    async def record(reader, writer):
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    srv = await asyncio.start_server(record, "127.0.0.1", 0)
    async with srv:
        with pytest.raises(HandshakeError):
            await websocket.connect(f"ws://127.0.0.1:{port_of(srv)}/", headers={"user-agent": "mine/2"})
        with pytest.raises(HandshakeError):
            await websocket.connect(f"ws://127.0.0.1:{port_of(srv)}/", user_agent=None)
    assert heads[0].lower().count(b"user-agent:") == 1 and b"user-agent: mine/2\r\n" in heads[0]
    assert b"user-agent" not in heads[1].lower()
