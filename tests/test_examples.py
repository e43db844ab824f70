"""Every example in examples/ runs end to end against the embedded server
(OPENAI_API_KEY removed), as `python examples/NAME.py ...` in a subprocess.

Microphone and speaker paths run against a stand-in `sounddevice` module put
first on PYTHONPATH: it plays into a file, records a generated voice, or acts
out a missing PortAudio or a missing device, so no test needs real hardware.
"""

import re
import importlib.util
import os
import subprocess
import sys
import time
import wave

import numpy as np
import pytest

from rtfast import g711

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
UNSET = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TWILIO_AUTH_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
         "http_proxy", "https_proxy", "all_proxy")
ALL = sorted(n for n in os.listdir(EXAMPLES) if n.endswith(".py") and not n.startswith("_"))
# The examples that talk to the Realtime API (the others only handle audio files and devices).
TALKING = ["function_calling.py", "text_only.py", "text_to_voice.py", "voice_to_voice.py"]
_spec = importlib.util.spec_from_file_location("examples_common", os.path.join(EXAMPLES, "_common.py"))
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)

FAKE_SOUNDDEVICE = '''
import os, threading
import numpy as np

MODE = os.environ["FAKE_SD"]
if MODE == "missing":
    raise OSError("PortAudio library not found")


class PortAudioError(Exception):
    pass


def _device():
    if MODE == "nodevice":
        raise PortAudioError("Error querying device -1")


def check_input_settings(**settings):
    _device()


def _voice(rate):
    t = np.arange(int(1.5 * rate)) / rate
    voice = (8000 * np.abs(np.sin(6 * np.pi * t)) * np.sin(2 * np.pi * 150 * t)).astype("<i2")
    return np.concatenate([np.zeros(rate // 4, "<i2"), voice, np.zeros(int(1.5 * rate), "<i2")])


def rec(frames, samplerate, channels, dtype):
    _device()
    return np.resize(_voice(samplerate), frames).reshape(-1, 1)


def wait():
    pass


def play(data, samplerate, blocking=False):
    _device()
    with open(os.environ["FAKE_SD_PLAYED"], "wb") as f:
        f.write(samplerate.to_bytes(4, "little") + np.asarray(data, "<i2").tobytes())


class RawInputStream:
    def __init__(self, samplerate, channels, dtype, blocksize, callback):
        self.pcm, self.block, self.callback = _voice(samplerate).tobytes(), 2 * blocksize, callback

    def __enter__(self):
        def feed():
            for i in range(0, len(self.pcm), self.block):
                self.callback(self.pcm[i:i + self.block], self.block // 2, None, None)
        self.thread = threading.Thread(target=feed, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join()
'''


