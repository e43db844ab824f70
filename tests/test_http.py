"""rtfast.http: the small asyncio HTTP/1.1 client, against real loopback servers."""

import asyncio
import base64
import socket
import time

import pytest

from carrier_fakes import FakeServer, Reply
from rtfast.errors import HttpError, RtfastError
from rtfast.http import HttpClient, HttpResponse, basic_auth, bearer_auth, form_body, json_body, quote_segment


class RawServer:
    """Reads one request head (and its Content-Length body), then plays ``script``:
    a list of bytes to write and floats to sleep; closes the connection at the end."""

    def __init__(self, script):
        self.script = script
        self.heads = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            for step in self.script:
                if isinstance(step, float):
                    await asyncio.sleep(step)
                else:
                    writer.write(step)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def refused_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def test_get_content_length_and_lowercase_headers():
    async with FakeServer(lambda r: Reply(200, {"ok": True, "path": r.path}, {"X-Thing": "A"})) as srv:
        http = HttpClient()
        resp = await http.request("GET", srv.base_url + "/a/b?x=1")
        await http.aclose()
    assert isinstance(resp, HttpResponse)
    assert resp.status == 200
    assert resp.headers["x-thing"] == "A" and resp.headers["content-type"] == "application/json"
    assert resp.json() == {"ok": True, "path": "/a/b"}
    req = srv.requests[0]
    assert req.method == "GET" and req.query == {"x": "1"}
    assert req.headers["host"] == f"127.0.0.1:{srv.port}"
    assert "content-length" not in req.headers  # a GET without a body says nothing about one


async def test_json_and_form_bodies_arrive_intact():
    async with FakeServer(lambda r: Reply(201, r.body, {"Content-Type": r.headers["content-type"]})) as srv:
        http = HttpClient()
        h, b = json_body({"to": "+1555", "n": [1, 2], "é": "ü"})
        resp = await http.request("POST", srv.base_url + "/j", headers={**h, **bearer_auth("tok")}, body=b)
        assert resp.status == 201 and resp.json() == {"to": "+1555", "n": [1, 2], "é": "ü"}
        h, b = form_body({"Twiml": "<Response><Dial>+1 & 2</Dial></Response>", "Status": "completed"})
        resp = await http.request("POST", srv.base_url + "/f", headers={**h, **basic_auth("AC1", "p:w")}, body=b)
    assert srv.requests[0].headers["authorization"] == "Bearer tok"
    assert srv.requests[0].headers["content-length"] == str(len(srv.requests[0].body))
    assert srv.requests[1].form == {"Twiml": "<Response><Dial>+1 & 2</Dial></Response>", "Status": "completed"}
    auth = srv.requests[1].headers["authorization"]
    assert base64.b64decode(auth.split()[1]) == b"AC1:p:w"


async def test_post_without_body_sends_content_length_zero():
    async with FakeServer(lambda r: Reply(200, b"")) as srv:
        resp = await HttpClient().request("POST", srv.base_url + "/")
    assert resp.status == 200 and resp.body == b""
    assert srv.requests[0].headers["content-length"] == "0"


async def test_chunked_response_is_reassembled():
    body = b'{"message": "' + b"x" * 1000 + b'"}'
    async with FakeServer(lambda r: Reply(200, body, {"Content-Type": "application/json"}), chunked=True) as srv:
        resp = await HttpClient().request("GET", srv.base_url + "/")
    assert resp.body == body
    assert resp.headers["transfer-encoding"] == "chunked"


async def test_chunk_extensions_and_trailers():
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;name=v\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
    async with RawServer([raw]) as srv:
        resp = await HttpClient().request("GET", srv.url)
    assert resp.body == b"hello world"


