"""The default runtime: the ``--reid`` model's ONNX export, made once into the cache,
checked against PyTorch, reused, and rebuilt when the cached file is damaged."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from kpr_track.reid import build_reid
from kpr_track.reid.export import OnnxAppearanceModel
from kpr_track.reid.onnx_cache import TOLERANCE, cache_problem, cached_onnx
from kpr_track.weights import file_sha256

NAME = "kpr-global"


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    """An empty cache (``KPR_TRACK_HOME``) for this module; weights come from the package."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("home")
        patch.setenv("KPR_TRACK_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def torch_stage():
    return build_reid(NAME, backend="torch")


@pytest.fixture(scope="module")
def built(cache_home, torch_stage):
    """The fp32 export of the default backend, built on the first ``build_reid``."""
    stage = build_reid(NAME, backend="auto")
    assert isinstance(stage.net, OnnxAppearanceModel)
    (path,) = (cache_home / "onnx").glob(f"{NAME}-*.onnx")
    return path


def test_auto_runs_the_export_and_records_it(built):
    record = json.loads(built.with_suffix(".json").read_text())
    assert record["sha256"] == file_sha256(built)
    assert record["precision"] == "fp32"
    assert record["max_abs_difference"] < TOLERANCE["fp32"]
    assert len(record["fingerprint"]) == 64 and record["fingerprint"][:16] in built.name


def test_the_cache_is_built_once_and_reused(built, torch_stage, monkeypatch):
    import kpr_track.reid.onnx_cache as onnx_cache

    before = built.stat().st_mtime_ns

    def no_build(*args):
        raise AssertionError("an intact cached export was rebuilt")

    monkeypatch.setattr(onnx_cache, "build_onnx", no_build)
    assert cached_onnx(NAME, torch_stage) == built
    assert isinstance(build_reid(NAME, backend="onnx").net, OnnxAppearanceModel)
    assert built.stat().st_mtime_ns == before


def test_a_truncated_export_is_detected_and_rebuilt(built, torch_stage, caplog):
    good = built.read_bytes()
    built.write_bytes(good[: len(good) // 2])
    fingerprint = json.loads(built.with_suffix(".json").read_text())["fingerprint"]
    assert "sha256" in cache_problem(built, fingerprint)
    with caplog.at_level(logging.WARNING):
        assert cached_onnx(NAME, torch_stage) == built
    assert "rebuilding" in caplog.text and "sha256" in caplog.text
    assert cache_problem(built, fingerprint) is None
    assert OnnxAppearanceModel(built).output_shape() == (1, 256)


def test_a_sidecar_of_another_export_is_not_trusted(built, torch_stage):
    sidecar = built.with_suffix(".json")
    record = json.loads(sidecar.read_text())
    assert "fingerprint" in cache_problem(built, "0" * 64)
    sidecar.write_text(json.dumps({**record, "fingerprint": "0" * 64}))
    assert cached_onnx(NAME, torch_stage) == built
    assert json.loads(sidecar.read_text())["fingerprint"] == record["fingerprint"]
    sidecar.write_text("{not json")
    assert "unreadable" in cache_problem(built, record["fingerprint"])
    sidecar.unlink()
    assert "missing" in cache_problem(built, record["fingerprint"])


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_parity_with_torch_on_pets09_crops(cache_home, torch_stage, pets_crossing, precision):
    """PETS09 frame 31 (two people overlap): the stage as ``kpr-track track`` runs it by
    default (and at int8) gives PyTorch's embeddings within the precision's tolerance."""
    frame, detections = pets_crossing
    stage = build_reid(NAME, backend="auto", precision=precision)
    assert isinstance(stage.net, OnnxAppearanceModel)
    expected = torch_stage(frame, detections).embeddings
    got = stage(frame, detections).embeddings
    difference = np.abs(got - expected).max()
    print(f"{precision}: max abs embedding difference on PETS09 crops {difference:.2e}")
    assert difference < TOLERANCE[precision]
    cosine = (got * expected).sum(-1)
    # int8 measured: cosine 0.95-0.99 on these crops (calibrated on other photos).
    assert cosine.min() > (0.999999 if precision == "fp32" else 0.9)
    assert stage.calibration == torch_stage.calibration


def test_int8_keeps_the_embedding_head_in_float32(cache_home):
    """The trunk's head (whose output is the holistic embedding) reads float weights in the
    int8 file; the convolutions before it read dequantised int8 ones."""
    import onnx

    build_reid(NAME, backend="onnx", precision="int8")
    files = (cache_home / "onnx").glob(f"{NAME}-*.onnx")
    (path,) = (
        f for f in files if json.loads(f.with_suffix(".json").read_text())["precision"] == "int8"
    )
    graph = onnx.load(str(path)).graph
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    producers = {out: node.op_type for node in graph.node for out in node.output}
    head = [n for n in graph.node if n.name in ("/model/head_pool/Conv", "/model/head_fc/Gemm")]
    assert len(head) == 2 and all(n.input[1] in floats for n in head)
    convs = [n for n in graph.node if n.op_type == "Conv" and n not in head]
    assert convs and all(producers.get(n.input[1]) == "DequantizeLinear" for n in convs)


def test_a_failed_check_falls_back_to_torch_only_under_auto(
    cache_home, torch_stage, monkeypatch, capsys
):
    import kpr_track.reid.onnx_cache as onnx_cache

    monkeypatch.setattr(onnx_cache, "TOLERANCE", {"fp32": 0.0, "int8": 0.0})
    monkeypatch.setenv("KPR_TRACK_HOME", str(cache_home / "other"))
    stage = build_reid(NAME, backend="auto")
    assert not isinstance(stage.net, OnnxAppearanceModel)
    assert "differs from PyTorch" in capsys.readouterr().err
    assert not list((cache_home / "other" / "onnx").glob("*.onnx"))
    from kpr_track.errors import WeightsError

    with pytest.raises(WeightsError, match="differs from PyTorch"):
        build_reid(NAME, backend="onnx")
    with torch.inference_mode():
        assert stage.net.model.training is False
