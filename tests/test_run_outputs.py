"""Results folder behaviour: an interrupted run leaves valid files; writers' formats."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from kpr_track.detectors.base import build_detector
from kpr_track.io.video import VideoReader
from kpr_track.pipeline import TrackingPipeline
from kpr_track.run import RunSettings, track_video
from kpr_track.trackers import load_tracker

STOP_AT = 6


class _InterruptingPipeline(TrackingPipeline):
    """The real pipeline, with Ctrl-C arriving while frame ``STOP_AT`` is tracked (in the
    main thread, while the worker thread detects the frames after it)."""

    followed = 0

    def follow(self, frame, detections):
        self.followed += 1
        if self.followed == STOP_AT:
            raise KeyboardInterrupt
        return super().follow(frame, detections)


def test_ctrl_c_leaves_valid_partial_results(tmp_path, pets_video, pets_gt):
    detector = build_detector(f"gt:{pets_gt}")
    pipeline = _InterruptingPipeline(detector, None, load_tracker("motion"))
    settings = RunSettings(str(pets_video), "gt", "motion", "none", 960, 0.05, "cpu", None)
    with pytest.raises(KeyboardInterrupt):
        track_video(VideoReader(pets_video), pipeline, tmp_path, settings, progress=False)
    rows = np.loadtxt(tmp_path / "tracks.txt", delimiter=",", ndmin=2)
    assert rows[:, 0].max() == STOP_AT - 1 and rows.shape[1] == 10
    data = json.loads((tmp_path / "tracks.json").read_text())
    assert len(data["images"]) == STOP_AT - 1
    assert len(data["annotations"]) == len(rows)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["frames"] == STOP_AT - 1
    video = cv2.VideoCapture(str(tmp_path / "video.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == STOP_AT - 1


def test_posetrack_json_streams_long_runs_and_rewrites_less_often(tmp_path, pets_gt, monkeypatch):
    """2400 frames (PETS09's ground truth three times over): tracks.json is valid after
    every rewrite, holds every record at the end, no record stays in Python memory, and
    the rewrites thin out as the file grows (at most every tenth of the frames so far)."""
    from kpr_track.detections import Detections
    from kpr_track.io.writers import PoseTrackWriter

    rows = np.loadtxt(pets_gt, delimiter=",")
    writer = PoseTrackWriter(tmp_path / "tracks.json", "vtest")
    dumps = []
    original = writer._dump
    monkeypatch.setattr(writer, "_dump", lambda: (original(), dumps.append(writer._frames)))
    expected = 0
    for frame_id in range(1, 2401):
        people = rows[rows[:, 0] == (frame_id - 1) % 795 + 1]
        boxes = np.c_[people[:, 2:4], people[:, 2:4] + people[:, 4:6]].astype(np.float32)
        keypoints = np.ones((len(boxes), 17, 3))
        detections = Detections(boxes, np.ones(len(boxes), np.float32), keypoints)
        writer.write(frame_id, detections, people[:, 1].astype(np.int64))
        expected += len(people)
        if dumps and dumps[-1] == frame_id and len(dumps) % 7 == 0:
            data = json.loads((tmp_path / "tracks.json").read_text())
            assert len(data["images"]) == frame_id
    writer.close()
    data = json.loads((tmp_path / "tracks.json").read_text())
    assert len(data["images"]) == 2400 and len(data["annotations"]) == expected > 10000
    assert [a["id"] for a in data["annotations"]] == list(range(1, expected + 1))
    assert data["annotations"][0]["keypoints"][:3] == [1.0, 1.0, 1.0]
    assert not [name for name in vars(writer) if isinstance(getattr(writer, name), list)]
    # Every 50 frames up to 500, then every tenth of the frames so far: 26 rewrites, not 48.
    assert dumps[:3] == [50, 100, 150] and len(dumps) <= 30
