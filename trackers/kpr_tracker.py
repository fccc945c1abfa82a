"""KPR tracker: ByteTrack's association cascade with part-visibility appearance cues.

Per frame (Zhang et al., ByteTrack, ECCV 2022, Alg. 1, with the appearance fusion of
DESIGN.md §4):

a. predict every track with the Kalman filter;
b. confirmed and lost tracks vs high-score detections on the fused cost
   (appearance + IoU, Mahalanobis / IoU / appearance gates);
c. still unmatched *tracked* tracks vs low-score detections on IoU only;
d. tentative tracks vs the remaining high-score detections on the fused cost;
e. unmatched detections scoring at least ``new_track_score`` start tentative tracks;
f. unmatched tentative tracks die, unmatched confirmed tracks become lost and are
   dropped after ``max_age`` frames without a match; a tentative track is confirmed
   (and gets its id) after ``min_hits`` consecutive matches, or at once in the first
   frame.

With ``appearance_weight = 0`` or detections without embeddings it is pure motion.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kpr_track.detections import Detections
from kpr_track.errors import InputError

from .assignment import linear_assignment
from .base import BaseTracker, register_tracker
from .config import TrackerConfig
from .costs import appearance_cost, fuse_costs, iou_cost, mahalanobis_gate
from .kalman import KalmanFilter
from .track import Track, TrackState

_D = TrackerConfig  # defaults live in one place: the TrackerConfig fields


@register_tracker("kpr")
class KPRTracker(BaseTracker):
    """ByteTrack-style tracker fusing KPR part-visibility distances with motion.

    Every argument is described, with its unit, in :class:`TrackerConfig`.

    Raises:
        ConfigError: when an argument is out of range.
    """

    config_class = TrackerConfig

    def __init__(
        self,
        *,
        high_score: float = _D.high_score,
        low_score: float = _D.low_score,
        new_track_score: float = _D.new_track_score,
        match_cost: float = _D.match_cost,
        low_match_cost: float = _D.low_match_cost,
        unconfirmed_match_cost: float = _D.unconfirmed_match_cost,
        min_iou: float = _D.min_iou,
        gate_threshold: float = _D.gate_threshold,
        appearance_weight: float = _D.appearance_weight,
        max_appearance_distance: float = _D.max_appearance_distance,
        memory_momentum: float = _D.memory_momentum,
        visibility_threshold: float = _D.visibility_threshold,
        max_age: int = _D.max_age,
        min_hits: int = _D.min_hits,
        score_scaled_noise: bool = _D.score_scaled_noise,
    ) -> None:
        arguments = dict(locals())
        super().__init__()
        self.config = TrackerConfig(**{f.name: arguments[f.name] for f in dataclasses.fields(_D)})
        self.kalman = KalmanFilter(score_scaled_noise=self.config.score_scaled_noise)
        self._tracks: list[Track] = []
        self._frame = 0

    @property
    def tracks(self) -> tuple[Track, ...]:
        """Every live track (tentative, confirmed and lost), for inspection."""
        return tuple(self._tracks)

    def reset(self) -> None:
        """Forget every track, restart ids at 1 and the frame count at 0."""
        super().reset()
        self._tracks = []
        self._frame = 0

    def update(self, detections: Detections) -> np.ndarray:
        """Associate one frame of detections; see :meth:`BaseTracker.update`.

        Raises:
            InputError: if ``detections`` is not a :class:`Detections`, or its
                embeddings do not have the shape of the tracks' memories.
        """
        if not isinstance(detections, Detections):
            raise InputError(
                f"KPRTracker.update: expected Detections, got {type(detections).__name__}"
            )
        cfg = self.config
        self._frame += 1
        self._predict()  # (a)
        scores = detections.scores
        high = np.flatnonzero(scores >= cfg.high_score)
        low = np.flatnonzero((scores >= cfg.low_score) & (scores < cfg.high_score))
        tracks = self._tracks
        state = np.array([t.state for t in tracks], dtype=object)
        tentative = np.flatnonzero(state == TrackState.TENTATIVE)
        established = np.flatnonzero(state != TrackState.TENTATIVE)

        first, rest_tracks, rest_high = self._associate(  # (b)
            established, high, detections, cfg.match_cost, fused=True
        )
        still_tracked = rest_tracks[state[rest_tracks] == TrackState.CONFIRMED]
        second, _, _ = self._associate(  # (c)
            still_tracked, low, detections, cfg.low_match_cost, fused=False
        )
        third, _, _ = self._associate(  # (d)
            tentative, rest_high, detections, cfg.unconfirmed_match_cost, fused=True
        )
        matches = np.concatenate([first, second, third])
        self._absorb(matches, detections)
        ids = np.full(len(detections), -1, np.int64)
        ids[matches[:, 1]] = [tracks[t].track_id or -1 for t in matches[:, 0]]
        self._tracks = [t for t in tracks if self._apply_lifecycle(t)]  # (f)
        unmatched = np.setdiff1d(np.arange(len(detections)), matches[:, 1])
        for d in unmatched[scores[unmatched] >= cfg.new_track_score]:  # (e)
            track = self._birth(detections, d)
            ids[d] = track.track_id or -1
        return ids

    def _predict(self) -> None:
        if not self._tracks:
            return
        means = np.stack([t.mean for t in self._tracks])
        covariances = np.stack([t.covariance for t in self._tracks])
        lost = np.array([t.state == TrackState.LOST for t in self._tracks])
        means[lost, 7] = 0.0  # lost tracks coast without changing height (ByteTrack)
        means, covariances = self.kalman.predict(means, covariances)
        for track, mean, covariance in zip(self._tracks, means, covariances, strict=True):
            track.mean, track.covariance = mean, covariance
            track.mark_predicted()

    def _associate(
        self,
        track_idx: np.ndarray,
        det_idx: np.ndarray,
        detections: Detections,
        max_cost: float,
        fused: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Match tracks ``track_idx`` to detections ``det_idx`` (global indices).

        Returns ``(matches (M, 2) [track, detection], unmatched tracks, unmatched
        detections)``, all in global indices.
        """
        tracks = [self._tracks[i] for i in track_idx]
        boxes = detections.boxes[det_idx]
        track_boxes = np.array([t.box for t in tracks]).reshape(-1, 4)
        cost = iou_cost(track_boxes, boxes)
        if fused and len(tracks) and len(det_idx):
            cfg = self.config
            means = np.stack([t.mean for t in tracks])
            covariances = np.stack([t.covariance for t in tracks])
            gate = mahalanobis_gate(self.kalman, means, covariances, boxes, cfg.gate_threshold)
            appearance, comparable = self._appearance(tracks, detections, det_idx)
            cost = fuse_costs(
                cost,
                appearance=appearance,
                comparable=comparable,
                gate=gate,
                appearance_weight=cfg.appearance_weight,
                min_iou=cfg.min_iou,
                max_appearance_distance=cfg.max_appearance_distance,
            )
        pairs, rows, cols = linear_assignment(cost, max_cost)
        matches = np.stack([track_idx[pairs[:, 0]], det_idx[pairs[:, 1]]], axis=1)
        return matches.reshape(-1, 2).astype(np.int64), track_idx[rows], det_idx[cols]

    def _uses_appearance(self, detections: Detections) -> bool:
        return self.config.appearance_weight > 0 and detections.embeddings is not None

    def _appearance(
        self, tracks: list[Track], detections: Detections, det_idx: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Appearance cost and comparable mask, or ``(None, None)`` for motion only."""
        if not self._uses_appearance(detections):
            return None, None
        det_emb = detections.embeddings[det_idx]
        det_vis = (detections.visibility[det_idx] > self.config.visibility_threshold).astype(
            np.float32
        )
        # Tracks born without embeddings have no memory: all slots unseen, never comparable.
        track_emb = np.zeros((len(tracks), *det_emb.shape[1:]), np.float32)
        track_vis = np.zeros((len(tracks), det_emb.shape[1]), np.float32)
        for row, track in enumerate(tracks):
            if track.embeddings is not None:
                track_emb[row], track_vis[row] = track.embeddings, track.visibility
        return appearance_cost(track_emb, track_vis, det_emb, det_vis)

    def _absorb(self, matches: np.ndarray, detections: Detections) -> None:
        """Update matched tracks and promote them (tentative -> confirmed, lost -> confirmed)."""
        for t, d in matches:
            track = self._tracks[t]
            track.update(self.kalman, *self._observation(detections, d))
            if track.state == TrackState.LOST:
                track.state = TrackState.CONFIRMED
            elif track.state == TrackState.TENTATIVE and track.hits >= self.config.min_hits:
                self._confirm(track)

    def _observation(self, detections: Detections, d: int) -> tuple:
        """Detection ``d`` as ``(box, score, keypoints, embeddings | None, visibility | None)``,
        the arguments :class:`Track` takes; no appearance in motion-only mode."""
        appearance = self._uses_appearance(detections)
        return (
            detections.boxes[d],
            float(detections.scores[d]),
            detections.keypoints[d],
            detections.embeddings[d] if appearance else None,
            detections.visibility[d] if appearance else None,
        )

    def _apply_lifecycle(self, track: Track) -> bool:
        """Apply step (f) to one track after matching; False when it must be dropped."""
        if track.time_since_update == 0:
            return True
        if track.state == TrackState.TENTATIVE:
            return False
        track.state = TrackState.LOST
        return track.time_since_update <= self.config.max_age

    def _birth(self, detections: Detections, d: int) -> Track:
        track = Track(
            self.kalman,
            *self._observation(detections, d),
            momentum=self.config.memory_momentum,
            visibility_threshold=self.config.visibility_threshold,
        )
        if self._frame == 1 or self.config.min_hits <= 1:
            self._confirm(track)
        self._tracks.append(track)
        return track

    def _confirm(self, track: Track) -> None:
        track.state = TrackState.CONFIRMED
        track.track_id = self._new_id()
