"""``kpr-track export --format onnx``: write a ``--reid`` appearance model as ONNX.

Example::

    kpr-track export --format onnx --reid kpr-global --out kpr-global.onnx
    kpr-track VIDEO --reid-backend onnx --reid kpr-global.onnx

The file has two inputs (``images`` `(N, 3, H, W)`, ``prompts`` `(N, K + 2, H, W)`), two
outputs (``embeddings`` `(N, P, D)`, ``visibility`` `(N, P)`), a dynamic batch axis and,
in its metadata, everything the tracker needs (:mod:`kpr_track.reid.export`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    from ..reid.registry import DEFAULT_REID, REID_MODELS

    parser = subparsers.add_parser(
        "export",
        help="write a --reid appearance model as ONNX (run it with --reid-backend onnx)",
        description="Write the appearance model named by --reid (crops + keypoint prompts "
        "-> embeddings + visibility, dynamic batch) as an ONNX file carrying its "
        "representation, crop size, parts and distance calibration in its metadata; "
        "`kpr-track track --reid-backend onnx --reid FILE.onnx` runs it with onnxruntime.",
    )
    parser.add_argument("--format", required=True, choices=["onnx"], help="export format")
    parser.add_argument(
        "--reid",
        default=DEFAULT_REID,
        choices=sorted(REID_MODELS),
        help=f"appearance model to export (default: {DEFAULT_REID})",
    )
    parser.add_argument("--out", type=Path, required=True, help="file to write (.onnx)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the torch model, export it and print what was written."""
    from ..errors import ConfigError
    from ..reid import build_reid
    from ..reid.export import export_onnx
    from ..weights import apply_offline_env

    if args.out.suffix != ".onnx":
        raise ConfigError(f"--out {args.out}: expected a .onnx file name")
    apply_offline_env()
    appearance = build_reid(args.reid)
    export_onnx(appearance, args.reid, args.out)
    size = args.out.stat().st_size / 2**20
    print(f"wrote {args.out} ({size:.1f} MiB): --reid {args.reid}, {appearance.representation}")
    return 0
