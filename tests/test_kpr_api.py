"""The public appearance API (kpr_track.KPR) on real PETS09 frames."""

from __future__ import annotations

import numpy as np
import pytest

import kpr_track
from kpr_track.errors import ConfigError, InputError
from kpr_track.kpr import KPR
from kpr_track.reid import part_distance
from kpr_track.weights import resolve_weights


@pytest.fixture(scope="module")
def kpr_parts(pose_detector):
    """The trained part-based KPR, with top-down pose from the session's pose model."""
    return KPR.from_pretrained("kpr", pose=pose_detector.pose_on_boxes)


def test_kpr_is_exported_lazily():
    assert kpr_track.KPR is KPR
    with pytest.raises(AttributeError):
        kpr_track.NotAThing  # noqa: B018


def test_embed_shapes_and_top_down_pose(pets_crossing, kpr_parts):
    frame, detections = pets_crossing
    embeddings, visibility = kpr_parts.embed(
        frame, detections.boxes, detections.keypoints, detections.scores
    )
    n = len(detections)
    assert embeddings.shape == (n, 9, 256) and embeddings.dtype == np.float32
    assert visibility.shape == (n, 9) and visibility.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=2), 1.0, atol=1e-4)
    # No keypoints given: top-down pose on the boxes gives the same keypoints as the fixture.
    estimated = kpr_parts.embed(frame, detections.boxes, None, detections.scores)
    np.testing.assert_allclose(estimated[0], embeddings, atol=1e-5)
    np.testing.assert_array_equal(estimated[1], visibility)


def test_negatives_come_from_the_other_boxes(pets_crossing, kpr_parts):
    """The crossing pair of frame 31: each one's embedding differs when the other person's
    keypoints are in the same call (negative prompts) from when it is embedded alone."""
    frame, detections = pets_crossing
    together, _ = kpr_parts.embed(frame, detections.boxes, detections.keypoints)
    changed = [
        not np.allclose(
            kpr_parts.embed(frame, detections.boxes[i : i + 1], detections.keypoints[i : i + 1])[0][
                0
            ],
            together[i],
            atol=1e-4,
        )
        for i in range(len(detections))
    ]
    assert any(changed)


def test_distance_is_the_part_visibility_distance(pets_crossing, kpr_parts):
    frame, detections = pets_crossing
    a = kpr_parts.embed(frame, detections.boxes, detections.keypoints)
    expected, _ = part_distance(a[0], a[1], a[0], a[1])
    np.testing.assert_array_equal(KPR.distance(a, a), expected)
    assert np.allclose(np.diag(KPR.distance(a, a)), 0.0, atol=1e-3)


def test_same_probability_is_the_trackers_evidence(pets_crossing, kpr_parts):
    """PETS09 frame 31: each person against themselves is more likely the same person than
    against anyone else, and the value is what KPRTracker reads for a one-view memory: its
    fused cost of the track of person 0 and every detection is ``(1 - IoU) - w_app (2
    p_same - 1)`` (no gate, no direction term)."""
    from kpr_track.trackers import KPRTracker
    from kpr_track.trackers.costs import iou_cost
    from kpr_track.trackers.kalman import xyah_to_xyxy

    frame, detections = pets_crossing
    a = kpr_parts.embed(frame, detections.boxes, detections.keypoints)
    p = kpr_parts.same_probability(a, a)
    assert p.shape == (len(detections),) * 2 and ((p >= 0) & (p <= 1)).all()
    assert (np.diag(p)[:, None] >= p).all() and np.diag(p).min() > 0.5
    weight = 0.5
    tracker = KPRTracker(
        calibration=kpr_parts.calibration,
        appearance_weight=weight,
        full_weight_parts=1,
        gallery_size=1,
        gate_threshold=float("inf"),
        direction_weight=0.0,
    )
    found = detections.with_appearance(*a)
    tracker.update(found[np.array([0])])  # one track, remembering person 0's one view
    everyone = np.arange(len(detections))
    cost = tracker.association_cost(np.array([0]), everyone, found)[0]
    motion = iou_cost(xyah_to_xyxy(tracker.tracks[0].mean[None, :4]), found.boxes)[0]
    np.testing.assert_allclose(0.5 + (motion - cost) / (2 * weight), p[0], atol=1e-5)


def test_flat_cosine_is_the_documented_formula(pets_crossing, kpr_parts):
    frame, detections = pets_crossing
    emb, vis = kpr_parts.embed(frame, detections.boxes, detections.keypoints)
    flat = KPR.flat(emb, vis)
    assert flat.shape == (len(emb), 9 * 256) and flat.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(flat, axis=1), 1.0, atol=1e-5)
    cosine = flat @ flat.T
    w = np.sqrt(vis[:, None, :] * vis[None, :, :])  # (N, N, P)
    squared = ((emb[:, None] - emb[None, :]) ** 2).sum(-1)  # (N, N, P)
    m2 = (w * squared).sum(-1) / w.sum(-1)
    total = vis.sum(1)
    expected = w.sum(-1) / np.sqrt(total[:, None] * total[None, :]) * (1 - m2 / 2)
    np.testing.assert_allclose(cosine, expected, atol=1e-4)


def test_flat_of_one_slot_is_exactly_the_distance(pets_crossing, pose_detector):
    frame, detections = pets_crossing
    kpr = KPR.from_pretrained("kpr-global", pose=pose_detector.pose_on_boxes)
    a = kpr.embed(frame, detections.boxes, detections.keypoints)
    assert a[0].shape[1] == 1
    flat = KPR.flat(*a)
    np.testing.assert_allclose(flat @ flat.T, 1 - 2 * KPR.distance(a, a) ** 2, atol=1e-4)


def test_flat_falls_back_to_the_holistic_slot(pets_crossing, kpr_parts):
    frame, detections = pets_crossing
    emb, vis = kpr_parts.embed(frame, detections.boxes, detections.keypoints)
    hidden = np.zeros_like(vis)
    flat = KPR.flat(emb, hidden)
    np.testing.assert_allclose(flat[:, :256], emb[:, 0], atol=1e-5)
    assert not flat[:, 256:].any()
    with pytest.raises(InputError, match="all-zero"):
        KPR.flat(np.zeros_like(emb), hidden)
    with pytest.raises(InputError, match="visibility"):
        KPR.flat(emb, vis[:, :3])


def test_from_pretrained_path_and_unknown_name():
    path = resolve_weights("kpr-osnet-0287-mot17-02")
    kpr = KPR.from_pretrained(path)
    assert kpr.calibration is not None and kpr.reads_keypoints
    with pytest.raises(ConfigError, match="neither a model name"):
        KPR.from_pretrained("not-a-model")
