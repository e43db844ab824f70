"""Frame mutations for the scanner fuzz tests: truncate, replace, insert, delete."""

from __future__ import annotations

import os
import random
import time

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


def rounds(quick: int):
    """Round numbers for a fuzz loop: `quick` rounds by default, or as many as
    fit in RTFAST_FUZZ_SECONDS seconds when that is set (CI's time-boxed fuzzing,
    run under the ASan/UBSan build). Prints how many ran (see it with -s)."""
    seconds = float(os.environ.get("RTFAST_FUZZ_SECONDS") or 0)
    end = time.monotonic() + seconds
    n = 0
    while (n < quick) if seconds <= 0 else (time.monotonic() < end):
        yield n
        n += 1
    print(f" [{n} fuzz rounds{f' in {seconds:g} s' if seconds > 0 else ''}]", end="")


def seeded() -> random.Random:
    """A random generator whose seed is printed, so a failure can be replayed."""
    seed = int(os.environ.get("RTFAST_FUZZ_SEED") or random.randrange(2**32))
    print(f" [RTFAST_FUZZ_SEED={seed}]", end="")
    return random.Random(seed)