async def test_body_until_close_when_no_length():
    async with RawServer([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ", 0.05, b"part two"]) as srv:
        resp = await HttpClient().request("GET", srv.url)
    assert resp.body == b"part one, part two"


async def test_error_status_is_returned_not_raised():
    async with FakeServer(lambda r: Reply(404, {"error": "not found"})) as srv:
        resp = await HttpClient().request("DELETE", srv.base_url + "/x/")
    assert resp.status == 404 and resp.json() == {"error": "not found"}


async def test_no_body_for_204_and_head():
    async with RawServer([b"HTTP/1.1 204 No Content\r\n\r\n", 5.0]) as srv:
        t0 = time.monotonic()
        resp = await HttpClient().request("PUT", srv.url, body=b"{}", timeout=3)
    # a 204 has no body even though the server keeps the connection open
    assert resp.status == 204 and resp.body == b"" and time.monotonic() - t0 < 2


async def test_interim_100_continue_is_skipped():
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with RawServer([raw]) as srv:
        resp = await HttpClient().request("POST", srv.url, body=b"x")
    assert resp.status == 200 and resp.body == b"ok"


async def test_repeated_headers_are_joined():
    raw = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n"
    async with RawServer([raw]) as srv:
        resp = await HttpClient().request("GET", srv.url)
    assert resp.headers["set-cookie"] == "a=1, b=2"


async def test_timeout_when_server_never_answers():
    async with FakeServer(lambda r: Reply(200), hang=True) as srv:
        t0 = time.monotonic()
        with pytest.raises(HttpError) as info:
            await HttpClient().request("GET", srv.base_url + "/slow", timeout=0.3)
        elapsed = time.monotonic() - t0
    assert 0.25 < elapsed < 3.0
    assert info.value.reason == "timeout" and info.value.host == f"127.0.0.1:{srv.port}"
    assert "no response within 0.3 s" in str(info.value)
    assert isinstance(info.value, RtfastError)


async def test_timeout_covers_a_slow_body():
    async with RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 5.0]) as srv:
        with pytest.raises(HttpError) as info:
            await HttpClient().request("GET", srv.url, timeout=0.3)
    assert info.value.reason == "timeout"


async def test_refused_connection_names_host_never_credentials_or_path():
    port = refused_port()
    t0 = time.monotonic()
    with pytest.raises(HttpError) as info:
        await HttpClient().request("GET", f"http://user:hunter2secret@127.0.0.1:{port}/private/path?token=abc123",
                                   timeout=2)
    assert time.monotonic() - t0 < 2
    msg = str(info.value)
    assert info.value.reason == "connect" and f"127.0.0.1:{port}" in msg
    for secret in ("hunter2secret", "user:", "private", "abc123"):
        assert secret not in msg and secret not in repr(info.value)


async def test_userinfo_in_url_becomes_basic_auth():
    async with FakeServer(lambda r: Reply(200)) as srv:
        await HttpClient().request("GET", f"http://AC1:s%40cret@127.0.0.1:{srv.port}/")
    assert base64.b64decode(srv.requests[0].headers["authorization"].split()[1]) == b"AC1:s@cret"


