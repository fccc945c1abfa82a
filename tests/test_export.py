"""``kpr-track export --format onnx`` and ``--reid-backend onnx`` on real PETS09 data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from kpr_track.cli import main
from kpr_track.errors import ConfigError, WeightsError
from kpr_track.prompts import NEGATIVE
from kpr_track.reid import build_reid
from kpr_track.reid.export import OnnxAppearanceModel

MAX_FRAMES = 8


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """The parts model (``kpr``) and the default holistic one (``kpr-global``) as ONNX,
    written by the CLI."""
    folder = tmp_path_factory.mktemp("onnx")
    files = {}
    for name in ("kpr", "kpr-global"):
        files[name] = folder / f"{name}.onnx"
        assert main(["export", "--format", "onnx", "--reid", name, "--out", str(files[name])]) == 0
    return files


@pytest.mark.parametrize("name", ["kpr", "kpr-global"])
def test_onnxruntime_matches_torch_on_real_crops(pets_crossing, exported, name):
    """PETS09 frame 31 (two people overlap: real positive and negative prompts)."""
    frame, dets = pets_crossing
    torch_stage = build_reid(name)
    onnx_stage = build_reid(str(exported[name]), backend="onnx")
    crops, prompts = torch_stage.inputs(frame, dets)
    assert prompts[:, NEGATIVE].amax() > 0.9
    with torch.inference_mode():
        expected = torch_stage.net(crops, prompts)
    for batch in (1, len(dets)):  # the batch axis is dynamic
        got = onnx_stage.net(crops[:batch], prompts[:batch])
        difference = (got[0] - expected[0][:batch]).abs().max().item()
        print(f"{name} batch {batch}: max abs embedding difference {difference:.2e}")
        assert got[0].shape == expected[0][:batch].shape
        assert difference < 1e-4
        assert torch.equal(got[1], expected[1][:batch])
    by_torch, by_onnx = torch_stage(frame, dets), onnx_stage(frame, dets)
    np.testing.assert_allclose(by_onnx.embeddings, by_torch.embeddings, atol=1e-4)
    np.testing.assert_array_equal(by_onnx.visibility, by_torch.visibility)
    assert onnx_stage(frame, dets[:0]).embeddings.shape == (0, *by_torch.embeddings.shape[1:])


def test_the_file_describes_itself(exported):
    model = onnx.load(str(exported["kpr"]))
    inputs = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
    }
    outputs = [o.name for o in model.graph.output]
    assert inputs == {"images": ["batch", 3, 256, 128], "prompts": ["batch", 10, 128, 64]}
    assert outputs == ["embeddings", "visibility"]
    runner = OnnxAppearanceModel(exported["kpr"])
    assert (runner.reid, runner.representation, runner.input_size) == ("kpr", "parts", (256, 128))
    assert runner.output_shape() == (9, 256) and runner.num_parts == 8
    assert runner.calibration == build_reid("kpr").calibration
    assert OnnxAppearanceModel(exported["kpr-global"]).output_shape() == (1, 256)


def test_onnx_backend_tracks_like_torch(tmp_path, pets_video, exported):
    """The default model through onnxruntime tracks the first PETS09 frames exactly as
    through PyTorch."""
    runs = {}
    for backend, reid in (("torch", "kpr-global"), ("onnx", str(exported["kpr-global"]))):
        out = tmp_path / backend
        args = [str(pets_video), "--out", str(out), "--max-frames", str(MAX_FRAMES)]
        assert main([*args, "--reid-backend", backend, "--reid", reid, "--no-progress"]) == 0
        runs[backend] = (out / "tracks.txt").read_text()
    assert len(runs["onnx"].splitlines()) >= 2 * MAX_FRAMES  # people tracked in every frame
    assert runs["onnx"] == runs["torch"]


def test_files_of_format_1_get_prompts_at_the_crop_size(tmp_path, pets_crossing, exported):
    """An export of the earlier format took `(N, K + 2, 256, 128)` prompts into a 3x3
    stride-2 stem. Made here from today's file (its 1x1 kernel as the centre tap, which
    reads the prompt one crop pixel from where the half-resolution one samples it), it
    runs on crop-size prompts and embeds the PETS09 people as today's file does."""
    from onnx import numpy_helper

    old = onnx.load(str(exported["kpr"]))
    stem = next(node for node in old.graph.node if node.name == "/model/prompt_stem/Conv")
    weights = next(i for i in old.graph.initializer if i.name == stem.input[1])
    centre = numpy_helper.to_array(weights)
    kernel = np.zeros((*centre.shape[:2], 3, 3), np.float32)
    kernel[:, :, 1, 1] = centre[:, :, 0, 0]
    weights.CopyFrom(numpy_helper.from_array(kernel, weights.name))
    del stem.attribute[:]
    for key, value in {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}.items():
        stem.attribute.append(onnx.helper.make_attribute(key, value))
    prompts = next(i for i in old.graph.input if i.name == "prompts")
    prompts.type.tensor_type.shape.dim[2].dim_value = 256
    prompts.type.tensor_type.shape.dim[3].dim_value = 128
    metadata = {p.key: p.value for p in old.metadata_props if p.key != "prompt_size"}
    metadata["format"] = "kpr-track-appearance-1"
    del old.metadata_props[:]
    for key, value in metadata.items():
        old.metadata_props.add(key=key, value=value)
    onnx.save(old, str(tmp_path / "format1.onnx"))
    earlier = build_reid(str(tmp_path / "format1.onnx"), backend="onnx")
    assert earlier.prompt_size == (256, 128)
    today = build_reid(str(exported["kpr"]), backend="onnx")
    frame, dets = pets_crossing
    difference = np.abs(earlier(frame, dets).embeddings - today(frame, dets).embeddings).max()
    print(f"format 1 vs 2: max abs embedding difference {difference:.2e}")
    assert difference < 5e-3


