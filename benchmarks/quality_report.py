"""The quality benchmark's report: results.md (tables and notes) and the bar chart PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import SOURCES, markdown_table

COLUMNS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")


def _fps(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


HEADER = ["sequence", "detector", "tracker", "HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDsw"]
HEADER += ["assoc. FPS", "end-to-end FPS", "embedded"]
NOTES = """\
- Every tracker of a (sequence, detector) pair runs on the same cached boxes, scores, keypoints
  and embeddings (`benchmarks/cache/`, built once per sequence and detector).
- **assoc. FPS**: frames / seconds spent in the tracker's `update` alone. **end-to-end FPS**:
  frames / (decode + detection + top-down pose if the tracker uses keypoints + its appearance
  model + association), with the stage times measured while the cache was built (one process
  per cache; see the stage table below), the appearance model's time scaled by **embedded**:
  the share of the detections the tracker could read that it asked to embed (embeddings on
  demand; `-` without appearance). `kpr` and `kpr-global` share one KPR forward pass
  (prompt rendering included), so both are charged its full time.
- kpr-track trackers use the shipped presets for every detector (`configs/trackers/kpr.yaml`
  and `motion.yaml`, each with its own settings; `kpr`: high_score {high_score}, low_score
  {low_score}, new_track_score {new_track_score}, max_age_s {max_age_s} s, min_hits {min_hits},
  appearance_weight {appearance_weight}), tuned on MOT17-02-raw540, MOT20-01 and
  MOT16-04-first50 (the YAML headers say how) and never on PETS09-S2L1 (7 fps); each tracker
  gets its sequence's frame rate from seqinfo.ini. Ablation rows switch one feature off:
  `-no-oc` (OC-SORT re-update and direction term), `-no-cmc` (camera-motion compensation),
  `-no-fps` (30-fps Kalman noise at every frame rate), `-gallery1` (one stored view per part
  slot).
- Appearance rows turn distances into same-person probabilities with the calibration their
  `--reid` model ships (`detection_cache.SLOT_REID`: in the weights file or
  `kpr_track/assets/calibrations.json`, fitted on the ReID training identities of
  MOT17-02, MOT20-01 and MOT16-04-first50; each listed with its source in results.json).
  Numbers of an appearance model trained or calibrated on a sequence are optimistic there;
  PETS09 is the test.
- Roboflow `trackers` 2.6.1 get the `kpr` preset's score thresholds and max_age_s in frames
  (the library's own 0.6 / 0.7 assume ByteTrack's calibrated scores) and library defaults
  otherwise: {options}.
  Detections below low_score are dropped before them, as our trackers ignore them. None of
  SORT / ByteTrack / OC-SORT in trackers 2.6.1 takes appearance embeddings
  (`update(detections, frame, timestamp)` on boxes and confidences), so they run on motion
  alone.
- Detector scores: YOLOX and yolo11n-pose give [0, 1] confidences, MOT17 det.txt (Faster R-CNN)
  too. PETS09-S2L1's det.txt holds MOT15 DPM scores in [-0.48, 138.9]; the det.txt reader
  maps such files causally to each score's rank among the scores seen so far, in (0, 1]
  (`kpr_track.detectors.files.causal_score_rank`, no look at later frames): the
  precision-per-score table below shows what the thresholds select there.
- MOT17-mini sequences have 4-8 frames each: the tracker's first-frame births and
  `min_hits` = {min_hits} weigh heavily there; read those rows as a smoke test, PETS09 as
  the benchmark.
- KPR embeddings (the `parts`, `global`, `trained` and `trained-global` slots) are cached as
  float16 (L2-normalised: distance error about 1e-3); the `retail` slot as float32.
"""


def markdown_report(report: dict) -> str:
    """results.md: the side-by-side table, how to read it, detection statistics."""
    table = [
        [r["sequence"], SOURCES[r["detector"]], r["tracker"]]
        + [f"{100 * r[k]:.1f}" for k in COLUMNS[:5]]
        + [r["IDSW"], _fps(r["association_fps"]), _fps(r["end_to_end_fps"])]
        + [_share(r.get("embedded_share"))]
        for r in report["rows"]
    ]
    stats = {key: d for key, d in report["details"].items() if "frames" in d}
    bands = list(next(iter(stats.values()))["precision_and_count_by_score"]) if stats else []
    counts = [
        [key, d["frames"], d["detections"], f"{d['per_frame']:.1f}", d["score_quantiles_5_50_95"]]
        + [", ".join(f"{k} {1000 * v:.0f}" for k, v in d["seconds_per_frame"].items())]
        for key, d in stats.items()
    ]
    precision = [
        [key] + [_band(*d["precision_and_count_by_score"][band]) for band in bands]
        for key, d in stats.items()
    ]
    machine, cache = report["machine"], report["cache"]
    options = "; ".join(f"{name} {opts}" for name, opts in report["library_options"].items())
    lines = [
        "# Tracking quality on identical detections",
        "",
        f"`{report['command']}`, {report['created']}, {machine['platform']}, "
        f"{machine['cpu_count']} CPUs (shared; load average {machine['load_average_1_5_15']} "
        f"at the end), caches built by {cache['jobs']} process(es) x "
        f"{cache['threads'] or 'default'} torch thread(s).",
        "",
        "HOTA, DetA, AssA, IDF1, MOTA in % from `kpr_track.evaluation.evaluate` (TrackEval, "
        "MOTChallenge rules); MOT17-mini = its seven sequences combined.",
        "",
        markdown_table(HEADER, table),
        "",
        "## How to read it",
        "",
        NOTES.format(options=options, **report["preset"]),
        "## Detections per source",
        "",
        markdown_table(
            ["sequence/detector", "frames", "detections", "per frame", "score 5/50/95 %"]
            + ["ms/frame per stage (cache build)"],
            counts,
        ),
        "",
        "Precision (share of detections overlapping a ground-truth box with IoU >= 0.5) and "
        "count per score band:",
        "",
        markdown_table(["sequence/detector", *bands], precision),
        "",
    ]
    return "\n".join(lines)


def _band(precision: float | None, count: int) -> str:
    return f"- ({count})" if precision is None else f"{precision:.2f} ({count})"


def bar_chart(rows: list[dict], path: Path) -> None:
    """HOTA and IDF1 per tracker, grouped by detector, one row of panels per sequence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(r["sequence"] for r in rows))
    sources = list(dict.fromkeys(r["detector"] for r in rows))
    trackers = list(dict.fromkeys(r["tracker"] for r in rows))
    figure, axes = plt.subplots(len(groups), 2, figsize=(12, 3.6 * len(groups)), squeeze=False)
    width = 0.8 / len(trackers)
    for row_axes, group in zip(axes, groups, strict=True):
        for axis, metric in zip(row_axes, ("HOTA", "IDF1"), strict=True):
            for k, tracker in enumerate(trackers):
                values = [
                    next(
                        (
                            100 * r[metric]
                            for r in rows
                            if (r["sequence"], r["detector"], r["tracker"]) == (group, s, tracker)
                        ),
                        0.0,
                    )
                    for s in sources
                ]
                axis.bar(
                    np.arange(len(sources)) + (k - (len(trackers) - 1) / 2) * width,
                    values,
                    width,
                    label=tracker,
                )
            axis.set_xticks(np.arange(len(sources)), [SOURCES[s] for s in sources])
            axis.set_ylabel(f"{metric} (%)")
            axis.set_title(f"{group}: {metric}")
            axis.grid(axis="y", alpha=0.3)
    axes[0, 1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
