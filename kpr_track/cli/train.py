"""``kpr-track train``: train the KPR head from a YAML configuration.

Example::

    kpr-track train configs/train/kpr_osnet0287_mot17_02.yaml --data-root runs/mot17-02-reid
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train the KPR ReID head (Occluded-PoseTrack-ReID layout data)",
        description=(
            "Train the learned-attention KPR model from a YAML configuration "
            "(see configs/train/). Resumes from <output_dir>/checkpoint when present."
        ),
    )
    parser.add_argument("config", type=Path, help="training YAML (configs/train/*.yaml)")
    parser.add_argument("--data-root", help="override data.root")
    parser.add_argument("--output-dir", help="override train.output_dir")
    parser.add_argument("--epochs", type=int, help="override train.epochs")
    parser.add_argument("--no-resume", dest="resume", action="store_false", help="start afresh")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train, then print where the head and the logs are."""
    from ..train.config import load_train_config
    from ..train.trainer import HEAD_FILE, Trainer

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides: dict[str, dict] = {"data": {}, "train": {}}
    if args.data_root:
        overrides["data"]["root"] = args.data_root
    if args.output_dir:
        overrides["train"]["output_dir"] = args.output_dir
    if args.epochs is not None:
        overrides["train"]["epochs"] = args.epochs
    config = load_train_config(args.config, overrides)
    trainer = Trainer(config)
    if args.resume:
        trainer.resume()
    history = trainer.fit()
    output = Path(config.train.output_dir)
    if history:
        print(f"last epoch: {history[-1]}")
    print(f"wrote {output / HEAD_FILE}, {output / 'metrics.csv'}, {output / 'curves.png'}")
    return 0
