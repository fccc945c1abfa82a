"""Evaluation rules applied before scoring, and the hand-over to TrackEval's data layout.

Two rule sets, picked by the ground truth's protocol and switched off together with
``preprocess=False`` / ``kpr-track eval --no-filters``:

- MOTChallenge (MOT15 / MOT17 / MOT20): driven through TrackEval's own
  ``MotChallenge2DBox.get_preprocessed_seq_data`` (consider flag; for MOT17/MOT20
  also: predictions matched at IoU >= 0.5 to a distractor class are removed and only
  pedestrian ground truth is kept), so numbers equal TrackEval's and the devkit's.
- PoseTrack21 (:func:`posetrack21_filters`), the pre-filters of the official
  PoseTrack21 evaluation: keypoints with score < 0.3 are zeroed, predictions with
  fewer than 3 remaining keypoints are dropped, tracks shorter than 3 frames are
  dropped, and predictions matched to no ground truth that fall in an ignore region
  are dropped. By default (``ignore_rule="official"``) "fall in" is the rule of the
  official PoseTrack21 ``PoseTrackMOT`` evaluation: the box's IoU with one region
  polygon exceeds 0.1. That misses small boxes inside large regions, so the
  ``"area-share"`` option measures the share of the box area inside the regions
  instead (the correction used by TrackLab), dropping a box at least half inside.

In every case only labelled frames are scored (predictions on frames that carry no
annotation are not false positives), and the consider flag of the ground truth holds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import cv2
import numpy as np

from ..errors import InputError
from .sequence import GroundTruth, SequenceData, Tracks

MATCH_IOU = 0.5  # TrackEval / devkit threshold for a prediction to match a ground truth box
IgnoreRule = Literal["official", "area-share"]
IGNORE_RULES = ("official", "area-share")


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of `(A, 4)` and `(B, 4)` boxes ``left, top, width, height`` px.

    Degenerate boxes (area <= 0) have IoU 0 with everything, as in TrackEval.

    Returns:
        `(A, B)` float64 IoU in [0, 1].
    """
    a0, a1 = boxes_a[:, None, :2], boxes_a[:, None, :2] + boxes_a[:, None, 2:]
    b0, b1 = boxes_b[None, :, :2], boxes_b[None, :, :2] + boxes_b[None, :, 2:]
    overlap = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None)
    intersection = overlap[..., 0] * overlap[..., 1]
    # Areas from the corners (not width * height) so rounding matches TrackEval's.
    area_a = np.prod(a1 - a0, axis=-1)[:, 0]
    area_b = np.prod(b1 - b0, axis=-1)[0, :]
    union = area_a[:, None] + area_b[None, :] - intersection
    eps = np.finfo(float).eps
    valid = (area_a[:, None] > eps) & (area_b[None, :] > eps) & (union > eps)
    return np.where(valid, intersection / np.where(valid, union, 1.0), 0.0)


