"""The rtfast command line."""

from __future__ import annotations

import argparse
import sys

from rtfast._cliutil import HelpFormatter

DESCRIPTION = """\
rtfast: a fast client, an embedded local server and a telephony bridge for the
OpenAI Realtime API. Each command has its own --help (rtfast serve --help)."""

DEMO = """\
A short voice conversation over the Realtime API: OpenAI when OPENAI_API_KEY is
set, else rtfast's embedded local server (always with --local). Then the
client's own CPU per second of audio (beside the official openai client's, when
it is installed) and the audio core's cost per 20 ms frame."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtfast", description=DESCRIPTION, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="store_true", help="print the version and build info")
    sub = parser.add_subparsers(dest="command", metavar="{demo,serve,bridge}", help="the command to run")
    demo = sub.add_parser("demo", help="a short voice conversation, then CPU figures",
                          description=DEMO,
                          formatter_class=HelpFormatter)
    demo.add_argument("--local", action="store_true",
                      help="talk to the embedded local server even when OPENAI_API_KEY is set (no network)")
    demo.add_argument("--seconds", type=float, default=10.0,
                      help="seconds of audio for the audio-core figures")
    # serve and bridge parse their own options (rtfast serve --help, rtfast bridge --help).
    sub.add_parser("serve", help="run the embedded local Realtime server", add_help=False)
    sub.add_parser("bridge", help="run a carrier <-> Realtime bridge", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "serve":
        from rtfast.server import main as serve

        return serve(rest)
    if args.command == "bridge":
        from rtfast.bridge.server import main as bridge

        return bridge(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    if args.version:
        import rtfast

        print(f"rtfast {rtfast.__version__}")
        for key, value in rtfast.build_info().items():
            print(f"  {key}: {value}")
        return 0
    if args.command == "demo":
        from rtfast.demo import run

        return run(seconds=args.seconds, local=args.local)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