def test_bad_backend_inputs_are_named(tmp_path, pets_crossing, exported):
    with pytest.raises(ConfigError, match="an ONNX file runs as it is with --reid-backend onnx"):
        build_reid(str(exported["kpr"]))
    with pytest.raises(ConfigError, match="--reid-backend"):
        build_reid("kpr", backend="tensorrt")
    with pytest.raises(ConfigError, match="--reid-precision int8 runs in onnxruntime"):
        build_reid("kpr", backend="torch", precision="int8")
    with pytest.raises(ConfigError, match="--reid-precision"):
        build_reid("kpr", backend="onnx", precision="fp16")
    with pytest.raises(ConfigError, match="--reid-backend onnx runs on the CPU"):
        build_reid("kpr", backend="onnx", device="cuda:0")
    with pytest.raises(ConfigError, match="embed"):
        build_reid(str(exported["kpr"]), backend="onnx").embed(*pets_crossing)
    with pytest.raises(WeightsError, match="no such ONNX file"):
        build_reid(str(tmp_path / "missing.onnx"), backend="onnx")
    text = tmp_path / "text.onnx"
    text.write_text("not a model")
    with pytest.raises(WeightsError, match="text.onnx: not loadable by onnxruntime"):
        build_reid(str(text), backend="onnx")
    bare = onnx.load(str(exported["kpr"]))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(WeightsError, match="bare.onnx: not a kpr-track appearance model"):
        build_reid(str(tmp_path / "bare.onnx"), backend="onnx")
    assert main(["export", "--format", "onnx", "--out", str(tmp_path / "model.pt")]) == 2


def test_onnx_sessions_do_not_spin_between_runs(exported):
    """Spinning onnxruntime threads would take the cores of the torch model run next."""
    from conftest import shared_path

    from kpr_track.detectors import build_detector

    torch_threads = torch.get_num_threads()
    detector = build_detector(f"yolox:{shared_path('weights', 'yolox_nano_416x416.onnx')}")
    for session in (OnnxAppearanceModel(exported["kpr"]).session, detector._session):
        options = session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert options.intra_op_num_threads == torch_threads