def posetrack21_filters(
    seq: SequenceData,
    *,
    keypoint_threshold: float = 0.3,
    min_keypoints: int = 3,
    min_track_length: int = 3,
    ignore_rule: IgnoreRule = "official",
    ignore_iou: float = 0.1,
    ignore_overlap: float = 0.5,
) -> SequenceData:
    """Apply the PoseTrack21 pre-filters to the predictions of one sequence.

    Args:
        seq: ground truth and predictions.
        keypoint_threshold: keypoints with a lower score are set to (0, 0, 0).
        min_keypoints: predictions with fewer keypoints left (x > 0, y > 0, score > 0)
            are dropped; not applied when the predictions have no keypoints.
        min_track_length: tracks present in fewer frames are dropped.
        ignore_rule: ``"official"``: predictions matched to no ground truth (IoU >= 0.5,
            Hungarian) whose IoU with one of the frame's ignore-region polygons exceeds
            ``ignore_iou`` are dropped (PoseTrack21's ``PoseTrackMOT``). ``"area-share"``:
            unmatched predictions with at least ``ignore_overlap`` of their area inside
            the union of the regions are dropped.
        ignore_iou: box-polygon IoU in [0, 1] of the official rule.
        ignore_overlap: share of the box area in [0, 1] of the area-share rule.

    Returns:
        The same sequence with filtered predictions (keypoints zeroed as above).

    Raises:
        InputError: on an unknown ``ignore_rule``.
    """
    if ignore_rule not in IGNORE_RULES:
        raise InputError(f"ignore_rule: expected one of {IGNORE_RULES}, got {ignore_rule!r}")
    pred = seq.pred
    if pred.keypoints is not None:
        keypoints = pred.keypoints.copy()
        keypoints[keypoints[..., 2] < keypoint_threshold] = 0.0
        detected = (keypoints[..., 0] > 0) & (keypoints[..., 1] > 0) & (keypoints[..., 2] > 0)
        pred = dataclasses.replace(pred, keypoints=keypoints)
        pred = pred.select(detected.sum(axis=1) >= min_keypoints)
    track_ids, lengths = np.unique(pred.ids, return_counts=True)
    pred = pred.select(np.isin(pred.ids, track_ids[lengths >= min_track_length]))
    keep = np.ones(len(pred), bool)
    for frame, polygons in seq.gt.ignore_regions.items():
        rows = np.flatnonzero(pred.frames == frame)
        if len(rows) == 0:
            continue
        gt_rows = (seq.gt.tracks.frames == frame) & (seq.gt.tracks.scores.astype(int) != 0)
        matched = _matched_columns(box_iou(seq.gt.tracks.boxes[gt_rows], pred.boxes[rows]))
        unmatched = np.setdiff1d(np.arange(len(rows)), matched)
        boxes = pred.boxes[rows[unmatched]]
        if ignore_rule == "official":
            ignored = _region_iou(boxes, polygons).max(axis=1, initial=0.0) > ignore_iou
        else:
            ignored = _share_inside(boxes, polygons) >= ignore_overlap
        keep[rows[unmatched[ignored]]] = False
    return dataclasses.replace(seq, pred=pred.select(keep))


def trackeval_data(seq: SequenceData, *, preprocess: bool = True) -> dict[str, Any]:
    """Build the per-sequence data dict that TrackEval's metrics take.

    Runs TrackEval's ``MotChallenge2DBox`` preprocessing on our rows (benchmark =
    the ground truth's protocol; PoseTrack21 sequences use MOT15 rules, i.e. the
    consider flag only). Predictions on unlabelled frames are left out first.

    Args:
        seq: ground truth and (already filtered) predictions.
        preprocess: TrackEval's ``DO_PREPROC`` (distractor removal, class selection).

    Returns:
        TrackEval data: ``num_timesteps``, ``num_gt_ids``, ``num_tracker_ids``,
        ``num_gt_dets``, ``num_tracker_dets``, and per timestep ``gt_ids``,
        ``tracker_ids`` (contiguous from 0), ``gt_dets``, ``tracker_dets``,
        ``tracker_confidences``, ``similarity_scores`` (IoU, gt x tracker).

    Raises:
        InputError: if the ground-truth file has gone (TrackEval's dataset checks it).
    """
    from trackeval.datasets import MotChallenge2DBox

    gt, pred = seq.gt, seq.pred
    if not gt.source.is_file():
        raise InputError(f"{gt.source}: ground-truth file not found")
    pred = pred.select(gt.labeled[pred.frames - 1])
    benchmark = "MOT15" if gt.protocol == "PoseTrack21" else gt.protocol
    source = str(gt.source).replace("{", "{{").replace("}", "}}")
    dataset = MotChallenge2DBox(
        {
            # The dataset object is used only for its preprocessing; its constructor
            # checks that the ground-truth file exists, which is the file we read.
            "GT_FOLDER": str(gt.source.parent),
            "TRACKERS_FOLDER": str(gt.source.parent),
            "GT_LOC_FORMAT": source,
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": {gt.name: gt.num_frames},
            "TRACKERS_TO_EVAL": [],
            "BENCHMARK": benchmark,
            "DO_PREPROC": preprocess,
            "PRINT_CONFIG": False,
        }
    )
    return dataset.get_preprocessed_seq_data(_raw_data(gt, pred), "pedestrian")


