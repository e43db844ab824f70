"""Exceptions raised by rtfast. All derive from RtfastError.

The official client's names stand for the same kinds of failure, so that code written for it
catches what rtfast raises: ``OpenAIError`` is :class:`RtfastError`, ``APIError`` the base of
what the API (or the way to it) did, ``APIStatusError`` :class:`HandshakeError` (an error
status; ``BadRequestError``... by status), ``APIConnectionError`` :class:`ConnectError`,
``APITimeoutError`` :class:`ConnectTimeout`, ``APIResponseValidationError``
:class:`ProtocolError` (an answer that is not what the API promises)."""

from __future__ import annotations

__all__ = [
    "RtfastError", "Base64Error", "ProtocolError", "HandshakeError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "RateLimitError", "ConnectionClosed", "BetaShapeRefused", "RingOverflow", "FrameError",
    "ConnectError", "ConnectTimeout", "ProxyError", "MissingCredentials", "APIError",
    "BadRequestError", "ConflictError", "UnprocessableEntityError", "InternalServerError",
    # the official client's names for rtfast's classes
    "OpenAIError", "APIStatusError", "APIConnectionError", "APITimeoutError", "APIResponseValidationError",
]


class RtfastError(Exception):
    """Base class of every error rtfast raises on purpose (the official ``OpenAIError``)."""


class APIError(RtfastError):
    """What the API, or the way to it, did wrong (the official ``APIError``): an error status
    (:class:`HandshakeError`), a connection that failed (:class:`ConnectError`), an answer that
    is not a valid message (:class:`ProtocolError`). ``code``, ``param`` and ``type`` are the
    API's error object's, when it sent one (else None)."""

    code: str | None = None
    param: str | None = None
    type: str | None = None
    _headers = None


class Base64Error(RtfastError, ValueError):
    """Invalid base64 input.

    ``offset`` is the byte offset (character offset for ``str`` input) of the
    first problem; ``reason`` is ``"character"``, ``"padding"`` or ``"length"``.
    """

    def __init__(self, message: str, offset: int, reason: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.args[0], self.offset, self.reason))


class ProtocolError(APIError, ValueError):
    """A frame that is not a valid Realtime (or carrier) message.

    ``reason`` says what is wrong; ``excerpt`` is a bounded prefix of the frame
    (never more than 200 characters) to help find it in a log.
    """

    def __init__(self, reason: str, data: bytes | str | None = None) -> None:
        excerpt = ""
        if data is not None:
            text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray, memoryview)) else str(data)
            excerpt = text[:200] + ("..." if len(text) > 200 else "")
        super().__init__(f"{reason}: {excerpt!r}" if data is not None else reason)
        self.reason = reason
        self.excerpt = excerpt


