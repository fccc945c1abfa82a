"""The speed benchmark's whole-pipeline runs: ``kpr-track track`` as built by the CLI,
per stage, on PETS09 and on the MOT20-01 crowd, and the long-run memory."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from memory import replayed, tracked_peak
from speed_common import MOT20_01, PETS09

from kpr_track.evaluation.mot import read_seqinfo
from kpr_track.io.video import sequence_frames


class E2ERun(NamedTuple):
    """One end-to-end run: the sequence, the ``kpr-track track`` options changed from
    the CLI defaults, the overlap (None: the CLI's choice) and settings changed from the
    tracker preset."""

    sequence: Path
    changes: dict = {}
    overlap: bool | None = None
    tracker_settings: dict = {}


# PETS09 (4.6 people a frame): the defaults (onnxruntime fp32), PyTorch, int8, no
# appearance, the defaults overlapped, the YOLOX fast path; MOT20-01 (a 1080p crowd):
# the defaults, PyTorch, no appearance. ``*_every_crop``: the defaults with embeddings on
# demand off, what they save.
EVERY_CROP = {"embed_refresh_s": 0.0}
E2E_RUNS: dict[str, E2ERun] = {
    "end_to_end": E2ERun(PETS09),
    "end_to_end_every_crop": E2ERun(PETS09, tracker_settings=EVERY_CROP),
    "end_to_end_torch": E2ERun(PETS09, {"reid_backend": "torch"}),
    "end_to_end_int8": E2ERun(PETS09, {"reid_precision": "int8"}),
    "end_to_end_no_reid": E2ERun(PETS09, {"reid": "none"}),
    "end_to_end_overlap": E2ERun(PETS09, overlap=True),
    "end_to_end_yolox": E2ERun(PETS09, {"det": "yolox"}),
    "mot20_01": E2ERun(MOT20_01),
    "mot20_01_every_crop": E2ERun(MOT20_01, tracker_settings=EVERY_CROP),
    "mot20_01_torch": E2ERun(MOT20_01, {"reid_backend": "torch"}),
    "mot20_01_no_reid": E2ERun(MOT20_01, {"reid": "none"}),
}


def run_end_to_end(name: str, frames: int, mot20_frames: int, yolox: Path) -> dict:
    """The run ``name`` of :data:`E2E_RUNS` (``det: yolox`` with the ``yolox`` weights)."""
    sequence, changes, overlap, settings = E2E_RUNS[name]
    if changes.get("det") == "yolox":
        changes = {**changes, "det": f"yolox:{yolox}"}
    count = mot20_frames if sequence == MOT20_01 else frames
    return end_to_end(count, tracking_options(**changes), overlap, sequence, settings)


def tracking_options(**changes: object) -> argparse.Namespace:
    """The ``kpr-track track`` defaults (detector, ReID, tracker ...), with ``changes``."""
    from kpr_track.cli.track import add_link_option, add_tracking_options

    parser = argparse.ArgumentParser()
    add_tracking_options(parser)
    add_link_option(parser)
    return argparse.Namespace(**{**vars(parser.parse_args([])), **changes})


def end_to_end(
    frames: int,
    options: argparse.Namespace,
    overlap: bool | None = None,
    sequence: Path = PETS09,
    tracker_settings: dict | None = None,
) -> dict:
    """The whole tracking pipeline built as ``kpr-track track`` builds it from
    ``options``, over the first ``frames`` frames of ``sequence``, per stage; the tracker
    preset's settings changed by ``tracker_settings``. ``crops_per_frame``: detections
    the appearance model embedded (the tracker's ``appearance_targets``).

    ``runtime`` records what ran the appearance model (``onnx`` / ``torch`` / ``-``).

    ``overlap``: as :meth:`TrackingPipeline.run` (None: the CLI's choice for this
    machine). Overlapped, decoding and detection of the next frame run in a worker
    thread while appearance and tracking handle the current one, so the stage times add
    up to more than the wall time; ``share_of_time`` is each stage's share of their sum.
    """
    from kpr_track.pipeline import StageTimer, TrackOptions, build_pipeline, overlap_pays
    from kpr_track.reid.export import OnnxAppearanceModel
    from kpr_track.trackers import load_tracker

    info = read_seqinfo(sequence)
    resolved = TrackOptions.of(options).for_source(int(info["imWidth"]), int(info["imHeight"]))
    pipeline = build_pipeline(resolved, float(info["frameRate"]))
    if tracker_settings:
        pipeline.tracker = load_tracker(
            resolved.tracker,
            tracker_settings,
            frame_rate=float(info["frameRate"]),
            calibration=pipeline.tracker.calibration,
        )
    iterator = sequence_frames(sequence, frames + 1)
    first_id, first = next(iterator)
    warm = pipeline.detect(first, first_id)  # warm-up, untimed and unseen by the tracker
    if pipeline.appearance is not None:
        pipeline.appearance(first, warm)
    pipeline.timer = StageTimer()
    people = crops = 0
    start = time.perf_counter()
    for _, _, detections, _ in pipeline.run(iterator, overlap=overlap):
        people += len(detections)
        if detections.visibility is not None:
            crops += int((detections.visibility.max(axis=1, initial=0.0) > 0).sum())
    wall = time.perf_counter() - start
    timer = pipeline.timer
    count = timer.calls["detect"]
    ms = {stage: 1000 * seconds / count for stage, seconds in timer.seconds.items()}
    stage = pipeline.appearance
    runtime = "-" if stage is None else "torch"
    if stage is not None and isinstance(stage.net, OnnxAppearanceModel):
        runtime = f"onnx {options.reid_precision}"
    return {
        "sequence": sequence.name,
        "detector": options.det,
        "reid": options.reid,
        "reid_backend": options.reid_backend,
        "runtime": runtime,
        "tracker": options.tracker,
        "overlap": overlap_pays() if overlap is None else overlap,
        "frames": count,
        "detections_per_frame": people / count,
        "crops_per_frame": crops / count,
        "tracker_settings": tracker_settings or {},
        "fps": count / wall,
        "ms_per_frame": ms,
        "share_of_time": {stage: value / sum(ms.values()) for stage, value in ms.items()},
        "association_vs_detection": ms["track"] / ms["detect"],
        "reid_vs_detection": ms.get("reid", 0.0) / ms["detect"],
    }


def long_run_memory(passes: tuple[int, ...] = (1, 3)) -> dict:
    """Peak resident set size of ``kpr-track track`` (default settings) on the whole
    PETS09 video and on the video played ``n`` times through, each run in its own
    process (:func:`memory.tracked_peak`: ``VmHWM`` of the child while it runs; the
    rusage of a child forked from this large process would report this process's peak).
    """
    video = PETS09 / "vtest.avi"
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in passes:
            source = video if count == 1 else replayed(video, count, Path(tmp))
            out[f"passes_{count}"] = tracked_peak(source, Path(tmp) / f"run{count}", [])
    first, last = out[f"passes_{passes[0]}"], out[f"passes_{passes[-1]}"]
    out["peak_rss_ratio"] = last["peak_rss_mib"] / first["peak_rss_mib"]
    return out
