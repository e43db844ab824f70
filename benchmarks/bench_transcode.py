"""Transcoder on Twilio <-> OpenAI frames beside the composed path users write today.

Inbound: a 216-char Twilio media payload (base64 mu-law 8 kHz, 20 ms) to
base64 PCM16 24 kHz (an input_audio_buffer.append). Outbound: 20 ms of
base64 PCM16 24 kHz (960 bytes, a response.output_audio.delta) to a 216-char
mu-law payload. Baseline: base64.b64decode -> audioop -> np.frombuffer ->
soxr.ResampleStream.resample_chunk -> astype(int16).tobytes -> b64encode, at
the same soxr quality. Frames differ between calls (a pool of 256 cycled).
soxr filters in blocks, so frame costs alternate: each round is one second of
a call (50 frames); per-frame cost = round time / 50.
"""

import base64

import numpy as np
import pytest
import soxr

from conftest import audioop, cycler, pool
from rtfast.transcode import Transcoder

BATCH = 50  # frames per round: 1 s of audio


def payloads(direction):
    if direction == "twilio->openai":
        return [base64.b64encode(audioop.lin2ulaw(f, 2)) for f in pool("frame8k")]
    return [base64.b64encode(f) for f in pool("frame24k")]


def composed(direction, quality):
    b64decode, b64encode, frombuffer, int16 = base64.b64decode, base64.b64encode, np.frombuffer, np.int16
    if direction == "twilio->openai":
        s = soxr.ResampleStream(8000, 24000, 1, dtype="int16", quality=quality)
        ulaw2lin = audioop.ulaw2lin
        return lambda b64: b64encode(
            s.resample_chunk(frombuffer(ulaw2lin(b64decode(b64), 2), int16)).astype(int16).tobytes())
    s = soxr.ResampleStream(24000, 8000, 1, dtype="int16", quality=quality)
    lin2ulaw = audioop.lin2ulaw
    return lambda b64: b64encode(
        lin2ulaw(s.resample_chunk(frombuffer(b64decode(b64), int16)).astype(int16).tobytes(), 2))


@pytest.mark.parametrize("quality", ["HQ", "HQ-LL", "VHQ"])
@pytest.mark.parametrize("direction", ["twilio->openai", "openai->twilio"])
@pytest.mark.parametrize("impl", ["rtfast", "composed"])
def test_frame(benchmark, direction, quality, impl):
    if quality == "HQ-LL" and impl == "composed":
        pytest.skip("soxr.ResampleStream has no HQ-LL (see test_held_back for HQ-LL beside it)")
    benchmark.group = f"transcode {direction} b64, 1 s as 50 frames, {quality}"
    items = payloads(direction)
    assert len(items[0]) == (216 if direction == "twilio->openai" else 1280)
    nxt = cycler(items)
    if impl == "rtfast":
        src, dst = ("pcmu/8000", "pcm16/24000") if direction == "twilio->openai" else ("pcm16/24000", "pcmu/8000")
        t = Transcoder(src, dst, quality=quality)
        feed = t.feed_b64_to_b64
    else:
        feed = composed(direction, quality)
    benchmark(lambda: [feed(nxt()) for _ in range(BATCH)])


# -- audio held back per direction -------------------------------------------------------
#
# Not a time: what a bridge leg owes the far end after each 20 ms frame, i.e.
# the input time fed minus the output time emitted, over 5 s of frames (its
# median and max), how many frames came back empty, and when a click fed in
# comes out (from the end of the frame holding it to the call that returns its
# peak). The timed part is the same 50-frame round as above. Figures are in
# extra_info and in the table printed at the end of the module.

DIRECTIONS = {"twilio->openai": ("pcmu/8000", "pcm16/24000"), "openai->twilio": ("pcm16/24000", "pcmu/8000")}
HELD_IMPLS = ["rtfast-passthrough", "rtfast-transcode-HQ-LL", "rtfast-transcode-HQ", "soxr-stream-HQ"]
_rows: list[tuple] = []


