"""KPR inside other libraries' trackers, run for real on the first frames of PETS09-S2L1.

Each test checks that the host produces ids, that KPR's features are what the host
stored or compared (not its default ReID), and, through a socket guard, that nothing is
downloaded. Hosts: boxmot 25, ultralytics, supervision, norfair, deep-sort-realtime.
"""

from __future__ import annotations

import socket
import sys

import numpy as np
import pytest
from conftest import PETS09, read_video_frame, shared_path

from kpr_track.detectors import build_detector
from kpr_track.errors import ConfigError
from kpr_track.integrations import import_host
from kpr_track.kpr import KPR
from kpr_track.weights import resolve_weights

FRAMES = 4


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection attempt (a weights download) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


class SpyKPR(KPR):
    """The real KPR, recording every call's boxes, keypoints and outputs."""

    def __init__(self, base: KPR) -> None:
        super().__init__(base.appearance, reads_keypoints=base.reads_keypoints, pose=base._pose)
        self.calls: list = []

    def detections(self, frame, boxes, keypoints=None, scores=None):
        found = super().detections(frame, boxes, keypoints, scores)
        self.calls.append((np.asarray(boxes), keypoints, found))
        return found

    def vectors(self) -> np.ndarray:
        """Every KPR.flat row this spy produced, `(R, P * D)`."""
        return np.concatenate([KPR.flat(f.embeddings, f.visibility) for _, _, f in self.calls])


def is_one_of(vector: np.ndarray, rows: np.ndarray, atol: float = 1e-4) -> bool:
    unit = np.asarray(vector, np.float32) / np.linalg.norm(vector)
    return bool(np.abs(rows - unit).max(axis=1).min() < atol)


@pytest.fixture(scope="module")
def pets_frames():
    """The first frames of PETS09-S2L1 with the public det.txt detections."""
    video = shared_path(*PETS09, "vtest.avi")
    detector = build_detector(f"mot:{shared_path(*PETS09, 'det', 'det.txt')}")
    frames = [read_video_frame(video, i) for i in range(FRAMES)]
    return [(frame, detector.detect(frame, i + 1)) for i, frame in enumerate(frames)]


@pytest.fixture(scope="module")
def kpr(pose_detector):
    return KPR.from_pretrained("kpr-global", pose=pose_detector.pose_on_boxes)


@pytest.fixture
def spy(kpr):
    return SpyKPR(kpr)


# --- boxmot 25 -------------------------------------------------------------------------

BOXMOT = [
    ("BotSort", {}),
    ("DeepOcSort", {}),
    ("HybridSort", {}),
    ("BoostTrack", {"use_embeddings": True, "use_cmc": False}),
    ("StrongSort", {}),
]


@pytest.mark.parametrize(("name", "options"), BOXMOT, ids=[n for n, _ in BOXMOT])
def test_boxmot_reid_model_backend(name, options, pets_frames, spy):
    boxmot = import_host("boxmot")
    from kpr_track.integrations.boxmot import KPRBoxmotReID, boxmot_detections

    tracker = getattr(boxmot, name)(reid_model=KPRBoxmotReID(spy), **options)
    seen = []
    for frame, found in pets_frames:
        tracks = tracker.update(boxmot_detections(found.boxes, found.scores), frame)
        seen += tracks.track_ids.tolist()
    assert seen, f"{name} output no track"
    assert len(spy.calls) == FRAMES  # KPR embedded every frame's boxes
    assert tracker.last_emb_size == 256  # the width of KPR's vectors reached the tracker


def test_boxmot_detections_embeddings_reach_botsort(pets_frames, kpr):
    from boxmot import BotSort

    from kpr_track.integrations.boxmot import boxmot_detections

    tracker = BotSort()  # no reid_model: without our embeddings it would build (download) one
    vectors = []
    for frame, found in pets_frames:
        emb, vis = kpr.embed(frame, found.boxes, None, found.scores)
        tracks = tracker.update(boxmot_detections(found.boxes, found.scores, emb, vis), frame)
        vectors.append(KPR.flat(emb, vis))
    assert len(tracks)
    stored = [t.curr_feat for t in tracker.active_tracks if t.curr_feat is not None]
    assert stored and all(is_one_of(feature, np.concatenate(vectors)) for feature in stored)


def test_boxmot_wrapper_maps_ids_back_past_degenerate_boxes(pets_frames, kpr):
    from kpr_track.integrations.boxmot import BoxmotTracker

    tracker = BoxmotTracker("botsort", camera_motion=False)
    for frame, found in pets_frames:
        found = kpr.detections(frame, found.boxes, None, found.scores)
        flat_box = found.boxes[:1].copy()
        flat_box[:, 3] = flat_box[:, 1]  # zero height: boxmot rejects it
        padded = found.__class__(
            np.r_[flat_box, found.boxes],
            np.r_[found.scores[:1], found.scores],
            np.r_[found.keypoints[:1], found.keypoints],
            np.r_[found.embeddings[:1], found.embeddings],
            np.r_[found.visibility[:1], found.visibility],
        )
        ids = tracker.update(padded, frame)
        assert ids[0] == -1
    assert (ids[1:] > 0).any()


# --- ultralytics -----------------------------------------------------------------------


def track_ultralytics(spy, yaml_name):
    from ultralytics import YOLO

    from kpr_track.integrations.ultralytics import add_kpr, tracker_yaml

    model = YOLO(str(resolve_weights("yolo11n-pose")))
    add_kpr(model, spy)
    video = shared_path(*PETS09, "vtest.avi")
    ids = []
    for i in range(FRAMES):
        frame = read_video_frame(video, i)
        # imgsz 960: at 640 the nano model misses PETS09's small people (DESIGN.md section 6)
        result = model.track(
            frame, tracker=tracker_yaml(yaml_name), persist=True, imgsz=960, verbose=False
        )
        ids += [] if result[0].boxes.id is None else result[0].boxes.id.tolist()
    return model.predictor.trackers[0], ids


