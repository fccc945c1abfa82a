"""Every run ends in valid files and a clear message: stop signals, videos that end early
or hold corrupt frames, and results that cannot be written (full disk, bad folder)."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import read_video_frame, shared_path

from kpr_track.detectors.base import build_detector
from kpr_track.errors import OutputError
from kpr_track.io.video import VideoReader
from kpr_track.io.writers import MOTWriter
from kpr_track.pipeline import TrackingPipeline
from kpr_track.run import RunSettings, track_video
from kpr_track.signals import STOP_SIGNALS, Interrupted, stop_signals_raise
from kpr_track.trackers import load_tracker

PETS_DECLARED = 795
TRUNCATED_BYTES = 400_000  # the first 26 frames of the PETS09 AVI


@pytest.fixture(scope="module")
def pets_det():
    return shared_path("data", "PETS09-S2L1", "det", "det.txt")


def _track_args(video: Path, out: Path, det: Path, *extra: str) -> list[str]:
    """A fast run: public detections, motion-only tracker, no appearance model."""
    return [
        sys.executable, "-m", "kpr_track", str(video), "--out", str(out), "--det", f"mot:{det}",
        "--reid", "none", "--tracker", "motion", "--no-progress", *extra,
    ]  # fmt: skip


def _assert_valid_results(out: Path) -> dict:
    """The four outputs agree with each other; returns the summary."""
    summary = json.loads((out / "summary.json").read_text())
    frames = summary["frames"]
    images = json.loads((out / "tracks.json").read_text())["images"]
    assert len(images) == frames
    text = (out / "tracks.txt").read_text()
    assert text == "" or text.endswith("\n")
    rows = np.loadtxt(out / "tracks.txt", delimiter=",", ndmin=2) if text else np.zeros((0, 10))
    assert rows.shape[1] == 10
    assert set(rows[:, 0].astype(int)) <= {image["id"] for image in images}
    video = cv2.VideoCapture(str(out / "video.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
    return summary


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# --- stop signals -------------------------------------------------------------------
# Each test sets the dispositions it tests: pytest may itself run under `nohup` (SIGHUP
# ignored, inherited by children) or in the background of a shell (SIGINT ignored).


def _default_stop_signals() -> None:
    """``preexec_fn`` of a child run: SIGINT / SIGTERM / SIGHUP at their default action."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


@pytest.fixture
def default_stop_signals():
    """This process's stop signals at their default action during the test."""
    previous = {signum: signal.signal(signum, signal.SIG_DFL) for signum in STOP_SIGNALS}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_ends_the_run_like_ctrl_c(tmp_path, pets_video, pets_det, signum):
    out = tmp_path / "run"
    process = subprocess.Popen(
        _track_args(pets_video, out, pets_det),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=_default_stop_signals,
    )
    deadline = time.monotonic() + 300
    while not (out / "tracks.txt").is_file() or (out / "tracks.txt").stat().st_size < 500:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run wrote no tracks in 300 s"
        time.sleep(0.1)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    name = signal.Signals(signum).name
    assert _one_line(stderr) == f"kpr-track track: interrupted ({name})"
    assert f"Interrupted: partial results in {out}" in stdout
    summary = _assert_valid_results(out)
    assert summary["interrupted"] is True and summary["signal"] == name
    assert 0 < summary["frames"] < PETS_DECLARED


