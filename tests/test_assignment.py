"""Linear assignment with a cost limit: tables including empty and all-infeasible cases."""

from __future__ import annotations

import numpy as np
import pytest

from kpr_track.errors import InputError
from kpr_track.trackers.assignment import linear_assignment

INF = np.inf


@pytest.mark.parametrize(
    ("cost", "max_cost", "matches", "rows", "cols"),
    [
        ([[0.1, 0.9], [0.8, 0.2]], 0.5, [[0, 0], [1, 1]], [], []),  # diagonal
        ([[0.9, 0.1], [0.2, 0.8]], 0.5, [[0, 1], [1, 0]], [], []),  # anti-diagonal
        ([[0.4, 0.3], [0.3, 0.9]], 1.0, [[0, 1], [1, 0]], [], []),  # global, not greedy
        ([[0.1, 0.9], [0.8, 0.7]], 0.5, [[0, 0]], [1], [1]),  # one pair above the limit
        ([[0.1, 0.2, 0.3]], 0.5, [[0, 0]], [], [1, 2]),  # more columns
        ([[0.3], [0.1], [0.2]], 0.5, [[1, 0]], [0, 2], []),  # more rows
        ([[INF, 0.2], [0.1, INF]], 0.5, [[0, 1], [1, 0]], [], []),  # inf = infeasible
        ([[INF, INF], [INF, INF]], 0.5, [], [0, 1], [0, 1]),  # all infeasible
        ([[0.6, 0.7]], 0.5, [], [0], [0, 1]),  # all above the limit
        (np.zeros((0, 3)), 0.5, [], [], [0, 1, 2]),  # no tracks
        (np.zeros((2, 0)), 0.5, [], [0, 1], []),  # no detections
        (np.zeros((0, 0)), 0.5, [], [], []),  # nothing
    ],
)
def test_linear_assignment_table(cost, max_cost, matches, rows, cols):
    got_matches, got_rows, got_cols = linear_assignment(np.array(cost, float), max_cost)
    assert got_matches.shape[1] == 2 and got_matches.dtype == np.int64
    assert got_matches.tolist() == matches
    assert got_rows.tolist() == rows
    assert got_cols.tolist() == cols


def test_linear_assignment_random_matches_brute_force():
    from itertools import permutations

    rng = np.random.default_rng(3)
    for _ in range(20):
        cost = rng.uniform(0, 1, (4, 4))
        matches, rows, _ = linear_assignment(cost, 10.0)
        best = min(sum(cost[i, p[i]] for i in range(4)) for p in permutations(range(4)))
        assert len(rows) == 0
        assert cost[matches[:, 0], matches[:, 1]].sum() == pytest.approx(best)


def test_linear_assignment_on_sparse_costs_matches_the_full_problem():
    """Gated crowds: most pairs infeasible, whole rows and columns without a candidate.
    Solving only the live rows and columns must give the optimum of the full problem,
    solved here by ``lap`` on the whole matrix (its total is the matched cost)."""
    import lap

    rng = np.random.default_rng(5)
    for _ in range(20):
        cost = rng.uniform(0, 1, (30, 25))
        cost[rng.uniform(size=cost.shape) > 0.08] = INF
        matches, rows, cols = linear_assignment(cost, 0.8)
        full = np.where(np.isfinite(cost), cost, 1.8)
        total, row_to_col, _ = lap.lapjv(full, extend_cost=True, cost_limit=0.8)
        assert 0 < len(matches) == (row_to_col >= 0).sum()
        assert cost[matches[:, 0], matches[:, 1]].sum() == pytest.approx(total)
        assert len(rows) + len(matches) == 30 and len(cols) + len(matches) == 25


@pytest.mark.parametrize(
    ("cost", "max_cost", "message"),
    [
        ([[np.nan]], 0.5, "NaN"),
        ([0.1, 0.2], 0.5, "2-D"),
        ([[0.1]], INF, "max_cost"),
        ([[0.1]], -1.0, "max_cost"),
    ],
)
def test_linear_assignment_rejects_bad_input(cost, max_cost, message):
    with pytest.raises(InputError, match=message):
        linear_assignment(np.array(cost, float), max_cost)
