"""One vectorised function per association cue, and the one place they are combined.

Every function returns a `(T, N)` matrix, tracks by detections (STYLE.md, norfair's
pluggable distances), or, given ``pairs = (rows, cols)``, the `(M,)` values of those
pairs only: a tracker computes the gate on every pair and the other cues on the pairs
inside it, so a crowd costs in proportion to the pairs its motion admits.
:func:`fuse_costs` (element-wise, so either form) turns the cues into the assignment cost:
``1 - IoU``, shifted down (or, bounded, up) by the calibrated same-person probability of
the part-visibility appearance distance (KPR, Somers et al. ECCV 2024) where the pair
shares a visible part, and by OC-SORT's direction-consistency term; ``inf`` wherever a
gate fails.
"""

from __future__ import annotations

import numpy as np

from kpr_track.boxes import box_iou
from kpr_track.errors import InputError

from .kalman import CHI2_95_4DOF, KalmanFilter, xyxy_to_xyah

Pairs = tuple[np.ndarray, np.ndarray]
"""``(rows, cols)``: `(M,)` int track and detection indices of the pairs to compute."""


def iou_cost(
    track_boxes: np.ndarray, detection_boxes: np.ndarray, pairs: Pairs | None = None
) -> np.ndarray:
    """``1 - IoU`` between track boxes and detection boxes.

    Args:
        track_boxes: `(T, 4)` xyxy px.
        detection_boxes: `(N, 4)` xyxy px.
        pairs: the pairs to compute; None: every pair.

    Returns:
        `(T, N)` (or `(M,)` for ``pairs``) float64 in [0, 1]; degenerate (zero-area)
        boxes give cost 1.
    """
    a, b = _paired(
        np.asarray(track_boxes, np.float64).reshape(-1, 4),
        np.asarray(detection_boxes, np.float64).reshape(-1, 4),
        pairs,
    )
    return 1.0 - box_iou(a, b)


def _paired(tracks: np.ndarray, detections: np.ndarray, pairs: Pairs | None):
    """Per-track and per-detection arrays lined up: `(T, 1, ...)` and `(1, N, ...)` for
    every pair, or `(M, ...)` each for ``pairs``."""
    if pairs is None:
        return tracks[:, None], detections[None]
    rows, cols = pairs
    return tracks[rows], detections[cols]


def mahalanobis_gate(
    kalman: KalmanFilter,
    means: np.ndarray,
    covariances: np.ndarray,
    detection_boxes: np.ndarray,
    threshold: float = CHI2_95_4DOF,
) -> np.ndarray:
    """Which detections fall inside each track's Kalman gate.

    Args:
        kalman: the filter that produced the states.
        means: `(T, 8)` predicted state means.
        covariances: `(T, 8, 8)` predicted state covariances.
        detection_boxes: `(N, 4)` xyxy px.
        threshold: squared-Mahalanobis bound on the 4-d measurement (default: the
            chi-square 95 % quantile with 4 dof, 9.4877; ``inf`` disables the gate).

    Returns:
        `(T, N)` bool, True where the pair is feasible.
    """
    boxes = np.asarray(detection_boxes, np.float64).reshape(-1, 4)
    means = np.asarray(means, np.float64).reshape(-1, 8)
    if len(means) == 0 or len(boxes) == 0 or np.isinf(threshold):
        return np.ones((len(means), len(boxes)), bool)
    distance = kalman.gating_distance(means, covariances, xyxy_to_xyah(boxes))
    return distance <= threshold


