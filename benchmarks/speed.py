"""Per-stage throughput of kpr-track on this CPU, with ratios that survive noisy machines.

Stages, on PETS09-S2L1 (real frames, real detections):

- decode: OpenCV decoding of the video;
- detection + pose: yolo11n-pose at imgsz 960 (boxes and keypoints in one pass), and
  YOLOX-nano followed by top-down pose on its boxes;
- prompt rendering and RoIAlign crops of a frame's detections;
- the default KPR model (``--reid kpr``) at batch 1 / 8 / 32 next to its bare trunk
  forward at the same batches (the ratio is the cost of prompts + part pooling);
- association: part-visibility distance matrix, fused cost (IoU + Kalman gate +
  appearance) and assignment (lap) for 10 / 30 / 100 / 300 tracks x detections;
- end to end: decode + detection + KPR + tracking over the first ``--frames`` frames.

Peak memory: the process's maximum resident set size (``resource.getrusage``) after
each section, and the peak of Python-level allocations (``tracemalloc``, which sees
NumPy arrays but not torch's allocator) during the association section.

Run: ``python benchmarks/speed.py`` or ``kpr-track bench speed``; writes ``speed.json``
and ``speed.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from common import (
    RESULTS_DIR,
    SEQUENCE_GROUPS,
    YOLO_POSE_OPTIONS,
    YOLOX_OPTIONS,
    YOLOX_WEIGHTS,
    add_runtime_arguments,
    benchmark_main,
    check_shared,
    machine_info,
    markdown_table,
)

from kpr_track.evaluation.mot import read_seqinfo
from kpr_track.video import sequence_frames

PETS09 = SEQUENCE_GROUPS["PETS09-S2L1"][0]
BATCHES = (1, 8, 32)
TRACK_COUNTS = (10, 30, 100, 300)


def timed(function: Callable[..., object], repeats: int, *args: object) -> float:
    """Median wall-clock seconds of ``repeats`` calls ``function(*args)`` (after one
    untimed warm-up call)."""
    function(*args)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(*args)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def peak_rss_mib() -> float:
    """Maximum resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decode_speed(frames: int) -> dict:
    """Frames per second of decoding the PETS09 video."""
    start = time.perf_counter()
    count = sum(1 for _ in sequence_frames(PETS09, frames))
    seconds = time.perf_counter() - start
    return {"frames": count, "ms_per_frame": 1000 * seconds / count, "fps": count / seconds}


def detection_speed(frames: list[np.ndarray], detectors: dict) -> dict:
    """ms / frame of yolo-pose 960, YOLOX-nano and top-down pose on YOLOX's boxes."""
    pose, yolox = detectors["yolo-pose"], detectors["yolox"]
    out = {}
    for name, step in (
        ("yolo-pose 960 (boxes + keypoints)", lambda f: pose.detect(f, 1)),
        ("YOLOX-nano 416 (boxes)", lambda f: yolox.detect(f, 1)),
        ("top-down pose on YOLOX boxes", lambda f: pose.pose_on_boxes(f, yolox.detect(f, 1).boxes)),
    ):
        step(frames[0])
        start = time.perf_counter()
        for frame in frames:
            step(frame)
        out[name] = 1000 * (time.perf_counter() - start) / len(frames)
    yolox_ms = out["YOLOX-nano 416 (boxes)"]
    out["top-down pose on YOLOX boxes"] -= yolox_ms  # that step re-ran YOLOX for its boxes
    out["YOLOX-nano + top-down pose"] = yolox_ms + out["top-down pose on YOLOX boxes"]
    return {name: {"ms_per_frame": ms, "fps": 1000 / ms} for name, ms in out.items()}


