"""PoseTrack readers: official PoseTrack18 val files, PoseTrack21-schema fixtures, bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from kpr_track.errors import InputError
from kpr_track.evaluation.evaluate import load_ground_truth, load_predictions
from kpr_track.evaluation.posetrack import (
    read_posetrack_ground_truth,
    read_posetrack_mot_ground_truth,
    read_posetrack_predictions,
)

VIDEO = "000001_bonn_test"
NUM_FRAMES = 5
LABELED = [True, True, False, True, True]
# Ignore region on frames 2 and 4 (indices 1, 3): the square 300..400 x 0..100 px.
REGION_FRAMES = (1, 3)
REGION_X, REGION_Y = [300, 400, 400, 300], [0, 0, 100, 100]


def image_id(index: int) -> int:
    """PoseTrack image ids: 1, video number, 4-digit frame index."""
    return 10000010000 + index


def person_box(track_id: int, index: int) -> list[float]:
    return [50.0 + 100 * track_id + 2 * index, 40.0, 60.0, 150.0]


def person_keypoints(box: list[float], score: float = 0.9) -> tuple[list[float], list[float]]:
    """17 keypoints spread over the box (x, y, visibility) and their scores."""
    x, y, w, h = box
    points = [[x + w * (0.2 + 0.6 * (j % 2)), y + h * (j + 1) / 18, 1] for j in range(17)]
    return [v for p in points for v in p], [score] * 17


def posetrack21_video() -> dict:
    """A PoseTrack21 ``posetrack_data`` video: two people on the labelled frames."""
    images, annotations = [], []
    for index in range(NUM_FRAMES):
        images.append(
            {
                "is_labeled": LABELED[index],
                "nframes": NUM_FRAMES,
                "frame_id": image_id(index),
                "id": image_id(index),
                "vid_id": "000001",
                "file_name": f"images/val/{VIDEO}/{index:06d}.jpg",
                "has_labeled_person": LABELED[index],
                "ignore_regions_x": [REGION_X] if index in REGION_FRAMES else [],
                "ignore_regions_y": [REGION_Y] if index in REGION_FRAMES else [],
            }
        )
        if not LABELED[index]:
            continue
        for track_id, person_id in ((0, 1024), (1, 77)):
            box = person_box(track_id, index)
            keypoints, _ = person_keypoints(box)
            annotations.append(
                {
                    "bbox": box,
                    "bbox_head": [box[0] + 20, box[1], 20, 20],
                    "category_id": 1,
                    "image_id": image_id(index),
                    "id": len(annotations) + 1,
                    "keypoints": keypoints,
                    "person_id": person_id,
                    "track_id": track_id,
                }
            )
    return {"images": images, "annotations": annotations, "categories": [{"id": 1}]}


def tracks_from(video: dict, score: float = 0.9) -> dict:
    """PoseTrack21 results equal to a ground-truth video (``scores`` per keypoint)."""
    images = [{k: im[k] for k in ("id", "file_name", "frame_id")} for im in video["images"]]
    annotations = []
    for ann in video["annotations"]:
        keypoints, scores = person_keypoints(ann["bbox"], score)
        annotations.append(
            {
                "bbox": ann["bbox"],
                "image_id": ann["image_id"],
                "keypoints": keypoints,
                "scores": scores,
                "track_id": ann["track_id"],
            }
        )
    return {"images": images, "annotations": annotations}


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_posetrack_mot(root: Path, video: dict) -> Path:
    """The same video in the ``posetrack_mot`` layout (image_info.json + gt/gt.txt)."""
    seq = root / "posetrack_mot" / "mot" / "val" / VIDEO
    info = [
        {
            "file_name": im["file_name"],
            "id": im["id"],
            "frame_id": im["frame_id"],
            "vid_id": im["vid_id"],
            "frame_index": index + 1,
            "ignore_regions_x": im["ignore_regions_x"],
            "ignore_regions_y": im["ignore_regions_y"],
        }
        for index, im in enumerate(video["images"])
    ]
    write_json(seq / "image_info.json", info)
    frame_of = {im["id"]: index + 1 for index, im in enumerate(video["images"])}
    lines = [
        f"{frame_of[a['image_id']]},{a['track_id']},{','.join(map(str, a['bbox']))},1,-1,-1,-1"
        for a in video["annotations"]
    ]
    (seq / "gt").mkdir()
    (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    return seq


@pytest.fixture
def video_json(tmp_path) -> Path:
    return write_json(tmp_path / "posetrack_data" / "val" / f"{VIDEO}.json", posetrack21_video())


def test_posetrack18_val_samples_read():
    folder = shared_path("data", "posetrack18-sample", "annotations", "val")
    expected = {  # video: (people, ignore regions), from the official val files
        "003418_mpii_test": (1, 9),
        "009473_mpii_test": (2, 2),
        "012834_mpii_test": (11, 4),
    }
    for name, (people, regions) in expected.items():
        gt = read_posetrack_ground_truth(folder / f"{name}.json")
        assert (gt.name, gt.num_frames, gt.protocol) == (name, 1, "PoseTrack21")
        assert gt.labeled.tolist() == [True]
        np.testing.assert_array_equal(np.sort(gt.tracks.ids), np.arange(people))
        assert len(gt.ignore_regions[1]) == regions
        assert all(p.ndim == 2 and p.shape[1] == 2 for p in gt.ignore_regions[1])
        assert gt.image_frames == {int(f"1{name[:6]}0000"): 1}
    gt = read_posetrack_ground_truth(folder / "003418_mpii_test.json")
    assert int((gt.tracks.keypoints[0, :, 2] > 0).sum()) == 11  # its "num_keypoints"
    np.testing.assert_allclose(gt.tracks.boxes[0], [214.25, 15.0, 1358.5, 1092.0])
    np.testing.assert_allclose(gt.ignore_regions[1][1][:2], [[341, 94], [347, 71]])  # x, y pairs


def test_posetrack21_video_json(video_json):
    gt = load_ground_truth(video_json)
    assert (gt.name, gt.num_frames, gt.protocol) == (VIDEO, 5, "PoseTrack21")
    assert gt.labeled.tolist() == LABELED
    assert len(gt.tracks) == 8
    np.testing.assert_array_equal(np.bincount(gt.tracks.frames, minlength=6), [0, 2, 2, 0, 2, 2])
    assert set(gt.tracks.ids.tolist()) == {0, 1}
    assert list(gt.ignore_regions) == [2, 4]
    np.testing.assert_allclose(gt.ignore_regions[2][0], np.c_[REGION_X, REGION_Y])
    assert gt.image_frames[image_id(3)] == 4
    assert gt.tracks.keypoints.shape == (8, 17, 3)


def test_posetrack_mot_layout_matches_video_json(tmp_path, video_json):
    from_json = load_ground_truth(video_json)
    seq = write_posetrack_mot(tmp_path, posetrack21_video())
    gt = read_posetrack_mot_ground_truth(seq)
    assert (gt.name, gt.num_frames, gt.protocol) == (VIDEO, 5, "PoseTrack21")
    assert gt.labeled.tolist() == LABELED  # frames with boxes, as image_info has no flag
    assert gt.image_frames == from_json.image_frames
    np.testing.assert_array_equal(gt.tracks.frames, from_json.tracks.frames)
    np.testing.assert_allclose(gt.tracks.boxes, from_json.tracks.boxes)
    np.testing.assert_allclose(gt.ignore_regions[2][0], from_json.ignore_regions[2][0])
    assert load_ground_truth(seq).source == seq / "gt" / "gt.txt"


def test_predictions_map_image_ids_and_use_scores(tmp_path, video_json):
    gt = load_ground_truth(video_json)
    results = tracks_from(posetrack21_video(), score=0.7)
    results["images"].reverse()  # frames come from image ids, not from the order
    pred = load_predictions(write_json(tmp_path / "tracks.json", results), gt)
    np.testing.assert_array_equal(pred.frames, gt.tracks.frames)
    np.testing.assert_allclose(pred.keypoints[..., 2], 0.7)
    np.testing.assert_allclose(pred.scores, 1.0)  # no "score": confidence 1


def test_predictions_on_a_mot_sequence_use_frame_id(tmp_path):
    gt = read_posetrack_mot_ground_truth(write_posetrack_mot(tmp_path, posetrack21_video()))
    gt = type(gt)(**{**gt.__dict__, "image_frames": None})  # as for a MOTChallenge sequence
    results = {
        "images": [{"id": 7, "frame_id": 3, "file_name": "v/000002.jpg"}],
        "annotations": [{"image_id": 7, "bbox": [1, 2, 3, 4], "track_id": 5, "score": 0.5}],
    }
    pred = read_posetrack_predictions(write_json(tmp_path / "t.json", results), gt)
    assert (pred.frames.tolist(), pred.ids.tolist(), pred.scores.tolist()) == ([3], [5], [0.5])
    assert pred.keypoints is None
    results["images"][0]["frame_id"] = 6
    with pytest.raises(InputError, match=r"t\.json: images\[0\]\.frame_id: frame 6 is outside"):
        read_posetrack_predictions(write_json(tmp_path / "t.json", results), gt)


def _drop(path: list, data: dict) -> dict:
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


def _set(path: list, value, data: dict) -> dict:
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


BAD_RESULTS = [
    (lambda d: _drop(["annotations"], d), "annotations: required key missing"),
    (lambda d: _drop(["images", 2, "id"], d), r"images\[2\]\.id: required key missing"),
    (lambda d: _drop(["annotations", 3, "bbox"], d), r"annotations\[3\]\.bbox: required key"),
    (lambda d: _drop(["annotations", 0, "track_id"], d), r"annotations\[0\]\.track_id"),
    (lambda d: _set(["annotations", 1, "bbox"], [1, 2, 3], d), "list of 4 numbers, got 3"),
    (lambda d: _set(["annotations", 1, "keypoints"], [0] * 50, d), r"\[1\]\.keypoints: exp"),
    (lambda d: _set(["annotations", 1, "scores", 4], "high", d), r"\[1\]\.scores: expected fin"),
    (lambda d: _set(["annotations", 2, "image_id"], 5, d), r"\[2\]\.image_id: 5 is not listed"),
    (lambda d: _set(["annotations", 2, "track_id"], 1.5, d), "expected an integer, got 1.5"),
    (lambda d: _set(["images", 0, "id"], 99, d), r"images\[0\]\.id: image 99 is not an image"),
    (lambda d: _set(["annotations", 1, "track_id"], 0, d), "track 0 appears twice"),
    (lambda d: _set(["images"], {"id": 1}, d), "images: expected list, got dict"),
    (lambda d: [d], "top level: expected dict, got list"),
]


@pytest.mark.parametrize(("corrupt", "what"), BAD_RESULTS)
def test_bad_tracks_json_names_file_and_key(tmp_path, video_json, corrupt, what):
    gt = load_ground_truth(video_json)
    path = write_json(tmp_path / "tracks.json", corrupt(tracks_from(posetrack21_video())))
    with pytest.raises(InputError, match=what) as error:
        load_predictions(path, gt)
    assert "tracks.json" in str(error.value)


@pytest.mark.parametrize(
    ("corrupt", "what"),
    [
        (lambda d: _drop(["images"], d), "images: required key missing"),
        (lambda d: _set(["images", 1, "ignore_regions_y"], [], d), "1 x lists but 0 y lists"),
        (lambda d: _set(["images", 1, "ignore_regions_y"], [[1, 2]], d), "equal length"),
        (lambda d: _set(["annotations", 0, "track_id"], -1, d), "non-negative"),
    ],
)
def test_bad_ground_truth_json_names_file_and_key(tmp_path, corrupt, what):
    path = write_json(tmp_path / "video.json", corrupt(posetrack21_video()))
    with pytest.raises(InputError, match=what) as error:
        read_posetrack_ground_truth(path)
    assert "video.json" in str(error.value)


def test_unreadable_json_files(tmp_path):
    with pytest.raises(InputError, match=r"absent\.json: file not found"):
        read_posetrack_ground_truth(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(InputError, match=r"broken\.json: not valid JSON"):
        read_posetrack_ground_truth(tmp_path / "broken.json")


def test_bad_image_info_frame_index(tmp_path):
    seq = write_posetrack_mot(tmp_path, posetrack21_video())
    info = json.loads((seq / "image_info.json").read_text())
    info[3]["frame_index"] = 9
    write_json(seq / "image_info.json", info)
    with pytest.raises(InputError, match=r"image_info\.json: \[3\]\.frame_index: 9 is outside"):
        read_posetrack_mot_ground_truth(seq)
