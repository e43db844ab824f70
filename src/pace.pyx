"""The bridge's outbound pacing loop, compiled (private; see rtfast.bridge.call.Call._pump).

While the model speaks, every 20 ms chunk of its audio leaves as a carrier media
message and a mark, and goes into the playback ledger barge-in reads: about 15
Python operations a chunk, a fifth of a call's bridge work. This is the same loop
with the chunk's base64 written straight from the pending buffer into the media
message (no slice, no intermediate bytes) for a JSON carrier and the bookkeeping
typed; other carriers' media (Vonage's binary audio) and a recorder's copy go
through their Python callables. Every value it keeps (ledger entries, names,
play times, the sent-ms table) is the object the Python loop made;
tests/reference/pump_ref.py is that loop, the oracle tests/test_lane.py holds
this one to.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.unicode cimport PyUnicode_AsASCIIString
from libc.stdint cimport uint8_t
from libc.string cimport memcpy

from b64core cimport rt_b64_encoded_len, rt_b64_encode


def pump(bytearray pending, Py_ssize_t chunk, object now, object play_end, object seq, object gen,
         object chunk_ms, object lead_ms, object startup_bytes, bint receiving, object segments,
         object ledger, Py_ssize_t ledger_max, dict sent_ms, object remember, list out,
         bytes media_head, bytes media_tail, object media, bint binary, bytes mark_head, object mark,
         object recorder):
    """Let the chunks that may leave by ``now`` leave: ``Call._pump``'s loop.

    Appends each chunk's media message and mark to ``out``, the chunk to ``ledger``
    (``(seq, item, content_index, sent_ms, name)``, at most ``ledger_max``) and its
    item's sent time to ``sent_ms`` (new items through ``remember``); consumes the
    chunks from ``pending`` and ``segments``. A media message is ``media_head +
    base64(chunk) + media_tail``, or ``media(chunk)`` when ``media_head`` is None
    (``(2, message)`` when ``binary``); a mark is ``mark_head + b'"name"}}'``, or
    ``mark(name)`` when ``mark_head`` is None. ``recorder``, if not None, hears each
    chunk as it is sent (``recorder.assistant(play_at, chunk)``). Returns
    ``(play_end, seq, n)``."""
    cdef Py_ssize_t avail = PyByteArray_GET_SIZE(pending), off = 0, n = 0
    cdef Py_ssize_t h = 0, t = 0
    cdef Py_ssize_t m = <Py_ssize_t>rt_b64_encoded_len(chunk), mh = 0, nl
    cdef uint8_t* dst
    cdef bytes mframe, bname
    cdef list seg
    if media_head is not None:
        h, t = PyBytes_GET_SIZE(media_head), PyBytes_GET_SIZE(media_tail)
    if mark_head is not None:
        mh = PyBytes_GET_SIZE(mark_head)
    try:
        while avail - off >= chunk:
            ahead = play_end - now
            if ahead <= 0:
                # Idle: start once a little audio is gathered, or the item is complete.
                if avail - off < startup_bytes and receiving:
                    break
                play_end = now
            elif ahead + chunk_ms > lead_ms:
                break
            # Everything read from pending is read here, before any callable runs.
            if recorder is not None or media_head is None:
                piece = pending[off:off + chunk]
            if media_head is not None:
                frame = PyBytes_FromStringAndSize(NULL, h + m + t)
                dst = <uint8_t*>PyBytes_AS_STRING(frame)
                memcpy(dst, PyBytes_AS_STRING(media_head), h)
                rt_b64_encode(<const uint8_t*>PyByteArray_AS_STRING(pending) + off, chunk, dst + h)
                memcpy(dst + h + m, PyBytes_AS_STRING(media_tail), t)
            if recorder is not None:
                recorder.assistant(play_end, piece)     # when it starts playing
            if media_head is None:
                frame = media(piece)
            off += chunk
            seg = <list?>segments[0]
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
            if len(ledger) > ledger_max:
                ledger.popleft()                    # marks are not coming back: forget the oldest
            out.append((2, frame) if binary else frame)
            if mark_head is None:
                out.append(mark(name))
            else:
                # The name is digits and a dot: its JSON string is itself in quotes.
                bname = PyUnicode_AsASCIIString(name)
                nl = PyBytes_GET_SIZE(bname)
                mframe = PyBytes_FromStringAndSize(NULL, mh + nl + 4)
                dst = <uint8_t*>PyBytes_AS_STRING(mframe)
                memcpy(dst, PyBytes_AS_STRING(mark_head), mh)
                dst[mh] = b'"'
                memcpy(dst + mh + 1, PyBytes_AS_STRING(bname), nl)
                dst[mh + 1 + nl] = b'"'
                dst[mh + 2 + nl] = b'}'
                dst[mh + 3 + nl] = b'}'
                out.append(mframe)
            play_end += chunk_ms
            n += 1
            # The callables (a recorder, a carrier's media or mark) are the bridge's own and leave
            # pending alone; its size read again keeps the next chunk's read in bounds regardless.
            avail = PyByteArray_GET_SIZE(pending)
            if off > avail:
                raise RuntimeError("the pending audio shrank while its chunks were being sent")
    finally:
        # What was sent is gone from pending even if a callable raised (as the Python loop,
        # which deleted each chunk as it went).
        if off:
            del pending[:off]                   # O(1): bytearray drops its head in place
    return play_end, seq, n
