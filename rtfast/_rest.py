"""The client's REST requests: the official client's retry rule (openai._base_client), and one
request over rtfast.http as the client makes it (``rest_request``: live, webhooks).

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

from rtfast.errors import ConnectError, ConnectTimeout, HandshakeError, HttpError, handshake_error

__all__ = ["DEFAULT_MAX_RETRIES", "retry_delay", "with_retries", "rest_request", "with_auth", "urlopen"]

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
    try:                                # as the official client: a date it cannot read is no delay
        when = email.utils.parsedate_tz(headers.get("retry-after") or "")
        return None if when is None else email.utils.mktime_tz(when) - time.time()
    except (TypeError, ValueError, OverflowError, OSError):
        return None


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


async def with_auth(client, headers: dict) -> dict:
    """``headers`` under the client's credentials of the moment (its key provider asked now, as
    the official client asks it before each attempt); a header of ``headers`` with the same
    name (any case) wins."""
    auth = client._fresh_auth()
    fresh = await auth() if auth else None
    if not fresh:
        return headers
    names = {k.lower() for k in headers}
    return {**{k: v for k, v in fresh.items() if k.lower() not in names}, **headers}


async def rest_request(client, what: str, method: str, url: str, headers: dict, body: bytes | None,
                       timeout=None):
    """One REST request of ``client`` over rtfast.http, as the official client makes it: through
    the environment's proxy, ``timeout`` (the client's when None) a deadline, ``headers`` under
    the credentials of each attempt (:func:`with_auth`), tried again by the rule above. An error status raises its typed error with the API's message; no usable answer
    raises ConnectError (ConnectTimeout: none in time), naming host:port only. Returns the
    rtfast.http response."""
    from rtfast._handshake import server_message
    from rtfast.http import for_url, seconds, within

    timeout = seconds(client.timeout if timeout is None else timeout)
    http = for_url(url)                 # one connection per request (as rtfast.http does anyway)

    async def attempt():
        try:
            response = await http.request(method, url, headers=await with_auth(client, headers), body=body,
                                          timeout=timeout)
        except HttpError as exc:        # its message names the method and host:port only
            if exc.reason == "timeout":
                raise ConnectTimeout(f"{what}: no answer from {exc.host} {within(timeout)}") from None
            raise ConnectError(f"{what}: could not reach {exc.host} ({exc})") from None
        log.debug("%s -> %d", what, response.status)       # no URL, headers or body
        if response.status >= 400:
            raise handshake_error(response.status, server_message(response.body), response.body, response.headers)
        return response

    try:
        return await with_retries(client.max_retries, what, attempt)
    finally:
        await http.aclose()


def urlopen(request, timeout: float | None, what: str, where: str) -> tuple:
    """One urllib request (blocking: run it on a worker thread) -> (status, headers with lower-case
    names, body). An error status raises its typed error with the API's message; no usable
    answer ConnectError (ConnectTimeout: none in time), naming ``where`` (host:port) only: never
    the key, the query or the body."""
    import http.client
    import urllib.error
    import urllib.request

    from rtfast._handshake import server_message
    from rtfast.http import within

    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        raise handshake_error(exc.code, server_message(payload), payload, exc.headers) from None
    except TimeoutError:
        raise ConnectTimeout(f"{what}: no answer from {where} {within(timeout)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise ConnectTimeout(f"{what}: no answer from {where} {within(timeout)}") from None
        # an OSError's own words ("Connection refused"); never str() of an error that may quote the URL
        words = reason if isinstance(reason, str) else getattr(reason, "strerror", None) or type(reason).__name__
        raise ConnectError(f"{what}: could not reach {where}: {words}") from None
