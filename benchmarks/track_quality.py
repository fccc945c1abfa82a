"""Tracking quality side by side: kpr-track variants vs library trackers on identical detections.

For each sequence group (PETS09-S2L1 at 7 fps, reported; MOT17-02-raw540 at 30 fps, the
sequence presets are tuned on; the seven MOT17-mini sequences combined) and each detection
source (public det.txt where the sequence has one, YOLOX-nano, yolo11n-pose at 960 and at the
input size ``kpr-track VIDEO`` picks for the sequence where that differs), detections,
top-down pose and appearance embeddings come from the detection cache
(:mod:`detection_cache`), built once; camera warps from :mod:`camera_cache`; then every
tracker runs on the same cached detections, with the sequence's frame rate:

- ``motion``: kpr-track ``motion`` preset (appearance off), and its ablations
  ``motion-no-oc`` (OC-SORT re-update and direction term off), ``motion-no-cmc``
  (camera-motion compensation off), ``motion-no-fps`` (Kalman noise at 30-fps constants);
- ``kpr-retail0287``: ``kpr`` preset with the ReID-trained retail-0287 global embedding,
  and its ablations ``-gallery1`` (one stored view per slot) and ``-no-oc``;
- ``kpr-trained`` (``--reid kpr``, the default: trained KPR parts fused with the holistic
  slot) and ``kpr-trained-global`` (``--reid kpr-global``: the holistic slot alone);
  ``kpr-trained-every-crop``: the default with embeddings on demand off (every detection
  the tracker can read is embedded);
- opt-in (slow to cache): ``kpr`` (pose-guided KPR parts on retail-0287) and ``kpr-global``
  (its global embedding: the untouched retail-0287 head on RoIAlign crops);
- every other shipped preset (``configs/trackers/*.yaml``: a newly added tracker) as
  shipped, with the default ``--reid`` features when it weighs appearance;
- ``sort``, ``bytetrack``, ``ocsort``: Roboflow ``trackers`` 2.6.1 on boxes and scores;
- opt-in host rows (``kpr_track.integrations``): each host tracker alone (motion only) and
  ``<host>+kpr`` with the default ``--reid kpr-global`` features (:meth:`KPR.flat
  <kpr_track.kpr.KPR.flat>` vectors; the exact part distance for norfair's ReID), on
  the same detections: boxmot 25 BotSort / DeepOcSort / HybridSort / BoostTrack,
  Ultralytics BoT-SORT, norfair, deep-sort-realtime (alone = one constant embedding).
  Camera-motion compensation is off in every host (the cache keeps no frames).
- ``<row>+link``: the same online run, then offline linking and gap filling
  (:mod:`kpr_track.trackers.link`, the ``link`` section of the ``kpr`` preset) on the
  cached embeddings of the row's own appearance slot, or of the default ``--reid``
  (``kpr-global``, the ``trained-global`` slot) for motion-only and library rows, as
  ``kpr-track link`` does for a result file.

Appearance rows use the calibration each ``--reid`` model ships (fitted on the training
identities of MOT17-02, MOT20-01 and MOT16-04-first50; :data:`detection_cache.SLOT_REID`).

Metrics come from :func:`kpr_track.evaluation.evaluate` (TrackEval). Writes
``results.json``, ``results.md`` and ``quality.png`` to ``--out``.

Run: ``python benchmarks/track_quality.py`` or ``kpr-track bench quality`` (needs
../shared next to the repository and ``pip install 'kpr-track[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from camera_cache import camera_warps
from common import (
    CACHE_DIR,
    RESULTS_DIR,
    SEQUENCE_GROUPS,
    SOURCES,
    YOLO_POSE_SOURCES,
    add_runtime_arguments,
    available_sources,
    benchmark_main,
    check_shared,
    machine_info,
    resolve_groups,
)
from detection_cache import APPEARANCE, DetectionCache, build_job, slot_calibration
from quality_report import COLUMNS, bar_chart, markdown_report
from quality_rows import DEFAULT_TRACKERS, OPT_IN, TRACKERS, TrackerSpec, library_options
from torchvision.ops import box_iou

from kpr_track.evaluation import evaluate, load_ground_truth
from kpr_track.evaluation.mot import read_seqinfo
from kpr_track.io.writers import MOTWriter
from kpr_track.linking import ScoredRunWriter
from kpr_track.trackers import TrackerConfig, load_tracker
from kpr_track.trackers.link import LinkConfig, load_link_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The quality benchmark's command-line options."""
    parser.add_argument(
        "--sequences",
        nargs="+",
        default=list(SEQUENCE_GROUPS),
        metavar="NAME",
        help="sequence groups or single MOT17-mini sequences (default: all groups)",
    )
    parser.add_argument(
        "--detectors",
        nargs="+",
        default=list(SOURCES),
        choices=list(SOURCES),
        help="detection sources (default: all)",
    )
    parser.add_argument(
        "--trackers",
        nargs="+",
        default=DEFAULT_TRACKERS,
        choices=list(TRACKERS),
        help=f"trackers to compare (default: all but {', '.join(OPT_IN)})",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="output folder")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="detection cache folder")
    parser.add_argument(
        "--max-frames", type=int, default=None, help="only the first N frames per sequence"
    )
    parser.add_argument(
        "--rebuild",
        nargs="?",
        const="all",
        choices=("all", "appearance"),
        help="rebuild the detection caches (all; appearance: recompute the appearance "
        "embeddings on the stored detections, after a change of an appearance model)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes building caches in parallel")
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Build the caches, run every tracker, evaluate and write the reports."""
    check_shared()
    groups = resolve_groups(args.sequences)
    specs = [TRACKERS[name] for name in args.trackers]
    features = set().union(*(spec.cache_features for spec in specs))
    started = time.perf_counter()
    paths = build_caches(groups, args.detectors, features, args)
    cache_seconds = time.perf_counter() - started
    preset = load_tracker("kpr").config
    calibrations = {
        slot: slot_calibration(slot)
        for spec in specs
        for slot in (spec.appearance, spec.link)
        if slot is not None
    }
    warps = {
        seq_dir: camera_warps(seq_dir, args.cache_dir, args.max_frames)
        for seq_dirs in groups.values()
        for seq_dir in seq_dirs
        if any(spec.uses_camera for spec in specs)
    }
    rows, details = [], {}
    for group, seq_dirs in groups.items():
        for source in available_sources(seq_dirs, args.detectors):
            caches = {seq_dir: DetectionCache.load(paths[seq_dir, source]) for seq_dir in seq_dirs}
            details[f"{group}/{source}"] = detection_stats(caches)
            for spec in specs:
                tracks_dir = args.cache_dir / "tracks" / group / source / spec.label
                row, per_sequence = track_and_score(
                    spec, caches, preset, tracks_dir, calibrations, warps
                )
                rows.append({"sequence": group, "detector": source, **row})
                details[f"{group}/{source}/{spec.label}"] = per_sequence
                print(_row_line(rows[-1]), flush=True)
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "machine": machine_info(),
        "cache": {
            "jobs": args.jobs,
            "threads": args.threads,
            "seconds_until_ready": round(cache_seconds, 1),  # ~0 when all were cached
        },
        "preset": {
            k: getattr(preset, k)
            for k in (
                "high_score",
                "low_score",
                "new_track_score",
                "max_age_s",
                "min_hits",
                "appearance_weight",
            )
        },
        "calibration": {slot: c.to_json() for slot, c in calibrations.items()},
        "library_options": {  # at 30 fps; the buffer scales with each sequence's rate
            name: library_options(name, preset) for name in ("sort", "bytetrack", "ocsort")
        },
        "rows": rows,
        "details": details,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(report, indent=1))
    (args.out / "results.md").write_text(markdown_report(report))
    bar_chart(rows, args.out / "quality.png")
    print(
        f"wrote {args.out / 'results.md'}, results.json, quality.png "
        f"({time.perf_counter() - started:.0f} s)"
    )
    return 0


def build_caches(groups: dict, sources: list[str], features: set[str], args) -> dict:
    """Make sure every (sequence, source) cache exists; largest jobs first when parallel."""
    jobs = [
        (seq_dir, source)
        for seq_dirs in groups.values()
        for seq_dir in seq_dirs
        for source in available_sources(seq_dirs, sources)
    ]
    jobs.sort(key=lambda job: (job[0].name.startswith("MOT17"), job[1] not in YOLO_POSE_SOURCES))
    options = (features, args.cache_dir, args.max_frames, args.rebuild, args.threads)
    if args.jobs <= 1:
        return {job: build_job(*job, *options) for job in jobs}
    context = multiprocessing.get_context("spawn")  # no fork after torch's thread pools start
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        futures = {job: pool.submit(build_job, *job, *options) for job in jobs}
        return {job: future.result() for job, future in futures.items()}


def track_and_score(
    spec: TrackerSpec,
    caches: dict,
    preset: TrackerConfig,
    tracks_dir: Path,
    calibrations: dict | None = None,
    warps: dict | None = None,
    link_config: LinkConfig | None = None,
):
    """Run one tracker over a group's cached sequences, write MOT files, evaluate them.

    Each sequence's tracker gets its ``frameRate`` (seqinfo.ini), its slot's calibration
    (``calibrations[slot]``) and, per frame, the cached camera warp (``warps[seq_dir]``).
    A ``+link`` row links its tracklets with ``link_config`` (default: the ``kpr``
    preset's ``link`` section) before writing. Our trackers get embeddings only where
    their ``appearance_targets`` ask (embeddings on demand); ``embedded_share`` is the
    share of the detections they could read that they asked for, and the row's appearance
    stage time is scaled by it.
    """
    tracks_dir.mkdir(parents=True, exist_ok=True)
    calibrations = calibrations or {}
    link_config = link_config or load_link_config("kpr")
    frames = embedded = readable = 0
    track_seconds = link_seconds = 0.0
    on_demand = spec.appearance is not None and not (spec.library or spec.host)
    pred_paths = []
    for seq_dir, cache in caches.items():
        info = read_seqinfo(seq_dir)
        frame_rate = float(info.get("frameRate", 30))
        tracker = spec.build(preset, frame_rate, calibrations.get(spec.appearance))
        sequence_warps = (warps or {}).get(seq_dir) if spec.uses_camera else None
        size = (int(info.get("imWidth", 1920)), int(info.get("imHeight", 1080)))
        writer = ScoredRunWriter(
            MOTWriter(tracks_dir / f"{seq_dir.name}.txt"),
            size,
            calibrations.get(spec.link),
            frame_rate,
            link_config if spec.link else None,
        )
        for index, frame_id in enumerate(cache.frame_ids):
            detections = cache.detections(index, spec.appearance)
            kept = np.ones(len(detections), bool)
            if spec.library or spec.host:
                kept = detections.scores >= preset.low_score
                detections = detections[kept]
            if on_demand:
                targets = tracker.appearance_targets(detections)
                embedded += int(targets.sum())
                readable += int((detections.scores >= tracker.appearance_min_score).sum())
                detections = detections.only_embedded(targets)
            extra = {}
            if sequence_warps is not None:
                extra["camera_warp"] = sequence_warps[int(frame_id)]
            start = time.perf_counter()
            ids = tracker.update(detections, **extra)
            track_seconds += time.perf_counter() - start
            if spec.link:  # linking reads every detection, with its link model's embeddings
                detections = cache.detections(index, spec.link)[kept]
            start = time.perf_counter()
            writer.write(int(frame_id), detections, ids)
            link_seconds += time.perf_counter() - start if spec.link else 0.0
        start = time.perf_counter()
        writer.close(cache.frame_ids.tolist())
        link_seconds += time.perf_counter() - start if spec.link else 0.0
        frames += len(cache)
        pred_paths.append(writer.path)
    result = evaluate(list(caches), pred_paths)
    share = embedded / readable if readable else None
    pipeline_seconds = sum(
        stage_seconds(cache, spec, 1.0 if share is None else share) for cache in caches.values()
    )
    row = {
        "tracker": spec.label,
        **{name: result["combined"][name] for name in COLUMNS},
        "frames": frames,
        "association_fps": frames / track_seconds if track_seconds > 0 else None,
        "end_to_end_fps": frames / (pipeline_seconds + track_seconds + link_seconds),
        "link_seconds": round(link_seconds, 3) if spec.link else None,
        "embedded_share": None if share is None else round(share, 4),
    }
    return row, result["sequences"]


def stage_seconds(cache: DetectionCache, spec: TrackerSpec, embedded_share: float = 1.0) -> float:
    """Seconds of the cached stages this tracker's pipeline needs (decode + detect always;
    top-down pose when it uses keypoints; the appearance model it uses, online for the
    ``embedded_share`` of the crops it asked for, over every crop when it links)."""
    stages = ["decode", "detect"]
    if "keypoints" in spec.cache_features:
        stages.append("pose")
    seconds = sum(cache.seconds.get(stage, 0.0) for stage in stages)
    models = {APPEARANCE[slot]: 1.0 for slot in (spec.link,) if slot}
    if spec.appearance:
        models.setdefault(APPEARANCE[spec.appearance], embedded_share)
    return seconds + sum(cache.seconds.get(m, 0.0) * share for m, share in models.items())


SCORE_BANDS = (0.0, 0.05, 0.2, 0.4, 0.6, 1.0)


def detection_stats(caches: dict) -> dict:
    """Frames, detections, score quantiles, precision per score band and stage times.

    Precision of a band: share of its detections overlapping a ground-truth box (consider
    flag set) with IoU >= 0.5, which shows what the trackers' score thresholds select.
    """
    frames = sum(len(c) for c in caches.values())
    seconds: dict[str, float] = {}
    scores, correct = [], []
    for seq_dir, cache in caches.items():
        for stage, value in cache.seconds.items():
            seconds[stage] = seconds.get(stage, 0.0) + value
        gt = load_ground_truth(seq_dir).tracks
        gt = gt.select(gt.scores != 0)
        for index, frame_id in enumerate(cache.frame_ids):
            found = cache.detections(index)
            rows = gt.frames == frame_id
            truth = torch.from_numpy(
                np.c_[gt.boxes[rows, :2], gt.boxes[rows, :2] + gt.boxes[rows, 2:]]
            )
            iou = box_iou(torch.from_numpy(found.boxes).double(), truth.double())
            correct.append(
                (iou >= 0.5).any(dim=1).numpy() if iou.numel() else np.zeros(len(found), bool)
            )
            scores.append(found.scores)
    scores, correct = np.concatenate(scores), np.concatenate(correct)
    band = np.digitize(scores, SCORE_BANDS[1:-1])
    precision = {
        f"[{low}, {high}{']' if high == 1.0 else ')'}": (
            round(float(correct[band == k].mean()), 3) if (band == k).any() else None,
            int((band == k).sum()),
        )
        for k, (low, high) in enumerate(zip(SCORE_BANDS[:-1], SCORE_BANDS[1:], strict=True))
    }
    return {
        "frames": frames,
        "detections": int(len(scores)),
        "per_frame": len(scores) / frames,
        "score_quantiles_5_50_95": np.quantile(scores, [0.05, 0.5, 0.95]).round(3).tolist(),
        "precision_and_count_by_score": precision,
        "seconds_per_frame": {stage: value / frames for stage, value in seconds.items()},
    }


def _row_line(row: dict) -> str:
    return (
        f"{row['sequence']:<12} {row['detector']:<9} {row['tracker']:<15} HOTA {row['HOTA']:.3f} "
        f"IDF1 {row['IDF1']:.3f} MOTA {row['MOTA']:.3f} IDSW {row['IDSW']}"
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Script and ``kpr-track bench quality`` entry point; errors print one line, exit 2."""
    return benchmark_main(__doc__, add_arguments, run, argv, prog)


if __name__ == "__main__":
    raise SystemExit(main())
