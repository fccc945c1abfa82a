"""The retail-0288 ONNX appearance stage on real PETS09-S2L1 crops."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import mot_gt_boxes, read_video_frame, shared_path

from kpr_track.detections import Detections
from kpr_track.errors import InputError, WeightsError
from kpr_track.reid import REID_MODELS, build_reid
from kpr_track.reid.onnx_reid import OnnxReID
from kpr_track.weights import resolve_weights


@pytest.fixture(scope="module")
def retail() -> OnnxReID:
    path = shared_path("weights", "person-reidentification-retail-0288.onnx")
    return OnnxReID(resolve_weights("reid-retail-0288", path), threads=1)


def _gt_detections(pets_gt, frame_id: int) -> tuple[np.ndarray, Detections]:
    ids, boxes = mot_gt_boxes(pets_gt, frame_id)
    keypoints = np.zeros((len(boxes), 17, 3), np.float32)
    return ids, Detections(boxes, np.ones(len(boxes), np.float32), keypoints)


def test_reads_the_graph_layout(retail):
    assert retail.input_size == (256, 128)  # NHWC 1x256x128x3 in the graph
    assert retail.embed_dim == 256


def test_embeddings_are_normalised_on_real_crops(retail, pets_video, pets_gt):
    _, detections = _gt_detections(pets_gt, 101)
    out = retail(read_video_frame(pets_video, 100), detections)
    assert out.embeddings.shape == (len(detections), 1, 256)
    assert out.visibility.shape == (len(detections), 1)
    np.testing.assert_allclose(np.linalg.norm(out.embeddings, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out.visibility, 1.0)
    np.testing.assert_array_equal(out.boxes, detections.boxes)
    # Different people give different embeddings (a constant output would pass the norm check).
    assert np.linalg.norm(out.embeddings[0, 0] - out.embeddings[1, 0]) > 0.1


@pytest.mark.parametrize("first", [101, 201])
def test_same_person_ten_frames_apart_is_closer_than_others(retail, pets_video, pets_gt, first):
    ids_a, dets_a = _gt_detections(pets_gt, first)
    ids_b, dets_b = _gt_detections(pets_gt, first + 10)
    emb_a = retail(read_video_frame(pets_video, first - 1), dets_a).embeddings[:, 0]
    emb_b = retail(read_video_frame(pets_video, first + 9), dets_b).embeddings[:, 0]
    distance = np.linalg.norm(emb_a[:, None] - emb_b[None], axis=-1)  # (A, B)
    same = ids_a[:, None] == ids_b[None]
    assert same.sum() >= 4
    assert distance[same].mean() < distance[~same].mean() - 0.1
    rows = np.flatnonzero(same.any(axis=1))
    nearest_is_same = same[rows, distance[rows].argmin(axis=1)]
    assert nearest_is_same.mean() >= 0.8


def test_boxes_outside_the_frame_give_finite_embeddings(retail, pets_video):
    frame = read_video_frame(pets_video, 0)
    boxes = np.array([[-50, -50, 40, 120], [740, 500, 900, 700], [900, 0, 950, 50]], np.float32)
    out = retail(frame, Detections(boxes, np.ones(3, np.float32), np.zeros((3, 17, 3))))
    assert np.isfinite(out.embeddings).all()
    assert retail(frame, Detections.empty()).embeddings.shape == (0, 1, 256)


def test_rejects_a_frame_that_is_not_an_image(retail):
    with pytest.raises(InputError, match="uint8 BGR frame"):
        retail(np.zeros((4, 4), np.float32), Detections.empty())


def test_build_reid_finds_it_in_the_cache_directory(tmp_path, monkeypatch):
    source = shared_path("weights", "person-reidentification-retail-0288.onnx")
    shutil.copy(source, tmp_path / source.name)
    monkeypatch.setenv("KPR_TRACK_HOME", str(tmp_path))
    assert "retail-0288" in REID_MODELS
    stage = build_reid("retail-0288")
    assert isinstance(stage, OnnxReID)
    assert stage.path == tmp_path / source.name


def test_missing_weights_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("KPR_TRACK_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="reid-retail-0288.*pass --weights PATH"):
        build_reid("retail-0288")
