"""Detections read from a MOTChallenge ``det.txt`` or ``gt.txt`` file.

Rows are ``frame, id, left, top, width, height[, score_or_flag, ...]`` with frames from
1 (DESIGN.md section 5). Boxes are returned as read (MOTChallenge pixel convention),
converted from ltwh to xyxy.

- ``det``: the score is column 7 (1.0 when the file has 6 columns). A column that
  ranks nothing, one value throughout or only the values 0 and 1, is a flag, not a
  detector confidence: every detection gets 1.0, so no score threshold drops people for
  it (MOT20's public ``det.txt`` gives 8243 of MOT20-01's 12610 detections a 0, and 92 %
  of those overlap a ground-truth person, as do 90 % of those at 1). Files whose scores
  leave [0, 1] (e.g. MOT15's DPM scores, -0.5 to 139 on PETS09) are mapped causally
  into (0, 1] by :func:`causal_score_rank`: a detection's score becomes the share of
  the scores seen up to its frame that are not above it (the empirical distribution
  function of the past), so no future frame and no single outlier shifts earlier
  scores, and the order within a frame is kept.
- ``gt``: score 1.0; rows whose column 7 (consider flag) is 0 are dropped, and in the
  9-column MOT16/17/20 layout only class 1 (pedestrian) or -1 (no class, PoseTrack21)
  rows of column 8 are kept. The 10-column MOT15 layout has world coordinates in
  columns 8-10 and is not filtered by class.

Keypoints come from an optional top-down ``pose`` callable (e.g.
:meth:`~kpr_track.detectors.yolo_pose.YoloPoseDetector.pose_on_boxes`), else zeros.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..detections import Detections
from ..errors import ConfigError, InputError
from ..io.textfiles import read_lines
from ..keypoints import NUM_KEYPOINTS
from .base import Detector, PoseFn

_LOG = logging.getLogger(__name__)
_MOT16_COLUMNS = 9
_KEPT_CLASSES = (1.0, -1.0)
_MAX_FRAME = 2**31  # frame numbers become int64; larger values are no frame number
_MAX_COORDINATE = float(np.finfo(np.float32).max)  # boxes become float32


class MotFileDetector(Detector):
    """Per-frame boxes from a MOTChallenge text file, read once at construction.

    Args:
        path: the ``det.txt`` or ``gt.txt`` file.
        kind: ``"det"`` or ``"gt"`` (see the module docstring for what each keeps).
        pose: top-down pose callable giving keypoints for the boxes; None gives zeros.

    Raises:
        ConfigError: unknown ``kind``.
        InputError: the file is missing or a line is malformed (names file and line).
    """

    def __init__(self, path: str | Path, *, kind: str = "det", pose: PoseFn | None = None) -> None:
        if kind not in ("det", "gt"):
            raise ConfigError(f"MotFileDetector kind: expected 'det' or 'gt', got {kind!r}")
        self.path = Path(path)
        self.kind = kind
        self.pose = pose
        rows = read_mot_rows(self.path)
        if kind == "gt":
            rows = _keep_gt_people(rows)
            scores = np.ones(len(rows), np.float32)
        else:
            scores = _det_scores(rows, self.path)
        order = np.argsort(rows[:, 0], kind="stable")
        rows, scores = rows[order], scores[order]
        boxes = rows[:, 2:6].astype(np.float32)
        boxes[:, 2:] += boxes[:, :2]
        self._boxes, self._scores = boxes, scores
        frames = rows[:, 0].astype(np.int64)
        # Row indices where the frame number changes (frames are >= 1, so -1 never matches).
        bounds = np.flatnonzero(np.diff(frames, prepend=-1, append=-1))
        self._ranges = {
            int(frames[s]): (int(s), int(e)) for s, e in zip(bounds[:-1], bounds[1:], strict=True)
        }

    @property
    def frame_ids(self) -> list[int]:
        """Sorted 1-based frame numbers that have at least one box."""
        return sorted(self._ranges)

    def detect(self, frame: np.ndarray, frame_id: int) -> Detections:
        """The file's boxes for ``frame_id``; ``frame`` is only read by ``pose``."""
        start, end = self._ranges.get(int(frame_id), (0, 0))
        boxes = self._boxes[start:end]
        if self.pose is not None and len(boxes):
            keypoints = self.pose(frame, boxes)
        else:
            keypoints = np.zeros((len(boxes), NUM_KEYPOINTS, 3), np.float32)
        return Detections(boxes=boxes, scores=self._scores[start:end], keypoints=keypoints)


