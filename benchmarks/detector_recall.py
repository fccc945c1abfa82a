"""Detector recall / precision / speed on PETS09-S2L1 (every 10th of the first 200 frames).

A detection matches a ground-truth box (Hungarian assignment) when their IoU is at least
0.5. Frame n of the video is frame n of gt.txt, both 1-based. Timings are the median
per frame after one warm-up frame; other work on the machine still skews them, so the
1-minute load average before and after is recorded. Prints a table and writes
``benchmarks/results/detector_recall.json``.

Run: ``python benchmarks/detector_recall.py [--threads N]`` (needs ../shared next to the
repository).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou

from kpr_track.detectors import build_detector
from kpr_track.detectors.files import MotFileDetector

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEQUENCE = SHARED / "data" / "PETS09-S2L1"
YOLOX = f"yolox:{SHARED / 'weights' / 'yolox_nano_416x416.onnx'}"
FRAME_IDS = tuple(range(10, 201, 10))
MATCH_IOU = 0.5
CONFIGS = (
    ("yolo-pose", {"imgsz": 960, "conf": 0.05}),
    ("yolo-pose", {"imgsz": 960, "conf": 0.25}),
    ("yolo-pose", {"imgsz": 1280, "conf": 0.25}),
    (YOLOX, {"conf": 0.1}),
    (YOLOX, {"conf": 0.3}),
    (f"mot:{SEQUENCE / 'det' / 'det.txt'}", {}),
)


def read_frames(video: Path, frame_ids: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Decode the video sequentially and keep the 1-based ``frame_ids``."""
    capture = cv2.VideoCapture(str(video))
    frames, frame_id = {}, 0
    while frame_id < max(frame_ids):
        ok, image = capture.read()
        if not ok:
            raise RuntimeError(f"{video}: could not read frame {frame_id + 1}")
        frame_id += 1
        if frame_id in frame_ids:
            frames[frame_id] = image
    capture.release()
    return frames


def count_matches(gt: np.ndarray, found: np.ndarray) -> int:
    """Number of one-to-one matches with IoU >= 0.5 between `(G, 4)` and `(D, 4)` boxes."""
    if len(gt) == 0 or len(found) == 0:
        return 0
    iou = box_iou(torch.from_numpy(gt), torch.from_numpy(found)).numpy()
    rows, cols = linear_sum_assignment(-iou)
    return int((iou[rows, cols] >= MATCH_IOU).sum())


def evaluate(spec: str, options: dict, frames: dict[int, np.ndarray], gt: MotFileDetector) -> dict:
    detector = build_detector(spec, **options)
    first = min(frames)
    detector.detect(frames[first], first)  # warm-up, not timed
    matched = n_gt = n_found = 0
    seconds = []
    for frame_id, image in frames.items():
        start = time.perf_counter()
        found = detector.detect(image, frame_id)
        seconds.append(time.perf_counter() - start)
        truth = gt.detect(image, frame_id).boxes
        matched += count_matches(truth, found.boxes)
        n_gt += len(truth)
        n_found += len(found)
    return {
        "detector": spec.partition(":")[0],
        **options,
        "recall": matched / max(n_gt, 1),
        "precision": matched / max(n_found, 1),
        "ms_per_frame": 1000 * float(np.median(seconds)),
        "gt_boxes": n_gt,
        "detections": n_found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    frames = read_frames(SEQUENCE / "vtest.avi", FRAME_IDS)
    gt = MotFileDetector(SEQUENCE / "gt" / "gt.txt", kind="gt")
    rows = [evaluate(spec, options, frames, gt) for spec, options in CONFIGS]
    print(f"{'detector':<10} {'imgsz':>5} {'conf':>5} {'recall':>6} {'prec':>6} {'ms/frame':>8}")
    for row in rows:
        print(
            f"{row['detector']:<10} {row.get('imgsz', '-'):>5} {row.get('conf', '-'):>5} "
            f"{row['recall']:6.3f} {row['precision']:6.3f} {row['ms_per_frame']:8.1f}"
        )
    out = ROOT / "benchmarks" / "results" / "detector_recall.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "sequence": "PETS09-S2L1",
        "frame_ids": list(FRAME_IDS),
        "match_iou": MATCH_IOU,
        "ms_per_frame": "median over the frames, after one warm-up frame",
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "machine": platform.processor() or platform.machine(),
    }
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
