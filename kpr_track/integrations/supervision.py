"""A KPR tracker with the supervision / Roboflow ``trackers`` convention.

None of Roboflow's trackers (``trackers`` 2.6.1: SORT, ByteTrack, OC-SORT) accepts
appearance, so this one is kpr-track's own :class:`~kpr_track.trackers.KPRTracker` behind
their interface: ``update(sv.Detections, frame) -> sv.Detections`` with ``tracker_id``
(``-1`` for detections not output as a track) and ``reset()``. Pass ``sv.KeyPoints``
(row-aligned with the detections, e.g. both from one pose result) when you have them;
else KPR runs top-down pose. Install: ``pip install 'kpr-track[supervision]'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..kpr import KPR
from ..trackers.config import load_tracker
from . import import_host

if TYPE_CHECKING:
    import supervision as sv


class KPRSupervisionTracker:
    """KPR appearance + kpr-track's tracker, on supervision detections.

    Args:
        kpr: the appearance model; None loads the default (``KPR.from_pretrained()``).
        preset: kpr-track tracker preset name (``kpr``, ``motion``) or YAML path.
        frame_rate: frames per second of the video (scales the Kalman noise); None: the
            preset's reference rate.

    Raises:
        ConfigError: supervision missing, or an unknown preset.
    """

    def __init__(
        self, kpr: KPR | None = None, *, preset: str | Path = "kpr", frame_rate: float | None = None
    ) -> None:
        import_host("supervision")
        self.kpr = KPR.from_pretrained() if kpr is None else kpr
        self.tracker = load_tracker(preset, frame_rate=frame_rate, calibration=self.kpr.calibration)

    def update(
        self,
        detections: sv.Detections,
        frame: np.ndarray,
        keypoints: sv.KeyPoints | None = None,
    ) -> sv.Detections:
        """Track one frame.

        Args:
            detections: the frame's people (``xyxy`` px; ``confidence`` in [0, 1] or None
                for 1).
            frame: `(H, W, 3)` BGR uint8 image (KPR crops it).
            keypoints: COCO-17 ``sv.KeyPoints`` with one row per detection, or None.

        Returns:
            A copy of ``detections`` with ``tracker_id`` `(N,)` int (ids from 1, ``-1``
            for a detection that is not output as a track this frame).

        Raises:
            InputError: keypoints not aligned with the detections, or not COCO-17.
        """
        boxes = np.asarray(detections.xyxy, np.float32).reshape(-1, 4)
        scores = None if detections.confidence is None else detections.confidence
        points = None
        if keypoints is not None:
            points = _coco_keypoints(keypoints, len(boxes))
        found = self.kpr.detections(frame, boxes, points, scores)
        output = detections[np.arange(len(detections))]  # a copy
        output.tracker_id = self.tracker.update(found, frame).astype(int)
        return output

    def reset(self) -> None:
        """Forget every track; ids restart at 1."""
        self.tracker.reset()


def _coco_keypoints(keypoints: sv.KeyPoints, count: int) -> np.ndarray:
    """``sv.KeyPoints`` -> `(N, 17, 3)` float32 ``(x, y, confidence)`` (1 when None).

    supervision 0.29 renamed ``confidence`` to ``keypoint_confidence``; both are read."""
    xy = np.asarray(keypoints.xy, np.float32)
    if xy.shape != (count, 17, 2):
        raise InputError(
            f"KPRSupervisionTracker.update: keypoints.xy must be ({count}, 17, 2) (COCO-17, one "
            f"row per detection), got {xy.shape}"
        )
    confidence = (
        keypoints.keypoint_confidence
        if hasattr(keypoints, "keypoint_confidence")
        else keypoints.confidence
    )
    conf = np.ones(xy.shape[:2], np.float32) if confidence is None else confidence
    return np.concatenate([xy, np.asarray(conf, np.float32)[..., None]], axis=2)
