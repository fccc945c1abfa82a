"""Results folder behaviour: an interrupted run leaves valid files; writers' formats."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from kpr_track.detectors.base import build_detector
from kpr_track.pipeline import TrackingPipeline
from kpr_track.run import RunSettings, track_video
from kpr_track.trackers import load_tracker
from kpr_track.video import VideoReader

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
