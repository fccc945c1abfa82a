"""Detection scores discounted by pose evidence (trackers/scores.py): the formula, the
tracker's thresholds reading them, and what they do to real yolo11n-pose detections."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import mot_gt_boxes, read_video_frame, shared_path

from kpr_track.boxes import box_iou
from kpr_track.detections import Detections
from kpr_track.errors import ConfigError
from kpr_track.trackers import KPRTracker
from kpr_track.trackers.scores import PoseDiscount


def posed(scores, confidences) -> Detections:
    """Detections side by side whose 17 joints all have the given confidence."""
    n = len(scores)
    keypoints = np.zeros((n, 17, 3), np.float32)
    keypoints[:, :, 2] = np.asarray(confidences, np.float32)[:, None]
    boxes = np.array([[100.0 * i, 0, 100.0 * i + 40, 100] for i in range(n)], np.float32)
    return Detections(boxes, np.asarray(scores, np.float32), keypoints)


def test_the_discount_follows_the_formula_and_never_raises_a_score():
    detections = posed([0.8, 0.8, 0.4, 0.4], [0.9, 0.75, 0.375, 0.0])
    assert PoseDiscount(0.0, 0.75)(detections) is detections.scores
    # s * min(1, c / 0.75) ** 2: confident poses keep their score, half the reference
    # confidence keeps a quarter of it, no joint found keeps nothing.
    expected = [0.8, 0.8, 0.1, 0.0]
    np.testing.assert_allclose(PoseDiscount(2.0, 0.75)(detections), expected, atol=1e-6)


def test_scores_from_below_are_trusted_as_they_are():
    detections = posed([0.9, 0.4, 0.39, 0.2], [0.0, 0.0, 0.375, 0.375])
    # at and above 0.4 the detector's score stands; below it, s * (0.375 / 0.75) ** 2
    expected = [0.9, 0.4, 0.0975, 0.05]
    np.testing.assert_allclose(PoseDiscount(2.0, 0.75, 0.4)(detections), expected, atol=1e-6)
    tracker = KPRTracker(min_hits=1, pose_score_weight=2.0, pose_score_below=0.4)
    assert (tracker.update(posed([1.0, 1.0], [0.0, 0.8])) > 0).all()  # flag scores, occluded


def test_box_only_detections_keep_their_scores_with_one_warning(caplog):
    """A detector that gives no keypoints (no top-down pose) must not lose every box."""
    tracker = KPRTracker(min_hits=1, pose_score_weight=2.0)
    boxes = posed([0.9, 0.9], [0.0, 0.0])
    with caplog.at_level("WARNING", logger="kpr_track.trackers.scores"):
        assert (tracker.update(boxes) > 0).all()
        tracker.update(boxes)
    assert len(caplog.records) == 1 and "carry none" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("setting", "value"), [("pose_score_weight", -1.0), ("pose_score_weight", float("nan")),
                           ("pose_score_reference", 0.0), ("pose_score_reference", 1.5),
                           ("pose_score_below", -0.1), ("pose_score_below", float("nan"))]
)  # fmt: skip
def test_out_of_range_pose_settings_are_config_errors_naming_them(setting, value):
    with pytest.raises(ConfigError, match=setting):
        KPRTracker(**{setting: value})


def test_a_box_without_a_pose_starts_no_track_and_is_not_embedded():
    """Both detections score above every threshold; with the discount on, only the one
    whose joints the pose model found starts a track and is asked for an embedding."""
    detections = posed([0.9, 0.9], [0.8, 0.05])
    plain = KPRTracker(min_hits=1)
    assert not plain.uses_keypoints
    assert (plain.update(detections) > 0).tolist() == [True, True]
    tracker = KPRTracker(min_hits=1, pose_score_weight=2.0)
    assert tracker.uses_keypoints
    assert tracker.appearance_targets(detections).tolist() == [True, False]
    assert (tracker.update(detections) > 0).tolist() == [True, False]


def test_pose_evidence_keeps_the_low_scoring_people_and_drops_clutter(pose_detector):
    """yolo11n-pose on 20 frames of MOT17-02 (a street scene whose low scores are mostly
    clutter): of the detections scoring 0.05-0.4, those the discount (weight 2) leaves
    at least half their score are three times as often a person (IoU >= 0.5 with a
    ground-truth box), most people among them are kept and most clutter is not.
    Measured: 12 of the 71 are people (17 %); 17 are kept, 9 of them people (53 %); of the
    people scoring >= 0.5, 87 of 92 keep at least half their score."""
    video = shared_path("data", "MOT17-02-raw540", "video.mp4")
    gt = shared_path("data", "MOT17-02-raw540", "gt", "gt.txt")
    scores, discounted, person = [], [], []
    for index in range(0, 600, 30):
        found = pose_detector.detect(read_video_frame(video, index), index + 1)
        _, truth = mot_gt_boxes(gt, index + 1)
        person.append(box_iou(found.boxes[:, None], truth[None]).max(axis=1) >= 0.5)
        scores.append(found.scores)
        discounted.append(PoseDiscount(2.0, 0.75)(found))
    scores, discounted, person = map(np.concatenate, (scores, discounted, person))
    low = (scores >= 0.05) & (scores < 0.4)
    kept = low & (discounted >= 0.5 * scores)
    assert low.sum() >= 40 and (low & person).sum() >= 8
    assert person[kept].mean() >= 2.5 * person[low].mean()
    assert (kept & person).sum() >= 0.7 * (low & person).sum()
    assert (kept & ~person).sum() <= 0.2 * (low & ~person).sum()
    high = (scores >= 0.5) & person  # confidently detected people keep their score
    assert (discounted[high] >= 0.5 * scores[high]).mean() >= 0.9


@pytest.mark.parametrize(("weight", "posed_boxes"), [(0.0, False), (2.0, True)])
def test_the_pipeline_runs_top_down_pose_on_box_detections_when_the_tracker_reads_it(
    tmp_path, weight, posed_boxes
):
    """Public det.txt boxes carry no keypoints: a motion-only tracker whose thresholds
    read pose evidence gets them from top-down pose, one that does not gets none."""
    from kpr_track.pipeline import TrackOptions, build_pipeline

    preset = tmp_path / "posed.yaml"
    preset.write_text(f"tracker: kpr\nappearance_weight: 0.0\npose_score_weight: {weight}\n")
    det = shared_path("data", "PETS09-S2L1", "det", "det.txt")
    options = TrackOptions(det=f"mot:{det}", tracker=str(preset), reid="none")
    pipeline = build_pipeline(options, frame_rate=7.0)
    assert pipeline.tracker.uses_keypoints is posed_boxes
    assert (pipeline.detector.pose is not None) is posed_boxes
