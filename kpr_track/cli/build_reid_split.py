"""``kpr-track build-reid-split``: an occluded ReID split from a MOTChallenge sequence.

Example::

    kpr-track build-reid-split ../shared/data/MOT17-02-raw540 runs/mot17-02-reid
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``build-reid-split`` sub-command."""
    from ..train.split_builder import SplitOptions

    defaults = SplitOptions()
    parser = subparsers.add_parser(
        "build-reid-split",
        help="build an Occluded-PoseTrack-ReID-style split from a MOT sequence",
        description=(
            "Turn a MOTChallenge sequence with identity ground truth into an occluded ReID "
            "split (identity-disjoint train / query / gallery; queries are the most occluded "
            "samples), written in the PoseTrack21 + Occluded-PoseTrack-ReID file format. "
            "Keypoints come from the top-down YOLO-pose model on the ground-truth boxes."
        ),
    )
    parser.add_argument("sequence", type=Path, help="MOT sequence folder (seqinfo.ini, gt/)")
    parser.add_argument("out", type=Path, help="output dataset root")
    for name, value in asdict(defaults).items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            parser.add_argument(
                flag,
                action="store_true",
                help="ground truth without class / visibility columns (MOTChallenge 2015): "
                "every box is a fully visible pedestrian",
            )
            continue
        kind = float if isinstance(value, float) else int
        parser.add_argument(flag, type=kind, default=value, help=f"default {value}")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the split and print its counts."""
    from ..detectors.base import build_detector
    from ..train.split_builder import SplitOptions, build_mot_reid_split

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = SplitOptions(
        **{name: getattr(args, name) for name in SplitOptions.__dataclass_fields__}
    )
    pose = build_detector("yolo-pose").pose_on_boxes
    summary = build_mot_reid_split(args.sequence, args.out, pose, options)
    print(json.dumps(asdict(summary), indent=2))
    return 0
