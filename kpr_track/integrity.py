"""Files that are whole or absent: atomic writes, and a sha256 sidecar checked on read.

A process killed half-way through a write (the out-of-memory killer, a lost node, a
full disk) must never leave a file that a later run takes for a finished one.
:func:`write_atomic` writes to a uniquely named temporary file in the same folder,
flushes it to disk and renames it over the target (``os.replace``, atomic on POSIX), so
readers see the old file or the new one, never a part. Two writers of the same content
(a retried Ray task) leave one whole file.

A cache file can still be damaged later (a copy cut short, a disk error, an edit):
:func:`write_sealed` / :func:`seal` also record its size and sha256 in
``<file>.sha256`` (``sha256sum`` format plus the size), and :func:`damage` compares the
file with that record before it is loaded.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

SIDECAR_SUFFIX = ".sha256"
NO_RECORD = "no size/sha256 record"
_CHUNK = 1 << 20


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically.

    The parent folder is created if needed. The temporary file is ``.<name>.<random>.tmp``
    next to ``path``; it is removed if the write fails.

    Raises:
        OSError: the folder or file cannot be created or written (disk full, permissions).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def file_digest(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar(path: str | Path) -> Path:
    """The record of ``path``: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def seal(path: str | Path) -> None:
    """Record the size and sha256 of the (finished) file ``path`` in its sidecar.

    The sidecar line is ``<sha256>  <name>  <size in bytes>``, written atomically.
    """
    path = Path(path)
    write_atomic(sidecar(path), f"{file_digest(path)}  {path.name}  {path.stat().st_size}\n")


def write_sealed(path: str | Path, data: bytes | str) -> None:
    """:func:`write_atomic` then :func:`seal`: the file, then its record."""
    write_atomic(path, data)
    seal(path)


def damage(path: str | Path) -> str | None:
    """What is wrong with a sealed file, or None when it matches its record.

    Returns:
        None, or a short reason: :data:`NO_RECORD` (the sidecar is missing or
        unreadable, e.g. a file from an older version), ``"truncated: N of M bytes"`` /
        ``"N bytes, expected M"``, or ``"sha256 X, expected Y"`` (first 12 hex digits).

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    size = path.stat().st_size
    try:
        digest, _name, recorded = sidecar(path).read_text().split()
        expected = int(recorded)
    except (OSError, ValueError):
        return NO_RECORD
    if size < expected:
        return f"truncated: {size} of {expected} bytes"
    if size > expected:
        return f"{size} bytes, expected {expected}"
    actual = file_digest(path)
    if actual != digest:
        return f"sha256 {actual[:12]}..., expected {digest[:12]}..."
    return None


def discard(path: str | Path) -> None:
    """Remove a damaged file and its sidecar (missing ones are fine)."""
    Path(path).unlink(missing_ok=True)
    sidecar(path).unlink(missing_ok=True)
