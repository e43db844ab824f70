"""Text in, voice out: the spoken reply is written to a WAV file (24 kHz PCM16).

    python examples/text_to_voice.py "Say hello to the caller" --out hello.wav --play

``--out`` ending in .ulaw or .alaw writes telephony G.711 (8 kHz) instead.
``--play`` plays it too (needs sounddevice: pip install 'rtfast[audio]').
"""

import argparse
import asyncio
import os
import tempfile

from _common import MODEL, play, realtime_client, write_audio
from rtfast.server import Script

RATE = 24000  # the Realtime API's PCM16 is 24 kHz mono


async def main(prompt: str, out: str) -> bytes:
    async with realtime_client(Script(reply_text="Hello! Thanks for calling.")) as client:
        async with client.realtime.connect(model=MODEL) as connection:
            await connection.session.update(session={
                "type": "realtime",
                "output_modalities": ["audio"],
                "audio": {"output": {"format": {"type": "audio/pcm", "rate": RATE}, "voice": "alloy"}},
            })
            await connection.conversation.item.create(item={
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}],
            })
            await connection.response.create()

            audio = bytearray()
            async for event in connection:
                if event.type == "response.output_audio.delta":
                    audio += event.audio()  # base64 decoded straight from the frame
                elif event.type == "response.output_audio_transcript.delta":
                    print(event.delta, end="", flush=True)
                elif event.type == "error":
                    print("error:", event.error.message)
                elif event.type == "response.done":
                    print()
                    break

    write_audio(out, bytes(audio), RATE)
    print(f"wrote {len(audio) * 1000 // (2 * RATE)} ms of audio to {out}")
    return bytes(audio)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default="Greet a caller in one short sentence.")
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "rtfast-reply.wav"))
    parser.add_argument("--play", action="store_true", help="play the reply (needs sounddevice)")
    args = parser.parse_args()
    pcm = asyncio.run(main(args.prompt, args.out))
    if args.play:
        play(pcm, RATE)
