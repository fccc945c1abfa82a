"""Tracking quality side by side: kpr-track variants vs library trackers on identical detections.

For each sequence group (PETS09-S2L1 at 7 fps, reported; MOT17-02-raw540 at 30 fps, the
sequence presets are tuned on; the seven MOT17-mini sequences combined) and each detection
source (public det.txt where the sequence has one, YOLOX-nano, yolo11n-pose), detections,
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
import dataclasses
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
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
    add_runtime_arguments,
    available_sources,
    benchmark_main,
    check_shared,
    machine_info,
    resolve_groups,
)
from detection_cache import APPEARANCE, DetectionCache, build_job, slot_calibration
from quality_report import COLUMNS, bar_chart, markdown_report
from torchvision.ops import box_iou

from kpr_track.baselines import RoboflowTracker
from kpr_track.evaluation import evaluate, load_ground_truth
from kpr_track.evaluation.mot import read_seqinfo
from kpr_track.integrations.boxmot import BoxmotTracker
from kpr_track.integrations.deep_sort import DeepSortTracker
from kpr_track.integrations.norfair import NorfairTracker
from kpr_track.integrations.ultralytics import UltralyticsTracker
from kpr_track.io.writers import MOTWriter
from kpr_track.linking import RunRecorder, link_rows
from kpr_track.trackers import (
    BaseTracker,
    TrackerConfig,
    load_tracker,
    preset_settings,
    shipped_presets,
)
from kpr_track.trackers.config import per_frame
from kpr_track.trackers.link import LinkConfig, load_link_config


@dataclass(frozen=True)
class TrackerSpec:
    """One tracker of the comparison.

    Attributes:
        label: name in the tables.
        appearance: cache slot attached to the detections (None: boxes only).
        features: cache features it needs (keypoints for the prompts, embeddings).
        preset: our preset it starts from (None for a library tracker).
        overrides: settings changed from the preset (ablation rows).
        fps_aware: give the tracker the sequence frame rate (False: the ablation row
            without frame-rate scaling, i.e. the 30 fps constants everywhere).
        library: a Roboflow tracker name (fed only detections scoring at least
            ``low_score``, which our trackers ignore by themselves).
        host: a key of :data:`HOSTS` (fed like a library tracker); with ``appearance``
            it gets that slot's embeddings.
        link: cache slot whose embeddings link the tracklets after the online pass
            (None: online only).
    """

    label: str
    appearance: str | None = None
    features: frozenset[str] = frozenset()
    preset: str | None = None
    overrides: dict = field(default_factory=dict)
    fps_aware: bool = True
    library: str | None = None
    host: str | None = None
    link: str | None = None

    def build(self, preset: TrackerConfig, frame_rate: float, calibration) -> BaseTracker:
        """A fresh tracker for one sequence of ``frame_rate`` frames/s; ``calibration``
        is the appearance slot's (None without appearance)."""
        if self.library is not None:
            options = library_options(self.library, preset, frame_rate)
            return RoboflowTracker(self.library, **options)
        if self.host is not None:
            max_age = per_frame(preset, frame_rate).max_age
            return HOSTS[self.host](self.appearance is not None, preset, max_age)
        return load_tracker(
            self.preset,
            self.overrides,
            frame_rate=frame_rate if self.fps_aware else None,
            calibration=calibration,
        )

    @property
    def uses_camera(self) -> bool:
        """Whether the tracker reads camera warps (our trackers with ``camera_motion``)."""
        if self.library is not None or self.host is not None:
            return False
        _, settings = preset_settings(self.preset, self.overrides)
        return bool(getattr(settings, "camera_motion", False))


def library_options(name: str, preset: TrackerConfig, frame_rate: float = 30.0) -> dict:
    """Settings of a Roboflow tracker aligned with our preset where they mean the same.

    Score thresholds follow the preset (they depend on the detector's score scale, and
    the library defaults assume ByteTrack's calibrated 0.6 / 0.7); the lost-track buffer
    is the preset's ``max_age_s`` in frames at ``frame_rate`` (``frame_rate=30`` makes
    the library's 30-fps buffer a frame count). IoU thresholds, minimum consecutive
    frames and OC-SORT's direction weight / delta_t keep the library defaults.
    """
    buffer = per_frame(preset, frame_rate).max_age
    options: dict = {"lost_track_buffer": buffer, "frame_rate": 30.0}
    if name in ("sort", "bytetrack"):
        options["track_activation_threshold"] = preset.new_track_score
    if name in ("bytetrack", "ocsort"):
        options["high_conf_det_threshold"] = preset.high_score
    return options


