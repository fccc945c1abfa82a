"""Errors that kpr-track raises for bad input.

Every error a user can cause (a wrong path, a malformed file, an unknown option) is a
:class:`KprTrackError` whose message names the file, the field and what was expected.
The CLI prints it on one line and exits with status 2; library users can catch it.
A result that cannot be written (:class:`OutputError`) ends the same way.
"""

from __future__ import annotations


class KprTrackError(Exception):
    """Base class for every error caused by bad input to kpr-track."""


class InputError(KprTrackError, ValueError):
    """A file or array given to kpr-track is missing, unreadable or malformed."""


class ConfigError(KprTrackError, ValueError):
    """A configuration value, preset name or YAML key is unknown or out of range."""


class WeightsError(KprTrackError, FileNotFoundError):
    """Model weights could not be found, downloaded or verified."""


class OutputError(KprTrackError):
    """A result file or folder could not be created or written (permissions, full disk)."""


def one_line(error: BaseException, limit: int = 300) -> str:
    """A library's error message on one line, at most ``limit`` characters, to quote inside
    one of ours."""
    return str(error).replace("\n", " ")[:limit]
