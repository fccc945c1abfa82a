"""The benchmarks' detection cache: built once from real MOT17-mini frames, read back intact."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import shared_path

from kpr_track.cli.bench import load_benchmark
from kpr_track.errors import InputError
from kpr_track.integrity import damage, sidecar

cache_module = load_benchmark("detection_cache")
SEQUENCE = ("data", "MOT17-mini", "train", "MOT17-09-FRCNN")


@pytest.fixture(scope="module")
def models():
    return cache_module.Models(threads=1)


@pytest.fixture(scope="module")
def built(tmp_path_factory, models):
    """A cache of the first 2 frames of MOT17-09 (det.txt boxes, KPR and retail embeddings)."""
    cache_dir = tmp_path_factory.mktemp("cache")
    seq_dir = shared_path(*SEQUENCE)
    cache = cache_module.load_or_build(
        seq_dir, "det", {"kpr", "retail"}, models, cache_dir=cache_dir, max_frames=2, log=print
    )
    return cache, cache_module.cache_path(cache_dir, seq_dir, "det", 2)


def test_round_trip_keeps_every_array(built):
    cache, path = built
    loaded = cache_module.DetectionCache.load(path)
    assert list(loaded.frame_ids) == [1, 2]
    for name in ("offsets", "boxes", "scores", "keypoints"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(cache, name))
    assert loaded.features == {"kpr", "retail"}
    assert set(loaded.appearance) == {"parts", "global", "retail"}
    assert set(loaded.seconds) >= {"decode", "detect", "kpr", "retail"}
    for index in range(len(loaded)):
        for slot, width in (("parts", 9), ("global", 1), ("retail", 1)):
            stored, fresh = loaded.detections(index, slot), cache.detections(index, slot)
            assert stored.embeddings.shape[1] == width and stored.embeddings.dtype == np.float32
            np.testing.assert_array_equal(stored.embeddings, fresh.embeddings)
            np.testing.assert_array_equal(stored.boxes, fresh.boxes)


def test_cached_boxes_are_the_det_file_rows(built):
    cache, _ = built
    rows = np.loadtxt(shared_path(*SEQUENCE, "det", "det.txt"), delimiter=",")
    first = rows[rows[:, 0] == 1]
    detections = cache.detections(0)
    assert len(detections) == len(first)
    np.testing.assert_allclose(detections.boxes[:, :2], first[:, 2:4], atol=1e-3)
    np.testing.assert_allclose(detections.scores, first[:, 6], atol=1e-6)


def test_embeddings_are_unit_vectors(built):
    cache, _ = built
    for slot in ("parts", "global", "retail"):
        embeddings, _ = cache.appearance[slot]
        norms = np.linalg.norm(embeddings.astype(np.float32), axis=-1)
        visible = cache.appearance[slot][1] > 0.5
        np.testing.assert_allclose(norms[visible], 1.0, atol=2e-3)  # parts are float16


def test_missing_features_trigger_a_rebuild_with_the_union(built, models, tmp_path):
    cache, path = built
    seq_dir = shared_path(*SEQUENCE)
    same = cache_module.load_or_build(
        seq_dir, "det", {"kpr"}, models, cache_dir=path.parent, max_frames=2
    )
    assert same.features == cache.features  # read back, not rebuilt
    boxes_only = cache_module.load_or_build(
        seq_dir, "det", set(), models, cache_dir=tmp_path, max_frames=1
    )
    assert boxes_only.features == set() and boxes_only.appearance == {}
    more = cache_module.load_or_build(
        seq_dir, "det", {"retail"}, models, cache_dir=tmp_path, max_frames=1
    )
    assert more.features == {"retail"}
    np.testing.assert_array_equal(more.boxes, boxes_only.boxes)
    reloaded = cache_module.DetectionCache.load(
        cache_module.cache_path(tmp_path, seq_dir, "det", 1)
    )
    assert reloaded.features == {"retail"}


def test_appearance_rebuild_recomputes_the_embeddings_on_the_stored_boxes(built, models, tmp_path):
    """``rebuild="appearance"`` keeps a cache's detections and replaces its embeddings by
    today's models' (here the models are the same, so they come back equal), and refuses
    a sequence whose frames are not the cache's."""
    cache, path = built
    seq_dir = shared_path(*SEQUENCE)
    stale = replace(
        cache,
        appearance={slot: (e * 0, v) for slot, (e, v) in cache.appearance.items()},
        seconds={**cache.seconds, "kpr": -1.0},
    )
    stale.save(tmp_path / path.name)
    fresh = cache_module.load_or_build(
        seq_dir, "det", {"kpr"}, models, cache_dir=tmp_path, max_frames=2, rebuild="appearance"
    )
    np.testing.assert_array_equal(fresh.boxes, cache.boxes)
    assert fresh.features == cache.features and fresh.seconds["kpr"] > 0
    for slot, (embeddings, visibility) in cache.appearance.items():
        np.testing.assert_allclose(fresh.appearance[slot][0], embeddings, atol=1e-3)
        np.testing.assert_array_equal(fresh.appearance[slot][1], visibility)
    reloaded = cache_module.DetectionCache.load(tmp_path / path.name)
    np.testing.assert_array_equal(reloaded.appearance["retail"][0], fresh.appearance["retail"][0])
    shifted = replace(cache, frame_ids=cache.frame_ids + 1)
    with pytest.raises(
        InputError, match="MOT17-09-FRCNN: read frame 1 where its cache has frame 2"
    ):
        cache_module.refresh_appearance(shifted, seq_dir, models, max_frames=2)


