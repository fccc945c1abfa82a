"""Evaluation rules: IoU, PoseTrack21 pre-filters, labelled frames, the filters switch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from test_readers_posetrack import (
    image_id,
    person_keypoints,
    posetrack21_video,
    tracks_from,
    write_json,
    write_posetrack_mot,
)

from kpr_track.errors import InputError
from kpr_track.evaluation.evaluate import evaluate
from kpr_track.evaluation.filters import box_iou, posetrack21_filters
from kpr_track.evaluation.sequence import GroundTruth, SequenceData, Tracks


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 10, 10], 50 / 150),
        ([0, 0, 10, 10], [2, 2, 5, 5], 25 / 100),
        ([0, 0, 10, 10], [10, 0, 10, 10], 0.0),
        ([0, 0, 0, 10], [0, 0, 10, 10], 0.0),
    ],
)
def test_box_iou(a, b, iou):
    result = box_iou(np.array([a], float), np.array([b], float))
    assert result.shape == (1, 1) and result[0, 0] == pytest.approx(iou)


def tracks(rows: list[tuple[int, int, list[float]]], keypoints=None) -> Tracks:
    """Tracks from (frame, id, box) rows."""
    return Tracks(
        frames=np.array([r[0] for r in rows], np.int64),
        ids=np.array([r[1] for r in rows], np.int64),
        boxes=np.array([r[2] for r in rows], float).reshape(-1, 4),
        scores=np.ones(len(rows)),
        keypoints=keypoints,
    )


def sequence(gt_rows, pred: Tracks, regions=None, num_frames: int = 4) -> SequenceData:
    gt = GroundTruth(
        name="seq",
        num_frames=num_frames,
        tracks=tracks(gt_rows),
        protocol="PoseTrack21",
        source=Path("seq.json"),
        labeled=np.ones(num_frames, bool),
        ignore_regions=regions or {},
    )
    return SequenceData(gt=gt, pred=pred, pred_source=Path("tracks.json"))


def test_keypoints_below_threshold_are_zeroed_and_sparse_poses_dropped():
    keypoints = np.zeros((6, 17, 3))
    keypoints[..., :2] = 50.0
    keypoints[..., 2] = 0.2
    keypoints[:3, :3, 2] = 0.9  # track 1: three confident keypoints per frame
    keypoints[3:, :2, 2] = 0.9  # track 2: only two
    box = [10.0, 10.0, 50.0, 100.0]
    pred = tracks([(f, 1, box) for f in (1, 2, 3)] + [(f, 2, box) for f in (1, 2, 3)], keypoints)
    kept = posetrack21_filters(sequence([], pred)).pred
    assert kept.ids.tolist() == [1, 1, 1]
    assert (kept.keypoints[:, 3:] == 0).all()  # (x, y, score) zeroed, not just the score
    np.testing.assert_allclose(kept.keypoints[:, :3, 2], 0.9)
    np.testing.assert_allclose(pred.keypoints[0, 3:, 2], 0.2)  # input left untouched


def test_tracks_shorter_than_three_frames_are_dropped():
    box = [0.0, 0.0, 10.0, 10.0]
    pred = tracks([(1, 5, box), (2, 5, box), (1, 6, box), (2, 6, box), (4, 6, box)])
    assert posetrack21_filters(sequence([], pred)).pred.ids.tolist() == [6, 6, 6]
    assert len(posetrack21_filters(sequence([], pred), min_track_length=2).pred) == 5


def _ignore_region_case():
    region = np.array([[100, 0], [200, 0], [200, 100], [100, 100]], float)
    gt_box = [110.0, 10.0, 40.0, 80.0]  # a person annotated inside the region
    pred = tracks(
        [
            (1, 1, [112.0, 10.0, 40.0, 80.0]),  # matches the gt: kept by both rules
            (1, 2, [150.0, 10.0, 40.0, 80.0]),  # unmatched, all inside (region IoU 0.32)
            (1, 3, [180.0, 10.0, 40.0, 80.0]),  # half inside (region IoU 0.14)
            (1, 4, [190.0, 10.0, 40.0, 80.0]),  # a quarter inside (region IoU 0.07)
            (1, 5, [160.0, 40.0, 10.0, 20.0]),  # small box, all inside (region IoU 0.02)
            (2, 2, [150.0, 10.0, 40.0, 80.0]),  # frame without regions: kept
        ]
        + [(3, i, [0.0, 0.0, 1.0, 1.0]) for i in (1, 2, 3, 4, 5)]  # long enough tracks
        + [(4, i, [0.0, 0.0, 1.0, 1.0]) for i in (1, 3, 4, 5)]
    )
    return sequence([(1, 7, gt_box)], pred, regions={1: [region]})


@pytest.mark.parametrize(
    ("options", "kept_ids"),
    [
        ({}, [1, 4, 5]),  # official: region IoU > 0.1 dropped; the small box survives
        ({"ignore_rule": "official", "ignore_iou": 0.2}, [1, 3, 4, 5]),
        ({"ignore_rule": "area-share"}, [1, 4]),  # at least half the box inside
        ({"ignore_rule": "area-share", "ignore_overlap": 0.3}, [1, 4]),
        ({"ignore_rule": "area-share", "ignore_overlap": 0.2}, [1]),
    ],
)
def test_unmatched_predictions_in_ignore_regions_are_dropped(options, kept_ids):
    kept = posetrack21_filters(_ignore_region_case(), **options).pred
    assert kept.ids[kept.frames == 1].tolist() == kept_ids
    assert 2 in kept.ids[kept.frames == 2]


def test_unknown_ignore_rule_is_an_error():
    with pytest.raises(InputError, match="ignore_rule"):
        posetrack21_filters(_ignore_region_case(), ignore_rule="strict")


def fixture_paths(tmp_path: Path, results: dict) -> tuple[Path, Path]:
    video = posetrack21_video()
    gt = write_json(tmp_path / "posetrack_data" / "val" / "000001_bonn_test.json", video)
    return gt, write_json(tmp_path / "tracks.json", results)


def test_posetrack21_evaluation_with_and_without_filters(tmp_path):
    results = tracks_from(posetrack21_video())
    extra = [  # box, frame index, track id
        ([320.0, 10.0, 60.0, 80.0], 1, 7),  # inside the ignore region of frame 2
        ([330.0, 10.0, 60.0, 80.0], 2, 7),  # unlabelled frame 3: never scored
        ([340.0, 10.0, 60.0, 80.0], 3, 7),  # inside the ignore region of frame 4
        ([700.0, 10.0, 60.0, 80.0], 3, 9),  # a track of one frame
    ]
    for box, index, track_id in extra:
        keypoints, scores = person_keypoints(box)
        results["annotations"].append(
            {
                "bbox": box,
                "image_id": image_id(index),
                "keypoints": keypoints,
                "scores": scores,
                "track_id": track_id,
            }
        )
    gt, pred = fixture_paths(tmp_path, results)
    filtered = evaluate([gt], [pred])["combined"]
    for name in ("HOTA", "MOTA", "IDF1"):
        assert filtered[name] == pytest.approx(1.0), name
    assert (filtered["gt_dets"], filtered["pred_dets"], filtered["gt_ids"]) == (8, 8, 2)
    unfiltered = evaluate([gt], [pred], filters=False)["combined"]
    assert (unfiltered["FP"], unfiltered["pred_dets"]) == (3, 11)  # frame 3 still ignored
    assert unfiltered["MOTA"] == pytest.approx(1 - 3 / 8)

    # The same results scored on the posetrack_mot layout of the same video.
    seq = write_posetrack_mot(tmp_path / "mot", posetrack21_video())
    assert evaluate([seq], [pred])["combined"] == filtered


def test_low_scores_remove_a_person(tmp_path):
    results = tracks_from(posetrack21_video())
    for annotation in results["annotations"]:
        if annotation["track_id"] == 1:
            annotation["scores"] = [0.9, 0.9] + [0.1] * 15  # two keypoints survive
    gt, pred = fixture_paths(tmp_path, results)
    result = evaluate([gt], [pred])["combined"]
    assert (result["TP"], result["FN"], result["FP"]) == (4, 4, 0)
    assert evaluate([gt], [pred], filters=False)["combined"]["FN"] == 0


def test_posetrack18_sample_end_to_end(tmp_path):
    folder = shared_path("data", "posetrack18-sample", "annotations", "val")
    gts = sorted(folder.glob("*.json"))
    preds = []
    for gt in gts:
        results = tracks_from(json.loads(gt.read_text()), score=0.95)
        preds.append(write_json(tmp_path / gt.name, results))
    unfiltered = evaluate(gts, preds, filters=False)
    assert set(unfiltered["sequences"]) == {gt.stem for gt in gts}
    assert unfiltered["combined"]["gt_dets"] == 1 + 2 + 11
    assert unfiltered["combined"]["HOTA"] == pytest.approx(1.0)
    # One labelled frame per video: every track is shorter than 3 frames.
    filtered = evaluate(gts, preds)["combined"]
    assert (filtered["TP"], filtered["FN"], filtered["HOTA"]) == (0, 14, 0.0)
