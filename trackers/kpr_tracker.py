"""KPR tracker: ByteTrack's association cascade with part-visibility appearance cues.

Per frame (Zhang et al., ByteTrack, ECCV 2022, Alg. 1, with the fusion of DESIGN.md §4,
the observation-centric terms of OC-SORT, Cao et al. CVPR 2023, and BoT-SORT's camera
motion compensation):

a. predict every track with the Kalman filter (noise scaled to the frame rate), then
   map the whole track state through the camera warp (``camera_motion``): predicted
   mean and covariance, kept observations and the state at the last observation;
b. confirmed and lost tracks vs high-score detections on the fused cost
   (:func:`~.costs.fuse_costs`: ``1 - IoU``, calibrated appearance evidence, OC-SORT
   direction consistency; Mahalanobis / IoU gates);
c. still unmatched *tracked* tracks, then (``lost_low_match_cost`` > 0; ByteTrack: none)
   lost tracks within their reach, vs low-score detections on IoU only;
d. tentative tracks vs the remaining high-score detections on the fused cost; then
   (``isolated_match_iou`` > 0) each confirmed or lost track and detection left over that
   overlap only each other (:func:`~.assignment.isolated_pairs`), whatever the score band
   or gates;
e. unmatched detections scoring at least ``new_track_score`` start tentative tracks
   (the scores of (b) to (e): :attr:`KPRTracker.tracking_scores`, the detector's,
   discounted by pose evidence when ``pose_score_weight > 0``; :mod:`~.scores`);
f. unmatched tentative tracks die, unmatched confirmed tracks become lost and are
   dropped after ``max_age_s`` seconds without a match; a tentative track is confirmed
   (and gets its id) after ``min_hits`` consecutive matches, or at once in the first
   frame.

Durations are in seconds, made frames once with the sequence's frame rate
(:func:`~.config.per_frame`). In rounds (b) and (c) a lost track meets only detections its
last observed centre could reach at ``lost_max_speed`` (:func:`~.costs.reach_gate`),
however wide its Kalman gate has grown. A re-found lost track is re-updated over its gap
(OC-SORT ORU). Appearance memory is written by the fused-cost matches of (b) and (d) and
by births only, from detections overlapping no other one by more than
``memory_max_overlap`` IoU: low-score detections are usually occluded crops.

Embeddings on demand (:mod:`~.on_demand`): the pipeline asks :meth:`KPRTracker.
appearance_targets` which detections to embed; clear continuations cost no crop.

Appearance needs embeddings, ``appearance_weight > 0`` and the appearance model's
calibration; with embeddings but no calibration the tracker warns once and uses motion.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import numpy as np

from kpr_track.detections import Detections
from kpr_track.errors import InputError

from .assignment import isolated_pairs, linear_assignment
from .base import BaseTracker, register_tracker
from .camera_motion import CameraMotion, camera_moves, frame_warp, warp_states
from .config import TrackerConfig, per_frame
from .costs import (
    Pairs,
    direction_cost,
    fuse_costs,
    iou_cost,
    mahalanobis_gate,
    memory_evidence,
    reach_gate,
    unoccluded,
)
from .kalman import KalmanFilter, xyah_to_xyxy
from .on_demand import clear_continuations, memory_fresh
from .scores import PoseDiscount
from .track import Track, TrackState

if TYPE_CHECKING:  # the reid package imports torch; the tracker only reads the object
    from kpr_track.reid.calibration import DistanceCalibration

_LOG = logging.getLogger(__name__)

_D = TrackerConfig  # defaults live in one place: the TrackerConfig fields


@register_tracker("kpr")
class KPRTracker(BaseTracker):
    """ByteTrack-style tracker fusing calibrated KPR appearance evidence with motion.

    Every setting is described, with its unit, in :class:`TrackerConfig`. Two more
    arguments describe the input rather than the tracker:

    Args:
        frame_rate: frames per second of the sequence (seqinfo.ini ``frameRate``, the
            video's metadata); None assumes ``reference_fps``. Scales the Kalman noise.
        calibration: the appearance model's distance calibration (its ``calibration``
            attribute); None runs motion-only even when detections carry embeddings.

    Raises:
        ConfigError: when a setting is out of range or ``frame_rate`` is not > 0.
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
        lost_low_match_cost: float = _D.lost_low_match_cost,
        isolated_match_iou: float = _D.isolated_match_iou,
        pose_score_weight: float = _D.pose_score_weight,
        pose_score_reference: float = _D.pose_score_reference,
        pose_score_below: float = _D.pose_score_below,
        unconfirmed_match_cost: float = _D.unconfirmed_match_cost,
        min_iou: float = _D.min_iou,
        gate_threshold: float = _D.gate_threshold,
        appearance_weight: float = _D.appearance_weight,
        full_weight_parts: int = _D.full_weight_parts,
        gallery_size: int = _D.gallery_size,
        memory_max_overlap: float = _D.memory_max_overlap,
        visibility_threshold: float = _D.visibility_threshold,
        max_age_s: float = _D.max_age_s,
        min_hits: int = _D.min_hits,
        lost_max_speed: float = _D.lost_max_speed,
        score_scaled_noise: bool = _D.score_scaled_noise,
        reference_fps: float = _D.reference_fps,
        noise_exponent: float = _D.noise_exponent,
        observation_reupdate: bool = _D.observation_reupdate,
        direction_weight: float = _D.direction_weight,
        direction_delta_s: float = _D.direction_delta_s,
        direction_min_motion: float = _D.direction_min_motion,
        camera_motion: bool = _D.camera_motion,
        camera_min_shift: float = _D.camera_min_shift,
        embed_refresh_s: float = _D.embed_refresh_s,
        embed_margin: float = _D.embed_margin,
        embed_min_iou: float = _D.embed_min_iou,
        frame_rate: float | None = None,
        calibration: DistanceCalibration | None = None,
    ) -> None:
        arguments = dict(locals())
        super().__init__()
        self.config = TrackerConfig(**{f.name: arguments[f.name] for f in dataclasses.fields(_D)})
        self.frame_rate = self.config.reference_fps if frame_rate is None else float(frame_rate)
        self.frames = per_frame(self.config, self.frame_rate)  # the settings in frames
        self.calibration = calibration
        self.kalman = KalmanFilter(
            score_scaled_noise=self.config.score_scaled_noise,
            time_step=self.config.reference_fps / self.frame_rate,
            noise_exponent=self.config.noise_exponent,
        )
        self._camera = CameraMotion() if self.config.camera_motion else None
        self.tracking_scores = PoseDiscount.from_config(self.config)  # what thresholds read
        self._warned = False
        self._tracks: list[Track] = []
        self._frame = 0

    @property
    def tracks(self) -> tuple[Track, ...]:
        """Every live track (tentative, confirmed and lost), for inspection."""
        return tuple(self._tracks)

    @property
    def appearance_min_score(self) -> float:
        """``high_score``: lower-scoring detections only meet round (c), on IoU alone, and
        are never remembered or born from (``new_track_score >= high_score``)."""
        return self.config.high_score

    @property
    def uses_keypoints(self) -> bool:
        """True when the score thresholds read pose evidence (``pose_score_weight > 0``)."""
        return self.config.pose_score_weight > 0

    def appearance_targets(self, detections: Detections) -> np.ndarray:
        """`(N,)` bool: the detections of the coming :meth:`update` whose embedding it reads:
        those whose :attr:`tracking_scores` reach ``high_score``, less, when
        ``embed_refresh_s > 0``, the clear continuations of tracks with fresh memory
        (:mod:`~.on_demand`, on the predicted boxes before camera motion, in the gates;
        lost tracks are not candidates)."""
        cfg = self.config
        wanted = self.tracking_scores(detections) >= self.appearance_min_score
        refresh = self.frames.embed_refresh
        if refresh == 0 or not self._tracks or not wanted.any():
            return wanted
        means, covariances, lost = self._predicted()
        boxes = detections.boxes
        gate = mahalanobis_gate(self.kalman, means, covariances, boxes, cfg.gate_threshold)
        overlap = np.where(gate, 1.0 - iou_cost(xyah_to_xyxy(means[:, :4]), boxes), 0.0)
        overlap[:, ~wanted] = 0.0
        # Lost tracks are not candidates (on_demand), so their reach gate is not needed.
        overlap[lost] = 0.0
        fresh = np.array([memory_fresh(t, refresh) for t in self._tracks])
        skip = clear_continuations(overlap, fresh, cfg.embed_min_iou, cfg.embed_margin)
        return wanted & ~skip

    def reset(self) -> None:
        """Forget every track, restart ids at 1, the frame count at 0 and the camera."""
        super().reset()
        self._tracks = []
        self._frame = 0
        if self._camera is not None:
            self._camera.reset()

    def update(
        self,
        detections: Detections,
        frame: np.ndarray | None = None,
        *,
        camera_warp: np.ndarray | None = None,
    ) -> np.ndarray:
        """Associate one frame of detections; see :meth:`BaseTracker.update`.

        Args:
            detections: the frame's detections.
            frame: `(H, W, 3)` BGR uint8 image, read only for camera-motion estimation
                (``camera_motion``); None: no compensation unless ``camera_warp``.
            camera_warp: `(2, 3)` affine previous -> current frame px, precomputed with
                :class:`~.camera_motion.CameraMotion` (used instead of ``frame``).

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
        self._predict(frame_warp(self._camera, frame, camera_warp))  # (a)
        scores = self.tracking_scores(detections)
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
        second, _, rest_low = self._associate(  # (c)
            still_tracked, low, detections, cfg.low_match_cost, fused=False
        )
        if cfg.lost_low_match_cost > 0:  # (c), lost tracks
            lost = rest_tracks[state[rest_tracks] == TrackState.LOST]
            found = self._associate(lost, rest_low, detections, cfg.lost_low_match_cost, False)
            second = np.concatenate([second, found[0]])
        third, _, _ = self._associate(  # (d)
            tentative, rest_high, detections, cfg.unconfirmed_match_cost, fused=True
        )
        matches = np.concatenate([first, second, third])
        if cfg.isolated_match_iou > 0:  # (d), isolated leftovers, remembered as round (c)
            isolated = self._isolated(established, scores >= cfg.low_score, detections, matches)
            second = np.concatenate([second, isolated])
            matches = np.concatenate([matches, isolated])
        clear = unoccluded(detections.boxes, cfg.memory_max_overlap)
        self._absorb(first, detections, clear)
        self._absorb(second, detections, np.zeros(len(detections), bool))  # never remembered
        self._absorb(third, detections, clear)
        ids = np.full(len(detections), -1, np.int64)
        ids[matches[:, 1]] = [tracks[t].track_id or -1 for t in matches[:, 0]]
        self._tracks = [t for t in tracks if self._apply_lifecycle(t)]  # (f)
        unmatched = np.setdiff1d(np.arange(len(detections)), matches[:, 1])
        for d in unmatched[scores[unmatched] >= cfg.new_track_score]:  # (e)
            track = self._birth(detections, d, clear[d])
            ids[d] = track.track_id or -1
        return ids

    def _predicted(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The Kalman prediction of every track, stored nowhere: `(T, 8)` means, `(T, 8,
        8)` covariances and `(T,)` bool lost."""
        means = np.stack([t.mean for t in self._tracks])
        covariances = np.stack([t.covariance for t in self._tracks])
        lost = np.array([t.state == TrackState.LOST for t in self._tracks])
        means[lost, 7] = 0.0  # lost tracks coast without changing height (ByteTrack)
        return *self.kalman.predict(means, covariances), lost

    def _predict(self, warp: np.ndarray | None) -> None:
        if not self._tracks:
            return
        means, covariances, _ = self._predicted()
        moves = warp is not None and camera_moves(warp, means[:, :2], self.config.camera_min_shift)
        if moves:
            means, covariances = warp_states(warp, means, covariances)
        for track, mean, covariance in zip(self._tracks, means, covariances, strict=True):
            track.mean, track.covariance = mean, covariance
            if moves:
                track.follow_camera(warp)
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
        if fused:
            cost = self.association_cost(track_idx, det_idx, detections)
        else:
            tracks, boxes = [self._tracks[i] for i in track_idx], detections.boxes[det_idx]
            means = np.array([t.mean for t in tracks]).reshape(-1, 8)
            cost = iou_cost(xyah_to_xyxy(means[:, :4]), boxes)
            cost[~self._reach(tracks, boxes)] = np.inf  # predicted boxes; lost: their reach
        pairs, rows, cols = linear_assignment(cost, max_cost)
        matches = np.stack([track_idx[pairs[:, 0]], det_idx[pairs[:, 1]]], axis=1)
        return matches.reshape(-1, 2).astype(np.int64), track_idx[rows], det_idx[cols]

    def _isolated(self, established, allowed, detections: Detections, matches) -> np.ndarray:
        """`(M, 2)` pairs of ``established`` tracks and ``allowed`` `(N,)` bool detections,
        none in ``matches``, whose predicted box and box overlap only each other."""
        allowed = np.flatnonzero(allowed)
        means = np.array([self._tracks[t].mean for t in established]).reshape(-1, 8)
        overlap = 1.0 - iou_cost(xyah_to_xyxy(means[:, :4]), detections.boxes[allowed])
        pairs = isolated_pairs(overlap, self.config.isolated_match_iou)
        found = np.stack([established[pairs[:, 0]], allowed[pairs[:, 1]]], axis=1)
        return found[~np.isin(found[:, 0], matches[:, 0]) & ~np.isin(found[:, 1], matches[:, 1])]

    def association_cost(
        self, track_idx: np.ndarray, det_idx: np.ndarray, detections: Detections
    ) -> np.ndarray:
        """The fused cost of rounds (b) and (d) between live tracks and detections.

        The Mahalanobis gate is computed for every pair; IoU, the part-visibility
        distance and the direction term only for the pairs inside it, so a crowd costs
        in proportion to the pairs its motion admits rather than ``T x N``.

        Args:
            track_idx: `(T,)` int indices into :attr:`tracks`.
            det_idx: `(N,)` int indices into ``detections``.
            detections: the frame's detections (after :meth:`update`'s prediction step).

        Returns:
            `(T, N)` float64 cost of :func:`~.costs.fuse_costs`, ``inf`` where infeasible.
        """
        cfg = self.config
        tracks = [self._tracks[i] for i in track_idx]
        boxes = detections.boxes[det_idx]
        cost = np.full((len(tracks), len(boxes)), np.inf)
        if cost.size == 0:
            return cost
        means = np.stack([t.mean for t in tracks])
        covariances = np.stack([t.covariance for t in tracks])
        gate = mahalanobis_gate(self.kalman, means, covariances, boxes, cfg.gate_threshold)
        gate &= self._reach(tracks, boxes)
        pairs = np.nonzero(gate)
        probability, weight = None, 0.0  # motion only
        if self._uses_appearance(detections):  # (p_same (M,), w_app (M,)) of the pairs
            probability, weight = memory_evidence(
                [(t.gallery, t.gallery_valid) if t.gallery is not None else None for t in tracks],
                detections.embeddings[det_idx],
                detections.visibility[det_idx] > cfg.visibility_threshold,
                pairs,
                self.calibration,
                cfg.appearance_weight,
                cfg.full_weight_parts,
            )
        cost[pairs] = fuse_costs(
            iou_cost(xyah_to_xyxy(means[:, :4]), boxes, pairs),
            same_probability=probability,
            appearance_weight=weight,
            direction=self._direction(tracks, boxes, pairs),
            direction_weight=cfg.direction_weight,
            min_iou=cfg.min_iou,
        )
        return cost

    def _reach(self, tracks: list[Track], boxes: np.ndarray) -> np.ndarray:
        """`(T, N)` bool :func:`~.costs.reach_gate` of lost tracks (True for the others)."""
        lost = np.array([t.state == TrackState.LOST for t in tracks])
        if not lost.any() or np.isinf(self.frames.lost_max_speed):
            return np.ones((len(tracks), len(boxes)), bool)
        observed = np.stack([t.last_observation for t in tracks])
        gaps = np.array([t.time_since_update for t in tracks], np.float64)
        radius = np.where(lost, 0.5 + self.frames.lost_max_speed * gaps, np.inf)
        return reach_gate(observed[:, :2], radius * observed[:, 3], boxes)

    def _direction(self, tracks: list[Track], boxes: np.ndarray, pairs: Pairs) -> np.ndarray | None:
        """OC-SORT OCM term of ``pairs`` `(M,)`, or None when ``direction_weight`` is 0."""
        cfg, delta = self.config, self.frames.direction_delta
        if cfg.direction_weight == 0:
            return None
        directions = np.stack([t.direction(delta, cfg.direction_min_motion) for t in tracks])
        anchors = np.stack([t.last_observation for t in tracks])
        min_motion = cfg.direction_min_motion * anchors[:, 3]  # px, per track
        return direction_cost(directions, anchors[:, :2], boxes, min_motion, pairs)

    def _uses_appearance(self, detections: Detections) -> bool:
        if self.config.appearance_weight == 0 or detections.embeddings is None:
            return False
        if self.calibration is None and not self._warned:
            _LOG.warning(
                "KPRTracker: detections carry embeddings but the tracker has no "
                "appearance calibration (calibration=None); tracking on motion alone"
            )
            self._warned = True
        return self.calibration is not None

    def _absorb(self, matches: np.ndarray, detections: Detections, remember: np.ndarray) -> None:
        """Update matched tracks, store appearance where ``remember[d]``, and promote them
        (tentative -> confirmed, lost -> confirmed)."""
        for t, d in matches:
            track = self._tracks[t]
            track.update(
                self.kalman,
                detections.boxes[d],
                float(detections.scores[d]),
                reupdate=self.config.observation_reupdate,
            )
            if remember[d] and self._uses_appearance(detections):
                track.remember(detections.embeddings[d], detections.visibility[d])
            if track.state == TrackState.LOST:
                track.state = TrackState.CONFIRMED
            elif track.state == TrackState.TENTATIVE and track.hits >= self.config.min_hits:
                self._confirm(track)

    def _apply_lifecycle(self, track: Track) -> bool:
        """Apply step (f) to one track after matching; False when it must be dropped."""
        if track.time_since_update == 0:
            return True
        if track.state == TrackState.TENTATIVE:
            return False
        track.state = TrackState.LOST
        return track.time_since_update <= self.frames.max_age

    def _birth(self, detections: Detections, d: int, remember: bool) -> Track:
        appearance = remember and self._uses_appearance(detections)
        track = Track(
            self.kalman,
            detections.boxes[d],
            float(detections.scores[d]),
            detections.embeddings[d] if appearance else None,
            detections.visibility[d] if appearance else None,
            gallery_size=self.config.gallery_size,
            visibility_threshold=self.config.visibility_threshold,
            history=self.frames.direction_delta + 1,
        )
        if self._frame == 1 or self.config.min_hits <= 1:
            self._confirm(track)
        self._tracks.append(track)
        return track

    def _confirm(self, track: Track) -> None:
        track.state = TrackState.CONFIRMED
        track.track_id = self._new_id()