def test_a_file_that_is_not_a_cache_is_a_clear_error(tmp_path):
    path = tmp_path / "bogus.npz"
    np.savez(path, boxes=np.zeros((1, 4)))
    with pytest.raises(InputError, match="not a detection cache"):
        cache_module.DetectionCache.load(path)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("spoil", "record", "reason"),
    [
        (_truncate, True, "truncated: "),
        (_flip_a_byte, True, "sha256 "),
        (_truncate, False, "not a detection cache"),  # a cache from before the records
    ],
)
def test_damaged_cache_is_rebuilt_never_loaded(models, tmp_path, spoil, record, reason):
    seq_dir = shared_path(*SEQUENCE)
    path = cache_module.cache_path(tmp_path, seq_dir, "det", 2)
    build = dict(cache_dir=tmp_path, max_frames=2)
    first = cache_module.load_or_build(seq_dir, "det", set(), models, **build, log=print)
    spoil(path)
    if not record:
        sidecar(path).unlink()
    lines = []
    rebuilt = cache_module.load_or_build(seq_dir, "det", set(), models, **build, log=lines.append)
    assert lines[0].startswith(f"[cache] {path} is damaged ({reason}") and len(lines) == 2
    assert lines[0].endswith("removed, building it again") and "\n" not in lines[0]
    np.testing.assert_array_equal(rebuilt.boxes, first.boxes)
    assert damage(path) is None  # rebuilt and sealed


def test_intact_cache_without_a_record_is_kept_and_sealed(models, tmp_path):
    seq_dir = shared_path(*SEQUENCE)
    path = cache_module.cache_path(tmp_path, seq_dir, "det", 1)
    cache_module.load_or_build(seq_dir, "det", set(), models, cache_dir=tmp_path, max_frames=1)
    sidecar(path).unlink()
    before = path.stat().st_mtime_ns
    lines = []
    cache_module.load_or_build(
        seq_dir, "det", set(), models, cache_dir=tmp_path, max_frames=1, log=lines.append
    )
    assert lines == [] and path.stat().st_mtime_ns == before and damage(path) is None


def test_default_input_source_only_where_it_differs_from_960(models):
    common = load_benchmark("common")
    names = ("PETS09-S2L1", "MOT20-01", "MOT17-02-raw540")
    pets, mot20, raw540 = (shared_path("data", name) for name in names)
    sources = ["det", "yolo-pose", "yolo-pose-auto"]
    assert common.available_sources((pets,), sources) == ["det", "yolo-pose"]  # 768x576 -> 960
    assert common.available_sources((raw540,), sources) == ["yolo-pose"]  # 960x540, no det.txt
    assert common.available_sources((mot20,), sources) == sources  # 1920x1080 -> 1920
    assert models.detector("yolo-pose-auto", mot20).imgsz == 1920
    assert models.detector("yolo-pose", mot20).imgsz == 960
