"""The telephony bridge: carrier media streams <-> the OpenAI voice APIs.

Its parts, from the bytes up:

- :mod:`rtfast.bridge.carriers`: sans-I/O codecs, carrier frame bytes <-> typed events;
- :mod:`rtfast.bridge.call`: :class:`Call`, every decision of one phone call, sans I/O;
- :mod:`rtfast.bridge.livecall`: :class:`LiveCall`, the same on GPT-Live;
- :mod:`rtfast.bridge.dialog`: tool calls, digits, transcripts and the replay after a reconnect, sans I/O;
- :mod:`rtfast.bridge.app` and :mod:`rtfast.bridge.tools`: the application API (:class:`Agent`, ``@tool``);
- :mod:`rtfast.bridge.control`: hang-up and transfer through each carrier's REST API;
- :mod:`rtfast.bridge.recording`: opt-in per-call WAV and JSONL;
- :mod:`rtfast.bridge.runner`: the asyncio side of an agent's call (handlers, reconnects);
- :mod:`rtfast.bridge.ops`: admission, readiness, drain, metrics, JSON logs;
- :mod:`rtfast.bridge.server`: :class:`BridgeServer`, the asyncio layer that moves bytes.
"""

from rtfast.bridge.app import Agent, CallConfig, CallContext, Refused
from rtfast.bridge.call import Actions, BargeIn, Call, CallEnded
from rtfast.bridge.livecall import LiveCall
from rtfast.bridge.tools import Tool, tool

__all__ = ["Agent", "CallContext", "CallConfig", "Refused", "tool", "Tool", "Call", "LiveCall", "Actions", "BargeIn",
           "CallEnded", "BridgeServer", "twilio_signature"]

_SERVER_NAMES = ("BridgeServer", "twilio_signature")


def __getattr__(name: str):
    # The server pulls in the asyncio client and websockets; sans-I/O users need not pay for it.
    if name in _SERVER_NAMES:
        from rtfast.bridge import server

        return getattr(server, name)
    raise AttributeError(f"module 'rtfast.bridge' has no attribute {name!r}")
