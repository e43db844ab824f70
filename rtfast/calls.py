"""``client.realtime.calls``: the Realtime calls REST API (SIP and WebRTC), as the official client.

    await client.realtime.calls.accept(call_id, type="realtime", model="gpt-realtime",
                                       instructions="...", tools=[...])
    async with client.realtime.connect(call_id=call_id) as conn:   # the sideband websocket
        ...
    await client.realtime.calls.refer(call_id, target_uri="tel:+14155550123")
    await client.realtime.calls.hangup(call_id)

Paths, bodies, headers and return values are the official ones (openai 3.57 to 3.60
``resources/realtime/calls.py``): ``accept``/``reject``/``refer``/``hangup``
POST JSON to ``/realtime/calls/{call_id}/<verb>`` with ``Accept: */*`` and return
None; ``create`` (WebRTC) POSTs the SDP offer (multipart with ``session``, or a
bare ``application/sdp`` body without it) and returns the SDP answer as a
:class:`BinaryResponseContent`. An argument left out is not sent; an explicit
``None`` is sent as JSON ``null`` (``tracing=None`` turns tracing off), as the
official client does.

An error status raises the :class:`rtfast.HandshakeError` subclass for it
(``NotFoundError`` for an unknown or already answered call...), carrying the
API's message; a failed connection raises :class:`rtfast.errors.ConnectError`.
Requests go through ``urllib`` on a worker thread, like the client's other REST
calls (a few per call: not worth an HTTP client dependency), so the
environment's proxies apply.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import urllib.parse
import urllib.request
from typing import Any

from rtfast._rest import urlopen, with_auth, with_retries
from rtfast.http import seconds

__all__ = ["AsyncCalls", "BinaryResponseContent", "RawResponse", "NOT_GIVEN", "given"]

log = logging.getLogger("rtfast.calls")


class _NotGiven:
    """An argument that was left out (not sent), as the official ``omit``; ``None`` is sent as null."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


NOT_GIVEN: Any = _NotGiven()


def given(value: Any) -> bool:
    """Whether an argument was given: not rtfast's NOT_GIVEN, nor the official client's own
    ``NOT_GIVEN`` / ``omit`` (code written for it forwards those as defaults)."""
    if value is NOT_GIVEN:
        return False
    t = type(value)
    return not (t.__name__ in ("NotGiven", "Omit") and t.__module__.startswith("openai"))


class BinaryResponseContent:
    """A response body, as the official ``HttpxBinaryResponseContent``: ``content``, ``text``,
    ``json()``, ``read()``, ``aread()``, ``iter_bytes()``, ``write_to_file()``; plus ``status_code``
    and ``headers`` (lower-case names)."""

    __slots__ = ("content", "status_code", "headers")

    def __init__(self, content: bytes, status_code: int = 200, headers: dict[str, str] | None = None) -> None:
        self.content = content
        self.status_code = status_code
        self.headers = headers or {}

    @property
    def encoding(self) -> str | None:
        return self.charset_encoding or "utf-8"

    @property
    def charset_encoding(self) -> str | None:
        ctype = self.headers.get("content-type", "")
        for part in ctype.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip('"')
        return None

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding or "utf-8", "replace")

    def json(self, **kwargs: Any) -> Any:
        return json.loads(self.content, **kwargs)

    def read(self) -> bytes:
        return self.content

    async def aread(self) -> bytes:
        return self.content

    def iter_bytes(self, chunk_size: int | None = None):
        size = chunk_size or len(self.content) or 1
        for i in range(0, len(self.content), size):
            yield self.content[i:i + size]

    def write_to_file(self, file: str | os.PathLike) -> None:
        with open(file, mode="wb") as f:
            f.write(self.content)

    def __repr__(self) -> str:
        return f"<BinaryResponseContent {self.status_code}, {len(self.content)} bytes>"


