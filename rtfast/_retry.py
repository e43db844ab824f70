"""The official client's retry rule for REST calls (openai._base_client), for rtfast's.

A call that failed to connect, timed out, or got 408, 409, 429 or a 5xx is tried again, up to
the client's ``max_retries`` (2 by default) more times; a ``x-should-retry: true|false`` header
overrides the status; the wait is the server's ``retry-after-ms`` / ``retry-after`` when it asks
for 0-120 s (more than 120 s: not retried), else 0.5 s doubling per retry up to 8 s, less 0-25 %
of jitter. A websocket connection is not retried here: it has its own reconnect policy."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rtfast.errors import ConnectError, HandshakeError

__all__ = ["DEFAULT_MAX_RETRIES", "retry_delay", "with_retries"]

DEFAULT_MAX_RETRIES = 2
_INITIAL, _MAX, _MAX_AFTER = 0.5, 8.0, 120.0

log = logging.getLogger("rtfast.retry")
T = TypeVar("T")


def _retry_after(headers) -> float | None:
    """Seconds the server asks to wait (retry-after-ms, then retry-after as seconds or a date)."""
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            delay = float(value)
        except ValueError:
            continue
        if delay == math.inf and value.strip().lower() not in ("inf", "+inf", "infinity", "+infinity"):
            return _MAX_AFTER + 1           # an overflowing number: too long, not a shorter wait
        return delay / divisor
    when = email.utils.parsedate_tz(headers.get("retry-after") or "")
    if when is None:
        return None
    return email.utils.mktime_tz(when) - time.time()


def retry_delay(exc: BaseException, retries_taken: int, max_retries: int) -> float | None:
    """Seconds to wait before trying the call again after ``exc``, or None: do not."""
    if retries_taken >= max_retries:
        return None
    after = None
    if isinstance(exc, HandshakeError):
        headers = exc._headers
        after = _retry_after(headers)
        if after is not None and math.isfinite(after) and after > _MAX_AFTER:
            return None
        should = headers.get("x-should-retry") if headers is not None else None
        if should == "false" or (should != "true" and not (exc.status in (408, 409, 429) or exc.status >= 500)):
            return None
    elif not isinstance(exc, ConnectError):
        return None
    if after is not None and math.isfinite(after) and 0 < after <= _MAX_AFTER:
        return after
    return max(0.0, min(_INITIAL * 2.0 ** min(retries_taken, 1000), _MAX) * (1 - 0.25 * random.random()))


async def with_retries(max_retries: int, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """``await attempt()``, tried again as the official client would (see the module)."""
    retries_taken = 0
    while True:
        try:
            return await attempt()
        except (HandshakeError, ConnectError) as exc:
            delay = retry_delay(exc, retries_taken, max_retries)
            if delay is None:
                raise
            log.info("%s: %s; retrying in %.2f s (%d of %d)", what, type(exc).__name__, delay,
                     retries_taken + 1, max_retries)
            retries_taken += 1
            await asyncio.sleep(delay)
