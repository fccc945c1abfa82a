"""Command-line entry point: ``kpr-track [track] VIDEO``, ``kpr-track eval`` ...

Each sub-command lives in its own module of this package exposing
``register(subparsers)``, which adds a parser whose ``func(args) -> int`` runs it.
Usage errors (bad paths, unknown presets, malformed files) are :class:`KprTrackError`
and end the process with one line on stderr and exit status 2, never a traceback.
Ctrl-C, SIGTERM and SIGHUP stop a command the same way (:mod:`kpr_track.signals`): its
files are closed and the exit status is 128 + the signal number.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import KprTrackError
from ..signals import exit_status, signal_of, stop_signals_raise
from .help import ArgumentParser

# Sub-command modules, imported lazily so `kpr-track --help` stays fast.
_COMMANDS = (
    "track",
    "track-dataset",
    "eval",
    "train",
    "eval-reid",
    "build-reid-split",
    "calibrate",
    "export",
    "link",
    "tune",
    "bench",
)
# Options of `kpr-track` itself; any other first argument is a video or a `track` option.
_TOP_LEVEL_OPTIONS = ("-h", "--help", "--version")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command registered."""
    import importlib

    parser = ArgumentParser(
        prog="kpr-track",
        description="Multi-person tracking with Keypoint Promptable Re-Identification.",
    )
    parser.add_argument("--version", action="version", version=f"kpr-track {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f".{name.replace('-', '_')}", __package__).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; ``kpr-track VIDEO ...`` is short for ``kpr-track track VIDEO ...``,
    ``kpr-track --max-frames 10 ...`` for ``kpr-track track --max-frames 10 ...`` and
    ``kpr-track`` alone for ``kpr-track track`` (the shipped sample clip)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in _COMMANDS and argv[0] not in _TOP_LEVEL_OPTIONS):
        argv.insert(0, "track")  # `kpr-track` alone tracks the sample clip
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with stop_signals_raise():
            return int(args.func(args) or 0)
    except KprTrackError as error:
        message = str(error).replace("\r", "\\r").replace("\n", "\\n")  # one line
        print(f"kpr-track {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        name = signal_of(interrupt).name
        print(f"kpr-track {args.command}: interrupted ({name})", file=sys.stderr)
        return exit_status(interrupt)


if __name__ == "__main__":
    raise SystemExit(main())