def test_ultralytics_botsort_uses_kpr_features(spy):
    tracker, ids = track_ultralytics(spy, "botsort_kpr")
    assert type(tracker).__name__ == "BOTSORT" and ids
    assert len(spy.calls) == FRAMES
    assert all(keypoints is not None for _, keypoints, _ in spy.calls)  # from the pose model
    vectors = spy.vectors()
    stored = [t.curr_feat for t in tracker.tracked_stracks if t.curr_feat is not None]
    assert stored and all(is_one_of(feature, vectors) for feature in stored)


def test_ultralytics_kpr_tracker_runs_the_part_distance(spy):
    from kpr_track.integrations.ultralytics import UltralyticsKPRTracker

    tracker, ids = track_ultralytics(spy, "kpr")
    assert isinstance(tracker, UltralyticsKPRTracker) and ids
    assert tracker.tracker.calibration is spy.calibration
    holistic = np.concatenate([f.embeddings[:, 0] for _, _, f in spy.calls])
    remembered = [t.gallery[0, 0] for t in tracker.tracker.tracks if t.gallery is not None]
    assert remembered and all(is_one_of(g, holistic) for g in remembered)


def test_ultralytics_yaml_with_an_unknown_key_is_a_config_error():
    from types import SimpleNamespace

    from kpr_track.integrations.ultralytics import UltralyticsKPRTracker, tracker_yaml

    with pytest.raises(ConfigError, match="unknown keys \\['gmc_method'\\]"):
        UltralyticsKPRTracker(SimpleNamespace(tracker_type="kpr", gmc_method="orb"))
    with pytest.raises(ConfigError, match="expected one of"):
        tracker_yaml("bytetrack")


# --- supervision -----------------------------------------------------------------------


def test_supervision_tracker_with_keypoints(pets_frames, spy, pose_detector):
    sv = import_host("supervision")
    from kpr_track.integrations.supervision import KPRSupervisionTracker

    tracker = KPRSupervisionTracker(spy, frame_rate=7)
    for frame, found in pets_frames:
        points = pose_detector.pose_on_boxes(frame, found.boxes)
        keypoints = sv.KeyPoints(points[..., :2], None, points[..., 2])  # xy, class_id, confidence
        output = tracker.update(
            sv.Detections(xyxy=found.boxes, confidence=found.scores), frame, keypoints
        )
        assert len(output) == len(found) and output.tracker_id.dtype.kind == "i"
        np.testing.assert_array_equal(spy.calls[-1][1][..., :2], points[..., :2])
    assert (output.tracker_id > 0).any()
    tracker.reset()
    first = tracker.update(sv.Detections(xyxy=found.boxes, confidence=found.scores), frame)
    assert first.tracker_id.max() == (first.tracker_id > 0).sum()  # ids restart at 1


# --- norfair ---------------------------------------------------------------------------


def test_norfair_part_embeddings_and_reid_distance(pets_frames, kpr):
    norfair = import_host("norfair")
    from kpr_track.integrations.norfair import norfair_detections, part_reid_distance

    tracker = norfair.Tracker(
        distance_function="iou",
        distance_threshold=0.8,
        initialization_delay=1,
        reid_distance_function=part_reid_distance,
        reid_distance_threshold=0.35,
        reid_hit_counter_max=10,
    )
    for frame, found in pets_frames:
        emb, vis = kpr.embed(frame, found.boxes, None, found.scores)
        objects = tracker.update(norfair_detections(found.boxes, found.scores, emb, vis))
    assert len(objects) >= 2 and all(o.id >= 1 for o in objects)
    a, b = objects[:2]
    for obj in (a, b):
        i = obj.last_detection.data["index"]
        np.testing.assert_array_equal(obj.last_detection.embedding.embeddings, emb[i])
    past = [d.embedding for d in b.past_detections]
    expected = KPR.distance(
        (emb[[a.last_detection.data["index"]]], vis[[a.last_detection.data["index"]]]),
        (np.stack([p.embeddings for p in past]), np.stack([p.visibility for p in past])),
    ).min()
    assert part_reid_distance(a, b) == pytest.approx(float(expected))
    assert part_reid_distance(a, a) == pytest.approx(0.0, abs=1e-3)


# --- deep-sort-realtime ----------------------------------------------------------------


def test_deep_sort_embeds_stay_on_their_detections(pets_frames, kpr):
    from deep_sort_realtime.deepsort_tracker import DeepSort

    from kpr_track.integrations.deep_sort import deep_sort_inputs

    tracker = DeepSort(embedder=None, n_init=2)
    for frame, found in pets_frames:
        emb, vis = kpr.embed(frame, found.boxes, None, found.scores)
        boxes = np.r_[[[10, 10, 10, 50]], found.boxes]  # a zero-width box first
        emb, vis = np.r_[emb[:1], emb], np.r_[vis[:1], vis]
        raw, embeds, others = deep_sort_inputs(boxes, np.r_[1.0, found.scores], emb, vis)
        assert others == list(range(1, len(boxes)))
        tracks = tracker.update_tracks(raw, embeds=embeds, others=others)
    flat = KPR.flat(emb, vis)
    matched = [t for t in tracks if t.is_confirmed() and t.time_since_update == 0]
    assert matched
    for track in matched:
        np.testing.assert_allclose(track.get_feature(), flat[track.get_det_supplementary()])


# --- a missing host --------------------------------------------------------------------


def test_missing_host_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "norfair", None)
    with pytest.raises(ConfigError, match='pip install --no-deps norfair==2.3.0 "filterpy<2"'):
        import_host("norfair")
