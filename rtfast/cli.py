"""The rtfast command line: ``rtfast demo``, ``rtfast serve``, ``rtfast bridge``, ``rtfast --version``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rtfast", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print the version and build info")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="a short voice conversation (embedded server without OPENAI_API_KEY)")
    demo.add_argument("--seconds", type=float, default=10.0, help="audio used for the audio-core figures")
    sub.add_parser("serve", help="run the embedded local Realtime server (rtfast serve --help)", add_help=False)
    sub.add_parser("bridge", help="run a carrier <-> Realtime bridge (rtfast bridge --help)", add_help=False)
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

        return run(seconds=args.seconds)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
