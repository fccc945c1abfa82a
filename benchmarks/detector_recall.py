"""Detector recall / precision / speed per input size, on the sequences the sizes serve.

On PETS09-S2L1 (768x576, small people), MOT17-02-raw540 (960x540) and MOT20-01 (1920x1080
crowd), every 20th of the first 200 frames: a detection matches a ground-truth box
(consider flag set; Hungarian assignment) when their IoU is at least 0.5. Recall is given
at two score floors: 0.05 (what the detector returns, the tracker's second round sees
from ``low_score``) and 0.3 (the presets' ``new_track_score``: what can start a track).
Timings are the median per frame after one warm-up frame; other work on the machine
still skews them, so the 1-minute load average before and after is recorded. The
``auto`` row is :func:`kpr_track.detectors.base.default_imgsz` of the sequence. Prints a
table and writes ``benchmarks/results/detector_recall.json``.

Run: ``python benchmarks/detector_recall.py [--threads N] [--sequences ...]`` (needs
../shared next to the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from common import SHARED, YOLOX_WEIGHTS
from scipy.optimize import linear_sum_assignment

from kpr_track.boxes import box_iou
from kpr_track.detectors import build_detector
from kpr_track.detectors.base import default_imgsz
from kpr_track.evaluation import load_ground_truth
from kpr_track.io.video import sequence_frames

ROOT = Path(__file__).resolve().parents[1]
FRAME_IDS = tuple(range(20, 201, 20))
MATCH_IOU = 0.5
FLOORS = (0.05, 0.3)
# Sequence -> (width, height) and the yolo-pose sizes tried there.
SEQUENCES = {
    "PETS09-S2L1": ((768, 576), (640, 768, 960, 1280)),
    "MOT17-02-raw540": ((960, 540), (640, 960, 1280)),
    "MOT20-01": ((1920, 1080), (960, 1280, 1600, 1920)),
}
YOLOX = f"yolox:{YOLOX_WEIGHTS}"


def count_matches(gt: np.ndarray, found: np.ndarray) -> int:
    """One-to-one matches with IoU >= 0.5 between `(G, 4)` and `(D, 4)` xyxy boxes."""
    if len(gt) == 0 or len(found) == 0:
        return 0
    iou = box_iou(gt[:, None], found[None])
    rows, cols = linear_sum_assignment(-iou)
    return int((iou[rows, cols] >= MATCH_IOU).sum())


def evaluate(spec: str, options: dict, frames: dict, truth: dict) -> dict:
    """Recall at each score floor, precision at 0.05 and median ms per frame."""
    detector = build_detector(spec, **options)
    first = min(frames)
    detector.detect(frames[first], first)  # warm-up, not timed
    matched = dict.fromkeys(FLOORS, 0)
    n_found = n_gt = 0
    seconds = []
    for frame_id, image in frames.items():
        start = time.perf_counter()
        found = detector.detect(image, frame_id)
        seconds.append(time.perf_counter() - start)
        for floor in FLOORS:
            matched[floor] += count_matches(truth[frame_id], found.boxes[found.scores >= floor])
        n_gt += len(truth[frame_id])
        n_found += int((found.scores >= FLOORS[0]).sum())
    return {
        "detector": spec.partition(":")[0],
        **options,
        **{f"recall@{floor}": matched[floor] / max(n_gt, 1) for floor in FLOORS},
        "precision@0.05": matched[FLOORS[0]] / max(n_found, 1),
        "ms_per_frame": 1000 * float(np.median(seconds)),
        "gt_boxes": n_gt,
    }


def sequence_rows(name: str) -> list[dict]:
    """Every configuration on one sequence."""
    seq_dir = SHARED / "data" / name
    (width, height), sizes = SEQUENCES[name]
    frames = {i: f for i, f in sequence_frames(seq_dir, max(FRAME_IDS)) if i in FRAME_IDS}
    gt = load_ground_truth(seq_dir).tracks
    gt = gt.select(gt.scores != 0)
    truth = {}
    for frame_id in frames:
        boxes = gt.boxes[gt.frames == frame_id]
        truth[frame_id] = np.c_[boxes[:, :2], boxes[:, :2] + boxes[:, 2:]]
    auto = default_imgsz("yolo-pose", width, height)
    configs = [("yolo-pose", {"imgsz": size, "conf": 0.05}) for size in sizes]
    configs += [(YOLOX, {"conf": 0.05}), (YOLOX, {"conf": 0.05, "imgsz": auto})]
    rows = []
    for spec, options in configs:
        row = {"sequence": name, **evaluate(spec, options, frames, truth)}
        row["auto"] = spec == "yolo-pose" and options["imgsz"] == auto
        rows.append(row)
        print(
            f"{name:<16} {row['detector']:<9} {row.get('imgsz', '-')!s:>5}"
            f"{'*' if row['auto'] else ' '} {row['recall@0.05']:6.3f} {row['recall@0.3']:6.3f} "
            f"{row['precision@0.05']:6.3f} {row['ms_per_frame']:8.1f}",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--sequences", nargs="+", default=list(SEQUENCES), choices=SEQUENCES)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    print(
        f"{'sequence':<16} {'detector':<9} {'imgsz':>6} {'R@.05':>6} {'R@.3':>6} "
        f"{'P@.05':>6} {'ms/frame':>8}   (* = default_imgsz)"
    )
    rows = [row for name in args.sequences for row in sequence_rows(name)]
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "detector_recall.json"
    meta = {
        "frame_ids": list(FRAME_IDS),
        "match_iou": MATCH_IOU,
        "score_floors": list(FLOORS),
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
