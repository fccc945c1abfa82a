"""Frame-by-frame lifecycle scenarios for the KPR tracker (synthetic detections)."""

from __future__ import annotations

import numpy as np
import pytest

from kpr_track.detections import Detections
from kpr_track.errors import ConfigError, InputError
from kpr_track.reid.calibration import DistanceCalibration
from kpr_track.trackers import BaseTracker, KPRTracker, TrackState, build_tracker
from kpr_track.trackers.costs import appearance_slots
from kpr_track.trackers.track import Track


def box_at(x: float, y: float = 100.0, w: float = 40.0, h: float = 100.0) -> list[float]:
    return [x, y, x + w, y + h]


def frame(boxes, scores=None, embeddings=None, visibility=None) -> Detections:
    n = len(boxes)
    return Detections(
        boxes=np.array(boxes, np.float32).reshape(n, 4),
        scores=np.full(n, 0.9, np.float32) if scores is None else np.array(scores, np.float32),
        keypoints=np.zeros((n, 17, 3), np.float32),
        embeddings=embeddings,
        visibility=visibility,
    )


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_registry_builds_kpr_and_rejects_unknown_keyword():
    tracker = build_tracker("kpr", max_age_s=5.0)
    assert isinstance(tracker, KPRTracker) and isinstance(tracker, BaseTracker)
    assert tracker.config.max_age_s == 5.0
    with pytest.raises(ConfigError, match="max_agee"):
        build_tracker("kpr", max_agee=5)
    with pytest.raises(ConfigError, match="'max_age' \\(frames\\) was replaced by 'max_age_s'"):
        build_tracker("kpr", max_age=5)


def test_empty_frames():
    tracker = KPRTracker()
    ids = tracker.update(Detections.empty())
    assert ids.shape == (0,) and ids.dtype == np.int64
    tracker.update(frame([box_at(0)]))
    assert tracker.update(Detections.empty()).shape == (0,)


def test_rejects_non_detections():
    with pytest.raises(InputError, match="Detections"):
        KPRTracker().update(np.zeros((1, 4)))


def test_first_frame_confirms_at_once_then_min_hits():
    tracker = KPRTracker(min_hits=3)
    assert tracker.update(frame([box_at(0)])).tolist() == [1]  # first frame: immediate
    # A second person appears in frame 2: output only from its 3rd consecutive hit.
    outputs = [tracker.update(frame([box_at(0), box_at(300)])).tolist() for _ in range(3)]
    assert outputs == [[1, -1], [1, -1], [1, 2]]


def test_tentative_track_dies_when_missed():
    tracker = KPRTracker(min_hits=3)
    tracker.update(frame([box_at(0)]))
    tracker.update(frame([box_at(0), box_at(300)]))  # tentative, hit 1
    tracker.update(frame([box_at(0)]))  # missed: dies
    assert [t.state for t in tracker.tracks] == [TrackState.CONFIRMED]
    outputs = [tracker.update(frame([box_at(0), box_at(300)])).tolist() for _ in range(3)]
    assert outputs == [[1, -1], [1, -1], [1, 2]]  # born again from scratch


def test_output_ids_follow_input_order():
    tracker = KPRTracker()
    tracker.update(frame([box_at(0), box_at(200), box_at(400)]))
    assert tracker.update(frame([box_at(400), box_at(0), box_at(200)])).tolist() == [3, 1, 2]


@pytest.mark.parametrize("appearance_weight", [0.0, 0.5])
def test_coasting_through_five_missed_frames_keeps_id(appearance_weight):
    tracker = KPRTracker(max_age_s=1.0, appearance_weight=appearance_weight)
    speed = 3.0  # px/frame
    for t in range(10):
        assert tracker.update(frame([box_at(100 + speed * t)])).tolist() == [1]
    for _ in range(5):
        assert tracker.update(Detections.empty()).shape == (0,)
        assert tracker.tracks[0].state == TrackState.LOST
    assert tracker.update(frame([box_at(100 + speed * 15)])).tolist() == [1]
    assert tracker.tracks[0].state == TrackState.CONFIRMED


