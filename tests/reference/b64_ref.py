"""Slow strict base64 decoder stating the error-offset rules of rtfast.b64.

Scan left to right; the first byte that is not valid where it stands is the
error. '=' is valid only as one of the last two bytes of a length that is a
multiple of 4; a misplaced '=', or data after the padding ("xx=A"), is a
padding error; any other byte outside the alphabet is a bad character. With
no such byte, a length that is not a multiple of 4 is a bad length, reported
at the end.
"""

from __future__ import annotations

import base64

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def check(text: bytes) -> tuple[str, int] | None:
    """(reason, offset) of the first problem, or None when valid."""
    n = len(text)
    padded = False
    for i, c in enumerate(text):
        if c == ord("="):
            if n % 4 == 0 and i >= n - 2:       # "xx==" or "xxx="
                padded = True
                continue
            return ("padding", i)
        if c not in ALPHABET:
            return ("character", i)
        if padded:                              # data after the padding: "xx=A"
            return ("padding", i)
    if n % 4:
        return ("length", n)
    return None


def decode(text: bytes) -> bytes:
    problem = check(text)
    if problem:
        raise ValueError(problem)
    return base64.b64decode(text, validate=True)


def encode(data: bytes) -> bytes:
    return base64.b64encode(data)
