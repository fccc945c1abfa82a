"""Camera-motion compensation (CMC): the frame-to-frame image warp, applied to track states.

A moving camera shifts every person in the image at once, which a constant-velocity
Kalman filter reads as the people moving. As in BoT-SORT (Aharon, Orfaig & Bobrovsky,
"BoT-SORT: Robust Associations Multi-Pedestrian Tracking", 2022, Sec. 3.2, its sparse
optical-flow variant): corners of the previous frame (Shi-Tomasi) are followed into the
current frame with pyramidal Lucas-Kanade optical flow, a 4-dof similarity
(rotation, uniform scale, translation) is fitted to the moved points with RANSAC, and
each track's whole state is mapped through it before association: the predicted Kalman
mean and covariance (:func:`warp_states`) and the observations kept for OC-SORT's
re-update and direction term, with the filter state saved at the last observation
(:meth:`~.track.Track.follow_camera`), so a re-found track's gap and direction are
measured in the current frame's pixels and a standing person keeps zero velocity.

Unlike BoT-SORT, corners are not detected afresh in every frame: the RANSAC inliers,
where the flow put them, are followed on into the next frame (a KLT tracker, Shi & Tomasi,
"Good features to track", CVPR 1994), and corners are detected again only when fewer than
half of ``_MAX_CORNERS`` remain. Points on walking people drop out as outliers, so the
kept points settle on the background. On PETS09-S2L1 frames that took 1.8 instead of 7.3
ms a frame on one core (against 500 corners detected in every frame; ``kpr-track bench
speed`` reports it), and a synthetic pan and zoom of 60 real PETS09 frames was recovered
within 0.22 px instead of 1.00 px (tests/test_camera_motion.py holds it to 0.5 px).

On a static camera the estimate is noise: :func:`warp_states` leaves the states
untouched when no track centre would move by ``min_shift`` pixels (the tracker's
``camera_min_shift``), so compensation switches itself off there.

Shape letters: ``T`` tracks.
"""

from __future__ import annotations

import cv2
import numpy as np

from kpr_track.errors import InputError

IDENTITY = np.eye(2, 3)

_DOWNSCALE_WIDTH = 480  # px: frames are downscaled to this width for the flow (speed)
_MAX_CORNERS = 200  # corners detected when too few followed points remain
_MIN_POINTS = 8  # fewer tracked corners than this: no reliable estimate, identity
ESTIMATOR = f"klt{_MAX_CORNERS}@{_DOWNSCALE_WIDTH}px"
"""What the estimated warps depend on: the name caches of warps are keyed with."""


