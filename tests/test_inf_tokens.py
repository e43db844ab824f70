"""max_output_tokens="inf" (GA) / max_response_output_tokens="inf" (beta) is accepted
everywhere the API accepts it: session.update and response.create, through rtfast's
event builders, parse and dumps, the client, and the embedded server."""

import orjson
import pytest

import rtfast
from rtfast import events
from rtfast.server import RealtimeServer, Script

openai = pytest.importorskip("openai")
import openai.types.beta.realtime as official_beta  # noqa: E402
import openai.types.realtime as official_ga  # noqa: E402

KEY = {"ga": "max_output_tokens", "beta": "max_response_output_tokens"}
OFFICIAL = {"ga": official_ga, "beta": official_beta}


@pytest.fixture(params=["ga", "beta"])
def gen(request):
    return request.param


@pytest.mark.parametrize("value", ["inf", 4096])
def test_events_build_dump_and_parse(gen, value):
    key = KEY[gen]
    built = [events.session_update_g711(gen, **{key: value}), events.response_create(gen, **{key: value})]
    for event in built:
        frame = events.dumps(event)
        body = orjson.loads(frame)
        assert (body.get("session") or body.get("response"))[key] == value
        assert events.parse_client(frame, generation=gen) == event
        official = getattr(OFFICIAL[gen], "SessionUpdateEvent" if event.type == "session.update"
                           else "ResponseCreateEvent").model_validate(body)
        assert orjson.loads(official.model_dump_json(exclude_unset=True)) == body


def _session(gen, value):
    return {"type": "realtime", KEY[gen]: value} if gen == "ga" else {KEY[gen]: value}


async def _turn(conn, gen, response):
    await conn.conversation.item.create(item={"type": "message", "role": "user",
                                              "content": [{"type": "input_text", "text": "hi"}]})
    await conn.response.create(response=response)
    async for event in conn:
        assert event.type != "error", event
        if event.type == "response.done":
            return event.response


@pytest.mark.parametrize("kind", ["rtfast", "openai"])
async def test_client_and_embedded_server_accept_inf(gen, kind):
    key = KEY[gen]
    async with RealtimeServer(script=Script(reply_text="ok", audio_ms=100)) as server:
        client = (rtfast.AsyncOpenAI if kind == "rtfast" else openai.AsyncOpenAI)(
            api_key="sk-test", websocket_base_url=server.base_url)
        realtime = client.realtime if gen == "ga" else client.beta.realtime
        async with realtime.connect(model="gpt-realtime") as conn:
            assert (await conn.recv()).type == "session.created"
            for value in (100, "inf"):
                await conn.session.update(session=_session(gen, value))
                updated = await conn.recv()
                assert updated.type == "session.updated" and getattr(updated.session, key) == value
            done = await _turn(conn, gen, {key: "inf"})
            assert done.status == "completed" and done.max_output_tokens == "inf"
            await conn.session.update(session=_session(gen, 50))
            await conn.recv()
            assert (await _turn(conn, gen, {key: "inf"})).status == "completed"
        sent = [e for e in server.received[0] if e["type"] in ("session.update", "response.create")]
        assert sent[1]["session"][key] == "inf" and sent[2]["response"][key] == "inf"


async def test_response_done_reports_the_responses_own_limit(gen):
    key = KEY[gen]
    async with RealtimeServer(script=Script(reply_text="ok", audio_ms=100)) as server:
        client = rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
        realtime = client.realtime if gen == "ga" else client.beta.realtime
        async with realtime.connect(model="gpt-realtime") as conn:
            await conn.recv()
            await conn.session.update(session=_session(gen, 50))
            await conn.recv()
            assert (await _turn(conn, gen, {key: "inf"})).max_output_tokens == "inf"
