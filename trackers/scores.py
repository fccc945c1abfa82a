"""Detection scores as the tracker reads them: the detector's, discounted by pose evidence.

Among the detections a detector scores low (yolo11n-pose below 0.4), the score hardly
tells people from clutter, and the pose model's keypoint confidences do: on the tuning
sequences (MOT17-02, MOT20-01, MOT16-04-first50, ground truth matched at IoU 0.5) the
area under the ROC curve of the score within the band 0.05-0.2 is 0.55-0.60, that of
the mean keypoint confidence 0.80-0.88. So the score thresholds of the tracker
(``high_score``, ``low_score``, ``new_track_score``) are applied to

    s' = s * min(1, c / reference) ** weight   for s < below,   s' = s otherwise,

``c`` the detection's mean keypoint confidence over the 17 COCO joints and
``reference`` that of a typical person (0.75: the median over yolo11n-pose detections
scoring >= 0.5 on the tuning sequences, 0.72-0.77 on each). A person posed as
confidently as that keeps its score; a box whose joints the pose model cannot find
loses it. At and above ``below`` (0.4 in the presets, chosen on the tuning sequences)
the detector's score is trusted as it is: there it tells people from clutter (precision
0.65-1.0 in every score band from 0.4 of every source of the benchmark), while the pose
of a person half hidden in a crowd is often not found. So a detector whose scores say
nothing (MOT20's public detections, flags read as 1) keeps every detection instead of
losing the occluded people to their pose. ``s' <= s``, so every detection the tracker
reads with ``s'`` is one it would read with ``s``. A frame whose detections carry no
keypoint at all (a box-only detector run without top-down pose) keeps the detector's
scores, with a warning, rather than losing every detection.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np

from kpr_track.detections import Detections

if TYPE_CHECKING:
    from .config import TrackerConfig

_LOG = logging.getLogger(__name__)


class PoseDiscount:
    """The scores of the module docstring, for one tracker.

    Args:
        weight: exponent >= 0; 0 returns the detector's scores unchanged.
        reference: mean keypoint confidence in (0, 1] at and above which a detection
            keeps its score.
        below: detector score >= 0 at and above which a detection keeps its score
            (inf: the discount reaches every detection).
    """

    def __init__(self, weight: float, reference: float, below: float = math.inf) -> None:
        self.weight, self.reference, self.below = weight, reference, below
        self._warned = False

    @classmethod
    def from_config(cls, config: TrackerConfig) -> PoseDiscount:
        """The discount of a :class:`~.config.TrackerConfig` (``pose_score_*``)."""
        return cls(config.pose_score_weight, config.pose_score_reference, config.pose_score_below)

    def __call__(self, detections: Detections) -> np.ndarray:
        """`(N,)` float32 scores in [0, 1], each at most the detector's, of the frame's
        `N` detections (scores and keypoint confidences in [0, 1])."""
        if self.weight == 0 or not len(detections):
            return detections.scores
        confidence = detections.keypoints[:, :, 2]
        if not (confidence > 0).any():
            if not self._warned:
                _LOG.warning(
                    "tracker setting pose_score_weight > 0 reads keypoints, but the "
                    "detections carry none (a box-only detector without top-down pose); "
                    "their scores are used as they are"
                )
                self._warned = True
            return detections.scores
        discount = np.minimum(confidence.mean(axis=1) / self.reference, 1.0) ** self.weight
        discount[detections.scores >= self.below] = 1.0
        return (detections.scores * discount).astype(np.float32)
