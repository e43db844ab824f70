"""rtfast: a fast client and audio core for the OpenAI Realtime API.

    import rtfast
    client = rtfast.AsyncOpenAI()
    async with client.realtime.connect(model="gpt-realtime") as conn:
        ...
"""

from __future__ import annotations

from rtfast.errors import (AuthenticationError, BadRequestError, Base64Error, BetaShapeRefused, ConflictError,
                           ConnectionClosed, HandshakeError, InternalServerError, NotFoundError,
                           PermissionDeniedError, ProtocolError, RateLimitError, RtfastError,
                           UnprocessableEntityError)

__version__ = "0.1.0"

__all__ = [
    "__version__", "build_info", "AsyncOpenAI", "AsyncAzureOpenAI", "connect",
    "RtfastError", "Base64Error", "ProtocolError", "HandshakeError", "AuthenticationError",
    # the official client's status errors, by the same names and statuses
    "BadRequestError", "PermissionDeniedError", "NotFoundError", "ConflictError", "UnprocessableEntityError",
    "RateLimitError", "InternalServerError",
    "ConnectionClosed", "BetaShapeRefused", "ReconnectingEvent", "ReconnectingOverrides",
    "WebSocketQueueFullError", "WebSocketConnectionClosedError",
]

# the official client's webhook errors (rtfast.webhooks raises them)
from rtfast.errors import InvalidWebhookSignatureError, WebhookSecretError  # noqa: E402

__all__ += ["InvalidWebhookSignatureError", "WebhookSecretError"]

_CLIENT_NAMES = ("AsyncOpenAI", "AsyncAzureOpenAI", "connect", "ReconnectingEvent", "ReconnectingOverrides",
                 "WebSocketQueueFullError", "WebSocketConnectionClosedError")


def __getattr__(name: str):
    # The client pulls in websockets; audio-only users need not pay for it.
    if name in _CLIENT_NAMES:
        from rtfast import client

        return getattr(client, name)
    raise AttributeError(f"module 'rtfast' has no attribute {name!r}")


def build_info() -> dict:
    """What was compiled and which code paths are active on this machine."""
    from rtfast._loader import load

    info = dict(load("_buildinfo").info())
    info["version"] = __version__
    info["b64"] = load("_b64").implementation()
    info["resample"] = load("_resample").engine()
    return info
