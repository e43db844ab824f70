"""Streaming sample-rate conversion through libsoxr, at C cost per frame.

``Resampler(in_rate, out_rate, *, quality="HQ", dtype="int16")`` is one
stateful mono stream (one per call and direction): ``process(pcm) -> bytes``,
``process_into(pcm, out) -> int``, ``flush()`` at the end of an utterance,
``reset()``, ``delay`` and ``max_output(n_bytes)``. PCM16 means signed 16-bit
little-endian samples; a partial trailing sample is carried to the next call.

Streaming output equals one-shot output bit for bit, however the input is
cut. The filters are python-soxr's own (its bundled libsoxr is called
directly, see :func:`engine`); int16 output is soxr's undithered result,
``rint(soxr.resample(x / 32768, in_rate, out_rate, quality) * 32768)`` for x
as float64, clipped to int16. ``soxr.resample`` on int16 arrays differs from
it by at most 1 LSB: libsoxr dithers int16 output with a noise whose seed
depends on the size of each output call (so dithered streams depend on the
chunking) and on the FPU's sticky invalid-operation flag.

soxr works in blocks: 8 kHz -> 24 kHz at HQ emits about 1468 samples every
third 20 ms frame (VHQ: 3300), so output arrives in bursts, not per frame, and
a linear-phase filter delays by half its length: fed 20 ms frames, HQ holds
back 12-73 ms (median 42). ``quality="HQ-LL"`` is HQ's filter made minimum
phase and run in libsoxr's smallest DFT blocks: same passband and alias
rejection, output for every frame, 0.5-18.5 ms held back (median 9.5) at
8 <-> 24 kHz and 0.2-9.2 ms at 16 <-> 24 kHz. The bridge uses it; see
docs/audio-formats.md for what each quality costs in delay.
"""

from rtfast._loader import load

_k = load("_resample")

Resampler = _k.Resampler
engine = _k.engine

#: soxr quality names accepted by ``Resampler`` (case-insensitive); HQ is the
#: default, HQ-LL its low-latency form (libsoxr-direct engine only).
QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ", "HQ-LL")

__all__ = ["Resampler", "engine", "QUALITIES"]