def run(name, *args, sounddevice=None, tmp_path=None, cwd=None, env_extra=None, timeout=60):
    """Run examples/NAME.py without OPENAI_API_KEY (unless env_extra sets one) in
    ``cwd``; sounddevice: None (the real module, if any) or a stand-in mode:
    "ok", "nodevice", "missing"."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    # Absolute, so that another working folder still finds rtfast.
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)
    env.update(env_extra or {})
    if sounddevice is not None:
        (tmp_path / "fake").mkdir(exist_ok=True)
        (tmp_path / "fake" / "sounddevice.py").write_text(FAKE_SOUNDDEVICE)
        env.update(FAKE_SD=sounddevice, FAKE_SD_PLAYED=str(tmp_path / "played"),
                   # no empty entry: it would mean the cwd, the checkout, whose rtfast/ shadows an installed one
                   PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path / "fake"), env.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def ok(result):
    assert result.returncode == 0, result.stderr
    assert "embedded server" in result.stdout
    return result.stdout


def read_wav(path):
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.readframes(w.getnframes()), w.getframerate()


def played(tmp_path):
    data = (tmp_path / "played").read_bytes()
    return data[4:], int.from_bytes(data[:4], "little")


def test_text_only():
    out = ok(run("text_only.py", "What is the capital of France?"))
    assert "Paris is the capital of France." in out


def test_text_to_voice_writes_wav_and_plays(tmp_path):
    out = ok(run("text_to_voice.py", "Greet me", "--out", tmp_path / "reply.wav", "--play",
                 sounddevice="ok", tmp_path=tmp_path))
    assert "Hello! Thanks for calling." in out
    pcm, rate = read_wav(tmp_path / "reply.wav")
    assert rate == 24000 and len(pcm) > 24000  # over half a second of speech
    assert f"wrote {len(pcm) // 48} ms" in out
    assert played(tmp_path) == (pcm, 24000)


def test_text_to_voice_to_ulaw(tmp_path):
    out = ok(run("text_to_voice.py", "--out", tmp_path / "reply.ulaw"))
    ms = int(out.split("wrote ")[1].split()[0])
    assert ms > 500 and abs(len((tmp_path / "reply.ulaw").read_bytes()) - ms * 8) <= 8  # 8 kHz, a byte a sample


def test_voice_to_voice_generated_caller(tmp_path):
    out = ok(run("voice_to_voice.py", "--out", tmp_path / "reply.wav"))
    assert "(caller speaking)" in out and "(caller stopped)" in out
    assert "assistant: I heard you loud and clear." in out
    assert re.search(r"caller:    \(\d+ ms of speech\)", out)  # the embedded server notes what it heard
    pcm, rate = read_wav(tmp_path / "reply.wav")
    assert rate == 24000 and len(pcm) > 0


@pytest.mark.parametrize("name,rate", [("caller.wav", 8000), ("caller.wav", 44100), ("caller.alaw", 8000)])
def test_voice_to_voice_from_a_file_at_another_rate(tmp_path, name, rate):
    pcm = bytes(rate // 2) + _common.speech_like(1.2, rate) + bytes(rate // 2)
    _common.write_audio(str(tmp_path / name), pcm, rate)
    out = ok(run("voice_to_voice.py", tmp_path / name, "--out", tmp_path / "reply.wav"))
    assert "(caller stopped)" in out and "assistant: I heard you loud and clear." in out


def test_voice_to_voice_microphone(tmp_path):
    out = ok(run("voice_to_voice.py", "--mic", "--play", "--seconds", 10, "--out", tmp_path / "reply.wav",
                 sounddevice="ok", tmp_path=tmp_path))
    assert "listening" in out and "(caller stopped)" in out
    assert played(tmp_path) == read_wav(tmp_path / "reply.wav")


def test_function_calling():
    out = ok(run("function_calling.py", "What's the weather in Paris?"))
    assert '[get_weather({"city":"Paris"}) -> {"city": "Paris", "sky": "sunny", "temperature_c": 22}]' in out
    assert "It is sunny and 22 degrees in Paris." in out


@pytest.mark.parametrize("ext,codec", [(".ulaw", g711.ulaw_decode), (".alaw", g711.alaw_decode), (".wav", None)])
def test_record_then_play_or_convert(tmp_path, ext, codec):
    path = tmp_path / ("rec" + ext)
    result = run("recorder.py", path, "--seconds", 0.5, sounddevice="ok", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    if codec is not None:
        assert len(path.read_bytes()) == 4000  # 0.5 s at 8 kHz, one byte a sample
        pcm, rate = codec(path.read_bytes()), 8000
    else:
        pcm, rate = read_wav(path)
        assert rate == 24000 and len(pcm) == 24000
    assert np.abs(np.frombuffer(pcm, "<i2")).max() > 1000  # the voice, not silence

    result = run("player.py", path, sounddevice="ok", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert played(tmp_path) == (pcm, rate)

    result = run("player.py", path, "--to-wav", tmp_path / "out.wav")  # no sounddevice needed
    assert result.returncode == 0, result.stderr
    assert read_wav(tmp_path / "out.wav") == (pcm, rate)


def test_recorder_resamples_for_g711(tmp_path):
    result = run("recorder.py", tmp_path / "rec.ulaw", "--seconds", 0.5, "--rate", 48000,
                 sounddevice="ok", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert abs(len((tmp_path / "rec.ulaw").read_bytes()) - 4000) <= 2


@pytest.mark.parametrize("mode,message", [("missing", "pip install 'rtfast[audio]'"),
                                          ("nodevice", "no usable audio device")])
@pytest.mark.parametrize("args", [
    ["recorder.py", "{tmp}/x.wav"], ["player.py", "{tmp}/in.ulaw"], ["voice_to_voice.py", "--mic"],
    ["text_to_voice.py", "--play", "--out", "{tmp}/r.wav"]])
def test_no_sounddevice_or_no_device_is_a_clear_error(tmp_path, mode, message, args):
    (tmp_path / "in.ulaw").write_bytes(b"\xff" * 800)
    args = [a.format(tmp=tmp_path) for a in args]
    result = run(*args, sounddevice=mode, tmp_path=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.wav").exists()


def test_audio_files_round_trip(tmp_path):
    pcm = _common.speech_like(0.2, 24000)
    for ext, encode in ((".ulaw", g711.ulaw_encode), (".alaw", g711.alaw_encode)):
        _common.write_audio(str(tmp_path / ("a" + ext)), pcm, 24000)
        data = (tmp_path / ("a" + ext)).read_bytes()
        assert data == encode(_common.resample(pcm, 24000, 8000)) and len(data) == 1600
    stereo = np.repeat(np.frombuffer(pcm, "<i2"), 2).tobytes()
    with wave.open(str(tmp_path / "stereo.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(stereo)
    assert _common.read_audio(str(tmp_path / "stereo.wav")) == (pcm, 24000)


# -- what a new user meets first -----------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_help_prints_usage_and_starts_nothing(name):
    start = time.monotonic()
    result = run(name, "--help", timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {name}") and "talking to" not in result.stdout
    assert time.monotonic() - start < 15
    # Every option and argument says what it does: some word besides its flags and metavars.
    sections = re.findall(r"\n\n(?:positional arguments|options):\n(.*?)(?=\n\n|\Z)", result.stdout, re.S)
    entries = [e for section in sections for e in re.split(r"\n(?=  \S)", section)]
    assert len(entries) >= 2
    for entry in entries:
        words = [w.strip(",") for w in entry.split()]
        assert any(not (w.startswith("-") or w.isupper() or w.startswith("{")) for w in words[1:]), entry


@pytest.mark.parametrize("name,out", [("text_to_voice.py", "rtfast-reply.wav"),
                                      ("voice_to_voice.py", "rtfast-voice-reply.wav")])
def test_wav_goes_to_the_current_folder_by_default(tmp_path, name, out):
    result = run(name, cwd=tmp_path)
    ok(result)
    assert f"to {out}" in result.stdout
    pcm, rate = read_wav(tmp_path / out)
    assert rate == 24000 and len(pcm) > 0


@pytest.mark.parametrize("name", TALKING)
def test_unreachable_api_is_one_line_and_local_runs_offline(tmp_path, name):
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "https://nonexistent.invalid/v1"}
    start = time.monotonic()
    result = run(name, env_extra=env, cwd=tmp_path, timeout=30)
    assert time.monotonic() - start < 20
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "could not connect to the Realtime API at nonexistent.invalid" in lines[0] and "--local" in lines[0]
    result = run(name, "--local", env_extra=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--local: talking to the embedded server" in result.stdout


def test_twilio_bridge_local_and_its_signature_rule(tmp_path):
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "https://nonexistent.invalid/v1"}
    result = run("twilio_bridge.py", "--local", "--port", 0, "--seconds", 0.2, env_extra=env)
    assert result.returncode == 0, result.stderr
    assert "--local: using the embedded realtime server" in result.stdout
    result = run("twilio_bridge.py", "--port", 0, "--seconds", 0.2, env_extra={"TWILIO_AUTH_TOKEN": "secret"})
    assert result.returncode == 2 and "--public-url" in result.stderr and "Traceback" not in result.stderr
