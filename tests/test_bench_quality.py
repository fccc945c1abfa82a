"""The quality benchmark end to end on a tiny configuration (MOT17-mini, det.txt, 2 trackers)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import shared_path

from kpr_track.cli import main

TRACKERS = ("motion", "motion-no-cmc", "bytetrack")
MOT17_02 = ("data", "MOT17-mini", "train", "MOT17-02-FRCNN")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    shared_path("data", "MOT17-mini")
    out = tmp_path_factory.mktemp("bench")
    argv = ["bench", "quality", "--sequences", "MOT17-mini", "--detectors", "det"]
    argv += ["--trackers", *TRACKERS, "--max-frames", "3", "--out", str(out)]
    argv += ["--cache-dir", str(out / "cache")]
    assert main(argv) == 0
    return out


def test_writes_json_markdown_and_chart(report):
    data = json.loads((report / "results.json").read_text())
    rows = data["rows"]
    assert [(r["sequence"], r["detector"], r["tracker"]) for r in rows] == [
        ("MOT17-mini", "det", tracker) for tracker in TRACKERS
    ]
    for row in rows:
        assert row["frames"] == 21  # 7 sequences x 3 frames
        assert 0.2 < row["HOTA"] <= 1 and 0.2 < row["IDF1"] <= 1 and row["MOTA"] <= 1
        assert row["association_fps"] > 0 and row["end_to_end_fps"] > 0
    # All seven sequences were scored, each on its own ground truth.
    assert len(data["details"]["MOT17-mini/det/motion"]) == 7
    markdown = (report / "results.md").read_text()
    for tracker in TRACKERS:
        assert f"| MOT17-mini | public det.txt | {tracker} |" in markdown
    png = (report / "quality.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_every_tracker_outputs_boxes_of_the_same_det_file(report):
    det = np.loadtxt(shared_path(*MOT17_02, "det", "det.txt"), delimiter=",")
    tracks = report / "cache" / "tracks" / "MOT17-mini" / "det"
    for tracker in TRACKERS:
        rows = np.loadtxt(tracks / tracker / "MOT17-02-FRCNN.txt", delimiter=",", ndmin=2)
        assert len(rows) > 10
        for row in rows:
            same_frame = det[det[:, 0] == row[0]]
            assert np.abs(same_frame[:, 2:6] - row[2:6]).max(axis=1).min() < 0.01


def test_unknown_sequence_is_a_one_line_error(capsys):
    argv = ["bench", "quality", "--sequences", "MOT99", "--out", "/nonexistent"]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "unknown sequence(s) ['MOT99']" in error and "\n" not in error


def test_link_rows_relabel_the_online_rows_of_the_same_detections(tmp_path):
    shared_path(*MOT17_02)
    argv = ["bench", "quality", "--sequences", "MOT17-02-FRCNN", "--detectors", "det"]
    argv += ["--trackers", "bytetrack", "bytetrack+link", "--max-frames", "8"]
    argv += ["--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [r["tracker"] for r in rows] == ["bytetrack", "bytetrack+link"]
    assert rows[0]["link_seconds"] is None and rows[1]["link_seconds"] >= 0
    tracks = tmp_path / "cache" / "tracks" / "MOT17-02-FRCNN" / "det"
    online = np.loadtxt(tracks / "bytetrack" / "MOT17-02-FRCNN.txt", delimiter=",")
    linked = np.loadtxt(tracks / "bytetrack+link" / "MOT17-02-FRCNN.txt", delimiter=",")
    # Every online row is in the linked file (same frame, the box moved at most a few px by
    # the temporal smoothing), under one linked id per online id; the linked file only adds
    # interpolated rows.
    mapping: dict[int, set[int]] = {}
    for row in online:
        frame = linked[linked[:, 0] == row[0]]
        shift = np.abs(frame[:, 2:6] - row[2:6]).max(1)
        assert shift.min() < 0.1 * row[5]  # a tenth of the box height
        mapping.setdefault(int(row[1]), set()).add(int(frame[shift.argmin(), 1]))
    assert all(len(ids) == 1 for ids in mapping.values())
    assert len(linked) >= len(online)
