"""``kpr-track VIDEO`` end to end on real PETS09 frames, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import motmetrics as mm
import numpy as np
import pytest
from pycocotools.coco import COCO

from kpr_track.cli import main
from kpr_track.evaluation import evaluate

CLIP_FRAMES = 40


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed console entry point in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "kpr_track", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def pets_run(tmp_path_factory, pets_video):
    out = tmp_path_factory.mktemp("run") / "demo"
    code = main(
        [str(pets_video), "--out", str(out), "--max-frames", str(CLIP_FRAMES), "--no-progress"]
    )
    assert code == 0
    return out


def test_writes_the_four_outputs(pets_run):
    for name in ("tracks.txt", "tracks.json", "video.mp4", "summary.json"):
        assert (pets_run / name).stat().st_size > 0, name
    summary = json.loads((pets_run / "summary.json").read_text())
    assert summary["frames"] == CLIP_FRAMES and not summary["interrupted"]
    assert {"detect", "reid", "track", "decode", "end_to_end"} <= set(summary["fps"])
    assert summary["settings"]["reid"] == "kpr"  # the default appearance model
    assert summary["linking"]["linked"]  # a file is linked after the online pass by default
    video = cv2.VideoCapture(str(pets_run / "video.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == CLIP_FRAMES
    assert (
        int(video.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(video.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    ) == (768, 576)


def test_mot_output_parses_and_tracks_people_with_stable_ids(pets_run, pets_gt):
    pred = mm.io.loadtxt(str(pets_run / "tracks.txt"), fmt="mot15-2D")
    assert len(pred) > 3 * CLIP_FRAMES
    assert pred.index.get_level_values("FrameId").max() <= CLIP_FRAMES
    clip_gt = pets_run.parent / "PETS09-clip"
    (clip_gt / "gt").mkdir(parents=True)
    rows = np.loadtxt(pets_gt, delimiter=",")
    np.savetxt(clip_gt / "gt" / "gt.txt", rows[rows[:, 0] <= CLIP_FRAMES], delimiter=",", fmt="%g")
    (clip_gt / "seqinfo.ini").write_text(
        f"[Sequence]\nname=PETS09-clip\nseqLength={CLIP_FRAMES}\nimWidth=768\nimHeight=576\n"
        "frameRate=7\n"
    )
    metrics = evaluate([clip_gt], [pets_run / "tracks.txt"])["combined"]
    print(metrics)
    assert metrics["IDSW"] <= 1
    assert metrics["IDF1"] >= 0.6
    assert metrics["MOTA"] >= 0.4


def test_posetrack_json_parses_with_keypoints_and_track_ids(pets_run):
    coco = COCO(str(pets_run / "tracks.json"))
    assert len(coco.getImgIds()) == CLIP_FRAMES
    annotations = coco.loadAnns(coco.getAnnIds())
    assert annotations, "people are tracked in the first frames of PETS09"
    mot_rows = np.loadtxt(pets_run / "tracks.txt", delimiter=",", ndmin=2)
    assert len(annotations) == len(mot_rows)
    for ann in annotations:
        assert len(ann["keypoints"]) == 51 and len(ann["scores"]) == 17
        assert ann["track_id"] >= 1 and ann["category_id"] == 1
    categories = coco.loadCats(1)[0]
    assert len(categories["keypoints"]) == 17 and categories["skeleton"]


def _one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    for frame in frames:
        writer.write(frame)
    writer.release()


def test_fps_overrides_the_rate_a_container_declares(tmp_path, pets_video):
    runs = {}
    for name, extra in (("declared", []), ("given", ["--fps", "7"])):
        runs[name] = tmp_path / name
        args = [str(pets_video), "--out", str(runs[name]), "--max-frames", "3", "--reid", "none"]
        assert main([*args, "--no-progress", *extra]) == 0
    summary = {name: json.loads((out / "summary.json").read_text()) for name, out in runs.items()}
    assert summary["declared"]["frame_rate"] == 10.0  # vtest.avi's container; PETS09 is 7
    assert summary["given"]["frame_rate"] == 7.0
    video = cv2.VideoCapture(str(runs["given"] / "video.mp4"))
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(7.0)
    _one_line_error(_cli(str(pets_video), "--fps", "0"), "--fps must be > 0")


def test_missing_video(tmp_path):
    _one_line_error(_cli(str(tmp_path / "nope.mp4")), "nope.mp4", "not found")


def test_not_a_video(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is text, not a video\n")
    _one_line_error(_cli(str(fake)), "notes.mp4", "not a readable video")


def test_video_with_zero_frames(tmp_path):
    empty = tmp_path / "empty.mp4"
    _write_video(empty, [])
    _one_line_error(_cli(str(empty)), "empty.mp4")


def test_unreadable_video(tmp_path):
    locked = tmp_path / "locked.avi"
    locked.write_bytes(b"\x00" * 1024)
    _one_line_error(_cli(str(locked)), "locked.avi")


def test_unknown_tracker_preset_and_yaml_key(tmp_path, pets_video):
    _one_line_error(
        _cli(str(pets_video), "--tracker", "deepsort", "--out", str(tmp_path / "a")),
        "deepsort",
        "kpr",
        "motion",
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker: kpr\nmax_agee: 30\n")
    _one_line_error(
        _cli(str(pets_video), "--tracker", str(bad), "--out", str(tmp_path / "b")),
        "bad.yaml",
        "max_agee",
    )


def test_missing_weights(tmp_path, pets_video):
    result = _cli(
        str(pets_video),
        "--det",
        f"yolo-pose:{tmp_path / 'missing.pt'}",
        "--out",
        str(tmp_path / "c"),
    )
    _one_line_error(result, "missing.pt")


def test_existing_output_folder_is_not_overwritten(tmp_path, pets_video):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "tracks.txt").write_text("1,1,0,0,1,1,1,-1,-1,-1\n")
    _one_line_error(_cli(str(pets_video), "--out", str(out)), "--exist-ok")


def test_frames_with_nobody(tmp_path):
    blank = tmp_path / "blank.mp4"
    _write_video(blank, [np.full((48, 64, 3), 90, np.uint8)] * 5)
    out = tmp_path / "blank-run"
    result = _cli(str(blank), "--out", str(out), "--no-progress", "--imgsz", "64")
    assert result.returncode == 0, result.stderr
    assert (out / "tracks.txt").read_text() == ""
    assert json.loads((out / "tracks.json").read_text())["annotations"] == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 5 and summary["tracks"] == 0


def test_default_output_folder_never_overwrites(tmp_path, pets_video):
    """Without --out, a second run goes to runs/track/<name>-2."""
    for _ in range(2):
        result = _cli(
            str(pets_video), "--max-frames", "2", "--no-progress", "--reid", "none", cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "runs/track/vtest/tracks.txt").exists()
    assert (tmp_path / "runs/track/vtest-2/tracks.txt").exists()


def test_the_sample_clip_ships_in_the_package():
    from kpr_track.io.sample import sample_video

    clip = cv2.VideoCapture(str(sample_video()))
    size = (int(clip.get(cv2.CAP_PROP_FRAME_WIDTH)), int(clip.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    assert size == (768, 576) and int(clip.get(cv2.CAP_PROP_FRAME_COUNT)) == 150
    assert sample_video().stat().st_size < 4 << 20  # a few MB at most


@pytest.mark.parametrize("command", [["track"], []], ids=["track", "bare"])
def test_no_source_tracks_the_sample_clip(tmp_path, command):
    """`kpr-track track --max-frames N --out o` (and without `track`) in an empty folder:
    the shipped clip, the four outputs, people tracked."""
    result = _cli(*command, "--max-frames", "6", "--out", "o", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sample clip" in result.stdout
    for name in ("tracks.txt", "tracks.json", "video.mp4", "summary.json"):
        assert (tmp_path / "o" / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert Path(summary["settings"]["video"]).name == "sample_pets09.mp4"
    assert summary["frames"] == 6 and summary["tracks"] >= 3  # PETS09 opens with 4+ people
