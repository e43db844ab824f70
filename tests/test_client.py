"""The asyncio client against scripted websockets peers on loopback."""

import asyncio
import base64
import logging

import orjson
import pytest
from websockets.asyncio.server import serve
from websockets.http11 import Response
from websockets.datastructures import Headers

import rtfast
from rtfast import errors, wire
from rtfast.client import AsyncAzureOpenAI, AsyncOpenAI, connect
from rtfast.errors import (AuthenticationError, BetaShapeRefused, ConnectError, ConnectionClosed, ConnectTimeout,
                           HandshakeError, MissingCredentials, NotFoundError, ProtocolError, ProxyError,
                           RateLimitError, RtfastError)

SECRET = "sk-test-" + "s" * 40


class Peer:
    """A websockets server that records requests and runs a script per connection."""

    def __init__(self, script=None, status=None, body=b""):
        self.script = script
        self.status = status
        self.body = body
        self.requests = []
        self.received = []

    def process_request(self, connection, request):
        self.requests.append(request)
        if self.status:
            return Response(self.status, "refused", Headers([("Content-Type", "application/json")]), self.body)
        return None

    async def handler(self, ws):
        async def reader():
            async for message in ws:
                self.received.append(orjson.loads(message))
        task = asyncio.create_task(reader())
        try:
            if self.script:
                await self.script(ws)
            await ws.wait_closed()
        finally:
            task.cancel()

    async def __aenter__(self):
        self.server = await serve(self.handler, "127.0.0.1", 0, process_request=self.process_request,
                                  max_size=None, compression=None)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


