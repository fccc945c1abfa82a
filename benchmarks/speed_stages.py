"""The stages of the speed benchmark on their own: decoding, detection + pose, the KPR
appearance stage (torch, onnxruntime fp32 / int8, bare trunks) and association."""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from functools import partial
from pathlib import Path

import numpy as np
from speed_common import PETS09, timed, timed_together

from kpr_track.io.video import sequence_frames

BATCHES = (1, 8, 32)


TRACK_COUNTS = (10, 30, 100, 300)


def decode_speed(frames: int) -> dict:
    """Frames per second of decoding the PETS09 video."""
    start = time.perf_counter()
    count = sum(1 for _ in sequence_frames(PETS09, frames))
    seconds = time.perf_counter() - start
    return {"frames": count, "ms_per_frame": 1000 * seconds / count, "fps": count / seconds}


def ms_per_frame(step, frames: list[np.ndarray]) -> float:
    """Mean ms of ``step(frame)`` over ``frames``, after one warm-up call on the first."""
    step(frames[0])
    start = time.perf_counter()
    for frame in frames:
        step(frame)
    return 1000 * (time.perf_counter() - start) / len(frames)


def camera_motion_speed(frames: list[np.ndarray]) -> dict:
    """ms / frame of the trackers' camera-motion estimate (:class:`CameraMotion`) over
    consecutive ``frames``."""
    from kpr_track.trackers.camera_motion import ESTIMATOR, CameraMotion

    ms = ms_per_frame(CameraMotion(), frames)
    return {"estimator": ESTIMATOR, "frames": len(frames), "ms_per_frame": ms, "fps": 1000 / ms}


def detection_speed(frames: list[np.ndarray], detectors: dict) -> dict:
    """ms / frame of yolo-pose 960, YOLOX-nano and top-down pose on YOLOX's boxes."""
    pose, yolox = detectors["yolo-pose"], detectors["yolox"]
    out = {}
    for name, step in (
        ("yolo-pose 960 (boxes + keypoints)", lambda f: pose.detect(f, 1)),
        ("YOLOX-nano 416 (boxes)", lambda f: yolox.detect(f, 1)),
        ("top-down pose on YOLOX boxes", lambda f: pose.pose_on_boxes(f, yolox.detect(f, 1).boxes)),
    ):
        out[name] = ms_per_frame(step, frames)
    yolox_ms = out["YOLOX-nano 416 (boxes)"]
    out["top-down pose on YOLOX boxes"] -= yolox_ms  # that step re-ran YOLOX for its boxes
    out["YOLOX-nano + top-down pose"] = yolox_ms + out["top-down pose on YOLOX boxes"]
    return {name: {"ms_per_frame": ms, "fps": 1000 / ms} for name, ms in out.items()}


