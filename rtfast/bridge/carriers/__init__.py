"""Sans-I/O carrier codecs: carrier frame bytes ⇄ typed carrier events.

One codec per stream (it learns the stream id and audio format from
``start``)::

    codec = TwilioCodec()
    ev = codec.parse(frame)               # Connected, Start, Media, Dtmf, Mark, Stop, ...
    if isinstance(ev, Media):
        realtime_frame = ev.append()      # input_audio_buffer.append, payload spliced
    codec.media(ulaw_160_bytes)           # outbound media, base64 written into the template
    codec.mark("1.7"); codec.clear()

The hot inbound message (``media``) is scanned in the raw bytes, never a
dict (``rtfast._carrier``), with orjson as the fallback for anything unusual;
both paths give the same :class:`Media`. Bad input raises
:class:`rtfast.errors.ProtocolError` naming the carrier and the problem and
leaves the codec usable.

=========  ==================  ==========================  =========================
carrier    audio_format        outbound media              played-audio marker
=========  ==================  ==========================  =========================
Twilio     pcmu/8000           ``media`` 20 ms             ``mark`` -> ``mark``
Telnyx     pcmu|pcma/8000      ``media`` (reordered in)    ``mark`` -> ``mark``
Plivo      pcmu/8000, pcm16/*  ``playAudio``               ``checkpoint`` -> ``playedStream``
Exotel     pcm16/8000|16k|24k  ``media`` >= 3.2 KB, x320   ``mark`` -> ``mark``
Vonage     pcm16/8000|16000    binary 20 ms frames         ``notify`` -> ``websocket:notify``
=========  ==================  ==========================  =========================
"""

from rtfast.bridge.carriers._base import (FORMATS, CarrierCodec, CarrierAlert, CarrierEvent, Cleared, Connected, Dtmf,
                                   JsonCodec, Mark, Media, Start, Stop, Unknown, media_from_dict, scan_media)
from rtfast.bridge.carriers.exotel import ExotelCodec
from rtfast.bridge.carriers.plivo import PlivoCodec
from rtfast.bridge.carriers.telnyx import TelnyxCodec
from rtfast.bridge.carriers.twilio import TwilioCodec
from rtfast.bridge.carriers.vonage import VonageCodec

#: Codec class by carrier name.
CODECS = {"twilio": TwilioCodec, "telnyx": TelnyxCodec, "plivo": PlivoCodec, "exotel": ExotelCodec,
          "vonage": VonageCodec}


def codec(name: str, **kwargs) -> CarrierCodec:
    """A new codec for the carrier called ``name`` (see ``CODECS``)."""
    try:
        cls = CODECS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown carrier {name!r}; expected one of {', '.join(CODECS)}") from None
    return cls(**kwargs)


__all__ = [
    "CarrierCodec", "JsonCodec", "CarrierEvent", "Connected", "Start", "Media", "Dtmf", "Mark", "Cleared", "Stop",
    "CarrierAlert", "Unknown", "FORMATS", "media_from_dict", "scan_media", "CODECS", "codec",
    "TwilioCodec", "TelnyxCodec", "PlivoCodec", "ExotelCodec", "VonageCodec",
]
