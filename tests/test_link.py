"""Offline linking (trackers/link.py) and gap filling (trackers/gaps.py) on hand-made tracklets."""

from __future__ import annotations

import numpy as np
import pytest

from kpr_track.detections import Detections
from kpr_track.errors import ConfigError, InputError
from kpr_track.reid.calibration import DistanceCalibration
from kpr_track.trackers.gaps import TrackRows, fill_gaps, smooth_tracks
from kpr_track.trackers.link import (
    LinkConfig,
    Tracklet,
    TrackletCollector,
    link_costs,
    link_tracklets,
    load_link_config,
)

CALIBRATION = DistanceCalibration(midpoint=0.3, slope=30.0, same_median=0.1, different_median=0.5)
FPS = 10.0
P, D = 3, 8  # slots (foreground, head, legs), dimension
RNG = np.random.default_rng(0)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector, axis=-1, keepdims=True)


PEOPLE = _unit(RNG.normal(size=(4, P, D)))  # four people, one embedding per slot


def _views(person: int, seen=(True, True, True), noise: float = 0.02, count: int = 3):
    embeddings = _unit(PEOPLE[person][None] + noise * RNG.normal(size=(count, P, D)))
    return embeddings.astype(np.float32), np.tile(np.array(seen, np.float32), (count, 1))


def _tracklet(track_id, first, last, person, start=(100, 100), end=None, seen=(1, 1, 1)):
    end = start if end is None else end
    embeddings, visibility = _views(person, seen)
    box = lambda c: np.array([c[0] - 10, c[1] - 40, c[0] + 10, c[1] + 40], float)  # noqa: E731
    return Tracklet(
        track_id, first, last, box(start), box(end), embeddings=embeddings, visibility=visibility
    )


def test_joins_the_same_person_after_a_gap():
    tracklets = [_tracklet(1, 1, 10, 0), _tracklet(2, 30, 40, 0, start=(110, 100))]
    assert link_tracklets(tracklets, CALIBRATION, FPS) == {1: 1, 2: 1}


def test_no_join_for_another_person_or_under_temporal_overlap():
    other = [_tracklet(1, 1, 10, 0), _tracklet(2, 30, 40, 1)]
    assert link_tracklets(other, CALIBRATION, FPS) == {1: 1, 2: 2}
    overlapping = [_tracklet(1, 1, 10, 0), _tracklet(2, 10, 40, 0)]
    assert link_tracklets(overlapping, CALIBRATION, FPS) == {1: 1, 2: 2}


def test_chains_take_the_first_id_and_each_end_joins_one_start():
    chain = [
        _tracklet(5, 1, 10, 0),
        _tracklet(7, 20, 30, 0),
        _tracklet(9, 40, 50, 0),
        _tracklet(3, 15, 45, 1, start=(300, 100)),  # someone else, overlapping the chain
    ]
    assert link_tracklets(chain, CALIBRATION, FPS) == {5: 5, 7: 5, 9: 5, 3: 3}


def test_global_assignment_pairs_each_end_with_its_own_person():
    # Person 0 ends at x=100 and person 1 at x=130; both re-appear crossed over.
    tracklets = [
        _tracklet(1, 1, 10, 0, start=(100, 100)),
        _tracklet(2, 1, 10, 1, start=(130, 100)),
        _tracklet(3, 20, 30, 1, start=(100, 100)),
        _tracklet(4, 20, 30, 0, start=(130, 100)),
    ]
    assert link_tracklets(tracklets, CALIBRATION, FPS) == {1: 1, 2: 2, 3: 2, 4: 1}


def test_slots_not_seen_by_both_carry_no_vote():
    a = _tracklet(1, 1, 10, 0, seen=(1, 1, 0))  # never saw the legs
    b = _tracklet(2, 30, 40, 0, seen=(1, 1, 1))
    cost = link_costs([a, b], CALIBRATION, FPS, LinkConfig())[0, 1]
    b.embeddings[:, 2] = _unit(RNG.normal(size=(len(b.embeddings), D)))  # other legs
    assert link_costs([a, b], CALIBRATION, FPS, LinkConfig())[0, 1] == pytest.approx(cost)
    # Tracklets sharing no visible slot have no evidence: never joined.
    head_only = _tracklet(3, 1, 10, 0, seen=(0, 1, 0))
    legs_only = _tracklet(4, 30, 40, 0, seen=(0, 0, 1))
    assert link_tracklets([head_only, legs_only], CALIBRATION, FPS) == {3: 3, 4: 4}