class CameraMotion:
    """Estimates the `(2, 3)` affine warp from the previous frame to the current one.

    Raises:
        InputError: from :meth:`__call__` when the frame is not an `(H, W, 3)` uint8 image.
    """

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None
        self._points: np.ndarray | None = None  # (n, 1, 2) float32 px in _previous
        self._scale = 1.0

    def reset(self) -> None:
        """Forget the previous frame and its points (call between sequences)."""
        self._previous = None
        self._points = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Warp `(2, 3)` float64 mapping previous-frame pixels to this frame's (x, y).

        The first frame after construction or :meth:`reset` gives the identity.
        """
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.dtype != np.uint8:
            shape = getattr(frame, "shape", type(frame).__name__)
            raise InputError(f"CameraMotion: expected an (H, W, 3) uint8 BGR frame, got {shape}")
        self._scale = min(1.0, _DOWNSCALE_WIDTH / frame.shape[1])
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self._scale < 1.0:
            gray = cv2.resize(gray, None, fx=self._scale, fy=self._scale)
        previous, self._previous = self._previous, gray
        points, self._points = self._points, None
        if previous is None or previous.shape != gray.shape:
            return IDENTITY.copy()
        if points is None or len(points) < _MAX_CORNERS // 2:
            points = cv2.goodFeaturesToTrack(
                previous, maxCorners=_MAX_CORNERS, qualityLevel=0.01, minDistance=1, blockSize=3
            )
        if points is None or len(points) < _MIN_POINTS:
            return IDENTITY.copy()
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, gray, points, None)
        ok = status.reshape(-1) == 1
        if ok.sum() < _MIN_POINTS:
            return IDENTITY.copy()
        warp, inliers = cv2.estimateAffinePartial2D(points[ok], moved[ok], method=cv2.RANSAC)
        if warp is None:
            return IDENTITY.copy()
        self._points = moved[ok][inliers.reshape(-1) == 1].reshape(-1, 1, 2)
        warp = warp.astype(np.float64)
        warp[:, 2] /= self._scale  # back to full-resolution pixels
        return warp


def frame_warp(
    camera: CameraMotion | None, frame: np.ndarray | None, warp: np.ndarray | None
) -> np.ndarray | None:
    """The `(2, 3)` float64 warp previous -> current frame px a tracker applies.

    Args:
        camera: the tracker's estimator; None when compensation is off (returns None).
        frame: the current `(H, W, 3)` BGR uint8 image, estimated from when no ``warp``.
        warp: a precomputed warp, used (checked) instead of ``frame``.

    Returns:
        The warp, or None (compensation off, or neither ``frame`` nor ``warp`` given).

    Raises:
        InputError: when ``warp`` is not a finite `(2, 3)` affine.
    """
    if camera is None:
        return None
    if warp is not None:
        warp = np.asarray(warp, np.float64)
        if warp.shape != (2, 3) or not np.isfinite(warp).all():
            raise InputError(
                f"KPRTracker.update: camera_warp must be a finite (2, 3) affine, "
                f"got shape {warp.shape}"
            )
        return warp
    return None if frame is None else camera(frame)


def camera_moves(warp: np.ndarray, centres: np.ndarray, min_shift: float) -> bool:
    """Whether ``warp`` moves any of the `(T, 2)` px ``centres`` by ``min_shift`` px or more
    (below that, on a static camera, the estimate is noise and is not applied)."""
    warp = np.asarray(warp, np.float64)
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    if len(centres) == 0:
        return False
    moved = centres @ warp[:, :2].T + warp[:, 2]
    return bool(np.linalg.norm(moved - centres, axis=1).max() >= min_shift)


def _jacobian(warp: np.ndarray) -> np.ndarray:
    """`(8, 8)` linear part of the warp on a state ``(cx, cy, a, h, vcx, vcy, va, vh)``:
    ``R`` on the centre and its velocity, ``s = sqrt(det R)`` on the height and its
    velocity, 1 on the aspect."""
    linear = np.asarray(warp, np.float64)[:, :2]
    scale = float(np.sqrt(max(np.linalg.det(linear), 0.0)))
    jacobian = np.eye(8)
    jacobian[:2, :2] = linear
    jacobian[4:6, 4:6] = linear
    jacobian[3, 3] = jacobian[7, 7] = scale
    return jacobian


def warp_states(
    warp: np.ndarray, means: np.ndarray, covariances: np.ndarray, min_shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Map Kalman states ``(cx, cy, a, h, vcx, vcy, va, vh)`` through an image warp.

    The centre goes through the affine map; the centre velocity through its linear part
    ``R`` (rotation and scale); height and its velocity scale by ``s = sqrt(det R)``; the
    aspect is unchanged. Covariances transform as ``J P J^T`` with the same linear map
    (as BoT-SORT does for its state).

    Args:
        warp: `(2, 3)` affine, previous frame -> current frame, px.
        means: `(T, 8)`.
        covariances: `(T, 8, 8)`.
        min_shift: px; when no centre moves this much (:func:`camera_moves`) the inputs
            come back unchanged.

    Returns:
        The warped ``(means (T, 8), covariances (T, 8, 8))``.
    """
    warp = np.asarray(warp, np.float64)
    if not camera_moves(warp, np.asarray(means)[:, :2], min_shift):
        return means, covariances
    jacobian = _jacobian(warp)
    means = np.asarray(means, np.float64) @ jacobian.T
    means[:, :2] += warp[:, 2]
    covariances = jacobian @ np.asarray(covariances, np.float64) @ jacobian.T
    return means, covariances


def warp_measurements(warp: np.ndarray, measurements: np.ndarray) -> np.ndarray:
    """Map `(..., 4)` ``(cx, cy, a, h)`` boxes (a track's observation history) through an
    image warp as :func:`warp_states` maps a state's first four entries.

    Returns:
        `(..., 4)` float64 in the current frame's pixels.
    """
    warp = np.asarray(warp, np.float64)
    boxes = np.array(measurements, np.float64)
    boxes[..., :2] = boxes[..., :2] @ warp[:, :2].T + warp[:, 2]
    boxes[..., 3] *= _jacobian(warp)[3, 3]
    return boxes
