"""The per-sequence structures that evaluation readers produce and metrics consume.

Readers (:mod:`.mot`, :mod:`.posetrack`) turn files into these objects; filters and
metrics never look at files again (the TrackEval split between loaders and metrics).

Shape letters: R rows (one box of one identity in one frame), J = 17 keypoints,
F frames, M polygon vertices.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

Protocol = Literal["MOT15", "MOT17", "MOT20", "PoseTrack21"]
"""Which evaluation rules a ground truth follows.

``MOT15``: only the consider flag (column 7) selects ground truth. ``MOT17`` / ``MOT20``:
also the class column, with distractor classes (TrackEval's ``MotChallenge2DBox``
preprocessing). ``PoseTrack21``: consider flag plus the PoseTrack21 prediction filters
(ignore regions, keypoint scores, short tracks) of :mod:`.filters`.
"""


@dataclass(frozen=True)
class Tracks:
    """Boxes with identities over one sequence, one row per (frame, id).

    Attributes:
        frames: `(R,)` int64, 1-based frame numbers.
        ids: `(R,)` int64 identities (non-negative; unique within a frame).
        boxes: `(R, 4)` float64 boxes ``left, top, width, height`` in pixels.
        scores: `(R,)` float64 confidence of a prediction; for ground truth the
            consider flag (column 7 of a MOTChallenge ``gt.txt``; 0 = ignore the row).
        classes: `(R,)` int64 MOTChallenge classes (ground truth column 8) or None.
        keypoints: `(R, J, 3)` float64 ``x px, y px, score`` or None.
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray | None = None
    keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        rows = len(self.frames)
        expected = {
            "ids": (rows,),
            "boxes": (rows, 4),
            "scores": (rows,),
            "classes": (rows,),
            "keypoints": (rows, 17, 3),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if value is not None and value.shape != shape:
                raise ValueError(f"Tracks.{name}: expected shape {shape}, got {value.shape}")

    def __len__(self) -> int:
        return len(self.frames)

    def select(self, rows: np.ndarray) -> Tracks:
        """The rows picked by a boolean mask `(R,)` or an index array."""
        return dataclasses.replace(
            self,
            **{
                name: None if getattr(self, name) is None else getattr(self, name)[rows]
                for name in ("frames", "ids", "boxes", "scores", "classes", "keypoints")
            },
        )


@dataclass(frozen=True)
class GroundTruth:
    """Ground truth of one sequence and what is known about its frames.

    Attributes:
        name: sequence name (folder name or video file stem).
        num_frames: F, number of frames; rows use frames 1..F.
        tracks: the annotated boxes (``scores`` = consider flag).
        protocol: which evaluation rules apply (see :data:`Protocol`).
        source: the file the boxes were read from (``gt.txt`` or the video JSON).
        labeled: `(F,)` bool, frames that carry annotations; predictions on other
            frames are not scored (PoseTrack annotates only some frames).
        ignore_regions: frame -> list of polygons `(M, 2)` float64 ``x, y`` px where
            unmatched predictions are not counted as false positives.
        image_frames: image id -> frame for PoseTrack layouts (prediction JSON files
            name their images by these ids), or None.
        frame_rate: frames per second when the layout gives it, else None.
        image_size: ``(width, height)`` in pixels when the layout gives it, else None.
    """

    name: str
    num_frames: int
    tracks: Tracks
    protocol: Protocol
    source: Path
    labeled: np.ndarray
    ignore_regions: dict[int, list[np.ndarray]] = field(default_factory=dict)
    image_frames: dict[int, int] | None = None
    frame_rate: float | None = None
    image_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class SequenceData:
    """Ground truth and one tracker's predictions for the same sequence.

    Attributes:
        gt: the ground truth.
        pred: the predictions, frames already on the ground truth's numbering.
        pred_source: the prediction file.
    """

    gt: GroundTruth
    pred: Tracks
    pred_source: Path

    @property
    def name(self) -> str:
        return self.gt.name

    @property
    def num_frames(self) -> int:
        return self.gt.num_frames
