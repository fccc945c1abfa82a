"""Per-stage throughput of kpr-track on this CPU, with ratios that survive noisy machines.

Stages, on PETS09-S2L1 (real frames, real detections; :mod:`speed_stages`):

- decode: OpenCV decoding of the video;
- camera motion: the trackers' frame-to-frame warp estimate (CMC) on consecutive frames;
- detection + pose: yolo11n-pose at imgsz 960 (boxes and keypoints in one pass), and
  YOLOX-nano followed by top-down pose on its boxes;
- prompt rendering and RoIAlign crops of a frame's detections;
- the default ``--reid`` stage and model at batch 1 / 8 / 32, in PyTorch and in
  onnxruntime (the cached export ``kpr-track track`` runs by default; int8 too), next to
  the bare trunk forward in the same runtime (the ratio is the cost of prompts + parts);
- association: part-visibility distance matrix, fused cost (IoU + Kalman gate +
  appearance) and assignment (lap) for 10 / 30 / 100 / 300 tracks x detections;
- end to end (:mod:`speed_e2e`): ``kpr-track track`` as the CLI builds it, per stage
  (decode, detect, reid, track), on PETS09 and on the MOT20-01 crowd, with the defaults
  and single changes to them (PyTorch, int8, no appearance, overlap, YOLOX).

Peak memory: the process's maximum resident set size (``resource.getrusage``) after
each section, and the peak of Python-level allocations (``tracemalloc``, which sees
NumPy arrays but not torch's allocator) of one association at the largest T.

Run: ``python benchmarks/speed.py`` or ``kpr-track bench speed``; writes ``speed.json``
and ``speed.md`` (:mod:`speed_report`, the targets first) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from common import (
    RESULTS_DIR,
    YOLO_POSE_OPTIONS,
    YOLOX_OPTIONS,
    YOLOX_WEIGHTS,
    add_runtime_arguments,
    benchmark_main,
    check_shared,
    machine_info,
)
from speed_common import PETS09, peak_rss_mib
from speed_e2e import E2E_RUNS, long_run_memory, run_end_to_end
from speed_report import markdown_report
from speed_stages import (
    association_speed,
    camera_motion_speed,
    decode_speed,
    detection_speed,
    kpr_speed,
    ms_per_frame,
)

from kpr_track.io.video import sequence_frames


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The speed benchmark's command-line options."""
    parser.add_argument(
        "--frames", type=int, default=50, help="frames of the PETS09 end-to-end runs"
    )
    parser.add_argument(
        "--mot20-frames", type=int, default=30, help="frames of the MOT20-01 end-to-end runs"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds of the end-to-end runs (each run once per round, interleaved); each "
        "run's round with the median FPS (of two: the faster) is reported",
    )
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
    e2e_frames = [frame for _, frame in sequence_frames(PETS09, args.frames)]
    report["camera_motion"] = camera_motion_speed(e2e_frames)
    # Each round first times the detector alone on the end-to-end runs' PETS09 frames, so a
    # run's "x detector" ratio shares the machine's speed of its round.
    pose = detectors["yolo-pose"]
    rounds: dict[str, list[dict]] = {name: [] for name in E2E_RUNS}
    references = []
    for _ in range(args.rounds):
        references.append(1000 / ms_per_frame(lambda frame: pose.detect(frame, 1), e2e_frames))
        for name in E2E_RUNS:
            run = run_end_to_end(name, args.frames, args.mot20_frames, YOLOX_WEIGHTS)
            run["vs_yolo_pose_960_detector"] = run["fps"] / references[-1]
            rounds[name].append(run)
    report["detector_alone_fps_of_rounds"] = references
    for name, runs in rounds.items():
        report[name] = sorted(runs, key=lambda run: run["fps"])[len(runs) // 2]
        report[name]["fps_of_rounds"] = [run["fps"] for run in runs]
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


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Script and ``kpr-track bench speed`` entry point; errors print one line, exit 2."""
    return benchmark_main(__doc__, add_arguments, run, argv, prog)


if __name__ == "__main__":
    raise SystemExit(main())