def test_motion_plausibility_interior_far_vs_border_reentry():
    config = LinkConfig(max_speed=0.5, min_reach=0.5)
    # Lost in the middle of the frame, re-found 6 box heights away 1 s later: implausible.
    far = [_tracklet(1, 1, 10, 0, start=(300, 300)), _tracklet(2, 20, 30, 0, start=(300, 780))]
    assert link_tracklets(far, CALIBRATION, FPS, config) == {1: 1, 2: 2}
    # The same distance through the frame border (left at an edge, back at an edge): allowed
    # with border_reach.
    for t in far:
        t.first_at_border = t.last_at_border = True
    border = LinkConfig(max_speed=0.5, min_reach=0.5, border_reach=8.0)
    assert link_tracklets(far, CALIBRATION, FPS, border) == {1: 1, 2: 1}
    # Re-found on its course behind an occluder: the extrapolated position is close.
    moving = [
        _tracklet(1, 1, 10, 0, start=(100, 300), end=(190, 300)),
        _tracklet(2, 30, 40, 0, start=(390, 300)),
    ]
    moving[0].last_velocity = np.array([10.0, 0.0])  # px per frame
    assert link_tracklets(moving, CALIBRATION, FPS, LinkConfig(max_speed=0.2)) == {1: 1, 2: 1}
    moving[0].last_velocity = np.zeros(2)
    assert link_tracklets(moving, CALIBRATION, FPS, LinkConfig(max_speed=0.2)) == {1: 1, 2: 2}


def test_a_border_exit_and_border_entry_need_the_evidence_border_prior_asks():
    a, b = _tracklet(1, 1, 10, 0), _tracklet(2, 20, 30, 0)
    b.embeddings = np.repeat(_unit(PEOPLE[0] + 0.5 * PEOPLE[1])[None], 3, 0).astype(np.float32)
    doubt = LinkConfig(border_prior=0.025)  # a likeness of p ~ 0.76: enough inside the frame
    assert link_tracklets([a, b], CALIBRATION, FPS, doubt) == {1: 1, 2: 1}
    a.last_at_border = b.first_at_border = True  # left at an edge, someone entered at an edge
    assert link_tracklets([a, b], CALIBRATION, FPS, doubt) == {1: 1, 2: 2}
    assert link_tracklets([a, b], CALIBRATION, FPS, LinkConfig(border_prior=1.0)) == {1: 1, 2: 1}
    b.embeddings = _views(0)[0]  # the same person, clearly: joined even through the border
    assert link_tracklets([a, b], CALIBRATION, FPS, doubt) == {1: 1, 2: 1}


def test_gap_longer_than_max_gap_is_not_joined():
    tracklets = [_tracklet(1, 1, 10, 0), _tracklet(2, 200, 210, 0)]  # 19 s later
    assert link_tracklets(tracklets, CALIBRATION, FPS, LinkConfig(max_gap=10.0)) == {1: 1, 2: 2}
    assert (
        link_tracklets(tracklets, CALIBRATION, FPS, LinkConfig(max_gap=30.0, max_speed=1))[2] == 1
    )


def test_settings_out_of_range_and_bad_input_are_errors():
    with pytest.raises(ConfigError, match="'min_probability' must be in \\[0, 1\\]"):
        LinkConfig(min_probability=1.5)
    with pytest.raises(ConfigError, match="'smooth' must be >= 0 seconds"):
        LinkConfig(smooth=-0.1)
    with pytest.raises(ConfigError, match="frame_rate"):
        link_tracklets([], CALIBRATION, 0.0)
    with pytest.raises(InputError, match="distinct"):
        link_tracklets([_tracklet(1, 1, 2, 0), _tracklet(1, 5, 6, 0)], CALIBRATION, FPS)


def test_preset_link_section(tmp_path):
    assert load_link_config("kpr").max_gap == 10.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker: kpr\nlink:\n  max_gap: -1.0\n")
    with pytest.raises(ConfigError, match="bad.yaml.*max_gap"):
        load_link_config(str(bad))
    bad.write_text("tracker: kpr\nlink:\n  max_gapp: 1.0\n")
    with pytest.raises(ConfigError, match="bad.yaml.*unknown key"):
        load_link_config(str(bad))


def _detections(boxes, scores, codes):
    """Detections whose every slot embedding is the unit vector ``e_code``."""
    boxes = np.asarray(boxes, np.float32)
    embeddings = np.zeros((len(boxes), P, D), np.float32)
    embeddings[np.arange(len(boxes)), :, codes] = 1.0
    return Detections(
        boxes, np.asarray(scores, np.float32), np.zeros((len(boxes), 17, 3))
    ).with_appearance(embeddings, np.ones((len(boxes), P), np.float32))


