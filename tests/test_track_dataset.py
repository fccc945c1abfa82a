"""``kpr-track track-dataset`` and image-folder ``track`` on MOT17-mini and posetrack18-sample:
officially laid-out results that ``kpr-track eval`` scores as they are."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import shared_path

from kpr_track.cli import main
from kpr_track.datasets.run import SequenceJob, TrackOptions, track_sequence
from kpr_track.datasets.sequences import find_sequences
from kpr_track.evaluation import evaluate

MOT17_MINI = ("data", "MOT17-mini", "train")
POSETRACK = ("data", "posetrack18-sample")
POSETRACK_VIDEOS = ("003418_mpii_test", "009473_mpii_test", "012834_mpii_test")
# Public detections, no appearance model: fast, and deterministic for comparisons.
FAST = ["--det", "mot", "--reid", "none", "--no-progress"]


@pytest.fixture(scope="module")
def mot_run(tmp_path_factory):
    """track-dataset over the seven MOT17-mini sequences with 2 local worker processes."""
    out = tmp_path_factory.mktemp("mot17")
    root = shared_path(*MOT17_MINI)
    assert main(["track-dataset", str(root), "--format", "mot", "--out", str(out),
                 "--workers", "2", *FAST]) == 0  # fmt: skip
    return root, out


def test_mot_results_in_trackeval_layout_keep_image_numbers(mot_run):
    root, out = mot_run
    sequences = sorted(p.name for p in root.iterdir())
    assert sorted(p.stem for p in out.glob("*.txt")) == sequences
    for name in sequences:
        rows = np.loadtxt(out / f"{name}.txt", delimiter=",", ndmin=2)
        frames = len(list((root / name / "img1").iterdir()))
        assert set(rows[:, 0].astype(int)) <= set(range(1, frames + 1)), name
        assert len(rows) > frames, name  # several people tracked per frame


def test_mot_run_ends_with_the_eval_of_the_split(mot_run, capsys):
    root, out = mot_run
    results = json.loads((out / "eval.json").read_text())
    assert sorted(results["sequences"]) == sorted(p.name for p in root.iterdir())
    # the same files scored by `kpr-track eval` directly give the same combined row
    args = ["eval"]
    for name in sorted(results["sequences"]):
        args += ["--gt", str(root / name), "--pred", str(out / f"{name}.txt")]
    assert main(args) == 0
    combined = capsys.readouterr().out.splitlines()[-1].split()
    assert combined[0] == "COMBINED"
    assert float(combined[1]) == pytest.approx(100 * results["combined"]["HOTA"], abs=0.01)
    assert results["combined"]["IDP"] > 0.5  # public detections, tracked: mostly right


def test_dataset_summary_and_chart(mot_run):
    _, out = mot_run
    summary = json.loads((out / "dataset_summary.json").read_text())
    assert len(summary["sequences"]) == 7
    seq = summary["sequences"]["MOT17-04-FRCNN"]
    assert seq["frames"] == 8 and seq["tracks"] > 5 and seq["people_per_frame"] > 5
    assert seq["fps"] > 0 and seq["settings"]["det"].endswith("MOT17-04-FRCNN/det/det.txt")
    assert summary["total"]["frames"] == 39
    assert (out / "dataset_summary.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_tracks_only_unfinished_sequences(mot_run, capsys):
    root, out = mot_run
    finished = out / "MOT17-02-FRCNN.txt"
    before = finished.stat().st_mtime_ns
    (out / "MOT17-05-FRCNN.txt").unlink()  # as if the run had stopped before it
    (out / ".MOT17-05-FRCNN.txt.999.tmp").write_text("1,1,0,0,1,1,1,-1,-1,-1\n")
    assert main(["track-dataset", str(root), "--format", "mot", "--out", str(out),
                 "--no-eval", *FAST]) == 0  # fmt: skip
    assert (
        capsys.readouterr()
        .out.splitlines()[0]
        .endswith(": 6 already in " + str(out) + ", 1 to track")
    )
    assert finished.stat().st_mtime_ns == before
    assert len((out / "MOT17-05-FRCNN.txt").read_text().splitlines()) > 6


def test_rerun_with_other_settings_says_so_and_keeps_results(mot_run, capsys):
    root, out = mot_run
    before = (out / "MOT17-04-FRCNN.txt").read_text()
    assert main(["track-dataset", str(root), "--format", "mot", "--out", str(out),
                 "--max-frames", "2", "--no-eval", *FAST]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("7 already in " + str(out) + ", 0 to track")
    assert lines[1].startswith("note: 7 finished sequence(s) were tracked with other settings")
    assert (out / "MOT17-04-FRCNN.txt").read_text() == before


def test_track_mot_sequence_folder_keeps_image_numbers_and_frame_rate(tmp_path):
    seq = shared_path(*MOT17_MINI, "MOT17-05-FRCNN")
    out = tmp_path / "run"
    assert main(["track", str(seq), "--det", f"mot:{seq / 'det' / 'det.txt'}", "--reid", "none",
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    rows = np.loadtxt(out / "tracks.txt", delimiter=",", ndmin=2)
    assert set(rows[:, 0].astype(int)) <= set(range(1, 7)) and len(rows) > 6
    video = cv2.VideoCapture(str(out / "video.mp4"))
    assert video.get(cv2.CAP_PROP_FPS) == 14.0  # frameRate of seqinfo.ini
    # tracks.txt and tracks.json name the same frames: both score the same
    scores = [
        evaluate([seq], [out / name])["combined"]["HOTA"] for name in ("tracks.txt", "tracks.json")
    ]
    assert scores[0] == pytest.approx(scores[1]) and scores[0] > 0.3


def test_track_image_folder_with_posetrack_json_is_scored_as_is(tmp_path):
    root = shared_path(*POSETRACK)
    gt = root / "annotations" / "val" / "012834_mpii_test.json"
    out = tmp_path / "run"
    assert main(["track", str(root / "images" / "val" / "012834_mpii_test"),
                 "--posetrack-json", str(gt), "--out", str(out), "--reid", "none",
                 "--no-progress"]) == 0  # fmt: skip
    tracks = json.loads((out / "tracks.json").read_text())
    gt_image = json.loads(gt.read_text())["images"][0]
    assert [i["id"] for i in tracks["images"]] == [gt_image["id"]]
    assert {a["image_id"] for a in tracks["annotations"]} == {gt_image["id"]}
    assert tracks["images"][0]["file_name"] == gt_image["file_name"]
    # one labelled frame: the official filters would drop every track (< 3 frames)
    assert main(["eval", "--gt", str(gt), "--pred", str(out / "tracks.json"),
                 "--no-filters", "--out", str(tmp_path / "eval.json")]) == 0  # fmt: skip
    scored = json.loads((tmp_path / "eval.json").read_text())["sequences"]["012834_mpii_test"]
    assert scored["gt_dets"] == 11 and scored["IDR"] > 0.3  # boxes land on the labelled people


def test_posetrack_dataset_writes_one_json_per_video(tmp_path, capsys):
    root = shared_path(*POSETRACK)
    out = tmp_path / "pt"
    assert main(["track-dataset", str(root), "--format", "posetrack21", "--out", str(out),
                 "--reid", "none", "--no-filters", "--no-progress"]) == 0  # fmt: skip
    assert sorted(p.name for p in out.glob("*.json") if p.stem in POSETRACK_VIDEOS) == [
        f"{name}.json" for name in POSETRACK_VIDEOS
    ]
    for name in POSETRACK_VIDEOS:
        gt_ids = [i["id"] for i in json.loads((root / "annotations" / "val" / f"{name}.json")
                                              .read_text())["images"]]  # fmt: skip
        assert [i["id"] for i in json.loads((out / f"{name}.json").read_text())["images"]] == gt_ids
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("sequence "))
    assert [line.split()[0] for line in lines[header + 1 : header + 5]] == [
        *POSETRACK_VIDEOS,
        "COMBINED",
    ]
    results = json.loads((out / "eval.json").read_text())
    assert results["inputs"][0]["protocol"] == "PoseTrack21" and results["filters"] is False
    assert results["combined"]["gt_dets"] == 14 and results["combined"]["IDR"] > 0.3


def test_videos_format_tracks_every_video_under_root(tmp_path):
    root = shared_path(*POSETRACK)
    out = tmp_path / "videos"
    assert main(["track-dataset", str(root), "--format", "videos", "--out", str(out),
                 "--reid", "none", "--max-frames", "2", "--no-progress"]) == 0  # fmt: skip
    assert [s.name for s in find_sequences(root, "videos")] == ["000001_mpiinew_test"]
    rows = np.loadtxt(out / "000001_mpiinew_test.txt", delimiter=",", ndmin=2)
    assert set(rows[:, 0].astype(int)) <= {1, 2} and len(rows) >= 2
    assert not (out / "eval.json").exists()  # no ground truth, no evaluation
    assert json.loads((out / "dataset_summary.json").read_text())["total"]["frames"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "mot"], "no MOTChallenge sequence (a sub-folder with seqinfo.ini"),
        (["--format", "posetrack21", "--det", "mot"], "per-sequence mot files need"),
        (["--format", "posetrack21", "--workers", "0"], "--workers must be >= 1, got 0"),
        (["--format", "posetrack21", "--executor", "ray"], "--executor ray needs --address"),
    ],
)
def test_bad_input_is_one_line_with_status_2(tmp_path, capsys, args, message):
    root = shared_path(*POSETRACK)
    code = main(["track-dataset", str(root), "--out", str(tmp_path / "out"), "--no-progress",
                 "--reid", "none", "--max-frames", "1", *args])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err, err


def test_ray_executor_matches_in_process_results(tmp_path, capsys, monkeypatch):
    """Two short sequences as tasks of a local Ray instance started here (loopback only)."""
    import ray  # in the test extra: pip install -e ".[test]"

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # no report to the Ray project's server

    source = shared_path(*MOT17_MINI)
    root = tmp_path / "split"
    root.mkdir()
    for name in ("MOT17-02-FRCNN", "MOT17-09-FRCNN"):
        (root / name).symlink_to(source / name)
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             _node_ip_address="127.0.0.1", logging_level="ERROR")  # fmt: skip
    out, shared = tmp_path / "out", tmp_path / "shared"
    try:
        assert main(["track-dataset", str(root), "--format", "mot", "--out", str(out),
                     "--executor", "ray", *FAST]) == 0  # fmt: skip
        assert main(["track-dataset", str(root), "--format", "mot", "--out", str(shared),
                     "--executor", "ray", "--shared-out", "--no-eval", *FAST]) == 0  # fmt: skip
    finally:
        ray.shutdown()
    options = TrackOptions(det="mot", reid="none")
    for spec in find_sequences(root, "mot"):
        expected = track_sequence(SequenceJob(spec, options)).content
        assert (out / spec.result_name).read_text() == expected  # returned, written here
        assert (shared / spec.result_name).read_text() == expected  # written by the task
    assert json.loads((out / "dataset_summary.json").read_text())["total"]["sequences"] == 2
    assert "COMBINED" in capsys.readouterr().out


def test_each_sequence_is_linked_as_kpr_track_video_links_it():
    spec = find_sequences(shared_path(*MOT17_MINI), "mot")[0]
    linked = track_sequence(SequenceJob(spec, TrackOptions(det="mot")))
    online = track_sequence(SequenceJob(spec, TrackOptions(det="mot", link=False)))
    assert linked.summary["linking"]["linked"] and not online.summary["linking"]["linked"]
    assert linked.summary["linking"]["tracklets"] == online.summary["tracks"]
