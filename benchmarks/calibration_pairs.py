"""Appearance calibrations for the benchmark, fitted on the tuning sequence's ground truth.

An appearance model that ships its own :class:`~kpr_track.reid.calibration.
DistanceCalibration` (the ``calibration`` attribute of the appearance stage, stored in
the cache's metadata when the cache is built) is used as shipped. For a cache slot whose
model has none, one is fitted here on MOT17-02-raw540 (the sequence tracker settings are
tuned on, never on PETS09): every cached detection is matched to a ground-truth box
(IoU >= 0.5, Hungarian), and detections ``gap`` frames apart give same-identity and
different-identity distance pairs (the part-visibility distance the tracker uses), fed to
:func:`~kpr_track.reid.calibration.fit_calibration`.

Shape letters: R cached detections, P embedding slots, D dimension.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from kpr_track.evaluation import load_ground_truth
from kpr_track.evaluation.filters import box_iou
from kpr_track.reid.calibration import DistanceCalibration, fit_calibration
from kpr_track.reid.distance import part_distance

MATCH_IOU = 0.5
VISIBLE = 0.5  # slot visibility above which a part counts as seen (the presets' value)


def gt_identities(cache, seq_dir: Path) -> np.ndarray:
    """`(R,)` int64 ground-truth identity of every cached detection, -1 when unmatched."""
    gt = load_ground_truth(seq_dir).tracks
    gt = gt.select(gt.scores != 0)
    ids = np.full(len(cache.boxes), -1, np.int64)
    for index, frame_id in enumerate(cache.frame_ids):
        start, end = int(cache.offsets[index]), int(cache.offsets[index + 1])
        rows = gt.frames == frame_id
        if start == end or not rows.any():
            continue
        found = cache.boxes[start:end].astype(np.float64)
        ltwh = np.c_[found[:, :2], found[:, 2:] - found[:, :2]]
        iou = box_iou(ltwh, gt.boxes[rows])
        det, truth = linear_sum_assignment(-iou)
        keep = iou[det, truth] >= MATCH_IOU
        ids[start + det[keep]] = gt.ids[rows][truth[keep]]
    return ids


def pair_distances(
    cache, seq_dir: Path, slot: str, gap: int = 5, step: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Distances of same- and different-identity detection pairs ``gap`` frames apart.

    Args:
        cache: a :class:`~detection_cache.DetectionCache` holding ``slot``.
        seq_dir: its sequence folder (ground truth).
        slot: appearance slot name.
        gap: frames between the two detections of a pair.
        step: anchor frames taken every ``step`` frames.

    Returns:
        ``(same, different)`` 1-D float arrays of part-visibility distances in [0, 1].
    """
    ids = gt_identities(cache, seq_dir)
    embeddings, visibility = cache.appearance[slot]
    same, different = [], []
    for index in range(0, len(cache) - gap, step):
        a = slice(int(cache.offsets[index]), int(cache.offsets[index + 1]))
        b = slice(int(cache.offsets[index + gap]), int(cache.offsets[index + gap + 1]))
        ia, ib = ids[a], ids[b]
        if not (ia >= 0).any() or not (ib >= 0).any():
            continue
        distance, comparable = part_distance(
            embeddings[a].astype(np.float32)[ia >= 0],
            (visibility[a][ia >= 0] > VISIBLE).astype(np.float32),
            embeddings[b].astype(np.float32)[ib >= 0],
            (visibility[b][ib >= 0] > VISIBLE).astype(np.float32),
        )
        match = ia[ia >= 0][:, None] == ib[ib >= 0][None, :]
        same.append(distance[comparable & match])
        different.append(distance[comparable & ~match])
    return np.concatenate(same or [np.zeros(0)]), np.concatenate(different or [np.zeros(0)])


def slot_calibration(
    cache, seq_dir: Path, slot: str, gap: int = 5, step: int = 5
) -> DistanceCalibration:
    """The calibration of ``slot``: the model's own when the cache stored one, else
    fitted on ``cache`` (MOT17-02-raw540) with :func:`pair_distances` (``gap``, ``step``).

    Raises:
        ConfigError: when the sequence gives fewer than 2 pairs of either kind.
    """
    stored = cache.meta.get("calibration", {}).get(slot)
    if stored:
        return DistanceCalibration.from_json(stored, f"cache {slot} calibration")
    same, different = pair_distances(cache, seq_dir, slot, gap, step)
    source = (
        f"{seq_dir.name} {cache.meta.get('source', '?')} detections matched to gt, "
        f"pairs {gap} frames apart: {len(same)} same / {len(different)} different"
    )
    return fit_calibration(same, different, source)
