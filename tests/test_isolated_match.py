"""The isolated round (``isolated_match_iou``): leftover pairs that overlap only each other."""

from __future__ import annotations

import numpy as np
import pytest
from test_tracker import box_at, frame

from kpr_track.detections import Detections
from kpr_track.errors import ConfigError
from kpr_track.trackers import KPRTracker, TrackState
from kpr_track.trackers.assignment import isolated_pairs


def test_isolated_pairs_keep_only_mutually_unique_overlaps():
    overlap = np.array(
        [
            [0.8, 0.0, 0.0, 0.0],  # alone with detection 0
            [0.0, 0.5, 0.4, 0.0],  # two detections: ambiguous
            [0.0, 0.0, 0.0, 0.35],  # shares detection 3 with the next track
            [0.0, 0.0, 0.0, 0.6],
            [0.0, 0.0, 0.0, 0.2],  # below the threshold: no vote
        ]
    )
    assert isolated_pairs(overlap, 0.3).tolist() == [[0, 0]]
    assert isolated_pairs(overlap, 0.45).tolist() == [[0, 0], [1, 1], [3, 3]]
    assert isolated_pairs(np.zeros((0, 3)), 0.3).shape == (0, 2)


def _lost_then(detections: Detections, isolated_match_iou: float) -> tuple[list[int], KPRTracker]:
    """A confirmed track at x = 0, missed for one frame, then ``detections``."""
    tracker = KPRTracker(
        high_score=0.5,
        low_score=0.1,
        new_track_score=0.6,
        isolated_match_iou=isolated_match_iou,
        frame_rate=30.0,
    )
    tracker.update(frame([box_at(0)], [0.9]))
    tracker.update(Detections.empty())
    assert tracker.tracks[0].state == TrackState.LOST
    return tracker.update(detections).tolist(), tracker


@pytest.mark.parametrize(("isolated_match_iou", "refound"), [(0.0, False), (0.3, True)])
def test_a_lost_track_takes_the_low_score_detection_only_it_overlaps(isolated_match_iou, refound):
    """ByteTrack's low-score round serves tracked tracks only (``lost_low_match_cost`` 0):
    the lost track stays lost unless the isolated round pairs it with the one detection on
    its spot."""
    ids, tracker = _lost_then(frame([box_at(2)], [0.3]), isolated_match_iou)
    assert (ids == [1]) is refound
    assert (tracker.tracks[0].state == TrackState.CONFIRMED) is refound


def test_two_candidates_or_a_score_below_low_score_leave_the_track_lost():
    ids, tracker = _lost_then(frame([box_at(-6), box_at(6)], [0.3, 0.3]), 0.3)
    assert ids == [-1, -1] and tracker.tracks[0].state == TrackState.LOST
    ids, tracker = _lost_then(frame([box_at(2)], [0.05]), 0.3)
    assert ids == [-1] and tracker.tracks[0].state == TrackState.LOST


def test_a_detection_two_tracks_overlap_is_left_to_neither():
    """Two confirmed tracks side by side, both missed; one low-score detection between them
    overlaps both predicted boxes: no isolated pair, both stay lost."""
    tracker = KPRTracker(high_score=0.5, low_score=0.1, new_track_score=0.6, isolated_match_iou=0.3)
    tracker.update(frame([box_at(0), box_at(30)], [0.9, 0.9]))
    tracker.update(Detections.empty())
    assert tracker.update(frame([box_at(15)], [0.3])).tolist() == [-1]
    assert [t.state for t in tracker.tracks] == [TrackState.LOST, TrackState.LOST]


def test_isolated_match_iou_outside_the_unit_interval_is_a_config_error():
    with pytest.raises(ConfigError, match="isolated_match_iou"):
        KPRTracker(isolated_match_iou=1.5)


def _pets09_with_misses(pets_gt, isolated_match_iou: float) -> tuple[int, int, int]:
    """The ``motion`` preset on PETS09-S2L1's ground-truth boxes (150 frames, 7 fps) as a
    weak detector gives them: every person missed every 6th frame and scored 0.08 (between
    low_score and high_score) in the frame after. Returns ``(tracks output, ids given to a
    second person, boxes output)``."""
    from kpr_track.trackers import load_tracker

    rows = np.loadtxt(pets_gt, delimiter=",")
    rows = rows[(rows[:, 0] <= 150) & (rows[:, 6] != 0)]
    tracker = load_tracker("motion", {"isolated_match_iou": isolated_match_iou}, frame_rate=7.0)
    owners: dict[int, set[int]] = {}  # output id -> ground-truth ids it was given to
    output = 0
    for frame_id in range(1, 151):
        gt = rows[rows[:, 0] == frame_id]
        phase = (frame_id + gt[:, 1].astype(int)) % 6
        gt, phase = gt[phase != 0], phase[phase != 0]
        boxes = np.c_[gt[:, 2:4], gt[:, 2:4] + gt[:, 4:6]]
        found = frame(boxes, np.where(phase == 1, 0.08, 0.9))
        for gt_id, track_id in zip(gt[:, 1].astype(int), tracker.update(found), strict=True):
            if track_id >= 0:
                owners.setdefault(int(track_id), set()).add(int(gt_id))
                output += 1
    return len(owners), sum(len(g) - 1 for g in owners.values()), output


def test_isolated_leftovers_re_find_the_people_a_weak_detector_scores_low(pets_gt):
    """Real walks: after a missed frame a person comes back scoring low, which ByteTrack's
    rounds give no lost track. With the preset's isolated round the 8 people keep 8 tracks
    (10 without) and more of their boxes are output, with no more ids shared."""
    tracks_off, shared_off, output_off = _pets09_with_misses(pets_gt, 0.0)
    tracks_on, shared_on, output_on = _pets09_with_misses(pets_gt, 0.3)
    print(f"off: {tracks_off} tracks, {output_off} boxes; on: {tracks_on}, {output_on}")
    assert tracks_on == 8 < tracks_off
    assert output_on > 1.2 * output_off
    assert shared_on <= shared_off
