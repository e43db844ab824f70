"""Play a .wav (PCM16) or raw G.711 .ulaw/.alaw file (8 kHz), or convert it.

    python examples/player.py caller.ulaw
    python examples/player.py caller.ulaw --to-wav caller.wav

Playing needs sounddevice and an output device: pip install 'rtfast[audio]'.
"""

from _common import argument_parser, play, read_audio, write_audio


def main() -> None:
    parser = argument_parser(__doc__, local=False)
    parser.add_argument("path", help="input file: .wav, .ulaw or .alaw")
    parser.add_argument("--to-wav", metavar="OUT", help="write a PCM16 WAV file instead of playing")
    args = parser.parse_args()

    pcm, rate = read_audio(args.path)  # G.711 is decoded with rtfast.g711
    print(f"{args.path}: {len(pcm) * 1000 // (2 * rate)} ms at {rate} Hz")
    if args.to_wav:
        write_audio(args.to_wav, pcm, rate)
        print(f"wrote {args.to_wav}")
    else:
        play(pcm, rate)


if __name__ == "__main__":
    main()