def _raw_data(gt: GroundTruth, pred: Tracks) -> dict[str, Any]:
    """TrackEval's raw (pre-preprocessing) layout, ids relabelled contiguous from 0."""
    gt_rows = _rows_per_frame(gt.tracks, gt.num_frames)
    pred_rows = _rows_per_frame(pred, gt.num_frames)
    gt_ids = np.unique(gt.tracks.ids, return_inverse=True)[1].reshape(-1)
    pred_ids = np.unique(pred.ids, return_inverse=True)[1].reshape(-1)
    gt_classes = gt.tracks.classes if gt.tracks.classes is not None else np.zeros(len(gt_ids), int)
    raw: dict[str, Any] = {"num_timesteps": gt.num_frames, "seq": gt.name}
    for key in (
        "gt_ids gt_classes gt_dets gt_extras tracker_ids tracker_classes tracker_dets "
        "tracker_confidences similarity_scores"
    ).split():
        raw[key] = []
    for g, p in zip(gt_rows, pred_rows, strict=True):
        raw["gt_ids"].append(gt_ids[g])
        raw["gt_classes"].append(gt_classes[g])
        raw["gt_dets"].append(gt.tracks.boxes[g])
        raw["gt_extras"].append({"zero_marked": gt.tracks.scores[g].astype(int)})
        raw["tracker_ids"].append(pred_ids[p])
        raw["tracker_classes"].append(np.ones(len(p), int))
        raw["tracker_dets"].append(pred.boxes[p])
        raw["tracker_confidences"].append(pred.scores[p])
        raw["similarity_scores"].append(box_iou(gt.tracks.boxes[g], pred.boxes[p]))
    return raw


def _rows_per_frame(tracks: Tracks, num_frames: int) -> list[np.ndarray]:
    """Row indices of each frame 1..num_frames, in file order within a frame."""
    order = np.argsort(tracks.frames, kind="stable")
    bounds = np.searchsorted(tracks.frames[order], np.arange(1, num_frames + 2))
    return [order[bounds[t] : bounds[t + 1]] for t in range(num_frames)]


def _matched_columns(iou: np.ndarray) -> np.ndarray:
    """Prediction columns matched at IoU >= 0.5 by a max-IoU Hungarian assignment."""
    from scipy.optimize import linear_sum_assignment

    if iou.size == 0:
        return np.zeros(0, int)
    scores = np.where(iou >= MATCH_IOU - np.finfo(float).eps, iou, 0.0)
    rows, cols = linear_sum_assignment(-scores)
    return cols[scores[rows, cols] > 0]


def _region_iou(boxes: np.ndarray, polygons: list[np.ndarray]) -> np.ndarray:
    """`(N, R)` IoU of each box `(N, 4)` ltwh with each region polygon, one at a time.

    Each polygon is rasterised (pixel centres) on its own bounding grid; areas are in
    whole pixels, as in :func:`_share_inside`.
    """
    corners = np.round(np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1))
    box_area = np.prod(np.clip(corners[:, 2:] - corners[:, :2], 0, None), axis=1)
    out = np.zeros((len(boxes), len(polygons)))
    for column, polygon in enumerate(polygons):
        inside = _share_inside(boxes, [polygon]) * box_area  # pixels of the box in it
        origin = np.floor(polygon.min(axis=0)).astype(int)
        size = np.ceil(polygon.max(axis=0)).astype(int) - origin + 1
        mask = np.zeros((size[1], size[0]), np.uint8)
        cv2.fillPoly(mask, [np.round(polygon - origin).astype(np.int32)], 1)
        union = box_area + float(mask.sum()) - inside
        out[:, column] = np.where(union > 0, inside / np.maximum(union, 1), 0.0)
    return out


def _share_inside(boxes: np.ndarray, polygons: list[np.ndarray]) -> np.ndarray:
    """Share `(N,)` of each box `(N, 4)` ltwh whose pixels lie in the union of polygons.

    Polygons are rasterised (pixel centres) on a grid covering their extent; box
    areas are counted in whole pixels.
    """
    points = np.concatenate(polygons)
    origin = np.floor(points.min(axis=0)).astype(int)
    size = np.ceil(points.max(axis=0)).astype(int) - origin + 1
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(mask, [np.round(p - origin).astype(np.int32) for p in polygons], 1)
    integral = cv2.integral(mask)  # (H + 1, W + 1) int32 prefix sums
    corners = np.round(np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1))
    area = np.prod(corners[:, 2:] - corners[:, :2], axis=1)
    local = corners - np.concatenate([origin, origin])
    x0, x1 = (np.clip(local[:, i], 0, size[0]).astype(int) for i in (0, 2))
    y0, y1 = (np.clip(local[:, i], 0, size[1]).astype(int) for i in (1, 3))
    inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return np.where(area > 0, inside / np.maximum(area, 1), 0.0)
