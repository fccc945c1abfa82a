"""Part-visibility distance between part-based embeddings (KPR / BPBReID).

For a query ``q`` and a gallery sample ``g`` with embeddings ``f_i`` and visibility
scores ``v_i`` over ``i`` in {foreground, part_1..part_K}:

    d(q, g) = sum_i w_i ||f_i^q - f_i^g||_2 / sum_i w_i,    w_i = sqrt(v_i^q v_i^g)

(Somers et al., BPBReID, WACV 2023, Sec. 3.5; KPR, ECCV 2024, Sec. 3.4). With binary
visibility ``w_i = v_i^q v_i^g``, so only parts that *both* samples show are compared.
Embeddings are L2-normalised, so each Euclidean term lies in [0, 2]; the result is
divided by 2 to lie in [0, 1].

The plain average lets many weak part distances outvote the holistic one (slots live at
different scales); the shipped models rank and track by the calibrated evidence of the
per-slot distances instead (:func:`slot_distances` into
:meth:`kpr_track.reid.calibration.DistanceCalibration.logit`, :func:`evidence_distance`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def part_distance(
    query_embeddings: np.ndarray,
    query_visibility: np.ndarray,
    gallery_embeddings: np.ndarray,
    gallery_visibility: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Batched part-visibility distance.

    Args:
        query_embeddings: `(Q, P, D)` float, L2-normalised along ``D``
            (``P = 1 + K``: foreground then parts).
        query_visibility: `(Q, P)` float in [0, 1] (binary or soft).
        gallery_embeddings: `(G, P, D)` float, L2-normalised along ``D``.
        gallery_visibility: `(G, P)` float in [0, 1].

    Returns:
        ``(distance, comparable)``: `(Q, G)` float32 distances in [0, 1] and a `(Q, G)`
        bool mask that is False where the pair shares no mutually visible embedding.
        Such pairs get distance ``1 + max`` of the comparable distances (at least 1),
        never NaN and never a silent 0; callers that must not rank them (a tracker's
        appearance gate) use ``comparable``.

    Raises:
        InputError: on mismatched shapes.
    """
    qe, ge = np.asarray(query_embeddings, np.float32), np.asarray(gallery_embeddings, np.float32)
    qv, gv = np.asarray(query_visibility, np.float32), np.asarray(gallery_visibility, np.float32)
    if qe.ndim != 3 or ge.ndim != 3 or qe.shape[1:] != ge.shape[1:]:
        raise InputError(
            f"part_distance: embeddings must be (Q, P, D) and (G, P, D) with equal P, D; "
            f"got {qe.shape} and {ge.shape}"
        )
    if qv.shape != qe.shape[:2] or gv.shape != ge.shape[:2]:
        raise InputError(
            f"part_distance: visibility must be (Q, P) and (G, P); got {qv.shape} and {gv.shape} "
            f"for embeddings {qe.shape} and {ge.shape}"
        )
    # Squared Euclidean per part via the Gram trick, (P, Q, G); clipped for round-off.
    gram = np.einsum("qpd,gpd->pqg", qe, ge)
    sq = (qe**2).sum(-1).T[:, :, None] + (ge**2).sum(-1).T[:, None, :] - 2.0 * gram
    per_part = np.sqrt(np.clip(sq, 0.0, None))  # (P, Q, G)
    weights = np.sqrt(np.clip(qv.T[:, :, None] * gv.T[:, None, :], 0.0, None))  # (P, Q, G)
    total = weights.sum(0)
    comparable = total > 1e-6
    distance = (weights * per_part).sum(0) / np.where(comparable, total, 1.0) / 2.0
    fill = 1.0 + (float(distance[comparable].max()) if comparable.any() else 0.0)
    return np.where(comparable, distance, fill).astype(np.float32), comparable


def slot_distances(
    query_embeddings: np.ndarray,
    query_visibility: np.ndarray,
    gallery_embeddings: np.ndarray,
    gallery_visibility: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot distances of every query / gallery pair, and which slots both show.

    Args:
        query_embeddings: `(Q, P, D)` float, L2-normalised along ``D``.
        query_visibility: `(Q, P)` float in [0, 1]; above 0.5 counts as shown.
        gallery_embeddings: `(G, P, D)` float, L2-normalised.
        gallery_visibility: `(G, P)` float in [0, 1].

    Returns:
        ``(distance (Q, G, P) float64 in [0, 1], shared (Q, G, P) bool)``:
        ``||f_i^q - f_i^g||_2 / 2`` per slot, and True where both show slot ``i``.

    Raises:
        InputError: on mismatched shapes.
    """
    qe, ge = np.asarray(query_embeddings, np.float32), np.asarray(gallery_embeddings, np.float32)
    if qe.ndim != 3 or ge.ndim != 3 or qe.shape[1:] != ge.shape[1:]:
        raise InputError(
            f"slot_distances: embeddings must be (Q, P, D) and (G, P, D) with equal P, D; "
            f"got {qe.shape} and {ge.shape}"
        )
    qv, gv = np.asarray(query_visibility) > 0.5, np.asarray(gallery_visibility) > 0.5
    if qv.shape != qe.shape[:2] or gv.shape != ge.shape[:2]:
        raise InputError(
            f"slot_distances: visibility must be (Q, P) and (G, P); got {qv.shape} and "
            f"{gv.shape} for embeddings {qe.shape} and {ge.shape}"
        )
    gram = np.einsum("qpd,gpd->qgp", qe, ge).astype(np.float64)
    distance = np.sqrt(np.clip(2.0 - 2.0 * gram, 0.0, 4.0)) / 2.0
    return distance, qv[:, None, :] & gv[None, :, :]


def evidence_distance(
    calibration,
    query_embeddings: np.ndarray,
    query_visibility: np.ndarray,
    gallery_embeddings: np.ndarray,
    gallery_visibility: np.ndarray,
) -> np.ndarray:
    """Ranking distance from calibrated evidence: ``-logit p_same`` of every pair.

    The same function (:meth:`~kpr_track.reid.calibration.DistanceCalibration.logit`)
    gives the tracker's ``p_same``; only the per-slot statistic differs (one crop here,
    the minimum over a track's gallery there).

    Args:
        calibration: a :class:`~kpr_track.reid.calibration.DistanceCalibration`.
        query_embeddings, query_visibility, gallery_embeddings, gallery_visibility: as
            :func:`slot_distances`.

    Returns:
        `(Q, G)` float64, smaller = more likely the same person.
    """
    distance, shared = slot_distances(
        query_embeddings, query_visibility, gallery_embeddings, gallery_visibility
    )
    return -calibration.logit(distance, shared)
