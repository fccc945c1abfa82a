"""``kpr-track calibrate``: fit the distance calibrations shipped for ``--reid`` models.

Example (what produced ``kpr_track/assets/calibrations.json``)::

    kpr-track calibrate runs/mot17-02-reid --out kpr_track/assets/calibrations.json

Trained KPR weights get the calibration of their part representation at the end of
``kpr-track train`` (in their metadata); every other ``--reid`` choice (training-free
models, the holistic slot of a trained model) gets one here.
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
            "Embed the train subset of an Occluded-PoseTrack-ReID-layout split with each "
            "appearance model, fit a logistic same-identity probability of the "
            "part distance on all same / different identity pairs, and write one JSON table."
        ),
    )
    parser.add_argument("root", type=Path, help="split root (build-reid-split output)")
    parser.add_argument("--out", type=Path, required=True, help="calibrations JSON to write")
    from ..reid.registry import REID_MODELS

    names = sorted(name for name, e in REID_MODELS.items() if not e.calibration_in_weights)
    parser.add_argument("--reid", nargs="+", default=names, choices=names)
    parser.add_argument("--cache-dir", type=Path, help="crop cache (default <root>/crops)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit and write every requested calibration (existing entries of --out are kept)."""
    from ..reid.registry import REID_MODELS
    from ..train.calibrate import calibrate_variant
    from ..train.crop_cache import cache_crops
    from ..train.dataset import load_reid_split
    from ..train.evaluate import Variant

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cache = args.cache_dir or args.root / "crops"
    records, _ = cache_crops(load_reid_split(args.root, "train"), cache / "train_256x128")
    table = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for name in args.reid:
        entry = REID_MODELS[name]
        variant = Variant(name, entry.model(), True, entry.representation)
        calibration = calibrate_variant(variant, records, f"{args.root.name} train split")
        table[name] = json.loads(calibration.to_json())
        print(f"{name}: midpoint {calibration.midpoint:.3f}, slope {calibration.slope:.1f}")
    args.out.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    return 0
