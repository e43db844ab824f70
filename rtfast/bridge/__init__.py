"""The telephony bridge: carrier media streams <-> the OpenAI voice APIs.

Its parts, from the bytes up:

- :mod:`rtfast.bridge.carriers`: sans-I/O codecs, carrier frame bytes <-> typed events;
- :mod:`rtfast.bridge.call`: :class:`Call`, every decision of one phone call, sans I/O;
- :mod:`rtfast.bridge.server`: :class:`BridgeServer`, the asyncio layer that moves bytes.
"""

from rtfast.bridge.call import Actions, BargeIn, Call, CallEnded

__all__ = ["Call", "Actions", "BargeIn", "CallEnded", "BridgeServer", "twilio_signature"]

_SERVER_NAMES = ("BridgeServer", "twilio_signature")


def __getattr__(name: str):
    # The server pulls in the asyncio client and websockets; sans-I/O users need not pay for it.
    if name in _SERVER_NAMES:
        from rtfast.bridge import server

        return getattr(server, name)
    raise AttributeError(f"module 'rtfast.bridge' has no attribute {name!r}")