class HandshakeError(APIError):
    """The server refused the websocket (or HTTP) request (the official ``APIStatusError``).

    ``status`` (also ``status_code``) is the HTTP status; ``message`` the server's own error
    message when it sent one; ``body`` the response body as it came (bytes); ``code``,
    ``param`` and ``type`` those of the API's error object (``{"error": {...}}``) when the body
    holds one; ``request_id`` the ``x-request-id`` header when there was one. Subclasses name
    the common cases.
    """

    def __init__(self, status: int, message: str, body: bytes = b"", request_id: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.body = body
        self.request_id = request_id
        error = _error_object(body)
        if error is not None:
            code, param, kind = error.get("code"), error.get("param"), error.get("type")
            self.code = None if code is None else str(code)
            self.param = param if type(param) is str else None
            self.type = kind if type(kind) is str else None

    @property
    def status_code(self) -> int:
        """``status``, under the official ``APIStatusError``'s name."""
        return self.status

    def __reduce__(self):           # pickled and copied whole (the response headers left out)
        state = {k: v for k, v in self.__dict__.items() if k != "_headers"}
        return (type(self), (self.status, self.message, self.body, self.request_id), state)


class BadRequestError(HandshakeError):
    """400: the request itself is wrong (a parameter's value, an unknown field)."""


class AuthenticationError(HandshakeError):
    """401: the API key (or token) is missing or wrong."""


class PermissionDeniedError(HandshakeError):
    """403: the key may not use this model or endpoint."""


class NotFoundError(HandshakeError):
    """404: no such model, deployment or path."""


class ConflictError(HandshakeError):
    """409: the request conflicts with the resource's state."""


class UnprocessableEntityError(HandshakeError):
    """422: well formed, but the API cannot act on it."""


class RateLimitError(HandshakeError):
    """429: too many requests or sessions; retry later."""


class InternalServerError(HandshakeError):
    """5xx: the API failed on its side; retrying may succeed."""


# The official client's status classes (openai._exceptions), by the same statuses.
_BY_STATUS = {400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
              409: ConflictError, 422: UnprocessableEntityError, 429: RateLimitError}


def handshake_error(status: int, message: str, body: bytes = b"", headers=None) -> HandshakeError:
    """The HandshakeError subclass for an HTTP status (``headers``: the response's, a mapping
    with lower-case names, for ``request_id``)."""
    cls = InternalServerError if status >= 500 else _BY_STATUS.get(status, HandshakeError)
    error = cls(status, message, body, None if headers is None else headers.get("x-request-id"))
    error._headers = headers            # what the retry rule reads (retry-after, x-should-retry)
    return error


def _error_object(body) -> dict | None:
    """The API's error object in a response body (``{"error": {...}}``), or None."""
    if not body or not isinstance(body, (bytes, bytearray, str)) or len(body) > 1 << 20:
        return None
    import json                         # (errors are rare: not at import time)
    try:
        data = json.loads(body)
    except ValueError:
        return None
    error = data.get("error", data) if type(data) is dict else None
    return error if type(error) is dict else None


class MissingCredentials(AuthenticationError):
    """No API key (or token) was given, so no request was made. Raised when a
    client is built, as the official client raises ``OpenAIError`` then; an
    ``AuthenticationError`` so that code catching a refused key catches it too."""

    def __init__(self, message: str) -> None:
        RtfastError.__init__(self, message + " (no request was made)")
        self.status = 0
        self.message = message
        self.body = b""
        self.request_id = None

    def __reduce__(self):
        return (type(self), (self.message,), dict(self.__dict__))


class ConnectError(APIError, OSError):
    """The connection could not be opened: DNS, TCP, TLS, a proxy, or no
    answer to the websocket upgrade. The message says which step failed and
    where (host:port, never credentials). Also an ``OSError``, as the bare
    socket errors it replaces, so existing ``except OSError`` still works."""

    def __init__(self, message: str) -> None:
        OSError.__init__(self, message)

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


class ConnectTimeout(ConnectError, TimeoutError):
    """Opening the connection took longer than the open timeout (also a ``TimeoutError``)."""


class ProxyError(ConnectError):
    """The proxy could not be reached (refused, unresolvable, timed out)."""


class ConnectionClosed(RtfastError):
    """The websocket closed; ``code`` and ``reason`` are what the peer sent
    (1006 and "" when it vanished without a close frame)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"connection closed: code {code}" + (f", reason {reason!r}" if reason else ""))
        self.code = code
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.code, self.reason), dict(self.__dict__))


class FrameError(RtfastError, ValueError):
    """A websocket frame broke RFC 6455 (bad masking, opcode, length, UTF-8...).

    ``close_code`` is the code the connection closes with: 1002 protocol
    error, 1007 invalid UTF-8, 1009 message too big. ``messages`` holds the
    ``(opcode, payload)`` completed before the violation in the same read.
    """

    def __init__(self, message: str, close_code: int = 1002) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.messages: list[tuple[int, bytes]] = []

    def __reduce__(self):
        return (type(self), (self.args[0], self.close_code))


class BetaShapeRefused(ConnectionClosed):
    """The server refuses the beta protocol shape (error ``beta_api_shape_disabled``,
    close code 4000). OpenAI does so since May 2026: connect with the GA
    generation (``client.realtime.connect``) instead."""

    def __init__(self, message: str = "the server refuses the beta API shape", code: int = 4000) -> None:
        RtfastError.__init__(self, f"{message} (close code {code}); use the GA generation")
        self.code = code
        self.reason = message


class RingOverflow(RtfastError, OverflowError):
    """A write did not fit a FrameRing with overflow="raise"; nothing was written.

    ``needed`` is the size of the write, ``room`` the bytes that were free.
    """

    def __init__(self, message: str, needed: int, room: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.room = room

    def __reduce__(self):
        return (type(self), (self.args[0], self.needed, self.room))


class InvalidWebhookSignatureError(RtfastError, ValueError):
    """A webhook delivery is not genuine or not fresh (the official client's name; a ``ValueError``
    as there): answer it with HTTP 400. ``reason``: ``"signature"`` (no signature matches),
    ``"missing_header"`` (``webhook-id``, ``-timestamp`` or ``-signature`` absent),
    ``"timestamp_format"``, ``"too_old"`` or ``"too_new"`` (outside the tolerance)."""

    def __init__(self, message: str, reason: str = "signature") -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.args[0], self.reason))


class WebhookSecretError(RtfastError, ValueError):
    """No webhook secret is configured, or it is malformed: the application's setup, not the
    sender's fault. The message never holds the secret."""


__all__ += ["InvalidWebhookSignatureError", "WebhookSecretError"]


class HttpError(RtfastError):
    """An HTTP request got no usable response: the connection failed, the
    server did not answer within the timeout, or the response was malformed.

    ``host`` is the server (``host:port``) and ``reason`` one of ``"connect"``,
    ``"timeout"``, ``"malformed"``, ``"too_large"``, ``"closed"``. The message
    names the method and host, never the path, query or credentials. A response
    with status >= 400 is not an HttpError: the client returns it.
    """

    def __init__(self, message: str, host: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.host = host
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.args[0], self.host, self.reason))


class CallControlError(RtfastError):
    """A carrier's call-control request (hang up, transfer) failed.

    ``carrier`` and ``action`` say which; ``status`` is the carrier's HTTP
    status (None when no response came back or the request was never sent);
    ``message`` the carrier's own error message. Never carries credentials.
    """

    def __init__(self, carrier: str, action: str, status: int | None, message: str) -> None:
        where = f"{carrier} {action}"
        super().__init__(f"{where} failed: HTTP {status}: {message}" if status is not None
                         else f"{where} failed: {message}")
        self.carrier = carrier
        self.action = action
        self.status = status
        self.message = message

    def __reduce__(self):
        return (type(self), (self.carrier, self.action, self.status, self.message))


class CallControlNotSupported(CallControlError, NotImplementedError):
    """The carrier's API offers no way to do this action on this call (the
    message says what to do instead)."""


__all__ += ["HttpError", "CallControlError", "CallControlNotSupported"]


# The official client's names (openai._exceptions) for the same kinds of failure.
OpenAIError = RtfastError
APIStatusError = HandshakeError
APIConnectionError = ConnectError
APITimeoutError = ConnectTimeout
APIResponseValidationError = ProtocolError
