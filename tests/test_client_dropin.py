"""Drop-in behaviour beside the official ``openai`` client (issue 15, section 3): reconnecting,
the connection manager before connecting, http(s) websocket base URLs, the client's lifecycle and
copies, translations and transcription sessions. Each scenario runs through both clients against
the embedded server (or a loopback peer) and compares what they do."""

from __future__ import annotations

import asyncio
import http.server
import threading

import orjson
import pytest

import rtfast
from rtfast.client import WebSocketConnectionClosedError, WebSocketQueueFullError
from rtfast.errors import ConnectionClosed
from rtfast.server import RealtimeServer
from test_client import Peer, created

openai = pytest.importorskip("openai")
from openai._exceptions import WebSocketConnectionClosedError as OfficialClosedWithUnsent  # noqa: E402
from openai._exceptions import WebSocketQueueFullError as OfficialQueueFull  # noqa: E402

KINDS = ["rtfast", "openai"]
ITEM = {"type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "queued"}]}}


def make_client(kind, base_url, **kw):
    cls = rtfast.AsyncOpenAI if kind == "rtfast" else openai.AsyncOpenAI
    return cls(api_key="sk-test", websocket_base_url=base_url, **kw)


def dropping_server(**kw):
    """The first connection drops (no close frame) after its second event; later ones behave."""
    return RealtimeServer(close_after_events=2, close_code=None, misbehave_connections=1, **kw)


# -- reconnecting ---------------------------------------------------------------------------------


async def reconnect_scenario(kind):
    seen, sends = [], []
    async with dropping_server() as server:
        conn_box = []

        def hook(event):
            seen.append(event)
            conn = conn_box[0]

            async def send_while_reconnecting():
                sends.append(await conn.send(ITEM))            # queued, sent on the new connection
                try:
                    await conn.send({"type": "session.update", "session": {"instructions": "x" * 1000}})
                except Exception as exc:                        # over max_queue_size: refused
                    sends.append(type(exc).__name__)
            asyncio.get_running_loop().create_task(send_while_reconnecting())
            return {"extra_query": {"tag": "second"}}

        mgr = make_client(kind, server.base_url).realtime.connect(
            model="gpt-realtime", extra_query={"tag": "first"}, on_reconnecting=hook,
            initial_delay=0.05, max_delay=0.1, max_queue_size=600)
        types = []
        async with mgr as conn:
            conn_box.append(conn)
            async for event in conn:
                types.append(event.type)
                if event.type == "session.created" and len(server.connections) == 1:
                    await conn.send({**ITEM, "item": {**ITEM["item"], "content": [{"type": "input_text",
                                                                                   "text": "before"}]}})
                if len(types) == 4:
                    break
        queries = [c.query for c in server.connections]
        received = [[m["type"] for m in r] for r in server.received]
    return types, seen, sends, queries, received


async def test_reconnect_after_a_drop_like_the_official_client():
    results = {kind: await reconnect_scenario(kind) for kind in KINDS}
    ours, theirs = results["rtfast"], results["openai"]
    types, seen, sends, queries, received = ours
    # dropped after session.created + item.added; the new connection: session.created, then the
    # answer to the message queued while reconnecting
    assert types == ["session.created", "conversation.item.added", "session.created", "conversation.item.added"]
    assert len(seen) == 1
    event = seen[0]
    assert (event.attempt, event.max_attempts, event.close_code) == (1, 5, 1006)
    assert event.extra_query == {"tag": "first"} and 0.05 * 0.75 <= event.delay <= 0.05
    assert [q["tag"] for q in queries] == ["first", "second"]          # the hook's override was used
    assert received[1] == ["conversation.item.create"]
    assert sends == [None, "WebSocketQueueFullError"]
    # the official client, same server, same script: the same
    t_types, t_seen, t_sends, t_queries, t_received = theirs
    assert t_types == types and t_queries == queries and t_received == received and t_sends == sends
    assert [(e.attempt, e.max_attempts, e.close_code, e.extra_query) for e in t_seen] == \
           [(e.attempt, e.max_attempts, e.close_code, e.extra_query) for e in seen]


@pytest.mark.parametrize("kind", KINDS)
async def test_no_hook_no_reconnect_and_abort(kind):
    for hook in (None, lambda event: {"abort": True}):
        async with dropping_server() as server:
            with pytest.raises(Exception) as info:
                async with make_client(kind, server.base_url).realtime.connect(
                        model="m", on_reconnecting=hook, initial_delay=0.01) as conn:
                    async for event in conn:
                        if event.type == "session.created":
                            await conn.send(ITEM)
            assert len(server.connections) == 1
        if kind == "rtfast":
            assert isinstance(info.value, ConnectionClosed) and info.value.code == 1006
        else:
            assert type(info.value).__name__ == "ConnectionClosedError"


async def closing_scenario(kind, code, reason):
    """What user code written against websockets' exceptions sees when the server closes."""
    import websockets.exceptions as wsx

    async def script(ws):
        await ws.send(created())
        await ws.close(code, reason)
    out = []
    async with Peer(script) as peer:
        async with make_client(kind, peer.url).realtime.connect(model="m") as conn:
            try:
                async for event in conn:
                    out.append(event.type)
                out.append("ended")
            except wsx.ConnectionClosedError as exc:            # what the official client raises
                out.append(("error", exc.rcvd.code, exc.rcvd.reason))
            try:
                await conn.recv()
            except wsx.ConnectionClosed as exc:
                out.append((type(exc).__name__, exc.rcvd.code if exc.rcvd else None,
                            isinstance(exc, rtfast.ConnectionClosed)))
    return out


@pytest.mark.parametrize("code,reason", [(1000, ""), (1001, "going away"), (1011, "boom"), (4001, "custom")])
async def test_a_close_is_websockets_own_exception_as_with_the_official_client(code, reason):
    ours, theirs = await closing_scenario("rtfast", code, reason), await closing_scenario("openai", code, reason)
    assert ours[:2] == theirs[:2] == ["session.created", "ended" if code < 1002 else ("error", code, reason)]
    name = "ConnectionClosedOK" if code < 1002 else "ConnectionClosedError"
    assert ours[2] == (name, code, True) and theirs[2] == (name, code, False)   # (and rtfast's own too)


@pytest.mark.parametrize("kind", KINDS)
async def test_giving_up_with_queued_messages_reports_them(kind):
    """Every attempt fails (the override's empty key is refused): the queued frame is reported."""
    async with dropping_server() as server:
        def hook(event):
            asyncio.get_running_loop().create_task(conn.send(ITEM))
            return {"extra_headers": {"Authorization": "Bearer "}}
        async with make_client(kind, server.base_url).realtime.connect(
                model="m", on_reconnecting=hook, max_retries=2, initial_delay=0.01) as conn:
            with pytest.raises(WebSocketConnectionClosedError if kind == "rtfast" else OfficialClosedWithUnsent) as info:
                async for event in conn:
                    if event.type == "session.created":
                        await conn.send(ITEM)
        assert [orjson.loads(m)["type"] for m in info.value.unsent_messages] == ["conversation.item.create"] * 2
        assert len(server.connections) == 1


def test_reconnecting_event_repr_keeps_headers_out():
    event = rtfast.ReconnectingEvent(attempt=1, max_attempts=5, delay=0.5, close_code=1006, extra_query={},
                                     extra_headers={"Authorization": "Bearer sk-secret"})
    assert "sk-secret" not in repr(event) and event.extra_headers["Authorization"] == "Bearer sk-secret"


def test_queue_errors_are_typed():
    assert issubclass(WebSocketQueueFullError, rtfast.RtfastError)
    assert issubclass(WebSocketConnectionClosedError, rtfast.ConnectionClosed)
    assert OfficialQueueFull.__name__ == WebSocketQueueFullError.__name__


# -- the manager before connecting ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_manager_on_once_off_and_send_before_connecting(kind):
    calls = []
    async with RealtimeServer() as server:
        mgr = make_client(kind, server.base_url).realtime.connect(model="m")

        def never(event):
            calls.append("never")

        assert mgr.on("session.created", lambda e: calls.append("created")) is mgr
        mgr.on("session.created", never)
        assert mgr.off("session.created", never) is mgr

        @mgr.once("conversation.item.added")
        async def added(event):
            calls.append("added:" + event.item.content[0].text)
            await conn.send(ITEM)                       # a second item: the once-handler is gone

        @mgr.on("conversation.item.done")
        async def done(event):
            calls.append("done")
            if calls.count("done") == 2:
                await conn.close()

        mgr.send({**ITEM, "item": {**ITEM["item"], "content": [{"type": "input_text", "text": "early"}]}})
        async with mgr as conn:
            await asyncio.wait_for(conn.dispatch_events(), 5)
        assert server.received[0][0]["item"]["content"][0]["text"] == "early"   # sent first, on connect
    assert calls == ["created", "added:early", "done", "done"]


@pytest.mark.parametrize("kind", KINDS)
async def test_manager_send_is_bounded(kind):
    mgr = make_client(kind, "ws://127.0.0.1:9/v1").realtime.connect(model="m", max_queue_size=100)
    mgr.send({"type": "response.create"})
    with pytest.raises(WebSocketQueueFullError if kind == "rtfast" else OfficialQueueFull):
        mgr.send({"type": "session.update", "session": {"instructions": "x" * 200}})


# -- URLs and the client ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_http_websocket_base_url_maps_to_ws(kind):
    async with RealtimeServer() as server:
        base = server.base_url.replace("ws://", "http://")
        async with make_client(kind, base).realtime.connect(model="m") as conn:
            assert (await conn.recv()).type == "session.created"


def test_https_websocket_base_url_maps_to_wss():
    client = rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url="https://example.test/v1")
    assert client.realtime.connect(model="m")._url == "wss://example.test/v1/realtime?model=m"
    assert rtfast.connect("http://h:1/v1/realtime")._url == "ws://h:1/v1/realtime"


