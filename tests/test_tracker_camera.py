"""Camera-motion compensation over a track's whole lifecycle: a synthetic pan with a gap,
and a real moving-camera MOT17 clip."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_path

from kpr_track.detections import Detections
from kpr_track.evaluation import load_ground_truth
from kpr_track.io.video import sequence_frames
from kpr_track.trackers import KPRTracker, TrackState
from kpr_track.trackers.camera_motion import CameraMotion

PAN = 8.0  # px per frame: the camera turns right, the scene moves left in the image
SEEN, MISSED = 10, 6


def _one(box) -> Detections:
    return Detections(
        boxes=np.array([box], np.float32),
        scores=np.array([0.9], np.float32),
        keypoints=np.zeros((1, 17, 3), np.float32),
    )


def _pan_run(world_speed: float, *, camera_motion: bool = True):
    """A person walking ``world_speed`` px/frame in the scene, filmed by a camera panning
    PAN px/frame; seen SEEN frames, missed MISSED, seen again. Returns the tracker, the
    track and the ids of the last frame."""
    tracker = KPRTracker(min_hits=1, camera_motion=camera_motion, frame_rate=30.0)
    warp = np.array([[1.0, 0.0, -PAN], [0.0, 1.0, 0.0]])
    ids = None
    for t in range(SEEN + MISSED + 1):
        x = 400.0 + (world_speed - PAN) * t  # image x of the box's left edge
        detections = _one([x, 100, x + 40, 200]) if not SEEN <= t < SEEN + MISSED else None
        ids = tracker.update(
            detections if detections is not None else Detections.empty(), camera_warp=warp
        )
    (track,) = tracker.tracks
    return tracker, track, ids


@pytest.mark.parametrize("world_speed", [0.0, 3.0])
def test_refound_after_a_gap_under_a_pan_with_the_scene_velocity(world_speed):
    """The issue's hand-made case: before the whole state was warped, the re-update ran
    from an observation left in the old frame's pixels and a standing person came back
    with velocity -4.7 px/frame."""
    _, track, ids = _pan_run(world_speed)
    assert ids.tolist() == [1] and track.state == TrackState.CONFIRMED
    assert track.mean[4] == pytest.approx(world_speed, abs=0.3)  # px/frame, scene motion
    assert abs(track.mean[5]) < 0.1


def test_a_standing_person_has_no_direction_under_a_pan():
    tracker, track, _ = _pan_run(0.0)
    direction = track.direction(tracker.frames.direction_delta, tracker.config.direction_min_motion)
    assert direction.tolist() == [0.0, 0.0]


def test_observation_history_lives_in_the_current_frame():
    _, track, _ = _pan_run(0.0)
    # The last observation is this frame's box; without the warp of the history the
    # coasting state and the observation would disagree by PAN px per missed frame.
    x = 400.0 - PAN * (SEEN + MISSED)
    assert track.last_observation[0] == pytest.approx(x + 20.0)
    np.testing.assert_allclose(track.mean[:2], track.last_observation[:2], atol=1.0)


MOVING = ("MOT17-05-FRCNN", "MOT17-13-FRCNN")  # hand-held walk, car-mounted camera


@pytest.mark.parametrize("name", MOVING)
def test_real_moving_camera_clip_keeps_identities_through_a_gap(name):
    """Ground-truth boxes of a real moving-camera clip; every person is hidden in the
    middle frames and must come back with their id, and the estimated warp must be a
    real camera motion (not the identity)."""
    seq_dir = shared_path("data", "MOT17-mini", "train", name)
    gt = load_ground_truth(seq_dir).tracks
    gt = gt.select(gt.scores != 0)
    frames = list(sequence_frames(seq_dir))
    estimator = CameraMotion()
    warps = [estimator(image) for _, image in frames]
    shifts = [float(np.abs(w[:, 2]).max()) for w in warps[1:]]
    assert max(shifts) > 2.0  # px: the camera moves
    hidden = {len(frames) // 2}
    tracker = KPRTracker(min_hits=1, frame_rate=30.0)
    first, last = {}, {}
    for index, (frame_id, _) in enumerate(frames):
        rows = np.flatnonzero(gt.frames == frame_id)
        boxes = gt.boxes[rows]
        detections = Detections(
            boxes=np.c_[boxes[:, :2], boxes[:, :2] + boxes[:, 2:]].astype(np.float32),
            scores=np.full(len(rows), 0.9, np.float32),
            keypoints=np.zeros((len(rows), 17, 3), np.float32),
        )
        if index in hidden:
            detections = Detections.empty()
            rows = rows[:0]
        ids = tracker.update(detections, camera_warp=warps[index])
        for person, track_id in zip(gt.ids[rows].tolist(), ids.tolist(), strict=True):
            first.setdefault(person, track_id) if index == 0 else None
            last[person] = track_id
    kept = [p for p in first if p in last]
    assert len(kept) >= 5
    same = sum(first[p] == last[p] for p in kept)
    assert same >= 0.9 * len(kept)
