"""The two hot Realtime messages, handled without dicts.

Inbound audio deltas (``response.output_audio.delta`` in GA,
``response.audio.delta`` in beta, ``session.output_audio.delta`` in GPT-Live) are scanned in the raw frame:
:func:`scan_audio_delta` returns an :class:`AudioDelta` whose ``audio()`` /
``audio_into(out)`` decode the base64 straight from the frame, or ``None`` for
anything else; :func:`parse_audio_delta` also takes the frames the scanner
declines (escapes, extra keys) through orjson. Outbound
``input_audio_buffer.append`` frames (``generation="live"``: GPT-Live's
``session.input_audio.append``) are built from a byte template:
:func:`build_append` base64-encodes raw audio into the frame,
:func:`build_append_b64` splices an already-base64 payload without decoding.
"""

from rtfast._loader import load

_k = load("_wire")

AudioDelta = _k.AudioDelta
AUDIO_DELTA_TYPES = _k.AUDIO_DELTA_TYPES
APPEND_TYPES = _k.APPEND_TYPES
scan_audio_delta = _k.scan_audio_delta
parse_audio_delta = _k.parse_audio_delta
build_append = _k.build_append
build_append_into = _k.build_append_into
build_append_b64 = _k.build_append_b64
append_frame_length = _k.append_frame_length

__all__ = ["AudioDelta", "AUDIO_DELTA_TYPES", "APPEND_TYPES", "scan_audio_delta", "parse_audio_delta",
           "build_append", "build_append_into", "build_append_b64", "append_frame_length"]