def created(generation="ga"):
    if generation == "beta":
        return orjson.dumps({"type": "session.created", "event_id": "e0", "session": {
            "id": "s1", "object": "realtime.session", "input_audio_format": "g711_ulaw",
            "output_audio_format": "g711_ulaw"}})
    return orjson.dumps({"type": "session.created", "event_id": "e0", "session": {
        "type": "realtime", "id": "s1", "object": "realtime.session",
        "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}}})


def delta(i, n=800):
    return orjson.dumps({"type": "response.output_audio.delta", "event_id": f"e{i}", "response_id": "r1",
                         "item_id": "item1", "output_index": 0, "content_index": 0,
                         "delta": base64.b64encode(bytes([i % 256]) * n).decode()})


def client(peer):
    return AsyncOpenAI(api_key=SECRET, websocket_base_url=peer.url)


async def test_url_headers_and_the_official_resource_methods():
    async def script(ws):
        await ws.send(created())
    async with Peer(script) as peer:
        async with client(peer).realtime.connect(model="gpt-realtime", extra_query={"x": "1"},
                                                 extra_headers={"X-Extra": "yes"}) as conn:
            ev = await conn.recv()
            assert ev.type == "session.created" and str(conn.state.input_format) == "pcmu/8000"
            await conn.session.update(session={"type": "realtime", "instructions": "hi"})
            await conn.input_audio_buffer.append(audio="AAAA")
            await conn.input_audio_buffer.commit()
            await conn.input_audio_buffer.clear(event_id="c1")
            await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                      "content": [{"type": "input_text", "text": "x"}]})
            await conn.conversation.item.retrieve(item_id="i1")
            await conn.conversation.item.truncate(item_id="i1", content_index=0, audio_end_ms=5)
            await conn.conversation.item.delete(item_id="i1")
            await conn.response.create(response={"instructions": "go"})
            await conn.response.cancel()
            await conn.output_audio_buffer.clear()
            await conn.send_audio(b"\xff" * 160)
            await conn.send({"type": "response.create"})
            assert await conn.ping() >= 0
            for _ in range(100):
                if len(peer.received) == 13:
                    break
                await asyncio.sleep(0.01)
        request = peer.requests[0]
        assert request.path == "/v1/realtime?model=gpt-realtime&x=1"
        assert request.headers["Authorization"] == f"Bearer {SECRET}"
        assert request.headers["X-Extra"] == "yes"
        assert "OpenAI-Beta" not in request.headers
        assert "permessage-deflate" not in request.headers.get("Sec-WebSocket-Extensions", "")
    types = [m["type"] for m in peer.received]
    assert types == ["session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
                     "input_audio_buffer.clear", "conversation.item.create", "conversation.item.retrieve",
                     "conversation.item.truncate", "conversation.item.delete", "response.create",
                     "response.cancel", "output_audio_buffer.clear", "input_audio_buffer.append",
                     "response.create"]
    assert peer.received[3] == {"type": "input_audio_buffer.clear", "event_id": "c1"}
    assert peer.received[11]["audio"] == base64.b64encode(b"\xff" * 160).decode()
    official = pytest.importorskip("openai.types.realtime")
    for message in peer.received:
        official.RealtimeClientEvent.__args__  # the union exists
    from pydantic import TypeAdapter
    adapter = TypeAdapter(official.RealtimeClientEvent)
    for message in peer.received:
        adapter.validate_python(message)


async def test_async_iteration_decodes_audio_and_ends_on_normal_close():
    async def script(ws):
        await ws.send(created())
        for i in range(20):
            await ws.send(delta(i))
        await ws.close(1000)
    async with Peer(script) as peer:
        got = []
        async with client(peer).realtime.connect(model="m") as conn:
            async for ev in conn:
                got.append(ev)
        assert [e.type for e in got[1:]] == ["response.output_audio.delta"] * 20
        assert all(isinstance(e, wire.AudioDelta) for e in got[1:])
        assert got[5].audio() == bytes([4]) * 800
        assert conn.state.audio_received_ms("item1") == 20 * 100


async def test_server_closing_mid_response_is_a_typed_error_with_code_and_reason():
    async def script(ws):
        await ws.send(created())
        await ws.send(delta(1))
        await ws.close(1011, "internal error")
    async with Peer(script) as peer:
        async with client(peer).realtime.connect(model="m") as conn:
            with pytest.raises(ConnectionClosed) as info:
                async for _ in conn:
                    pass
    assert (info.value.code, info.value.reason) == (1011, "internal error")


async def test_garbage_frames_raise_protocol_error_and_the_connection_goes_on():
    async def script(ws):
        await ws.send(b"{not json")
        await ws.send(b'{"no":"type"}')
        await ws.send(created())
    async with Peer(script) as peer:
        async with client(peer).realtime.connect(model="m") as conn:
            with pytest.raises(ProtocolError, match="not JSON"):
                await conn.recv()
            with pytest.raises(ProtocolError, match="type"):
                await conn.recv()
            assert (await conn.recv()).type == "session.created"


@pytest.mark.parametrize("status,cls", [
    (400, errors.BadRequestError), (401, AuthenticationError), (403, errors.PermissionDeniedError),
    (404, NotFoundError), (409, errors.ConflictError), (418, HandshakeError), (422, errors.UnprocessableEntityError),
    (429, RateLimitError), (500, errors.InternalServerError), (503, errors.InternalServerError)])
async def test_handshake_refused_is_typed_with_the_servers_message(status, cls, caplog):
    body = orjson.dumps({"error": {"message": f"nope {status}", "type": "invalid_request_error"}})
    caplog.set_level(logging.DEBUG)
    async with Peer(status=status, body=body) as peer:
        with pytest.raises(cls) as info:
            async with client(peer).realtime.connect(model="m"):
                pass
    # the official client's class for the status, by the same name, and its status_code
    assert type(info.value) is cls and getattr(rtfast, cls.__name__) is cls
    assert info.value.status == info.value.status_code == status and info.value.message == f"nope {status}"
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("rtfast")]
    assert any("Authorization" in m for m in ours)        # the handshake was logged ...
    assert not any(SECRET in m for m in ours)              # ... without the key


async def test_beta_shape_refused_is_its_own_error():
    async def script(ws):
        await ws.send(orjson.dumps({"type": "error", "event_id": "e", "error": {
            "type": "invalid_request_error", "code": "beta_api_shape_disabled",
            "message": "The beta API shape is no longer supported."}}))
        await ws.close(4000, "beta_api_shape_disabled")
    async with Peer(script) as peer:
        async with client(peer).beta.realtime.connect(model="m") as conn:
            ev = await conn.recv()
            assert ev.type == "error" and ev.error.code == "beta_api_shape_disabled"
            with pytest.raises(BetaShapeRefused) as info:
                await conn.recv()
        assert peer.requests[0].headers["OpenAI-Beta"] == "realtime=v1"
    assert info.value.code == 4000 and "GA" in str(info.value)


