"""A small asyncio HTTP/1.1 client for the few REST calls the bridge makes
(carrier call control: hang up, transfer). No dependency beyond the standard
library: asyncio streams and ``ssl``.

    http = HttpClient()
    headers, body = form_body({"Status": "completed"})
    resp = await http.request("POST", url, headers={**headers, **basic_auth(sid, token)}, body=body)
    if resp.status >= 400: ...          # returned, not raised: the caller words the error
    await http.aclose()

It is swappable: anything with ``async request(method, url, *, headers=None,
body=None, timeout=10.0) -> HttpResponse`` and ``async aclose()`` will do
(tests, or a user's own aiohttp/httpx adapter).

What it does: http and https URLs; Content-Length, chunked and
read-until-close response bodies (bounded by ``max_body``); interim 1xx
responses skipped; one deadline per request covering connect, TLS, send and
receive. It opens one connection per request (``Connection: close``): call
control is a handful of requests per call, not worth a pool's stale-socket
handling. A proxy is used only when given (``proxy="http://host:port"``):
https goes through it with CONNECT, http in absolute form; :func:`for_url`
gives a client with the proxy the environment names (``HTTPS_PROXY``...).

Failures without a usable response raise :class:`rtfast.errors.HttpError`
naming the method and host (never the path, query or credentials).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl as _ssl
import contextlib
import urllib.request
from urllib.parse import quote, unquote, urlencode, urlsplit

from rtfast import __version__
from rtfast.errors import HttpError, ProxyError

__all__ = ["HttpResponse", "HttpClient", "basic_auth", "bearer_auth", "json_body", "form_body", "quote_segment",
           "env_proxy", "for_url", "seconds", "within"]

_MAX_HEAD = 64 * 1024          # status line + headers
_MAX_HEADERS = 100
_MAX_LINE = 8 * 1024
_USER_AGENT = f"rtfast/{__version__}"


class HttpResponse:
    """A complete response: ``status``, ``headers`` (lower-case keys; repeated
    headers joined with ``", "``), ``body`` (bytes, already de-chunked)."""

    __slots__ = ("status", "reason", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def json(self):
        """The body parsed as JSON (``ValueError`` if it is not)."""
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, {len(self.body)} bytes)"


# -- helpers -------------------------------------------------------------------------------------


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The ``Authorization`` header for HTTP basic auth."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def bearer_auth(token: str) -> dict[str, str]:
    """The ``Authorization`` header for a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def json_body(data) -> tuple[dict[str, str], bytes]:
    """(headers, body) for a JSON request body."""
    return {"Content-Type": "application/json"}, json.dumps(data, separators=(",", ":")).encode()


def form_body(fields) -> tuple[dict[str, str], bytes]:
    """(headers, body) for an ``application/x-www-form-urlencoded`` body
    (a dict or a list of pairs; values are encoded as UTF-8)."""
    return {"Content-Type": "application/x-www-form-urlencoded"}, urlencode(fields).encode()


# -- the client ----------------------------------------------------------------------------------


class _Target:
    __slots__ = ("scheme", "host", "port", "target", "userinfo")

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"URL scheme must be http or https, not {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("URL has no host")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = port or (443 if parts.scheme == "https" else 80)
        path = parts.path or "/"
        self.target = path + (f"?{parts.query}" if parts.query else "")
        self.userinfo = None
        if parts.username is not None:
            self.userinfo = (unquote(parts.username), unquote(parts.password or ""))

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def where(self) -> str:
        """host:port, for error messages (no credentials, no path)."""
        return f"{self.host}:{self.port}"


def _check_token(value: str, what: str) -> None:
    if not value or any(c in value for c in "\r\n\0"):
        raise ValueError(f"invalid HTTP {what}: must be non-empty with no CR, LF or NUL")