def kpr_speed(frame: np.ndarray, detections, repeats: int) -> dict:
    """Prompt rendering, crops, the default ``--reid`` stage and model in PyTorch and in
    onnxruntime (fp32, and the int8 stage), each next to its bare trunk in the same
    runtime, at each batch size.

    At batch B the frame's real detections are repeated up to B: the models and the
    trunks (``features``) are timed on one forward of those B crops; the stages are timed
    as a whole (``appearance(frame, detections)``: prompts, crops and the model in chunks
    of the stage's ``batch_size``) on a frame of B people made of copies of the real
    frame side by side (:func:`side_by_side`), so every person keeps the neighbours, and
    negative prompts, it has in the real frame. All of them, at every batch, are timed in
    the same interleaved rounds (:func:`timed_together`). The ONNX files are the cached,
    checked exports ``kpr-track track`` runs (:mod:`kpr_track.reid.onnx_cache`).
    """
    import torch

    from kpr_track.onnx_runtime import cpu_session
    from kpr_track.prompts import render_prompts
    from kpr_track.reid import DEFAULT_REID, build_reid
    from kpr_track.reid.crops import crop_people

    appearance = build_reid(DEFAULT_REID, backend="torch")
    onnx_stage = build_reid(DEFAULT_REID, backend="onnx")
    int8_stage = build_reid(DEFAULT_REID, backend="onnx", precision="int8")
    model, size = appearance.model, appearance.input_size
    with tempfile.TemporaryDirectory() as folder:
        onnx_trunk = cpu_session(exported_trunk(model.trunk, size, Path(folder) / "trunk.onnx"))
    n = len(detections)
    boxes, keypoints, scores = detections.boxes, detections.keypoints, detections.scores
    prompt_size = appearance.prompt_size
    render_s = timed(lambda: render_prompts(boxes, keypoints, prompt_size, scores=scores), repeats)
    crop_s = timed(lambda: crop_people(frame, boxes, size), repeats)
    crops, prompts = appearance.inputs(frame, detections)
    out = {
        "reid": DEFAULT_REID,
        "detections_in_frame": n,
        "prompt_render_ms_per_crop": 1000 * render_s / n,
        "crop_ms_per_crop": 1000 * crop_s / n,
        "stage_batch_size": appearance.batch_size,
        "interleaved_rounds": repeats,
        "batches": {},
    }
    calls = {}
    for batch in BATCHES:
        index = np.arange(batch) % n  # the frame's real crops, repeated up to the batch
        wide, people = side_by_side(frame, detections, batch)
        images, prompt = crops[index].contiguous(), prompts[index].contiguous()
        calls[batch, "stage"] = partial(appearance, wide, people)
        calls[batch, "model"] = partial(model, images, prompt)
        calls[batch, "trunk"] = partial(model.trunk.features, images)
        calls[batch, "onnx_model"] = partial(onnx_stage.net, images, prompt)
        calls[batch, "onnx_stage"] = partial(onnx_stage, wide, people)
        calls[batch, "onnx_trunk"] = partial(onnx_trunk.run, None, {"images": images.numpy()})
        calls[batch, "int8_stage"] = partial(int8_stage, wide, people)
    with torch.inference_mode():
        seconds = timed_together(calls, repeats)
    for batch in BATCHES:
        took = {what: seconds[b, what] for b, what in seconds if b == batch}
        out["batches"][batch] = {
            "kpr_model_crops_per_s": batch / took["model"],
            "trunk_crops_per_s": batch / took["trunk"],
            "kpr_stage_crops_per_s": batch / took["stage"],
            "model_vs_trunk": took["model"] / took["trunk"],
            "stage_vs_trunk": took["stage"] / took["trunk"],
            "onnx_model_crops_per_s": batch / took["onnx_model"],
            "onnx_stage_crops_per_s": batch / took["onnx_stage"],
            "onnx_trunk_crops_per_s": batch / took["onnx_trunk"],
            "onnx_stage_vs_onnx_trunk": took["onnx_stage"] / took["onnx_trunk"],
            "int8_stage_crops_per_s": batch / took["int8_stage"],
            "onnx_model_speedup": took["model"] / took["onnx_model"],
        }
    return out


def exported_trunk(trunk, size: tuple[int, int], path: Path) -> Path:
    """The bare trunk's feature map (``trunk.features``, input ``images`` `(N, 3, H, W)`)
    exported to ``path`` as ONNX with a dynamic batch, like the appearance model."""
    import copy
    import warnings

    import torch

    class Features(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = copy.deepcopy(trunk).cpu().to(memory_format=torch.contiguous_format)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.trunk.features(images)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Features().eval(),
            (torch.zeros(2, 3, *size),),
            str(path),
            dynamo=False,
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
            opset_version=17,
        )
    return path


