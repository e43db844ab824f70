"""The drop-in client on its two transports: rtfast's own websocket (rtfast.websocket, the default)
and websockets' asyncio connection, which it falls back to when ``websocket_connection_options``
ask for something only websockets does. Each scenario runs on both and must come out the same."""

from __future__ import annotations

import asyncio
import logging
import ssl

import orjson
import pytest

from rtfast.client import AsyncOpenAI
from rtfast.connection import _OPTIONS, MAX_MESSAGE, _lean_options, ws_log
from rtfast.errors import AuthenticationError, ConnectionClosed, HandshakeError, ProtocolError
from rtfast.server import RealtimeServer, Script
from test_client import SECRET, Peer, created, delta
from test_websocket import raw_server

#: max_queue=16 is websockets' own default: asking for it changes nothing but the transport.
TRANSPORTS = {"lean": {}, "websockets": {"max_queue": 16}}
SOCKET_CLASS = {"lean": "_LeanSocket", "websockets": "_WebsocketsSocket"}


def connect(url, transport, **options):
    client = AsyncOpenAI(api_key=SECRET, websocket_base_url=url)
    return client.realtime.connect(model="m", websocket_connection_options={**TRANSPORTS[transport], **options})


def port_of(server) -> int:
    return server.sockets[0].getsockname()[1]


# -- which transport ---------------------------------------------------------------------------------


def test_the_lean_transport_takes_what_it_can_honour_and_nothing_else():
    defaults = _lean_options(_OPTIONS, False)
    assert defaults == {"max_size": MAX_MESSAGE, "open_timeout": 30, "user_agent": "rtfast", "logger": ws_log,
                        "ping_interval": 20, "ping_timeout": 20, "close_timeout": 10, "write_limit": 2**15}
    honoured = {"max_size": None, "open_timeout": None, "ping_interval": None, "ping_timeout": None,
                "close_timeout": 1.5, "user_agent_header": None, "write_limit": (4096, 1024), "compression": None,
                "logger": logging.getLogger("mine"), "proxy": "http://127.0.0.1:9"}
    assert _lean_options({**_OPTIONS, **honoured}, False) == {
        "max_size": None, "open_timeout": None, "ping_interval": None, "ping_timeout": None, "close_timeout": 1.5,
        "user_agent": None, "write_limit": (4096, 1024), "logger": logging.getLogger("mine")}
    context = ssl.create_default_context()
    assert _lean_options({"ssl": context}, True)["ssl"] is context
    assert _lean_options({"ssl": True}, True)["ssl"] is None        # rtfast.websocket's default context
    only_websockets = [{"compression": "deflate"}, {"max_queue": 16}, {"subprotocols": ["x"]}, {"extensions": []},
                       {"origin": "https://x"}, {"create_connection": object}, {"process_exception": print},
                       {"max_size": (2**20, 2**16)}, {"close_timeout": None}, {"logger": "by-name"},
                       {"write_limit": "big"}, {"server_hostname": "x"}, {"proxy_ssl": context}, {"family": 2},
                       {"ssl": None}, {"additional_headers": {}}]
    for option in only_websockets:
        assert _lean_options({**_OPTIONS, **option}, True) is None, option
    assert _lean_options({"ssl": context}, False) is None         # websockets refuses ssl= on ws://


async def test_an_option_only_websockets_honours_falls_back_to_it_and_works():
    async with RealtimeServer(script=Script(reply_text="Hi", audio_ms=300)) as server:
        runs = []
        for options, socket_class in ((None, "_LeanSocket"), ({"compression": "deflate"}, "_WebsocketsSocket"),
                                      ({"max_queue": 32}, "_WebsocketsSocket")):
            client = AsyncOpenAI(api_key=SECRET, websocket_base_url=server.base_url)
            async with client.realtime.connect(model="gpt-realtime", websocket_connection_options=options) as conn:
                assert type(conn._ws).__name__ == socket_class
                types, audio = [], 0
                await conn.response.create()
                async for event in conn:
                    types.append(event.type)
                    if event.type == "response.output_audio.delta":
                        audio += len(event.audio())
                    if event.type == "response.done":
                        break
                assert await conn.ping() >= 0
            runs.append((types, audio))
        extensions = [c.headers.get("Sec-WebSocket-Extensions", "") for c in server.connections]
    assert runs[0] == runs[1] == runs[2] and runs[0][1] == 300 * 48          # 300 ms of PCM16 24 kHz
    assert ["permessage-deflate" in e for e in extensions] == [False, True, False]