def seconds(timeout) -> float | None:
    """A request's deadline in seconds from what the official client takes as ``timeout``: a
    number, None (no limit), or an httpx / ``openai.Timeout``, whose ``read`` part (the wait for
    the answer) is the deadline (its None: no limit, as officially)."""
    if timeout is None:
        return None
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return float(timeout)
    if not hasattr(timeout, "read"):
        raise TypeError(f"timeout must be seconds, None or a Timeout, not {type(timeout).__name__}")
    return None if timeout.read is None else float(timeout.read)


def within(timeout: float | None) -> str:
    """How long a request waited, for a timeout's message."""
    return "in time" if timeout is None else f"within {timeout:g} s"


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, read as the official client (httpx) and
    urllib read it: ``HTTPS_PROXY`` or ``HTTP_PROXY`` by the URL's scheme, else ``ALL_PROXY``;
    none for a host ``NO_PROXY`` lists."""
    proxies = urllib.request.getproxies()
    if not proxies:
        return None                     # the usual case, in one look at the environment
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    host = parts.hostname or ""
    if not proxy or urllib.request.proxy_bypass_environment(
            f"{host}:{parts.port}" if parts.port else host, proxies):
        return None
    return proxy if "://" in proxy else "http://" + proxy     # host:port alone: as httpx reads it


def for_url(url: str, **options) -> HttpClient:
    """An :class:`HttpClient` for requests to ``url``, through the proxy the environment names
    for it (:func:`env_proxy`), as the official client's REST calls go. An environment proxy
    this client cannot use (only ``http://`` ones: not ``https://`` or SOCKS) raises
    :class:`rtfast.errors.ProxyError` rather than going around it."""
    proxy = env_proxy(url)
    if proxy is None:
        return HttpClient(**options)
    try:
        return HttpClient(proxy=proxy, **options)
    except ValueError:
        scheme = proxy.partition("://")[0] if "://" in proxy else "(no scheme)"
        raise ProxyError(f"the environment's proxy for {urlsplit(url).hostname} is a {scheme} proxy; "
                         f"REST calls go through http:// proxies only (set NO_PROXY to go direct)") from None


class HttpClient:
    """The default :class:`HttpResponse` producer (see the module docstring).

    ``ssl``: an ``ssl.SSLContext`` for https (default: the system's verified
    context); ``proxy``: an ``http://[user:pass@]host:port`` proxy URL, used
    only when given; ``max_body``: the largest response body accepted.
    """

    def __init__(self, *, ssl: _ssl.SSLContext | None = None, proxy: str | None = None,
                 max_body: int = 10 * 1024 * 1024, user_agent: str = _USER_AGENT) -> None:
        self._ssl = ssl
        self._proxy = _Target(proxy) if proxy else None
        if self._proxy is not None and self._proxy.scheme != "http":
            raise ValueError("proxy URL must be http://host:port")
        self.max_body = max_body
        self.user_agent = user_agent
        self._closed = False
        self._inflight: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        proxy = f", proxy={self._proxy.where}" if self._proxy else ""
        return f"HttpClient(max_body={self.max_body}{proxy})"

    def _ssl_context(self) -> _ssl.SSLContext:
        if self._ssl is None:
            self._ssl = _ssl.create_default_context()
        return self._ssl

    async def request(self, method: str, url: str, *, headers: dict | None = None, body: bytes | None = None,
                      timeout: float = 10.0) -> HttpResponse:
        """Send one request and read the whole response. Raises HttpError when
        no usable response arrives within ``timeout`` seconds; returns error
        statuses (>= 400) as responses."""
        if self._closed:
            raise RuntimeError("HttpClient is closed")
        _check_token(method, "method")
        if not method.isascii() or not method.isalpha():
            raise ValueError(f"invalid HTTP method {method!r}")
        method = method.upper()
        t = _Target(url)
        if body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"body must be bytes, not {type(body).__name__}")
        head = self._head(method, t, headers or {}, body)
        # The exchange runs in its own task so that aclose() can stop it without
        # cancelling the caller's task (a call's whole handler, say).
        inner = asyncio.ensure_future(self._exchange(method, t, head, body, timeout))
        self._inflight.add(inner)
        try:
            return await inner
        except asyncio.CancelledError:
            if inner.cancelled() and self._closed and not asyncio.current_task().cancelling():
                raise HttpError(f"{method} {t.where}: the client was closed during the request",
                                t.where, "closed") from None
            raise
        finally:
            self._inflight.discard(inner)

    async def _exchange(self, method: str, t: _Target, head: bytes, body, timeout: float | None) -> HttpResponse:
        writer = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await self._open(t, method)
                writer.write(head)
                if body:
                    writer.write(bytes(body))
                await writer.drain()
                return await self._read_response(reader, method, t)
        except TimeoutError:
            raise HttpError(f"{method} {t.where}: no response {within(timeout)}", t.where, "timeout") from None
        except asyncio.IncompleteReadError:
            raise HttpError(f"{method} {t.where}: connection closed before the response was complete",
                            t.where, "closed") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS
            what = exc.strerror or str(exc) or type(exc).__name__
            raise HttpError(f"{method} {t.where}: connection failed ({what})", t.where, "connect") from None
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):  # closing is best effort
                    await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def aclose(self) -> None:
        """Refuse further requests; requests in flight end with HttpError ("closed")."""
        self._closed = True
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=2.0)

    # -- internals --

    def _head(self, method: str, t: _Target, headers: dict, body) -> bytes:
        target = t.target
        if self._proxy is not None and t.scheme == "http":
            target = f"http://{t.netloc}{t.target}"  # absolute form through a proxy
        names = {k.lower() for k in headers}
        lines = [f"{method} {target} HTTP/1.1", f"Host: {t.netloc}"]
        if "user-agent" not in names:
            lines.append(f"User-Agent: {self.user_agent}")
        if "accept" not in names:
            lines.append("Accept: */*")
        lines.append("Accept-Encoding: identity")
        lines.append("Connection: close")
        if t.userinfo is not None and "authorization" not in names:
            lines.append("Authorization: " + basic_auth(*t.userinfo)["Authorization"])
        if self._proxy is not None and t.scheme == "http" and self._proxy.userinfo is not None:
            lines.append("Proxy-Authorization: " + basic_auth(*self._proxy.userinfo)["Authorization"])
        for k, v in headers.items():
            k, v = str(k), str(v)
            _check_token(k, "header name")
            if any(c in v for c in "\r\n\0"):
                raise ValueError(f"invalid value for HTTP header {k!r}: CR, LF or NUL")
            if k.lower() in ("host", "content-length", "connection", "transfer-encoding"):
                continue  # the client owns these
            lines.append(f"{k}: {v}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body) if body is not None else 0}")
        try:
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("HTTP header names and values must be latin-1 (encode them first)") from None

    async def _open(self, t: _Target, method: str):
        ctx = self._ssl_context() if t.scheme == "https" else None
        if self._proxy is None:
            return await asyncio.open_connection(t.host, t.port, ssl=ctx,
                                                 server_hostname=t.host if ctx else None)
        p = self._proxy
        try:
            reader, writer = await asyncio.open_connection(p.host, p.port)
        except OSError as exc:
            raise HttpError(f"{method} {t.where}: cannot reach the proxy {p.where} ({exc.strerror or exc})",
                            p.where, "connect") from None
        if ctx is None:
            return reader, writer
        lines = [f"CONNECT {t.host}:{t.port} HTTP/1.1", f"Host: {t.host}:{t.port}"]
        if p.userinfo is not None:
            lines.append("Proxy-Authorization: " + basic_auth(*p.userinfo)["Authorization"])
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status, _, _ = await self._read_head(reader, "CONNECT", p)
        if status != 200:
            writer.close()
            raise HttpError(f"{method} {t.where}: the proxy {p.where} refused CONNECT (HTTP {status})",
                            p.where, "connect")
        await writer.start_tls(ctx, server_hostname=t.host)
        return reader, writer

    async def _readline(self, reader: asyncio.StreamReader, t: _Target, method: str) -> bytes:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise self._malformed(method, t, "header line too long") from None
        if len(line) > _MAX_LINE:
            raise self._malformed(method, t, "header line too long")
        return line

    @staticmethod
    def _malformed(method: str, t: _Target, what: str) -> HttpError:
        return HttpError(f"{method} {t.where}: malformed response ({what})", t.where, "malformed")

    async def _read_head(self, reader, method: str, t: _Target):
        total = 0
        line = await self._readline(reader, t, method)
        total += len(line)
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not (len(parts[1]) == 3 and parts[1].isdigit()):
            raise self._malformed(method, t, f"status line {line[:80]!r}")
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers: dict[str, str] = {}
        count = 0
        while True:
            line = await self._readline(reader, t, method)
            total += len(line)
            if total > _MAX_HEAD:
                raise self._malformed(method, t, "headers too large")
            if line in (b"\r\n", b"\n"):
                return status, reason, headers
            count += 1
            if count > _MAX_HEADERS:
                raise self._malformed(method, t, "too many headers")
            text = line.decode("latin-1").rstrip("\r\n")
            name, sep, value = text.partition(":")
            if not sep or not name or name != name.strip():
                raise self._malformed(method, t, f"header line {line[:80]!r}")
            name = name.lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value

    async def _read_response(self, reader, method: str, t: _Target) -> HttpResponse:
        while True:
            status, reason, headers = await self._read_head(reader, method, t)
            if status >= 200 or status == 101:
                break  # 1xx interim responses (100 Continue, 103) precede the real one
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return HttpResponse(status, headers, b"", reason)
        te = headers.get("transfer-encoding", "").lower()
        if te:
            if te.split(",")[-1].strip() != "chunked":
                raise self._malformed(method, t, f"unsupported transfer-encoding {te!r}")
            body = await self._read_chunked(reader, method, t)
        elif "content-length" in headers:
            cl = headers["content-length"]
            values = {v.strip() for v in cl.split(",")}  # repeated identical values are allowed
            n_text = values.pop()
            if values or not n_text.isascii() or not n_text.isdigit():
                raise self._malformed(method, t, f"content-length {cl[:40]!r}")
            n = int(n_text)
            if n > self.max_body:
                raise self._too_large(method, t)
            body = await reader.readexactly(n)
        else:
            body = await self._read_to_eof(reader, method, t)
        return HttpResponse(status, headers, body, reason)

    def _too_large(self, method: str, t: _Target) -> HttpError:
        return HttpError(f"{method} {t.where}: response body larger than {self.max_body} bytes", t.where, "too_large")

    async def _read_chunked(self, reader, method: str, t: _Target) -> bytes:
        out = bytearray()
        while True:
            line = await self._readline(reader, t, method)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise self._malformed(method, t, f"chunk size {line[:40]!r}") from None
            if size < 0 or size_text.startswith((b"-", b"+", b"0x", b"0X")):
                raise self._malformed(method, t, f"chunk size {line[:40]!r}")
            if size == 0:
                break
            if len(out) + size > self.max_body:
                raise self._too_large(method, t)
            out += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise self._malformed(method, t, "chunk not followed by CRLF")
        # trailers, up to the blank line
        total = 0
        while True:
            line = await self._readline(reader, t, method)
            total += len(line)
            if line in (b"\r\n", b"\n"):
                return bytes(out)
            if total > _MAX_HEAD:
                raise self._malformed(method, t, "trailers too large")

    async def _read_to_eof(self, reader, method: str, t: _Target) -> bytes:
        out = bytearray()
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return bytes(out)
            if len(out) + len(chunk) > self.max_body:
                raise self._too_large(method, t)
            out += chunk


def quote_segment(value: str) -> str:
    """``value`` escaped for use as one URL path segment (ids that carriers
    hand out may hold ``/``, ``+`` or ``=``)."""
    return quote(str(value), safe=":@-._~")
