"""``kpr-track link``: re-link a MOTChallenge result file of any tracker with KPR appearance.

The result file's boxes are embedded frame by frame with the appearance model (keypoint
prompts from top-down pose when the model reads keypoints), gathered into tracklets by
the file's ids, linked and gap-filled (:mod:`kpr_track.trackers.link`,
:mod:`kpr_track.trackers.gaps`), then written as a ``track`` run writes its results:
``tracks.txt``, ``tracks.json``, ``video.mp4`` (each through a temporary file renamed
when complete) and ``summary.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .detections import Detections
from .detectors.files import read_mot_rows
from .errors import InputError
from .io.textfiles import read_lines
from .io.writers import write_json_atomic, writing
from .keypoints import NUM_KEYPOINTS
from .linking import RunRecorder, link_rows, write_outputs
from .trackers.link import LinkConfig

PoseFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MotResults:
    """A checked MOTChallenge result file, ``R`` rows sorted by frame (stable).

    Attributes:
        path: the file.
        frames: `(R,)` int64 frame numbers (from 1).
        track_ids: `(R,)` int64 ids (>= 1).
        boxes: `(R, 4)` float32 xyxy px (from ``left, top, width, height``).
        scores: `(R,)` float32: column 7 where it lies in [0, 1], else 1 (``-1`` and other
            "no score" markers).
    """

    path: Path
    frames: np.ndarray
    track_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def rows_of(self, frame_id: int) -> slice:
        """The rows of frame ``frame_id``."""
        start, end = np.searchsorted(self.frames, [frame_id, frame_id + 1])
        return slice(int(start), int(end))


def read_mot_results(path: str | Path, last_frame: int | None = None) -> MotResults:
    """Read and check a MOTChallenge result file ``frame,id,left,top,width,height[,conf,...]``.

    Args:
        path: the file.
        last_frame: the video's last frame number; a row past it is an error.

    Raises:
        InputError: one line naming the file, the line and the field: fewer than 6 or
            unequal columns, a non-numeric value, a frame that is not an integer >= 1 or is
            past ``last_frame``, an id that is not an integer >= 1, a width or height <= 0,
            or two rows of one id in one frame.
    """
    path = Path(path)
    rows = read_mot_rows(path)  # columns, numbers, frame >= 1, sizes > 0 (file:line)
    lines = [n for n, line in enumerate(read_lines(path), 1) if line.strip()]
    frames = rows[:, 0].astype(np.int64)
    ids = rows[:, 1]
    for k in np.flatnonzero((ids < 1) | (ids != np.round(ids))):
        raise InputError(f"{path}:{lines[k]}: field 2 (id) must be an integer >= 1, got {ids[k]:g}")
    if last_frame is not None:
        for k in np.flatnonzero(frames > last_frame):
            raise InputError(
                f"{path}:{lines[k]}: field 1 (frame) is {frames[k]}, past the video's last "
                f"frame {last_frame}"
            )
    order = np.lexsort((ids, frames))
    same = (np.diff(frames[order]) == 0) & (np.diff(ids[order]) == 0)
    for k in np.flatnonzero(same):
        row = order[k + 1]
        raise InputError(
            f"{path}:{lines[row]}: field 2 (id) {int(ids[row])} appears twice in frame "
            f"{frames[row]} (also line {lines[order[k]]})"
        )
    order = np.argsort(frames, kind="stable")
    boxes = rows[:, 2:6].astype(np.float32)
    boxes[:, 2:] += boxes[:, :2]
    scores = rows[:, 6] if rows.shape[1] > 6 else np.ones(len(rows))
    scores = np.where((scores >= 0) & (scores <= 1), scores, 1.0).astype(np.float32)
    return MotResults(path, frames[order], ids[order].astype(np.int64), boxes[order], scores[order])


def relink(
    reader,
    results: MotResults,
    appearance,
    pose: PoseFn | None,
    config: LinkConfig,
    folder: Path,
    reopen: Callable,
    *,
    progress: bool = True,
) -> dict:
    """Embed the boxes of ``results`` over the frames of ``reader``, link, fill gaps and
    write the outputs into ``folder`` (module docstring).

    Args:
        reader: the video's :class:`~kpr_track.io.video.VideoReader` or image-folder reader.
        results: the checked result file.
        appearance: the appearance stage (``KPRAppearance``; its ``calibration`` is the
            evidence).
        pose: top-down pose ``(frame, boxes (N, 4)) -> (N, 17, 3)`` for the prompts, or None.
        config: link settings.
        folder: the results folder.
        reopen: opens ``reader``'s source again (``(frame_id, frame)`` pairs) for the video.

    Returns:
        The summary written to ``summary.json``.

    Raises:
        OutputError: a result file could not be written.
    """
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    info = reader.info
    recorder = RunRecorder((info.width, info.height), config)
    start = time.perf_counter()
    seen: set[int] = set()
    bar = tqdm(total=len(reader) or None, unit="frame", disable=not progress, desc="embedding")
    for frame in reader:
        frame_id = reader.frame_id
        seen.add(frame_id)
        rows = results.rows_of(frame_id)
        boxes = results.boxes[rows]
        keypoints = np.zeros((len(boxes), NUM_KEYPOINTS, 3), np.float32)
        if pose is not None and len(boxes):
            keypoints = pose(frame, boxes)
        found = appearance(frame, Detections(boxes, results.scores[rows], keypoints))
        recorder.add(frame_id, found, results.track_ids[rows])
        bar.update()
    bar.close()
    embedded = time.perf_counter() - start
    missing = np.flatnonzero(~np.isin(results.frames, list(seen)))
    for frame_id in np.unique(results.frames[missing]):  # frames that did not decode
        rows = results.rows_of(int(frame_id))
        boxes = results.boxes[rows]
        found = Detections(boxes, results.scores[rows], np.zeros((len(boxes), NUM_KEYPOINTS, 3)))
        recorder.add(int(frame_id), found, results.track_ids[rows])
    rows, report = link_rows(recorder.rows(), recorder, appearance.calibration, info.fps, config)
    written = time.perf_counter()
    write_outputs(
        folder,
        rows,
        reopen(),
        fps=info.fps,
        size=(info.width, info.height),
        video_name=info.path.stem,
        images=getattr(reader, "images", None),
    )
    report["seconds"]["rewrite"] = round(time.perf_counter() - written, 3)
    report["seconds"]["embed"] = round(embedded, 3)
    summary = {
        "video": str(info.path),
        "input": str(results.path),
        "frames": len(seen),
        "input_rows": len(results.frames),
        "input_tracks": int(len(np.unique(results.track_ids))),
        "rows": len(rows),
        "linking": {"linked": True, **report},
        "outputs": {
            name: str(folder / name)
            for name in ("tracks.txt", "tracks.json", "video.mp4", "summary.json")
        },
    }
    write_json_atomic(folder / "summary.json", summary)
    return summary
