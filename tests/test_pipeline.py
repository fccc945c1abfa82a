"""TrackingPipeline.run: decoding and detection one frame ahead in a worker thread."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from kpr_track.detectors.base import build_detector
from kpr_track.errors import InputError
from kpr_track.io.video import VideoReader
from kpr_track.pipeline import TrackingPipeline
from kpr_track.trackers import KPRTracker, load_tracker

FRAMES = 40


def _pipeline(pets_gt) -> TrackingPipeline:
    return TrackingPipeline(build_detector(f"gt:{pets_gt}"), None, load_tracker("kpr"))


def _frames(pets_video, count=FRAMES):
    reader = VideoReader(pets_video, count)
    return ((reader.frame_id, frame) for frame in reader)


def test_overlapped_run_gives_the_sequential_results_in_order(pets_video, pets_gt):
    sequential = list(_pipeline(pets_gt).run(_frames(pets_video), overlap=False))
    overlapped = list(_pipeline(pets_gt).run(_frames(pets_video), overlap=True))
    assert [r[0] for r in overlapped] == list(range(1, FRAMES + 1))
    assert [r[0] for r in sequential] == [r[0] for r in overlapped]
    for (_, frame_a, det_a, ids_a), (_, frame_b, det_b, ids_b) in zip(
        sequential, overlapped, strict=True
    ):
        np.testing.assert_array_equal(frame_a, frame_b)
        np.testing.assert_array_equal(det_a.boxes, det_b.boxes)
        np.testing.assert_array_equal(ids_a, ids_b)
    assert (overlapped[-1][3] > 0).sum() >= 4  # PETS09 has people tracked by frame 40


def test_worker_error_reaches_the_caller_after_the_frames_before_it(pets_video, pets_gt):
    def failing():
        for frame_id, frame in _frames(pets_video, 10):
            yield frame_id, (frame if frame_id != 6 else frame[..., 0])  # not (H, W, 3)

    done = []
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        for frame_id, *_ in _pipeline(pets_gt).run(failing(), overlap=True):
            done.append(frame_id)
    assert done == [1, 2, 3, 4, 5]


def test_stopping_early_stops_the_worker(pets_video, pets_gt):
    before = threading.active_count()
    results = _pipeline(pets_gt).run(_frames(pets_video), overlap=True)
    assert next(results)[0] == 1
    assert threading.active_count() == before + 1
    results.close()  # what a KeyboardInterrupt in the consumer's loop does
    assert threading.active_count() == before


def test_detections_the_tracker_never_reads_are_not_embedded(pets_video, pose_detector):
    """PETS09 public detections (scores by rank: about a fifth below a high_score of 0.3):
    embedding only those at or above it gives the same track ids as embedding all, with
    zeros and visibility 0 for the others."""
    from kpr_track.reid import build_reid

    det_txt = pets_video.parent / "det" / "det.txt"
    appearance = build_reid("kpr-global")

    class ReadsEverything(KPRTracker):
        appearance_min_score = 0.0

    preset = dataclasses.asdict(load_tracker("kpr").config) | {
        "embed_refresh_s": 0.0,  # every readable detection (on demand: test_embed_on_demand)
        "high_score": 0.3,
        "new_track_score": 0.3,
    }

    def run(tracker_class):
        tracker = tracker_class(**preset, frame_rate=7.0, calibration=appearance.calibration)
        detector = build_detector(f"mot:{det_txt}", pose=pose_detector.pose_on_boxes)
        pipeline = TrackingPipeline(detector, appearance, tracker)
        return list(pipeline.run(_frames(pets_video, 12), overlap=False))

    every, needed = run(ReadsEverything), run(KPRTracker)
    skipped = 0
    for (_, _, det_a, ids_a), (_, _, det_b, ids_b) in zip(every, needed, strict=True):
        np.testing.assert_array_equal(ids_a, ids_b)
        low = det_b.scores < preset["high_score"]
        assert (det_b.visibility[low] == 0).all() and (det_b.embeddings[low] == 0).all()
        np.testing.assert_allclose(det_b.embeddings[~low], det_a.embeddings[~low], atol=1e-5)
        skipped += low.sum()
    assert skipped >= 5


def test_build_pipeline_gives_every_detector_its_options():
    """--conf and --imgsz act for yolox too; the top-down pose model runs on --device; a
    missing --imgsz follows the source (1080p: 1920 for yolo-pose)."""
    import torch
    from conftest import shared_path

    from kpr_track.pipeline import TrackOptions, build_pipeline

    weights = shared_path("weights", "yolox_nano_416x416.onnx")
    options = TrackOptions(det=f"yolox:{weights}", reid="retail-0287", imgsz=960, conf=0.3)
    detector = build_pipeline(dataclasses.replace(options, device="cpu:0"), 25.0).detector
    assert (detector.imgsz, detector.conf) == (960, 0.3)
    assert detector.pose.__self__.device == torch.device("cpu:0")
    automatic = TrackOptions(reid="none", imgsz=None).for_source(1920, 1080)
    assert automatic.imgsz == 1920 and build_pipeline(automatic, 25.0).detector.imgsz == 1920
    assert options.for_source(1920, 1080).imgsz == 960  # an explicit --imgsz wins
