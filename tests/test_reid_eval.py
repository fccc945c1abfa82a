"""ReID metrics on hand-made distances, the frame-gap protocol, and ``kpr-track eval-reid``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kpr_track.cli import main
from kpr_track.errors import ConfigError
from kpr_track.train.crop_cache import CropRecord
from kpr_track.train.evaluate import rank_metrics, valid_pairs


def test_map_and_cmc_on_a_hand_made_distance_matrix():
    distance = np.array(
        [
            [0.1, 0.2, 0.3, 0.4, 0.5],  # ranking a b c d e
            [0.9, 0.1, 0.8, 0.2, 0.3],  # ranking b d e c a
            [0.5, 0.5, 0.5, 0.5, 0.5],  # no true match: not scored
        ]
    )
    gallery = np.array(["x", "y", "x", "z", "y"])
    query = np.array(["x", "z", "w"])
    metrics = rank_metrics(distance, query, gallery)
    # q0: true matches at ranks 1 and 3 -> AP (1 + 2/3) / 2; q1: match at rank 2 -> AP 1/2.
    assert metrics["mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)
    assert metrics["rank1"] == pytest.approx(0.5) and metrics["rank5"] == pytest.approx(1.0)
    assert metrics["queries"] == 2 and metrics["queries_without_match"] == 1
    valid = np.ones_like(distance, bool)
    valid[0, 0] = False  # ignore q0's nearest match: its first match is now at rank 2
    masked = rank_metrics(distance, query, gallery, valid)
    assert masked["rank1"] == 0.0 and masked["mAP"] == pytest.approx((0.5 + 0.5) / 2)


def record(identity: str, frame: int, camera: str = "v") -> CropRecord:
    empty = np.zeros((0, 17, 3), np.float32)
    return CropRecord(None, np.zeros((17, 3)), empty, identity, camera, frame, "gallery", frame)


def test_valid_pairs_drop_neighbouring_frames_of_the_same_identity():
    query = [record("a", 100)]
    gallery = [record("a", 90), record("a", 140), record("b", 100), record("a", 100, "w")]
    assert valid_pairs(query, gallery, 30).tolist() == [[False, True, True, True]]
    assert valid_pairs(query, gallery, float("inf")).tolist() == [[False, False, True, True]]
    assert valid_pairs(query, gallery, 0).tolist() == [[True, True, True, True]]
    everything = valid_pairs(query, gallery, 30, "occluded-posetrack")
    assert everything.tolist() == [[True, True, True, True]]
    with pytest.raises(ConfigError, match="protocol"):
        valid_pairs(query, gallery, 30, "market")


def test_eval_reid_cli_prints_the_ablation_table(mot17_reid_split, tmp_path, capsys):
    root, summary = mot17_reid_split
    out = tmp_path / "reid.json"
    vis = tmp_path / "vis"
    code = main(
        ["eval-reid", str(root), "--weights", "none", "--min-frame-gap", "0", "--height", "128",
         "--width", "64", "--out", str(out), "--visrank", "3", "--visrank-dir", str(vis),
         "--protocol", "occluded-posetrack"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert f"{summary.query} queries, {summary.gallery} gallery samples" in printed
    assert "protocol occluded-posetrack" in printed
    assert "| retail-0287 global embedding (untouched) |" in printed
    report = json.loads(out.read_text())
    assert report["protocol"] == "occluded-posetrack"
    rows = report["rows"]
    assert "pose-guided parts (retail-0287), no negatives" in rows
    assert "global embedding (ImageNet MobileNetV2)" in rows and len(rows) == 6
    for metrics in rows.values():
        assert 0.0 < metrics["mAP"] <= 1.0 and metrics["queries"] == summary.query
        assert metrics["occluded_queries"] == -(-summary.query // 3)
    pngs = sorted(vis.glob("*.png"))
    assert len(pngs) == summary.query


def test_eval_reid_cli_reports_a_missing_split(tmp_path, capsys):
    assert main(["eval-reid", str(tmp_path), "--weights", "none"]) == 2
    assert "val_dataset_sampling.json: split file not found" in capsys.readouterr().err
