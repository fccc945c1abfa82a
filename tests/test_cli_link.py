"""``kpr-track link``: re-linking a MOTChallenge result file on the first PETS09 frames,
and one-line errors for bad result files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import shared_path

from kpr_track.cli import main
from kpr_track.config import preset_path

FRAMES = 20


@pytest.fixture(scope="module")
def pets_frames(tmp_path_factory):
    """The first 20 frames of PETS09-S2L1 as an image folder, and their ground truth."""
    video = shared_path("data", "PETS09-S2L1", "vtest.avi")
    folder = tmp_path_factory.mktemp("pets") / "frames"
    folder.mkdir()
    capture = cv2.VideoCapture(str(video))
    for number in range(1, FRAMES + 1):
        ok, frame = capture.read()
        assert ok
        cv2.imwrite(str(folder / f"{number:06d}.jpg"), frame)
    capture.release()
    gt = np.loadtxt(shared_path("data", "PETS09-S2L1", "gt", "gt.txt"), delimiter=",")
    return folder, gt[gt[:, 0] <= FRAMES]


def test_relinks_a_split_track_and_fills_its_gap(pets_frames, tmp_path):
    folder, gt = pets_frames
    # A tracker lost person 15 for frames 9-10 and gave it a new id (99) afterwards.
    rows = gt[~((gt[:, 1] == 15) & np.isin(gt[:, 0], [9, 10]))].copy()
    rows[(rows[:, 1] == 15) & (rows[:, 0] >= 11), 1] = 99
    rows[:, 6] = -1  # no score, as many trackers write
    tracks = tmp_path / "split.txt"
    np.savetxt(tracks, rows, delimiter=",", fmt="%g")
    out = tmp_path / "out"
    # The linear fill alone (the shipped preset also smooths the linked boxes over time).
    preset = tmp_path / "linear.yaml"
    shipped = preset_path("trackers", "kpr").read_text()
    preset.write_text(shipped.replace("  smooth: 0.1 ", "  smooth: 0.0 "))
    command = ["link", str(folder), str(tracks), "--out", str(out), "--no-progress"]
    assert main([*command, "--tracker", str(preset)]) == 0

    result = np.loadtxt(out / "tracks.txt", delimiter=",")
    assert not (result[:, 1] == 99).any()  # re-joined under the first tracklet's id
    assert sorted(result[result[:, 1] == 15, 0].astype(int)) == list(range(1, FRAMES + 1))
    # The other people keep their ids and rows.
    for other in set(gt[:, 1]) - {15}:
        assert (result[:, 1] == other).sum() == (gt[:, 1] == other).sum()
    # The filled frames lie between the boxes around the gap.
    box = {int(f): r[2:6] for f, r in zip(result[:, 0], result, strict=True) if r[1] == 15}
    assert np.allclose(box[9], box[8] + (box[11] - box[8]) / 3, atol=0.02)
    document = json.loads((out / "tracks.json").read_text())
    filled = [a for a in document["annotations"] if a["interpolated"]]
    assert sorted(a["image_id"] for a in filled) == [9, 10]
    assert {a["track_id"] for a in filled} == {15}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["linking"]["joins"] == 1 and summary["input_tracks"] == 5
    capture = cv2.VideoCapture(str(out / "video.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    capture.release()
    assert not list(out.glob(".*"))  # no temporary file left behind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,1,10,10,20,40,1\n21,2,10,10,20,40,1\n", ":2: field 1 (frame) is 21, past the video"),
        ("1,1,10,10,20,40\n2,1,10,10\n", ":2: expected at least 6 comma-separated numbers"),
        ("1,1,10,10,20,40,1\n2,1,10,10,20,40\n", ":2: expected 7 columns like line 1"),
        ("1,1,10,10,20,40\n\n3,1,10,10,-20,40\n", ":3: width and height must be > 0"),
        ("1,1,10,10,20,40\n1,0,10,10,20,40\n", ":2: field 2 (id) must be an integer >= 1"),
        ("1,1,10,10,20,40\n1,1,30,10,20,40\n", ":2: field 2 (id) 1 appears twice in frame 1"),
        ("1,1,10,x,20,40\n", ":1: non-numeric value"),
    ],
)
def test_bad_result_file_is_a_one_line_error(pets_frames, tmp_path, capsys, text, expected):
    folder, _ = pets_frames
    tracks = tmp_path / "bad.txt"
    tracks.write_text(text)
    argv = ["link", str(folder), str(tracks), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kpr-track link: error: ") and "\n" not in error
    assert f"{tracks}{expected}" in error
    assert not (tmp_path / "out").exists()
