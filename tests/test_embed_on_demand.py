"""Embeddings on demand: KPRTracker.appearance_targets and the pipeline that follows it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_tracker import CALIBRATION, box_at, frame, unit

from kpr_track.errors import ConfigError
from kpr_track.trackers import KPRTracker, load_tracker

ON_DEMAND = {"embed_refresh_s": 0.25, "embed_margin": 0.4, "embed_min_iou": 0.7}


def _looks(count: int, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=(count, 3, 16)))


def _step(tracker: KPRTracker, boxes, looks) -> tuple[np.ndarray, np.ndarray]:
    """One frame as the pipeline runs it: ask, embed only those, update."""
    found = frame(boxes, embeddings=looks, visibility=np.ones(looks.shape[:2]))
    targets = tracker.appearance_targets(found)
    return targets, tracker.update(found.only_embedded(targets))


def test_a_clear_continuation_skips_the_crop_until_its_memory_is_stale():
    tracker = KPRTracker(**ON_DEMAND, frame_rate=30.0, calibration=CALIBRATION)
    looks = _looks(1)
    asked = [bool(_step(tracker, [box_at(100 + 2 * t)], looks)[0][0]) for t in range(40)]
    assert asked[0]  # birth
    refresh = round(0.25 * 30)  # 8 frames
    gaps = np.diff(np.flatnonzero(asked))
    assert sum(asked) < 40 / 2 and gaps.max() <= refresh
    track = tracker.tracks[0]
    assert track.track_id == 1 and track.age - track.remembered_age < refresh


def test_off_by_default_and_for_low_scores():
    tracker = KPRTracker(calibration=CALIBRATION, frame_rate=30.0)
    looks = _looks(1)
    assert all(_step(tracker, [box_at(100 + t)], looks)[0][0] for t in range(12))
    on_demand = KPRTracker(**ON_DEMAND, calibration=CALIBRATION, frame_rate=30.0)
    found = frame([box_at(100)], scores=[0.3])
    assert not on_demand.appearance_targets(found)[0]  # below high_score: never read


def test_contested_pairs_are_embedded():
    tracker = KPRTracker(**ON_DEMAND, frame_rate=30.0, calibration=CALIBRATION, min_hits=1)
    looks = _looks(2)
    for _ in range(6):  # two people standing, far apart: settled, crops skipped
        targets, _ = _step(tracker, [box_at(100), box_at(400)], looks)
    assert not targets.any()
    # A third detection overlapping the first person's: that pair is no longer clear.
    targets, _ = _step(tracker, [box_at(100), box_at(400), box_at(106)], _looks(3))
    assert targets[0] and targets[2] and not targets[1]


def test_a_lost_track_is_no_candidate_but_its_return_is_embedded():
    """The person at 136 goes unseen: its predicted box still overlaps (IoU 0.05) the first
    person's detection, which its own track matches clearly, so that crop is skipped; when
    the lost person reappears, no live track matches the detection and it is embedded (a
    re-find reads appearance)."""
    tracker = KPRTracker(**ON_DEMAND, frame_rate=30.0, calibration=CALIBRATION, min_hits=1)
    looks = _looks(2)
    for _ in range(6):
        _step(tracker, [box_at(100), box_at(136)], looks)
    _step(tracker, [box_at(100)], looks[:1])  # the other one is missed: lost
    assert [t.time_since_update for t in tracker.tracks] == [0, 1]
    assert not tracker.appearance_targets(frame([box_at(100)]))[0]
    assert tracker.appearance_targets(frame([box_at(100), box_at(136)])).tolist() == [False, True]


def test_crossing_people_keep_their_identities_with_crops_on_demand():
    """The crossing of test_tracker (motion alone swaps the two): with embeddings on
    demand the crops far from the meeting are skipped and the identities still hold."""
    tracker = KPRTracker(**ON_DEMAND, appearance_weight=0.5, calibration=CALIBRATION)
    looks = _looks(2)
    path = [3.0 * t for t in range(8)] + [3.0 * t for t in range(8, -1, -1)]
    asked = 0
    for step in path:
        targets, ids = _step(tracker, [box_at(100 + step), box_at(148 - step)], looks)
        asked += targets.sum()
        assert ids.tolist() == [1, 2]
    assert asked < 2 * len(path)


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="embed_refresh_s"):
        KPRTracker(embed_refresh_s=-1.0)
    with pytest.raises(ConfigError, match="embed_margin"):
        KPRTracker(embed_margin=1.5)


def test_the_pipeline_embeds_only_what_the_tracker_asks(pets_video, pose_detector):
    """PETS09 public detections, 30 frames, shipped kpr preset: fewer crops than the
    every-detection run, zeros for the others, the same id wherever both runs output a
    detection (no identity changes) and as many output rows within 5 % (a pair matched on
    motion alone may differ from its appearance-weighted cost for a frame)."""
    from test_pipeline import _frames

    from kpr_track.detectors.base import build_detector
    from kpr_track.pipeline import TrackingPipeline
    from kpr_track.reid import build_reid

    det_txt = pets_video.parent / "det" / "det.txt"
    appearance = build_reid("kpr")
    crops = []

    def counted(frame_bgr, detections, targets):
        crops.append(int(np.sum(targets)))
        return appearance(frame_bgr, detections, targets)

    preset = dataclasses.asdict(load_tracker("kpr").config)
    assert preset["embed_refresh_s"] > 0  # on in the shipped preset

    def run(settings):
        tracker = KPRTracker(**settings, frame_rate=7.0, calibration=appearance.calibration)
        detector = build_detector(f"mot:{det_txt}", pose=pose_detector.pose_on_boxes)
        crops.clear()
        results = list(TrackingPipeline(detector, counted, tracker).run(_frames(pets_video, 30)))
        return results, sum(crops)

    (every, all_crops), (needed, few_crops) = run(preset | {"embed_refresh_s": 0.0}), run(preset)
    assert few_crops < 0.9 * all_crops
    rows_a = rows_b = 0
    for (_, _, _, ids_a), (_, _, det_b, ids_b) in zip(every, needed, strict=True):
        both = (ids_a >= 0) & (ids_b >= 0)
        np.testing.assert_array_equal(ids_a[both], ids_b[both])
        rows_a, rows_b = rows_a + int((ids_a >= 0).sum()), rows_b + int((ids_b >= 0).sum())
        skipped = det_b.visibility.sum(axis=1) == 0
        assert (det_b.embeddings[skipped] == 0).all()
    assert abs(rows_a - rows_b) <= 0.05 * rows_a