@pytest.mark.parametrize(
    ("frame_rate", "missed", "expected_id"),
    [(10.0, 5, 1), (10.0, 6, 2), (30.0, 15, 1), (30.0, 16, 2)],
)
def test_lost_track_removed_after_max_age_seconds(frame_rate, missed, expected_id):
    """max_age_s = 0.5 s is 5 frames at 10 fps and 15 at 30 fps."""
    tracker = KPRTracker(max_age_s=0.5, min_hits=1, frame_rate=frame_rate)
    assert tracker.frames.max_age == round(0.5 * frame_rate)
    for _ in range(3):
        tracker.update(frame([box_at(100)]))
    for _ in range(missed):
        tracker.update(Detections.empty())
    assert len(tracker.tracks) == (1 if missed <= tracker.frames.max_age else 0)
    assert tracker.update(frame([box_at(100)])).tolist() == [expected_id]


@pytest.mark.parametrize(("frame_rate", "frames"), [(7.0, 1), (14.0, 1), (30.0, 3), (60.0, 6)])
def test_direction_delta_in_seconds_spans_at_least_one_frame(frame_rate, frames):
    assert KPRTracker(direction_delta_s=0.1, frame_rate=frame_rate).frames.direction_delta == frames


@pytest.mark.parametrize(("speed", "refound"), [(float("inf"), True), (2.0, False)])
def test_lost_track_cannot_jump_across_its_grown_gate(speed, refound):
    """A track lost for 1 s (30 frames) with a wide-open gate and no IoU bound; a detection
    3 box heights away is outside what a person walks at 2 heights/s (reach h (0.5 + 2 x
    1 s) = 2.5 h), so with the bound it starts a new track instead of taking the old id."""
    tracker = KPRTracker(
        min_hits=1,
        min_iou=0.0,
        gate_threshold=float("inf"),
        lost_max_speed=speed,
        match_cost=2.0,
        frame_rate=30.0,
    )
    for _ in range(3):
        tracker.update(frame([box_at(100)]))
    for _ in range(29):
        tracker.update(Detections.empty())
    ids = tracker.update(frame([box_at(100, y=400.0)]))  # 300 px = 3 heights down
    assert (ids.tolist() == [1]) is refound


def test_low_score_detection_extends_track_but_never_starts_one():
    tracker = KPRTracker(high_score=0.5, low_score=0.1, new_track_score=0.6)
    tracker.update(frame([box_at(0)]))
    ids = tracker.update(frame([box_at(2), box_at(300)], scores=[0.3, 0.3]))
    assert ids.tolist() == [1, -1]  # second round keeps id 1; the other is not born
    assert len(tracker.tracks) == 1
    assert tracker.update(frame([box_at(300)], scores=[0.05])).tolist() == [-1]  # below low


@pytest.mark.parametrize(("lost_low_match_cost", "refound"), [(0.0, False), (0.3, True)])
def test_lost_track_takes_a_low_score_detection_only_when_asked(lost_low_match_cost, refound):
    """A person missed for one frame comes back with a low score on the same spot:
    ByteTrack's second round serves only tracked tracks, so by default the lost track
    stays lost; with ``lost_low_match_cost`` it is re-found on IoU."""
    tracker = KPRTracker(
        high_score=0.5, low_score=0.1, new_track_score=0.6, lost_low_match_cost=lost_low_match_cost
    )
    tracker.update(frame([box_at(0)]))
    tracker.update(Detections.empty())
    assert tracker.tracks[0].state == TrackState.LOST
    ids = tracker.update(frame([box_at(0)], scores=[0.3]))
    assert (ids.tolist() == [1]) is refound
    assert (tracker.tracks[0].state == TrackState.CONFIRMED) is refound


@pytest.mark.parametrize(("speed", "refound"), [(float("inf"), True), (0.0, False)])
def test_lost_track_takes_no_low_score_detection_out_of_its_reach(speed, refound):
    """The lost round keeps a lost track's reach bound (``lost_max_speed``): a wide box
    60 px along (IoU 0.54, within the 0.6 cost) is beyond half a box height (50 px) from
    the track's last centre, so only without the bound does the lost track take it."""
    tracker = KPRTracker(
        high_score=0.5,
        low_score=0.1,
        new_track_score=0.6,
        lost_low_match_cost=0.6,
        lost_max_speed=speed,
        frame_rate=30.0,
    )
    tracker.update(frame([box_at(0, w=200.0)]))
    tracker.update(Detections.empty())
    ids = tracker.update(frame([box_at(60, w=200.0)], scores=[0.3]))
    assert (ids.tolist() == [1]) is refound


