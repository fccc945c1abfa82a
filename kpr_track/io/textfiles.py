"""Reading text input files, with every failure an :class:`InputError` naming the file."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (``path`` must exist), split at ``\n`` only.

    Raises:
        InputError: the file cannot be read or is not UTF-8 text (names the file).
    """
    try:
        return path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as error:
        reason = f"{error.reason} at byte {error.start}"
        raise InputError(f"{path}: not a UTF-8 text file ({reason})") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
