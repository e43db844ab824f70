"""Recording a call: rtfast's Recorder beside the stdlib wave + audioop doing the same.

The baseline is what a bridge writes without rtfast: per 20 ms frame, decode the
caller's base64 mu-law and the assistant's chunk (audioop), interleave them
(audioop.tostereo + add) and append to a ``wave`` file, on the event loop.

- "per frame": what one 20 ms frame each way costs the thread that calls it (the
  event loop). rtfast's background writer runs meanwhile (its blocks are handed
  over in this loop once a second of audio).
- "60 s call": a whole minute of a call to a finished, closed file, the writer's
  work included (rtfast waits for its writer): the total CPU of recording.
"""

import base64
import itertools
import wave

import pytest

from conftest import audioop, frames
from rtfast.bridge.recording import Recorder, RecordingWriter
from rtfast.g711 import ulaw_encode

CALLER = [ulaw_encode(f) for f in frames(160, 8000, count=64, seed=1)]
PAYLOADS = [base64.b64encode(u) for u in CALLER]
ASSISTANT = [ulaw_encode(f) for f in frames(160, 8000, count=64, seed=2)]


class StdlibRecorder:
    """The naive recording: synchronous, per frame, stdlib only."""

    def __init__(self, path):
        self.w = wave.open(str(path), "wb")
        self.w.setnchannels(2)
        self.w.setsampwidth(2)
        self.w.setframerate(8000)

    def frame(self, payload, chunk):
        left = audioop.ulaw2lin(base64.b64decode(payload), 2)
        right = audioop.ulaw2lin(chunk, 2)
        self.w.writeframesraw(audioop.add(audioop.tostereo(left, 2, 1, 0), audioop.tostereo(right, 2, 0, 1), 2))

    def close(self):
        self.w.close()


@pytest.mark.parametrize("impl", ["rtfast", "stdlib"])
def test_per_frame(benchmark, tmp_path, impl):
    benchmark.group = "recording: one 20 ms frame each way, pcmu/8000 (event-loop cost)"
    pairs = itertools.cycle(list(zip(PAYLOADS, ASSISTANT)))
    clock = itertools.count(20, 20)
    if impl == "rtfast":
        writer = RecordingWriter()
        rec = Recorder(tmp_path, "call", audio_format="pcmu/8000", start_ms=0, writer=writer)
        caller, assistant = rec.caller_b64, rec.assistant

        def step():
            payload, chunk = next(pairs)
            t = next(clock)
            caller(payload)
            assistant(t + 60, chunk)

        benchmark(step)
        rec.close(next(clock))
        assert writer.close(30)
        assert rec.stats["dropped_bytes"] == 0
    else:
        rec = StdlibRecorder(tmp_path / "call.wav")
        benchmark(lambda: rec.frame(*next(pairs)))
        rec.close()


@pytest.mark.parametrize("impl", ["rtfast", "stdlib"])
def test_sixty_second_call(benchmark, tmp_path, impl):
    benchmark.group = "recording: a 60 s call to a closed file, pcmu/8000 (all threads)"
    pairs = list(zip(PAYLOADS, ASSISTANT)) * (3000 // 64 + 1)
    pairs = pairs[:3000]
    writer = RecordingWriter()
    n = itertools.count()

    def rtfast_call():
        rec = Recorder(tmp_path, f"call{next(n)}", audio_format="pcmu/8000", start_ms=0, writer=writer)
        caller, assistant = rec.caller_b64, rec.assistant
        t = 0
        for payload, chunk in pairs:
            t += 20
            caller(payload)
            assistant(t + 60, chunk)
        rec.close(t + 20)
        assert writer.flush(30)

    def stdlib_call():
        rec = StdlibRecorder(tmp_path / f"call{next(n)}.wav")
        for payload, chunk in pairs:
            rec.frame(payload, chunk)
        rec.close()

    benchmark.pedantic(rtfast_call if impl == "rtfast" else stdlib_call, rounds=10, warmup_rounds=1)
    writer.close(30)
