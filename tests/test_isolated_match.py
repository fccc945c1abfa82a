"""The isolated round (``isolated_match_iou``): leftover pairs that overlap only each other."""

from __future__ import annotations

import numpy as np
import pytest

from kpr_track.detections import Detections
from kpr_track.errors import ConfigError
from kpr_track.trackers import KPRTracker, TrackState
from kpr_track.trackers.assignment import isolated_pairs


def box_at(x: float, w: float = 40.0) -> list[float]:
    return [x, 100.0, x + w, 200.0]


def frame(boxes, scores) -> Detections:
    n = len(boxes)
    return Detections(
        np.array(boxes, np.float32).reshape(n, 4),
        np.array(scores, np.float32),
        np.zeros((n, 17, 3), np.float32),
    )


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