def kpr_speed(frame: np.ndarray, detections, repeats: int) -> dict:
    """Prompt rendering, crops, the KPR stage, its model and the bare trunk at each batch
    size, and the same model exported to ONNX run by onnxruntime.

    At batch B the frame's real detections are repeated up to B: the model, its ONNX
    export and the trunk (``features``) are timed on one forward of those B crops; the
    stage is timed as a whole (``appearance(frame, detections)``: prompts, crops and the
    model in chunks of the stage's ``batch_size``) on a frame of B people made of copies
    of the real frame side by side (:func:`side_by_side`), so every person keeps the
    neighbours, and negative prompts, it has in the real frame.
    """
    import tempfile

    import torch

    from kpr_track.prompts import render_prompts
    from kpr_track.reid import DEFAULT_REID, build_reid
    from kpr_track.reid.crops import crop_people
    from kpr_track.reid.export import export_onnx, load_onnx_appearance

    appearance = build_reid(DEFAULT_REID)
    model, size = appearance.model, appearance.input_size
    with tempfile.TemporaryDirectory() as folder:
        export_onnx(appearance, DEFAULT_REID, Path(folder) / "kpr.onnx")
        onnx_stage = load_onnx_appearance(Path(folder) / "kpr.onnx")
    n = len(detections)
    boxes, keypoints, scores = detections.boxes, detections.keypoints, detections.scores
    render_s = timed(lambda: render_prompts(boxes, keypoints, size, scores=scores), repeats)
    crop_s = timed(lambda: crop_people(frame, boxes, size), repeats)
    crops, prompts = appearance.inputs(frame, detections)
    out = {
        "detections_in_frame": n,
        "prompt_render_ms_per_crop": 1000 * render_s / n,
        "crop_ms_per_crop": 1000 * crop_s / n,
        "stage_batch_size": appearance.batch_size,
        "batches": {},
    }
    with torch.inference_mode():
        for batch in BATCHES:
            index = np.arange(batch) % n  # the frame's real crops, repeated up to the batch
            wide, people = side_by_side(frame, detections, batch)
            images, prompt = crops[index].contiguous(), prompts[index].contiguous()
            stage_s = timed(appearance, repeats, wide, people)
            model_s = timed(model, repeats, images, prompt)
            trunk_s = timed(model.trunk.features, repeats, images)
            onnx_s = timed(onnx_stage.net, repeats, images, prompt)
            onnx_stage_s = timed(onnx_stage, repeats, wide, people)
            out["batches"][batch] = {
                "kpr_model_crops_per_s": batch / model_s,
                "trunk_crops_per_s": batch / trunk_s,
                "kpr_stage_crops_per_s": batch / stage_s,
                "model_vs_trunk": model_s / trunk_s,
                "stage_vs_trunk": stage_s / trunk_s,
                "onnx_model_crops_per_s": batch / onnx_s,
                "onnx_stage_crops_per_s": batch / onnx_stage_s,
                "onnx_model_speedup": model_s / onnx_s,
            }
    return out


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
    """Distance, fused cost and assignment for T tracks x T detections with the ``kpr`` preset.

    Synthetic but shaped like the real thing: 1 + 8 slots of 256-d unit embeddings (the
    default KPR's D), 70 % of slots visible, a gallery of ``gallery_size`` views per slot,
    each detection a jittered copy of one track (box and embedding), so the assignment has
    real matches to find; an illustrative calibration (midpoint 0.3) turns distances into
    p_same.
    """
    from kpr_track.reid.calibration import DistanceCalibration
    from kpr_track.trackers import load_tracker
    from kpr_track.trackers.assignment import linear_assignment
    from kpr_track.trackers.costs import appearance_cost, fuse_costs, iou_cost, mahalanobis_gate
    from kpr_track.trackers.kalman import KalmanFilter, xyxy_to_xyah

    cfg = load_tracker("kpr").config
    calibration = DistanceCalibration(0.3, 20.0, 0.15, 0.5, "illustrative")
    rng = np.random.default_rng(seed)
    kalman = KalmanFilter()

    def unit(array: np.ndarray) -> np.ndarray:
        return (array / np.linalg.norm(array, axis=-1, keepdims=True)).astype(np.float32)

    def fused(boxes, dets, means, covariances, emb, det_emb, vis, det_vis) -> np.ndarray:
        distance, shared = appearance_cost(emb, vis, det_emb, det_vis)
        p_same = np.where(shared > 0, calibration.same_probability(distance), 0.5)
        return fuse_costs(
            iou_cost(boxes, dets),
            same_probability=p_same,
            appearance_weight=cfg.appearance_weight * np.minimum(shared / 3, 1.0),
            gate=mahalanobis_gate(kalman, means, covariances, dets, cfg.gate_threshold),
            min_iou=cfg.min_iou,
        )

    out = {}
    tracemalloc.start()
    for count in TRACK_COUNTS:
        corners = rng.uniform(0, 1800, (count, 2))
        boxes = np.c_[corners, corners + rng.uniform([30, 80], [90, 240], (count, 2))]
        dets = boxes + rng.normal(0, 3, boxes.shape)
        states = [kalman.initiate(xyxy_to_xyah(box)) for box in boxes]
        means, covariances = np.stack([s[0] for s in states]), np.stack([s[1] for s in states])
        views = unit(rng.normal(size=(count, 9, cfg.gallery_size, 256)))
        det_emb = unit(views[:, :, 0] + rng.normal(0, 0.015, views[:, :, 0].shape))
        emb = views
        vis = rng.uniform(size=(count, 9, cfg.gallery_size)) > 0.3
        det_vis = (rng.uniform(size=(count, 9)) > 0.3).astype(np.float32)
        inputs = (boxes, dets, means, covariances, emb, det_emb, vis, det_vis)
        cost = fused(*inputs)
        out[count] = {
            "distance_ms": 1000 * timed(appearance_cost, repeats, emb, vis, det_emb, det_vis),
            "fused_cost_ms": 1000 * timed(fused, repeats, *inputs),
            "assignment_ms": 1000 * timed(linear_assignment, repeats, cost, cfg.match_cost),
            "matches": int(len(linear_assignment(cost, cfg.match_cost)[0])),
        }
    out["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out


def end_to_end(frames: int) -> dict:
    """The whole tracking pipeline (yolo-pose 960, default KPR, kpr tracker) per stage."""
    from kpr_track.detectors import build_detector
    from kpr_track.pipeline import StageTimer, TrackingPipeline
    from kpr_track.reid import DEFAULT_REID, build_reid
    from kpr_track.trackers import load_tracker

    timer = StageTimer()
    detector, appearance = (
        build_detector("yolo-pose", **YOLO_POSE_OPTIONS),
        build_reid(DEFAULT_REID),
    )
    fps = float(read_seqinfo(PETS09)["frameRate"])
    tracker = load_tracker("kpr", frame_rate=fps, calibration=appearance.calibration)
    pipeline = TrackingPipeline(detector, appearance, tracker, timer)
    iterator = sequence_frames(PETS09, frames)
    _, first = next(iterator)
    appearance(first, detector.detect(first, 1))  # warm-up, untimed
    iterator = sequence_frames(PETS09, frames)
    people = 0
    start = time.perf_counter()
    while True:
        with timer("decode"):
            item = next(iterator, None)
        if item is None:
            break
        detections, _ = pipeline.step(item[1], item[0])
        people += len(detections)
    wall = time.perf_counter() - start
    count = timer.calls["decode"] - 1
    ms = {stage: 1000 * seconds / count for stage, seconds in timer.seconds.items()}
    return {
        "frames": count,
        "detections_per_frame": people / count,
        "fps": count / wall,
        "ms_per_frame": ms,
        "share_of_time": {stage: value / sum(ms.values()) for stage, value in ms.items()},
        "association_vs_detection": ms["track"] / ms["detect"],
        "reid_vs_detection": ms["reid"] / ms["detect"],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The speed benchmark's command-line options."""
    parser.add_argument("--frames", type=int, default=50, help="frames of the end-to-end run")
    parser.add_argument("--detect-frames", type=int, default=10, help="frames per detector")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="output folder")
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Measure every section and write speed.json / speed.md."""
    import torch

    from kpr_track.detectors import build_detector

    check_shared()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    memory = {}
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "threads": torch.get_num_threads(),
    }
    report["decode"] = decode_speed(200)
    memory["decode"] = peak_rss_mib()
    frames = [frame for _, frame in sequence_frames(PETS09, 100)][-args.detect_frames :]
    detectors = {
        "yolo-pose": build_detector("yolo-pose", **YOLO_POSE_OPTIONS),
        "yolox": build_detector(f"yolox:{YOLOX_WEIGHTS}", **YOLOX_OPTIONS),
    }
    report["detection"] = detection_speed(frames, detectors)
    memory["detection"] = peak_rss_mib()
    report["kpr"] = kpr_speed(
        frames[-1], detectors["yolo-pose"].detect(frames[-1], 100), args.repeats
    )
    memory["kpr"] = peak_rss_mib()
    report["association"] = association_speed(args.repeats)
    memory["association"] = peak_rss_mib()
    report["end_to_end"] = end_to_end(args.frames)
    memory["end_to_end"] = peak_rss_mib()
    report["peak_rss_mib_after"] = memory
    report["machine"] = machine_info()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(report, indent=1))
    (args.out / "speed.md").write_text(markdown_report(report))
    print((args.out / "speed.md").read_text())
    return 0


TEMPLATE = """\
# kpr-track speed on this CPU

`{command}`, {created}, {platform}, {cpus} CPUs, torch threads {threads}; load average {load}
at the end. The machine is shared with other jobs: compare ratios rather than absolute times.

## End to end

PETS09-S2L1, first {e2e_frames} frames (models warmed up first), {people:.1f} detections per
frame; yolo11n-pose 960 + default KPR + `kpr` tracker: **{e2e_fps:.2f} FPS**.
Association / detection time = {assoc_ratio:.4f}; KPR appearance / detection = {reid_ratio:.2f}.

{e2e_table}

## Stages

**Decode** (OpenCV, PETS09 768x576 AVI): {decode_ms:.1f} ms/frame ({decode_fps:.0f} FPS).

**Detection + pose** (PETS09 frames):

{detect_table}

**KPR appearance** (default `--reid`, OSNet retail-0287 trunk, 256x128 crops; the {crops}
detections of a real frame repeated up to the batch). Prompt rendering {render_ms:.2f}
ms/crop, RoIAlign crops {crop_ms:.2f} ms/crop (for the {crops}). Stage = `appearance(frame,
detections)` timed whole: prompts, crops and the model in chunks of {stage_batch}; model,
ONNX (its `kpr-track export --format onnx` file in onnxruntime) and bare trunk: one
forward of the whole batch. The ratios are times per crop.

{kpr_table}

**Association** (T tracks x T detections, 1 + 8 parts of 256-d; ms per call):

{assoc_table}

## Memory

Max resident set size (MiB) after each section: {memory}. Python-level peak during the
association section (tracemalloc; NumPy arrays, not torch tensors): {tracemalloc:.0f} MiB.
"""


def markdown_report(report: dict) -> str:
    """speed.md: one table per section, ratios next to absolute numbers."""
    e2e, kpr, machine = report["end_to_end"], report["kpr"], report["machine"]
    association = dict(report["association"])
    tracemalloc_mib = association.pop("tracemalloc_peak_mib")
    detect = [
        [k, f"{v['ms_per_frame']:.0f}", f"{v['fps']:.2f}"] for k, v in report["detection"].items()
    ]
    batches = [
        [b, f"{v['kpr_stage_crops_per_s']:.1f}", f"{v['kpr_model_crops_per_s']:.1f}"]
        + [
            f"{v['trunk_crops_per_s']:.1f}",
            f"{v['stage_vs_trunk']:.2f}",
            f"{v['model_vs_trunk']:.2f}",
            f"{v['onnx_stage_crops_per_s']:.1f}",
            f"{v['onnx_model_crops_per_s']:.1f}",
        ]
        for b, v in kpr["batches"].items()
    ]
    assoc = [
        [t, f"{v['distance_ms']:.2f}", f"{v['fused_cost_ms']:.2f}", f"{v['assignment_ms']:.2f}"]
        for t, v in association.items()
    ]
    stages = [
        [k, f"{v:.1f}", f"{100 * e2e['share_of_time'][k]:.1f}"]
        for k, v in e2e["ms_per_frame"].items()
    ]
    return TEMPLATE.format(
        command=report["command"],
        created=report["created"],
        platform=machine["platform"],
        cpus=machine["cpu_count"],
        threads=report["threads"],
        load=machine["load_average_1_5_15"],
        e2e_frames=e2e["frames"],
        people=e2e["detections_per_frame"],
        e2e_fps=e2e["fps"],
        assoc_ratio=e2e["association_vs_detection"],
        reid_ratio=e2e["reid_vs_detection"],
        e2e_table=markdown_table(["stage", "ms/frame", "% of time"], stages),
        decode_ms=report["decode"]["ms_per_frame"],
        decode_fps=report["decode"]["fps"],
        detect_table=markdown_table(["stage", "ms/frame", "FPS"], detect),
        crops=kpr["detections_in_frame"],
        render_ms=kpr["prompt_render_ms_per_crop"],
        crop_ms=kpr["crop_ms_per_crop"],
        stage_batch=kpr["stage_batch_size"],
        kpr_table=markdown_table(
            ["batch", "KPR stage crops/s", "KPR model crops/s", "bare trunk crops/s"]
            + ["stage / trunk", "model / trunk", "ONNX stage crops/s", "ONNX model crops/s"],
            batches,
        ),
        assoc_table=markdown_table(
            ["T", "part distance", "fused cost (IoU, gate, appearance)", "assignment (lap)"], assoc
        ),
        memory=", ".join(f"{k} {v:.0f}" for k, v in report["peak_rss_mib_after"].items()),
        tracemalloc=tracemalloc_mib,
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Script and ``kpr-track bench speed`` entry point; errors print one line, exit 2."""
    return benchmark_main(__doc__, add_arguments, run, argv, prog)


if __name__ == "__main__":
    raise SystemExit(main())