async def test_cancelling_recv_loses_nothing():
    gate = asyncio.Event()

    async def script(ws):
        await ws.send(created())
        await gate.wait()
        for i in range(5):
            await ws.send(delta(i))
    async with Peer(script) as peer:
        async with client(peer).realtime.connect(model="m") as conn:
            await conn.recv()
            for _ in range(3):
                task = asyncio.create_task(conn.recv())
                await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            gate.set()
            got = [await conn.recv() for _ in range(5)]
            assert [g.event_id for g in got] == [f"e{i}" for i in range(5)]


async def test_slow_consumer_gets_every_frame_in_order():
    async def script(ws):
        for i in range(300):
            await ws.send(delta(i, 480))
        await ws.close()
    async with Peer(script) as peer:
        async with client(peer).realtime.connect(model="m") as conn:
            await asyncio.sleep(0.3)           # the peer is far ahead of us
            ids = [ev.event_id async for ev in conn]
    assert ids == [f"e{i}" for i in range(300)]


async def test_large_inbound_frame_is_not_capped():
    big = orjson.dumps({"type": "conversation.item.retrieved", "event_id": "e", "item": {
        "id": "i", "type": "message", "role": "assistant", "object": "realtime.item",
        "content": [{"type": "output_audio", "audio": base64.b64encode(bytes(3 << 20)).decode()}]}})

    async def script(ws):
        await ws.send(big)
    async with Peer(script) as peer:
        async with client(peer).realtime.connect(model="m") as conn:
            ev = await conn.recv()
    assert len(big) > (1 << 22) and ev.item.content[0].audio


async def test_handlers_in_order_once_off_and_transient_errors():
    async def script(ws):
        await ws.send(created())
        await ws.send(b"garbage")
        for i in range(3):
            await ws.send(delta(i))
        await ws.close()
    async with Peer(script) as peer:
        calls, errors = [], []
        async with client(peer).realtime.connect(model="m") as conn:
            conn.on("response.output_audio.delta", lambda e: calls.append(("a", e.event_id)))

            @conn.on("response.output_audio.delta")
            async def second(e):
                calls.append(("b", e.event_id))
            conn.once("response.output_audio.delta", lambda e: calls.append(("once", e.event_id)))
            conn.on("*", lambda e: calls.append(("*", e.type)))

            def boom(e):
                raise RuntimeError("handler bug")
            conn.on("session.created", boom)
            await conn.dispatch(on_transient_error=errors.append)
        assert calls[:4] == [("*", "session.created"), ("a", "e0"), ("b", "e0"), ("once", "e0")]
        assert ("once", "e1") not in calls and ("a", "e2") in calls
        assert [type(e) for e in errors] == [RuntimeError, ProtocolError]
        conn.off("response.output_audio.delta", second)
        assert len(conn._handlers["response.output_audio.delta"]) == 1


async def test_reconnect_resends_the_last_session_update():
    async def script(ws):
        await ws.send(created())
    async with Peer(script) as peer:
        async with client(peer).realtime.connect(model="m") as conn:
            await conn.recv()
            await conn.session.update(session={"type": "realtime", "instructions": "again"})
            await conn.reconnect()
            assert (await conn.recv()).type == "session.created"
            for _ in range(100):
                if len(peer.received) == 2:
                    break
                await asyncio.sleep(0.01)
    assert [m["session"]["instructions"] for m in peer.received] == ["again", "again"]
    assert len(peer.requests) == 2


async def test_no_task_left_behind():
    before = set(asyncio.all_tasks())

    async def script(ws):
        await ws.send(created())
    async with Peer(script) as peer:
        async with client(peer).realtime.connect(model="m") as conn:
            await conn.recv()
    await asyncio.sleep(0.05)
    assert set(asyncio.all_tasks()) - before == set()


def test_secrets_stay_out_of_reprs(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    c = AsyncOpenAI()
    mgr = c.realtime.connect(model="m")
    for obj in (c, mgr, mgr._headers):
        assert SECRET not in repr(obj)
    az = AsyncAzureOpenAI(azure_endpoint="https://x.openai.azure.com", api_key=SECRET, api_version="2024-10-01-preview")
    assert SECRET not in repr(az)


def test_missing_key_is_a_clear_error(monkeypatch):
    # As openai.AsyncOpenAI(): raised when built, and it must not claim an HTTP 401 that never happened.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingCredentials, match="OPENAI_API_KEY") as info:
        AsyncOpenAI()
    assert "HTTP" not in str(info.value) and "401" not in str(info.value)
    assert "no request was made" in str(info.value)
    assert isinstance(info.value, AuthenticationError)          # existing handlers still catch it
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingCredentials, match="AZURE_OPENAI_API_KEY") as info:
        AsyncAzureOpenAI(azure_endpoint="https://x.openai.azure.com")
    assert "HTTP" not in str(info.value)


