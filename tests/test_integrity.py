"""kpr_track.integrity: a writer killed mid-write leaves the old file or the new one, never
a part; a sealed file cut short or altered is reported before it is read."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from kpr_track.integrity import (
    NO_RECORD,
    damage,
    discard,
    seal,
    sidecar,
    write_atomic,
    write_sealed,
)

SIZE = 32 << 20  # 32 MiB per version: a write takes long enough to be killed inside it
WRITER = f"""
import itertools, sys
from kpr_track.integrity import write_atomic
for version in itertools.count(1):
    write_atomic(sys.argv[1], bytes([version % 251]) * {SIZE})
    print(version, flush=True)
"""


def test_writer_killed_mid_write_leaves_a_whole_file(tmp_path):
    target = tmp_path / "result.bin"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE)
    assert writer.stdout.readline().strip() == b"1"  # one version written whole
    time.sleep(0.05)  # inside a later write
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL
    data = target.read_bytes()
    assert len(data) == SIZE and data.count(data[:1]) == SIZE  # one version, all of it


def test_sealed_file_truncated_or_altered_is_reported(tmp_path):
    path = tmp_path / "cache.bin"
    write_sealed(path, b"x" * 1000)
    assert damage(path) is None
    path.write_bytes(b"x" * 600)
    assert damage(path) == "truncated: 600 of 1000 bytes"
    path.write_bytes(b"y" * 1000)
    assert damage(path).startswith("sha256 ")
    path.write_bytes(b"x" * 1200)
    assert damage(path) == "1200 bytes, expected 1000"
    sidecar(path).unlink()
    assert damage(path) == NO_RECORD
    seal(path)
    assert damage(path) is None
    discard(path)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "result.txt"
    write_atomic(path, "old\n")
    with pytest.raises(TypeError):
        write_atomic(path, object())  # type: ignore[arg-type]
    assert path.read_text() == "old\n" and list(tmp_path.iterdir()) == [path]
