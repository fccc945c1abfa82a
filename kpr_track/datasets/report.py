"""Ground-truth-free sanity of a dataset run: ``dataset_summary.json`` and a chart.

The per-sequence summaries of :func:`kpr_track.datasets.run.track_sequence` (frames,
tracks, tracked people per frame, frames per second) side by side, so a sequence whose
numbers stand out (no tracks, thousands of tracks, a slow sequence) is seen at a glance.
"""

from __future__ import annotations

import json
from pathlib import Path

SUMMARY_FILE = "dataset_summary.json"
CHART_FILE = "dataset_summary.png"
CHART_COLUMNS = (
    ("tracks", "tracks"),
    ("people_per_frame", "tracked people per frame"),
    ("fps", "frames per second (end to end)"),
)


def dataset_summary(summaries: list[dict]) -> dict:
    """The per-sequence summaries and their totals.

    Args:
        summaries: one :class:`~kpr_track.datasets.run.SequenceResult` summary per sequence.

    Returns:
        ``{"sequences": {name: summary}, "total": {"sequences", "frames", "tracks",
        "people_per_frame" (over all frames), "wall_seconds", "fps" (frames / wall time)}}``.
    """
    frames = sum(s["frames"] for s in summaries)
    wall = sum(s["wall_seconds"] for s in summaries)
    people = sum(s["people_per_frame"] * s["frames"] for s in summaries)
    return {
        "sequences": {s["sequence"]: s for s in sorted(summaries, key=lambda s: s["sequence"])},
        "total": {
            "sequences": len(summaries),
            "frames": frames,
            "tracks": sum(s["tracks"] for s in summaries),
            "people_per_frame": round(people / frames, 3) if frames else 0.0,
            "wall_seconds": round(wall, 3),
            "fps": round(frames / wall, 3) if wall > 0 else None,
        },
    }


def write_dataset_report(summary: dict, out: Path) -> tuple[Path, Path]:
    """Write ``summary`` (from :func:`dataset_summary`) as JSON and a bar chart into ``out``.

    Returns:
        The JSON and PNG paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    json_path, chart_path = out / SUMMARY_FILE, out / CHART_FILE
    json_path.write_text(json.dumps(summary, indent=1) + "\n")
    names = list(summary["sequences"])
    rows = list(summary["sequences"].values())
    height = 1.2 + 0.3 * len(names)
    figure, axes = plt.subplots(1, len(CHART_COLUMNS), figsize=(12, height), sharey=True)
    for axis, (key, title) in zip(axes, CHART_COLUMNS, strict=True):
        axis.barh(names, [row[key] or 0 for row in rows], color="tab:blue")
        axis.set_title(title, fontsize=9)
        axis.tick_params(labelsize=8)
    axes[0].invert_yaxis()  # first sequence on top (the axes share y)
    figure.tight_layout()
    figure.savefig(chart_path, dpi=100)
    plt.close(figure)
    return json_path, chart_path
