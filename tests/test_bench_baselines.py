"""Roboflow trackers behind our tracker interface, on real PETS09-S2L1 ground-truth boxes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import mot_gt_boxes

from kpr_track.baselines import ROBOFLOW_TRACKERS, RoboflowTracker, roboflow_trackers
from kpr_track.detections import Detections
from kpr_track.errors import ConfigError, InputError


def _frame(pets_gt, frame_id: int, order: np.ndarray | None = None):
    ids, boxes = mot_gt_boxes(pets_gt, frame_id)
    order = np.arange(len(ids)) if order is None else order
    scores = np.full(len(ids), 0.9, np.float32)
    return ids[order], Detections(boxes[order], scores, np.zeros((len(ids), 17, 3), np.float32))


def test_loads_the_pypi_package_not_our_trackers_folder():
    module = roboflow_trackers()
    assert hasattr(module, "ByteTrackTracker")
    assert "kpr_track" not in module.__file__ and "site-packages" in module.__file__


@pytest.mark.parametrize("name", sorted(ROBOFLOW_TRACKERS))
def test_keeps_ids_on_real_boxes_given_in_shuffled_order(name, pets_gt):
    tracker = RoboflowTracker(name, minimum_consecutive_frames=1, frame_rate=30.0)
    rng = np.random.default_rng(0)
    pairs: dict[int, set[int]] = {}
    for frame_id in range(101, 113):
        n = len(mot_gt_boxes(pets_gt, frame_id)[0])
        gt_ids, detections = _frame(pets_gt, frame_id, rng.permutation(n))
        track_ids = tracker.update(detections)
        assert track_ids.shape == (n,) and track_ids.dtype == np.int64
        if frame_id >= 103:  # every track confirmed by now
            assert (track_ids >= 1).all()
        for gt_id, track_id in zip(gt_ids, track_ids, strict=True):
            if track_id >= 1:
                pairs.setdefault(int(gt_id), set()).add(int(track_id))
    assert len(pairs) >= 4
    assert all(len(ids) == 1 for ids in pairs.values()), pairs  # no identity switch
    track_ids = [next(iter(ids)) for ids in pairs.values()]
    assert len(set(track_ids)) == len(track_ids)  # and no two people share a track


def test_empty_frames_and_reset(pets_gt):
    tracker = RoboflowTracker("bytetrack", minimum_consecutive_frames=1)
    _, detections = _frame(pets_gt, 1)
    tracker.update(detections)
    assert tracker.update(Detections.empty()).shape == (0,)
    tracker.reset()
    tracker.update(detections)
    again = tracker.update(detections)
    assert sorted(again) == list(range(1, len(detections) + 1))  # ids restart at 1


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown Roboflow tracker 'deepsort'"):
        RoboflowTracker("deepsort")
    with pytest.raises(ConfigError, match="Roboflow tracker 'sort'"):
        RoboflowTracker("sort", not_an_option=1)
    with pytest.raises(InputError, match="expected Detections"):
        RoboflowTracker("sort").update(np.zeros((2, 4)))
