"""``kpr-track track VIDEO``: track every person of a video or image folder (also
``kpr-track VIDEO``)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``track`` sub-command."""
    parser = subparsers.add_parser(
        "track",
        help="track every person of a video (default command)",
        description="Track every person of VIDEO and write tracks.txt (MOTChallenge), "
        "tracks.json (PoseTrack21 layout), video.mp4 (annotated) and summary.json. VIDEO may "
        "be an image folder: frames numbered in their names, a MOTChallenge sequence "
        "(seqinfo.ini + img1/) or, with --posetrack-json, a PoseTrack21 video.",
    )
    parser.add_argument(
        "video",
        nargs="?",
        help="input video file or image folder (default: the sample clip that ships with "
        "kpr-track, 150 frames of PETS 2009 S2L1)",
    )
    parser.add_argument(
        "--posetrack-json",
        metavar="JSON",
        help="PoseTrack21 video JSON (posetrack_data/<split>/<video>.json) listing the frames "
        "of the image folder VIDEO; tracks.json then uses its image ids and file names",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default: runs/track/<video name>, then <video name>-2, -3, ... "
        "so an earlier run is never overwritten)",
    )
    parser.add_argument(
        "--exist-ok", action="store_true", help="allow writing into a non-empty --out folder"
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=None,
        help="frames per second of the source, for a file whose container declares a wrong "
        "rate (OpenCV's vtest.avi says 10 for the 7 of PETS09-S2L1) or a folder without "
        "seqinfo.ini: the preset's durations, video.mp4 and the linking use it (default: the "
        "video's metadata, seqinfo.ini, or 25 for a plain image folder)",
    )
    add_tracking_options(parser)
    add_link_option(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


LINK_HELP = (
    "after online tracking, link tracklets of one person (appearance + motion), "
    "interpolate short gaps and smooth the boxes; every output then shows the linked ids "
    "(default: the tracker preset's link.enabled: on in the kpr preset, off in motion; "
    "never for a live source)"
)


def add_link_option(parser: argparse.ArgumentParser, help: str = LINK_HELP) -> None:
    """``--link / --no-link`` of ``track``, ``track-dataset`` (:attr:`TrackOptions.link`) and
    ``tune`` (with its own ``help``)."""
    parser.add_argument("--link", action=argparse.BooleanOptionalAction, default=None, help=help)


def add_tracking_options(parser: argparse.ArgumentParser) -> None:
    """The detector, ReID and tracker options shared by ``track`` and ``track-dataset``."""
    from ..config import available_presets
    from ..reid.registry import (
        DEFAULT_BACKEND,
        DEFAULT_PRECISION,
        DEFAULT_REID,
        REID_BACKENDS,
        REID_PRECISIONS,
        reid_help,
    )

    parser.add_argument(
        "--tracker",
        default="kpr",
        metavar="PRESET",
        help=f"tracker preset ({', '.join(sorted(available_presets('trackers')))}) or a YAML file "
        "(default: kpr)",
    )
    parser.add_argument(
        "--reid",
        default=DEFAULT_REID,
        metavar="NAME",
        help=f"appearance model, one of:\n{reid_help()}\nor a FILE.onnx written by kpr-track "
        "export --format onnx (run by onnxruntime)",
    )
    parser.add_argument(
        "--reid-backend",
        default=DEFAULT_BACKEND,
        choices=REID_BACKENDS,
        help="runtime of the appearance model: onnx = onnxruntime on the CPU, from an export "
        "made once into the cache (~/.cache/kpr-track/onnx) and checked against PyTorch; "
        "torch = PyTorch (any --device); auto = onnx on --device cpu when onnxruntime is "
        f"installed, else torch (default: {DEFAULT_BACKEND})",
    )
    parser.add_argument(
        "--reid-precision",
        default=DEFAULT_PRECISION,
        choices=REID_PRECISIONS,
        help="onnxruntime precision of the appearance model: fp32, or int8 (static "
        f"quantisation, calibrated on real crops) (default: {DEFAULT_PRECISION})",
    )
    parser.add_argument(
        "--det",
        default="yolo-pose",
        metavar="SOURCE",
        help="detector: yolo-pose[:PATH.pt], yolox[:PATH.onnx], mot:PATH/det.txt (MOTChallenge "
        "detections), gt:PATH/gt.txt (ground-truth boxes) (default: yolo-pose)",
    )
    parser.add_argument(
        "--imgsz",
        type=int,
        default=None,
        help="detector inference size in pixels, long side (default: yolo-pose: the video's "
        "long side rounded up to a multiple of 32, within [960, 1920]; yolox: its 416 input, "
        "a larger --imgsz tiles the frame)",
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
        "--max-frames",
        type=int,
        default=None,
        metavar="N",
        help="stop after N frames (default: every frame)",
    )


def check_tracking_options(args: argparse.Namespace) -> None:
    """Range checks of :func:`add_tracking_options`' values.

    Raises:
        ConfigError: naming the option and the expected range.
    """
    from ..errors import ConfigError

    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be >= 1, got {args.max_frames}")
    if not 0.0 <= args.conf <= 1.0:
        raise ConfigError(f"--conf must be in [0, 1], got {args.conf}")
    if args.imgsz is not None and args.imgsz < 32:
        raise ConfigError(f"--imgsz must be >= 32 pixels, got {args.imgsz}")


def run(args: argparse.Namespace) -> int:
    """Build the stages from ``args``, track the video and print the summary."""
    from ..errors import ConfigError
    from ..io.frames import open_frames
    from ..io.sample import sample_video
    from ..linking import link_setup
    from ..pipeline import TrackOptions, build_pipeline
    from ..run import RunSettings, format_summary, output_dir, track_video
    from ..weights import apply_offline_env

    check_tracking_options(args)
    if args.fps is not None and not (0 < args.fps < float("inf")):
        raise ConfigError(f"--fps must be > 0 frames per second, got {args.fps}")
    apply_offline_env()
    if args.video is None:
        args.video = str(sample_video())
        print(
            f"No VIDEO given: tracking the sample clip {args.video} (kpr-track track VIDEO "
            "tracks your own)"
        )
    reader = open_frames(args.video, args.posetrack_json, args.max_frames)
    if args.fps is not None:
        reader.info = dataclasses.replace(reader.info, fps=args.fps)
    folder = output_dir(Path(args.video), args.out, args.exist_ok)
    options = TrackOptions.of(args).for_source(reader.info.width, reader.info.height)
    pipeline = build_pipeline(options, reader.info.fps)
    settings = RunSettings.of(args.video, options)  # imgsz recorded as used
    link = link_setup(options, args.video, args.posetrack_json, pipeline)
    try:
        summary = track_video(
            reader, pipeline, folder, settings, progress=not args.no_progress, link=link
        )
    except KeyboardInterrupt:
        print(f"Interrupted: partial results in {folder}")
        raise
    finally:
        warning = reader.decode.warning(reader.path)
        if warning:
            print(f"kpr-track track: warning: {warning}", file=sys.stderr)
    print(format_summary(summary))
    return 0
