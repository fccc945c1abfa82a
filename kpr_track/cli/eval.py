"""``kpr-track eval``: score tracker results with HOTA / CLEAR / Identity metrics.

Example::

    kpr-track eval --gt ../shared/data/PETS09-S2L1 --pred out/PETS09-S2L1.txt --out results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import InputError

TABLE_COLUMNS = ("HOTA", "DetA", "AssA", "LocA", "MOTA", "IDF1", "IDP", "IDR", "IDSW", "Frag")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` sub-command."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate tracking results (HOTA, MOTA, IDF1, ...)",
        description=(
            "Score tracker results against ground truth with TrackEval's HOTA, CLEAR and "
            "Identity metrics. Give --gt and --pred once per sequence, in the same order."
        ),
    )
    parser.add_argument(
        "--gt",
        action="append",
        required=True,
        type=Path,
        metavar="SEQ_DIR_OR_JSON",
        help="MOTChallenge sequence folder (seqinfo.ini + gt/gt.txt), PoseTrack21 "
        "posetrack_mot folder (image_info.json + gt/gt.txt) or PoseTrack video .json",
    )
    parser.add_argument(
        "--pred",
        action="append",
        required=True,
        type=Path,
        metavar="TRACKS",
        help="tracker results: MOTChallenge .txt or PoseTrack21 .json",
    )
    parser.add_argument(
        "--no-filters",
        dest="filters",
        action="store_false",
        help="do not apply MOTChallenge distractor rules / PoseTrack21 pre-filters",
    )
    parser.add_argument(
        "--ignore-rule",
        choices=["official", "area-share"],
        default="official",
        help="PoseTrack21 ignore regions: 'official' drops unmatched boxes whose IoU with a "
        "region exceeds 0.1 (PoseTrack21's PoseTrackMOT evaluation); 'area-share' drops "
        "unmatched boxes at least half inside the regions (default: official)",
    )
    parser.add_argument("--out", type=Path, help="write all metrics to this JSON file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table and optionally write JSON."""
    from ..evaluation.evaluate import evaluate

    results = evaluate(args.gt, args.pred, filters=args.filters, ignore_rule=args.ignore_rule)
    print(format_table(results))
    if args.out is not None:
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
        except OSError as error:
            raise InputError(f"{args.out}: cannot write results ({error.strerror})") from None
        print(f"wrote {args.out}")
    return 0


def format_table(results: dict[str, Any]) -> str:
    """One row per sequence plus the combined row; ratios in percent."""
    rows = [*results["sequences"].items(), ("COMBINED", results["combined"])]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'sequence':<{width}}  " + " ".join(f"{c:>6}" for c in TABLE_COLUMNS)]
    for name, summary in rows:
        cells = [
            f"{summary[c]:>6d}" if isinstance(summary[c], int) else f"{100 * summary[c]:6.2f}"
            for c in TABLE_COLUMNS
        ]
        lines.append(f"{name:<{width}}  " + " ".join(cells))
    if not results["filters"]:
        lines.append("(filters off: --no-filters)")
    return "\n".join(lines)
