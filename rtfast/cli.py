"""The rtfast command line: ``rtfast demo``, ``rtfast --version``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rtfast", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print the version and build info")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="transcode a simulated phone call and compare with the stdlib")
    demo.add_argument("--seconds", type=float, default=30.0, help="length of the simulated call")
    args = parser.parse_args(argv)

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
