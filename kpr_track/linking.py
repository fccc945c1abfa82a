"""Offline linking of a run: gather tracklets while tracking, link them at the end, fill
short gaps and write the final outputs in place of the online ones.

The online outputs are written as the run goes (so an interrupted run leaves valid
partial files); :meth:`RunLinker.finish` then writes the linked ``tracks.txt``,
``tracks.json`` and ``video.mp4`` to hidden temporary files in the same folder and
renames each over its online version (``os.replace``, atomic on one file system). An
interruption or a write error during that step leaves the online files in place, whole;
``summary.json`` says which ids the folder holds (``"linking": {"linked": ...}``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .detections import Detections
from .draw import draw_tracks
from .io.writers import MOTWriter, PoseTrackWriter, VideoWriter, close_all, writing
from .trackers.gaps import TrackRows, fill_gaps, smooth_tracks
from .trackers.link import LinkConfig, TrackletCollector, link_tracklets

if TYPE_CHECKING:
    from .pipeline import TrackingPipeline, TrackOptions
    from .reid.calibration import DistanceCalibration

FramesFn = Callable[[], Iterable[tuple[int, np.ndarray]]]
"""Opens the source again: ``(frame_id, (H, W, 3) BGR uint8)`` pairs in order."""


@dataclass(frozen=True)
class LinkSetup:
    """What a run needs to link its tracks at the end.

    Attributes:
        config: the tracker preset's ``link`` settings.
        calibration: the appearance model's distance calibration.
        frames: opens the source again for the annotated video with the linked ids.
    """

    config: LinkConfig
    calibration: DistanceCalibration
    frames: FramesFn


def is_live_source(source: str | Path) -> bool:
    """A camera index (``0``) or a stream URL (``rtsp://...``): tracked online only."""
    return str(source).isdigit() or "://" in str(source)


def link_setup(
    options: TrackOptions,
    source: str | Path,
    posetrack_json: str | Path | None,
    pipeline: TrackingPipeline,
) -> LinkSetup | None:
    """The :class:`LinkSetup` of a run of ``source`` with ``options``, or None (online only):
    ``options.link`` (None: the tracker preset's ``link.enabled``), never for a live source
    or without an appearance model.

    Raises:
        ConfigError: ``link=True`` asked for a live source or without an appearance model.
    """
    from .errors import ConfigError
    from .io.frames import open_frames
    from .trackers.link import load_link_config

    config = load_link_config(options.tracker)
    wanted = config.enabled if options.link is None else options.link
    live = is_live_source(source)
    if options.link and live:
        raise ConfigError(f"--link: {source} is a live source; it is tracked online only")
    if options.link and pipeline.appearance is None:
        raise ConfigError("--link needs an appearance model (--reid), not --reid none")
    if not wanted or live or pipeline.appearance is None:
        return None

    def frames():
        reader = open_frames(source, posetrack_json, options.max_frames)
        return ((reader.frame_id, frame) for frame in reader)

    return LinkSetup(config, pipeline.appearance.calibration, frames)


class RunRecorder:
    """Every output row of a run (boxes, scores, keypoints, slot visibility) and the
    bounded tracklet galleries (:class:`~kpr_track.trackers.link.TrackletCollector`).

    Args:
        image_size: ``(width, height)`` px.
        config: the link settings (gallery size, visibility threshold, border margin).
    """

    def __init__(self, image_size: tuple[int, int], config: LinkConfig) -> None:
        self.collector = TrackletCollector(image_size, config)
        self._parts: list[TrackRows] = []

    def add(self, frame_id: int, detections: Detections, track_ids: np.ndarray) -> None:
        """Record one frame's detections and their `(N,)` track ids (-1: not output)."""
        self.collector.add(frame_id, detections, track_ids)
        keep = np.flatnonzero(np.asarray(track_ids) >= 0)
        if len(keep) == 0:
            return
        chosen = detections[keep]
        visibility = None if chosen.visibility is None else chosen.visibility.astype(np.float16)
        self._parts.append(
            TrackRows(
                np.full(len(keep), frame_id, np.int64),
                np.asarray(track_ids, np.int64)[keep],
                chosen.boxes,
                chosen.scores,
                chosen.keypoints,
                visibility,
            )
        )

    def rows(self) -> TrackRows:
        """All recorded rows, sorted by frame."""
        return TrackRows.concatenate(self._parts)


def link_rows(
    rows: TrackRows,
    recorder_or_collector: RunRecorder | TrackletCollector,
    calibration: DistanceCalibration,
    frame_rate: float,
    config: LinkConfig,
) -> tuple[TrackRows, dict]:
    """Link the tracklets and fill the gaps of ``rows``.

    Args:
        rows: every output row of the sequence.
        recorder_or_collector: what gathered the tracklets of ``rows``.
        calibration: the appearance model's distance calibration.
        frame_rate: frames per second (> 0).
        config: link settings (``fill_gap`` seconds -> frames at ``frame_rate``; a gap is
            filled only across a plausible move, ``min_reach + max_speed x gap`` heights;
            then boxes smoothed over ``smooth`` seconds).

    Returns:
        The linked, gap-filled rows and a report: tracklets, joins, tracks after,
        interpolated rows, seconds of the link and fill steps.
    """
    collector = getattr(recorder_or_collector, "collector", recorder_or_collector)
    start = time.perf_counter()
    tracklets = collector.tracklets()
    linked = link_tracklets(tracklets, calibration, frame_rate, config)
    relabelled = rows.relabel(linked)
    linked_at = time.perf_counter()
    reach = (config.min_reach, config.max_speed / frame_rate)  # heights, heights per frame
    filled = fill_gaps(relabelled, int(round(config.fill_gap * frame_rate)), reach)
    filled = smooth_tracks(filled, config.smooth * frame_rate)
    done = time.perf_counter()
    report = {
        "tracklets": len(tracklets),
        "joins": sum(1 for old, new in linked.items() if old != new),
        "tracks": len(set(linked.values())),
        "interpolated_rows": int(filled.interpolated.sum()),
        "seconds": {"link": round(linked_at - start, 4), "fill": round(done - linked_at, 4)},
    }
    return filled, report


class ScoredRunWriter:
    """The result file of a scored run (``kpr-track tune``, ``bench quality``): each frame's
    online ids as it comes, or, with link settings, the run recorded and its linked,
    gap-filled tracks (:func:`link_rows`) written when it is closed, as ``kpr-track VIDEO``
    writes them.

    Args:
        writer: a :class:`~kpr_track.io.writers.MOTWriter` or
            :class:`~kpr_track.io.writers.PoseTrackWriter` (closed by :meth:`close`).
        image_size: ``(width, height)`` px of the sequence.
        calibration: the appearance model's distance calibration (linking only).
        frame_rate: frames per second of the sequence (> 0).
        link: the link settings; None: online ids.
    """

    def __init__(
        self,
        writer: MOTWriter | PoseTrackWriter,
        image_size: tuple[int, int],
        calibration: DistanceCalibration | None,
        frame_rate: float,
        link: LinkConfig | None = None,
    ) -> None:
        self.writer = writer
        self.recorder = None if link is None else RunRecorder(image_size, link)
        self._link = (calibration, frame_rate, link)

    @property
    def path(self) -> Path:
        """The result file."""
        return self.writer.path

    def write(self, frame_id: int, detections: Detections, track_ids: np.ndarray) -> None:
        """One frame's detections and `(N,)` track ids (-1: not output). Linking reads the
        detections' embeddings and visibility (those of its appearance model)."""
        if self.recorder is None:
            self.writer.write(frame_id, detections, track_ids)
        else:
            self.recorder.add(frame_id, detections, track_ids)

    def close(self, frame_ids: Iterable[int]) -> None:
        """Link (when linking) and write the tracks of every frame of ``frame_ids`` (the
        sequence's frames in order), then close the file."""
        if self.recorder is not None:
            calibration, frame_rate, link = self._link
            rows, _ = link_rows(self.recorder.rows(), self.recorder, calibration, frame_rate, link)
            for frame_id in frame_ids:
                self.writer.write(frame_id, *rows.frame(frame_id)[:2])
        self.writer.close()


def write_outputs(
    folder: Path,
    rows: TrackRows,
    frames: Iterable[tuple[int, np.ndarray]],
    *,
    fps: float,
    size: tuple[int, int],
    video_name: str,
    images: dict | None = None,
) -> None:
    """Write ``tracks.txt``, ``tracks.json`` and ``video.mp4`` of ``rows`` into ``folder``,
    each through a hidden temporary file renamed over the final name once all three are
    complete (module docstring).

    Args:
        folder: the results folder (exists).
        rows: the rows to write (sorted by frame).
        frames: the source's frames in order, for the annotated video.
        fps: frames per second of the video; ``size``: its ``(width, height)`` px.
        video_name: ``file_name`` stem in ``tracks.json``; ``images``: frame -> image record.

    Raises:
        OutputError: a file could not be written (the earlier files are left as they were).
    """
    names = ("tracks.txt", "tracks.json", "video.mp4")
    temporary = {name: folder / f".linked.{name}" for name in names}
    mot = posetrack = video = None
    try:
        mot = MOTWriter(temporary["tracks.txt"])
        posetrack = PoseTrackWriter(
            temporary["tracks.json"], video_name=video_name, images=images, flush_every=10**9
        )
        video = VideoWriter(temporary["video.mp4"], fps, size)
        for frame_id, frame in frames:
            detections, track_ids, interpolated = rows.frame(frame_id)
            mot.write(frame_id, detections, track_ids)
            posetrack.write(frame_id, detections, track_ids, interpolated)
            video.write(draw_tracks(frame, detections, track_ids))
        error = close_all([mot, posetrack, video])
        mot = posetrack = video = None
        if error is not None:
            raise error
        for name in names:
            with writing(folder / name):
                os.replace(temporary[name], folder / name)
    finally:
        close_all([w for w in (mot, posetrack, video) if w is not None])
        for path in temporary.values():
            path.unlink(missing_ok=True)


def finish(
    folder: Path,
    recorder: RunRecorder,
    setup: LinkSetup,
    *,
    fps: float,
    size: tuple[int, int],
    video_name: str,
    images: dict | None = None,
) -> dict:
    """Link a finished run's tracks and replace its outputs (module docstring).

    Returns:
        The ``"linking"`` record of ``summary.json``: :func:`link_rows`' report,
        ``"linked": True`` and the seconds spent rewriting the outputs.

    Raises:
        OutputError: as :func:`write_outputs` (the online outputs stay in place).
    """
    rows, report = link_rows(recorder.rows(), recorder, setup.calibration, fps, setup.config)
    start = time.perf_counter()
    write_outputs(
        folder,
        rows,
        setup.frames(),
        fps=fps,
        size=size,
        video_name=video_name,
        images=images,
    )
    report["seconds"]["rewrite"] = round(time.perf_counter() - start, 3)
    return {"linked": True, **report}
