"""Slow, obviously-correct FrameRing: a bytearray FIFO with the same API.

Frames are cut from the front of the buffered stream; drop_oldest drops
whole frames from the front of (buffered + new) bytes. It knows nothing of
the ring layout, so it does not model exported views.
"""

from __future__ import annotations

from rtfast.errors import RtfastError


class RingOverflow(RtfastError, OverflowError):
    pass


class FrameRing:
    def __init__(self, frame_bytes: int, capacity_bytes: int, *, overflow: str = "raise") -> None:
        if frame_bytes < 1 or capacity_bytes < frame_bytes:
            raise ValueError("bad sizes")
        if overflow not in ("raise", "drop_oldest", "drop_newest"):
            raise ValueError("bad overflow")
        self.frame_bytes = frame_bytes
        self.capacity_bytes = capacity_bytes
        self.overflow = overflow
        self.dropped = 0
        self.buf = bytearray()

    def write(self, data) -> int:
        data = bytes(memoryview(data).cast("B"))
        room = self.capacity_bytes - len(self.buf)
        if len(data) <= room:
            self.buf += data
            return len(data)
        if self.overflow == "raise":
            raise RingOverflow("does not fit")
        if self.overflow == "drop_newest":
            self.buf += data[:room]
            self.dropped += len(data) - room
            return room
        self.buf += data
        while len(self.buf) > self.capacity_bytes:
            del self.buf[: self.frame_bytes]
            self.dropped += self.frame_bytes
        return len(data)

    def read_frame(self) -> bytes | None:
        if len(self.buf) < self.frame_bytes:
            return None
        frame = bytes(self.buf[: self.frame_bytes])
        del self.buf[: self.frame_bytes]
        return frame

    def read_into(self, out) -> int:
        out = memoryview(out).cast("B")
        n = 0
        while len(out) - n >= self.frame_bytes and (frame := self.read_frame()) is not None:
            out[n: n + self.frame_bytes] = frame
            n += self.frame_bytes
        return n

    def drain(self, pad: int) -> bytes | None:
        if not self.buf:
            return None
        out = bytes(self.buf) + bytes([pad]) * (-len(self.buf) % self.frame_bytes)
        self.buf.clear()
        return out

    def clear(self) -> None:
        self.buf.clear()

    @property
    def readable(self) -> int:
        return len(self.buf)

    @property
    def pending(self) -> int:
        return len(self.buf) // self.frame_bytes
