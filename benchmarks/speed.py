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
NumPy arrays but not torch's allocator) of one association at the largest T.

Run: ``python benchmarks/speed.py`` or ``kpr-track bench speed``; writes ``speed.json``
and ``speed.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
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

from kpr_track.errors import KprTrackError
from kpr_track.evaluation.mot import read_seqinfo
from kpr_track.io.video import sequence_frames

PETS09 = SEQUENCE_GROUPS["PETS09-S2L1"][0]
BATCHES = (1, 8, 32)
TRACK_COUNTS = (10, 30, 100, 300)
# The end-to-end runs: CLI defaults, the same with the stages overlapped, the YOLOX fast
# path with the KPR stage in torch, then in onnxruntime.
E2E_RUNS = ("end_to_end", "end_to_end_overlap", "end_to_end_yolox", "end_to_end_yolox_onnx")


def timed(function: Callable[..., object], repeats: int, *args: object) -> float:
    """Median wall-clock seconds of ``repeats`` calls ``function(*args)`` (after one
    untimed warm-up call)."""
    return timed_together({"call": lambda: function(*args)}, repeats)["call"]


def timed_together(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall-clock seconds of each of ``calls``, timed in ``repeats`` interleaved
    rounds (every call once per round, after one untimed warm-up round).

    On a shared machine the speed drifts over seconds; interleaving exposes every call to
    the same drift, so the ratios of the medians hold where times taken one after the
    other do not (measured here: stage / trunk at batch 8 from 1.21 to 1.49 over three runs
    timed one after the other).
    """
    for call in calls.values():
        call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


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
    neighbours, and negative prompts, it has in the real frame. All of them, at every
    batch, are timed in the same interleaved rounds (:func:`timed_together`).
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
            "onnx_model_speedup": took["model"] / took["onnx_model"],
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
    from kpr_track.trackers.costs import appearance_cost

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
                unit(identity + rng.normal(0, 0.05, identity.shape)),
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
            "distance_ms": 1000 * timed(appearance_cost, repeats, *every_pair),
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


def tracking_options(**changes: object) -> argparse.Namespace:
    """The ``kpr-track track`` defaults (detector, ReID, tracker ...), with ``changes``."""
    from kpr_track.cli.track import add_tracking_options

    parser = argparse.ArgumentParser()
    add_tracking_options(parser)
    return argparse.Namespace(**{**vars(parser.parse_args([])), **changes})


def end_to_end(frames: int, options: argparse.Namespace, overlap: bool | None = None) -> dict:
    """The whole tracking pipeline built as ``kpr-track track`` builds it from
    ``options``, over the first ``frames`` PETS09 frames, per stage.

    ``overlap``: as :meth:`TrackingPipeline.run` (None: the CLI's choice for this
    machine). Overlapped, decoding and detection of the next frame run in a worker
    thread while appearance and tracking handle the current one, so the stage times add
    up to more than the wall time; ``share_of_time`` is each stage's share of their sum.
    """
    from kpr_track.pipeline import StageTimer, build_pipeline, overlap_pays

    pipeline = build_pipeline(options, float(read_seqinfo(PETS09)["frameRate"]))
    iterator = sequence_frames(PETS09, frames + 1)
    first_id, first = next(iterator)
    warm = pipeline.detect(first, first_id)  # warm-up, untimed and unseen by the tracker
    if pipeline.appearance is not None:
        pipeline.appearance(first, warm)
    pipeline.timer = StageTimer()
    people = 0
    start = time.perf_counter()
    for _, _, detections, _ in pipeline.run(iterator, overlap=overlap):
        people += len(detections)
    wall = time.perf_counter() - start
    timer = pipeline.timer
    count = timer.calls["detect"]
    ms = {stage: 1000 * seconds / count for stage, seconds in timer.seconds.items()}
    return {
        "detector": options.det,
        "reid": options.reid,
        "reid_backend": options.reid_backend,
        "tracker": options.tracker,
        "overlap": overlap_pays() if overlap is None else overlap,
        "frames": count,
        "detections_per_frame": people / count,
        "fps": count / wall,
        "ms_per_frame": ms,
        "share_of_time": {stage: value / sum(ms.values()) for stage, value in ms.items()},
        "association_vs_detection": ms["track"] / ms["detect"],
        "reid_vs_detection": ms.get("reid", 0.0) / ms["detect"],
    }


def exported_reid(name: str, folder: Path) -> Path:
    """The ``--reid`` model ``name`` exported to ``folder`` as ONNX (``kpr-track export``)."""
    from kpr_track.reid import build_reid
    from kpr_track.reid.export import export_onnx

    path = folder / f"{name}.onnx"
    export_onnx(build_reid(name), name, path)
    return path


def long_run_memory(passes: tuple[int, ...] = (1, 3)) -> dict:
    """Peak resident set size of ``kpr-track track`` (default settings) on the whole
    PETS09 video and on the video played ``n`` times through, each run in its own
    process, read from its ``/proc/<pid>/status`` ``VmHWM`` while it runs (the rusage of
    a child forked from this large process would report this process's peak instead).
    """
    video = PETS09 / "vtest.avi"
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in passes:
            source = video if count == 1 else _replayed(video, count, Path(tmp))
            command = [sys.executable, "-m", "kpr_track", "track", str(source)]
            command += ["--out", f"{tmp}/run{count}", "--no-progress"]
            start = time.perf_counter()
            child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            peak = 0.0
            while child.poll() is None:
                peak = max(peak, _peak_rss_mib(child.pid))
                time.sleep(0.2)
            if child.returncode != 0:
                raise KprTrackError(f"{' '.join(command)} failed (exit status {child.returncode})")
            summary = json.loads((Path(tmp) / f"run{count}" / "summary.json").read_text())
            out[f"passes_{count}"] = {
                "frames": summary["frames"],
                "peak_rss_mib": peak,
                "wall_seconds": time.perf_counter() - start,
            }
    first, last = out[f"passes_{passes[0]}"], out[f"passes_{passes[-1]}"]
    out["peak_rss_ratio"] = last["peak_rss_mib"] / first["peak_rss_mib"]
    return out


def _peak_rss_mib(pid: int) -> float:
    """``VmHWM`` (peak resident set size) of a running Linux process, MiB; 0 once gone.

    Raises:
        KprTrackError: on a system without ``/proc`` (the long run needs Linux).
    """
    if not Path("/proc/self/status").is_file():
        raise KprTrackError("--long-run reads /proc/<pid>/status: it needs Linux")
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # the process has just exited
        return 0.0
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return int(fields.get("VmHWM", "0 kB").split()[0]) / 1024


def _replayed(video: Path, count: int, folder: Path) -> Path:
    """``video`` played ``count`` times through, written as an MJPG AVI in ``folder``."""
    import cv2

    from kpr_track.io.video import VideoReader

    info = VideoReader(video).info
    path = folder / f"{video.stem}_x{count}.avi"
    fourcc = cv2.VideoWriter_fourcc(*"MJPG")
    writer = cv2.VideoWriter(str(path), fourcc, info.fps, (info.width, info.height))
    for _ in range(count):
        for frame in VideoReader(video):
            writer.write(frame)
    writer.release()
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The speed benchmark's command-line options."""
    parser.add_argument("--frames", type=int, default=50, help="frames of the end-to-end run")
    parser.add_argument("--detect-frames", type=int, default=10, help="frames per detector")
    parser.add_argument(
        "--repeats", type=int, default=9, help="timed calls (rounds) per measurement"
    )
    parser.add_argument(
        "--long-run",
        action="store_true",
        help="also measure peak memory of kpr-track track on the whole PETS09 video and on "
        "it played three times through (two subprocesses; about 20 min on 2 cores)",
    )
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
    report["end_to_end"] = end_to_end(args.frames, tracking_options())
    reference = report["detection"]["yolo-pose 960 (boxes + keypoints)"]["fps"]
    report["end_to_end_overlap"] = end_to_end(args.frames, tracking_options(), overlap=True)
    fast = tracking_options(det=f"yolox:{YOLOX_WEIGHTS}")
    report["end_to_end_yolox"] = end_to_end(args.frames, fast)
    with tempfile.TemporaryDirectory() as folder:
        exported = exported_reid(fast.reid, Path(folder))
        fastest = tracking_options(det=fast.det, reid=str(exported), reid_backend="onnx")
        report["end_to_end_yolox_onnx"] = end_to_end(args.frames, fastest)
    for key in E2E_RUNS:
        report[key]["vs_yolo_pose_960_detector"] = report[key]["fps"] / reference
    memory["end_to_end"] = peak_rss_mib()
    if args.long_run:
        report["long_run"] = long_run_memory()
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

## Targets (issue 12; ratios measured in this run)

{targets_table}

## End to end

PETS09-S2L1, first {e2e_frames} frames (models warmed up first), {people:.1f} detections per
frame; `kpr-track track` defaults (`--det {e2e_det}`, `--reid {e2e_reid}`, `--tracker
{e2e_tracker}`): **{e2e_fps:.2f} FPS**. With overlap, decoding and detection of the next
frame run in a worker thread (each stage with half the torch threads), so stage times
add up to more than the wall time; the CLI overlaps from 4 torch threads up.

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
forward of the whole batch. Everything in this table is timed in the same {kpr_rounds}
interleaved rounds (medians), so the ratios share the machine's drift. The ratios are
times per crop.

{kpr_table}

**Association** (`kpr` tracker, T confirmed tracks x T detections of a synthetic crowd,
1 + 8 parts of 256-d, galleries of 5; ms per call). The fused cost computes the gate for
every pair and IoU, part distance and direction for the gated pairs only; "every pair" is
the part distance of all T x T pairs, for reference:

{assoc_table}

## Memory

Max resident set size (MiB) after each section: {memory}. Python-level peak of one
association at the largest T (tracemalloc; NumPy arrays, not torch tensors):
{tracemalloc:.0f} MiB. {long_run}
"""


def targets(report: dict) -> list[list[str]]:
    """The issue-12 targets: ``[target, measured, met]`` rows."""
    batches = report["kpr"]["batches"]
    largest = report["association"][TRACK_COUNTS[-1]]
    rows = [
        ["end to end (defaults) >= 2 x yolo-pose 960 detector FPS"]
        + _check(report["end_to_end"]["vs_yolo_pose_960_detector"], ">=", 2.0),
        ["end to end (YOLOX fast path) >= 2 x yolo-pose 960 detector FPS"]
        + _check(report["end_to_end_yolox"]["vs_yolo_pose_960_detector"], ">=", 2.0),
        ["end to end (YOLOX fast path, KPR in onnxruntime) >= 2 x yolo-pose 960 detector FPS"]
        + _check(report["end_to_end_yolox_onnx"]["vs_yolo_pose_960_detector"], ">=", 2.0),
        ["KPR stage / bare trunk at batch 8 <= 1.3"]
        + _check(batches[8]["stage_vs_trunk"], "<=", 1.3),
        ["KPR stage crops/s at batch 32 / at batch 8 >= 1"]
        + _check(
            batches[32]["kpr_stage_crops_per_s"] / batches[8]["kpr_stage_crops_per_s"], ">=", 1.0
        ),
        [f"association at {TRACK_COUNTS[-1]} x {TRACK_COUNTS[-1]}: fused cost / assignment <= 5"]
        + _check(largest["fused_cost_vs_assignment"], "<=", 5.0),
    ]
    if "long_run" in report:
        rows.append(
            ["peak RSS, video three times through / once <= 1.10"]
            + _check(report["long_run"]["peak_rss_ratio"], "<=", 1.10)
        )
    return rows


def _check(value: float, relation: str, bound: float) -> list[str]:
    met = value >= bound if relation == ">=" else value <= bound
    return [f"{value:.2f}", "yes" if met else "no"]


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
        [t, f"{100 * v['gated_pairs_share']:.1f}", f"{v['distance_ms']:.2f}"]
        + [f"{v['fused_cost_ms']:.2f}", f"{v['assignment_ms']:.2f}"]
        + [f"{v['fused_cost_vs_assignment']:.1f}"]
        for t, v in association.items()
    ]
    long_run = report.get("long_run")
    long_run_text = (
        "Whole PETS09 video with the defaults, each run in its own process: peak RSS "
        + ", ".join(
            f"{v['frames']} frames {v['peak_rss_mib']:.0f} MiB"
            for k, v in long_run.items()
            if k.startswith("passes_")
        )
        + f" (ratio {long_run['peak_rss_ratio']:.3f})."
        if long_run
        else "Long run not measured (`--long-run`)."
    )
    runs = [report[key] for key in E2E_RUNS]
    stages = sorted({stage for run in runs for stage in run["ms_per_frame"]})
    e2e_rows = [
        [run["detector"].split(":")[0], run["reid_backend"], "yes" if run["overlap"] else "no"]
        + [f"{run['fps']:.2f}", f"{run['vs_yolo_pose_960_detector']:.2f}"]
        + [f"{run['ms_per_frame'].get(stage, 0.0):.1f}" for stage in stages]
        for run in runs
    ]
    return TEMPLATE.format(
        command=report["command"],
        created=report["created"],
        platform=machine["platform"],
        cpus=machine["cpu_count"],
        threads=report["threads"],
        load=machine["load_average_1_5_15"],
        targets_table=markdown_table(["target", "measured", "met"], targets(report)),
        e2e_frames=e2e["frames"],
        people=e2e["detections_per_frame"],
        e2e_det=e2e["detector"],
        e2e_reid=e2e["reid"],
        e2e_tracker=e2e["tracker"],
        e2e_fps=e2e["fps"],
        e2e_table=markdown_table(
            ["detector", "KPR runtime", "overlap", "FPS", "x yolo-pose 960 detector FPS"]
            + [f"{stage} ms/frame" for stage in stages],
            e2e_rows,
        ),
        decode_ms=report["decode"]["ms_per_frame"],
        decode_fps=report["decode"]["fps"],
        detect_table=markdown_table(["stage", "ms/frame", "FPS"], detect),
        crops=kpr["detections_in_frame"],
        render_ms=kpr["prompt_render_ms_per_crop"],
        crop_ms=kpr["crop_ms_per_crop"],
        stage_batch=kpr["stage_batch_size"],
        kpr_rounds=kpr["interleaved_rounds"],
        kpr_table=markdown_table(
            ["batch", "KPR stage crops/s", "KPR model crops/s", "bare trunk crops/s"]
            + ["stage / trunk", "model / trunk", "ONNX stage crops/s", "ONNX model crops/s"],
            batches,
        ),
        assoc_table=markdown_table(
            ["T", "gated pairs %", "part distance, every pair", "fused cost"]
            + ["assignment (lap)", "fused / assignment"],
            assoc,
        ),
        memory=", ".join(f"{k} {v:.0f}" for k, v in report["peak_rss_mib_after"].items()),
        tracemalloc=tracemalloc_mib,
        long_run=long_run_text,
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Script and ``kpr-track bench speed`` entry point; errors print one line, exit 2."""
    return benchmark_main(__doc__, add_arguments, run, argv, prog)


if __name__ == "__main__":
    raise SystemExit(main())
