"""Occluded-PoseTrack-ReID loader, crop cache and split builder on real data."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from conftest import shared_path

from kpr_track.errors import InputError
from kpr_track.train.crop_cache import cache_crops, min_samples_per_identity
from kpr_track.train.dataset import load_reid_split, read_split_file
from kpr_track.train.occlusion import negative_keypoints, occlusion_score
from kpr_track.train.split_builder import SplitOptions, build_mot_reid_split, write_split_file

VIDEO = "012834_mpii_test"


@pytest.fixture()
def posetrack_root(tmp_path):
    """PoseTrack18 sample video 012834 in the PoseTrack21 + Occluded-PoseTrack-ReID layout:
    the official annotations (11 people, 1 frame) under posetrack_data/val, with
    person_id added to the first 6, and a split file (3 query, 8 gallery)."""
    sample = shared_path("data", "posetrack18-sample")
    document = json.loads((sample / "annotations" / "val" / f"{VIDEO}.json").read_text())
    for index, annotation in enumerate(document["annotations"][:6]):
        annotation["person_id"] = 100 + index // 2
    (tmp_path / "posetrack_data" / "val").mkdir(parents=True)
    (tmp_path / "posetrack_data" / "val" / f"{VIDEO}.json").write_text(json.dumps(document))
    shutil.copytree(sample / "images", tmp_path / "images")
    ids = [a["id"] for a in document["annotations"]]
    labels = {i: ("query" if n < 3 else "gallery") for n, i in enumerate(ids)}
    write_split_file(tmp_path / "occluded_posetrack_reid" / "val_dataset_sampling.json", labels)
    return tmp_path, document


def test_loader_reads_the_posetrack_schema(posetrack_root, tmp_path):
    root, document = posetrack_root
    samples = load_reid_split(root, "val")
    assert [s.ann_id for s in samples] == [a["id"] for a in document["annotations"]]
    assert [s.split for s in samples[:4]] == ["query", "query", "query", "gallery"]
    assert samples[0].identity == "100" and samples[2].identity == "101"
    assert samples[7].identity == f"012834:{document['annotations'][7]['track_id']}"
    assert {s.camera for s in samples} == {"012834"}
    first = document["annotations"][0]
    x, y, w, h = first["bbox"]
    np.testing.assert_allclose(samples[0].box, [x, y, x + w, y + h], rtol=1e-6)
    np.testing.assert_allclose(samples[0].keypoints.ravel(), first["keypoints"], rtol=1e-6)
    # Negatives: other people with a visible keypoint inside the box, nothing else.
    for sample in samples:
        assert sample.negatives.shape[1:] == (17, 3)
        visible = sample.negatives[..., 2] > 0
        xy = sample.negatives[..., :2][visible]
        assert np.all((xy >= sample.box[:2]) & (xy < sample.box[2:]))
    assert sum(len(s.negatives) for s in samples) > 0

    records, skipped = cache_crops(samples, tmp_path / "cache", (64, 32))
    assert len(records) == len(samples) and not skipped
    crop = cv2.imread(str(records[0].path))
    assert crop.shape == (64, 32, 3) and crop.std() > 5
    inside = records[0].keypoints[records[0].keypoints[:, 2] > 0]
    assert np.all((inside[:, :2] >= -1) & (inside[:, :2] <= [33, 65]))
    again, _ = cache_crops(samples, tmp_path / "cache", (64, 32))
    assert [r.path for r in again] == [r.path for r in records]


def test_missing_split_file_and_unknown_annotation(posetrack_root):
    root, document = posetrack_root
    split = root / "occluded_posetrack_reid" / "val_dataset_sampling.json"
    with pytest.raises(InputError, match="train_dataset_sampling.json: split file not found"):
        load_reid_split(root, "train")
    write_split_file(split, {document["annotations"][0]["id"]: "query", 123456789: "gallery"})
    with pytest.raises(InputError, match=r"1 annotation id\(s\) not found.*123456789"):
        load_reid_split(root, "val")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "pandas to_json"),
        ('{"id": {"1": 1}, "split": {"1": "probe"}}', "expected one of"),
        ('{"id": {"1": "x"}, "split": {"1": "query"}}', "expected an integer"),
        ("{not json", "not valid JSON"),
    ],
)
def test_malformed_split_file(tmp_path, content, message):
    path = tmp_path / "val_dataset_sampling.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_split_file(path)


def test_malformed_annotations(posetrack_root):
    root, document = posetrack_root
    document["annotations"][0]["keypoints"] = [1.0, 2.0]
    (root / "posetrack_data" / "val" / f"{VIDEO}.json").write_text(json.dumps(document))
    with pytest.raises(
        InputError, match=r"annotations\[0\]\.keypoints: expected a list of 51 numbers"
    ):
        load_reid_split(root, "val")


def test_empty_crops_and_small_identities_are_counted_skips(posetrack_root, tmp_path):
    root, document = posetrack_root
    document["annotations"][1]["bbox"] = [10.0, 10.0, 0.0, 30.0]  # zero width
    document["annotations"][2]["bbox"] = [5000.0, 10.0, 20.0, 30.0]  # right of the frame
    (root / "posetrack_data" / "val" / f"{VIDEO}.json").write_text(json.dumps(document))
    records, skipped = cache_crops(load_reid_split(root, "val"), tmp_path / "c", (64, 32))
    assert skipped == {"empty box": 1, "box outside the frame": 1}
    assert len(records) == 9
    kept, dropped = min_samples_per_identity(records, 2)
    # persons 100 and 101 lost a sample each; the 5 track-id identities have one each.
    assert dropped == 7 and {r.identity for r in kept} == {"102"}


def test_occlusion_score():
    box = np.array([0, 0, 10, 10], np.float32)
    own = np.zeros((17, 3), np.float32)
    own[:4] = [5, 5, 1.0]
    other = np.zeros((2, 17, 3), np.float32)
    other[0, :2] = [2, 2, 0.8]  # inside, visible
    other[0, 2] = [20, 2, 0.9]  # outside
    other[1, 0] = [3, 3, 0.2]  # inside, below threshold
    negatives = negative_keypoints(box, other)
    assert negatives.shape == (1, 17, 3) and negatives[0, :, 2].sum() == pytest.approx(1.6)
    assert occlusion_score(own, negatives) == pytest.approx(1.6 / 4.0)
    assert occlusion_score(np.zeros((17, 3)), negatives) == float("inf")


def test_builder_on_mot17_writes_an_identity_disjoint_split(mot17_reid_split):
    root, summary = mot17_reid_split
    assert summary.frames == 5 and summary.train_identities > 0 and summary.test_identities > 0
    assert summary.skipped["box height < 40 px"] > 0
    train = load_reid_split(root, "train")
    val = load_reid_split(root, "val")
    assert {s.split for s in train} == {"train"}
    assert {s.split for s in val} == {"query", "gallery"}
    assert not {s.identity for s in train} & {s.identity for s in val}
    assert len(train) == summary.train and len(val) == summary.query + summary.gallery
    assert all(s.image.is_file() for s in val)
    # Queries are each identity's most occluded samples.
    for identity in {s.identity for s in val}:
        own = [s for s in val if s.identity == identity]
        scores = {s.ann_id: occlusion_score(s.keypoints, s.negatives) for s in own}
        worst_gallery = max(scores[s.ann_id] for s in own if s.split == "gallery")
        assert all(scores[s.ann_id] >= worst_gallery for s in own if s.split == "query")
    document = json.loads(
        (root / "occluded_posetrack_reid" / "val_dataset_sampling.json").read_text()
    )
    assert set(document) == {"id", "split"} and set(document["split"].values()) <= {
        "query",
        "gallery",
        "none",
    }


def test_builder_needs_the_mot17_columns(tmp_path):
    sequence = tmp_path / "seq"
    (sequence / "gt").mkdir(parents=True)
    (sequence / "seqinfo.ini").write_text("[Sequence]\nname=seq\nseqLength=2\n")
    (sequence / "gt" / "gt.txt").write_text("1,1,10,10,20,40,1\n")
    with pytest.raises(InputError, match="expected 9 columns"):
        build_mot_reid_split(sequence, tmp_path / "out", lambda f, b: np.zeros((len(b), 17, 3)))
    (sequence / "gt" / "gt.txt").write_text("1,1,10,10,20,40,1,1,1.0\n")
    with pytest.raises(InputError, match="image folder img1/ or exactly one video"):
        build_mot_reid_split(
            sequence, tmp_path / "out", lambda f, b: np.zeros((len(b), 17, 3)), SplitOptions()
        )
