"""Slot fusion by calibrated evidence: fitted on real gallery-minimum pairs, the holistic
fallback, monotonicity, one function for ranking and tracking, and part visibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kpr_track.reid.calibration import DistanceCalibration, fit_calibration, part_evidence
from kpr_track.reid.distance import evidence_distance, slot_distances
from kpr_track.trackers.costs import appearance_slots


@pytest.fixture(scope="module")
def trained_pairs(mot17_reid_split):
    """The shipped trained KPR model on real MOT17-02 training crops: its embeddings,
    visibility and part areas, and the gallery-minimum pairs they give."""
    from kpr_track.reid.model import load_kpr_weights
    from kpr_track.train.calibrate import embed_with_areas, gallery_pairs
    from kpr_track.train.crop_cache import cached_records
    from kpr_track.train.evaluate import Variant
    from kpr_track.weights import resolve_weights

    root, _ = mot17_reid_split
    records = cached_records([root], "train", root / "crops", (256, 128))
    model = load_kpr_weights(resolve_weights("kpr-osnet-0287-mot17-02"))
    embeddings, visibility, areas, cells = embed_with_areas(Variant("t", model), records)
    pairs = gallery_pairs(embeddings, visibility, records, gap=1)
    return model, records, embeddings, visibility, areas, cells, pairs


def test_fit_on_real_pairs_is_monotone_and_falls_back_to_holistic(trained_pairs):
    from kpr_track.train.calibrate import fit_slots

    *_, (slot, shared, same, _) = trained_pairs
    assert same.any() and (~same).any() and shared[:, 1:].any()
    calibration = fit_slots(slot, shared, same, "MOT17-02 test split", "gallery-min-5")
    assert calibration.statistic == "gallery-min-5"
    assert calibration.same_median < calibration.different_median
    z = calibration.logit(slot, shared)
    assert z[same].mean() > z[~same].mean()
    # Monotone: a larger holistic or part distance never raises the evidence.
    farther = slot.copy()
    farther[:, 0] += 0.05
    assert (calibration.logit(farther, shared) < z).all()
    farther = slot.copy()
    farther[:, 1:] += 0.05
    assert (calibration.logit(farther, shared) <= z + 1e-12).all()
    # No shared part: exactly the holistic calibration.
    alone = shared.copy()
    alone[:, 1:] = False
    np.testing.assert_allclose(
        calibration.fused_probability(slot, alone), calibration.same_probability(slot[:, 0])
    )


def test_parts_that_carry_no_evidence_are_dropped():
    """Synthetic pairs whose part distances are noise: the fit is holistic only."""
    rng = np.random.default_rng(0)
    same = rng.normal(0.3, 0.05, 2000).clip(0, 1)
    different = rng.normal(0.55, 0.05, 2000).clip(0, 1)
    noise = (np.ones(2000), rng.uniform(0, 0.3, 2000))
    calibration = fit_calibration(
        same, different, "synthetic", same_parts=noise, different_parts=(noise[0], noise[1][::-1])
    )
    assert calibration.part_slope < 1.0
    informative = fit_calibration(
        same,
        different,
        "synthetic",
        same_parts=(np.ones(2000), rng.normal(0.05, 0.02, 2000)),
        different_parts=(np.ones(2000), rng.normal(0.15, 0.02, 2000)),
    )
    assert informative.part_slope > 10.0
    text = informative.to_json()
    assert DistanceCalibration.from_json(text) == informative
    legacy = '{"midpoint": 0.4, "slope": 20, "same_median": 0.3, "different_median": 0.5}'
    assert DistanceCalibration.from_json(legacy).part_slope == 0.0


def test_tracker_and_ranking_read_the_same_evidence(trained_pairs):
    """With a one-crop gallery, the tracker's per-slot statistic and p_same equal the
    eval-reid ranking's: one function for both."""
    from kpr_track.train.calibrate import fit_slots

    _, _, embeddings, visibility, *_, (slot, shared, same, _) = trained_pairs
    calibration = fit_slots(slot, shared, same, "MOT17-02", "gallery-min-5")
    q, g = embeddings[:6], embeddings[6:14]
    qv, gv = visibility[:6], visibility[6:14]
    ranking = evidence_distance(calibration, q, qv, g, gv)
    gallery = g[:, :, None]  # (T, P, 1, D): one stored embedding per slot
    tracked, both = appearance_slots(gallery, gv[:, :, None] > 0.5, q, qv)  # (T, N, P)
    distance, expected = slot_distances(q, qv, g, gv)
    np.testing.assert_array_equal(both.transpose(1, 0, 2), expected)
    np.testing.assert_allclose(
        np.where(expected, tracked.transpose(1, 0, 2), 0),
        np.where(expected, distance, 0),
        atol=1e-5,
    )
    p_same = calibration.fused_probability(tracked, both).T
    np.testing.assert_allclose(p_same, 1 / (1 + np.exp(ranking)), atol=1e-4)
    share, _ = part_evidence(distance, expected)
    assert share.shape == (6, 8)


def test_part_visibility_needs_its_minimum_area(trained_pairs, mot17_reid_split):
    """A learned part is visible only on at least ``min_part_area`` of the map's cells."""
    from kpr_track.train.evaluate import prepare_inputs

    model, records, _, visibility, areas, cells, _ = trained_pairs
    assert cells == 128  # 16 x 8 for 256 x 128 crops
    np.testing.assert_array_equal(visibility[:, 1:], areas > 0)  # KPR's one-cell rule
    images, prompts = prepare_inputs(records[:16], model, True)
    small = (areas[:16] > 0) & (areas[:16] < 4 / cells)
    assert small.any(), "some real parts win fewer than 4 cells"
    model.min_part_area = 4 / cells - 1e-6
    try:
        with torch.inference_mode():
            strict = model(images, prompts).visibility[:, 1:].numpy()
    finally:
        model.min_part_area = 0.0
    np.testing.assert_array_equal(strict, areas[:16] >= 4 / cells - 1e-6)
    assert strict.sum() < visibility[:16, 1:].sum()


def test_shipped_kpr_carries_its_fusion_and_visibility_threshold():
    """``--reid kpr`` ships the calibration of the tracker's statistic, fitted on the
    training identities of the three training sequences, and its visibility threshold."""
    from kpr_track.reid.registry import REID_MODELS, reid_calibration
    from kpr_track.train.calibrate import AREA_CELLS

    model = REID_MODELS["kpr"].model()
    calibration = reid_calibration("kpr", model)
    assert calibration.statistic == "gallery-min-5"
    for name in ("MOT17-02", "MOT20-01", "MOT16-04-first50"):
        assert name in calibration.source
    assert "PETS09" not in calibration.source
    assert round(model.min_part_area * 128) in AREA_CELLS
    assert reid_calibration("kpr-global").statistic == "gallery-min-5"
