"""GPT-Live (``/v1/live/sessions``): the sans-I/O session (:mod:`rtfast.live.session`), and the
asyncio client behind ``rtfast.AsyncOpenAI(...).live`` (:mod:`rtfast.live.client`, the official
``client.live`` surface: ``connect``, ``create``, ``sessions``)."""

from rtfast.live.client import (AsyncLive, BinaryResponse, LiveConnection, LiveConnectionManager, LiveForks,
                                LiveSessions, LiveSideband, connect)
from rtfast.live.session import LiveSession, audio_format

__all__ = ["LiveSession", "audio_format", "AsyncLive", "LiveConnection", "LiveConnectionManager", "LiveSessions",
           "LiveSideband", "LiveForks", "BinaryResponse", "connect"]
