"""One tracked person: Kalman state, lifecycle counters and part appearance memory.

The appearance memory follows DESIGN.md §4: for each embedding slot
(``[foreground, part_1..part_K]``) keep what was last *seen*: an exponential moving
average updated only with slots visible in the new detection, L2-renormalised after
each update; the track's slot visibility is the OR over every detection it matched.
A part hidden in the current frame therefore never overwrites what was learnt of it.
"""

from __future__ import annotations

import enum

import numpy as np

from .kalman import KalmanFilter, xyah_to_xyxy, xyxy_to_xyah


class TrackState(enum.Enum):
    """Lifecycle of a track."""

    TENTATIVE = "tentative"  # born recently, not yet output
    CONFIRMED = "confirmed"  # matched in the last frame and output
    LOST = "lost"  # confirmed before, unmatched now; coasting on its prediction


class Track:
    """A person followed over frames.

    Args:
        kalman: the shared filter that owns the motion model.
        box: `(4,)` xyxy px of the first detection.
        score: its detector confidence in [0, 1].
        keypoints: `(17, 3)` its keypoints ``(x px, y px, conf)``.
        embeddings: `(1+K, D)` its L2-normalised embeddings, or None (motion only).
        visibility: `(1+K,)` its slot visibility in [0, 1], or None.
        momentum: EMA weight of the old memory, in [0, 1).
        visibility_threshold: a detection slot counts as seen when its visibility is
            above this value, in [0, 1].

    Attributes:
        track_id: public id, ``None`` until the track is first confirmed.
        state: :class:`TrackState`.
        hits: number of detections matched so far (including the first).
        age: frames since birth.
        time_since_update: frames since the last match (0 when matched this frame).
        embeddings: `(1+K, D)` float32 memory, or None.
        visibility: `(1+K,)` bool, slots ever seen; None without memory.
    """

    def __init__(
        self,
        kalman: KalmanFilter,
        box: np.ndarray,
        score: float,
        keypoints: np.ndarray,
        embeddings: np.ndarray | None,
        visibility: np.ndarray | None,
        momentum: float,
        visibility_threshold: float,
    ) -> None:
        self.mean, self.covariance = kalman.initiate(xyxy_to_xyah(box))
        self.track_id: int | None = None
        self.state = TrackState.TENTATIVE
        self.hits = 1
        self.age = 0
        self.time_since_update = 0
        self.score = float(score)
        self.keypoints = np.asarray(keypoints, np.float32)
        self.momentum = momentum
        self.visibility_threshold = visibility_threshold
        self.embeddings: np.ndarray | None = None
        self.visibility: np.ndarray | None = None
        if embeddings is not None:
            self.embeddings = np.zeros_like(np.asarray(embeddings, np.float32))
            self.visibility = np.zeros(len(self.embeddings), bool)
            self._update_memory(embeddings, visibility)

    @property
    def box(self) -> np.ndarray:
        """`(4,)` float64 xyxy px of the current state estimate."""
        return xyah_to_xyxy(self.mean[:4])

    def mark_predicted(self) -> None:
        """Count one more frame (call once per frame after the Kalman prediction)."""
        self.age += 1
        self.time_since_update += 1

    def update(
        self,
        kalman: KalmanFilter,
        box: np.ndarray,
        score: float,
        keypoints: np.ndarray,
        embeddings: np.ndarray | None,
        visibility: np.ndarray | None,
    ) -> None:
        """Absorb a matched detection: Kalman correction, counters, appearance memory."""
        self.mean, self.covariance = kalman.update(
            self.mean, self.covariance, xyxy_to_xyah(box), score
        )
        self.hits += 1
        self.time_since_update = 0
        self.score = float(score)
        self.keypoints = np.asarray(keypoints, np.float32)
        if self.embeddings is not None and embeddings is not None:
            self._update_memory(embeddings, visibility)

    def _update_memory(self, embeddings: np.ndarray, visibility: np.ndarray) -> None:
        seen = np.asarray(visibility) > self.visibility_threshold  # (1+K,)
        new = np.asarray(embeddings, np.float32)
        blend = seen & self.visibility  # seen before: EMA; first sighting: copy
        first = seen & ~self.visibility
        self.embeddings[blend] = (
            self.momentum * self.embeddings[blend] + (1.0 - self.momentum) * new[blend]
        )
        self.embeddings[first] = new[first]
        norms = np.linalg.norm(self.embeddings[seen], axis=-1, keepdims=True)
        self.embeddings[seen] /= np.maximum(norms, 1e-12)
        self.visibility |= seen
