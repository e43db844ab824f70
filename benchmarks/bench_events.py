"""rtfast.events beside the official ``openai`` client, in the same groups.

Parsing: ``rtfast.events.parse`` vs ``RealtimeConnection.parse_event`` (the function the
official connection runs on every frame: ``json.loads`` then ``construct_type_unchecked``
over the server event union). Frames vary between calls (ids, text, token counts).

Dumping: ``rtfast.events.dumps`` vs the official send-side serialisation
(``RealtimeConnection.send``: ``json.dumps(maybe_transform(dict, ...))`` for the dicts the
``connection.input_audio_buffer.append(...)``-style helpers build, ``model.to_json(
use_api_names=True, exclude_unset=True)`` for a model), both building the event per call.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
from typing import Union

import orjson
import pytest

pytest.importorskip("openai")
from openai._utils import maybe_transform, strip_not_given  # noqa: E402
from openai.resources.realtime.realtime import RealtimeConnection  # noqa: E402
from openai.types.realtime import (  # noqa: E402
    ConversationItemCreateEvent,
    InputAudioBufferAppendEvent,
    RealtimeClientEventParam,
    ResponseCreateEventWithReferencesParam,
    SessionUpdateEvent,
)

from rtfast import events  # noqa: E402

N = 64  # distinct frames per case, cycled
SEND_TYPE = Union[RealtimeClientEventParam, ResponseCreateEventWithReferencesParam]


def official_parse(data: bytes):
    return RealtimeConnection.parse_event(None, data)  # self is unused by parse_event


def official_send_dict(event: dict) -> str:
    return json.dumps(maybe_transform(event, SEND_TYPE))  # RealtimeConnection.send, dict branch


def response_done(i: int) -> bytes:
    return orjson.dumps(
        {
            "type": "response.done",
            "event_id": f"event_{i:06d}",
            "response": {
                "object": "realtime.response",
                "id": f"resp_{i:06d}",
                "status": "completed",
                "status_details": None,
                "output": [
                    {
                        "id": f"item_{i:06d}",
                        "type": "message",
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_audio", "transcript": f"Sure, your booking number {i} is confirmed."}],
                    }
                ],
                "conversation_id": "conv_1",
                "output_modalities": ["audio"],
                "max_output_tokens": "inf",
                "audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}},
                "usage": {
                    "total_tokens": 300 + i,
                    "input_tokens": 200 + i,
                    "output_tokens": 100,
                    "input_token_details": {
                        "text_tokens": 120,
                        "audio_tokens": 80 + i,
                        "image_tokens": 0,
                        "cached_tokens": 64,
                        "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0, "image_tokens": 0},
                    },
                    "output_token_details": {"text_tokens": 20, "audio_tokens": 80},
                },
                "metadata": None,
            },
        }
    )


def item_done(i: int) -> bytes:
    return orjson.dumps(
        {
            "type": "conversation.item.done",
            "event_id": f"event_{i:06d}",
            "previous_item_id": f"item_{i - 1:06d}",
            "item": {
                "id": f"item_{i:06d}",
                "type": "message",
                "object": "realtime.item",
                "status": "completed",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": f"I'd like to change booking {i}, please."}],
            },
        }
    )


def text_delta(i: int) -> bytes:
    return orjson.dumps(
        {
            "type": "response.output_text.delta",
            "event_id": f"event_{i:06d}",
            "response_id": "resp_000001",
            "item_id": "item_000001",
            "output_index": 0,
            "content_index": 0,
            "delta": ("Sure, ", "let me ", "check that ", "for you.")[i % 4] * (1 + i % 3),
        }
    )


FRAMES = {"response.done": response_done, "conversation.item.done": item_done, "response.output_text.delta": text_delta}


@pytest.mark.parametrize("kind", list(FRAMES))
@pytest.mark.parametrize("impl", ["rtfast", "openai"])
def test_parse(benchmark, kind, impl):
    frames = [FRAMES[kind](i) for i in range(N)]
    fn = events.parse if impl == "rtfast" else official_parse
    for f in frames:  # the same values either way
        assert fn(f).to_dict() == orjson.loads(f) if impl == "rtfast" else fn(f).type == kind
    it = itertools.cycle(frames)
    benchmark.group = f"parse {kind}"
    benchmark(lambda: fn(next(it)))


# 20 ms of G.711 at 8 kHz: 160 bytes -> 216 base64 characters
AUDIO = [base64.b64encode(os.urandom(160)).decode() for _ in range(N)]
SESSION_KW = dict(instructions="You are a phone assistant. Be brief.", voice="marin")


def dump_cases():
    """(group, impl, per-call function); every impl builds the event and serialises it."""
    audio = itertools.cycle(AUDIO)
    ids = itertools.cycle([f"call_{i}" for i in range(N)])
    yield "dump input_audio_buffer.append", "rtfast", lambda: events.dumps(events.input_audio_buffer_append(next(audio)))
    yield "dump input_audio_buffer.append", "rtfast-dict", lambda: events.dumps(
        {"type": "input_audio_buffer.append", "audio": next(audio)}
    )
    yield "dump input_audio_buffer.append", "openai-dict", lambda: official_send_dict(
        strip_not_given({"type": "input_audio_buffer.append", "audio": next(audio)})
    )
    yield "dump input_audio_buffer.append", "openai-model", lambda: InputAudioBufferAppendEvent(
        type="input_audio_buffer.append", audio=next(audio)
    ).to_json(use_api_names=True, exclude_unset=True)

    def session_dict():
        return {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "server_vad"}},
                    "output": {"format": {"type": "audio/pcmu"}, "voice": SESSION_KW["voice"]},
                },
                "instructions": SESSION_KW["instructions"],
            },
        }

    yield "dump session.update", "rtfast", lambda: events.dumps(events.session_update_g711(**SESSION_KW))
    yield "dump session.update", "openai-dict", lambda: official_send_dict(session_dict())
    yield "dump session.update", "openai-model", lambda: SessionUpdateEvent.model_validate(session_dict()).to_json(
        use_api_names=True, exclude_unset=True
    )

    def output_item(call_id):
        return {"type": "function_call_output", "call_id": call_id, "output": '{"status":"confirmed"}'}

    yield "dump function_call_output", "rtfast", lambda: events.dumps(
        events.function_call_output(next(ids), '{"status":"confirmed"}')
    )
    yield "dump function_call_output", "openai-dict", lambda: official_send_dict(
        {"type": "conversation.item.create", "item": output_item(next(ids))}
    )
    yield "dump function_call_output", "openai-model", lambda: ConversationItemCreateEvent.model_validate(
        {"type": "conversation.item.create", "item": output_item(next(ids))}
    ).to_json(use_api_names=True, exclude_unset=True)


DUMPS = {(g, impl): fn for g, impl, fn in dump_cases()}


@pytest.mark.parametrize("group, impl", list(DUMPS))
def test_dump(benchmark, group, impl):
    fn = DUMPS[(group, impl)]
    assert json.loads(fn())["type"] == group.split()[1].replace("function_call_output", "conversation.item.create")
    benchmark.group = group
    benchmark(fn)
