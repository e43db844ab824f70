"""Exceptions raised by rtfast. All derive from RtfastError."""

from __future__ import annotations

__all__ = ["RtfastError", "Base64Error", "ProtocolError"]


class RtfastError(Exception):
    """Base class of every error rtfast raises on purpose."""


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


class ProtocolError(RtfastError, ValueError):
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
