"""Frame mutations for the scanner fuzz tests: truncate, replace, insert, delete."""

from __future__ import annotations

import random

# Bytes that matter to a JSON scanner or to base64, and a few that never should appear.
INTERESTING = b'"\\{}[],: 0-1.eE\x00\x80=aZ+/'


def mutations(frame: bytes, rng: random.Random, count: int = 60):
    """count single-edit variants of frame."""
    for _ in range(count):
        b = bytearray(frame)
        op = rng.randrange(4)
        i = rng.randrange(len(b) + 1)
        if op == 0:
            del b[i:]
        elif op == 1 and i < len(b):
            b[i] = rng.choice(INTERESTING)
        elif op == 2:
            b[i:i] = bytes([rng.randrange(256)])
        elif i < len(b):
            del b[i]
        yield bytes(b)