@pytest.mark.parametrize("raw, what", [
    (b"HTTP/1.1 abc OK\r\n\r\n", "status line"),
    (b"SIP/2.0 200 OK\r\n\r\n", "status line"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", "content-length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd", "content-length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY", "CRLF"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "transfer-encoding"),
])
async def test_malformed_responses(raw, what):
    async with RawServer([raw]) as srv:
        with pytest.raises(HttpError) as info:
            await HttpClient().request("GET", srv.url + "/p", timeout=2)
    assert info.value.reason == "malformed", str(info.value)
    assert what in str(info.value)


async def test_connection_closed_mid_body():
    async with RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"]) as srv:
        with pytest.raises(HttpError) as info:
            await HttpClient().request("GET", srv.url, timeout=2)
    assert info.value.reason == "closed"


async def test_closed_before_any_response():
    async with RawServer([]) as srv:
        with pytest.raises(HttpError) as info:
            await HttpClient().request("GET", srv.url, timeout=2)
    assert info.value.reason == "closed"


async def test_body_limit_is_enforced():
    big = b"y" * 5000
    async with FakeServer(lambda r: Reply(200, big)) as srv:
        with pytest.raises(HttpError) as info:
            await HttpClient(max_body=1000).request("GET", srv.base_url)
        assert info.value.reason == "too_large"
    async with FakeServer(lambda r: Reply(200, big), chunked=True) as srv:
        with pytest.raises(HttpError) as info:
            await HttpClient(max_body=1000).request("GET", srv.base_url)
        assert info.value.reason == "too_large"
    async with RawServer([b"HTTP/1.1 200 OK\r\n\r\n" + big]) as srv:
        with pytest.raises(HttpError) as info:
            await HttpClient(max_body=1000).request("GET", srv.url)
        assert info.value.reason == "too_large"


async def test_huge_header_is_refused():
    async with RawServer([b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100_000 + b"\r\n\r\n"]) as srv:
        with pytest.raises(HttpError) as info:
            await HttpClient().request("GET", srv.url, timeout=2)
    assert info.value.reason == "malformed"


async def test_bad_requests_are_refused_before_sending():
    http = HttpClient()
    with pytest.raises(ValueError, match="scheme"):
        await http.request("GET", "ftp://127.0.0.1/")
    with pytest.raises(ValueError, match="no host"):
        await http.request("GET", "http:///path")
    with pytest.raises(ValueError, match="CR, LF"):
        await http.request("GET", "http://127.0.0.1:9/", headers={"X": "a\r\nInjected: 1"})
    with pytest.raises(ValueError, match="method"):
        await http.request("GE T", "http://127.0.0.1:9/")
    with pytest.raises(TypeError, match="bytes"):
        await http.request("POST", "http://127.0.0.1:9/", body="text")


async def test_aclose_ends_in_flight_requests_and_refuses_more():
    async with FakeServer(lambda r: Reply(200), hang=True) as srv:
        http = HttpClient()
        task = asyncio.create_task(http.request("GET", srv.base_url, timeout=30))
        while not srv.requests:
            await asyncio.sleep(0.01)
        await http.aclose()
        # the request fails with a typed error; the caller's own task is not cancelled
        with pytest.raises(HttpError) as info:
            await task
        assert info.value.reason == "closed" and not task.cancelled()
        with pytest.raises(RuntimeError, match="closed"):
            await http.request("GET", srv.base_url)


async def test_cancelling_the_caller_cancels_the_request():
    async with FakeServer(lambda r: Reply(200), hang=True) as srv:
        http = HttpClient()
        task = asyncio.create_task(http.request("GET", srv.base_url, timeout=30))
        while not srv.requests:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        assert not http._inflight


async def test_http_through_a_proxy_uses_absolute_form():
    async with FakeServer(lambda r: Reply(200, b"via proxy")) as proxy:
        http = HttpClient(proxy=f"http://pu:pp@127.0.0.1:{proxy.port}")
        resp = await http.request("GET", "http://carrier.example:8080/v1/calls?x=1")
    assert resp.body == b"via proxy"
    req = proxy.requests[0]
    assert req.path == "/v1/calls" and req.headers["host"] == "carrier.example:8080"
    assert base64.b64decode(req.headers["proxy-authorization"].split()[1]) == b"pu:pp"


async def test_https_connect_refused_by_proxy():
    async with RawServer([b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"]) as proxy:
        with pytest.raises(HttpError) as info:
            await HttpClient(proxy=proxy.url).request("GET", "https://api.twilio.com/x", timeout=2)
    assert proxy.heads[0].startswith(b"CONNECT api.twilio.com:443 HTTP/1.1\r\n")
    assert info.value.reason == "connect" and "407" in str(info.value)


def test_helpers():
    assert basic_auth("a", "b") == {"Authorization": "Basic YTpi"}
    assert bearer_auth("t") == {"Authorization": "Bearer t"}
    assert quote_segment("v3:a/b+c=") == "v3:a%2Fb%2Bc%3D"
    assert "secret" not in repr(HttpClient(proxy="http://u:secret@127.0.0.1:3128"))
    assert repr(HttpResponse(200, {}, b"abc")) == "HttpResponse(status=200, 3 bytes)"


# -- TLS (a throwaway self-signed certificate made with the openssl CLI) ---------------------------

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl CLI to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


class TlsServer:
    def __init__(self, cert, key, body=b'{"ok": true}'):
        import ssl

        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.body = body
        self.heads = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ctx)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer):
        try:
            self.heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(self.body), self.body))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()


class TunnelProxy:
    """Answers CONNECT with 200 and pipes bytes to the target."""

    def __init__(self):
        self.heads = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        host, port = head.split(b" ")[1].decode().rsplit(":", 1)
        up_r, up_w = await asyncio.open_connection("127.0.0.1", int(port))  # every test host is local
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))


async def test_https_with_a_trusted_certificate(tls_files):
    import ssl

    cert, key = tls_files
    async with TlsServer(cert, key) as srv:
        ctx = ssl.create_default_context(cafile=cert)
        resp = await HttpClient(ssl=ctx).request("GET", f"https://localhost:{srv.port}/v2/calls", timeout=5)
    assert resp.status == 200 and resp.json() == {"ok": True}
    assert srv.heads[0].startswith(b"GET /v2/calls HTTP/1.1\r\nHost: localhost:")