def side_by_side(frame: np.ndarray, detections, count: int) -> tuple:
    """A frame of ``count`` people: copies of ``frame`` side by side, each with the frame's
    detections moved along (the first ``count`` of them, copy after copy).

    Returns:
        ``(frame (H, copies * W, 3) uint8, Detections of count people)``.
    """
    from kpr_track.detections import Detections

    n, width = len(detections), frame.shape[1]
    copies = -(-count // n)
    people = detections[np.arange(count) % n]
    shift = (np.arange(count) // n * width).astype(np.float32)
    keypoints = people.keypoints.copy()
    keypoints[..., 0] += shift[:, None]
    boxes = people.boxes + shift[:, None] * np.array([1, 0, 1, 0], np.float32)
    return np.concatenate([frame] * copies, axis=1), Detections(boxes, people.scores, keypoints)


def association_speed(repeats: int, seed: int = 0) -> dict:
    """The ``kpr`` tracker's association for a crowd of T tracks x T detections.

    A synthetic crowd shaped like the real thing: T people walking in a 1920 x 1080
    frame (boxes 30-90 x 80-240 px), each with its own 1 + 8 slots of 256-d unit
    embeddings (the default KPR's D), 70 % of the slots visible, seen for 12 frames so
    every track is confirmed with a full gallery; an illustrative calibration (midpoint
    0.3) turns distances into p_same. Timed on the next frame: the tracker's fused cost
    (IoU, Mahalanobis gate, part-visibility distance of the gated pairs, OC-SORT
    direction) and the assignment on it; ``distance_ms`` is the part distance of every
    pair, without gating, for reference.
    """
    from kpr_track.detections import Detections
    from kpr_track.reid.calibration import DistanceCalibration
    from kpr_track.trackers import load_tracker
    from kpr_track.trackers.assignment import linear_assignment
    from kpr_track.trackers.costs import appearance_slots

    calibration = DistanceCalibration(0.3, 20.0, 0.15, 0.5, "illustrative")
    rng = np.random.default_rng(seed)

    def unit(array: np.ndarray) -> np.ndarray:
        return (array / np.linalg.norm(array, axis=-1, keepdims=True)).astype(np.float32)

    out = {}
    for count in TRACK_COUNTS:
        tracker = load_tracker("kpr", frame_rate=30.0, calibration=calibration)
        corner = rng.uniform([0, 0], [1830, 840], (count, 2))
        size = rng.uniform([30, 80], [90, 240], (count, 2))
        velocity = rng.normal(0, 2, (count, 2))
        identity = unit(rng.normal(size=(count, 9, 256)))
        for step in range(13):
            shown = corner + step * velocity + rng.normal(0, 1, (count, 2))
            detections = Detections(
                np.c_[shown, shown + size].astype(np.float32),
                np.full(count, 0.9, np.float32),
                np.zeros((count, 17, 3), np.float32),
                # per-component noise 0.01 (norm ~0.16 over 256 dims): the same person
                unit(identity + rng.normal(0, 0.01, identity.shape)),
                (rng.uniform(size=(count, 9)) > 0.3).astype(np.float32),
            )
            if step < 12:
                tracker.update(detections)
        everyone, people = np.arange(len(tracker.tracks)), np.arange(count)
        cost = tracker.association_cost(everyone, people, detections)
        match_cost = tracker.config.match_cost
        remembered = [t for t in tracker.tracks if t.gallery is not None]
        gallery = np.stack([t.gallery for t in remembered])
        valid = np.stack([t.gallery_valid for t in remembered])
        visible = detections.visibility > 0.5
        every_pair = (gallery, valid, detections.embeddings, visible)
        out[count] = {
            "tracks": len(everyone),
            "gated_pairs_share": float(np.isfinite(cost).mean()),
            "distance_ms": 1000 * timed(appearance_slots, repeats, *every_pair),
            "fused_cost_ms": 1000
            * timed(tracker.association_cost, repeats, everyone, people, detections),
            "assignment_ms": 1000 * timed(linear_assignment, repeats, cost, match_cost),
            "matches": int(len(linear_assignment(cost, match_cost)[0])),
        }
        out[count]["fused_cost_vs_assignment"] = (
            out[count]["fused_cost_ms"] / out[count]["assignment_ms"]
        )
    tracemalloc.start()  # outside the timings: tracing slows every allocation
    linear_assignment(tracker.association_cost(everyone, people, detections), match_cost)
    out["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out
