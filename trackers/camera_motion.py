"""Camera-motion compensation (CMC): the frame-to-frame image warp, applied to track states.

A moving camera shifts every person in the image at once, which a constant-velocity
Kalman filter reads as the people moving. As in BoT-SORT (Aharon, Orfaig & Bobrovsky,
"BoT-SORT: Robust Associations Multi-Pedestrian Tracking", 2022, Sec. 3.2, its sparse
optical-flow variant): corners of the previous frame (Shi-Tomasi) are followed into the
current frame with pyramidal Lucas-Kanade optical flow, a 4-dof similarity
(rotation, uniform scale, translation) is fitted to the moved points with RANSAC, and
each track's predicted state is mapped through it before association.

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
_MAX_CORNERS = 500
_MIN_POINTS = 8  # fewer tracked corners than this: no reliable estimate, identity


class CameraMotion:
    """Estimates the `(2, 3)` affine warp from the previous frame to the current one.

    Raises:
        InputError: from :meth:`__call__` when the frame is not an `(H, W, 3)` uint8 image.
    """

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None
        self._scale = 1.0

    def reset(self) -> None:
        """Forget the previous frame (call between sequences)."""
        self._previous = None

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
        if previous is None or previous.shape != gray.shape:
            return IDENTITY.copy()
        warp = self._estimate(previous, gray)
        if warp is None:
            return IDENTITY.copy()
        warp[:, 2] /= self._scale  # back to full-resolution pixels
        return warp

    @staticmethod
    def _estimate(previous: np.ndarray, current: np.ndarray) -> np.ndarray | None:
        points = cv2.goodFeaturesToTrack(
            previous, maxCorners=_MAX_CORNERS, qualityLevel=0.01, minDistance=1, blockSize=3
        )
        if points is None or len(points) < _MIN_POINTS:
            return None
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, points, None)
        ok = status.reshape(-1) == 1
        if ok.sum() < _MIN_POINTS:
            return None
        warp, _ = cv2.estimateAffinePartial2D(points[ok], moved[ok], method=cv2.RANSAC)
        return None if warp is None else warp.astype(np.float64)


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
        min_shift: px; when no centre moves this much the inputs come back unchanged.

    Returns:
        The warped ``(means (T, 8), covariances (T, 8, 8))``.
    """
    warp = np.asarray(warp, np.float64)
    linear, shift = warp[:, :2], warp[:, 2]
    centres = np.asarray(means, np.float64)[:, :2]
    moved = centres @ linear.T + shift
    if len(centres) == 0 or np.linalg.norm(moved - centres, axis=1).max() < min_shift:
        return means, covariances
    scale = float(np.sqrt(max(np.linalg.det(linear), 0.0)))
    jacobian = np.eye(8)
    jacobian[:2, :2] = linear
    jacobian[4:6, 4:6] = linear
    jacobian[3, 3] = jacobian[7, 7] = scale
    means = np.asarray(means, np.float64) @ jacobian.T
    means[:, :2] += shift
    covariances = jacobian @ np.asarray(covariances, np.float64) @ jacobian.T
    return means, covariances