def _boxmot(name: str):
    def build(appearance: bool, preset: TrackerConfig, max_age: int) -> BaseTracker:
        # BotSort's score thresholds and buffer follow the preset, as for Roboflow's trackers;
        # the others' det_thresh is the preset's new-track score.
        if name == "botsort":
            options = {
                "track_high_thresh": preset.high_score,
                "track_low_thresh": preset.low_score,
                "new_track_thresh": preset.new_track_score,
                "track_buffer": max_age,
            }
        else:
            options = {"det_thresh": preset.new_track_score, "max_age": max_age}
        return BoxmotTracker(name, appearance=appearance, camera_motion=False, **options)

    return build


def _ultralytics(appearance: bool, preset: TrackerConfig, max_age: int) -> BaseTracker:
    options = {
        "track_high_thresh": preset.high_score,
        "track_low_thresh": preset.low_score,
        "new_track_thresh": preset.new_track_score,
        "track_buffer": max_age,
    }
    return UltralyticsTracker(appearance=appearance, camera_motion=False, **options)


# Host trackers of kpr_track.integrations: (appearance on?, our preset, its max_age_s in
# frames at the sequence's frame rate) -> tracker.
HOSTS = {
    **{f"boxmot-{n}": _boxmot(n) for n in ("botsort", "deepocsort", "hybridsort", "boosttrack")},
    "ultralytics-botsort": _ultralytics,
    "norfair": lambda appearance, preset, max_age: NorfairTracker(
        appearance=appearance, reid_hit_counter_max=max_age
    ),
    "deep-sort": lambda appearance, preset, max_age: DeepSortTracker(
        appearance=appearance, max_age=max_age
    ),
}
# The default --reid model's slot (kpr-global: the trained KPR's holistic embedding).
_HOST_KPR = {"appearance": "trained-global", "features": frozenset({"keypoints", "kpr-trained"})}

_NO_OC = {"observation_reupdate": False, "direction_weight": 0.0}
_RETAIL = {"appearance": "retail", "features": frozenset({"retail"}), "preset": "kpr"}
_SPECS = [
    TrackerSpec("kpr", "parts", frozenset({"keypoints", "kpr"}), "kpr"),
    TrackerSpec("motion", preset="motion"),
    # Motion ablations: each new switch of issue 8 off on its own.
    TrackerSpec("motion-no-oc", preset="motion", overrides=_NO_OC),
    TrackerSpec("motion-no-cmc", preset="motion", overrides={"camera_motion": False}),
    TrackerSpec("motion-no-fps", preset="motion", fps_aware=False),
    TrackerSpec("kpr-global", "global", frozenset({"kpr"}), "kpr"),
    TrackerSpec("kpr-trained", "trained", frozenset({"keypoints", "kpr-trained"}), "kpr"),
    TrackerSpec(
        "kpr-trained-global", "trained-global", frozenset({"keypoints", "kpr-trained"}), "kpr"
    ),
    # Appearance ablations on the ReID-trained retail-0287 global embedding.
    TrackerSpec("kpr-retail0287", **_RETAIL),
    TrackerSpec("kpr-retail0287-gallery1", **_RETAIL, overrides={"gallery_size": 1}),
    TrackerSpec("kpr-retail0287-no-oc", **_RETAIL, overrides=_NO_OC),
    *(TrackerSpec(name, library=name) for name in ("sort", "bytetrack", "ocsort")),
    *(TrackerSpec(host, host=host) for host in HOSTS),
    *(TrackerSpec(f"{host}+kpr", host=host, **_HOST_KPR) for host in HOSTS),
]


def _preset_spec(preset: str) -> TrackerSpec:
    """The row of a shipped preset no row above starts from (a newly added tracker): the
    preset as shipped, with the default ``--reid`` model's features when it weighs
    appearance."""
    _, settings = preset_settings(preset)
    if getattr(settings, "appearance_weight", 0.0) > 0:
        return TrackerSpec(preset, preset=preset, **_HOST_KPR)
    return TrackerSpec(preset, preset=preset)


_SPECS += [
    _preset_spec(name) for name in shipped_presets() if name not in {s.preset for s in _SPECS}
]


def _linked(spec: TrackerSpec) -> TrackerSpec:
    """``spec`` followed by offline linking on its own appearance slot, or on the default
    --reid's (``trained-global``) when it has none."""
    if spec.appearance is not None:
        return dataclasses.replace(spec, label=f"{spec.label}+link", link=spec.appearance)
    features = spec.features | _HOST_KPR["features"]
    return dataclasses.replace(
        spec, label=f"{spec.label}+link", link=_HOST_KPR["appearance"], features=features
    )