# -- the same on both ------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_close_codes_and_reasons(transport):
    async def script(ws):
        await ws.send(created())
        await ws.close(4001, "bye")

    async with Peer(script) as peer:
        async with connect(peer.url, transport) as conn:
            assert type(conn._ws).__name__ == SOCKET_CLASS[transport]
            assert (await conn.recv()).type == "session.created"
            with pytest.raises(ConnectionClosed) as info:
                await conn.recv()
            with pytest.raises(ConnectionClosed) as sent:
                await conn.send({"type": "response.create"})
            with pytest.raises(ConnectionClosed) as pinged:
                await conn.ping()
    for error in (info.value, sent.value, pinged.value):
        assert type(error).__name__ == "ConnectionClosedError" and isinstance(error, ConnectionClosed)
        assert (error.code, error.reason, error.rcvd_code) == (4001, "bye", 4001)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_peer_that_vanishes_mid_stream_is_1006_and_reconnects(transport):
    async def script(ws):
        await ws.send(created())
        for i in range(3):
            await ws.send(delta(i))
        if len(peer.requests) != 2:                     # the second connection (the reconnect) ends normally
            ws.transport.abort()                        # no close frame
        else:
            await ws.close()

    seen = []
    async with Peer(script) as peer:
        client = AsyncOpenAI(api_key=SECRET, websocket_base_url=peer.url)
        async with client.realtime.connect(model="m", websocket_connection_options=TRANSPORTS[transport] or None,
                                           on_reconnecting=seen.append, initial_delay=0.01) as conn:
            types = [event.type async for event in conn]
        async with connect(peer.url, transport) as conn:           # without the hook: the typed error
            got = [(await conn.recv()).type for _ in range(4)]
            with pytest.raises(ConnectionClosed) as info:
                await conn.recv()
    assert types == ["session.created"] + ["response.output_audio.delta"] * 3 \
        + ["session.created"] + ["response.output_audio.delta"] * 3
    assert [e.close_code for e in seen] == [1006]
    assert got == types[:4]
    assert (info.value.code, info.value.reason, info.value.rcvd_code) == (1006, "", 1006)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_message_over_max_size_closes_with_1009(transport):
    async def script(ws):
        await ws.send(created())
        await ws.send(delta(1, 3000))                   # 4 KB of base64

    async with Peer(script) as peer:
        async with connect(peer.url, transport, max_size=2000) as conn:
            assert (await conn.recv()).type == "session.created"
            with pytest.raises(ConnectionClosed) as info:
                await conn.recv()
    # the code is the one we failed the connection with; the peer sent none (what reconnecting reads)
    assert (info.value.code, info.value.rcvd_code) == (1009, 1006)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_keepalive_fails_a_peer_that_stops_answering_pings(transport):
    async def silent(reader, writer):                   # a 101, session.created, then never a pong
        writer.write(b"\x81" + bytes([126]) + len(created()).to_bytes(2, "big") + created())
        await reader.read()

    server = await raw_server(silent)
    async with server:
        url = f"ws://127.0.0.1:{port_of(server)}/v1"
        async with connect(url, transport, ping_interval=0.05, ping_timeout=0.1, close_timeout=0.2) as conn:
            assert (await conn.recv()).type == "session.created"
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(conn.recv(), 3)
        assert (info.value.code, info.value.reason) == (1011, "keepalive ping timeout")
        async with connect(url, transport, ping_interval=0.05, ping_timeout=None, close_timeout=0.1) as conn:
            assert (await conn.recv()).type == "session.created"
            with pytest.raises(asyncio.TimeoutError):               # pings unanswered, and no timeout
                await asyncio.wait_for(conn.recv(), 0.4)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sending_waits_for_a_peer_that_does_not_read(transport):
    resume = asyncio.Event()

    async def stalled(reader, writer):
        writer.transport.pause_reading()
        await resume.wait()

    server = await raw_server(stalled)
    async with server:
        async with connect(f"ws://127.0.0.1:{port_of(server)}/v1", transport, close_timeout=0.1) as conn:
            chunk = bytes(48000)                        # 1 s of PCM16 24 kHz: 64 KB of base64
            sent = 0
            with pytest.raises(asyncio.TimeoutError):
                for _ in range(1000):                   # 64 MB: far past any socket buffer
                    await asyncio.wait_for(conn.send_audio(chunk), 0.5)
                    sent += 1
            assert sent < 200                           # it stopped once the buffers were full
            resume.set()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cancelling_recv_loses_nothing(transport):
    gate = asyncio.Event()

    async def script(ws):
        await ws.send(created())
        await gate.wait()
        for i in range(5):
            await ws.send(delta(i))
        await ws.close()

    async with Peer(script) as peer:
        async with connect(peer.url, transport) as conn:
            await conn.recv()
            for _ in range(3):
                task = asyncio.create_task(conn.recv())
                await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            gate.set()
            assert [event.event_id async for event in conn] == [f"e{i}" for i in range(5)]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_refused_handshake_is_typed_and_its_log_secret_free(transport, caplog):
    caplog.set_level(logging.DEBUG)
    body = orjson.dumps({"error": {"message": "bad key", "type": "invalid_request_error"}})
    async with Peer(status=401, body=body) as peer:
        with pytest.raises(AuthenticationError) as info:
            async with connect(peer.url, transport):
                pass
    assert (info.value.status, info.value.message) == (401, "bad key")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("rtfast")]
    assert any("Authorization" in m for m in ours)          # the handshake was logged ...
    assert not any(SECRET in m for m in ours)                # ... without the key