@pytest.mark.parametrize("kind", KINDS)
async def test_client_api_key_close_async_with_and_copies(kind):
    async with RealtimeServer() as server:
        cls = rtfast.AsyncOpenAI if kind == "rtfast" else openai.AsyncOpenAI
        async with cls(api_key="sk-one", websocket_base_url=server.base_url, organization="org-1") as client:
            assert client.api_key == "sk-one" and not client.is_closed()
            other = client.with_options(api_key="sk-two", default_headers={"X-Extra": "1"})
            third = client.copy(set_default_headers={"X-Only": "2"})
            assert other.api_key == "sk-two" and client.api_key == "sk-one" and other.organization == "org-1"
            assert "sk-one" not in repr(client) and "sk-two" not in repr(other)
            for c in (client, other, third):
                async with c.realtime.connect(model="m") as conn:
                    await conn.recv()
            with pytest.raises(ValueError, match="mutually exclusive"):
                client.copy(default_headers={"a": "1"}, set_default_headers={"b": "2"})
        assert client.is_closed()
    auth = [c.headers.get("authorization") or c.headers.get("Authorization") for c in server.connections]
    assert auth == ["Bearer sk-one", "Bearer sk-two", "Bearer sk-one"]
    lowered = [{k.lower(): v for k, v in c.headers.items()} for c in server.connections]
    assert lowered[1]["x-extra"] == "1" and "x-extra" not in lowered[0] and lowered[2]["x-only"] == "2"