class RawResponse:
    """What ``calls.with_raw_response.<method>(...)`` returns, as the official ``LegacyAPIResponse``:
    ``status_code``, ``headers`` (lower-case names), ``content``, ``text``, ``json()``, ``method``,
    ``url``, ``request_id``, and ``parse()``: what the plain method returns (None, or the SDP answer)."""

    __slots__ = ("status_code", "headers", "content", "method", "url", "_parsed")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes, method: str, url: str,
                 parsed: Any) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content
        self.method, self.url, self._parsed = method, url, parsed

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    def json(self, **kwargs: Any) -> Any:
        return json.loads(self.content, **kwargs)

    def parse(self) -> Any:
        return self._parsed

    def __repr__(self) -> str:
        return f"<RawResponse [{self.status_code}] {self.method} {self.url}>"


def _path_segment(value: str) -> str:
    """A call id as one path segment, escaped as the official ``path_template`` does ('/' included)."""
    quoted = urllib.parse.quote(str(value), safe="!$&'()*+,;=:@")
    if quoted.strip(".") == "" or quoted.lower() in ("%2e", "%2e%2e", ".%2e", "%2e."):
        raise ValueError(f"Constructed path contains dot-segment {quoted!r} which is not allowed")
    return quoted


def _check_call_id(call_id: str) -> str:
    if not call_id:
        raise ValueError(f"Expected a non-empty value for `call_id` but received {call_id!r}")
    return _path_segment(call_id)


def _fields(**fields: Any) -> dict:
    return {k: v for k, v in fields.items() if given(v)}


def _merge(*sets: dict | None) -> dict[str, str]:
    merged: dict[str, tuple[str, str]] = {}
    for headers in sets:
        for key, value in (headers or {}).items():
            merged[key.lower()] = (key, value)
    return dict(merged.values())


