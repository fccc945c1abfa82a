"""One tracked person: Kalman state, lifecycle counters, observations and part galleries.

Appearance memory (DESIGN.md §4, issue 8): for each embedding slot
(``[foreground, part_1..part_K]``) a gallery of the last ``G`` embeddings in which that
slot was *seen* (visible in the detection); a slot hidden in a detection never
overwrites what was learnt of it. The tracker decides which detections may write
(confident, unoccluded, first-round matches); the association compares a detection
with the closest stored embedding of each slot (:func:`~kpr_track.trackers.costs.
appearance_slots`). The track's slot visibility is "the gallery holds an embedding".

Observation-centric re-update (ORU; Cao et al., "Observation-Centric SORT", CVPR 2023,
Sec. 3.2): when a track is matched again after ``k > 1`` frames without a detection,
the filter is rewound to its state at the last observation and re-run over the gap
with virtual observations linearly interpolated between the last and the new box, so
the velocity learnt while coasting does not carry the drift of the blind prediction.
"""

from __future__ import annotations

import enum

import numpy as np

from .camera_motion import warp_measurements, warp_states
from .kalman import KalmanFilter, xyxy_to_xyah


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
        embeddings: `(1+K, D)` its L2-normalised embeddings, or None (no memory yet).
        visibility: `(1+K,)` its slot visibility in [0, 1], or None.
        gallery_size: ``G``, embeddings kept per slot (>= 1).
        visibility_threshold: a detection slot counts as seen when its visibility is
            above this value, in [0, 1].
        history: observed boxes kept for the direction term (>= 2).

    Attributes:
        track_id: public id, ``None`` until the track is first confirmed.
        state: :class:`TrackState`.
        hits: number of detections matched so far (including the first).
        age: frames since birth.
        time_since_update: frames since the last match (0 when matched this frame).
        gallery: `(1+K, G, D)` float32, newest first per slot, or None before any
            embedding was stored.
        gallery_valid: `(1+K, G)` bool, where ``gallery`` holds an embedding.
        remembered_age: ``age`` when a slot was last stored, None before.
    """

    def __init__(
        self,
        kalman: KalmanFilter,
        box: np.ndarray,
        score: float,
        embeddings: np.ndarray | None,
        visibility: np.ndarray | None,
        *,
        gallery_size: int,
        visibility_threshold: float,
        history: int = 4,
    ) -> None:
        measurement = xyxy_to_xyah(box)
        self.mean, self.covariance = kalman.initiate(measurement)
        self.track_id: int | None = None
        self.state = TrackState.TENTATIVE
        self.hits = 1
        self.age = 0
        self.time_since_update = 0
        self.score = float(score)
        self.gallery_size = gallery_size
        self.visibility_threshold = visibility_threshold
        self.gallery: np.ndarray | None = None
        self.gallery_valid: np.ndarray | None = None
        self.remembered_age: int | None = None
        self._history = max(history, 2)
        self._observed: list[tuple[int, np.ndarray]] = [(0, measurement)]  # (age, xyah)
        self._anchor = (self.mean, self.covariance)  # state right after the last observation
        self._direction: tuple[tuple | None, np.ndarray] = (None, np.zeros(2))
        if embeddings is not None:
            self.remember(embeddings, visibility)

    @property
    def last_observation(self) -> np.ndarray:
        """`(4,)` ``(cx, cy, a, h)`` of the last matched detection."""
        return self._observed[-1][1]

    def direction(self, delta: int, min_motion: float) -> np.ndarray:
        """`(2,)` unit direction of the observed motion, zero when unknown (OC-SORT OCM).

        From the oldest kept observation at most ``delta`` frames before the last one
        (the previous observation when none is that recent) to the last observation.
        Zero when the track has one observation or moved less than ``min_motion`` box
        heights between them (a standing person's jitter has no direction). Kept until
        the next observation: association asks for it every frame.
        """
        key = (len(self._observed), self._observed[-1][0], delta, min_motion)
        if self._direction[0] != key:
            self._direction = (key, self._observed_direction(delta, min_motion))
        return self._direction[1]

    def _observed_direction(self, delta: int, min_motion: float) -> np.ndarray:
        last_age, last = self._observed[-1]
        earlier = [obs for age, obs in self._observed[:-1] if last_age - age <= delta]
        if not earlier and len(self._observed) > 1:
            earlier = [self._observed[-2][1]]
        if not earlier:
            return np.zeros(2)
        step = last[:2] - earlier[0][:2]
        length = float(np.linalg.norm(step))
        if length == 0 or length < min_motion * last[3]:
            return np.zeros(2)
        return step / length

    def follow_camera(self, warp: np.ndarray) -> None:
        """Map the kept observations and the filter state saved at the last observation
        through the `(2, 3)` camera warp (previous -> current frame px), as the tracker
        maps the predicted state (:func:`~.camera_motion.warp_states`), so the whole track
        lives in the current frame's pixels."""
        ages = [age for age, _ in self._observed]
        boxes = warp_measurements(warp, np.stack([box for _, box in self._observed]))
        self._observed = list(zip(ages, boxes, strict=True))
        means, covariances = warp_states(warp, self._anchor[0][None], self._anchor[1][None])
        self._anchor = (means[0], covariances[0])
        self._direction = (None, np.zeros(2))  # the cached direction turns with the warp

    def mark_predicted(self) -> None:
        """Count one more frame (call once per frame after the Kalman prediction)."""
        self.age += 1
        self.time_since_update += 1

    def update(
        self,
        kalman: KalmanFilter,
        box: np.ndarray,
        score: float,
        *,
        reupdate: bool = False,
    ) -> None:
        """Absorb a matched detection: Kalman correction (after ORU when ``reupdate`` and
        frames were missed) and counters. Appearance is stored by :meth:`remember`."""
        measurement = xyxy_to_xyah(box)
        gap = self.time_since_update
        if reupdate and gap > 1:
            self.mean, self.covariance = self._reupdate(kalman, measurement, gap)
        self.mean, self.covariance = kalman.update(self.mean, self.covariance, measurement, score)
        self._anchor = (self.mean, self.covariance)
        self._observed = [*self._observed[-(self._history - 1) :], (self.age, measurement)]
        self.hits += 1
        self.time_since_update = 0
        self.score = float(score)

    def _reupdate(
        self, kalman: KalmanFilter, measurement: np.ndarray, gap: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """ORU: rewind to the last observation, re-run the ``gap - 1`` missed frames on
        interpolated virtual observations, predict the current frame (not yet updated)."""
        mean, covariance = self._anchor
        start = self.last_observation
        for step in range(1, gap):
            mean, covariance = kalman.predict(mean, covariance)
            virtual = start + (measurement - start) * step / gap
            mean, covariance = kalman.update(mean, covariance, virtual, self.score)
        return kalman.predict(mean, covariance)

    def remember(self, embeddings: np.ndarray, visibility: np.ndarray) -> None:
        """Push the slots seen in a detection onto their galleries (oldest dropped); a
        detection with no slot seen (e.g. not embedded this frame) changes nothing.

        Args:
            embeddings: `(1+K, D)` L2-normalised.
            visibility: `(1+K,)` in [0, 1]; slots above ``visibility_threshold`` count.
        """
        new = np.asarray(embeddings, np.float32)
        seen = np.asarray(visibility) > self.visibility_threshold  # (1+K,)
        if not seen.any():
            return
        self.remembered_age = self.age
        if self.gallery is None:
            self.gallery = np.zeros((len(new), self.gallery_size, new.shape[-1]), np.float32)
            self.gallery_valid = np.zeros((len(new), self.gallery_size), bool)
        self.gallery[seen] = np.roll(self.gallery[seen], 1, axis=1)
        self.gallery_valid[seen] = np.roll(self.gallery_valid[seen], 1, axis=1)
        self.gallery[seen, 0] = new[seen]
        self.gallery_valid[seen, 0] = True
