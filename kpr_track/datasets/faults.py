"""A pause point inside a sequence, so tests can kill the very process tracking it.

With ``KPR_TRACK_PAUSE=SEQUENCE:FOLDER`` in the environment of a worker (local process or
Ray task), the worker tracking ``SEQUENCE`` stops after its :data:`PAUSE_AFTER_FRAMES`
first frames, writes its process id to ``FOLDER/SEQUENCE.pid`` and waits until that
file is removed (at most :data:`PAUSE_SECONDS`). A test then sends a real signal to
that process mid-sequence (as the out-of-memory killer would), or removes the file to
let it go on. Without the variable, readers are returned unchanged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..integrity import write_atomic

PAUSE_ENV = "KPR_TRACK_PAUSE"
PAUSE_AFTER_FRAMES = 2
PAUSE_SECONDS = 120.0


def paused(reader, name: str):
    """``reader`` itself, or, when :data:`PAUSE_ENV` names sequence ``name``, a reader
    that pauses as the module docstring says (same ``info``, ``frame_id``, length)."""
    sequence, _, folder = os.environ.get(PAUSE_ENV, "").partition(":")
    if sequence != name or not folder:
        return reader
    return _PausingReader(reader, Path(folder) / f"{name}.pid")


class _PausingReader:
    """Delegates to a frame reader; pauses once before frame ``PAUSE_AFTER_FRAMES + 1``."""

    def __init__(self, reader, pid_file: Path) -> None:
        self._reader = reader
        self._pid_file = pid_file

    def __getattr__(self, name: str):
        return getattr(self._reader, name)

    def __len__(self) -> int:
        return len(self._reader)

    def __iter__(self) -> Iterator:
        for index, frame in enumerate(self._reader):
            if index == PAUSE_AFTER_FRAMES:
                self._pause()
            yield frame

    def _pause(self) -> None:
        write_atomic(self._pid_file, f"{os.getpid()}\n")
        deadline = time.monotonic() + PAUSE_SECONDS
        while self._pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