def test_collector_keeps_a_bounded_gallery_of_the_best_views():
    collector = TrackletCollector((640, 480), LinkConfig(gallery_size=2))
    for frame in range(1, 6):
        score = [0.9, 0.3, 0.95, 0.5, 0.8][frame - 1]
        found = _detections([[100 + frame, 100, 140 + frame, 200]], [score], [frame])
        collector.add(frame, found, np.array([4]))
    # The best-scoring view, but overlapped by an untracked detection (IoU 0.78): worth less.
    found = _detections([[100, 100, 140, 200], [105, 100, 145, 200]], [1.0, 0.9], [6, 7])
    collector.add(6, found, np.array([4, -1]))
    (tracklet,) = collector.tracklets()
    assert (tracklet.first_frame, tracklet.last_frame, tracklet.track_id) == (1, 6, 4)
    assert tracklet.embeddings.shape == (2, P, D)
    assert tracklet.embeddings[:, 0].argmax(axis=1).tolist() == [3, 1]  # scores 0.95, 0.9
    assert np.allclose(tracklet.last_velocity, [(120 - 122) / 4, 0])  # frames 2..6
    assert np.allclose(tracklet.first_velocity, [1, 0])  # frames 1..5
    assert not tracklet.first_at_border


def _rows(frames, ids, boxes, confidence=None):
    n = len(frames)
    keypoints = np.zeros((n, 17, 3), np.float32)
    keypoints[:, :, :2] = np.asarray(boxes, np.float32)[:, None, :2]
    keypoints[:, :, 2] = 0.9 if confidence is None else np.asarray(confidence)[:, None]
    return TrackRows(
        np.asarray(frames, np.int64),
        np.asarray(ids, np.int64),
        np.asarray(boxes, np.float32),
        np.full(n, 0.8, np.float32),
        keypoints,
    )


def test_fill_gaps_interpolates_short_gaps_only():
    rows = _rows(
        [1, 4, 20, 2],
        [1, 1, 1, 2],
        [[0, 0, 10, 20], [30, 0, 40, 20], [100, 0, 110, 20], [0, 0, 5, 5]],
        confidence=[0.9, 0.2, 0.9, 0.9],
    )
    filled = fill_gaps(rows.select(np.argsort(rows.frames, kind="stable")), max_frames=5)
    added = filled.select(filled.interpolated)
    assert added.frames.tolist() == [2, 3] and added.track_ids.tolist() == [1, 1]
    assert np.allclose(added.boxes, [[10, 0, 20, 20], [20, 0, 30, 20]])
    assert np.allclose(added.keypoints[:, 0, :2], [[10, 0], [20, 0]])
    assert np.allclose(added.keypoints[:, :, 2], 0.2)  # the lower end's confidence
    assert len(filled) == len(rows) + 2 and np.all(np.diff(filled.frames) >= 0)
    assert fill_gaps(rows, max_frames=0) is rows
    with pytest.raises(InputError, match="two rows in frame 1"):
        fill_gaps(_rows([1, 1], [3, 3], [[0, 0, 1, 1]] * 2), 5)


def test_competing_candidates_lower_the_same_person_probability():
    a, b = _tracklet(1, 1, 10, 0), _tracklet(2, 30, 40, 0, start=(110, 100))
    config = LinkConfig(motion_weight=0.0)
    alone = link_costs([a, b], CALIBRATION, FPS, config)[0, 1]
    rival = _tracklet(3, 25, 40, 1, start=(90, 100))  # another person who could continue a
    crowded = link_costs([a, b, rival], CALIBRATION, FPS, config)[0, 1]
    assert np.isfinite(alone) and crowded > alone


def test_fill_gaps_leaves_a_jump_between_people_empty():
    rows = _rows([1, 4], [1, 1], [[0, 0, 10, 20], [200, 0, 210, 20]])  # 10 heights in 3 frames
    assert len(fill_gaps(rows, 5, reach=(1.0, 0.1))) == 2
    assert len(fill_gaps(rows, 5, reach=(1.0, 3.0))) == 4


def test_smoothing_removes_jitter_within_runs_and_keeps_runs_apart():
    """A walker at 2 px a frame with +-3 px of detector jitter: a 3-frame Gaussian brings
    the boxes back towards the line; the frames after a gap are smoothed on their own;
    another track, keypoints and scores are untouched."""
    rng = np.random.default_rng(0)
    frames = np.r_[np.arange(1, 31), np.arange(41, 61)]
    truth = np.stack([2.0 * frames, np.zeros(50), 2.0 * frames + 40, np.full(50, 100.0)], 1)
    noisy = truth + rng.normal(0, 3, truth.shape)
    rows = _rows(np.r_[frames, [5]], np.r_[np.ones(50), [2]], np.r_[noisy, [[0, 0, 9, 9]]])
    smooth = smooth_tracks(rows, 3.0)
    error = np.abs(smooth.boxes[:50] - truth).mean(), np.abs(noisy - truth).mean()
    assert error[0] < 0.6 * error[1]
    assert np.allclose(smooth.boxes[50], [0, 0, 9, 9])
    np.testing.assert_array_equal(smooth.keypoints, rows.keypoints)
    # The run after the gap never sees the one before: smoothing it alone gives the same.
    after = smooth_tracks(rows.select(np.arange(30, 50)), 3.0)
    np.testing.assert_allclose(smooth.boxes[30:50], after.boxes, atol=1e-4)
    assert smooth_tracks(rows, 0.0) is rows
