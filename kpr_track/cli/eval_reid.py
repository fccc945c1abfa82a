"""``kpr-track eval-reid``: ReID mAP / CMC on a query / gallery split, with the ablation table.

Example::

    kpr-track eval-reid runs/mot17-02-reid --out reid.json

``--visrank N`` also writes one PNG per query with its N nearest gallery samples.
Rows: the trained KPR model's calibrated fusion (with, without negative prompts, without
prompts), its holistic slot alone, its parts alone and the plain average of its slots;
the untouched retail-0287; then (unless ``--no-baselines``) the training-free baselines
(pose-guided parts on the retail-0287 trunk with and without negative prompts, the
untouched retail-0288 global embedding, the ImageNet MobileNetV2 models). Variants that
differ only in how pairs are scored share one embedding pass. ``--protocol
occluded-posetrack`` is the reference evaluation of Occluded-PoseTrack-ReID (no gallery
sample excluded).
``--reid NAME`` evaluates one ``--reid`` model as ``kpr-track track`` runs it instead
(``--reid-backend``, ``--reid-precision``: e.g. its int8 onnxruntime export).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..errors import InputError

DEFAULT_WEIGHTS = "kpr-osnet-0287-mot3"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval-reid`` sub-command."""
    from ..train.protocols import PROTOCOLS

    parser = subparsers.add_parser(
        "eval-reid",
        help="ReID mAP / rank-1 on a query / gallery split (ablation table)",
        description=(
            "Evaluate ReID on the query / gallery samples of an Occluded-PoseTrack-ReID-layout "
            "split (val subset) with the part-visibility distance. Same-identity gallery "
            "samples of the query's camera closer than --min-frame-gap frames are ignored."
        ),
    )
    parser.add_argument(
        "root", type=Path, help="dataset root (posetrack_data/, occluded_posetrack_reid/)"
    )
    parser.add_argument(
        "--weights",
        help=f"KPR head .safetensors (default: the registered {DEFAULT_WEIGHTS!r}; "
        "'none' for the training-free baselines only)",
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="frame-gap",
        help="frame-gap: ignore same-identity gallery samples closer than --min-frame-gap "
        "frames (splits cut from one video); occluded-posetrack: the reference "
        "Occluded-PoseTrack-ReID evaluation, nothing excluded",
    )
    parser.add_argument(
        "--min-frame-gap", type=float, default=30.0, help="frames (frame-gap); 'inf' for all"
    )
    parser.add_argument("--cache-dir", type=Path, help="crop cache (default <root>/crops)")
    parser.add_argument("--height", type=int, default=256, help="crop height px")
    parser.add_argument("--width", type=int, default=128, help="crop width px")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, help="write the metrics of every row as JSON")
    parser.add_argument(
        "--no-baselines",
        dest="baselines",
        action="store_false",
        help="only the trained model's rows and the untouched retail-0287 (no pose-guided, "
        "retail-0288 or ImageNet rows)",
    )
    parser.add_argument(
        "--visrank",
        type=int,
        default=0,
        metavar="N",
        help="write a PNG per query with its top-N gallery samples (first part-based row)",
    )
    parser.add_argument(
        "--visrank-dir", type=Path, default=Path("visrank"), help="folder for --visrank PNGs"
    )
    add_runtime_options(parser)
    parser.set_defaults(func=run)


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """``--reid`` / ``--reid-backend`` / ``--reid-precision``: one runtime row."""
    from ..reid.registry import REID_BACKENDS, REID_MODELS, REID_PRECISIONS

    parser.add_argument(
        "--reid",
        choices=sorted(REID_MODELS),
        help="evaluate only this --reid model, built as kpr-track track builds it (with "
        "--reid-backend and --reid-precision) instead of the ablation rows",
    )
    parser.add_argument(
        "--reid-backend", default="torch", choices=REID_BACKENDS, help="with --reid"
    )
    parser.add_argument(
        "--reid-precision", default="fp32", choices=REID_PRECISIONS, help="with --reid"
    )


def runtime_variants(args: argparse.Namespace) -> list:
    """The one row of ``--reid``: its stage's network as ``kpr-track track`` runs it."""
    from ..reid.registry import build_reid
    from ..train.evaluate import Variant

    stage = build_reid(args.reid, backend=args.reid_backend, precision=args.reid_precision)
    runtime = type(stage.net).__name__
    label = f"--reid {args.reid} ({runtime}, {args.reid_precision})"
    return [Variant(label, stage.net, stage.use_prompts, stage.representation, stage.negatives)]


def run(args: argparse.Namespace) -> int:
    """Evaluate every ablation row and print the table."""
    from ..reid.model import load_kpr_weights
    from ..train.crop_cache import cache_crops
    from ..train.dataset import load_reid_split
    from ..train.evaluate import ablation_variants, evaluate_variant, format_table, valid_pairs
    from ..weights import resolve_weights

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = None
    if args.weights != "none" and args.reid is None:
        model = load_kpr_weights(resolve_weights(DEFAULT_WEIGHTS, args.weights))
    size = (args.height, args.width)
    cache = args.cache_dir or args.root / "crops"
    records, _ = cache_crops(
        load_reid_split(args.root, "val"), cache / f"val_{size[0]}x{size[1]}", size
    )
    query = [r for r in records if r.split == "query"]
    gallery = [r for r in records if r.split == "gallery"]
    if not query or not gallery:
        raise InputError(f"{args.root}: the val split needs query and gallery samples")
    protocol = args.protocol
    if protocol == "frame-gap":
        protocol = f"frame-gap (min frame gap {args.min_frame_gap:g})"
    print(f"{len(query)} queries, {len(gallery)} gallery samples, protocol {protocol}")
    rows, embedded = [], {}
    if args.reid is None:
        variants = ablation_variants(model, args.baselines)
    else:
        variants = runtime_variants(args)
    for variant in variants:
        metrics = evaluate_variant(
            variant,
            query,
            gallery,
            args.min_frame_gap,
            args.batch_size,
            args.protocol,
            embedded=embedded,
        )
        rows.append((variant.name, metrics))
        print(
            f"  {variant.name}: mAP {100 * metrics['mAP']:.1f}, rank-1 {100 * metrics['rank1']:.1f}"
        )
    print(f"protocol: {protocol}")
    print(format_table(rows))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {"protocol": protocol, "rows": dict(rows)}
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    if args.visrank > 0:
        from ..train.visrank import write_visrank

        variant = next((v for v in variants if v.representation == "parts"), variants[0])
        valid = valid_pairs(query, gallery, args.min_frame_gap, args.protocol)
        paths = write_visrank(variant, query, gallery, valid, args.visrank, args.visrank_dir)
        print(f"wrote {len(paths)} ranking images ({variant.name}) to {args.visrank_dir}")
    return 0
