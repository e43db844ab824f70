"""What the ``rtfast`` commands share: help that shows defaults, and one-line
messages for the failures a user meets first (a port in use, no network)."""

from __future__ import annotations

import argparse
import errno
import os
import sys

from rtfast.errors import ConnectionClosed, RtfastError


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; each option's default after its help, unless it
    has none worth showing (None, False) or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def listen_failed(prog: str, host: str, port: int, exc: OSError, option: str = "--port") -> int:
    """Say in one line why ``host:port`` cannot be listened on; the exit status (2)."""
    if exc.errno == errno.EADDRINUSE:
        why = f"port {port} is already in use (stop what holds it, or choose another with {option})"
    elif exc.errno == errno.EACCES:
        why = f"no permission to listen on port {port} (ports below 1024 need privileges)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"{host} is not an address of this machine"
    else:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
    print(f"{prog}: cannot listen on {host}:{port}: {why}", file=sys.stderr)
    return 2


def is_connect_failure(exc: BaseException) -> bool:
    """True for what opening a Realtime connection raises when the server cannot
    be reached or refuses the handshake (DNS, refused, timeout, HTTP status);
    False for what goes wrong once connected (a close, a bad frame)."""
    if isinstance(exc, OSError):            # gaierror, ConnectionRefusedError, TimeoutError
        return True
    return isinstance(exc, RtfastError) and not isinstance(exc, (ConnectionClosed, ValueError, OverflowError))


def connect_failed(prog: str, where: str, exc: BaseException) -> int:
    """One line saying what could not be reached and how to run offline; the exit status (1)."""
    print(f"{prog}: could not connect to the Realtime API at {where}: {type(exc).__name__}: {exc} "
          f"-- to run offline against rtfast's embedded server, add --local", file=sys.stderr)
    return 1
