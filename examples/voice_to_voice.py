"""Voice in, voice out: a caller's audio streamed in 20 ms frames, turn taking
by the server's VAD, the spoken reply written to a WAV file.

    python examples/voice_to_voice.py caller.wav --out reply.wav
    python examples/voice_to_voice.py            # a generated voice-like caller
    python examples/voice_to_voice.py --mic --play   # microphone and speaker (sounddevice)

Input at another sample rate is resampled to the API's 24 kHz with
rtfast.resample.Resampler; .ulaw/.alaw files (G.711, 8 kHz) work too. Both
transcripts are printed: the caller's needs a transcription model, so the
embedded server (no OPENAI_API_KEY, or --local) has none to give.
"""

import asyncio
import time

from _common import MODEL, argument_parser, audio_device, play, read_audio, realtime_client, speech_like, \
    write_audio
from rtfast.resample import Resampler
from rtfast.server import Script

RATE = 24000            # the Realtime API's PCM16: 24 kHz mono
FRAME = RATE // 50 * 2  # bytes in 20 ms


async def file_frames(pcm: bytes, rate: int):
    """20 ms frames of 24 kHz PCM16 from PCM16 at any rate."""
    if rate != RATE:
        resampler = Resampler(rate, RATE)  # one stateful stream per call and direction
        pcm = resampler.process(pcm) + resampler.flush()
    for i in range(0, len(pcm), FRAME):
        yield pcm[i:i + FRAME]


async def mic_frames(sd, seconds: float):
    """20 ms frames from the default microphone, for up to ``seconds``."""
    loop, queue = asyncio.get_running_loop(), asyncio.Queue()
    with sd.RawInputStream(samplerate=RATE, channels=1, dtype="int16", blocksize=FRAME // 2,
                           callback=lambda data, *_: loop.call_soon_threadsafe(queue.put_nowait, bytes(data))):
        print("listening: say something")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            yield await queue.get()


async def main(frames, out: str, local: bool = False) -> bytes:
    async with realtime_client(Script(reply_text="I heard you loud and clear."), local) as client:
        async with client.realtime.connect(model=MODEL) as connection:
            await connection.session.update(session={
                "type": "realtime",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": RATE},
                        "turn_detection": {"type": "server_vad"},
                        "transcription": {"model": "gpt-4o-mini-transcribe"},
                    },
                    "output": {"format": {"type": "audio/pcm", "rate": RATE}, "voice": "alloy"},
                },
            })

            async def send() -> None:
                async for frame in frames:
                    await connection.send_audio(frame)  # raw PCM16: base64 is written into the frame
                await connection.send_audio(bytes(RATE * 2))  # a second of silence: the VAD ends the turn

            sender = asyncio.create_task(send())
            reply, caller, assistant = bytearray(), "", ""
            async for event in connection:
                if event.type == "input_audio_buffer.speech_started":
                    print("(caller speaking)")
                elif event.type == "input_audio_buffer.speech_stopped":
                    print("(caller stopped)")
                elif event.type == "conversation.item.input_audio_transcription.completed":
                    caller = event.transcript
                elif event.type == "response.output_audio.delta":
                    reply += event.audio()
                elif event.type == "response.output_audio_transcript.delta":
                    assistant += event.delta
                elif event.type == "error":
                    print("error:", event.error.message)
                elif event.type == "response.done":
                    break
            sender.cancel()

    print("caller:   ", caller or "(no transcript)")
    print("assistant:", assistant)
    write_audio(out, bytes(reply), RATE)
    print(f"wrote {len(reply) * 1000 // (2 * RATE)} ms of audio to {out}")
    return bytes(reply)


if __name__ == "__main__":
    parser = argument_parser(__doc__)
    parser.add_argument("audio", nargs="?", help="the caller: a .wav (16-bit, any rate), .ulaw or .alaw file "
                        "(default: a generated voice-like caller)")
    parser.add_argument("--mic", action="store_true", help="talk into the microphone instead")
    parser.add_argument("--seconds", type=float, default=15.0, help="longest microphone turn, in seconds")
    parser.add_argument("--out", default="rtfast-voice-reply.wav",
                        help="where to write the reply (.wav, .ulaw or .alaw), relative to the current folder")
    parser.add_argument("--play", action="store_true", help="play the reply (needs sounddevice)")
    args = parser.parse_args()
    if args.mic:
        with audio_device() as sd:  # no device: a clear message before connecting
            sd.check_input_settings(samplerate=RATE, channels=1, dtype="int16")
        frames = mic_frames(sd, args.seconds)
    elif args.audio:
        frames = file_frames(*read_audio(args.audio))
    else:
        print("(no audio file given: a generated voice-like caller, 1.5 s at 16 kHz)")
        frames = file_frames(speech_like(1.5, 16000), 16000)
    reply = asyncio.run(main(frames, args.out, args.local))
    if args.play:
        play(reply, RATE)
