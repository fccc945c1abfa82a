"""``kpr-track calibrate``: fit the distance calibrations shipped for ``--reid`` models.

Example (what produced ``kpr_track/assets/calibrations.json`` and the calibration inside
``kpr_track/assets/kpr_osnet0287_mot3.safetensors``)::

    kpr-track calibrate /work/runs/reid-MOT17-02 /work/runs/reid-MOT20-01 \\
        /work/runs/reid-MOT16-04-first50 --out kpr_track/assets/calibrations.json \\
        --weights kpr_track/assets/kpr_osnet0287_mot3.safetensors

Every calibration is fitted on the training identities of the given splits, on the
statistic the tracker compares (per slot, the minimum over a 5-crop gallery of one
identity; :mod:`kpr_track.train.calibrate`). ``--weights`` also refits a trained KPR
file's own calibration and part visibility threshold and writes them into it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` sub-command."""
    parser = subparsers.add_parser(
        "calibrate",
        help="fit same-identity probability vs distance for the --reid models",
        description=(
            "Embed the train subset of one or more Occluded-PoseTrack-ReID-layout splits "
            "with each appearance model, fit a logistic same-identity probability of the "
            "per-slot gallery-minimum distances (holistic + part evidence) on same / "
            "different identity pairs, and write one JSON table."
        ),
    )
    parser.add_argument("root", type=Path, nargs="+", help="split root(s) (build-reid-split)")
    parser.add_argument("--out", type=Path, required=True, help="calibrations JSON to write")
    from ..reid.registry import REID_MODELS

    names = sorted(name for name, e in REID_MODELS.items() if not e.calibration_in_weights)
    parser.add_argument("--reid", nargs="*", default=names, choices=names)
    parser.add_argument(
        "--weights",
        type=Path,
        help="a trained KPR .safetensors: refit its calibration and min_part_area in place",
    )
    parser.add_argument("--cache-dir", type=Path, help="crop cache (default <first root>/crops)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit and write every requested calibration (existing entries of --out are kept)."""
    from ..reid.model import load_kpr_weights, save_kpr_weights
    from ..reid.registry import REID_MODELS
    from ..train.calibrate import calibrate_variant
    from ..train.crop_cache import cached_records
    from ..train.evaluate import Variant

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache = args.cache_dir or args.root[0] / "crops"
    records = cached_records(args.root, "train", cache, (256, 128))
    source = f"{'+'.join(root.name for root in args.root)} train split"
    table = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for name in args.reid:
        entry = REID_MODELS[name]
        variant = Variant(name, entry.model(), True, entry.representation)
        calibration, _ = calibrate_variant(variant, records, source)
        table[name] = json.loads(calibration.to_json())
        print(f"{name}: midpoint {calibration.midpoint:.3f}, slope {calibration.slope:.1f}")
    args.out.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    if args.weights is not None:
        model = load_kpr_weights(args.weights)
        model.calibration, model.min_part_area = calibrate_variant(
            Variant("trained", model, True), records, source
        )
        save_kpr_weights(model, args.weights)
        c = model.calibration
        print(
            f"{args.weights}: midpoint {c.midpoint:.3f}, slope {c.slope:.1f}, part midpoint "
            f"{c.part_midpoint:.3f}, part slope {c.part_slope:.1f}, min_part_area "
            f"{model.min_part_area:.4f}"
        )
    return 0
