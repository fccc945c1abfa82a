"""Camera-motion compensation on a real PETS09 frame, and the state warp."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import read_video_frame

from kpr_track.errors import InputError
from kpr_track.trackers.camera_motion import IDENTITY, CameraMotion, warp_states
from kpr_track.trackers.kalman import KalmanFilter


@pytest.mark.parametrize(
    "warp",
    [
        [[1.0, 0.0, 6.0], [0.0, 1.0, -4.0]],  # a pan of (6, -4) px
        [[0.995, -0.0998, 20.0], [0.0998, 0.995, -10.0]],  # a 5.7 degree roll and shift
        [[1.02, 0.0, -8.0], [0.0, 1.02, -6.0]],  # a zoom by 2 %
    ],
)
def test_recovers_a_known_warp_of_a_real_frame(pets_video, warp):
    frame = read_video_frame(pets_video, 100)
    warp = np.array(warp)
    moved = cv2.warpAffine(frame, warp, (frame.shape[1], frame.shape[0]))
    estimator = CameraMotion()
    np.testing.assert_array_equal(estimator(frame), IDENTITY)  # first frame
    found = estimator(moved)
    # Compare where the warps send points of the central image region (px).
    points = np.array([[200, 150], [568, 150], [200, 426], [568, 426]], float)
    error = points @ found[:, :2].T + found[:, 2] - (points @ warp[:, :2].T + warp[:, 2])
    assert np.abs(error).max() < 1.0


def test_follows_a_pan_and_zoom_over_real_frames_and_reuses_its_points(pets_video, monkeypatch):
    """40 real frames (people walking) seen by a camera panning 3 px/frame left, 1 px/frame
    down and zooming 0.1 %/frame: every frame-to-frame warp is recovered, and corners are
    detected again only when too few followed points remain, not in every frame."""
    capture = cv2.VideoCapture(str(pets_video))
    frames = [capture.read()[1] for _ in range(40)]
    capture.release()
    detected = []
    real_detect = cv2.goodFeaturesToTrack
    monkeypatch.setattr(
        cv2, "goodFeaturesToTrack", lambda *a, **k: detected.append(1) or real_detect(*a, **k)
    )
    estimator = CameraMotion()
    size = (frames[0].shape[1], frames[0].shape[0])
    points = np.array([[200, 150], [568, 150], [200, 426], [568, 426]], float)
    previous = None
    for index, frame in enumerate(frames):
        camera = np.array([[1 + 1e-3 * index, 0, -3.0 * index], [0, 1 + 1e-3 * index, index]])
        found = estimator(cv2.warpAffine(frame, camera, size))
        if previous is not None:  # true warp previous -> current: camera o previous^-1
            true = (
                np.vstack([camera, [0, 0, 1]]) @ np.linalg.inv(np.vstack([previous, [0, 0, 1]]))
            )[:2]
            error = points @ found[:, :2].T + found[:, 2] - (points @ true[:, :2].T + true[:, 2])
            assert np.abs(error).max() < 0.5, f"frame {index}"
        previous = camera
    assert 1 <= len(detected) < 5


def test_static_camera_gives_a_negligible_warp_that_is_ignored(pets_video):
    first, second = read_video_frame(pets_video, 100), read_video_frame(pets_video, 101)
    estimator = CameraMotion()
    estimator(first)
    warp = estimator(second)  # people move, the camera does not
    mean, covariance = KalmanFilter().initiate(np.array([300.0, 200, 0.4, 90]))
    means, covariances = mean[None], covariance[None]
    warped_means, _ = warp_states(warp, means, covariances, min_shift=1.0)
    assert warped_means is means  # below 1 px at the track: compensation off


def test_warp_states_moves_centre_turns_velocity_scales_height():
    angle = np.pi / 2
    scale = 2.0
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    warp = np.c_[linear, [10.0, 20.0]]
    means = np.array([[100.0, 50.0, 0.5, 80.0, 3.0, 0.0, 0.0, 1.0]])
    covariances = np.eye(8)[None]
    out, cov = warp_states(warp, means, covariances)
    assert out[0].tolist() == pytest.approx([-90.0, 220.0, 0.5, 160.0, 0.0, 6.0, 0.0, 2.0])
    assert cov[0, 3, 3] == pytest.approx(4.0) and cov[0, 2, 2] == pytest.approx(1.0)


def test_rejects_a_non_image():
    with pytest.raises(InputError, match="uint8"):
        CameraMotion()(np.zeros((10, 10), np.float32))
