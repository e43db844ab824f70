"""The bridge's pacing loop in plain Python: the oracle for rtfast._pace.pump.

``pump(call, now, a)`` is ``Call._pump`` as it was written before the loop was
compiled: tests install it on one of two calls (``call._pump = MethodType(pump,
call)``) and require both to write the same, keep the same ledger, sent times,
play times and counters.
"""

from __future__ import annotations

from rtfast.bridge.call import _LEDGER_MAX, remember


def pump(self, now: float, a) -> None:
    if self.first_ms is None:
        self.first_ms = now
    self.last_ms = now
    chunk, pending = self._chunk, self._pending
    if len(pending) < chunk or not self.codec.started:
        return
    codec = self.codec
    media, mark, binary = codec.media, codec.mark, codec.binary_media
    out, ledger, segments, sent_ms = a.to_carrier, self._ledger, self._segments, self.sent_ms
    chunk_ms, lead_ms, gen = self.chunk_ms, self.lead_ms, self._gen
    play_end, seq, n = self._play_end, self._seq, 0
    recorder = self.recorder
    while len(pending) >= chunk:
        ahead = play_end - now
        if ahead <= 0:
            # Idle: start once a little audio is gathered, or the item is complete.
            if len(pending) < self._startup_bytes and self._receiving is not None:
                break
            play_end = now
        elif ahead + chunk_ms > lead_ms:
            break
        piece = pending[:chunk]
        if recorder is not None:
            recorder.assistant(play_end, piece)     # when it starts playing
        frame = media(piece)
        del pending[:chunk]
        seg = segments[0]
        item = seg[0]
        seg[2] -= chunk
        if not seg[2]:
            segments.popleft()
        if item in sent_ms:
            sent = sent_ms[item] = sent_ms[item] + chunk_ms
        else:
            sent = chunk_ms
            remember(sent_ms, item, sent)
        seq += 1
        name = f"{gen}.{seq}"
        ledger.append((seq, item, seg[1], sent, name))
        if len(ledger) > _LEDGER_MAX:
            ledger.popleft()                    # marks are not coming back: forget the oldest
        out.append((2, frame) if binary else frame)
        out.append(mark(name))
        play_end += chunk_ms
        n += 1
    self._play_end, self._seq = play_end, seq
    self.frames_to_carrier += 2 * n
    self.audio_bytes_out += n * chunk