async def test_write_limit_is_the_lean_transports_high_mark_as_websockets():
    async with Peer() as peer:
        for options, limits in (({}, (2**13, 2**15)), ({"write_limit": 4096}, (1024, 4096)),
                                ({"write_limit": (4096, 100)}, (100, 4096))):
            async with connect(peer.url, "lean", **options) as conn:
                assert conn._ws.ws.transport.get_write_buffer_limits() == limits
            async with connect(peer.url, "websockets", **options) as conn:
                assert conn._ws.conn.transport.get_write_buffer_limits() == limits


# -- where they differ -----------------------------------------------------------------------------


async def test_invalid_utf8_in_a_text_frame_fails_the_lean_connection_with_1007():
    async def bad(reader, writer):
        frame = created()
        writer.write(b"\x81\x7e" + len(frame).to_bytes(2, "big") + frame)
        writer.write(b'\x81\x03"\xff"')                         # a text frame that is not UTF-8
        writer.write(b"\x81\x02{}")
        await reader.read()

    server = await raw_server(bad)
    async with server:
        url = f"ws://127.0.0.1:{port_of(server)}/v1"
        async with connect(url, "lean") as conn:
            assert (await conn.recv()).type == "session.created"
            with pytest.raises(ConnectionClosed) as info:      # RFC 6455 8.1: fail the connection
                await conn.recv()
            assert info.value.code == 1007
        async with connect(url, "websockets", close_timeout=0.1) as conn:
            assert (await conn.recv()).type == "session.created"
            with pytest.raises(ProtocolError):                 # websockets does not check it (it does not decode)
                await conn.recv()


async def test_a_redirected_upgrade_is_followed_by_websockets_only():
    # (cross-origin: websockets drops the Authorization header on the way, hence no auth here)
    async with RealtimeServer(require_auth=False) as server:
        async def redirect(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: " + server.base_url.encode()
                         + b"/realtime?model=m\r\nContent-Length: 0\r\n\r\n")
            writer.close()

        front = await asyncio.start_server(redirect, "127.0.0.1", 0)
        async with front:
            url = f"ws://127.0.0.1:{port_of(front)}/v1"
            with pytest.raises(HandshakeError) as info:
                async with connect(url, "lean"):
                    pass
            assert info.value.status == 307
            async with connect(url, "websockets") as conn:
                assert (await conn.recv()).type == "session.created"
