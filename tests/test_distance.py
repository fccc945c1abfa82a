"""The part-visibility distance (BPBReID Sec. 3.5) on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from kpr_track.errors import InputError
from kpr_track.reid.distance import part_distance


def _unit(*vectors):
    v = np.array(vectors, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


E1, E2, E3 = _unit([1, 0, 0], [0, 1, 0], [0, 0, 1])


def _sample(*slots):
    return np.stack(slots)[None]  # (1, P, D)


@pytest.mark.parametrize(
    ("q_vis", "g_vis", "expected"),
    [
        # only slot 0 mutually visible: identical there -> 0
        ([1, 1, 0], [1, 0, 1], 0.0),
        # only slot 1 mutually visible: orthogonal -> sqrt(2) / 2
        ([0, 1, 1], [0, 1, 0], np.sqrt(2) / 2),
        # slots 0 and 1: mean of 0 and sqrt(2), halved
        ([1, 1, 0], [1, 1, 0], np.sqrt(2) / 4),
        # soft visibility: weights sqrt(vq vg) = 0.5 (slot 0, d=0) and 1 (slot 1, d=sqrt 2)
        ([0.25, 1, 0], [1, 1, 0], (1.0 * np.sqrt(2)) / 1.5 / 2),
    ],
)
def test_only_mutually_visible_parts_count(q_vis, g_vis, expected):
    query = _sample(E1, E1, E3)
    gallery = _sample(E1, E2, -E3)  # slot 2 would give the largest distance (2)
    dist, comparable = part_distance(
        query, np.array([q_vis], np.float32), gallery, np.array([g_vis], np.float32)
    )
    assert comparable.tolist() == [[True]]
    assert dist[0, 0] == pytest.approx(expected, abs=1e-6)


def test_no_common_part_is_farther_than_everything_and_never_nan():
    query = np.stack([_sample(E1, E2)[0], _sample(E1, E2)[0]])  # (2, 2, 3)
    gallery = np.stack([_sample(E2, E1)[0]])  # (1, 2, 3)
    q_vis = np.array([[1, 0], [1, 1]], np.float32)
    g_vis = np.array([[0, 1]], np.float32)
    dist, comparable = part_distance(query, q_vis, gallery, g_vis)
    assert comparable.tolist() == [[False], [True]]
    assert dist[1, 0] == pytest.approx(np.sqrt(2) / 2, abs=1e-6)
    assert dist[0, 0] == pytest.approx(1 + dist[1, 0], abs=1e-6)
    assert np.isfinite(dist).all()


def test_nothing_comparable_gives_distance_one():
    dist, comparable = part_distance(_sample(E1), np.zeros((1, 1)), _sample(E1), np.ones((1, 1)))
    assert not comparable.any() and dist[0, 0] == 1.0


def test_batched_matches_pairwise():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(7, 9, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=-1, keepdims=True)
    vis = (rng.random((7, 9)) > 0.4).astype(np.float32)
    vis[:, 0] = 1
    dist, _ = part_distance(emb[:3], vis[:3], emb[3:], vis[3:])
    for q in range(3):
        for g in range(4):
            w = vis[q] * vis[3 + g]
            per = np.linalg.norm(emb[q] - emb[3 + g], axis=-1)
            assert dist[q, g] == pytest.approx((w * per).sum() / w.sum() / 2, abs=1e-5)
    assert dist.shape == (3, 4) and dist.dtype == np.float32


def test_shape_mismatch_is_an_input_error():
    with pytest.raises(InputError, match="visibility"):
        part_distance(_sample(E1, E2), np.ones((1, 3)), _sample(E1, E2), np.ones((1, 2)))
    with pytest.raises(InputError, match="embeddings"):
        part_distance(_sample(E1, E2), np.ones((1, 2)), _sample(E1), np.ones((1, 1)))
