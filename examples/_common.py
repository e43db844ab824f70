"""What the examples share: a client (OpenAI, or the embedded local server when
OPENAI_API_KEY is not set or --local is given), command-line parsing, audio
files, and the optional sounddevice module."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import wave
from urllib.parse import urlsplit

import numpy as np

import rtfast
from rtfast import g711
from rtfast.errors import ConnectionClosed, RtfastError
from rtfast.resample import Resampler
from rtfast.server import RealtimeServer

MODEL = os.environ.get("OPENAI_REALTIME_MODEL", "gpt-realtime")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """The docstring as written; each option's default, when it has one."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return action.help
        return f"{action.help} (default: %(default)s)"


def argument_parser(doc: str, local: bool = True) -> argparse.ArgumentParser:
    """A parser whose --help shows ``doc`` and the defaults; ``local`` adds --local."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=_Formatter)
    if local:
        parser.add_argument("--local", action="store_true",
                            help="use rtfast's embedded local server even when OPENAI_API_KEY is set")
    return parser


def _connect_failed(exc: BaseException) -> bool:
    # What opening a connection raises when the server cannot be reached or refuses
    # (DNS, refused, timeout, HTTP status); not what goes wrong once connected.
    if isinstance(exc, OSError):
        return True
    return isinstance(exc, RtfastError) and not isinstance(exc, (ConnectionClosed, ValueError, OverflowError))


@contextlib.asynccontextmanager
async def realtime_client(script=None, local: bool = False):
    """``rtfast.AsyncOpenAI`` for OpenAI when OPENAI_API_KEY is set (and not
    ``local``); otherwise one pointed at an embedded RealtimeServer whose
    stand-in "model" is ``script``. When OpenAI cannot be reached, exit with
    one line saying so, not a traceback."""
    if os.environ.get("OPENAI_API_KEY") and not local:
        client = rtfast.AsyncOpenAI()
        try:
            yield client
        except Exception as exc:
            if not _connect_failed(exc):
                raise
            where = urlsplit(client.websocket_base_url or client.base_url).netloc
            sys.exit(f"could not connect to the Realtime API at {where}: {type(exc).__name__}: {exc} "
                     f"-- to run offline against rtfast's embedded server, add --local")
        return
    async with RealtimeServer(script=script) as server:
        print(f"({'--local' if local else 'no OPENAI_API_KEY'}: talking to the embedded server at {server.url})")
        yield rtfast.AsyncOpenAI(api_key="sk-local", websocket_base_url=server.base_url)


# -- audio files: .wav (PCM16 mono), .ulaw / .alaw (raw G.711, 8 kHz) ---------------------------

G711 = {".ulaw": (g711.ulaw_encode, g711.ulaw_decode), ".alaw": (g711.alaw_encode, g711.alaw_decode)}


def resample(pcm: bytes, rate: int, to_rate: int) -> bytes:
    if rate == to_rate:
        return pcm
    stream = Resampler(rate, to_rate)
    return stream.process(pcm) + stream.flush()


def write_audio(path: str, pcm: bytes, rate: int) -> None:
    """PCM16 mono at ``rate`` to a .wav file, or to raw G.711 (resampled to 8 kHz)."""
    ext = os.path.splitext(path)[1].lower()
    if ext in G711:
        with open(path, "wb") as f:
            f.write(G711[ext][0](resample(pcm, rate, 8000)))
        return
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def read_audio(path: str) -> tuple[bytes, int]:
    """(PCM16 mono, sample rate) from a .wav (first channel) or raw G.711 file."""
    ext = os.path.splitext(path)[1].lower()
    if ext in G711:
        with open(path, "rb") as f:
            return G711[ext][1](f.read()), 8000
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            sys.exit(f"{path}: only 16-bit WAV files are supported")
        channels, rate = w.getnchannels(), w.getframerate()
        pcm = w.readframes(w.getnframes())
    return np.frombuffer(pcm, "<i2")[::channels].tobytes(), rate


def speech_like(seconds: float, rate: int) -> bytes:
    """A voice-like PCM16 signal (gliding pitch, harmonics, syllables): a caller
    for the examples when no recording is given."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(np.pi * t)) / rate
    wave_ = 8000 * np.abs(np.sin(6 * np.pi * t)) * (np.sin(phase) + 0.5 * np.sin(2 * phase))
    return wave_.astype("<i2").tobytes()


# -- the microphone and speaker: an optional extra ----------------------------------------------

def sounddevice():
    """The sounddevice module, or exit with a message saying how to get it."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: the wheel is there, PortAudio is not
        sys.exit(f"audio devices need sounddevice and PortAudio: pip install 'rtfast[audio]' ({exc})")
    return sd


@contextlib.contextmanager
def audio_device():
    """Turn a missing or unusable device into a clear message and exit status 1."""
    sd = sounddevice()
    try:
        yield sd
    except sd.PortAudioError as exc:
        sys.exit(f"no usable audio device: {exc}")


def play(pcm: bytes, rate: int) -> None:
    """Play PCM16 mono on the default output device, until it ends."""
    with audio_device() as sd:
        sd.play(np.frombuffer(pcm, "<i2"), rate, blocking=True)
