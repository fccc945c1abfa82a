"""Association cues and their fusion: small tables of hand-checked values."""

from __future__ import annotations

import numpy as np
import pytest

from kpr_track.errors import InputError
from kpr_track.trackers.costs import appearance_cost, fuse_costs, iou_cost, mahalanobis_gate
from kpr_track.trackers.kalman import CHI2_95_4DOF, KalmanFilter, xyxy_to_xyah

INF = np.inf


@pytest.mark.parametrize(
    ("box_a", "box_b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 0.0),  # identical
        ([0, 0, 10, 10], [5, 0, 15, 10], 1 - 50 / 150),  # half overlap
        ([0, 0, 10, 10], [10, 0, 20, 10], 1.0),  # touching edges
        ([0, 0, 10, 10], [2, 2, 4, 4], 1 - 4 / 100),  # contained
        ([0, 0, 10, 10], [50, 50, 60, 60], 1.0),  # disjoint
        ([5, 5, 5, 5], [5, 5, 5, 5], 1.0),  # degenerate: zero area, no NaN
    ],
)
def test_iou_cost_table(box_a, box_b, expected):
    cost = iou_cost(np.array([box_a], float), np.array([box_b], float))
    assert cost.shape == (1, 1)
    assert cost[0, 0] == pytest.approx(expected)


@pytest.mark.parametrize(("t", "n"), [(0, 0), (0, 3), (2, 0), (2, 3)])
def test_iou_cost_shapes(t, n):
    rng = np.random.default_rng(0)
    a = np.sort(rng.uniform(0, 100, (t, 4)).reshape(t, 2, 2), axis=1).reshape(t, 4)
    b = np.sort(rng.uniform(0, 100, (n, 4)).reshape(n, 2, 2), axis=1).reshape(n, 4)
    cost = iou_cost(a, b)
    assert cost.shape == (t, n)
    assert ((cost >= 0) & (cost <= 1)).all()


@pytest.mark.parametrize(
    ("shift_px", "threshold", "feasible"),
    [
        (0.0, CHI2_95_4DOF, True),  # exactly at the prediction
        (3.0, CHI2_95_4DOF, True),  # within the noise of a 100 px tall box
        (60.0, CHI2_95_4DOF, False),  # more than a box width away
        (60.0, np.inf, True),  # gate disabled
    ],
)
def test_mahalanobis_gate_table(shift_px, threshold, feasible):
    kalman = KalmanFilter()
    mean, cov = kalman.initiate(xyxy_to_xyah(np.array([100, 100, 140, 200], float)))
    mean, cov = kalman.predict(mean, cov)
    det = np.array([[100 + shift_px, 100, 140 + shift_px, 200]], float)
    gate = mahalanobis_gate(kalman, mean[None], cov[None], det, threshold)
    assert gate.dtype == bool and gate.shape == (1, 1)
    assert gate[0, 0] == feasible


def test_mahalanobis_gate_empty():
    kalman = KalmanFilter()
    assert mahalanobis_gate(
        kalman, np.zeros((0, 8)), np.zeros((0, 8, 8)), np.zeros((3, 4))
    ).shape == (
        0,
        3,
    )


def _unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_appearance_ignores_part_hidden_in_detection():
    # Slots [foreground, part1, part2]; the track saw all three, the detection hides part2
    # and carries an opposite (garbage) embedding there: it must not count.
    track = _unit([[[1, 0], [0, 1], [1, 1]]])
    det = _unit([[[1, 0], [0, 1], [-1, -1]]])
    cost, comparable = appearance_cost(track, np.ones((1, 3)), det, np.array([[1, 1, 0.0]]))
    assert comparable[0, 0]
    assert cost[0, 0] == pytest.approx(0.0, abs=1e-6)
    cost_all, _ = appearance_cost(track, np.ones((1, 3)), det, np.ones((1, 3)))
    assert cost_all[0, 0] == pytest.approx(1 / 3, abs=1e-6)  # (0 + 0 + 2) / 3 / 2


def test_appearance_not_comparable_without_shared_part():
    track = _unit([[[1, 0], [0, 1]]])
    cost, comparable = appearance_cost(track, np.array([[0, 1.0]]), track, np.array([[1, 0.0]]))
    assert not comparable[0, 0]
    assert np.isfinite(cost).all()


# Fusion table, one pair per row: (1 - IoU, appearance, comparable, gate, w, min_iou,
# max_appearance) -> expected cost.
@pytest.mark.parametrize(
    ("iou", "app", "comp", "gate", "w", "min_iou", "max_app", "expected"),
    [
        (0.4, None, None, None, 0.0, 0.0, 1.0, 0.4),  # motion only
        (0.4, 0.2, True, True, 0.5, 0.0, 1.0, 0.3),  # blended
        (0.4, 0.2, True, True, 0.0, 0.0, 1.0, 0.4),  # weight 0 = motion only
        (0.4, 0.9, False, True, 0.5, 0.0, 0.3, 0.4),  # no shared part: motion, never rejected
        (0.4, 0.9, True, True, 0.5, 0.0, 0.3, INF),  # appearance gate
        (0.4, 0.2, True, False, 0.5, 0.0, 1.0, INF),  # Mahalanobis gate
        (0.95, 0.1, True, True, 0.5, 0.1, 1.0, INF),  # IoU 0.05 < min_iou 0.1
        (0.85, 0.1, True, True, 0.5, 0.1, 1.0, 0.475),  # IoU 0.15 >= min_iou 0.1
        (1.0, 0.1, True, True, 0.5, 0.0, 1.0, 0.55),  # no overlap, re-found by appearance
    ],
)
def test_fuse_costs_table(iou, app, comp, gate, w, min_iou, max_app, expected):
    def as_matrix(value):
        return None if value is None else np.array([[value]])

    cost = fuse_costs(
        as_matrix(iou),
        appearance=as_matrix(app),
        comparable=as_matrix(comp),
        gate=as_matrix(gate),
        appearance_weight=w,
        min_iou=min_iou,
        max_appearance_distance=max_app,
    )
    assert cost.shape == (1, 1)
    assert cost[0, 0] == pytest.approx(expected)


def test_fuse_costs_empty():
    assert fuse_costs(np.zeros((0, 4)), gate=np.zeros((0, 4), bool)).shape == (0, 4)


def test_fuse_costs_rejects_nan_and_bad_shapes():
    with pytest.raises(InputError, match="NaN"):
        fuse_costs(np.array([[np.nan]]))
    with pytest.raises(InputError, match="gate"):
        fuse_costs(np.zeros((2, 3)), gate=np.ones((3, 2), bool))
    with pytest.raises(InputError, match="comparable"):
        fuse_costs(np.zeros((1, 1)), appearance=np.zeros((1, 1)), appearance_weight=0.5)
