"""rtfast: a fast client and audio core for the OpenAI Realtime API.

    import rtfast
    client = rtfast.AsyncOpenAI()
    async with client.realtime.connect(model="gpt-realtime") as conn:
        ...
"""

from __future__ import annotations

from rtfast.errors import (APIConnectionError, APIError, APIResponseValidationError, APIStatusError,
                           APITimeoutError, AuthenticationError, BadRequestError, Base64Error, BetaShapeRefused,
                           ConflictError, ConnectError, ConnectionClosed, ConnectTimeout, HandshakeError,
                           InternalServerError, NotFoundError, OpenAIError, PermissionDeniedError, ProtocolError,
                           RateLimitError, RtfastError, UnprocessableEntityError)

__version__ = "0.1.0"

__all__ = [
    "__version__", "build_info", "AsyncOpenAI", "AsyncAzureOpenAI", "connect",
    "RtfastError", "Base64Error", "ProtocolError", "HandshakeError", "AuthenticationError",
    # the official client's status errors, by the same names and statuses
    "BadRequestError", "PermissionDeniedError", "NotFoundError", "ConflictError", "UnprocessableEntityError",
    "RateLimitError", "InternalServerError", "ConnectError", "ConnectTimeout", "APIError",
    # the official client's names for rtfast's classes (rtfast.errors)
    "OpenAIError", "APIStatusError", "APIConnectionError", "APITimeoutError", "APIResponseValidationError",
    "ConnectionClosed", "BetaShapeRefused", "ReconnectingEvent", "ReconnectingOverrides",
    "WebSocketQueueFullError", "WebSocketConnectionClosedError",
]

# the official client's webhook errors (rtfast.webhooks raises them)
from rtfast.errors import InvalidWebhookSignatureError, WebhookSecretError  # noqa: E402

__all__ += ["InvalidWebhookSignatureError", "WebhookSecretError"]

_CLIENT_NAMES = ("AsyncOpenAI", "AsyncAzureOpenAI", "connect", "ReconnectingEvent", "ReconnectingOverrides",
                 "WebSocketQueueFullError", "WebSocketConnectionClosedError")


# The official client's "left out" sentinels: rtfast's one sentinel stands for them all (an
# argument left out is not sent), and its methods also take the official ones themselves.
_SENTINEL_NAMES = ("NOT_GIVEN", "not_given", "omit", "NotGiven", "Omit")
__all__ += list(_SENTINEL_NAMES)


def __getattr__(name: str):
    # The client pulls in websockets; audio-only users need not pay for it.
    if name in _CLIENT_NAMES:
        from rtfast import client

        return getattr(client, name)
    if name in _SENTINEL_NAMES:
        from rtfast import calls

        return type(calls.NOT_GIVEN) if name[0].isupper() and name[1].islower() else calls.NOT_GIVEN
    raise AttributeError(f"module 'rtfast' has no attribute {name!r}")


def build_info() -> dict:
    """What was compiled and which code paths are active on this machine."""
    from rtfast._loader import load

    info = dict(load("_buildinfo").info())
    info["version"] = __version__
    info["b64"] = load("_b64").implementation()
    info["resample"] = load("_resample").engine()
    return info
