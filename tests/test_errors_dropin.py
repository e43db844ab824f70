"""The official client's exception names on rtfast: the same names, the same family tree, and
what code written for it reads off an error (status_code, code, param, type, request_id),
checked beside the official client against the same loopback fakes."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest

import rtfast
from carrier_fakes import FakeServer, Reply
from rtfast.calls import NOT_GIVEN, given

openai = pytest.importorskip("openai")

NAMES = ["OpenAIError", "APIError", "APIStatusError", "APIConnectionError", "APITimeoutError",
         "APIResponseValidationError", "BadRequestError", "AuthenticationError", "PermissionDeniedError",
         "NotFoundError", "ConflictError", "UnprocessableEntityError", "RateLimitError", "InternalServerError"]
KEY = "sk-test-errors"


@pytest.mark.parametrize("a,b", list(itertools.product(NAMES, NAMES)))
def test_the_family_tree_is_the_official_one(a, b):
    # every pair: code catching the official base catches rtfast's error of the same kind
    assert issubclass(getattr(rtfast, a), getattr(rtfast, b)) == issubclass(getattr(openai, a), getattr(openai, b))


def test_every_rtfast_error_is_an_openai_error_by_its_official_name():
    from rtfast import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), rtfast.OpenAIError), name
    assert issubclass(rtfast.ConnectError, OSError) and issubclass(rtfast.ProtocolError, ValueError)


def api(req):
    if req.headers.get("authorization") != f"Bearer {KEY}":
        return Reply(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                     "param": None, "code": "invalid_api_key"}}, {"x-request-id": "req_401"})
    if "gone" in req.path:
        return Reply(404, {"error": {"message": "No such endpoint.", "type": "invalid_request_error",
                                     "param": "webhook_endpoint_id", "code": None}}, {"x-request-id": "req_404"})
    if "conflict" in req.path:
        return Reply(409, {"error": {"message": "Busy.", "type": "conflict", "param": None, "code": 409}})
    if "broken" in req.path:
        return Reply(500, b"upstream exploded", {"x-request-id": "req_500"})
    return Reply(400, {"error": {"message": "Invalid 'url'.", "type": "invalid_request_error", "param": "url",
                                 "code": "invalid_value"}}, {"x-request-id": "req_400"})


def client_for(kind, base_url, key=KEY):
    if kind == "openai":
        return openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0)
    return rtfast.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0)    # (retries: test_retries.py)


async def failure(kind, base_url, endpoint_id, key=KEY):
    lib = openai if kind == "openai" else rtfast
    try:
        await client_for(kind, base_url, key).webhooks.retrieve(endpoint_id)
    except lib.APIStatusError as exc:       # the official client's own name, on either
        return (type(exc).__name__, exc.status_code, exc.code, exc.param, exc.type, exc.request_id,
                isinstance(exc, lib.APIError) and isinstance(exc, lib.OpenAIError))
    raise AssertionError("no error")


async def test_a_status_error_reads_as_the_official_one():
    async with FakeServer(api) as fake:
        base = fake.base_url + "/v1"
        for endpoint_id, key in (("whe_1", KEY), ("gone", KEY), ("conflict", KEY), ("broken", KEY),
                                 ("whe_1", "sk-wrong")):
            ours = await failure("rtfast", base, endpoint_id, key)
            theirs = await failure("openai", base, endpoint_id, key)
            assert ours == theirs, endpoint_id
    assert ours == ("AuthenticationError", 401, "invalid_api_key", None, "invalid_request_error", "req_401", True)


async def test_connection_failures_are_api_connection_errors():
    with socket.socket() as s:                      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(rtfast.APIConnectionError) as info:
        await client_for("rtfast", refused).webhooks.retrieve("whe_1")
    assert not isinstance(info.value, rtfast.APITimeoutError) and isinstance(info.value, rtfast.APIError)

    async def silent(reader, writer):               # accepts, never answers
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with server:
        base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        client = rtfast.AsyncOpenAI(api_key=KEY, base_url=base, timeout=0.2, max_retries=0)
        with pytest.raises(rtfast.APITimeoutError) as info:
            await client.webhooks.retrieve("whe_1")
        assert isinstance(info.value, rtfast.APIConnectionError) and isinstance(info.value, TimeoutError)


def test_error_attributes_from_the_body():
    from rtfast.errors import handshake_error

    e = handshake_error(422, "m", b'{"error":{"code":7,"param":"p","type":"t","message":"m"}}', {"x-request-id": "r"})
    assert (type(e), e.code, e.param, e.type, e.request_id, e.status_code) == (
        rtfast.UnprocessableEntityError, "7", "p", "t", "r", 422)   # a numeric code as a string, as officially
    for body in (b"", b"not json", b"[1, 2]", b'{"error": "flat"}', b'{"error": {"param": 3, "type": []}}'):
        e = handshake_error(400, "m", body)
        assert (e.code, e.param, e.type, e.request_id, e.body) == (None, None, None, None, body)
    e = handshake_error(400, "m", b'{"code": "c", "type": "t"}')    # no "error" wrapper: the body itself
    assert (e.code, e.type) == ("c", "t")


def test_the_official_sentinels_mean_left_out():
    assert not given(NOT_GIVEN) and not given(openai.NOT_GIVEN) and not given(openai.omit)
    assert given(None) and given(0) and given("") and given([])
    assert rtfast.NOT_GIVEN is rtfast.not_given is rtfast.omit is NOT_GIVEN
    assert isinstance(rtfast.omit, rtfast.Omit) and rtfast.NotGiven is rtfast.Omit and not rtfast.NOT_GIVEN


async def test_official_sentinels_forwarded_into_rtfast_are_not_sent():
    seen = []

    def echo(req):
        seen.append(req.body)
        return Reply(200, {"id": "whe_1", "object": "webhook_endpoint", "created_at": 1, "name": "n",
                           "url": "https://e.com", "event_types": ["realtime.call.incoming"]})

    async with FakeServer(echo) as fake:
        w = client_for("rtfast", fake.base_url + "/v1").webhooks
        await w.update("whe_1", name=openai.NOT_GIVEN, url=openai.omit, event_types=NOT_GIVEN)
        await w.update("whe_1", name="renamed", url=openai.NOT_GIVEN)
    assert seen == [b"{}", b'{"name":"renamed"}']



def test_errors_survive_pickling_and_copying():
    import copy
    import pickle

    from rtfast.connection import ConnectionClosedError, ConnectionClosedOK
    from rtfast.errors import ConnectionClosed, MissingCredentials, handshake_error

    status = handshake_error(400, "bad", b'{"error":{"code":"c","param":"p","type":"t"}}', {"x-request-id": "r"})
    for exc in (status, handshake_error(503, "m"), MissingCredentials("no key"), ConnectionClosed(1011, "x"),
                ConnectionClosedError(1011, "boom", True), ConnectionClosedOK(1000, "", False)):
        for again in (pickle.loads(pickle.dumps(exc)), copy.copy(exc)):
            assert type(again) is type(exc) and str(again) == str(exc)
            assert {k: v for k, v in vars(again).items() if k != "_headers"} == \
                {k: v for k, v in vars(exc).items() if k != "_headers"}
    again = pickle.loads(pickle.dumps(status))
    assert (again.code, again.param, again.type, again.request_id, again.status_code) == ("c", "p", "t", "r", 400)