# A calibration like the ones appearance models ship: same person below 0.3, different
# people above it (p_same 0.5 at 0.3).
CALIBRATION = DistanceCalibration(midpoint=0.3, slope=20.0, same_median=0.15, different_median=0.5)


def _crossing_and_back(with_appearance: bool, calibration=CALIBRATION) -> list[list[int]]:
    """Two people meet, fully overlap and walk back the way they came.

    A constant-velocity model predicts that each keeps walking, so motion alone hands
    each identity to the other person after the meeting; appearance keeps them.
    """
    rng = np.random.default_rng(0)
    looks = unit(rng.normal(size=(2, 3, 16)))  # person A, B: [foreground, 2 parts] x D=16
    tracker = KPRTracker(appearance_weight=0.5 if with_appearance else 0.0, calibration=calibration)
    path = [3.0 * t for t in range(8)] + [3.0 * t for t in range(8, -1, -1)]
    truth = []
    for step in path:
        boxes = [box_at(100 + step), box_at(148 - step)]  # meet at 124 (full overlap)
        ids = tracker.update(frame(boxes, embeddings=looks, visibility=np.ones((2, 3))))
        truth.append(ids.tolist())
    return truth


def test_crossing_appearance_keeps_identities_that_motion_swaps():
    motion = _crossing_and_back(with_appearance=False)
    assert motion[0] == [1, 2] and motion[-1] == [2, 1]  # motion alone swaps
    kpr = _crossing_and_back(with_appearance=True)
    assert all(ids == [1, 2] for ids in kpr)


def test_without_calibration_appearance_is_ignored_with_a_warning(caplog):
    with caplog.at_level("WARNING"):
        uncalibrated = _crossing_and_back(with_appearance=True, calibration=None)
    assert uncalibrated == _crossing_and_back(with_appearance=False)
    assert sum("no appearance calibration" in r.message for r in caplog.records) == 1


def test_detections_without_embeddings_run_motion_only():
    tracker = KPRTracker(appearance_weight=0.5, calibration=CALIBRATION)
    for t in range(4):
        assert tracker.update(frame([box_at(3.0 * t)])).tolist() == [1]
    assert tracker.tracks[0].gallery is None


def _looks(*rows):
    return unit(np.array(rows, np.float32))[None]  # (1, P, D)


def test_part_hidden_in_detection_is_ignored_by_tracker_and_memory():
    looks = unit(np.eye(3, 8)[None])  # one person: [foreground, part1, part2]
    tracker = KPRTracker(appearance_weight=0.5, calibration=CALIBRATION, gallery_size=2)
    for _ in range(3):
        tracker.update(frame([box_at(0)], embeddings=looks, visibility=np.ones((1, 3))))
    # Legs (part2) hidden by an occluder whose features land in that slot: another vector.
    occluded = looks.copy()
    occluded[0, 2] = np.eye(8)[5]
    ids = tracker.update(frame([box_at(0)], embeddings=occluded, visibility=[[1.0, 1.0, 0.2]]))
    assert ids.tolist() == [1]
    track = tracker.tracks[0]
    assert track.gallery[2, 0] == pytest.approx(looks[0, 2])  # hidden slot untouched
    assert track.gallery_valid.all()  # foreground and part1 were pushed again
    assert track.gallery[0, 0] == pytest.approx(looks[0, 0])


def test_gallery_keeps_the_last_views_and_matches_the_closest():
    kalman = KPRTracker().kalman
    views = [_looks([1, 0, 0])[0], _looks([0, 1, 0])[0], _looks([0, 0, 1])[0]]
    track = Track(
        kalman, np.array(box_at(0)), 0.9, views[0], np.ones(1),
        gallery_size=2, visibility_threshold=0.5,
    )  # fmt: skip
    for view in views[1:]:
        track.remember(view, np.ones(1))
    assert track.gallery[0] == pytest.approx(np.stack([views[2][0], views[1][0]]))  # newest first
    assert track.gallery_valid.tolist() == [[True, True]]
    distance, shared = appearance_slots(
        track.gallery[None], track.gallery_valid[None], np.stack(views), np.ones((3, 1))
    )
    # The oldest view was dropped (distance sqrt(2) / 2); the other two are in the gallery.
    assert distance[0, :, 0] == pytest.approx([np.sqrt(2) / 2, 0.0, 0.0], abs=1e-6)
    assert shared.tolist() == [[[True]] * 3]


