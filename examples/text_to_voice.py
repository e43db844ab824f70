"""Text in, voice out: the spoken reply is written to a WAV file (24 kHz PCM16).

    python examples/text_to_voice.py "Say hello to the caller" --out hello.wav --play

--out ending in .ulaw or .alaw writes telephony G.711 (8 kHz) instead.
--play plays it too (needs sounddevice: pip install 'rtfast[audio]').
With OPENAI_API_KEY set it talks to OpenAI; without (or with --local), to
rtfast's embedded server.
"""

import asyncio

from _common import MODEL, argument_parser, play, realtime_client, write_audio
from rtfast.server import Script

RATE = 24000  # the Realtime API's PCM16 is 24 kHz mono


async def main(prompt: str, out: str, local: bool = False) -> bytes:
    async with realtime_client(Script(reply_text="Hello! Thanks for calling."), local) as client:
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
    parser = argument_parser(__doc__)
    parser.add_argument("prompt", nargs="?", default="Greet a caller in one short sentence.",
                        help="what the reply should say (default: %(default)s)")
    parser.add_argument("--out", default="rtfast-reply.wav",
                        help="where to write the reply (.wav, .ulaw or .alaw), relative to the current folder")
    parser.add_argument("--play", action="store_true", help="play the reply (needs sounddevice)")
    args = parser.parse_args()
    pcm = asyncio.run(main(args.prompt, args.out, args.local))
    if args.play:
        play(pcm, RATE)
