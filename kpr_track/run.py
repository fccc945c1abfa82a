"""The main job: track every person of a video and write the results folder."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tqdm import tqdm

from .draw import draw_tracks
from .errors import ConfigError, OutputError
from .io.frames import ImageFolderReader
from .io.video import DecodeReport, VideoReader
from .io.writers import (
    MOTWriter,
    PoseTrackWriter,
    VideoWriter,
    close_all,
    write_json_atomic,
    writing,
)
from .linking import LinkSetup, RunRecorder, finish
from .pipeline import StageTimer, TrackingPipeline
from .signals import signal_of, stop_signals_held

OUTPUT_FILES = ("tracks.txt", "tracks.json", "video.mp4", "summary.json")


@dataclass(frozen=True)
class RunSettings:
    """What a run was asked to do, recorded in ``summary.json``."""

    video: str
    detector: str
    tracker: str
    reid: str
    imgsz: int
    conf: float
    device: str
    max_frames: int | None

    @classmethod
    def of(cls, video: str | Path, options) -> RunSettings:
        """The settings of a run of ``video`` with ``options`` (the ``track`` arguments or
        a :class:`~kpr_track.dataset_run.TrackOptions`; ``det`` is the detector)."""
        return cls(
            video=str(video),
            detector=options.det,
            tracker=options.tracker,
            reid=options.reid,
            imgsz=options.imgsz,
            conf=options.conf,
            device=options.device,
            max_frames=options.max_frames,
        )


def output_dir(video: Path, out: str | None, exist_ok: bool) -> Path:
    """Choose the results folder without silently overwriting an earlier run.

    Without ``out``: ``runs/track/<video stem>``, then ``<stem>-2``, ``<stem>-3`` ...
    With ``out``: that folder, which must be empty or absent unless ``exist_ok``.

    Raises:
        ConfigError: if ``out`` already holds files and ``exist_ok`` is False.
        OutputError: if ``out`` is not a folder or cannot be listed.
    """
    if out is not None:
        folder = Path(out)
        with writing(folder):
            taken = folder.exists() and any(folder.iterdir())
        if taken and not exist_ok:
            raise ConfigError(
                f"--out {folder}: folder exists and is not empty; choose another folder or "
                f"pass --exist-ok to overwrite"
            )
        return folder
    base = Path("runs") / "track" / video.stem
    folder, n = base, 1
    while folder.exists() and any(folder.iterdir()):
        n += 1
        folder = base.with_name(f"{video.stem}-{n}")
    return folder


def track_video(
    reader: VideoReader | ImageFolderReader,
    pipeline: TrackingPipeline,
    folder: Path,
    settings: RunSettings,
    *,
    progress: bool = True,
    link: LinkSetup | None = None,
) -> dict:
    """Run ``pipeline`` over every frame of ``reader`` and write the four outputs.

    On machines with 4 or more torch threads, decoding and detection run one or two
    frames ahead in a worker thread (:meth:`TrackingPipeline.run`); results are written
    in frame order either way.

    Frames are numbered from 1, or as the image folder numbers them
    (:attr:`ImageFolderReader.frame_ids`, with its ``images`` records in ``tracks.json``);
    a video frame that fails to decode is skipped and reported in ``summary.json`` under
    ``"decode"``. Results are written as the run goes. On Ctrl-C or a stop signal
    (KeyboardInterrupt, see :mod:`kpr_track.signals`) or a failed write (OutputError),
    every writer is closed, ``summary.json`` records what stopped the run
    (``"interrupted"``, ``"signal"``, ``"error"``) and the exception is
    re-raised, so the folder always holds valid files.

    With ``link`` (files, not live sources), the rows and bounded tracklet galleries are
    gathered during the run; once every frame is tracked the tracklets are linked, short
    gaps filled and ``tracks.txt``, ``tracks.json`` and ``video.mp4`` replaced atomically
    by their linked versions (:mod:`kpr_track.linking`); ``summary.json`` records it under
    ``"linking"``. Stopped before or during that step, the folder keeps the online files.

    Returns:
        The summary written to ``summary.json``.

    Raises:
        OutputError: the folder or a result file could not be created or written.
    """
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    info = reader.info
    mot = MOTWriter(folder / "tracks.txt")
    # Image folders keep their own image records in tracks.json.
    posetrack = PoseTrackWriter(
        folder / "tracks.json", video_name=info.path.stem, images=getattr(reader, "images", None)
    )
    video = VideoWriter(folder / "video.mp4", info.fps, (info.width, info.height))
    writers = [mot, posetrack, video]
    recorder = None if link is None else RunRecorder((info.width, info.height), link.config)
    linking: dict = {"linked": False}
    timer: StageTimer = pipeline.timer
    track_ids_seen: set[int] = set()
    frames = detections_total = 0
    start = time.perf_counter()
    stopped_by: KeyboardInterrupt | OutputError | None = None
    bar = tqdm(total=len(reader) or None, unit="frame", disable=not progress, desc="tracking")
    # The frame number is read right after its frame, in the thread that decodes.
    results = pipeline.run((reader.frame_id, frame) for frame in reader)
    try:
        for frame_id, frame, detections, track_ids in results:
            with timer("write"), stop_signals_held():  # every output gets the frame, or none
                mot.write(frame_id, detections, track_ids)
                posetrack.write(frame_id, detections, track_ids)
                video.write(draw_tracks(frame, detections, track_ids))
                frames += 1
                detections_total += len(detections)
                track_ids_seen.update(int(t) for t in track_ids[track_ids >= 0])
            if recorder is not None:
                with timer("link"):
                    recorder.add(frame_id, detections, track_ids)
            bar.update()
            bar.set_postfix(tracks=len(track_ids_seen), people=int((track_ids >= 0).sum()))
        results.close()
        bar.close()
        closing_error, writers = close_all(writers), []
        if closing_error is not None:
            raise closing_error
        if recorder is not None and frames:
            linking = finish(
                folder,
                recorder,
                link,
                fps=info.fps,
                size=(info.width, info.height),
                video_name=info.path.stem,
                images=getattr(reader, "images", None),
            )
    except (KeyboardInterrupt, OutputError) as error:
        stopped_by = error
        raise
    finally:
        results.close()  # stops the decoding / detection thread
        bar.close()
        closing_error = close_all(writers)
        summary = _summary(
            settings,
            frames,
            detections_total,
            track_ids_seen,
            timer,
            time.perf_counter() - start,
            stopped_by or closing_error,
            reader.decode,
            folder,
        )
        summary["frame_rate"] = info.fps  # frames/s every duration of the preset used
        summary["linking"] = linking
        if linking["linked"]:
            summary["tracks"] = linking["tracks"]
        try:
            write_json_atomic(folder / "summary.json", summary)
        except OutputError as error:
            closing_error = closing_error or error
        if closing_error is not None and stopped_by is None:
            raise closing_error
    return summary


def _summary(
    settings: RunSettings,
    frames: int,
    detections: int,
    track_ids: set[int],
    timer: StageTimer,
    wall: float,
    stopped_by: KeyboardInterrupt | OutputError | None,
    decode: DecodeReport,
    folder: Path,
) -> dict:
    interrupted = isinstance(stopped_by, KeyboardInterrupt)
    return {
        "frames": frames,
        "tracks": len(track_ids),
        "detections": detections,
        "interrupted": interrupted,
        "signal": signal_of(stopped_by).name if interrupted else None,
        "error": str(stopped_by) if isinstance(stopped_by, OutputError) else None,
        "decode": asdict(decode),
        "wall_seconds": round(wall, 3),
        "fps": {"end_to_end": round(frames / wall, 3) if wall > 0 else None}
        | {stage: round(v, 3) for stage, v in timer.fps().items()},
        "seconds": {stage: round(v, 3) for stage, v in timer.seconds.items()},
        "settings": asdict(settings),
        "outputs": {name: str(folder / name) for name in OUTPUT_FILES},
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in (
        "kpr-track",
        "torch",
        "torchvision",
        "ultralytics",
        "numpy",
        "opencv-python",
        "lap",
    ):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def format_summary(summary: dict) -> str:
    """The one-screen summary printed at the end of a run."""
    fps = summary["fps"]
    stages = ", ".join(f"{s} {v:.1f}" for s, v in fps.items() if s != "end_to_end")
    state = f"Interrupted ({summary['signal']})" if summary["interrupted"] else "Done"
    if summary["error"]:
        state = "Stopped by an output error"
    lines = [
        f"{state}: {summary['frames']} frames, "
        f"{summary['tracks']} tracks, {summary['detections']} detections "
        f"in {summary['wall_seconds']:.1f} s ({fps['end_to_end'] or 0:.2f} frames/s end to end)",
        f"Stage throughput (calls/s): {stages}",
        *(f"  {name:<12} {path}" for name, path in summary["outputs"].items()),
    ]
    return "\n".join(lines)