def read_mot_rows(path: Path) -> np.ndarray:
    """Parse a MOTChallenge text file into a float64 `(R, C)` array, ``C >= 6``.

    Raises:
        InputError: missing file; a line with fewer than 6 columns, a different column
            count than the first line, a non-numeric or non-finite value, a frame that
            is not an integer >= 1, a width/height <= 0 or a box beyond float32 range.
            Names file and line.
    """
    if not path.is_file():
        raise InputError(f"{path}: detections file not found")
    rows: list[list[float]] = []
    columns = 0
    for number, line in enumerate(read_lines(path), 1):
        fields = line.strip().split(",")
        if fields == [""]:
            continue
        where = f"{path}:{number}"
        if len(fields) < 6:
            raise InputError(
                f"{where}: expected at least 6 comma-separated numbers "
                f"(frame,id,left,top,width,height,...), got {len(fields)}"
            )
        columns = columns or len(fields)
        if len(fields) != columns:
            raise InputError(f"{where}: expected {columns} columns like line 1, got {len(fields)}")
        try:
            values = [float(field) for field in fields]
        except ValueError:
            raise InputError(f"{where}: non-numeric value in {line.strip()!r}") from None
        if not np.isfinite(values).all():
            raise InputError(f"{where}: NaN or infinite value in {line.strip()!r}")
        if not 1 <= values[0] < _MAX_FRAME or values[0] != int(values[0]):
            raise InputError(
                f"{where}: frame must be an integer in 1..{_MAX_FRAME - 1}, got {fields[0]}"
            )
        if values[4] <= 0 or values[5] <= 0:
            raise InputError(f"{where}: width and height must be > 0, got {fields[4]}, {fields[5]}")
        left, top, width, height = values[2:6]
        if max(abs(left), abs(top), abs(left + width), abs(top + height)) > _MAX_COORDINATE:
            raise InputError(
                f"{where}: box coordinates must lie within +-{_MAX_COORDINATE:.3g} "
                f"(float32), got {line.strip()!r}"
            )
        rows.append(values)
    if not rows:
        return np.zeros((0, 6), np.float64)
    return np.asarray(rows, np.float64)


def _keep_gt_people(rows: np.ndarray) -> np.ndarray:
    keep = np.ones(len(rows), bool)
    if rows.shape[1] >= 7:
        keep &= rows[:, 6] != 0
    if rows.shape[1] == _MOT16_COLUMNS:
        keep &= np.isin(rows[:, 7], _KEPT_CLASSES)
    return rows[keep]


def _det_scores(rows: np.ndarray, path: Path) -> np.ndarray:
    if rows.shape[1] < 7 or len(rows) == 0:
        return np.ones(len(rows), np.float32)
    scores = rows[:, 6]
    values = np.unique(scores)
    if len(values) == 1 or np.isin(values, (0.0, 1.0)).all():
        _LOG.warning(
            "%s: column 7 holds only %s, a flag and not a detector confidence; every "
            "detection is used at score 1.0",
            path,
            sorted(float(v) for v in values),
        )
        return np.ones(len(rows), np.float32)
    low, high = float(values[0]), float(values[-1])
    if low >= 0 and high <= 1:
        return scores.astype(np.float32)
    _LOG.info("%s: scores span [%g, %g]; mapped causally into (0, 1]", path, low, high)
    return causal_score_rank(rows[:, 0].astype(np.int64), scores)


def causal_score_rank(frames: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Map raw detector scores of any scale into (0, 1] using only the past.

    The score of a detection on frame ``f`` becomes ``#{past scores <= s} / #{past
    scores}``, where the past is every detection on frames ``<= f`` (the empirical
    distribution function of what the detector has produced so far). Monotone within a
    frame, independent of later frames, free of any scale constant.

    Args:
        frames: `(R,)` int frame numbers (any order).
        scores: `(R,)` float raw scores.

    Returns:
        `(R,)` float32 in (0, 1], aligned with the inputs.
    """
    frames = np.asarray(frames)
    scores = np.asarray(scores, np.float64)
    out = np.zeros(len(scores), np.float32)
    seen = np.zeros(0, np.float64)  # sorted scores of the frames so far
    for frame in np.unique(frames):
        rows = np.flatnonzero(frames == frame)
        seen = np.sort(np.concatenate([seen, scores[rows]]))
        out[rows] = np.searchsorted(seen, scores[rows], side="right") / len(seen)
    return out