def test_second_signal_does_not_break_the_clean_up(default_stop_signals):
    closed = []
    with pytest.raises(Interrupted) as stop:
        with stop_signals_raise():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # the handler raises here
            finally:
                os.kill(os.getpid(), signal.SIGHUP)  # ignored: the clean-up goes on
                closed.append(True)
    assert stop.value.signum == signal.SIGTERM and closed == [True]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_ignored_signal_stays_ignored():
    """``nohup`` ignores SIGHUP; a run started under it must not stop on SIGHUP."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals_raise():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.2)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


# --- videos that end early or hold corrupt frames ------------------------------------


def test_truncated_video_is_tracked_with_a_warning(tmp_path, pets_video, pets_det):
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(pets_video.read_bytes()[:TRUNCATED_BYTES])
    out = tmp_path / "run"
    result = subprocess.run(
        _track_args(truncated, out, pets_det), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    warning = _one_line(result.stderr)
    assert warning.startswith(f"kpr-track track: warning: {truncated}: ")
    assert f"declares {PETS_DECLARED} frames but decoding stopped after frame 26" in warning
    summary = _assert_valid_results(out)
    assert summary["frames"] == 26
    assert summary["decode"] == {
        "declared_frames": PETS_DECLARED,
        "decoded_frames": 26,
        "failed_frames": [],
        "unread_frames": PETS_DECLARED - 26,
    }


def test_byte_corrupted_video_reports_the_frames_it_lost(tmp_path, pets_video):
    data = bytearray(pets_video.read_bytes())
    rng = np.random.default_rng(0)
    data[2_000_000:2_020_000] = rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    corrupted = tmp_path / "corrupted.avi"
    corrupted.write_bytes(bytes(data))
    reader = VideoReader(corrupted)
    first = next(iter(reader))
    assert np.array_equal(first, read_video_frame(pets_video, 0))
    decoded = 1 + sum(1 for _ in reader)
    report = reader.decode
    assert decoded == report.decoded_frames < PETS_DECLARED
    assert report.unread_frames == PETS_DECLARED - reader.frame_id > 0
    assert f"declares {PETS_DECLARED} frames" in report.warning(corrupted)


class _FailingCapture:
    """The real OpenCV capture, with the 1-based frames ``fail`` reported as undecodable
    (read and dropped, as a decoder error does)."""

    def __init__(self, capture: cv2.VideoCapture, fail: set[int]) -> None:
        self.capture, self.fail, self.frame = capture, fail, 1  # frame 1 is read on open

    def read(self) -> tuple[bool, np.ndarray | None]:
        ok, image = self.capture.read()
        self.frame += 1
        return (False, None) if self.frame in self.fail else (ok, image)

    def release(self) -> None:
        self.capture.release()


def _failing_reader(video: Path, fail: set[int], max_frames: int) -> VideoReader:
    reader = VideoReader(video, max_frames=max_frames)
    reader._capture = _FailingCapture(reader._capture, fail)
    return reader


def test_frames_that_fail_to_decode_are_skipped_and_keep_their_numbers(pets_video):
    reader = _failing_reader(pets_video, {4, 5, 9}, max_frames=10)
    numbered = [(reader.frame_id, frame) for frame in reader]
    assert [n for n, _ in numbered] == [1, 2, 3, 6, 7, 8, 10]
    assert np.array_equal(numbered[3][1], read_video_frame(pets_video, 5))  # frame 6
    assert reader.decode.failed_frames == [4, 5, 9] and reader.decode.unread_frames == 0
    assert "3 frame(s) failed to decode and were skipped (frames 4, 5, 9)" in (
        reader.decode.warning(pets_video)
    )


def test_run_over_failing_frames_writes_the_video_numbers(tmp_path, pets_video, pets_gt):
    pipeline = TrackingPipeline(build_detector(f"gt:{pets_gt}"), None, load_tracker("motion"))
    settings = RunSettings(str(pets_video), "gt", "motion", "none", 960, 0.05, "cpu", 10)
    reader = _failing_reader(pets_video, {4, 5}, max_frames=10)
    summary = track_video(reader, pipeline, tmp_path, settings, progress=False)
    images = json.loads((tmp_path / "tracks.json").read_text())["images"]
    assert [image["id"] for image in images] == [1, 2, 3, 6, 7, 8, 9, 10]
    assert summary["decode"]["failed_frames"] == [4, 5]
    assert _assert_valid_results(tmp_path)["frames"] == 8


# --- results that cannot be written ---------------------------------------------------


def _blocked_by_a_file(tmp_path):
    """A results folder whose parent is a file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    return blocker / "run"


