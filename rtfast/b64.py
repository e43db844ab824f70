"""Base64 (RFC 4648, standard alphabet, padding required), SIMD-accelerated.

Identical to ``binascii`` on valid input. Decoding is strict: a character
outside the alphabet, misplaced padding or a length that is not a multiple of
4 raises :class:`Base64Error` (a ``ValueError``) whose ``offset`` is the byte
offset of the first problem. ``decode`` accepts bytes, ASCII ``str`` or any
byte buffer; ``encode`` takes any C-contiguous buffer (its raw bytes).
"""

from rtfast._loader import load
from rtfast.errors import Base64Error

_k = load("_b64")

encode = _k.encode
decode = _k.decode
encode_into = _k.encode_into
decode_into = _k.decode_into
implementation = _k.implementation


def encoded_length(n: int) -> int:
    """Length of the base64 text for n input bytes (with padding)."""
    return (n + 2) // 3 * 4


__all__ = ["encode", "decode", "encode_into", "decode_into", "implementation",
           "encoded_length", "Base64Error"]
