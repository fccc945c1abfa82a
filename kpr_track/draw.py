"""Annotated frames: boxes, track ids, skeletons and the visible KPR parts."""

from __future__ import annotations

import cv2
import numpy as np

from .detections import Detections
from .keypoints import COCO_SKELETON

MIN_KEYPOINT_CONFIDENCE = 0.3


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per track id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def draw_tracks(frame: np.ndarray, detections: Detections, track_ids: np.ndarray) -> np.ndarray:
    """Draw tracked detections on a copy of ``frame``.

    For each detection with ``track_id >= 0``: its box and id, its skeleton (keypoints
    with confidence > 0.3) and, when the detections carry part visibility (a part model:
    ``visibility`` `(N, 1+K)` with K >= 1), a column of K small squares right of the box,
    filled when the part is visible; a global model (K = 0) draws none.

    Args:
        frame: `(H, W, 3)` BGR uint8.
        detections: the frame's detections (optionally with ``visibility`` `(N, 1+K)`).
        track_ids: `(N,)` int, -1 for untracked detections (not drawn).

    Returns:
        `(H, W, 3)` BGR uint8 annotated copy.
    """
    canvas = frame.copy()
    for i in np.flatnonzero(track_ids >= 0):
        color = track_color(int(track_ids[i]))
        x1, y1, x2, y2 = (int(round(v)) for v in detections.boxes[i])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 2)
        cv2.putText(
            canvas,
            str(int(track_ids[i])),
            (x1, max(y1 - 10, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            color,
            2,
            cv2.LINE_AA,
        )
        keypoints = detections.keypoints[i]
        confident = keypoints[:, 2] > MIN_KEYPOINT_CONFIDENCE
        for a, b in COCO_SKELETON:
            if confident[a] and confident[b]:
                cv2.line(canvas, _point(keypoints[a]), _point(keypoints[b]), color, 1, cv2.LINE_AA)
        for j in np.flatnonzero(confident):
            cv2.circle(canvas, _point(keypoints[j]), 2, color, -1, cv2.LINE_AA)
        if detections.visibility is not None:
            _draw_part_visibility(canvas, detections.visibility[i, 1:], (x2 + 2, y1), color)
    return canvas


def _draw_part_visibility(
    canvas: np.ndarray, visible: np.ndarray, origin: tuple[int, int], color: tuple[int, int, int]
) -> None:
    """A column of K 4 px squares right of the box: filled = part visible."""
    x, y = origin
    for k, v in enumerate(visible):
        top = y + 5 * k
        cv2.rectangle(canvas, (x, top), (x + 3, top + 3), color, -1 if v > 0.5 else 1)


def _point(keypoint: np.ndarray) -> tuple[int, int]:
    return int(round(float(keypoint[0]))), int(round(float(keypoint[1])))
