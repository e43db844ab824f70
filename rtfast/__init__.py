"""rtfast: a fast client and audio core for the OpenAI Realtime API."""

from __future__ import annotations

from rtfast.errors import Base64Error, ProtocolError, RtfastError

__version__ = "0.1.0"

__all__ = ["__version__", "build_info", "Base64Error", "ProtocolError", "RtfastError"]


def build_info() -> dict:
    """What was compiled and which code paths are active on this machine."""
    from rtfast._loader import load

    info = dict(load("_buildinfo").info())
    info["version"] = __version__
    info["b64"] = load("_b64").implementation()
    info["resample"] = load("_resample").engine()
    return info
