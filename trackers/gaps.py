"""Track rows of a whole sequence, relabelled by linking and with short gaps filled.

:class:`TrackRows` holds every output row of a run (one per tracked detection).
:func:`fill_gaps` adds, for every track, rows for the frames of a gap between two of its
observations lasting at most ``max_frames`` frames, with the box and the keypoints
linearly interpolated between the two observations (the linear interpolation step of
StrongSORT++, Du et al., IEEE TMM 2023, Sec. 4.2); longer gaps stay empty. Added rows are
marked ``interpolated``. :func:`smooth_tracks` then smooths each track's boxes over time
with a Gaussian kernel, the role of StrongSORT++'s Gaussian-smoothed interpolation (GSI,
Sec. 4.2, which fits a Gaussian process with an RBF kernel; on frames one step apart the
process's posterior mean is a Gaussian-weighted average of the neighbouring boxes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kpr_track.detections import Detections
from kpr_track.errors import InputError
from kpr_track.keypoints import NUM_KEYPOINTS


@dataclass(frozen=True)
class TrackRows:
    """Output rows sorted by (frame, row order), ``R`` rows.

    Attributes:
        frames: `(R,)` int64 frame numbers (from 1).
        track_ids: `(R,)` int64 ids (> 0).
        boxes: `(R, 4)` float32 xyxy px.
        scores: `(R,)` float32 in [0, 1] (interpolated rows: the lower of the two ends).
        keypoints: `(R, 17, 3)` float32 ``(x px, y px, conf)``.
        visibility: `(R, P)` float32 slot visibility in [0, 1], or None.
        interpolated: `(R,)` bool, True for rows added by :func:`fill_gaps`.

    Raises:
        InputError: when the arrays do not have ``R`` rows of the shapes above.
    """

    frames: np.ndarray
    track_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray | None = None
    interpolated: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.frames)
        if self.interpolated is None:
            object.__setattr__(self, "interpolated", np.zeros(n, bool))
        shapes = {
            "track_ids": (self.track_ids, (n,)),
            "boxes": (self.boxes, (n, 4)),
            "scores": (self.scores, (n,)),
            "keypoints": (self.keypoints, (n, NUM_KEYPOINTS, 3)),
            "interpolated": (self.interpolated, (n,)),
        }
        if self.visibility is not None:
            shapes["visibility"] = (self.visibility, (n, np.shape(self.visibility)[-1]))
        for name, (array, expected) in shapes.items():
            if np.shape(array) != expected:
                raise InputError(
                    f"TrackRows.{name}: expected shape {expected}, got {np.shape(array)}"
                )

    @classmethod
    def concatenate(cls, parts: list[TrackRows]) -> TrackRows:
        """The rows of ``parts`` in one table, sorted by frame (stable)."""
        if not parts:
            return cls.empty()
        fields = ("frames", "track_ids", "boxes", "scores", "keypoints", "interpolated")
        arrays = {name: np.concatenate([getattr(p, name) for p in parts]) for name in fields}
        has_visibility = all(p.visibility is not None for p in parts)
        visibility = np.concatenate([p.visibility for p in parts]) if has_visibility else None
        order = np.argsort(arrays["frames"], kind="stable")
        return cls(
            **{name: array[order] for name, array in arrays.items()},
            visibility=None if visibility is None else visibility[order],
        )

    @classmethod
    def empty(cls) -> TrackRows:
        """No rows."""
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, NUM_KEYPOINTS, 3), np.float32),
        )

    def __len__(self) -> int:
        return len(self.frames)

    def select(self, index: np.ndarray) -> TrackRows:
        """The rows ``index`` (int indices or a bool mask) selects, in that order."""
        return TrackRows(
            self.frames[index],
            self.track_ids[index],
            self.boxes[index],
            self.scores[index],
            self.keypoints[index],
            None if self.visibility is None else self.visibility[index],
            self.interpolated[index],
        )

    def relabel(self, linked: dict[int, int]) -> TrackRows:
        """The rows with each id ``i`` replaced by ``linked.get(i, i)``."""
        ids = np.array([linked.get(int(i), int(i)) for i in self.track_ids], np.int64)
        return TrackRows(
            self.frames,
            ids,
            self.boxes,
            self.scores,
            self.keypoints,
            self.visibility,
            self.interpolated,
        )

    def frame(self, frame_id: int) -> tuple[Detections, np.ndarray, np.ndarray]:
        """The rows of one frame as ``(detections, track_ids (N,), interpolated (N,))``."""
        start, end = np.searchsorted(self.frames, [frame_id, frame_id + 1])
        rows = self.select(slice(int(start), int(end)))
        detections = Detections(rows.boxes, rows.scores, rows.keypoints)
        if rows.visibility is not None:
            embeddings = np.zeros((len(rows), rows.visibility.shape[1], 1), np.float32)
            detections = detections.with_appearance(embeddings, rows.visibility)
        return detections, rows.track_ids, rows.interpolated


def fill_gaps(
    rows: TrackRows,
    max_frames: int,
    reach: tuple[float, float] = (np.inf, 0.0),
) -> TrackRows:
    """``rows`` plus linearly interpolated rows in each track's gaps of at most
    ``max_frames`` missing frames (module docstring).

    A gap across which the box centre moved more than ``reach[0] + reach[1] x (frames
    from one end to the other)`` box heights (mean of the two ends) is left empty: such a
    jump is a change of person inside the track, and a line between two people is
    nobody.

    Keypoint coordinates are interpolated like the box; a keypoint's confidence is the
    lower of its two ends', so a joint missing at either end stays missing. Visibility
    (when present) is the lower of the two ends' per slot.

    Args:
        rows: the rows of a sequence.
        max_frames: largest number of missing frames filled (0: none).
        reach: ``(box heights, box heights per frame)`` of the largest plausible move.

    Returns:
        The rows and the added ones, sorted by frame; added rows have
        ``interpolated`` True.

    Raises:
        InputError: when a track has two rows in one frame.
    """
    if max_frames < 1 or len(rows) == 0:
        return rows
    added = []
    for track_id in np.unique(rows.track_ids):
        index = np.flatnonzero(rows.track_ids == track_id)
        index = index[np.argsort(rows.frames[index], kind="stable")]
        frames = rows.frames[index]
        steps = np.diff(frames)
        if (steps == 0).any():
            frame = int(frames[1:][steps == 0][0])
            raise InputError(f"track {int(track_id)} has two rows in frame {frame}")
        for k in np.flatnonzero((steps > 1) & (steps <= max_frames + 1)):
            a, b = int(index[k]), int(index[k + 1])
            if _shift(rows.boxes[a], rows.boxes[b]) <= reach[0] + reach[1] * steps[k]:
                added.append(_interpolate(rows, a, b))
    return TrackRows.concatenate([rows, *added]) if added else rows


def _shift(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between the centres of xyxy boxes ``a`` and ``b`` in mean box heights."""
    step = (a[:2] + a[2:]) / 2.0 - (b[:2] + b[2:]) / 2.0
    height = ((a[3] - a[1]) + (b[3] - b[1])) / 2.0
    return float(np.linalg.norm(step) / height) if height > 0 else np.inf