def _multipart(parts: list[tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body of (name, data, content type) parts, and its Content-Type."""
    boundary = os.urandom(16).hex()
    out = []
    for name, data, ctype in parts:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
                   f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _dumps(obj: Any) -> bytes:
    # the official encoder's settings (openapi_dumps): compact, UTF-8, no NaN
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class AsyncCalls:
    """``client.realtime.calls`` (see the module docstring)."""

    __slots__ = ("_client", "_raw")

    def __init__(self, client, _raw: bool = False) -> None:
        self._client = client
        self._raw = _raw

    def __repr__(self) -> str:
        return f"<AsyncCalls {self._client.base_url}>"

    @property
    def with_raw_response(self) -> AsyncCalls:
        """The same methods, returning a :class:`RawResponse` (status, headers, body; ``parse()``)."""
        return AsyncCalls(self._client, True)

    def _result(self, result: tuple, parsed: Any) -> Any:
        if not self._raw:
            return parsed
        status, headers, content, url = result
        return RawResponse(status, headers, content, "POST", url, parsed)

    async def _request(self, path: str, body: bytes | None, headers: dict[str, str],
                       extra_headers: dict | None, extra_query: dict | None, timeout: float | None) -> tuple:
        client = self._client
        url = client.base_url + path
        if extra_query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(extra_query)
        base_headers = _merge(client._headers(), headers, extra_headers)
        timeout = seconds(client.timeout if timeout is None else timeout)
        where = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
        verb = path.rsplit("/", 1)[-1]

        async def attempt() -> tuple:      # the credentials of the moment, each attempt
            request = urllib.request.Request(url, data=body, headers=await with_auth(client, base_headers),
                                             method="POST")
            return (*await asyncio.to_thread(urlopen, request, timeout, f"realtime.calls {verb}", where), url)

        result = await with_retries(client.max_retries, f"realtime.calls {verb}", attempt)
        log.debug("POST %s -> %d", path, result[0])   # the path only: no headers, no body
        return result

    async def _json(self, path: str, fields: dict | None, extra_headers, extra_query, extra_body, timeout) -> Any:
        body = None
        # the official client declares JSON even when it sends no body (hangup)
        headers = {"Accept": "*/*", "Content-Type": "application/json"}
        if fields is not None or extra_body:
            body = _dumps({**(fields or {}), **(extra_body or {})})
        return self._result(await self._request(path, body, headers, extra_headers, extra_query, timeout), None)

    async def create(self, *, sdp: str, session: dict = NOT_GIVEN, extra_headers: dict | None = None,
                     extra_query: dict | None = None, extra_body: dict | None = None,
                     timeout: float | None = None) -> BinaryResponseContent:
        """Create a Realtime call over WebRTC from the caller's SDP offer; the response's ``text``
        is the SDP answer. With only ``sdp`` the body is the offer itself (``application/sdp``);
        with ``session`` (or ``extra_body``) a multipart form of both, as the official client."""
        if not isinstance(sdp, str):
            raise TypeError("Raw multipart alternative must be a string")
        merged = {**_fields(sdp=sdp, session=session), **(extra_body or {})}
        if set(merged) == {"sdp"}:
            body, ctype = sdp.encode(), "application/sdp"
        else:
            parts = []
            if "sdp" in merged:
                if not isinstance(merged["sdp"], str):
                    raise TypeError("Multipart field 'sdp' must be a string")
                parts.append(("sdp", merged.pop("sdp").encode(), "application/sdp"))
            if "session" in merged:
                parts.append(("session", _dumps(merged.pop("session")), "application/json"))
            for name, value in merged.items():     # other extra_body keys: plain form fields
                parts.append((name, str(value).encode(), "text/plain"))
            body, ctype = _multipart(parts)
        result = await self._request("/realtime/calls", body, {"Accept": "application/sdp", "Content-Type": ctype},
                                     extra_headers, extra_query, timeout)
        return self._result(result, BinaryResponseContent(result[2], result[0], result[1]))

    async def accept(self, call_id: str, *, type: str, audio: dict = NOT_GIVEN, include: list = NOT_GIVEN,
                     instructions: str = NOT_GIVEN, max_output_tokens: int | str = NOT_GIVEN,
                     model: str = NOT_GIVEN, output_modalities: list = NOT_GIVEN,
                     parallel_tool_calls: bool = NOT_GIVEN, prompt: dict | None = NOT_GIVEN,
                     reasoning: dict = NOT_GIVEN, tool_choice: Any = NOT_GIVEN, tools: list = NOT_GIVEN,
                     tracing: Any = NOT_GIVEN, truncation: Any = NOT_GIVEN, extra_headers: dict | None = None,
                     extra_query: dict | None = None, extra_body: dict | None = None,
                     timeout: float | None = None) -> None:
        """Accept an incoming SIP call and configure its Realtime session (the fields of a
        ``session.update``'s session); then connect the sideband with ``realtime.connect(call_id=...)``."""
        path = f"/realtime/calls/{_check_call_id(call_id)}/accept"
        fields = _fields(model=model, type=type, audio=audio, include=include, instructions=instructions,
                         max_output_tokens=max_output_tokens, output_modalities=output_modalities,
                         parallel_tool_calls=parallel_tool_calls, prompt=prompt, reasoning=reasoning,
                         tool_choice=tool_choice, tools=tools, tracing=tracing, truncation=truncation)
        return await self._json(path, fields, extra_headers, extra_query, extra_body, timeout)

    async def reject(self, call_id: str, *, status_code: int = NOT_GIVEN, extra_headers: dict | None = None,
                     extra_query: dict | None = None, extra_body: dict | None = None,
                     timeout: float | None = None) -> None:
        """Decline an incoming SIP call with a SIP status code (the API's default: 603 Decline)."""
        path = f"/realtime/calls/{_check_call_id(call_id)}/reject"
        return await self._json(path, _fields(status_code=status_code), extra_headers, extra_query, extra_body,
                                timeout)

    async def refer(self, call_id: str, *, target_uri: str, extra_headers: dict | None = None,
                    extra_query: dict | None = None, extra_body: dict | None = None,
                    timeout: float | None = None) -> None:
        """Transfer an active SIP call with SIP REFER (``tel:+14155550123``, ``sip:agent@example.com``)."""
        path = f"/realtime/calls/{_check_call_id(call_id)}/refer"
        return await self._json(path, _fields(target_uri=target_uri), extra_headers, extra_query, extra_body,
                                timeout)

    async def hangup(self, call_id: str, *, extra_headers: dict | None = None, extra_query: dict | None = None,
                     extra_body: dict | None = None, timeout: float | None = None) -> None:
        """End an active Realtime call (SIP or WebRTC)."""
        path = f"/realtime/calls/{_check_call_id(call_id)}/hangup"
        return await self._json(path, None, extra_headers, extra_query, extra_body, timeout)