async def test_close_4000_on_ga_is_a_plain_close():
    # 4000 means "beta shape refused" only on a beta connection.
    async with Peer(lambda ws: ws.close(4000, "app said bye")) as peer:
        async with client(peer).realtime.connect(model="m") as conn:
            with pytest.raises(ConnectionClosed) as info:
                await conn.recv()
    # a plain close (not BetaShapeRefused), as websockets' own error too (what the official client raises)
    from rtfast.connection import ConnectionClosedError
    assert type(info.value) is ConnectionClosedError and isinstance(info.value, ConnectionClosed)
    assert info.value.code == 4000 and info.value.reason == "app said bye"
    assert "GA" not in str(info.value)


async def test_default_max_size_is_bounded_and_overridable():
    from rtfast.client import MAX_MESSAGE

    big = b'{"type":"x","pad":"' + b"a" * (MAX_MESSAGE + 1) + b'"}'

    async def script(ws):
        await ws.send(big)
    async with Peer(script) as peer:
        async with client(peer).realtime.connect(model="m") as conn:
            with pytest.raises(ConnectionClosed) as info:
                await conn.recv()
        assert info.value.code == 1009                          # message too big
        opts = {"max_size": None}
        async with client(peer).realtime.connect(model="m", websocket_connection_options=opts) as conn:
            assert len(await conn.recv_bytes()) == len(big)


async def _silent_server():
    """Accepts TCP and never answers the upgrade; records when the client hangs up."""
    hung_up = []

    async def handle(reader, writer):
        await reader.read()             # until the client closes
        hung_up.append(True)
        writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], hung_up


