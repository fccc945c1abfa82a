"""COCO-17 keypoint layout and the body-part groupings used by KPR.

Shape letters used across kpr-track:
    N detections, T tracks, J = 17 keypoints, K parts, D embedding dimension.

PoseTrack21 stores ``head_bottom`` / ``head_top`` at indices 1-2 where COCO has the
eyes; both fall in the "head" part, so COCO-17 and PoseTrack21 keypoints are
interchangeable for prompts (DESIGN.md §3).
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from .errors import ConfigError

NUM_KEYPOINTS = 17

COCO_KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

# 0-based limb pairs, used for drawing and for PoseTrack21 ``categories.skeleton`` (1-based there).
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip

# Part name -> COCO-17 keypoint indices (DESIGN.md §3, KPR paper Sec. 3).
PART_GROUPS = MappingProxyType(
    {
        8: (
            ("head", (0, 1, 2, 3, 4)),
            ("left_arm", (5, 7, 9)),
            ("right_arm", (6, 8, 10)),
            ("torso", (5, 6, 11, 12)),
            ("left_leg", (13, 15)),
            ("right_leg", (14, 16)),
            ("left_foot", (15,)),
            ("right_foot", (16,)),
        ),
        5: (
            ("head", (0, 1, 2, 3, 4)),
            ("arms", (5, 7, 9, 6, 8, 10)),
            ("torso", (5, 6, 11, 12)),
            ("legs", (13, 15, 14, 16)),
            ("feet", (15, 16)),
        ),
    }
)


def part_names(num_parts: int) -> tuple[str, ...]:
    """Names of the ``K`` parts, in channel order.

    Raises:
        ConfigError: if ``num_parts`` is not a supported K (5 or 8).
    """
    return tuple(name for name, _ in _groups(num_parts))


def part_assignment(num_parts: int) -> np.ndarray:
    """Keypoint-to-part membership matrix.

    Returns:
        `(K, 17)` bool array; entry ``[k, j]`` is True when keypoint ``j`` belongs to
        part ``k``. A keypoint may belong to several parts (a shoulder is arm and torso).

    Raises:
        ConfigError: if ``num_parts`` is not a supported K (5 or 8).
    """
    groups = _groups(num_parts)
    membership = np.zeros((len(groups), NUM_KEYPOINTS), dtype=bool)
    for k, (_, joints) in enumerate(groups):
        membership[k, list(joints)] = True
    return membership


def _groups(num_parts: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    if num_parts not in PART_GROUPS:
        raise ConfigError(
            f"num_parts={num_parts!r} is not supported; expected one of {sorted(PART_GROUPS)}"
        )
    return PART_GROUPS[num_parts]