def reach_gate(anchors: np.ndarray, radius: np.ndarray, detection_boxes: np.ndarray) -> np.ndarray:
    """Which detections a track could have reached: centre within ``radius`` of its anchor.

    A motion-plausibility bound on top of the Kalman gate for tracks that were not seen
    for a while, whose gate keeps growing with the gap (kpr-track's own rule, issue 18).

    Args:
        anchors: `(T, 2)` px centre of each track's last observed box.
        radius: `(T,)` px reach of each track (``inf``: no bound).
        detection_boxes: `(N, 4)` xyxy px.

    Returns:
        `(T, N)` bool, True where the detection's centre lies within the reach.
    """
    boxes = np.asarray(detection_boxes, np.float64).reshape(-1, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
    distance = np.linalg.norm(anchors[:, None] - centres[None], axis=-1)
    return distance <= np.asarray(radius, np.float64).reshape(-1, 1)


def appearance_slots(
    gallery_embeddings: np.ndarray,
    gallery_valid: np.ndarray,
    detection_embeddings: np.ndarray,
    detection_visibility: np.ndarray,
    pairs: Pairs | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot gallery-minimum distance between track galleries and detections.

    For each slot, the Euclidean distance to the *closest* of the track's stored
    embeddings of that slot, halved into [0, 1]; the statistic the appearance
    calibration is fitted on (``gallery-min-G``, :mod:`kpr_track.train.calibrate`) and
    reads as evidence (:meth:`~kpr_track.reid.calibration.DistanceCalibration.logit`).
    Every pair: one matrix product per slot (BLAS). ``pairs``: the dot products of
    those pairs only.

    Args:
        gallery_embeddings: `(T, P, G, D)` L2-normalised, ``P = 1 + K`` slots
            ``[holistic, parts]``, ``G`` stored embeddings per slot.
        gallery_valid: `(T, P, G)` bool, True where an embedding is stored.
        detection_embeddings: `(N, P, D)` L2-normalised.
        detection_visibility: `(N, P)` bool or {0, 1}: slots the detection shows.
        pairs: the pairs to compute; None: every pair.

    Returns:
        ``(distance, shared)``: `(T, N, P)` (or `(M, P)` for ``pairs``) float64 in
        [0, 1] (1 where the slot is not shared) and bool, True where the track's gallery
        holds the slot and the detection shows it.

    Raises:
        InputError: on mismatched shapes.
    """
    gallery = np.asarray(gallery_embeddings, np.float32)
    valid = np.asarray(gallery_valid, bool)
    det = np.asarray(detection_embeddings, np.float32)
    det_vis = np.asarray(detection_visibility) > 0
    if gallery.ndim != 4 or det.ndim != 3 or gallery.shape[1] != det.shape[1]:
        raise InputError(
            "appearance_slots: expected gallery (T, P, G, D) and detections (N, P, D) with "
            f"equal P and D, got {gallery.shape} and {det.shape}"
        )
    if gallery.shape[3] != det.shape[2] or valid.shape != gallery.shape[:3]:
        raise InputError(
            f"appearance_slots: gallery {gallery.shape}, valid {valid.shape} and detections "
            f"{det.shape} disagree"
        )
    if det_vis.shape != det.shape[:2]:
        raise InputError(
            f"appearance_slots: visibility must be (N, P) = {det.shape[:2]}, got {det_vis.shape}"
        )
    if pairs is None:
        cosine = np.einsum("ptgn->tnpg", _slot_products(gallery, det))  # (T, N, P, G)
    else:
        rows, cols = pairs
        cosine = np.einsum("mpgd,mpd->mpg", gallery[rows], det[cols])  # (M, P, G)
    valid, det_vis = _paired(valid, det_vis, pairs)
    # Unit vectors: ||a - b||^2 = 2 - 2 a.b, clipped for round-off.
    euclid = np.sqrt(np.clip(2.0 - 2.0 * cosine, 0.0, 4.0))
    euclid = np.where(valid, euclid, np.inf).min(axis=-1)  # (..., P)
    both = valid.any(axis=-1) & det_vis  # (..., P)
    return np.where(both, euclid / 2.0, 1.0).astype(np.float64), both


def _slot_products(gallery: np.ndarray, det: np.ndarray) -> np.ndarray:
    """Dot products of every gallery embedding with every detection, one matrix product
    per slot: `(T, P, G, D)` and `(N, P, D)` -> `(P, T, G, N)` float32."""
    tracks, slots, size, dim = gallery.shape
    per_slot = np.ascontiguousarray(gallery.transpose(1, 0, 2, 3)).reshape(slots, -1, dim)
    products = np.matmul(per_slot, det.transpose(1, 2, 0))  # (P, T * G, N)
    return products.reshape(slots, tracks, size, len(det))


def direction_cost(
    track_directions: np.ndarray,
    track_anchors: np.ndarray,
    detection_boxes: np.ndarray,
    min_motion: np.ndarray | float = 0.0,
    pairs: Pairs | None = None,
) -> np.ndarray:
    """Velocity-direction consistency, OC-SORT's observation-centric momentum (OCM).

    Cao et al., "Observation-Centric SORT", CVPR 2023, Sec. 3.3 (Eq. 4): the angle
    ``dtheta`` in [0, pi] between a track's direction, taken from two of its *observed*
    boxes, and the direction from its last observed box to the candidate detection
    (box centres). The term is ``(pi/2 - dtheta) / pi`` in [-0.5, 0.5] (OC-SORT's
    form): positive when the detection continues the track's course, negative when it
    turns back, 0 for a perpendicular step. :func:`fuse_costs` subtracts it, weighted.

    Args:
        track_directions: `(T, 2)` unit ``(dx, dy)`` of each track's observed motion;
            a zero row means "no direction known" (the term is 0 for that track).
        track_anchors: `(T, 2)` px centre of each track's last observed box.
        detection_boxes: `(N, 4)` xyxy px.
        min_motion: scalar or `(T,)` px: a step from the anchor shorter than this has
            no direction (term 0), so jitter of a standing person does not count.
        pairs: the pairs to compute; None: every pair.

    Returns:
        `(T, N)` (or `(M,)` for ``pairs``) float64 in [-0.5, 0.5].
    """
    directions = np.asarray(track_directions, np.float64).reshape(-1, 2)
    anchors = np.asarray(track_anchors, np.float64).reshape(-1, 2)
    boxes = np.asarray(detection_boxes, np.float64).reshape(-1, 4)
    motion = np.broadcast_to(np.asarray(min_motion, np.float64), (len(anchors),))
    track = np.concatenate([directions, anchors, motion[:, None]], axis=1)  # (T, 5)
    track, centres = _paired(track, (boxes[:, :2] + boxes[:, 2:]) / 2.0, pairs)
    step = centres - track[..., 2:4]
    length = np.linalg.norm(step, axis=-1)
    cosine = (step * track[..., :2]).sum(-1) / np.maximum(length, 1e-9)
    angle = np.arccos(np.clip(cosine, -1.0, 1.0))
    known = np.abs(track[..., :2]).sum(-1) > 0
    long_enough = length >= track[..., 4]
    return np.where(known & long_enough & (length > 0), (np.pi / 2 - angle) / np.pi, 0.0)


def memory_evidence(
    memories: list[tuple[np.ndarray, np.ndarray] | None],
    detection_embeddings: np.ndarray,
    detection_seen: np.ndarray,
    pairs: Pairs,
    calibration,
    appearance_weight: float,
    full_weight_parts: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(p_same, w_app)`` of track / detection ``pairs`` from the tracks' memories.

    ``p_same`` is the calibration's fused evidence (:meth:`~kpr_track.reid.calibration.
    DistanceCalibration.fused_probability`) of the per-slot gallery minima
    (:func:`appearance_slots`, the statistic the calibration was fitted on,
    :mod:`kpr_track.train.calibrate`), 0.5 where the pair does not share the holistic
    slot or the track has no memory; ``w_app = appearance_weight x min(shared slots /
    full, 1)`` with ``full = min(full_weight_parts, P)`` (1 for a global embedding).

    Args:
        memories: per track row, ``(gallery (P, G, D), valid (P, G))`` or None.
        detection_embeddings: `(N, P, D)` L2-normalised.
        detection_seen: `(N, P)` bool, the slots each detection shows.
        pairs: ``(rows, cols)`` `(M,)` indices into ``memories`` and the detections.
        calibration: a :class:`~kpr_track.reid.calibration.DistanceCalibration`.
        appearance_weight: largest ``w_app``, cost units in [0, 1].
        full_weight_parts: shared slots >= 1 that give the full weight.

    Returns:
        `(M,)` float p_same in [0, 1] and `(M,)` float ``w_app``.

    Raises:
        InputError: when the detections' (slots, D) differ from the memories'.
    """
    rows, cols = pairs
    slots = detection_embeddings.shape[1]
    distance, both = np.ones((len(rows), slots)), np.zeros((len(rows), slots), bool)
    members = [r for r in np.unique(rows) if memories[r] is not None]
    if members:
        gallery = np.stack([memories[r][0] for r in members])
        if gallery.shape[1::2] != detection_embeddings.shape[1:]:
            raise InputError(
                f"KPRTracker.update: embeddings {detection_embeddings.shape[1:]} do not match "
                f"the track memory {gallery.shape[1::2]} (slots, D)"
            )
        valid = np.stack([memories[r][1] for r in members])
        compact = np.full(len(memories), -1)
        compact[members] = np.arange(len(members))
        known = compact[rows] >= 0
        distance[known], both[known] = appearance_slots(
            gallery,
            valid,
            detection_embeddings,
            detection_seen,
            (compact[rows[known]], cols[known]),
        )
    evidence = calibration.fused_probability(distance, both)
    probability = np.where(both[:, 0], evidence, 0.5)
    full = min(full_weight_parts, slots)
    return probability, appearance_weight * np.minimum(both.sum(axis=-1) / full, 1.0)


def unoccluded(boxes: np.ndarray, max_overlap: float) -> np.ndarray:
    """`(N,)` bool: the `(N, 4)` xyxy px ``boxes`` overlapping no other one by more than
    ``max_overlap`` IoU (their crops show one person)."""
    overlap = 1.0 - iou_cost(boxes, boxes)
    np.fill_diagonal(overlap, 0.0)
    most = overlap.max(axis=1) if len(boxes) > 1 else np.zeros(len(boxes))
    return most <= max_overlap


def fuse_costs(
    iou: np.ndarray,
    *,
    same_probability: np.ndarray | None = None,
    appearance_weight: np.ndarray | float = 0.0,
    direction: np.ndarray | None = None,
    direction_weight: float = 0.0,
    gate: np.ndarray | None = None,
    min_iou: float = 0.0,
) -> np.ndarray:
    """Combine the cues into one assignment cost (the only place they are combined).

        cost = (1 - IoU) - w_app * (2 p_same - 1) - w_dir * ocm

    ``1 - IoU`` is SORT's motion cost (Bewley et al., ICIP 2016); ``ocm`` is OC-SORT's
    direction term (:func:`direction_cost`, Cao et al. CVPR 2023, Eq. 4, where it is
    likewise added to the IoU cost with a weight); ``p_same`` is the appearance model's
    calibrated probability that the pair shows one person (:class:`~kpr_track.reid.
    calibration.DistanceCalibration`, Platt scaling). The appearance shift
    ``w_app (2 p_same - 1)`` is kpr-track's own form (issue 8): a weighted sum of motion
    and appearance as in DeepSORT (Wojke et al., ICIP 2017, Eq. 5), but centred on the
    neutral probability 0.5 instead of blending a raw distance. A pair without a shared
    visible part carries ``p_same = 0.5`` (or ``w_app = 0``) and costs exactly its motion
    cost; appearance *lowers* the cost of a pair its calibration finds more likely the
    same person, and raises it (a soft gate, at most ``w_app``) only when two people are
    more likely; no distance threshold is involved. ``inf`` where ``gate`` is False or
    ``IoU < min_iou``.

    Element-wise: every input has the shape of ``iou``, `(T, N)` or the `(M,)` values of
    some pairs.

    Args:
        iou: `(T, N)` ``1 - IoU`` from :func:`iou_cost`.
        same_probability: `(T, N)` p_same in [0, 1] (0.5 where there is no evidence), or
            None for no appearance.
        appearance_weight: ``w_app``: scalar or `(T, N)` in [0, 1] (e.g. depending on the
            number of shared visible parts).
        direction: `(T, N)` OCM term in [-0.5, 0.5] from :func:`direction_cost`, or None.
        direction_weight: ``w_dir`` in [0, 1].
        gate: `(T, N)` bool motion gate from :func:`mahalanobis_gate`, or None.
        min_iou: IoU below which a pair is infeasible, in [0, 1]; 0 disables.

    Returns:
        `(T, N)` float64 cost, finite where feasible and ``inf`` elsewhere; it lies in
        ``[-w_app - w_dir / 2, 1 + w_app + w_dir / 2]``.

    Raises:
        InputError: if shapes disagree or an input holds NaN.
    """
    iou = np.asarray(iou, np.float64)
    cost = iou.copy()
    infeasible = iou > 1.0 - min_iou if min_iou > 0 else np.zeros(iou.shape, bool)
    if same_probability is not None:
        _check_same_shape(iou, same_probability=same_probability)
        weight = np.broadcast_to(np.asarray(appearance_weight, np.float64), iou.shape)
        cost = cost - weight * (2.0 * np.asarray(same_probability, np.float64) - 1.0)
    if direction is not None and direction_weight > 0:
        _check_same_shape(iou, direction=direction)
        cost = cost - direction_weight * np.asarray(direction, np.float64)
    if gate is not None:
        _check_same_shape(iou, gate=gate)
        infeasible |= ~np.asarray(gate, bool)
    if np.isnan(cost).any():
        raise InputError("fuse_costs: the cost matrix contains NaN; check the input cues")
    cost[infeasible] = np.inf
    return cost


def _check_same_shape(reference: np.ndarray, **arrays: np.ndarray) -> None:
    for name, array in arrays.items():
        if np.shape(array) != reference.shape:
            raise InputError(
                f"fuse_costs: {name!r} must have the shape of 'iou' {reference.shape}, "
                f"got {np.shape(array)}"
            )
