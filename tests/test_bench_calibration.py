"""Benchmark calibrations: ground-truth identities of cached detections and the fitted map."""

from __future__ import annotations

import numpy as np
from conftest import shared_path

from kpr_track.cli_bench import load_benchmark
from kpr_track.reid.calibration import DistanceCalibration

cache_module = load_benchmark("detection_cache")
pairs = load_benchmark("calibration_pairs")
SEQUENCE = ("data", "MOT17-mini", "train", "MOT17-09-FRCNN")


def _gt_cache(seq_dir, noise: float = 0.2):
    """A cache whose detections are MOT17-09's ground-truth boxes (4 frames, consider flag set),
    shifted by 1 px, with one 8-d embedding per identity plus Gaussian noise."""
    rows = np.loadtxt(seq_dir / "gt" / "gt.txt", delimiter=",")
    rows = rows[(rows[:, 6] != 0) & (rows[:, 7] == 1)]
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    frames = np.unique(rows[:, 0]).astype(np.int64)
    counts = [int((rows[:, 0] == f).sum()) for f in frames]
    boxes = np.c_[rows[:, 2:4] + 1, rows[:, 2:4] + rows[:, 4:6] + 1].astype(np.float32)
    rng = np.random.default_rng(0)
    identity = rng.normal(size=(int(rows[:, 1].max()) + 1, 8))
    embeddings = identity[rows[:, 1].astype(int)] + noise * rng.normal(size=(len(rows), 8))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    cache = cache_module.DetectionCache(
        frame_ids=frames,
        offsets=np.r_[0, np.cumsum(counts)].astype(np.int64),
        boxes=boxes,
        scores=np.ones(len(rows), np.float32),
        keypoints=np.zeros((len(rows), 17, 3), np.float32),
        appearance={"retail": (embeddings[:, None].astype(np.float32), np.ones((len(rows), 1)))},
    )
    return cache, rows[:, 1].astype(np.int64)


def test_cached_detections_get_their_ground_truth_identity():
    seq_dir = shared_path(*SEQUENCE)
    cache, truth = _gt_cache(seq_dir)
    np.testing.assert_array_equal(pairs.gt_identities(cache, seq_dir), truth)


def test_calibration_separates_same_and_different_identities():
    seq_dir = shared_path(*SEQUENCE)
    cache, _ = _gt_cache(seq_dir)
    same, different = pairs.pair_distances(cache, seq_dir, "retail", gap=2, step=1)
    assert len(same) > 10 and len(different) > 10
    calibration = pairs.slot_calibration(cache, seq_dir, "retail", gap=2, step=1)
    assert calibration.same_median < calibration.midpoint < calibration.different_median
    assert calibration.same_probability(np.median(same)) > 0.5
    assert calibration.same_probability(np.median(different)) < 0.5


def test_a_calibration_stored_by_the_model_is_used_as_shipped():
    seq_dir = shared_path(*SEQUENCE)
    cache, _ = _gt_cache(seq_dir)
    shipped = DistanceCalibration(0.42, 12.0, 0.3, 0.6, "shipped with the model")
    cache.meta["calibration"] = {"retail": shipped.to_json()}
    assert pairs.slot_calibration(cache, seq_dir, "retail") == shipped