LINKED = ("motion", "kpr-retail0287", "kpr-trained-global", "kpr-trained", "kpr", "kpr-global")
_SPECS += [_linked(s) for s in _SPECS if s.label in LINKED or s.library is not None]
TRACKERS: dict[str, TrackerSpec] = {spec.label: spec for spec in _SPECS}
# Opt-in (--trackers ...): the pose-guided rows need top-down pose and the ImageNet KPR
# pass on every crop; the host rows need their libraries (kpr_track.integrations).
# kpr-trained (the default --reid kpr) is a default row.
HOST_ROWS = tuple(f"{host}{suffix}" for host in HOSTS for suffix in ("", "+kpr"))
OPT_IN = (
    "kpr",
    "kpr-global",
    *(f"{name}+link" for name in ("kpr", "kpr-global")),
    *HOST_ROWS,
)
DEFAULT_TRACKERS = [name for name in TRACKERS if name not in OPT_IN]


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
    parser.add_argument("--rebuild", action="store_true", help="rebuild the detection caches")
    parser.add_argument("--jobs", type=int, default=1, help="processes building caches in parallel")
    add_runtime_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Build the caches, run every tracker, evaluate and write the reports."""
    check_shared()
    groups = resolve_groups(args.sequences)
    specs = [TRACKERS[name] for name in args.trackers]
    features = set().union(*(spec.features for spec in specs))
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
    jobs.sort(key=lambda job: (job[0].name.startswith("MOT17"), job[1] != "yolo-pose"))
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
    preset's ``link`` section) before writing.
    """
    tracks_dir.mkdir(parents=True, exist_ok=True)
    calibrations = calibrations or {}
    link_config = link_config or load_link_config("kpr")
    frames = 0
    track_seconds = link_seconds = 0.0
    pred_paths = []
    for seq_dir, cache in caches.items():
        info = read_seqinfo(seq_dir)
        frame_rate = float(info.get("frameRate", 30))
        tracker = spec.build(preset, frame_rate, calibrations.get(spec.appearance))
        sequence_warps = (warps or {}).get(seq_dir) if spec.uses_camera else None
        size = (int(info.get("imWidth", 1920)), int(info.get("imHeight", 1080)))
        recorder = RunRecorder(size, link_config) if spec.link else None
        writer = MOTWriter(tracks_dir / f"{seq_dir.name}.txt")
        for index, frame_id in enumerate(cache.frame_ids):
            detections = cache.detections(index, spec.appearance)
            kept = np.ones(len(detections), bool)
            if spec.library or spec.host:
                kept = detections.scores >= preset.low_score
                detections = detections[kept]
            extra = {}
            if sequence_warps is not None:
                extra["camera_warp"] = sequence_warps[int(frame_id)]
            start = time.perf_counter()
            ids = tracker.update(detections, **extra)
            track_seconds += time.perf_counter() - start
            if recorder is None:
                writer.write(int(frame_id), detections, ids)
            else:
                start = time.perf_counter()
                recorder.add(int(frame_id), cache.detections(index, spec.link)[kept], ids)
                link_seconds += time.perf_counter() - start
        if recorder is not None:
            start = time.perf_counter()
            rows, _ = link_rows(
                recorder.rows(), recorder, calibrations[spec.link], frame_rate, link_config
            )
            link_seconds += time.perf_counter() - start
            for frame_id in np.unique(rows.frames):
                found, ids, _ = rows.frame(int(frame_id))
                writer.write(int(frame_id), found, ids)
        writer.close()
        frames += len(cache)
        pred_paths.append(writer.path)
    result = evaluate(list(caches), pred_paths)
    pipeline_seconds = sum(stage_seconds(cache, spec) for cache in caches.values())
    row = {
        "tracker": spec.label,
        **{name: result["combined"][name] for name in COLUMNS},
        "frames": frames,
        "association_fps": frames / track_seconds if track_seconds > 0 else None,
        "end_to_end_fps": frames / (pipeline_seconds + track_seconds + link_seconds),
        "link_seconds": round(link_seconds, 3) if spec.link else None,
    }
    return row, result["sequences"]


def stage_seconds(cache: DetectionCache, spec: TrackerSpec) -> float:
    """Seconds of the cached stages this tracker's pipeline needs (decode + detect always;
    top-down pose when it uses keypoints; the appearance model it uses)."""
    stages = ["decode", "detect"]
    if "keypoints" in spec.features:
        stages.append("pose")
    stages += sorted({APPEARANCE[slot] for slot in (spec.appearance, spec.link) if slot})
    return sum(cache.seconds.get(stage, 0.0) for stage in stages)


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
