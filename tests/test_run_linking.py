"""A tracked file is linked at the end: every output shows the linked ids, and a stop
during the final rewrite leaves the online results whole."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import kpr_track.linking as linking
from kpr_track.detectors.base import build_detector
from kpr_track.io.video import VideoReader
from kpr_track.linking import LinkSetup
from kpr_track.pipeline import TrackingPipeline
from kpr_track.reid.calibration import DistanceCalibration
from kpr_track.run import RunSettings, track_video
from kpr_track.trackers import load_tracker
from kpr_track.trackers.link import LinkConfig

FRAMES = 40


class _MeanColour:
    """A tiny real appearance stage: the L2-normalised mean BGR colour of each box."""

    calibration = DistanceCalibration(
        midpoint=0.2, slope=20.0, same_median=0.05, different_median=0.4
    )

    def __call__(self, frame, detections, targets=None):
        vectors = []
        for x1, y1, x2, y2 in detections.boxes.astype(int):
            crop = frame[max(y1, 0) : max(y2, y1 + 1), max(x1, 0) : max(x2, x1 + 1)]
            colour = crop.reshape(-1, 3).mean(axis=0) + 1.0
            vectors.append(colour / np.linalg.norm(colour))
        embeddings = np.asarray(vectors, np.float32).reshape(-1, 1, 3)
        return detections.with_appearance(embeddings, np.ones((len(detections), 1), np.float32))


class _Hidden:
    """Ground-truth boxes with the person at the left of the frame hidden in frames
    ``HIDDEN`` (as if behind a pillar)."""

    def __init__(self, pets_gt) -> None:
        self.detector = build_detector(f"gt:{pets_gt}")

    def detect(self, frame, frame_id):
        found = self.detector.detect(frame, frame_id)
        if frame_id in HIDDEN:
            found = found[found.boxes[:, 0] > found.boxes[:, 0].min()]
        return found


HIDDEN = range(15, 22)


def _run(tmp_path, pets_video, pets_gt, config=None):
    preset = tmp_path.parent / f"{tmp_path.name}-short-memory.yaml"
    preset.write_text("tracker: kpr\nappearance_weight: 0.0\nmax_age_s: 0.3\n")  # 2 frames at 7 fps
    tracker = load_tracker(str(preset), frame_rate=7.0)  # PETS09-S2L1 runs at 7 fps
    pipeline = TrackingPipeline(_Hidden(pets_gt), _MeanColour(), tracker)
    settings = RunSettings(str(pets_video), "gt", "motion", "mean-colour", 960, 0.05, "cpu", FRAMES)

    def frames():
        reader = VideoReader(pets_video, FRAMES)
        return ((reader.frame_id, frame) for frame in reader)

    link = LinkSetup(config or LinkConfig(), _MeanColour.calibration, frames)
    reader = VideoReader(pets_video, FRAMES)
    return track_video(reader, pipeline, tmp_path, settings, progress=False, link=link)


def _outputs(folder):
    rows = np.loadtxt(folder / "tracks.txt", delimiter=",", ndmin=2)
    document = json.loads((folder / "tracks.json").read_text())
    summary = json.loads((folder / "summary.json").read_text())
    video = cv2.VideoCapture(str(folder / "video.mp4"))
    count = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    video.release()
    return rows, document, summary, count


def test_every_output_shows_the_linked_ids(tmp_path, pets_video, pets_gt):
    # A gap-filling setting long enough to fill the tracker's own short gaps.
    summary = _run(tmp_path, pets_video, pets_gt, LinkConfig(fill_gap=2.0))
    rows, document, written, count = _outputs(tmp_path)
    assert written["linking"]["linked"] is True and summary["linking"] == written["linking"]
    # The hidden person came back under a new online id and was joined to the old one.
    assert written["linking"]["joins"] >= 1
    assert written["linking"]["tracks"] < written["linking"]["tracklets"]
    left = rows[rows[:, 2] == min(rows[rows[:, 0] == 1, 2])]
    (track_id,) = set(left[left[:, 0] == 1, 1])
    assert set(rows[(rows[:, 1] == track_id), 0].astype(int)) >= set(range(1, FRAMES + 1)) - {
        *HIDDEN
    }
    assert written["tracks"] == len(np.unique(rows[:, 1])) == written["linking"]["tracks"]
    annotations = document["annotations"]
    assert len(annotations) == len(rows) and count == FRAMES
    filled = sum(a["interpolated"] for a in annotations)
    assert filled == written["linking"]["interpolated_rows"]
    assert sorted({a["track_id"] for a in annotations}) == sorted(np.unique(rows[:, 1]).astype(int))
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_a_stop_during_the_rewrite_keeps_the_online_results(
    tmp_path, pets_video, pets_gt, monkeypatch
):
    online = tmp_path / "online"
    _run(online, pets_video, pets_gt, LinkConfig(enabled=True, fill_gap=0.0, max_gap=0.0))
    calls = {"n": 0}
    draw = linking.draw_tracks

    def stopping(*args):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return draw(*args)

    monkeypatch.setattr(linking, "draw_tracks", stopping)
    stopped = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        _run(stopped, pets_video, pets_gt)
    rows, document, summary, count = _outputs(stopped)
    expected, _, _, _ = _outputs(online)  # no join, no fill: the online rows
    assert np.array_equal(rows, expected) and count == FRAMES
    assert not any(a["interpolated"] for a in document["annotations"])
    assert summary["interrupted"] is True and summary["linking"] == {"linked": False}
    assert not list(stopped.glob(".*"))
