"""GPT-Live (``/v1/live/sessions``): the sans-I/O session, and the asyncio client behind
``rtfast.AsyncOpenAI(...).live`` (the official ``client.live`` surface)."""

from rtfast.live.session import LiveSession, audio_format

__all__ = ["LiveSession", "audio_format"]