def test_copy_refuses_options_it_does_not_have():
    with pytest.raises(TypeError, match="http_client"):
        rtfast.AsyncOpenAI(api_key="k").copy(http_client=object())


# -- translations ----------------------------------------------------------------------------------


async def test_translations_connect_like_the_official_client():
    got = {}
    for kind in KINDS:
        async def script(ws):
            await ws.send(orjson.dumps({"type": "session.created", "event_id": "e0",
                                        "session": {"id": "s1", "model": "gpt-realtime-translate"}}).decode())
        async with Peer(script) as peer:
            async with make_client(kind, peer.url).realtime.translations.connect(
                    model="gpt-realtime-translate", extra_query={"x": "1"}) as conn:
                first = await conn.recv()
                assert first.type == "session.created" and first.session.id == "s1"
                await conn.session.update(session={"audio": {"output": {"language": "fr"}}})
                await conn.session.input_audio_buffer.append(audio="AAAA", event_id="a1")
                await conn.session.close()
                for _ in range(200):
                    if len(peer.received) == 3:
                        break
                    await asyncio.sleep(0.01)
            got[kind] = (peer.requests[0].path, peer.received)
    assert got["rtfast"] == got["openai"]
    assert got["rtfast"][0] == "/v1/realtime/translations?model=gpt-realtime-translate&x=1"
    assert [m["type"] for m in got["rtfast"][1]] == ["session.update", "session.input_audio_buffer.append",
                                                     "session.close"]


class _Rest(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):
        body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        payload = orjson.dumps({"value": "ek_test", "expires_at": 1, "client_secret": {"value": "ek_test",
                                "expires_at": 1}, "session": body.get("session")})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


async def test_translation_client_secrets_and_beta_transcription_sessions_like_the_official_client():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Rest)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        for kind in KINDS:
            cls = rtfast.AsyncOpenAI if kind == "rtfast" else openai.AsyncOpenAI
            client = cls(api_key="sk-test", base_url=base, max_retries=0) if kind == "openai" else \
                cls(api_key="sk-test", base_url=base)
            secret = await client.realtime.translations.client_secrets.create(
                session={"model": "gpt-realtime-translate"}, expires_after={"anchor": "created_at", "seconds": 60})
            session = await client.beta.realtime.transcription_sessions.create(
                input_audio_format="g711_ulaw", input_audio_transcription={"model": "gpt-4o-transcribe"},
                extra_body={"x": 1})
            value = secret["value"] if kind == "rtfast" else secret.value
            assert value == "ek_test" and (session["client_secret"]["value"] if kind == "rtfast"
                                           else session.client_secret.value) == "ek_test"
    finally:
        httpd.shutdown()
    ours, theirs = _Rest.seen[:2], _Rest.seen[2:]
    for (p1, h1, b1), (p2, h2, b2) in zip(ours, theirs):
        assert (p1, b1) == (p2, b2)
        for header in ("authorization", "openai-beta", "content-type"):
            assert h1.get(header) == h2.get(header), header
    assert [p for p, _, _ in ours] == ["/v1/realtime/translations/client_secrets", "/v1/realtime/transcription_sessions"]