def _a_file(tmp_path):
    """A results folder path that is a file."""
    out = tmp_path / "taken.txt"
    out.write_text("a file where the folder should go\n")
    return out


@pytest.mark.parametrize("make_out", [_blocked_by_a_file, _a_file])
def test_output_folder_that_cannot_be_created(tmp_path, pets_video, pets_det, make_out):
    out = make_out(tmp_path)
    result = subprocess.run(
        _track_args(pets_video, out, pets_det, "--max-frames", "2"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2
    assert (
        _one_line(result.stderr) == f"kpr-track track: error: {out}: cannot write (Not a directory)"
    )


def test_results_on_a_full_device(tmp_path, pets_video, pets_det):
    """``tracks.txt`` on /dev/full: every write fails with ENOSPC, as on a full disk."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "tracks.txt").symlink_to("/dev/full")
    result = subprocess.run(
        _track_args(pets_video, out, pets_det, "--max-frames", "5", "--exist-ok"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2
    message = (
        f"kpr-track track: error: {out / 'tracks.txt'}: cannot write (No space left on device)"
    )
    assert _one_line(result.stderr) == message
    summary = json.loads((out / "summary.json").read_text())
    assert summary["error"] == message.removeprefix("kpr-track track: error: ")
    assert len(json.loads((out / "tracks.json").read_text())["images"]) == summary["frames"]


class _FillingFile:
    """A raw file that fills up after ``room`` bytes: the write that crosses the limit
    is partial, the next one fails with ENOSPC, as write(2) on a full disk."""

    def __init__(self, raw, room: int) -> None:
        self.raw, self.room = raw, room

    def write(self, data) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self.raw.write(bytes(data[: self.room]))
        self.room -= written
        return written

    def __getattr__(self, name):
        return getattr(self.raw, name)


def test_disk_filling_mid_run_keeps_the_frames_written(tmp_path, pets_video, pets_gt, monkeypatch):
    opened = MOTWriter.__init__

    def filling(writer, path):
        opened(writer, path)
        writer._file = _FillingFile(writer._file, room=1000)

    monkeypatch.setattr(MOTWriter, "__init__", filling)
    pipeline = TrackingPipeline(build_detector(f"gt:{pets_gt}"), None, load_tracker("motion"))
    settings = RunSettings(str(pets_video), "gt", "motion", "none", 960, 0.05, "cpu", 30)
    with pytest.raises(OutputError) as error:
        track_video(VideoReader(pets_video, 30), pipeline, tmp_path, settings, progress=False)
    assert str(error.value) == f"{tmp_path / 'tracks.txt'}: cannot write (No space left on device)"
    summary = _assert_valid_results(tmp_path)
    assert summary["error"] == str(error.value) and not summary["interrupted"]
    rows = np.loadtxt(tmp_path / "tracks.txt", delimiter=",", ndmin=2)
    assert 0 < rows[:, 0].max() == summary["frames"] < 30
    annotations = json.loads((tmp_path / "tracks.json").read_text())["annotations"]
    assert len(rows) == len(annotations)  # whole frames only: the partial one was cut off


def test_file_size_limit_mid_run(tmp_path, pets_video, pets_det):
    """A 200 kB file size limit (RLIMIT_FSIZE): the video outgrows it after a few frames."""

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    out = tmp_path / "run"
    result = subprocess.run(
        _track_args(pets_video, out, pets_det, "--max-frames", "30"),
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limit_file_size,
    )
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert line.startswith(f"kpr-track track: error: {out / 'video.mp4'}: cannot write (")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 30 and summary["error"] in line
    assert len(json.loads((out / "tracks.json").read_text())["images"]) == 30
    rows = np.loadtxt(out / "tracks.txt", delimiter=",", ndmin=2)
    assert rows[:, 0].max() == 30 and rows.shape[1] == 10
