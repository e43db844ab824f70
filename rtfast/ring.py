"""FrameRing: cut a byte stream into fixed-size audio frames, zero copy.

A ``FrameRing(frame_bytes, capacity_bytes, overflow=...)`` is a fixed-capacity
FIFO (sizes in bytes): ``write()`` any C-contiguous buffer (bytes, bytearray,
memoryview slices, numpy arrays: their raw bytes) in chunks of any size, and
read it back in frames of exactly ``frame_bytes``::

    ring = FrameRing(160, 160 * 50 * 10)      # mu-law 8 kHz, 20 ms, 10 s max
    ring.write(rtfast.b64.decode(delta))       # model deltas of any length
    for frame in ring:                         # whole 160-byte frames
        send(frame)
    tail = ring.drain(ULAW_SILENCE)            # end of response: pad the rest

``read_frame()`` returns a read-only ``memoryview`` into the ring (frames never
straddle the end of the storage, so no frame is ever copied). While such a
view, or a slice of it, is alive, a write that would reuse its memory raises
``BufferError``; release the view (``del``, ``.release()``, ``with``) or copy
it with ``bytes()`` to keep it. ``read_into(out)`` copies as many whole frames
as fit into ``out`` and returns the bytes written.

Carrier framing (20 ms frames):
  * Twilio, Telnyx, Plivo, RTP PCMU/PCMA: ``frame_bytes=160`` (8 kHz G.711).
  * Vonage PCM16 16 kHz: ``frame_bytes=640`` (8 kHz: 320).
  * Exotel: chunks a multiple of 320 bytes and at least 3.2 KB: use
    ``frame_bytes=3200`` (ten 320-byte frames), and ``drain(PCM16_SILENCE)``
    at the end still gives whole 3200-byte chunks.

Overflow policies, when a write does not fit in ``capacity_bytes - readable``:
  * ``"raise"``: :class:`RingOverflow` (an ``OverflowError``), nothing written.
  * ``"drop_oldest"``: the fewest whole frames are dropped from the front of
    the stream (buffered bytes first, then the start of the write when it is
    larger than the capacity), so frames stay aligned; returns ``len(data)``.
  * ``"drop_newest"``: writes the first bytes that fit, returns that count.
``dropped`` counts the bytes the policy discarded.

Not thread-safe: one owner (a thread or an event loop) per ring.
"""

from rtfast._loader import load
from rtfast.g711 import ALAW_SILENCE, ULAW_SILENCE

_k = load("_ring")

FrameRing = _k.FrameRing
RingOverflow = _k.RingOverflow

#: The silence byte of PCM16 (both bytes of a zero sample).
PCM16_SILENCE = 0x00

__all__ = ["FrameRing", "RingOverflow", "ULAW_SILENCE", "ALAW_SILENCE", "PCM16_SILENCE"]
