"""What rtfast's two websocket client transports share about opening a connection
(``rtfast.websocket``, the lean one, and ``websockets``' own, which
:mod:`rtfast.connection` falls back to): the typed errors a failed connect or a
refused handshake becomes, with no credentials in them, and the log filter that
keeps credentials out of handshake logs.

Its own module so that ``rtfast.connection`` can use ``rtfast.websocket``
without either importing the other.
"""

from __future__ import annotations

import logging
import socket
import ssl

import orjson
from websockets.exceptions import InvalidProxy, InvalidStatus
from websockets.proxy import parse_proxy
from websockets.uri import parse_uri

from rtfast.errors import ConnectError, ConnectTimeout, HandshakeError, ProxyError, handshake_error

_SECRET_HEADERS = frozenset({"authorization", "api-key", "openai-organization", "openai-project",
                             "proxy-authorization", "cookie", "x-twilio-signature"})


class RedactHeaders(logging.Filter):
    """websockets logs every handshake header at DEBUG; keep credentials out."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() in _SECRET_HEADERS:
            record.args = (args[0], "<redacted>")
        return True


def server_message(body: bytes) -> str:
    """The error message from an API error body, or the body itself (bounded)."""
    try:
        message = orjson.loads(body)["error"]["message"]
        if isinstance(message, str):
            return message
    except Exception:
        pass
    text = body.decode("utf-8", "replace").strip()
    return text[:300] or "(no message)"


def _endpoint(url: str) -> str:
    """host:port of a ws(s):// URL, for messages (no user info, path or query)."""
    try:
        uri = parse_uri(url)
    except Exception:
        return "(unparsable URL)"
    return f"{uri.host}:{uri.port}"


def _proxy_endpoint(proxy: str) -> str:
    """host:port of a proxy URL, for messages (its credentials stay out)."""
    try:
        parsed = parse_proxy(proxy)
    except Exception:
        return "(unparsable proxy URL)"
    return f"{parsed.host}:{parsed.port}"


def connect_error(exc: BaseException, url: str, proxy: str | None, timeout: float,
                  stage: str | None = None) -> ConnectError:
    """A failed connect as rtfast's typed ConnectError, saying what failed and where.

    ``stage`` (when the caller knows it) says how far a timed-out connect got:
    a format string with ``{target}`` and ``{via}``."""
    target = _endpoint(url)
    via = f" through the proxy {_proxy_endpoint(proxy)}" if proxy else ""
    if isinstance(exc, TimeoutError):
        what = (stage or "no websocket connection to {target}{via}").format(target=target, via=via)
        error: ConnectError = ConnectTimeout(f"{what} within {timeout:g} s")
    else:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        if isinstance(exc, ssl.SSLError):
            error = ConnectError(f"TLS handshake with {target}{via} failed: {detail}")
        elif isinstance(exc, socket.gaierror):
            where = f"the proxy {_proxy_endpoint(proxy)}" if proxy else target
            error = (ProxyError if proxy else ConnectError)(f"could not resolve {where}: {detail}")
        elif proxy:
            # With a proxy the socket connects to the proxy; the proxy answers for the target.
            error = ProxyError(f"could not reach the proxy {_proxy_endpoint(proxy)} "
                               f"(for {target}): {type(exc).__name__}: {detail}")
        else:
            error = ConnectError(f"could not connect to {target}: {type(exc).__name__}: {detail}")
    error.errno = getattr(exc, "errno", None)
    return error


def handshake_failure(exc: BaseException) -> HandshakeError:
    """A websockets handshake exception as rtfast's typed HandshakeError.

    Messages never carry request headers or proxy URLs (credentials)."""
    if isinstance(exc, InvalidStatus):
        body = exc.response.body or b""
        return handshake_error(exc.response.status_code, server_message(body), body, exc.response.headers)
    if isinstance(exc, InvalidProxy):
        return HandshakeError(0, "invalid proxy URL: expected http://, https://, socks4:// or socks5://")
    return HandshakeError(0, f"websocket handshake failed: {exc}")
