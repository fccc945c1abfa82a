"""Track the sequences of a dataset: one function per sequence, run here or on Ray.

:func:`track_sequence` tracks one :class:`~kpr_track.datasets.sequences.SequenceSpec` and returns
its result file's text and summary; :func:`kpr_track.datasets.executors.run_jobs` runs it
over many sequences, in this process, in local worker processes or as tasks of a Ray
cluster (the same function each time). Result files are written atomically
(:func:`write_result`), summary first and result last, so a result file on disk always
means a finished sequence, and a sequence written twice (a retried task) is the same file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import ConfigError
from ..integrity import write_atomic
from ..pipeline import TrackOptions
from .faults import paused
from .sequences import SequenceSpec

SUMMARY_DIR = "summaries"
# Per-sequence detection files of a MOTChallenge sequence folder, by --det kind.
SEQUENCE_FILES = {"mot": Path("det") / "det.txt", "gt": Path("gt") / "gt.txt"}


@dataclass(frozen=True)
class SequenceJob:
    """One sequence to track.

    Attributes:
        spec: the sequence.
        options: tracking settings.
        threads: torch CPU threads for this sequence (>= 1).
        out: write the result into this folder from the worker (storage every worker
            sees); None: return it for the caller to write.
    """

    spec: SequenceSpec
    options: TrackOptions
    threads: int = 1
    out: Path | None = None


@dataclass(frozen=True)
class SequenceResult:
    """What :func:`track_sequence` returns.

    Attributes:
        spec: the sequence.
        summary: ``sequence``, ``frames``, ``tracks``, ``people_per_frame`` (tracked boxes
            per frame), ``detections``, ``fps`` (frames/s end to end), ``wall_seconds``,
            ``linking`` (as in ``summary.json``: whether the result holds linked ids).
        content: the result file's text, or None when the worker already wrote it.
    """

    spec: SequenceSpec
    summary: dict
    content: str | None


@dataclass(frozen=True)
class SequenceFailure:
    """A sequence that did not finish; nothing of it was written.

    Attributes:
        spec: the sequence.
        reason: one line, e.g. ``"worker killed by SIGKILL (out of memory?)"`` or the
            message of the error the sequence raised.
    """

    spec: SequenceSpec
    reason: str


def sequence_detector(det: str, spec: SequenceSpec) -> str:
    """The ``--det`` value for one sequence: ``mot`` / ``gt`` without a path become that
    MOTChallenge sequence's ``det/det.txt`` / ``gt/gt.txt``; anything else is kept.

    Raises:
        ConfigError: ``mot`` / ``gt`` without a path for a sequence that is not a
            MOTChallenge sequence folder.
    """
    kind, _, path = det.partition(":")
    if kind not in ("mot", "gt") or path:
        return det
    if spec.seq_dir is None:
        raise ConfigError(
            f"--det {det}: per-sequence {kind} files need MOTChallenge sequences "
            f"(--format mot); give --det {kind}:PATH or a detector (yolo-pose, yolox)"
        )
    return f"{kind}:{spec.seq_dir / SEQUENCE_FILES[kind]}"


def track_sequence(job: SequenceJob) -> SequenceResult:
    """Track one sequence (runs in a worker process or a Ray task).

    Raises:
        KprTrackError: bad frames, detections or settings (message names the file).
    """
    import torch

    from ..io.frames import open_frames
    from ..linking import link_setup
    from ..pipeline import build_pipeline
    from ..run import RunSettings, track_video

    torch.set_num_threads(job.threads)
    spec = job.spec
    options = replace(job.options, det=sequence_detector(job.options.det, spec))
    reader = paused(open_frames(spec.source, spec.posetrack_json, options.max_frames), spec.name)
    options = options.for_source(reader.info.width, reader.info.height)  # recorded as used
    pipeline = build_pipeline(options, reader.info.fps)
    settings = RunSettings.of(spec.source, options)
    link = link_setup(options, spec.source, spec.posetrack_json, pipeline)
    with tempfile.TemporaryDirectory(prefix=f"kpr-track-{spec.name}-") as tmp:
        folder = Path(tmp)
        run = track_video(reader, pipeline, folder, settings, progress=False, link=link)
        if run["interrupted"]:  # a partial sequence must never be written as a finished one
            raise KeyboardInterrupt(f"{spec.name}: interrupted after {run['frames']} frames")
        suffix = Path(spec.result_name).suffix
        content = (folder / ("tracks.json" if suffix == ".json" else "tracks.txt")).read_text()
        tracked_boxes = len((folder / "tracks.txt").read_text().splitlines())
    summary = {
        "sequence": spec.name,
        "frames": run["frames"],
        "tracks": run["tracks"],
        "people_per_frame": round(tracked_boxes / run["frames"], 3) if run["frames"] else 0.0,
        "detections": run["detections"],
        "fps": run["fps"]["end_to_end"],
        "wall_seconds": run["wall_seconds"],
        "linking": run["linking"],
        "settings": asdict(options),
    }
    if job.out is not None:
        write_result(job.out, spec, content, summary)
        return SequenceResult(spec, summary, None)
    return SequenceResult(spec, summary, content)


def track_sequence_in_worker(job: SequenceJob) -> SequenceResult:
    """:func:`track_sequence` in a worker process (local or a Ray task).

    tqdm's bars take a lock shared between processes by default (a named semaphore);
    a worker killed by SIGKILL cannot release it, and Python then warns of a "leaked
    semaphore" at exit. A worker's bars are off, so a thread lock is enough.
    """
    import threading

    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    return track_sequence(job)


def write_result(out: Path, spec: SequenceSpec, content: str, summary: dict) -> None:
    """Write ``summaries/<name>.json`` then ``<result_name>``, each atomically."""
    write_atomic(out / SUMMARY_DIR / f"{spec.name}.json", json.dumps(summary, indent=1))
    write_atomic(out / spec.result_name, content)


def is_done(out: Path, spec: SequenceSpec) -> bool:
    """Whether an earlier run finished ``spec`` (its result and summary exist)."""
    return (out / spec.result_name).is_file() and (
        out / SUMMARY_DIR / f"{spec.name}.json"
    ).is_file()


def read_summary(out: Path, spec: SequenceSpec) -> dict:
    """The summary an earlier run wrote for ``spec``."""
    return json.loads((out / SUMMARY_DIR / f"{spec.name}.json").read_text())


def default_threads(workers: int) -> int:
    """Torch threads per sequence when ``workers`` sequences share this machine's CPUs."""
    return max(1, (os.cpu_count() or 1) // workers)
