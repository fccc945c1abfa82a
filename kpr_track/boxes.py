"""Box geometry shared by every stage: the one intersection over union of xyxy boxes.

(Evaluation keeps TrackEval's own ltwh IoU, :func:`kpr_track.evaluation.filters.box_iou`,
whose rounding matches the official scores.)
"""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of broadcast xyxy boxes.

    Args:
        a: `(..., 4)` float xyxy px.
        b: `(..., 4)` float xyxy px, broadcastable with ``a`` (e.g. ``a[:, None]`` and
            ``b[None]`` for every pair).

    Returns:
        `(...)` float IoU in [0, 1] (the inputs' float type); a pair whose union has
        zero area (degenerate boxes) has IoU 0.
    """
    top_left = np.maximum(a[..., :2], b[..., :2])
    bottom_right = np.minimum(a[..., 2:], b[..., 2:])
    intersection = np.clip(bottom_right - top_left, 0.0, None).prod(axis=-1)
    area_a = np.clip(a[..., 2:] - a[..., :2], 0.0, None).prod(axis=-1)
    area_b = np.clip(b[..., 2:] - b[..., :2], 0.0, None).prod(axis=-1)
    union = area_a + area_b - intersection
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)
