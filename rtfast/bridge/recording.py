"""Opt-in recording of a call: a stereo WAV and a JSONL transcript, written off the event loop.

A :class:`Recorder` per call is fed from the event loop (the same thread as
its :class:`~rtfast.bridge.call.Call`); one :class:`RecordingWriter` thread,
shared by every call, decodes and writes::

    rec = Recorder("recordings", call_sid, audio_format=call.carrier_format, start_ms=now)
    rec.caller_b64(payload)                 # each inbound media payload, in arrival order
    rec.assistant(play_at_ms, chunk)        # each outbound chunk and when it starts playing
    rec.cut(now)                            # the carrier's playback was cleared (barge-in)
    rec.event("transcript", now, role="user", text="...")
    rec.close(now)                          # at the end of the call; returns at once

``<directory>/<call_id>.wav`` is PCM16 at the carrier's rate, caller left,
assistant right; ``<call_id>.jsonl`` one JSON object per line,
``{"t_ms": ..., "kind": ..., ...}`` with ``t_ms`` from ``start_ms``.

Alignment. The left channel is the caller's audio laid end to end from
``start_ms`` (carriers send it continuously in real time). The right channel
places each assistant chunk at its play time; silence lies between chunks.
Chunks are scheduled ahead of real time and a barge-in may cut them, so the
right channel is final only up to a *horizon*: the last cut, the caller's
audio less ``guard_ms`` (the caller's audio is at most real time, a cut
happens at real time), or the latest chunk's play time less ``max_lead_ms``
(the bridge schedules no further ahead). What lies before the horizon goes to
the writer in blocks of about ``block_ms``; what lies after stays in a small
in-memory window, in the carrier's format.

The two channels run on two clocks: the left on the carrier's sample clock,
the right on the call's monotonic clock; they drift apart by the clocks'
difference (tens of ppm: a few ms in ten minutes).

Wiring it into a bridge: ``caller_b64(media.payload)`` (or ``caller(audio)``
for binary media) for each inbound frame, after any reordering;
``assistant(play_end, chunk)`` for each chunk as it is framed for the carrier
(``play_end`` before it advances); ``cut(now)`` where the carrier's clear is
sent; ``close(now)`` when the call ends.

Cost on the event loop: appending bytes to a ``bytearray`` per frame, and
once per block handing two ``bytes`` to the writer's queue. G.711 decoding,
interleaving (numpy) and file writes happen in the writer thread.

Never blocking a call: the writer's queue is bounded in bytes
(``max_pending_bytes``); a block that does not fit is dropped (counted in
:attr:`Recorder.stats`, the file keeps its timing: the writer writes silence
in its place) with a rate-limited warning. Transcript lines of a dropped
block wait in memory for the next one (at most ``max_events`` lines). A
recording whose files cannot be written (a bad directory, a full disk) stops
with one warning; the call goes on.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import struct
import threading
import time
from collections import deque

import numpy as np
import orjson

from rtfast import b64, g711

__all__ = ["Recorder", "RecordingWriter", "default_writer", "FORMATS"]

log = logging.getLogger("rtfast.bridge.recording")

#: Carrier formats a recording takes: (sample rate, bytes per sample, decoder to PCM16 or None).
FORMATS = {
    "pcmu/8000": (8000, 1, g711.ulaw_decode),
    "pcma/8000": (8000, 1, g711.alaw_decode),
    "pcm16/8000": (8000, 2, None),
    "pcm16/16000": (16000, 2, None),
    "pcm16/24000": (24000, 2, None),
}
# The byte a gap between assistant chunks is filled with in memory (PCM16: b"\0").
# mu-law 0xFF decodes to 0; A-law has no code for 0 (0xD5 is +8), so its gaps are
# also listed and zeroed after decoding: silence is 0 whichever way it was made.
_SILENCE = {"pcmu/8000": b"\xff", "pcma/8000": b"\xd5"}

_BLOCK, _CLOSE, _OPEN = 0, 1, 2
_JOB_OVERHEAD = 256          # bytes a queued job costs beyond its audio (so tiny jobs are bounded too)
_DUMPS = orjson.dumps
_JSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
_b64decode = b64.decode
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _file_name(call_id: str) -> str:
    """call_id made safe as a file name: no separators, no leading dot, bounded."""
    if not isinstance(call_id, str):
        raise TypeError(f"call_id must be a str, not {type(call_id).__name__}")
    name = _UNSAFE.sub("_", call_id)[:200]
    if name.startswith("."):
        name = "_" + name[1:]
    if not name:
        raise ValueError("call_id is empty: a recording needs a name")
    return name


def _wav_header(frames: int, rate: int) -> bytes:
    data = frames * 4
    if data > 0xFFFFFFFF - 36:           # 4 GiB: 12 h at 24 kHz; a reader still gets the leading part
        data = (0xFFFFFFFF - 36) // 4 * 4
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1, 2, rate,
                       rate * 4, 4, 16, b"data", data)


class _Sink:
    """One recording's files: opened, written and closed by the writer thread only.

    The recorder reads ``error`` and the ``lost_*`` counters (one writer each)."""

    __slots__ = ("wav_path", "jsonl_path", "rate", "decode", "wav", "jsonl", "frames", "error",
                 "lost_bytes", "lost_events", "done")

    def __init__(self, wav_path: str, jsonl_path: str, rate: int, decode) -> None:
        self.wav_path, self.jsonl_path, self.rate, self.decode = wav_path, jsonl_path, rate, decode
        self.wav = self.jsonl = None
        self.frames = 0                  # stereo frames in the file so far
        self.error: str | None = None
        self.lost_bytes = self.lost_events = 0
        self.done = False                # closed (header final), or failed

    def open(self) -> None:
        os.makedirs(os.path.dirname(self.wav_path) or ".", exist_ok=True)
        self.jsonl = open(self.jsonl_path, "wb")
        self.wav = open(self.wav_path, "wb")
        self.wav.write(_wav_header(0, self.rate))      # sizes patched at close

    def _zeros(self, frames: int) -> None:
        z = _zero_block(self.rate)
        step = len(z) // 4
        while frames > 0:
            k = min(frames, step)
            self.wav.write(z if k == step else memoryview(z)[:4 * k])
            frames -= k
        # (frames is updated by the caller)

    def block(self, start: int, lraw: bytes, rraw: bytes, events: list, gaps: tuple) -> None:
        if events:
            self.jsonl.write(b"".join(events))
            self.jsonl.flush()                         # a transcript line is readable within a block
        if start > self.frames:
            self._zeros(start - self.frames)          # dropped blocks and silent stretches
            self.frames = start
        dec = self.decode
        left = dec(lraw) if dec is not None and lraw else lraw
        right = dec(rraw) if dec is not None and rraw else rraw
        ml, mr = len(left) >> 1, len(right) >> 1
        m = max(ml, mr)
        skip = self.frames - start                     # never rewrite frames already written
        if m <= skip:
            return
        stereo = (np.empty if ml == mr else np.zeros)((m, 2), "<i2")
        if ml:
            stereo[:ml, 0] = np.frombuffer(left, "<i2", ml)
        if mr:
            stereo[:mr, 1] = np.frombuffer(right, "<i2", mr)
            for a, b in gaps:
                stereo[a:b, 1] = 0
        self.wav.write(stereo[skip:] if skip > 0 else stereo)
        self.frames = start + m

    def finish(self, total: int, events: list) -> None:
        if events:
            self.jsonl.write(b"".join(events))
        if total > self.frames:
            self._zeros(total - self.frames)
            self.frames = total
        self.wav.seek(0)
        self.wav.write(_wav_header(self.frames, self.rate))
        self.release()

    def release(self) -> None:
        self.done = True
        for f in (self.wav, self.jsonl):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self.wav = self.jsonl = None


_ZEROS: dict[int, bytes] = {}


def _zero_block(rate: int) -> bytes:
    z = _ZEROS.get(rate)
    if z is None:
        z = _ZEROS[rate] = bytes(4 * rate)             # one second of stereo silence
    return z


class RecordingWriter:
    """The background thread that writes recordings (one shared by all calls).

    Jobs queue in a deque bounded by ``max_pending_bytes`` (audio and
    transcript bytes queued and not yet written, plus a small fixed cost per
    job); a block that would exceed it is refused and the recorder drops it.
    The thread starts with the first job and is a daemon; :meth:`flush` and
    :meth:`close` wait for what was queued (tests, shutdown: call them from a
    thread that may block, not from the event loop).
    """

    def __init__(self, max_pending_bytes: int = 32 << 20, *, warn_interval_s: float = 10.0,
                 name: str = "rtfast-recording") -> None:
        if max_pending_bytes <= 0:
            raise ValueError(f"max_pending_bytes must be positive, not {max_pending_bytes}")
        self.max_pending_bytes = max_pending_bytes
        self.warn_interval_s = warn_interval_s
        self.name = name
        lock = threading.Lock()
        self._has_jobs = threading.Condition(lock)     # the thread waits here
        self._progress = threading.Condition(lock)     # flush() waits here
        self._jobs: deque = deque()
        self._thread: threading.Thread | None = None
        self._waiting = False
        self._stop = False
        self._submitted = self._done = 0
        self._flushers = 0
        #: bytes queued and not yet written; its highest value so far
        self.pending_bytes = self.high_water_bytes = 0
        #: blocks refused because the queue was full, and their bytes
        self.dropped_jobs = self.dropped_bytes = 0
        self._warned_at = float("-inf")
        self._unwarned_jobs = self._unwarned_bytes = 0

    @property
    def pending_jobs(self) -> int:
        return len(self._jobs)

    def submit(self, job: tuple, nbytes: int, control: bool = False) -> bool:
        """Queue a job (the recorders' business); False if it did not fit.
        ``control`` jobs (open, close) are always taken: one each per recording."""
        nbytes += _JOB_OVERHEAD
        with self._has_jobs:
            if not control and self.pending_bytes + nbytes > self.max_pending_bytes:
                self.dropped_jobs += 1
                self.dropped_bytes += nbytes
                self._unwarned_jobs += 1
                self._unwarned_bytes += nbytes
                now = time.monotonic()
                warn = now - self._warned_at >= self.warn_interval_s
                if warn:
                    self._warned_at = now
                    jobs, dropped = self._unwarned_jobs, self._unwarned_bytes
                    self._unwarned_jobs = self._unwarned_bytes = 0
            else:
                self._jobs.append((job, nbytes))
                self.pending_bytes += nbytes
                if self.pending_bytes > self.high_water_bytes:
                    self.high_water_bytes = self.pending_bytes
                self._submitted += 1
                if self._thread is None:
                    self._stop = False
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()
                elif self._waiting:
                    self._has_jobs.notify()
                return True
        if warn:
            log.warning("recording writer %s is behind (%d bytes queued, limit %d): dropped %d blocks "
                        "(%d bytes) of recordings", self.name, self.pending_bytes, self.max_pending_bytes,
                        jobs, dropped)
        return False

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job queued before this call is written; False on timeout."""
        with self._progress:
            target = self._submitted
            self._flushers += 1
            try:
                return self._progress.wait_for(lambda: self._done >= target, timeout)
            finally:
                self._flushers -= 1

    def close(self, timeout: float | None = None) -> bool:
        """Write what is queued and stop the thread (a later job starts it again);
        False if it did not finish within ``timeout``."""
        with self._has_jobs:
            thread = self._thread
            if thread is None:
                return True
            self._stop = True
            self._has_jobs.notify()
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        cond, jobs = self._has_jobs, self._jobs
        while True:
            with cond:
                while not jobs:
                    if self._stop:
                        self._thread = None
                        return
                    self._waiting = True
                    cond.wait()
                    self._waiting = False
                job, nbytes = jobs.popleft()
            try:
                self._do(job)
            finally:
                with cond:
                    self.pending_bytes -= nbytes       # held until written: the bound covers it
                    self._done += 1
                    if self._flushers:
                        self._progress.notify_all()

    @staticmethod
    def _do(job: tuple) -> None:
        kind, sink = job[0], job[1]
        if sink.error is not None or sink.done:
            if kind == _BLOCK:
                sink.lost_bytes += len(job[3]) + len(job[4])
                sink.lost_events += len(job[5])
            elif kind == _CLOSE:
                sink.lost_events += len(job[3])
            return
        try:
            if sink.wav is None:
                sink.open()
            if kind == _BLOCK:
                sink.block(job[2], job[3], job[4], job[5], job[6])
            elif kind == _CLOSE:
                sink.finish(job[2], job[3])
        except Exception as exc:                      # OSError mostly; any failure ends this recording only
            sink.error = f"{type(exc).__name__}: {exc}"
            sink.release()
            if kind == _BLOCK:
                sink.lost_bytes += len(job[3]) + len(job[4])
            log.warning("recording %s failed (%s); the call goes on unrecorded", sink.wav_path, sink.error)


_default: RecordingWriter | None = None
_default_lock = threading.Lock()


def default_writer() -> RecordingWriter:
    """The process-wide writer recorders use unless given one (flushed at exit)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = RecordingWriter()
                atexit.register(_default.close, 10.0)
    return _default


class Recorder:
    """Records one call; see the module's documentation. Call its methods from
    one thread (the event loop's); none of them blocks on I/O.

    ``directory``: where ``<call_id>.wav`` and ``<call_id>.jsonl`` go (created
    if missing, by the writer); ``call_id`` is made safe as a file name
    (characters other than letters, digits, ``._-`` become ``_``).
    ``audio_format``: the carrier's (:data:`FORMATS`). ``start_ms``: the
    call's clock at the start of the recording; every time given to the
    recorder is on that clock, in ms. ``writer``: a :class:`RecordingWriter`,
    :func:`default_writer` if None. The rest tune memory against latency:
    ``block_ms`` audio per block handed to the writer, ``guard_ms`` and
    ``max_lead_ms`` the horizon (see the module), ``max_window_ms`` the most
    assistant audio held waiting for caller audio (past it, the caller is
    taken as silent: a stream with no caller audio still records), and
    ``max_events`` the transcript lines held while the writer is behind.
    """

    __slots__ = ("call_id", "audio_format", "wav_path", "jsonl_path", "rate", "_start", "_per_ms", "_bps",
                 "_silence", "_gaps", "_writer", "_sink", "_left", "_right", "_events", "_written", "_hz", "_play_hi",
                 "_block_bytes", "_window_bytes", "_guard", "_ahead", "_max_events", "_active", "_closed",
                 "dropped_bytes", "dropped_events", "late_bytes", "cut_bytes", "late_cuts", "caller_gap_frames",
                 "total_frames")

    def __init__(self, directory: str | os.PathLike, call_id: str, *, audio_format: str, start_ms: float,
                 writer: RecordingWriter | None = None, block_ms: int = 1000, guard_ms: int = 250,
                 max_lead_ms: int = 1000, max_window_ms: int = 5000, max_events: int = 1000) -> None:
        try:
            rate, bps, decode = FORMATS[audio_format]
        except (KeyError, TypeError):
            raise ValueError(f"cannot record audio format {audio_format!r}; expected one of "
                             f"{', '.join(FORMATS)}") from None
        if not block_ms > 0 or guard_ms < 0 or max_lead_ms < 0 or max_events < 0:
            raise ValueError("block_ms must be positive; guard_ms, max_lead_ms and max_events not negative")
        if max_window_ms <= max_lead_ms:
            raise ValueError(f"max_window_ms ({max_window_ms}) must exceed max_lead_ms ({max_lead_ms})")
        name = _file_name(call_id)
        directory = os.fspath(directory)
        self.call_id, self.audio_format, self.rate = call_id, audio_format, rate
        self.wav_path = os.path.join(directory, name + ".wav")
        self.jsonl_path = os.path.join(directory, name + ".jsonl")
        self._start = start_ms
        self._per_ms = rate / 1000
        self._bps = bps
        self._silence = _SILENCE.get(audio_format, b"\x00")
        self._gaps: list | None = [] if audio_format == "pcma/8000" else None   # [start, end) frames
        self._writer = writer if writer is not None else default_writer()
        self._sink = _Sink(self.wav_path, self.jsonl_path, rate, decode)
        # In memory, in the carrier's format, both starting at frame _written:
        self._left = bytearray()        # caller audio not yet handed to the writer
        self._right = bytearray()       # assistant timeline not yet final (silence where no chunk)
        self._events: list[bytes] = []  # JSONL lines not yet handed over
        self._written = 0               # frames handed to the writer (final in both channels)
        self._hz = 0                    # frames: the right channel is final before this (cuts)
        self._play_hi = 0               # frames: start of the latest assistant chunk
        bytes_per_ms = rate // 1000 * bps
        self._block_bytes = block_ms * bytes_per_ms
        self._window_bytes = max_window_ms * bytes_per_ms
        self._guard = guard_ms * rate // 1000
        self._ahead = max_lead_ms * rate // 1000
        self._max_events = max_events
        self._active = True             # False once closed or failed: the methods do nothing
        self._closed = False
        self.dropped_bytes = self.dropped_events = 0
        self.late_bytes = self.cut_bytes = self.late_cuts = self.caller_gap_frames = 0
        self.total_frames: int | None = None
        self._writer.submit((_OPEN, self._sink), 0, control=True)   # files appear (or fail) now

    # -- the event loop's side: per frame -------------------------------------------------------
    def caller(self, audio) -> None:
        """Caller audio (carrier format, any buffer), in arrival order."""
        if self._active:
            left = self._left
            left += audio
            if len(left) >= self._block_bytes:
                self._flush(False)
        elif not self._closed:
            self.dropped_bytes += len(audio)

    def caller_b64(self, payload) -> None:
        """Caller audio as the carrier's base64 media payload (``bytes`` or
        ``str``); raises :class:`~rtfast.errors.Base64Error` if it is not base64."""
        if self._active:
            left = self._left
            left += _b64decode(payload)
            if len(left) >= self._block_bytes:
                self._flush(False)
        elif not self._closed:
            self.dropped_bytes += len(payload) * 3 // 4

    def assistant(self, play_at_ms: float, audio) -> None:
        """An assistant chunk (carrier format) sent to the carrier, to start
        playing at ``play_at_ms``. A later chunk overlapping it wins."""
        if not self._active:
            if not self._closed:
                self.dropped_bytes += len(audio)
            return
        start = round((play_at_ms - self._start) * self._per_ms)
        if start > self._play_hi:
            self._play_hi = start
        right = self._right
        pos = (start - self._written) * self._bps
        if pos == len(right):
            right += audio                          # the usual case: right after the previous chunk
        else:
            self._place(start, audio)
        if len(right) > self._window_bytes:
            self._flush(True)

    def _place(self, start: int, audio) -> None:
        bps = self._bps
        if (start - self._written) * bps > self._window_bytes:
            self._flush(True)                       # a long silence before it: hand over what precedes
            if not self._active:
                return
        right = self._right
        if len(right) % bps:
            del right[len(right) - len(right) % bps:]   # an odd-length PCM16 chunk before: whole samples only
        pos = (start - self._written) * bps
        if pos < 0:                                 # before what is already written: that part is lost
            late = min(-pos, len(audio))
            self.late_bytes += late
            audio = memoryview(audio)[late:]
            pos = 0
            if not len(audio):
                return
        end = len(right)
        if pos > end:
            if self._gaps is not None:
                self._gaps.append([self._written + end // bps, self._written + pos // bps])
            right += self._silence * (pos - end)
            right += audio
        else:
            right[pos:pos + len(audio)] = audio
            if self._gaps:
                a = self._written + pos // bps
                self._ungap(a, a + len(audio) // bps)

    def _ungap(self, a: int, b: int) -> None:
        """Frames [a, b) hold audio now: no longer a gap."""
        kept = []
        for g0, g1 in self._gaps:
            if g1 <= a or g0 >= b:
                kept.append([g0, g1])
            else:
                if g0 < a:
                    kept.append([g0, a])
                if g1 > b:
                    kept.append([b, g1])
        self._gaps = kept

    def cut(self, at_ms: float) -> None:
        """The carrier's playback was cleared at ``at_ms``: assistant audio
        scheduled at or after it never played, and goes."""
        if not self._active:
            return
        c = self._cut(round((at_ms - self._start) * self._per_ms), True)
        if c > self._hz:
            self._hz = c
        self._flush(False)

    def _cut(self, c: int, count: bool) -> int:
        rel = c - self._written
        if rel < 0:
            # Already handed over (the caller's audio ran ahead of the clock by more than guard_ms).
            self.late_cuts += count
            rel = 0
        pos = rel * self._bps
        right = self._right
        if pos < len(right):
            self.cut_bytes += len(right) - pos
            del right[pos:]
        c = self._written + rel
        if self._gaps:
            self._gaps = [[g0, min(g1, c)] for g0, g1 in self._gaps if g0 < c]
        return c

    def event(self, kind: str, at_ms: float, **fields) -> None:
        """A transcript line: ``{"t_ms": at_ms - start_ms, "kind": kind, **fields}``.
        Fields must be JSON-serialisable (other objects are written as ``str()``)."""
        if not self._active:
            if not self._closed:
                self.dropped_events += 1
            return
        if "t_ms" in fields:
            raise ValueError("recording event fields may not include 't_ms' (it is the event's time)")
        try:
            line = _DUMPS({"t_ms": round(at_ms - self._start, 3), "kind": kind, **fields},
                          default=str, option=_JSON_OPTIONS)
        except TypeError as exc:
            raise TypeError(f"recording event {kind!r}: fields are not JSON-serialisable ({exc})") from None
        events = self._events
        if len(events) >= self._max_events:
            self.dropped_events += 1
            return
        events.append(line)
        if len(events) >= 64:
            self._flush(False)

    # -- handing over ----------------------------------------------------------------------------
    def _flush(self, skew: bool) -> None:
        """Hand the final part to the writer. ``skew``: the assistant's audio ran
        ``max_window_ms`` past the caller's; take the missing caller audio as silence."""
        if self._sink.error is not None:
            self._fail()
            return
        written, bps = self._written, self._bps
        left_end = written + len(self._left) // bps
        hz = max(self._hz, left_end - self._guard, self._play_hi - self._ahead)
        target = hz if skew else min(left_end, hz)
        if target > written:
            self._emit(target)
        elif self._events:
            self._emit(written)

    def _emit(self, target: int, gap: bool = True) -> None:
        """Hand frames up to ``target`` to the writer (caller audio short of it
        is silence: a gap when ``gap``, the padding at the end otherwise)."""
        written, bps = self._written, self._bps
        nb = (target - written) * bps
        left, right = self._left, self._right
        if gap and len(left) < nb:
            self.caller_gap_frames += (nb - len(left)) // bps
        lraw = bytes(left[:nb])
        del left[:nb]
        if len(lraw) % bps:                         # odd-length PCM16 caller audio: whole samples
            lraw = lraw[:len(lraw) - len(lraw) % bps]
        rraw = bytes(right[:nb])
        del right[:nb]
        events = self._events
        gaps = ()
        if self._gaps:
            gaps = tuple((max(g0, written) - written, min(g1, target) - written) for g0, g1 in self._gaps if g0 < target)
            self._gaps = [[max(g0, target), g1] for g0, g1 in self._gaps if g1 > target]
        self._written = target
        if not lraw and not rraw and not events:
            return                                  # pure silence: the writer fills the gap
        if events:
            self._events = []
        else:
            events = ()                             # not the live list: it fills on after this block
        size = len(lraw) + len(rraw) + sum(map(len, events))
        if not self._writer.submit((_BLOCK, self._sink, written, lraw, rraw, events, gaps), size):
            self.dropped_bytes += len(lraw) + len(rraw)
            if events:
                self._events = events               # transcript lines wait for the next block

    def _fail(self) -> None:
        """The files cannot be written: stop recording (the call goes on)."""
        self._active = False
        self.dropped_bytes += len(self._left) + len(self._right)
        self.dropped_events += len(self._events)
        self._left, self._right, self._events = bytearray(), bytearray(), []
        if self._gaps:
            self._gaps = []

    def close(self, end_ms: float) -> None:
        """End the recording at ``end_ms``: assistant audio scheduled after it
        is dropped, both channels are padded with silence to the call's length
        (or to the caller's audio, if that is longer), and the writer finalises
        the files. Idempotent; returns at once (:meth:`RecordingWriter.flush`
        waits for the files)."""
        if self._closed:
            return
        self._closed = True
        total = self._written
        if self._active and self._sink.error is None:
            e = round((end_ms - self._start) * self._per_ms)
            e = self._cut(e, False)
            left_end = self._written + len(self._left) // self._bps
            total = max(e, left_end)
            self._emit(total, False)
        elif self._active:
            self._fail()
        self._active = False
        self.total_frames = total
        self._writer.submit((_CLOSE, self._sink, total, self._events), sum(map(len, self._events)), control=True)
        self._left, self._right, self._events = bytearray(), bytearray(), []

    # -- reading -------------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> str | None:
        """Why the files could not be written, or None."""
        return self._sink.error

    @property
    def stats(self) -> dict:
        """Counters: ``dropped_bytes`` (carrier-format audio not recorded: the
        writer was behind or the files failed), ``dropped_events`` (transcript
        lines likewise), ``late_bytes`` (assistant audio scheduled before what
        was already written), ``cut_bytes`` (assistant audio removed by cuts and
        the close), ``late_cuts`` (cuts that came after their time was written),
        ``caller_gap_ms`` (caller audio taken as silence), ``buffered_bytes``
        (audio held in memory now), ``error``."""
        sink = self._sink
        return {
            "dropped_bytes": self.dropped_bytes + sink.lost_bytes,
            "dropped_events": self.dropped_events + sink.lost_events,
            "late_bytes": self.late_bytes, "cut_bytes": self.cut_bytes, "late_cuts": self.late_cuts,
            "caller_gap_ms": self.caller_gap_frames * 1000 // self.rate,
            "buffered_bytes": len(self._left) + len(self._right),
            "error": sink.error,
        }

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("failed" if not self._active else "recording")
        return f"Recorder({self.call_id!r}, {self.audio_format!r}, {state})"
