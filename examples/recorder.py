"""Record the microphone to a file: .wav (PCM16 mono) or raw G.711 .ulaw/.alaw
(8 kHz, one byte a sample, what phone carriers send).

    python examples/recorder.py caller.ulaw --seconds 5
    python examples/recorder.py caller.wav --rate 24000

Needs sounddevice and an input device: pip install 'rtfast[audio]'.
Play it back with examples/player.py.
"""

from _common import G711, argument_parser, audio_device, write_audio


def main() -> None:
    parser = argument_parser(__doc__, local=False)
    parser.add_argument("path", help="output file: .wav, .ulaw or .alaw")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to record")
    parser.add_argument("--rate", type=int, help="recording rate (default 8000 for G.711, else 24000)")
    args = parser.parse_args()
    rate = args.rate or (8000 if args.path.lower().endswith(tuple(G711)) else 24000)

    with audio_device() as sd:
        sd.check_input_settings(samplerate=rate, channels=1, dtype="int16")
        print(f"recording {args.seconds:g} s at {rate} Hz...")
        data = sd.rec(int(args.seconds * rate), samplerate=rate, channels=1, dtype="int16")
        sd.wait()
    write_audio(args.path, data.tobytes(), rate)  # G.711 files are resampled to 8 kHz if need be
    print(f"wrote {args.path}")


if __name__ == "__main__":
    main()
