"""Association cues and their fusion: small tables of hand-checked values."""

from __future__ import annotations

import numpy as np
import pytest

from kpr_track.errors import InputError
from kpr_track.reid.calibration import DistanceCalibration
from kpr_track.trackers.assignment import linear_assignment
from kpr_track.trackers.costs import (
    appearance_slots,
    direction_cost,
    fuse_costs,
    iou_cost,
    mahalanobis_gate,
)
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


def _gallery(track):
    """(T, P, D) memories as single-entry galleries (T, P, 1, D) + valid mask."""
    track = np.asarray(track, np.float32)
    return track[:, :, None], np.ones(track.shape[:2] + (1,), bool)


def test_appearance_ignores_part_hidden_in_detection():
    # Slots [foreground, part1, part2]; the track saw all three, the detection hides part2
    # and carries an opposite (garbage) embedding there: it must not count.
    gallery, valid = _gallery(_unit([[[1, 0], [0, 1], [1, 1]]]))
    det = _unit([[[1, 0], [0, 1], [-1, -1]]])
    cost, shared = appearance_slots(gallery, valid, det, np.array([[1, 1, 0.0]]))
    assert shared[0, 0].tolist() == [True, True, False]
    assert cost[0, 0, :2] == pytest.approx([0.0, 0.0], abs=1e-6)
    cost_all, shared_all = appearance_slots(gallery, valid, det, np.ones((1, 3)))
    assert shared_all[0, 0].all()
    assert cost_all[0, 0] == pytest.approx([0.0, 0.0, 1.0], abs=1e-6)  # opposite: 2 / 2


def test_appearance_not_comparable_without_shared_part():
    gallery, valid = _gallery(_unit([[[1, 0], [0, 1]]]))
    valid[0, 1] = False  # the track never saw part 1; the detection shows only part 1
    cost, shared = appearance_slots(gallery, valid, _unit([[[1, 0], [0, 1]]]), [[0, 1]])
    assert not shared[0, 0].any()
    assert cost[0, 0].tolist() == [1.0, 1.0]


def test_cues_on_pairs_equal_the_full_matrix_there():
    """Gated association computes IoU, appearance and direction on the pairs inside the
    gate only; their values must be those of the every-pair (BLAS) matrices."""
    rng = np.random.default_rng(0)
    gallery = _unit(rng.normal(size=(40, 9, 5, 16)))
    valid = rng.uniform(size=(40, 9, 5)) > 0.3
    det = _unit(rng.normal(size=(30, 9, 16)))
    visibility = rng.uniform(size=(30, 9)) > 0.3
    pairs = np.nonzero(rng.uniform(size=(40, 30)) < 0.1)
    every, every_shared = appearance_slots(gallery, valid, det, visibility)
    some, some_shared = appearance_slots(gallery, valid, det, visibility, pairs)
    np.testing.assert_allclose(some, every[pairs], atol=1e-6)
    np.testing.assert_array_equal(some_shared, every_shared[pairs])
    assert every_shared.any() and (every < 1.0).any()  # the comparison is not vacuous

    corners = rng.uniform(0, 200, (70, 2))
    boxes = np.c_[corners, corners + rng.uniform(20, 80, (70, 2))]
    tracks, dets = boxes[:40], boxes[40:]
    np.testing.assert_allclose(iou_cost(tracks, dets, pairs), iou_cost(tracks, dets)[pairs])
    directions = _unit(rng.normal(size=(40, 2)))
    anchors, motion = rng.uniform(0, 200, (40, 2)), rng.uniform(0, 30, 40)
    np.testing.assert_allclose(
        direction_cost(directions, anchors, dets, motion, pairs),
        direction_cost(directions, anchors, dets, motion)[pairs],
    )


def test_appearance_rejects_bad_shapes():
    gallery, valid = _gallery(np.ones((1, 3, 4)))
    with pytest.raises(InputError, match="equal P"):
        appearance_slots(gallery, valid, np.ones((2, 2, 4)), np.ones((2, 2)))
    with pytest.raises(InputError, match="visibility"):
        appearance_slots(gallery, valid, np.ones((2, 3, 4)), np.ones((2, 2)))


