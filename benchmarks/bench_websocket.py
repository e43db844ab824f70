"""The bridge's websocket layer beside websockets, the library it replaces there.

Frames: rtfast._wsframe against websockets' sans-I/O protocol (the path every
websockets connection takes). Loopback: a call's traffic (50 carrier frames
in and 50 media + mark pairs out per second, here as fast as they go) through
rtfast.websocket and through websockets' asyncio connections, same process.
"""

import asyncio
import base64

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN as WS_OPEN
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from rtfast import websocket
from rtfast._wsframe import FrameParser, FrameWriter

MEDIA = (b'{"event":"media","sequenceNumber":"7","media":{"track":"inbound","chunk":"6","timestamp":"120",'
         b'"payload":"%s"},"streamSid":"MZ0001"}' % base64.b64encode(bytes(range(160))))
MEDIA_FRAME = Frame(Opcode.TEXT, MEDIA).serialize(mask=True)          # as a carrier sends it
N_ROUNDS = 2000


@pytest.mark.parametrize("impl", ["rtfast", "websockets"])
def test_parse_carrier_frame(benchmark, impl):
    benchmark.group = "websocket: parse one masked Twilio media frame (server side)"
    if impl == "rtfast":
        parser = FrameParser(client=False)
        result = benchmark(parser.feed, MEDIA_FRAME)
        assert result == [(1, MEDIA)]
    else:
        proto = ServerProtocol(state=WS_OPEN, max_size=None)

        def parse():
            proto.receive_data(MEDIA_FRAME)
            return proto.events_received()

        result = benchmark(parse)
        assert result[0].data == MEDIA


@pytest.mark.parametrize("impl", ["rtfast", "websockets"])
def test_build_append_frame(benchmark, impl):
    benchmark.group = "websocket: build one masked text frame (client side, a 20 ms append)"
    if impl == "rtfast":
        writer = FrameWriter(client=True)
        out = benchmark(writer.frame, MEDIA)
    else:
        proto = ClientProtocol(parse_uri("ws://x/"), state=WS_OPEN, max_size=None)

        def build():
            proto.send_text(MEDIA)
            return b"".join(proto.data_to_send())

        out = benchmark(build)
    assert FrameParser(client=False).feed(out) == [(1, MEDIA)]


@pytest.mark.parametrize("impl", ["rtfast", "websockets"])
def test_build_media_and_mark(benchmark, impl):
    benchmark.group = "websocket: build a media + mark pair for the carrier (server side)"
    mark = b'{"event":"mark","streamSid":"MZ0001","mark":{"name":"7"}}'
    if impl == "rtfast":
        writer = FrameWriter(client=False)
        out = benchmark(writer.frames, [MEDIA, mark])
    else:
        proto = ServerProtocol(state=WS_OPEN, max_size=None)

        def build():
            proto.send_text(MEDIA)
            proto.send_text(mark)
            return b"".join(proto.data_to_send())

        out = benchmark(build)
    assert FrameParser(client=True).feed(out) == [(1, MEDIA), (1, mark)]


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


async def round_trips_rtfast() -> int:
    """A carrier client sends media; the server answers each with media + mark."""
    async def handler(ws):
        mark = b'{"event":"mark","streamSid":"MZ0001","mark":{"name":"m"}}'
        ws.set_handlers(lambda data, binary: ws.send_many([data, mark]))
        await ws.wait_closed()

    server = await websocket.serve(handler, "127.0.0.1", 0)
    async with server:
        ws = await websocket.connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/")
        got = 0
        for _ in range(N_ROUNDS):
            ws.send(MEDIA)
            await ws.recv()
            await ws.recv()
            got += 2
        await ws.aclose()
    return got


async def round_trips_websockets() -> int:
    async def handler(ws):
        mark = b'{"event":"mark","streamSid":"MZ0001","mark":{"name":"m"}}'
        async for data in ws:
            await ws.send(data, text=True)
            await ws.send(mark, text=True)

    async with ws_serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as srv:
        async with ws_connect(f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}/", max_size=None,
                              compression=None) as ws:
            got = 0
            for _ in range(N_ROUNDS):
                await ws.send(MEDIA, text=True)
                await ws.recv(decode=False)
                await ws.recv(decode=False)
                got += 2
    return got


@pytest.mark.parametrize("impl", ["rtfast", "websockets"])
def test_loopback_round_trips(benchmark, loop, impl):
    benchmark.group = f"websocket: {N_ROUNDS} media frames in, media + mark out, on loopback"
    fn = round_trips_rtfast if impl == "rtfast" else round_trips_websockets
    got = benchmark.pedantic(lambda: loop.run_until_complete(fn()), rounds=3, iterations=1, warmup_rounds=1)
    assert got == 2 * N_ROUNDS