def _free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def test_connect_failures_are_typed_and_say_what_failed():
    server, port, hung_up = await _silent_server()
    try:
        mgr = connect(f"ws://127.0.0.1:{port}/v1", api_key=SECRET, proxy=None, open_timeout=0.3)
        with pytest.raises(ConnectTimeout) as info:
            await mgr.enter()
        assert isinstance(info.value, TimeoutError) and isinstance(info.value, RtfastError)
        assert f"127.0.0.1:{port}" in str(info.value) and "0.3 s" in str(info.value)
        for _ in range(50):
            if hung_up:
                break
            await asyncio.sleep(0.02)
        assert hung_up                                          # the socket was not leaked
    finally:
        server.close()
    dead = _free_port()
    with pytest.raises(ConnectError) as info:
        await connect(f"ws://127.0.0.1:{dead}/v1", api_key=SECRET, proxy=None, open_timeout=2).enter()
    assert isinstance(info.value, OSError) and not isinstance(info.value, ProxyError)
    assert f"could not connect to 127.0.0.1:{dead}" in str(info.value)
    assert info.value.errno == 111
    proxy = f"http://user:{SECRET}@127.0.0.1:{dead}"
    with pytest.raises(ProxyError) as info:
        await connect("ws://example.test/v1", api_key=SECRET, proxy=proxy, open_timeout=2).enter()
    assert f"proxy 127.0.0.1:{dead}" in str(info.value) and "example.test:80" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_base_url_env_and_ws_scheme(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    url, headers = AsyncOpenAI(api_key="k", organization="org", project="p")._realtime_target("m", None, {})
    assert url == "ws://127.0.0.1:9/v1/realtime?model=m"
    assert headers["OpenAI-Organization"] == "org" and headers["OpenAI-Project"] == "p"
    url, _ = AsyncOpenAI(api_key="k")._realtime_target(None, "call_1", {})
    assert url.endswith("/realtime?call_id=call_1")


async def test_azure_urls_and_auth():
    pre = AsyncAzureOpenAI(azure_endpoint="https://r.openai.azure.com", api_key="key",
                           api_version="2024-10-01-preview")
    url, headers = pre._realtime_target("gpt-4o-rt", None, {})
    assert url == "wss://r.openai.azure.com/openai/realtime?api-version=2024-10-01-preview&deployment=gpt-4o-rt"
    assert headers == {"api-key": "key"}
    tokens = iter(["tok1", "tok2"])
    ga = AsyncAzureOpenAI(azure_endpoint="https://r.openai.azure.com", azure_ad_token_provider=lambda: next(tokens))
    url, headers = ga._realtime_target("dep", None, {})
    assert url == "wss://r.openai.azure.com/openai/v1/realtime?model=dep"
    mgr = ga.realtime.connect(model="dep")
    # Entra tokens expire: the provider is asked at each connect, and may be async
    assert await mgr._auth() == {"Authorization": "Bearer tok1"}
    assert await mgr._auth() == {"Authorization": "Bearer tok2"}

    async def provider():
        return "atok"
    az = AsyncAzureOpenAI(azure_endpoint="https://r.openai.azure.com", azure_ad_token_provider=provider)
    assert await az.realtime.connect(model="d")._auth() == {"Authorization": "Bearer atok"}


def test_header_overrides_are_case_insensitive_and_base_url_queries_kept():
    c = AsyncOpenAI(api_key="sk-a", websocket_base_url="ws://h/v1?foo=bar",
                    default_headers={"authorization": "Bearer sk-b"})
    mgr = c.realtime.connect(model="m", extra_headers={"AUTHORIZATION": "Bearer sk-c"})
    assert mgr._headers.headers() == {"AUTHORIZATION": "Bearer sk-c"}
    assert mgr._url == "ws://h/v1/realtime?foo=bar&model=m"


async def test_generic_connect_to_a_compatible_server():
    async def script(ws):
        await ws.send(created("beta"))
    async with Peer(script) as peer:
        async with connect(peer.url + "/realtime", api_key="k", generation="beta") as conn:
            assert (await conn.recv()).type == "session.created"
            assert str(conn.state.output_format) == "pcmu/8000"
    assert peer.requests[0].headers["OpenAI-Beta"] == "realtime=v1"


async def test_official_handler_names_and_unhandled_server_errors():
    async def script(ws):
        await ws.send(created())
        await ws.send(orjson.dumps({"type": "error", "event_id": "e9", "error": {
            "type": "invalid_request_error", "code": "bad_thing", "message": "that was wrong"}}))
        await ws.close()
    async with Peer(script) as peer:
        seen, errors = [], []
        async with client(peer).realtime.connect(model="m") as conn:
            conn.on("event", lambda e: seen.append(e.type))           # the official catch-all key
            await conn.dispatch_events(on_transient_error=errors.append)
    assert seen == ["session.created", "error"]
    assert len(errors) == 1 and "that was wrong" in str(errors[0])


async def test_dispatch_events_ends_on_an_error_nobody_handles_as_the_official_loop():
    async def script(ws):
        await ws.send(created())
        await ws.send(orjson.dumps({"type": "error", "event_id": "e9", "error": {
            "type": "invalid_request_error", "code": "bad_thing", "message": "that was wrong"}}))
        await ws.send(created())
        await ws.close()
    for handlers, raises in (({}, True), ({"session.created": 1}, True), ({"event": 1}, False),
                             ({"*": 1}, False), ({"error": 1}, False)):
        async with Peer(script) as peer:
            seen = []
            async with client(peer).realtime.connect(model="m") as conn:
                for key in handlers:
                    conn.on(key, lambda e: seen.append(e.type))
                if raises:
                    with pytest.raises(rtfast.OpenAIError, match="WebSocket error: .*that was wrong"):
                        await conn.dispatch_events()
                else:
                    await conn.dispatch_events()
        # the loop ended at the error (before the second session.created), or handled it and went on
        if raises:
            assert seen == (["session.created"] if handlers else []), handlers
        else:
            assert "error" in seen and seen.count("session.created") == (2 if handlers != {"error": 1} else 0)
    async with Peer(script) as peer:                # dispatch(): rtfast's own loop reports and goes on
        errors = []
        async with client(peer).realtime.connect(model="m") as conn:
            await conn.dispatch(on_transient_error=errors.append)
        assert len(errors) == 1 and "that was wrong" in str(errors[0])


async def test_a_close_without_status_ends_iteration_quietly():
    async def script(ws):
        await ws.send(created())
        ws.protocol.send_close()          # an empty close frame: received as code 1005
        ws.send_data()
    async with Peer(script) as peer:
        async with client(peer).realtime.connect(model="m") as conn:
            assert [e.type async for e in conn] == ["session.created"]