def test_second_round_and_overlapping_matches_leave_memory_alone():
    looks = _looks([1, 0], [0, 1])
    tracker = KPRTracker(
        high_score=0.5, low_score=0.1, new_track_score=0.6, calibration=CALIBRATION
    )
    tracker.update(frame([box_at(0)], embeddings=looks, visibility=np.ones((1, 2))))
    other = _looks([0, 1], [1, 0])
    # Low score: matched in the second round on IoU, appearance not stored.
    tracker.update(frame([box_at(1)], scores=[0.3], embeddings=other, visibility=np.ones((1, 2))))
    assert tracker.tracks[0].time_since_update == 0
    assert tracker.tracks[0].gallery_valid.sum() == 2  # only the birth view
    # High score but overlapping another person (IoU 0.6 > memory_max_overlap 0.3).
    both = np.concatenate([other, other])
    tracker.update(frame([box_at(2), box_at(12)], embeddings=both, visibility=np.ones((2, 2))))
    assert tracker.tracks[0].gallery_valid.sum() == 2
    # Alone and confident: stored.
    tracker.update(frame([box_at(3)], embeddings=other, visibility=np.ones((1, 2))))
    assert tracker.tracks[0].gallery_valid.sum() == 4


def test_instances_do_not_share_ids_and_reset_restarts():
    first, second = KPRTracker(), KPRTracker()
    assert first.update(frame([box_at(0)])).tolist() == [1]
    assert second.update(frame([box_at(0)])).tolist() == [1]
    assert first.update(frame([box_at(0), box_at(300)])).tolist() == [1, -1]
    first.reset()
    assert first.tracks == ()
    assert first.update(frame([box_at(500)])).tolist() == [1]


def _refound_velocity(reupdate: bool) -> float:
    """A person at 10 px/frame is missed for 4 frames, then re-found 80 px further on
    (it sped up to 16 px/frame while unseen): the x velocity after the re-update."""
    kalman = KPRTracker().kalman
    track = Track(
        kalman, np.array(box_at(0)), 0.9, None, None,
        gallery_size=1, visibility_threshold=0.5,
    )  # fmt: skip
    for x in (10, 20, 30):
        track.mean, track.covariance = kalman.predict(track.mean, track.covariance)
        track.mark_predicted()
        track.update(kalman, np.array(box_at(x)), 0.9, reupdate=reupdate)
    for _ in range(5):  # 4 frames missed, matched on the 5th
        track.mean, track.covariance = kalman.predict(track.mean, track.covariance)
        track.mark_predicted()
    track.update(kalman, np.array(box_at(110)), 0.9, reupdate=reupdate)
    return float(track.mean[4])


def test_observation_centric_reupdate_learns_the_velocity_over_the_gap():
    with_oru, without = _refound_velocity(True), _refound_velocity(False)
    assert abs(with_oru - 16.0) < abs(without - 16.0)
    assert with_oru > 13.0  # the interpolated path moves at 16 px/frame


@pytest.mark.parametrize("frame_rate", [0.0, -7.0])
def test_frame_rate_must_be_positive(frame_rate):
    with pytest.raises(ConfigError, match="frame_rate"):
        KPRTracker(frame_rate=frame_rate)


@pytest.mark.parametrize(("frame_rate", "time_step"), [(None, 1.0), (30.0, 1.0), (7.0, 30 / 7)])
def test_frame_rate_sets_the_kalman_time_step(frame_rate, time_step):
    assert KPRTracker(frame_rate=frame_rate).kalman.time_step == pytest.approx(time_step)


def test_camera_warp_moves_predictions_when_the_camera_starts_panning():
    """A standing person; after 5 frames the camera starts panning 30 px/frame, so in the
    image the person jumps 30 px left per frame. With the warp the prediction follows;
    without it the 40 px wide box overlaps its prediction by IoU 0.14 (cost 0.86 > 0.8)."""

    def run(camera_motion: bool) -> list[list[int]]:
        tracker = KPRTracker(camera_motion=camera_motion, min_hits=1)
        out = []
        for t in range(8):
            shift = 30.0 * max(t - 4, 0)
            warp = np.array([[1.0, 0.0, -30.0 if t > 4 else 0.0], [0.0, 1.0, 0.0]])
            out.append(tracker.update(frame([box_at(400 - shift)]), camera_warp=warp).tolist())
        return out

    assert run(True) == [[1]] * 8
    assert run(False)[5] == [2]  # lost and restarted
