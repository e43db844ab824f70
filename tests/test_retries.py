"""REST calls are tried again as the official client tries them (rtfast._rest): the same
statuses, headers and count, checked beside the official client against the same fakes."""

from __future__ import annotations

import asyncio
import socket

import pytest

import rtfast
from carrier_fakes import FakeServer, Reply
from rtfast._rest import retry_delay
from rtfast.errors import ConnectError, ProxyError, handshake_error

openai = pytest.importorskip("openai")

EP = {"id": "whe_1", "object": "webhook_endpoint", "created_at": 1, "name": "n", "url": "https://e.com/h",
      "event_types": ["realtime.call.incoming"]}
FAST = {"retry-after-ms": "5"}          # (the server's own delay: keeps the test quick)


class Flaky:
    """Answers each request with the next of ``replies`` (then 200), counting requests."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.count = 0

    def __call__(self, req):
        self.count += 1
        return self.replies.pop(0) if self.replies else Reply(200, EP)


def client(kind, base, **kw):
    cls = openai.AsyncOpenAI if kind == "openai" else rtfast.AsyncOpenAI
    return cls(api_key="sk-retry", base_url=base, **kw)


@pytest.mark.parametrize("replies,max_retries,outcome", [
    ([Reply(500, b"", FAST)], 2, 2),                                   # retried, then fine
    ([Reply(429, b"", FAST), Reply(503, b"", FAST)], 2, 3),
    ([Reply(429, b"", FAST)] * 3, 2, "RateLimitError"),              # out of retries
    ([Reply(408, b"", FAST), Reply(409, b"", FAST)], 2, 3),
    ([Reply(500, b"", FAST)], 0, "InternalServerError"),             # max_retries=0: never
    ([Reply(400, b"", FAST)], 2, "BadRequestError"),                 # not a status worth retrying
    ([Reply(404, b"", {**FAST, "x-should-retry": "true"})], 2, 2),   # the server says retry
    ([Reply(503, b"", {**FAST, "x-should-retry": "false"})], 2, "InternalServerError"),
    ([Reply(503, b"", {"retry-after": "121"})], 2, "InternalServerError"),  # asks too long: no
])
async def test_the_official_retry_rule(replies, max_retries, outcome):
    results = {}
    for kind in ("rtfast", "openai"):
        flaky = Flaky(*replies)
        async with FakeServer(flaky) as fake:
            w = client(kind, fake.base_url + "/v1", max_retries=max_retries).webhooks
            try:
                await w.retrieve("whe_1")
                results[kind] = flaky.count
            except Exception as exc:
                results[kind] = (type(exc).__name__, flaky.count)
    assert results["rtfast"] == results["openai"]
    assert results["rtfast"] == outcome if isinstance(outcome, int) else results["rtfast"][0] == outcome


async def test_each_rest_path_retries():
    """client_secrets (urllib), calls (urllib), live (rtfast.http), webhooks (rtfast.http)."""
    secret = {"value": "ek_1", "expires_at": 1, "session": {"type": "realtime"}}
    flaky = Flaky(Reply(503, b"", FAST), Reply(200, secret), Reply(503, b"", FAST), Reply(200, b""),
                  Reply(503, b"", FAST), Reply(200, {"session": {"id": "s"}, "transport": {"type": "webrtc"}}))
    async with FakeServer(flaky) as fake:
        c = client("rtfast", fake.base_url + "/v1")
        assert (await c.realtime.client_secrets.create()).value == "ek_1"
        assert await c.realtime.calls.hangup("rtc_1") is None
        await c.live.create(session={"model": "gpt-live-1"}, transport={"type": "webrtc", "sdp": "v=0"})
    assert flaky.count == 6


async def test_a_connection_refused_is_tried_again_then_raised():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(rtfast.APIConnectionError):
        await client("rtfast", base, max_retries=1).webhooks.retrieve("whe_1")
    assert 0.375 * 0.99 <= loop.time() - t0 < 3           # one wait: 0.5 s less up to 25 % jitter


def test_retry_delay():
    e = handshake_error(429, "m", b"", {"retry-after": "2"})
    assert retry_delay(e, 0, 2) == 2.0 and retry_delay(e, 2, 2) is None
    assert retry_delay(handshake_error(429, "m", b"", {"retry-after-ms": "1500", "retry-after": "9"}), 0, 2) == 1.5
    for taken, top in ((0, 0.5), (1, 1.0), (2, 2.0), (5, 8.0), (50, 8.0)):   # backoff, capped
        d = retry_delay(handshake_error(500, "m"), taken, 99)
        assert 0.75 * top <= d <= top
    assert retry_delay(handshake_error(503, "m", b"", {"retry-after": "1e999"}), 0, 2) is None  # overflow: too long
    for unreadable in ("Fri, 31 Dec 99999 23:59:59 GMT", "soon", ""):     # a date it cannot read: backoff
        assert 0.375 <= retry_delay(handshake_error(503, "m", b"", {"retry-after": unreadable}), 0, 2) <= 0.5
    assert retry_delay(ConnectError("x"), 0, 2) is not None and retry_delay(ProxyError("x"), 0, 2) is not None
    assert retry_delay(ValueError("x"), 0, 2) is None and retry_delay(handshake_error(401, "m"), 0, 2) is None


def test_max_retries_on_the_client():
    c = rtfast.AsyncOpenAI(api_key="sk-x")
    assert c.max_retries == 2 and c.with_options(max_retries=5).max_retries == 5 and c.max_retries == 2
    assert rtfast.AsyncAzureOpenAI(api_key="k", azure_endpoint="https://x", max_retries=0).max_retries == 0
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match="max_retries"):
            rtfast.AsyncOpenAI(api_key="sk-x", max_retries=bad)


async def test_an_api_key_provider_is_asked_before_each_request_and_connect():
    """The official client's ``api_key=async () -> str``: rtfast asked for it each time too (it
    sent ``Bearer <function ...>`` before, a silent 401)."""
    keys = iter(f"sk-rotating-{i}" for i in range(100))

    async def provider():
        return next(keys)

    seen = []

    def api(req):
        seen.append(req.headers["authorization"])
        return Reply(200, EP)

    async with FakeServer(api) as fake:
        for kind in ("rtfast", "openai"):
            c = client(kind, fake.base_url + "/v1", max_retries=0).copy(api_key=provider)
            assert c.api_key == ""
            await c.webhooks.retrieve("whe_1")
            await c.webhooks.retrieve("whe_1")
            assert c.api_key == seen[-1][7:]             # the key it last gave
    assert seen == [f"Bearer sk-rotating-{i}" for i in range(4)]
    from test_client import Peer, created

    async def script(ws):
        await ws.send(created())
    async with Peer(script) as peer:                    # the websocket asks it too
        c = rtfast.AsyncOpenAI(api_key=provider, websocket_base_url=peer.url)
        async with c.realtime.connect(model="gpt-realtime") as conn:
            assert (await conn.recv()).type == "session.created"
        assert peer.requests[0].headers["Authorization"] == "Bearer sk-rotating-4"
    bad = rtfast.AsyncOpenAI(api_key=lambda: "", base_url=fake.base_url + "/v1")
    with pytest.raises(rtfast.errors.MissingCredentials, match="non-empty"):
        await bad.webhooks.retrieve("whe_1")
    assert "function" not in repr(bad) and "lambda" not in repr(bad)


async def test_a_timeout_object_as_the_official_client_takes_it():
    """``timeout=openai.Timeout(...)`` / httpx's, on the client or a call: its read part is the
    deadline (it was a TypeError at the first REST call)."""
    from rtfast.http import seconds

    assert seconds(3) == 3.0 and seconds(openai.Timeout(10)) == 10.0 and seconds(None) is None
    assert seconds(openai.Timeout(30.0, connect=5.0)) == 30.0 and seconds(openai.Timeout(None)) is None
    assert seconds(openai.Timeout(None, connect=2.0)) is None          # no read limit: none, as officially
    with pytest.raises(TypeError, match="timeout must be seconds, None or a Timeout"):
        seconds("10")

    async def silent(reader, writer):
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with server:
        base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        loop = asyncio.get_running_loop()
        for make in (lambda: rtfast.AsyncOpenAI(api_key="k", base_url=base, max_retries=0,
                                                timeout=openai.Timeout(0.2, connect=0.1)),
                     lambda: rtfast.AsyncOpenAI(api_key="k", base_url=base, max_retries=0)):
            c = make()
            t0 = loop.time()
            with pytest.raises(rtfast.APITimeoutError):
                if c.timeout == 60.0:           # the call's own Timeout over the client's
                    await c.webhooks.retrieve("whe_1", timeout=openai.Timeout(0.2))
                else:
                    await c.realtime.client_secrets.create()
            assert loop.time() - t0 < 5


async def test_no_timeout_at_all_and_a_key_asked_again_for_each_attempt():
    """``timeout=None`` is no limit (it was a TypeError for a while); a retry asks the key
    provider again, as the official client does before each attempt."""
    keys = iter(f"sk-attempt-{i}" for i in range(100))

    async def provider():
        return next(keys)

    for kind in ("rtfast", "openai"):
        seen = []

        def api(req):
            seen.append(req.headers["authorization"])
            return Reply(503, b"", FAST) if len(seen) == 1 else Reply(200, EP)

        async with FakeServer(api) as fake:
            c = client(kind, fake.base_url + "/v1", timeout=None).copy(api_key=provider)
            assert (await c.webhooks.retrieve("whe_1")).id == "whe_1"
        assert seen[0] != seen[1] and all(h.startswith("Bearer sk-attempt-") for h in seen), kind
