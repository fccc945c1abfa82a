"""``kpr-track link VIDEO TRACKS.txt --out DIR``: re-link any tracker's MOTChallenge results
with KPR appearance computed from the video."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``link`` sub-command."""
    from ..reid.registry import DEFAULT_REID

    parser = subparsers.add_parser(
        "link",
        help="re-link a MOTChallenge result file of any tracker with KPR appearance",
        description="Read TRACKS.txt (frame,id,left,top,width,height[,conf,...], made by any "
        "tracker on VIDEO), embed its boxes with the appearance model, join tracklets of one "
        "person (no temporal overlap, calibrated appearance evidence, motion plausibility), "
        "interpolate short gaps and write tracks.txt, tracks.json, video.mp4 and summary.json "
        "to --out, as kpr-track track does.",
    )
    parser.add_argument("video", help="the video file or image folder the results are of")
    parser.add_argument("tracks", help="MOTChallenge result file (frames from 1)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--exist-ok", action="store_true", help="allow writing into a non-empty --out folder"
    )
    parser.add_argument(
        "--reid",
        default=DEFAULT_REID,
        help=f"appearance model (a --reid name of kpr-track track; default: {DEFAULT_REID})",
    )
    parser.add_argument(
        "--tracker",
        default="kpr",
        help="tracker preset (name or YAML) whose 'link' section holds the settings (default: kpr)",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the inputs, embed, link and write; print a short summary."""
    from ..detectors import build_detector
    from ..errors import ConfigError
    from ..io.frames import open_frames
    from ..reid.registry import build_reid, reid_entry
    from ..relink import read_mot_results, relink
    from ..run import output_dir
    from ..trackers.link import load_link_config
    from ..weights import apply_offline_env

    apply_offline_env()
    config = load_link_config(args.tracker)
    reader = open_frames(args.video)
    # An image folder keeps its own frame numbers; a video counts from 1 (0: unknown length).
    last = max(reader.frame_ids) if hasattr(reader, "frame_ids") else len(reader) or None
    results = read_mot_results(Path(args.tracks), last_frame=last)
    folder = output_dir(Path(args.video), args.out, args.exist_ok)
    if args.reid == "none":
        raise ConfigError("--reid none: linking needs an appearance model")
    appearance = build_reid(args.reid, device=args.device)
    pose = None
    if reid_entry(args.reid).reads_keypoints:
        pose = build_detector("yolo-pose", device=args.device).pose_on_boxes

    def reopen():
        again = open_frames(args.video)
        return ((again.frame_id, frame) for frame in again)

    summary = relink(
        reader, results, appearance, pose, config, folder, reopen, progress=not args.no_progress
    )
    linking = summary["linking"]
    print(
        f"Linked {summary['input_tracks']} tracks of {args.tracks} into {linking['tracks']} "
        f"({linking['joins']} joins, {linking['interpolated_rows']} interpolated rows); "
        f"results in {folder}"
    )
    return 0