# Fusion table, one pair per row: (1 - IoU, p_same, w_app, ocm, w_dir, gate, min_iou)
# -> expected cost = (1 - IoU) - w_app (2 p - 1) - w_dir ocm, inf where a gate fails.
@pytest.mark.parametrize(
    ("iou", "p", "w", "ocm", "w_dir", "gate", "min_iou", "expected"),
    [
        (0.4, None, 0.0, None, 0.0, None, 0.0, 0.4),  # motion only
        (0.4, 0.5, 0.5, None, 0.0, True, 0.0, 0.4),  # no evidence (p = 0.5): motion cost
        (0.4, 0.9, 0.5, None, 0.0, True, 0.0, 0.0),  # likely same person: lower
        (0.4, 0.1, 0.5, None, 0.0, True, 0.0, 0.8),  # likely two people: soft penalty
        (0.4, 0.9, 0.0, None, 0.0, True, 0.0, 0.4),  # weight 0 = motion only
        (0.4, 0.9, 0.5, None, 0.0, False, 0.0, INF),  # Mahalanobis gate
        (0.95, 0.9, 0.5, None, 0.0, True, 0.1, INF),  # IoU 0.05 < min_iou 0.1
        (0.85, 0.9, 0.5, None, 0.0, True, 0.1, 0.45),  # IoU 0.15 >= min_iou 0.1
        (1.0, 0.95, 0.5, None, 0.0, True, 0.0, 0.55),  # no overlap, re-found by appearance
        (0.4, None, 0.0, 0.5, 0.2, True, 0.0, 0.3),  # course continued (OCM)
        (0.4, None, 0.0, -0.5, 0.2, True, 0.0, 0.5),  # turned back
        (0.4, None, 0.0, 0.5, 0.0, True, 0.0, 0.4),  # OCM off
    ],
)
def test_fuse_costs_table(iou, p, w, ocm, w_dir, gate, min_iou, expected):
    def as_matrix(value):
        return None if value is None else np.array([[value]])

    cost = fuse_costs(
        as_matrix(iou),
        same_probability=as_matrix(p),
        appearance_weight=w,
        direction=as_matrix(ocm),
        direction_weight=w_dir,
        gate=as_matrix(gate),
        min_iou=min_iou,
    )
    assert cost.shape == (1, 1)
    assert cost[0, 0] == pytest.approx(expected)


def test_appearance_evidence_never_loses_to_a_pair_without_it():
    """The review case of issue 8: a true match (IoU 0.80, distance 0.34, the same-person
    median of the pose-guided parts on PETS09) against a detection sharing no visible
    part at IoU 0.75. The old blend cost them 0.27 and 0.25 and picked the wrong one."""
    calibration = DistanceCalibration(
        midpoint=0.39, slope=25.0, same_median=0.34, different_median=0.43
    )
    distance = np.array([[0.34, 0.9]])
    shared = np.array([[3, 0]])
    p_same = np.where(shared > 0, calibration.same_probability(distance), 0.5)
    cost = fuse_costs(np.array([[0.20, 0.25]]), same_probability=p_same, appearance_weight=0.5)
    assert cost[0, 0] < 0.20  # appearance lowered the true match below its motion cost
    assert cost[0, 1] == pytest.approx(0.25)  # no evidence: exactly the motion cost
    matches, _, _ = linear_assignment(cost, 0.8)
    assert matches.tolist() == [[0, 0]]


@pytest.mark.parametrize(
    ("direction", "detection_centre", "expected"),
    [
        ((1.0, 0.0), (20.0, 0.0), 0.5),  # straight on
        ((1.0, 0.0), (-20.0, 0.0), -0.5),  # turned back
        ((1.0, 0.0), (0.0, 20.0), 0.0),  # perpendicular
        ((1.0, 0.0), (20.0, 20.0), 0.25),  # 45 degrees
        ((0.0, 0.0), (20.0, 0.0), 0.0),  # no known direction
        ((1.0, 0.0), (2.0, 0.0), 0.0),  # step shorter than min_motion (5 px)
    ],
)
def test_direction_cost_table(direction, detection_centre, expected):
    x, y = detection_centre
    box = np.array([[x - 10, y - 20, x + 10, y + 20]])
    term = direction_cost(np.array([direction]), np.zeros((1, 2)), box, min_motion=5.0)
    assert term.shape == (1, 1)
    assert term[0, 0] == pytest.approx(expected)


def test_fuse_costs_empty():
    assert fuse_costs(np.zeros((0, 4)), gate=np.zeros((0, 4), bool)).shape == (0, 4)


def test_fuse_costs_rejects_nan_and_bad_shapes():
    with pytest.raises(InputError, match="NaN"):
        fuse_costs(np.array([[np.nan]]))
    with pytest.raises(InputError, match="gate"):
        fuse_costs(np.zeros((2, 3)), gate=np.ones((3, 2), bool))
    with pytest.raises(InputError, match="same_probability"):
        fuse_costs(np.zeros((1, 1)), same_probability=np.zeros((2, 1)), appearance_weight=0.5)
