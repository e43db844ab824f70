"""rtfast events offer the official (pydantic) models' serialisation API with the same results.

Every frame is parsed by rtfast and by the official client's own parser (``construct_type_unchecked``
over the event union, as ``RealtimeConnection.parse_event`` does), then ``model_dump`` /
``model_dump_json`` / ``to_dict`` / ``to_json`` / ``model_copy`` / ``model_fields`` are compared
call by call: the same dicts, the same JSON text (key order included).
"""

from __future__ import annotations

import copy
import json

import orjson
import pytest

pytest.importorskip("openai")
from openai._models import construct_type_unchecked  # noqa: E402

from rtfast import events  # noqa: E402
from rtfast.server import RealtimeServer, Script  # noqa: E402
from test_events import OFFICIAL, PARSERS, event_cases, official_frame  # noqa: E402

CALLS = [
    ("model_dump", {}),
    ("model_dump", {"mode": "json"}),
    ("model_dump", {"exclude_unset": True}),
    ("model_dump", {"exclude_none": True}),
    ("model_dump", {"exclude_defaults": True}),
    ("model_dump", {"by_alias": True, "exclude_unset": True, "exclude_none": True}),
    ("model_dump", {"include": {"type", "event_id"}}),
    ("model_dump", {"exclude": {"type"}, "exclude_unset": True}),
    ("model_dump_json", {}),
    ("model_dump_json", {"indent": 2, "exclude_none": True}),
    ("model_dump_json", {"indent": 4, "exclude_unset": True}),
    ("to_dict", {}),
    ("to_dict", {"mode": "json", "exclude_unset": False}),
    ("to_dict", {"exclude_none": True}),
    ("to_json", {}),
    ("to_json", {"indent": None}),
    ("to_json", {"exclude_unset": False}),
]


def official_parse(frame: bytes, gen: str, side: str):
    return construct_type_unchecked(value=json.loads(frame), type_=OFFICIAL[(gen, side)])


def compare(frame: bytes, gen: str, side: str) -> None:
    ours, theirs = PARSERS[side](frame, generation=gen), official_parse(frame, gen, side)
    for method, kwargs in CALLS:
        got, want = getattr(ours, method)(**kwargs), getattr(theirs, method)(**kwargs)
        assert got == want, (method, kwargs)
        if isinstance(want, dict) and (method, kwargs) != ("to_dict", {}):
            # key order too; the default to_dict() is the wire dict, "type" first (dict equality holds)
            assert list(got) == list(want), (method, kwargs)
    assert list(type(ours).model_fields) == list(type(theirs).model_fields)
    assert [f.is_required() for f in type(ours).model_fields.values()] == [
        f.is_required() for f in type(theirs).model_fields.values()]
    assert ours.model_fields_set == theirs.model_fields_set
    update = {"event_id": "evt_changed", "brand_new": [1, None]}
    assert ours.model_copy(update=update).model_dump() == theirs.model_copy(update=update).model_dump()
    assert ours.model_copy(update=update).to_dict() == theirs.model_copy(update=update).to_dict()
    deep = ours.model_copy(deep=True)
    assert deep == ours and deep.model_dump() == theirs.model_copy(deep=True).model_dump()
    assert copy.deepcopy(ours) == ours


@pytest.mark.parametrize("gen, side, model, variant", [p for p in event_cases() if p.values[3] in (None, 0, 3)])
def test_every_event_dumps_like_the_official_model(gen, side, model, variant):
    _, data = official_frame(model, variant)
    compare(orjson.dumps(data), gen, side)
    # unknown keys (nested ones too) and explicit nulls of optional fields
    optional = [n for n, f in model.model_fields.items() if not f.is_required()]
    data = {**data, **dict.fromkeys(optional[:1]), "x_new": {"a": None, "b": [1]}, "x_null": None}
    compare(orjson.dumps(data), gen, side)


def test_wire_dict_order_unchanged_and_key_order_of_to_dict_defaults():
    frame = b'{"type":"response.output_text.delta","event_id":"e","response_id":"r","item_id":"i",' \
            b'"output_index":0,"content_index":0,"delta":"hi"}'
    ev = events.parse(frame)
    assert events.dumps(ev).startswith(b'{"type":')            # the wire keeps type first
    assert ev.to_dict() == orjson.loads(frame)


def test_unsupported_keywords_are_clear_type_errors():
    ev = events.parse(b'{"type":"input_audio_buffer.cleared","event_id":"e"}')
    assert ev.model_dump(round_trip=False, context=None) == {"event_id": "e", "type": "input_audio_buffer.cleared"}
    with pytest.raises(TypeError, match="round_trip.*not supported"):
        ev.model_dump(round_trip=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        ev.model_dump_json(bogus=1)
    with pytest.raises(ValueError, match="mode"):
        ev.model_dump(mode="yaml")


@pytest.mark.parametrize("gen", ["ga", "beta"])
async def test_frames_of_the_embedded_server_dump_like_the_official_models(gen):
    """Every frame of a conversation with the embedded server (function call included)."""
    from rtfast.server import FunctionCall

    script = Script(reply_text="Hello there", audio_ms=100, function_call=FunctionCall("lookup", {"id": 7}))
    import websockets

    async with RealtimeServer(script=script) as server:
        headers = {"Authorization": "Bearer k", **({"OpenAI-Beta": "realtime=v1"} if gen == "beta" else {})}
        async with websockets.connect(server.url + "?model=m", additional_headers=headers) as ws:
            frames = []

            async def turn(text):
                await ws.send(orjson.dumps({"type": "conversation.item.create", "item": {
                    "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}).decode())
                await ws.send('{"type":"response.create"}')
                while True:
                    frame = await ws.recv(decode=False)
                    frames.append(frame)
                    if b'"response.done"' in frame:
                        return

            await turn("hi")                        # audio and transcript
            tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
            session = {"type": "realtime", "tools": [tool]} if gen == "ga" else {"tools": [tool]}
            await ws.send(orjson.dumps({"type": "session.update", "session": session}).decode())
            await turn("look it up")                # a function call
    types = {orjson.loads(f)["type"] for f in frames}
    assert {"session.created", "response.output_audio.delta" if gen == "ga" else "response.audio.delta",
            "response.function_call_arguments.done", "response.done"} <= types
    for frame in frames:
        compare(frame, gen, "server")
