"""The hot Realtime messages: rtfast's wire path beside the official client's
parsing/serialisation and beside bare orjson + pybase64, same frames, same run."""

import base64
import json
from typing import Any, Union, cast

import orjson
import pybase64
import pytest

from conftest import cycler, frames
from rtfast import wire

openai_models = pytest.importorskip("openai._models")
openai_utils = pytest.importorskip("openai._utils")
from openai.types.realtime.realtime_client_event_param import RealtimeClientEventParam  # noqa: E402
from openai.types.realtime.realtime_server_event import RealtimeServerEvent  # noqa: E402
from openai.types.realtime.response_create_event_with_references_param import (  # noqa: E402
    ResponseCreateEventWithReferencesParam,
)

# 100 ms of PCM16 24 kHz per delta: 4800 bytes, 6400 base64 chars.
DELTAS = [
    orjson.dumps({"type": "response.output_audio.delta", "event_id": f"event_{i:022d}",
                  "response_id": "resp_CCj0bEVCoHJHKxd0tmKOl", "item_id": "item_CCj0bOYF85JDWD4EXsfpo",
                  "output_index": 0, "content_index": 0,
                  "delta": base64.b64encode(pcm).decode()})
    for i, pcm in enumerate(frames(2400, 24000, count=64))
]


def official_parse(frame):
    ev = openai_models.construct_type_unchecked(value=json.loads(frame), type_=cast(Any, RealtimeServerEvent))
    return ev, base64.b64decode(ev.delta)


def rtfast_parse(frame):
    ev = wire.parse_audio_delta(frame)
    return ev, ev.audio()


def bare_parse(frame):
    d = orjson.loads(frame)
    return d, pybase64.b64decode(d["delta"])


@pytest.mark.parametrize("impl", ["rtfast", "openai", "orjson+pybase64"])
def test_parse_audio_delta_100ms(benchmark, impl):
    benchmark.group = "wire: parse response.output_audio.delta (100 ms PCM16 24 kHz) + decode audio"
    fn = {"rtfast": rtfast_parse, "openai": official_parse, "orjson+pybase64": bare_parse}[impl]
    nxt = cycler(DELTAS)
    _, audio = benchmark(lambda: fn(nxt()))
    assert len(audio) == 4800


PCM_20MS = frames(480, 24000, count=64)
_APPEND_TYPE = Union[RealtimeClientEventParam, ResponseCreateEventWithReferencesParam]


def official_append(pcm):
    # What conn.input_audio_buffer.append(audio=base64...) does before the socket.
    event = openai_utils.strip_not_given({"type": "input_audio_buffer.append",
                                          "audio": base64.b64encode(pcm).decode(), "event_id": None})
    return json.dumps(openai_utils.maybe_transform(event, _APPEND_TYPE))


@pytest.mark.parametrize("impl", ["rtfast", "openai", "orjson+pybase64"])
def test_build_append_20ms(benchmark, impl):
    benchmark.group = "wire: build input_audio_buffer.append (20 ms PCM16 24 kHz)"
    fn = {
        "rtfast": wire.build_append,
        "openai": official_append,
        "orjson+pybase64": lambda pcm: orjson.dumps({"type": "input_audio_buffer.append",
                                                     "audio": pybase64.b64encode(pcm).decode()}),
    }[impl]
    nxt = cycler(PCM_20MS)
    frame = benchmark(lambda: fn(nxt()))
    assert len(frame) > 1280