def _interpolate(rows: TrackRows, a: int, b: int) -> TrackRows:
    """Rows for the frames strictly between row ``a`` and the later row ``b`` of a track."""
    frames = np.arange(rows.frames[a] + 1, rows.frames[b], dtype=np.int64)
    t = ((frames - rows.frames[a]) / (rows.frames[b] - rows.frames[a])).astype(np.float32)

    def blend(array: np.ndarray) -> np.ndarray:
        shape = (-1,) + (1,) * (array.ndim - 1)
        return array[a] + (array[b] - array[a]) * t.reshape(shape)

    keypoints = np.repeat(rows.keypoints[a][None], len(frames), axis=0)
    keypoints[..., :2] = blend(rows.keypoints[:, :, :2])
    keypoints[..., 2] = np.minimum(rows.keypoints[a, :, 2], rows.keypoints[b, :, 2])
    visibility = None
    if rows.visibility is not None:
        low = np.minimum(rows.visibility[a], rows.visibility[b])
        visibility = np.repeat(low[None], len(frames), axis=0)
    return TrackRows(
        frames,
        np.full(len(frames), rows.track_ids[a], np.int64),
        blend(rows.boxes).astype(np.float32),
        np.full(len(frames), min(rows.scores[a], rows.scores[b]), np.float32),
        keypoints.astype(np.float32),
        visibility,
        np.ones(len(frames), bool),
    )


def smooth_tracks(rows: TrackRows, sigma: float) -> TrackRows:
    """``rows`` with each track's boxes smoothed over its runs of consecutive frames by a
    Gaussian kernel of ``sigma`` frames (:func:`scipy.ndimage.gaussian_filter1d`, edges
    held), the GSI step of the module docstring. Keypoints and scores are kept.

    Args:
        rows: the rows of a sequence, one row per track and frame.
        sigma: kernel standard deviation in frames (0: unchanged).
    """
    from scipy.ndimage import gaussian_filter1d

    if sigma <= 0 or len(rows) == 0:
        return rows
    boxes = rows.boxes.copy()
    for track_id in np.unique(rows.track_ids):
        index = np.flatnonzero(rows.track_ids == track_id)
        index = index[np.argsort(rows.frames[index], kind="stable")]
        breaks = np.flatnonzero(np.diff(rows.frames[index]) != 1) + 1
        for run in np.split(index, breaks):
            if len(run) > 1:
                boxes[run] = gaussian_filter1d(rows.boxes[run], sigma, axis=0, mode="nearest")
    return replace(rows, boxes=boxes)
