"""Slow strict base64 decoder stating the error-offset rules of rtfast.b64.

Scan left to right; the first byte that is not valid where it stands is the
error: '=' there is misplaced padding, anything else a bad character. Padding
is valid only as the last one or two bytes of a length that is a multiple of
4, after at least two data characters. With no such byte, a length that is
not a multiple of 4 is a bad length, reported at the end.
"""

from __future__ import annotations

import base64

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def check(text: bytes) -> tuple[str, int] | None:
    """(reason, offset) of the first problem, or None when valid."""
    n = len(text)
    pad = 0
    if n % 4 == 0 and n >= 4:
        if text[-1:] == b"=":
            pad = 2 if text[-2:-1] == b"=" else 1
    for i, c in enumerate(text):
        if i >= n - pad:
            if c != ord("="):
                return ("padding" if c == ord("=") else "character", i)
            continue
        if c not in ALPHABET:
            return ("padding" if c == ord("=") else "character", i)
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
