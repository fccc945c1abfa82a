"""``kpr-track export --format onnx``: write a ``--reid`` appearance model as ONNX.

Example::

    kpr-track export --format onnx --reid kpr-global --out kpr-global.onnx
    kpr-track VIDEO --reid kpr-global.onnx

``kpr-track track`` needs no export on the CPU: ``--reid-backend auto`` (the default)
makes the same file once into the cache (:mod:`kpr_track.reid.onnx_cache`).

The file has two inputs (``images`` `(N, 3, H, W)`, ``prompts`` `(N, K + 2, H / 2, W / 2)`), two
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
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "int8"],
        help="fp32, or int8 (onnxruntime static quantisation calibrated on real crops) "
        "(default: fp32)",
    )
    parser.add_argument("--out", type=Path, required=True, help="file to write (.onnx)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the torch model, export it, check it against PyTorch and print what was
    written."""
    from ..errors import ConfigError
    from ..io.writers import writing
    from ..reid import build_reid
    from ..reid.onnx_cache import build_onnx
    from ..weights import apply_offline_env

    if args.out.suffix != ".onnx":
        raise ConfigError(f"--out {args.out}: expected a .onnx file name")
    apply_offline_env()
    appearance = build_reid(args.reid)
    with writing(args.out):
        difference = build_onnx(appearance, args.reid, args.precision, args.out)
    size = args.out.stat().st_size / 2**20
    print(
        f"wrote {args.out} ({size:.1f} MiB): --reid {args.reid}, {appearance.representation}, "
        f"{args.precision}; max abs embedding difference from PyTorch {difference:.2e}"
    )
    return 0
