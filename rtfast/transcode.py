"""Stateful transcoding between telephony and Realtime audio formats.

``Transcoder(src, dst, *, quality="HQ")`` converts one stream, for example
Twilio's ``"pcmu/8000"`` to OpenAI's ``"pcm16/24000"`` and back, fusing
base64, G.711 and libsoxr resampling in C over scratch memory:
``feed`` (raw -> raw), ``feed_b64`` (base64 -> raw), ``feed_to_b64`` (raw ->
base64), ``feed_b64_to_b64``, and ``flush()`` / ``flush_b64()`` at the end of
an utterance. Each base64 result is the complete base64 of that call's bytes.
Feeding 20 ms frames gives the same bytes as feeding the whole call at once.
``quality`` is the resampler's (see :mod:`rtfast.resample`): ``"HQ-LL"``, the
bridge's, holds back under 10 ms (median) and answers every 20 ms frame to or
from 24 kHz; ``"HQ"`` (the default here, python-soxr's) holds back ~42 ms.
Invalid base64 raises :class:`rtfast.errors.Base64Error` and changes nothing.
"""

from rtfast._loader import load
from rtfast.errors import Base64Error

_k = load("_transcode")

Transcoder = _k.Transcoder

#: Formats a Transcoder accepts (case-insensitive).
FORMATS = tuple(_k.FORMATS)

__all__ = ["Transcoder", "FORMATS", "Base64Error"]