async def test_https_refuses_an_untrusted_certificate(tls_files):
    cert, key = tls_files
    async with TlsServer(cert, key) as srv:
        with pytest.raises(HttpError) as info:
            await HttpClient().request("GET", f"https://localhost:{srv.port}/", timeout=5)
    assert info.value.reason == "connect" and "localhost" in str(info.value)


async def test_https_through_a_connect_proxy(tls_files):
    import ssl

    cert, key = tls_files
    async with TlsServer(cert, key, body=b"tunnelled") as srv, TunnelProxy() as proxy:
        http = HttpClient(ssl=ssl.create_default_context(cafile=cert), proxy=proxy.url)
        resp = await http.request("POST", f"https://localhost:{srv.port}/x", body=b"{}", timeout=5)
    assert resp.body == b"tunnelled"
    assert proxy.heads[0].startswith(f"CONNECT localhost:{srv.port} HTTP/1.1\r\n".encode())
    assert srv.heads[0].startswith(b"POST /x HTTP/1.1\r\n")  # origin form inside the tunnel


# -- the environment's proxy (for_url: the client's REST calls) -----------------------------------

PROXY_VARS = ["http_proxy", "https_proxy", "all_proxy", "no_proxy"]


@pytest.fixture
def proxy_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_env_proxy_by_scheme_then_all_and_no_proxy(proxy_env):
    from rtfast.http import env_proxy

    assert env_proxy("https://api.openai.com/v1") is None           # nothing set: direct
    proxy_env.setenv("HTTPS_PROXY", "http://tls-proxy:3128")
    proxy_env.setenv("HTTP_PROXY", "http://plain-proxy:3128")
    assert env_proxy("https://api.openai.com/v1/x") == "http://tls-proxy:3128"
    assert env_proxy("http://api.openai.com:8080/v1/x") == "http://plain-proxy:3128"
    proxy_env.delenv("HTTPS_PROXY")
    proxy_env.setenv("ALL_PROXY", "http://all-proxy:3128")
    assert env_proxy("https://api.openai.com/v1/x") == "http://all-proxy:3128"
    proxy_env.setenv("HTTPS_PROXY", "proxy.corp:3128")                # host:port alone: http://, as httpx
    assert env_proxy("https://api.openai.com/v1/x") == "http://proxy.corp:3128"
    proxy_env.delenv("HTTPS_PROXY")
    proxy_env.setenv("NO_PROXY", "internal.example,.openai.com")
    assert env_proxy("https://api.openai.com/v1/x") is None
    assert env_proxy("https://internal.example:8443/v1") is None
    assert env_proxy("https://example.com/") == "http://all-proxy:3128"


def test_for_url_uses_the_env_proxy_or_says_it_cannot(proxy_env):
    from rtfast.errors import ConnectError, ProxyError
    from rtfast.http import for_url

    assert "proxy" not in repr(for_url("https://api.openai.com/v1"))
    proxy_env.setenv("HTTPS_PROXY", "http://user:pw@tls-proxy:3128")
    assert repr(for_url("https://api.openai.com/v1")) == "HttpClient(max_body=10485760, proxy=tls-proxy:3128)"
    proxy_env.setenv("HTTPS_PROXY", "socks5://user:pw@socks-proxy:1080")
    with pytest.raises(ProxyError) as info:                # not silently around the user's proxy
        for_url("https://api.openai.com/v1")
    assert isinstance(info.value, ConnectError) and "socks5 proxy" in str(info.value)
    assert "pw" not in str(info.value) and "user" not in str(info.value)


async def test_for_url_goes_through_the_env_proxy(proxy_env):
    from rtfast.http import for_url

    async with FakeServer(lambda r: Reply(200, b"via env proxy")) as proxy:
        proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        url = "http://api.unresolvable.test:8080/v1/live/sessions"     # no DNS: only the proxy reaches it
        http = for_url(url)
        resp = await http.request("GET", url)
        await http.aclose()
    assert resp.body == b"via env proxy"
    assert proxy.requests[0].path == "/v1/live/sessions"
    assert proxy.requests[0].headers["host"] == "api.unresolvable.test:8080"
