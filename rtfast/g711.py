"""G.711 mu-law and A-law, bit-exact with the stdlib ``audioop`` tables.

Two exact references: by default every encoder gives ``audioop``'s bytes (what
every Python bridge produces today). ``itu=True`` on a mu-law encoder gives the
ITU-T G.191 reference instead: the two fold a negative sample differently
(audioop ``-(x >> 2)``, G.191 ``(~x) >> 2``) and differ by one code step on 508
negative inputs (-1..-4 encode to 0x7E in audioop, 0x7F in G.191); A-law and
the decoders agree, so ``itu`` changes nothing for A-law.

PCM16 means signed 16-bit little-endian mono samples; G.711 is one byte per
sample (8 kHz in telephony). Every function takes any C-contiguous buffer
(``bytes``, ``bytearray``, ``memoryview``, numpy ``uint8``/``int16`` arrays),
and releases the GIL on large inputs. ``*_into`` forms write into a caller's
writable buffer and return the number of bytes written. ``*_b64`` forms fuse
base64 with the codec without materialising the intermediate bytes: the path
of a Twilio media frame.
"""

from rtfast._loader import load

_k = load("_g711")

ulaw_encode = _k.ulaw_encode
ulaw_decode = _k.ulaw_decode
alaw_encode = _k.alaw_encode
alaw_decode = _k.alaw_decode
ulaw_encode_into = _k.ulaw_encode_into
ulaw_decode_into = _k.ulaw_decode_into
alaw_encode_into = _k.alaw_encode_into
alaw_decode_into = _k.alaw_decode_into
ulaw_decode_b64 = _k.ulaw_decode_b64
ulaw_encode_b64 = _k.ulaw_encode_b64
alaw_decode_b64 = _k.alaw_decode_b64
alaw_encode_b64 = _k.alaw_encode_b64

#: The byte a codec uses for silence (what a padded frame is filled with).
ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5

__all__ = [
    "ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode",
    "ulaw_encode_into", "ulaw_decode_into", "alaw_encode_into", "alaw_decode_into",
    "ulaw_decode_b64", "ulaw_encode_b64", "alaw_decode_b64", "alaw_encode_b64",
    "ULAW_SILENCE", "ALAW_SILENCE",
]
