"""``kpr-track track VIDEO``: track every person of a video (also ``kpr-track VIDEO``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``track`` sub-command."""
    parser = subparsers.add_parser(
        "track",
        help="track every person of a video (default command)",
        description="Track every person of VIDEO and write tracks.txt (MOTChallenge), "
        "tracks.json (PoseTrack21 layout), video.mp4 (annotated) and summary.json.",
    )
    parser.add_argument("video", help="input video file")
    parser.add_argument("--out", help="output folder (default: runs/track/<video name>)")
    parser.add_argument(
        "--exist-ok", action="store_true", help="allow writing into a non-empty --out folder"
    )
    parser.add_argument(
        "--tracker",
        default="kpr",
        help="tracker preset name (kpr, motion) or a YAML file (default: kpr)",
    )
    parser.add_argument(
        "--reid",
        default="pose-guided",
        help="appearance model: pose-guided (training-free KPR parts), kpr (the trained KPR "
        "head), global (one embedding of the same trunk), retail-0288 (ONNX ReID) or none "
        "(default: pose-guided)",
    )
    parser.add_argument(
        "--det",
        default="yolo-pose",
        help="detector: yolo-pose[:PATH.pt], yolox[:PATH.onnx], mot:PATH/det.txt, "
        "gt:PATH/gt.txt (default: yolo-pose)",
    )
    parser.add_argument(
        "--imgsz", type=int, default=960, help="detector inference size in pixels (default: 960)"
    )
    parser.add_argument(
        "--conf",
        type=float,
        default=0.05,
        help="detector minimum score in [0, 1] (default: 0.05; low-score "
        "detections feed the tracker's second round)",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    parser.add_argument(
        "--max-frames", type=int, default=None, metavar="N", help="stop after N frames"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the stages from ``args``, track the video and print the summary."""
    from .errors import ConfigError
    from .run import RunSettings, format_summary, output_dir, track_video
    from .video import VideoReader
    from .weights import apply_offline_env

    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be >= 1, got {args.max_frames}")
    if not 0.0 <= args.conf <= 1.0:
        raise ConfigError(f"--conf must be in [0, 1], got {args.conf}")
    if args.imgsz < 32:
        raise ConfigError(f"--imgsz must be >= 32 pixels, got {args.imgsz}")
    apply_offline_env()
    reader = VideoReader(args.video, max_frames=args.max_frames)
    folder = output_dir(Path(args.video), args.out, args.exist_ok)
    pipeline = _build_pipeline(args, reader.info.fps)
    settings = RunSettings(
        video=str(args.video),
        detector=args.det,
        tracker=args.tracker,
        reid=args.reid,
        imgsz=args.imgsz,
        conf=args.conf,
        device=args.device,
        max_frames=args.max_frames,
    )
    try:
        summary = track_video(reader, pipeline, folder, settings, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"Interrupted: partial results in {folder}")
        raise
    print(format_summary(summary))
    return 0


def _build_pipeline(args: argparse.Namespace, frame_rate: float):
    """Detector, appearance and tracker of ``args``; the tracker gets the video's frame
    rate and the appearance model's ``calibration`` (None when it has none: the tracker
    then runs on motion alone and says so)."""
    from .detectors.base import build_detector
    from .pipeline import TrackingPipeline
    from .reid import build_reid
    from .trackers import load_tracker

    appearance = build_reid(args.reid, device=args.device)
    tracker = load_tracker(
        args.tracker,
        frame_rate=frame_rate,
        calibration=getattr(appearance, "calibration", None),
    )
    kind = args.det.partition(":")[0]
    if kind == "yolo-pose":
        options = {"imgsz": args.imgsz, "conf": args.conf, "device": args.device}
    else:
        options = {}
    if kind in ("mot", "gt", "yolox") and appearance is not None:
        options["pose"] = "yolo-pose"
    detector = build_detector(args.det, **options)
    return TrackingPipeline(detector, appearance, tracker)
