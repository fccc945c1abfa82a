"""Evaluate tracker results against ground truth: files in, metrics out.

``evaluate`` is what ``kpr-track eval`` and the benchmarks call; the steps are
readers (:mod:`.mot`, :mod:`.posetrack`) -> rules (:mod:`.filters`) -> TrackEval
metrics (:mod:`.metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .filters import IgnoreRule, posetrack21_filters, trackeval_data
from .metrics import RawResults, combine_sequences, evaluate_sequence, summarize
from .mot import read_mot_ground_truth, read_mot_predictions
from .posetrack import (
    read_posetrack_ground_truth,
    read_posetrack_mot_ground_truth,
    read_posetrack_predictions,
)
from .sequence import GroundTruth, SequenceData, Tracks


def load_ground_truth(path: str | Path) -> GroundTruth:
    """Read ground truth from any supported layout.

    Args:
        path: a MOTChallenge sequence folder (``seqinfo.ini`` + ``gt/gt.txt``), a
            ``posetrack_mot`` sequence folder (``image_info.json`` + ``gt/gt.txt``) or a
            PoseTrack video JSON file.

    Raises:
        InputError: if the path is none of these or the files are malformed.
    """
    path = Path(path)
    if path.is_dir() and (path / "seqinfo.ini").is_file():
        return read_mot_ground_truth(path)
    if path.is_dir() and (path / "image_info.json").is_file():
        return read_posetrack_mot_ground_truth(path)
    if path.is_file() and path.suffix == ".json":
        return read_posetrack_ground_truth(path)
    raise InputError(
        f"{path}: expected a sequence folder with seqinfo.ini (MOTChallenge) or "
        "image_info.json (PoseTrack21 MOT), each with gt/gt.txt, or a PoseTrack .json file"
    )


def load_predictions(path: str | Path, gt: GroundTruth) -> Tracks:
    """Read tracker results (``.json``: PoseTrack21 layout; else MOTChallenge text).

    Raises:
        InputError: if the file is missing or malformed.
    """
    path = Path(path)
    if path.suffix == ".json":
        return read_posetrack_predictions(path, gt)
    return read_mot_predictions(path, gt.num_frames)


def prepare(
    seq: SequenceData, *, filters: bool = True, ignore_rule: IgnoreRule = "official"
) -> dict[str, Any]:
    """TrackEval data for one sequence after the rules of its protocol (see :mod:`.filters`;
    ``ignore_rule`` picks the PoseTrack21 ignore-region rule)."""
    if filters and seq.gt.protocol == "PoseTrack21":
        seq = posetrack21_filters(seq, ignore_rule=ignore_rule)
    return trackeval_data(seq, preprocess=filters)


def evaluate(
    gt_paths: Sequence[str | Path],
    pred_paths: Sequence[str | Path],
    *,
    filters: bool = True,
    ignore_rule: IgnoreRule = "official",
) -> dict[str, Any]:
    """Score tracker results against ground truth, per sequence and combined.

    Args:
        gt_paths: ground truth per sequence (see :func:`load_ground_truth`).
        pred_paths: tracker results, one per ground truth, in the same order.
        filters: apply the protocol's rules (MOTChallenge distractors / PoseTrack21
            pre-filters); the consider flag and labelled frames always hold.
        ignore_rule: PoseTrack21 ignore-region rule, ``"official"`` (box-region IoU >
            0.1, the official evaluation) or ``"area-share"`` (half the box inside).

    Returns:
        ``{"sequences": {name: summary}, "combined": summary, "filters": bool,
        "inputs": [{"sequence", "gt", "pred", "protocol"}]}`` where a summary is
        :func:`.metrics.summarize` plus ``frames``, ``gt_ids``, ``gt_dets``, ``pred_dets``.

    Raises:
        InputError: if the lists differ in length or are empty, two ground truths share
            a sequence name, or a file is missing or malformed.
    """
    if not gt_paths or len(gt_paths) != len(pred_paths):
        raise InputError(
            f"expected one prediction file per ground truth, got {len(gt_paths)} ground "
            f"truth(s) and {len(pred_paths)} prediction file(s)"
        )
    raw: dict[str, RawResults] = {}
    sequences: dict[str, dict[str, Any]] = {}
    inputs = []
    for gt_path, pred_path in zip(gt_paths, pred_paths, strict=True):
        gt = load_ground_truth(gt_path)
        if gt.name in raw:
            raise InputError(f"{gt_path}: sequence {gt.name!r} is given twice")
        seq = SequenceData(gt=gt, pred=load_predictions(pred_path, gt), pred_source=Path(pred_path))
        data = prepare(seq, filters=filters, ignore_rule=ignore_rule)
        raw[gt.name] = evaluate_sequence(data)
        sequences[gt.name] = _summary(raw[gt.name], data)
        inputs.append(
            {
                "sequence": gt.name,
                "gt": str(gt_path),
                "pred": str(pred_path),
                "protocol": gt.protocol,
            }
        )
    combined = combine_sequences(raw)
    totals = {
        key: sum(s[key] for s in sequences.values())
        for key in ("frames", "gt_ids", "gt_dets", "pred_dets")
    }
    return {
        "sequences": sequences,
        "combined": {**summarize(combined), **totals},
        "filters": filters,
        "inputs": inputs,
    }


def _summary(results: RawResults, data: dict[str, Any]) -> dict[str, Any]:
    return {
        **summarize(results),
        "frames": int(data["num_timesteps"]),
        "gt_ids": int(data["num_gt_ids"]),
        "gt_dets": int(data["num_gt_dets"]),
        "pred_dets": int(data["num_tracker_dets"]),
    }
