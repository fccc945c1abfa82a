"""Minimum-cost one-to-one assignment with a cost limit (Jonker-Volgenant via ``lap``)."""

from __future__ import annotations

import lap
import numpy as np

from kpr_track.errors import InputError


def linear_assignment(
    cost: np.ndarray, max_cost: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match rows to columns minimising the total cost, never above ``max_cost``.

    Uses ``lap.lapjv(cost, extend_cost=True, cost_limit=max_cost)`` (Jonker &
    Volgenant, Computing 1987): a pair costing more than ``max_cost`` is never chosen,
    leaving both sides unmatched instead. The solver only sees the reduced problem, the
    rows and columns with at least one pair within ``max_cost`` (the others cannot be
    matched), and infinite entries (infeasible pairs) replaced by ``max_cost + 1``,
    which ``lap`` needs.

    Args:
        cost: `(T, N)` float cost, finite or ``inf``; no NaN.
        max_cost: the largest cost a match may have (finite, >= 0).

    Returns:
        ``(matches, unmatched_rows, unmatched_cols)``: `(M, 2)` int64 ``(row, col)``
        pairs sorted by row, then the sorted int64 indices of rows and of columns left
        unmatched.

    Raises:
        InputError: if ``cost`` is not 2-D, holds NaN, or ``max_cost`` is not finite
            and non-negative.
    """
    cost = np.asarray(cost, np.float64)
    if cost.ndim != 2:
        raise InputError(f"linear_assignment: cost must be 2-D (T, N), got shape {cost.shape}")
    if np.isnan(cost).any():
        raise InputError("linear_assignment: cost matrix contains NaN")
    if not np.isfinite(max_cost) or max_cost < 0:
        raise InputError(f"linear_assignment: max_cost must be finite and >= 0, got {max_cost}")
    rows, cols = cost.shape
    allowed = cost <= max_cost
    live_rows, live_cols = np.flatnonzero(allowed.any(axis=1)), np.flatnonzero(allowed.any(axis=0))
    if len(live_rows) == 0:
        return np.zeros((0, 2), np.int64), np.arange(rows), np.arange(cols)
    reduced = cost[np.ix_(live_rows, live_cols)]
    finite = np.where(np.isfinite(reduced), reduced, max_cost + 1.0)
    _, row_to_col, _ = lap.lapjv(finite, extend_cost=True, cost_limit=max_cost)
    matched = np.flatnonzero(row_to_col >= 0)
    keep = finite[matched, row_to_col[matched]] <= max_cost
    matched_rows = live_rows[matched[keep]]
    matched_cols = live_cols[row_to_col[matched[keep]]]
    matches = np.stack([matched_rows, matched_cols], axis=1).astype(np.int64)
    unmatched_rows = np.setdiff1d(np.arange(rows), matches[:, 0])
    unmatched_cols = np.setdiff1d(np.arange(cols), matches[:, 1])
    return matches, unmatched_rows, unmatched_cols


def isolated_pairs(overlap: np.ndarray, min_iou: float) -> np.ndarray:
    """The pairs that overlap each other and nothing else: unambiguous without a cost.

    Args:
        overlap: `(T, N)` float IoU in [0, 1] between track and detection boxes.
        min_iou: IoU in (0, 1]: pairs overlapping at least this much count as overlapping.

    Returns:
        `(M, 2)` int64 ``(row, col)`` pairs sorted by row: ``overlap[row, col] >= min_iou``
        while every other entry of that row and of that column is below ``min_iou``.
    """
    near = np.asarray(overlap) >= min_iou
    alone = near & (near.sum(axis=1, keepdims=True) == 1) & (near.sum(axis=0, keepdims=True) == 1)
    return np.argwhere(alone).astype(np.int64).reshape(-1, 2)
