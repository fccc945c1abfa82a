"""Keypoint-based occlusion score of a person sample (Occluded-PoseTrack-ReID, DESIGN.md §5).

    occlusion = sum of the confidences of other people's keypoints inside the box
                / sum of the confidences of the person's own keypoints,

counting only keypoints with confidence above ``min_confidence`` (KPR, ECCV 2024,
Sec. 4.1: queries are the most occluded samples of each identity).
"""

from __future__ import annotations

import numpy as np


def inside_box(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Which points lie inside a box.

    Args:
        points: `(..., 2+)` float, ``x, y`` in pixels first.
        box: `(4,)` float xyxy in the same pixels.

    Returns:
        `(...)` bool.
    """
    x, y = points[..., 0], points[..., 1]
    return (x >= box[0]) & (x < box[2]) & (y >= box[1]) & (y < box[3])


def negative_keypoints(
    box: np.ndarray, others: np.ndarray, min_confidence: float = 0.3
) -> np.ndarray:
    """Other people's keypoints that fall inside ``box`` (the negative prompt).

    Args:
        box: `(4,)` xyxy px of the target.
        others: `(M, 17, 3)` keypoints ``(x px, y px, conf)`` of the other people.
        min_confidence: keypoints at or below it are dropped.

    Returns:
        `(M', 17, 3)` float32: the people with at least one such keypoint, their other
        keypoints' confidences set to 0.
    """
    others = np.asarray(others, np.float32).reshape(-1, 17, 3)
    keep = inside_box(others, box) & (others[..., 2] > min_confidence)  # (M, 17)
    people = keep.any(axis=1)
    result = others[people].copy()
    result[..., 2] *= keep[people]
    return result


def occlusion_score(
    keypoints: np.ndarray, negatives: np.ndarray, min_confidence: float = 0.3
) -> float:
    """Negative over target keypoint visibility (DESIGN.md §5).

    Args:
        keypoints: `(17, 3)` the target's keypoints ``(x, y, conf)``.
        negatives: `(M, 17, 3)` other people's keypoints inside the target box
            (:func:`negative_keypoints`).
        min_confidence: keypoints at or below it count as invisible.

    Returns:
        The score, >= 0; ``inf`` when the target has no visible keypoint but others do,
        0 when neither has.
    """
    own = float(np.where(keypoints[:, 2] > min_confidence, keypoints[:, 2], 0.0).sum())
    conf = np.asarray(negatives, np.float32).reshape(-1, 3)[:, 2]
    neg = float(np.where(conf > min_confidence, conf, 0.0).sum())
    if own == 0.0:
        return float("inf") if neg > 0.0 else 0.0
    return neg / own
