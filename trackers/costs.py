"""One vectorised function per association cue, and the one place they are combined.

Every function returns a `(T, N)` matrix, tracks by detections (STYLE.md, norfair's
pluggable distances). :func:`fuse_costs` turns the cues into the assignment cost:
the part-visibility appearance distance (KPR, Somers et al. ECCV 2024) blended with
``1 - IoU`` where the pair shares a visible part, ``1 - IoU`` alone where it does not,
and ``inf`` wherever a gate fails.
"""

from __future__ import annotations

import numpy as np

from kpr_track.errors import InputError
from kpr_track.reid.distance import part_distance

from .kalman import CHI2_95_4DOF, KalmanFilter, xyxy_to_xyah


def iou_cost(track_boxes: np.ndarray, detection_boxes: np.ndarray) -> np.ndarray:
    """``1 - IoU`` between every track box and every detection box.

    Args:
        track_boxes: `(T, 4)` xyxy px.
        detection_boxes: `(N, 4)` xyxy px.

    Returns:
        `(T, N)` float64 in [0, 1]; degenerate (zero-area) boxes give cost 1.
    """
    a = np.asarray(track_boxes, np.float64).reshape(-1, 4)
    b = np.asarray(detection_boxes, np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    intersection = np.clip(bottom_right - top_left, 0.0, None).prod(axis=-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0.0, None).prod(axis=-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0.0, None).prod(axis=-1)
    union = area_a[:, None] + area_b[None, :] - intersection
    iou = np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)
    return 1.0 - iou


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


def appearance_cost(
    track_embeddings: np.ndarray,
    track_visibility: np.ndarray,
    detection_embeddings: np.ndarray,
    detection_visibility: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Part-visibility distance between track memories and detections.

    Wraps :func:`kpr_track.reid.distance.part_distance`: only embeddings visible in
    *both* the track memory and the detection are compared, so a part the track has
    seen but the detection hides contributes nothing.

    Args:
        track_embeddings: `(T, 1+K, D)` L2-normalised memory ``[foreground, parts]``.
        track_visibility: `(T, 1+K)` in [0, 1].
        detection_embeddings: `(N, 1+K, D)` L2-normalised.
        detection_visibility: `(N, 1+K)` in [0, 1].

    Returns:
        ``(cost, comparable)``: `(T, N)` float64 distance in [0, 1] (values where
        ``comparable`` is False are not meaningful) and `(T, N)` bool, False where the
        pair shares no visible embedding and so carries no appearance evidence.

    Raises:
        InputError: on mismatched shapes.
    """
    distance, comparable = part_distance(
        track_embeddings, track_visibility, detection_embeddings, detection_visibility
    )
    return distance.astype(np.float64), comparable


def fuse_costs(
    iou: np.ndarray,
    *,
    appearance: np.ndarray | None = None,
    comparable: np.ndarray | None = None,
    gate: np.ndarray | None = None,
    appearance_weight: float = 0.0,
    min_iou: float = 0.0,
    max_appearance_distance: float = 1.0,
) -> np.ndarray:
    """Combine the cues into one assignment cost (the only place they are combined).

    ``cost = w * appearance + (1 - w) * iou`` where ``comparable``, ``iou`` elsewhere,
    with ``w = appearance_weight``; ``inf`` where ``gate`` is False, where
    ``IoU < min_iou`` (i.e. ``iou > 1 - min_iou``), or where the pair is comparable and
    ``appearance > max_appearance_distance``. Pairs without appearance evidence are
    never rejected by appearance.

    Args:
        iou: `(T, N)` ``1 - IoU`` from :func:`iou_cost`.
        appearance: `(T, N)` distance in [0, 1] from :func:`appearance_cost`, or None
            for motion only.
        comparable: `(T, N)` bool, required with ``appearance``.
        gate: `(T, N)` bool motion gate from :func:`mahalanobis_gate`, or None.
        appearance_weight: ``w`` in [0, 1].
        min_iou: IoU below which a pair is infeasible, in [0, 1]; 0 disables.
        max_appearance_distance: appearance distance above which a comparable pair is
            infeasible, in [0, 1].

    Returns:
        `(T, N)` float64 cost, finite where feasible and ``inf`` elsewhere.

    Raises:
        InputError: if shapes disagree or an input holds NaN.
    """
    iou = np.asarray(iou, np.float64)
    cost = iou.copy()
    infeasible = iou > 1.0 - min_iou if min_iou > 0 else np.zeros(iou.shape, bool)
    if appearance is not None and appearance_weight > 0:
        if comparable is None:
            raise InputError("fuse_costs: 'comparable' is required with 'appearance'")
        _check_same_shape(iou, appearance=appearance, comparable=comparable)
        comparable = np.asarray(comparable, bool)
        appearance = np.asarray(appearance, np.float64)
        blended = appearance_weight * appearance + (1.0 - appearance_weight) * iou
        cost = np.where(comparable, blended, iou)
        infeasible |= comparable & (appearance > max_appearance_distance)
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