@pytest.fixture(scope="module")
def held_table(request):
    yield _rows
    tr = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if tr is None or not _rows:
        return
    with capture.global_and_fixture_disabled():          # teardown output is captured otherwise
        tr.write_line("")
        tr.write_sep("-", "audio held back per direction, fed 20 ms frames (ms)")
        tr.write_line(f"{'direction':16} {'impl':24} {'median':>7} {'max':>7} {'min':>6} "
                      f"{'empty frames':>13} {'click out after':>16}")
        for row in _rows:
            tr.write_line("{:16} {:24} {:7.1f} {:7.1f} {:6.1f} {:>13} {:16.1f}".format(*row))


def _leg(direction, impl):
    """A feed(b64) -> b64 for one leg, and the rates/sample sizes to count with."""
    src, dst = DIRECTIONS[direction]
    if impl == "rtfast-passthrough":
        t = Transcoder("pcmu/8000", "pcmu/8000")
        return t.feed_b64_to_b64, ("pcmu/8000", "pcmu/8000")
    if impl.startswith("rtfast-transcode"):
        t = Transcoder(src, dst, quality=impl.rsplit("-", 1)[-1] if impl.endswith("-HQ") else "HQ-LL")
        return t.feed_b64_to_b64, (src, dst)
    return composed(direction, "HQ"), (src, dst)


def _samples(fmt, b64):
    n = len(base64.b64decode(b64))
    return n // 2 if fmt.startswith("pcm16") else n


def _pcm_frames(fmt, pcm):
    rate = int(fmt.split("/")[1])
    step = rate // 50 * 2
    if fmt.startswith("pcmu"):
        return [base64.b64encode(audioop.lin2ulaw(pcm[i:i + step], 2)) for i in range(0, len(pcm), step)]
    return [base64.b64encode(pcm[i:i + step]) for i in range(0, len(pcm), step)]


def held_back(direction, impl):
    from conftest import speech
    feed, (src, dst) = _leg(direction, impl)
    irate, orate = int(src.split("/")[1]), int(dst.split("/")[1])
    held, empty, fed, got = [], 0, 0, 0
    for frame in _pcm_frames(src, speech(5.0, irate, seed=4)):
        n = _samples(dst, feed(frame))
        fed += irate // 50
        got += n
        empty += n == 0
        held.append(1000 * (fed / irate - got / orate))
    # a click 0.5 s in, in silence: when does its peak come out?
    feed, _ = _leg(direction, impl)
    click = np.zeros(irate, np.int16)
    click[irate // 2 + irate // 100] = 20000          # mid-frame
    out_pcm, emitted_at = [], []
    for k, frame in enumerate(_pcm_frames(src, click.tobytes())):
        raw = base64.b64decode(feed(frame))
        y = np.frombuffer(raw, np.int16) if dst.startswith("pcm16") else \
            np.frombuffer(audioop.ulaw2lin(raw, 2), np.int16)
        out_pcm.append(y)
        emitted_at += [k] * len(y)
    y = np.concatenate(out_pcm)
    peak = int(np.argmax(np.abs(y)))
    click_out = 1000 * ((emitted_at[peak] + 1) / 50 - (irate // 2 + irate // 100) / irate)
    return float(np.median(held)), max(held), min(held), empty, click_out


@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("impl", HELD_IMPLS)
def test_held_back(benchmark, held_table, direction, impl):
    benchmark.group = f"held back {direction}: 1 s as 50 frames (held-back ms in extra_info / table)"
    median, worst, least, empty, click_out = held_back(direction, impl)
    benchmark.extra_info.update(held_back_median_ms=round(median, 1), held_back_max_ms=round(worst, 1),
                                held_back_min_ms=round(least, 1), empty_frames_of_250=empty,
                                click_out_after_ms=round(click_out, 1))
    held_table.append((direction, impl, median, worst, least, f"{empty}/250", click_out))
    if impl == "rtfast-passthrough":
        assert median == worst == 0
    elif impl == "rtfast-transcode-HQ-LL":
        assert median <= 10 and worst <= 20 and empty == 0
    feed, _ = _leg(direction, impl)
    # passthrough: the session speaks mu-law both ways, so both legs carry 216-char payloads
    items = payloads("twilio->openai") if impl == "rtfast-passthrough" else payloads(direction)
    nxt = cycler(items)
    benchmark(lambda: [feed(nxt()) for _ in range(BATCH)])
