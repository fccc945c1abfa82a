"""The OMZ OSNet trunks as PyTorch modules: parity with the official graphs on real crops,
the shipped converted weights, and the retail-0287 global embedding on real people."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import mot_gt_boxes, read_video_frame, shared_path
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument
from safetensors.torch import load_file

from kpr_track.detections import Detections
from kpr_track.errors import WeightsError
from kpr_track.reid import build_reid
from kpr_track.reid.crops import normalise_rgb255
from kpr_track.reid.omz_convert import convert_omz_osnet
from kpr_track.weights import resolve_weights

VARIANTS = {
    "retail-0287": "person-reidentification-retail-0287.onnx",
    "retail-0288": "person-reidentification-retail-0288-nchw.onnx",
}


def _real_crops(pets_video, pets_gt, frame_id: int = 101) -> np.ndarray:
    """`(N, 3, 256, 128)` float32 BGR 0-255 crops of the ground-truth people of a frame."""
    import cv2

    frame = read_video_frame(pets_video, frame_id - 1)
    _, boxes = mot_gt_boxes(pets_gt, frame_id)
    crops = []
    for x0, y0, x1, y1 in np.round(boxes).astype(int):
        crop = frame[max(y0, 0) : y1, max(x0, 0) : x1]
        crops.append(cv2.resize(crop, (128, 256), interpolation=cv2.INTER_LINEAR))
    return np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_module_matches_onnxruntime_on_real_crops(variant, pets_video, pets_gt):
    path = shared_path("weights", VARIANTS[variant])
    model = convert_omz_osnet(path, variant)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    crops = _real_crops(pets_video, pets_gt)
    assert len(crops) >= 5
    try:
        reference = session.run(None, {"data": crops})[0]
    except InvalidArgument as error:  # onnxruntime 1.23 (the last for Python 3.10) on 0288
        pytest.skip(f"onnxruntime {onnxruntime.__version__} cannot run the reference: {error}")
    with torch.no_grad():
        batched = model(normalise_rgb255(torch.from_numpy(crops).flip(1))).numpy()
        single = np.concatenate(
            [model(normalise_rgb255(torch.from_numpy(c[None]).flip(1))).numpy() for c in crops]
        )
    batch_diff = float(np.abs(batched - reference).max())
    single_diff = float(np.abs(single - reference).max())
    print(f"{variant}: max abs diff batched {batch_diff:.2e}, one by one {single_diff:.2e}")
    # float32 parity relative to the embedding norm (about 6.7): onnxruntime 1.32 agrees
    # within 1.1e-5, 1.23 within 2.0e-4; a wrong layer is off by far more.
    tolerance = 5e-5 * float(np.linalg.norm(reference, axis=1).max())
    assert batch_diff <= tolerance
    assert single_diff <= tolerance
    assert np.abs(reference).max() > 0.1  # a real, non-degenerate embedding


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_shipped_weights_are_the_conversion(variant):
    model = convert_omz_osnet(shared_path("weights", VARIANTS[variant]), variant)
    shipped = load_file(str(resolve_weights(f"osnet-{variant}")))
    state = model.state_dict()
    assert set(shipped) == set(state)
    for name, tensor in state.items():
        torch.testing.assert_close(shipped[name], tensor, rtol=0, atol=0, msg=name)


def test_faulty_nhwc_graph_is_refused():
    with pytest.raises(WeightsError, match="not an OMZ OSNet graph"):
        convert_omz_osnet(
            shared_path("weights", "person-reidentification-retail-0288.onnx"), "retail-0288"
        )


@pytest.mark.parametrize("first", [101, 201])
def test_same_person_ten_frames_apart_is_nearest(first, pets_video, pets_gt):
    """The untouched retail-0287 embedding re-identifies PETS09 people 10 frames later."""
    stage = build_reid("retail-0287")

    def embed(frame_id: int) -> tuple[np.ndarray, np.ndarray]:
        ids, boxes = mot_gt_boxes(pets_gt, frame_id)
        detections = Detections(
            boxes, np.ones(len(boxes), np.float32), np.zeros((len(boxes), 17, 3))
        )
        out = stage(read_video_frame(pets_video, frame_id - 1), detections)
        assert out.embeddings.shape == (len(boxes), 1, 256)
        return ids, out.embeddings[:, 0]

    ids_a, emb_a = embed(first)
    ids_b, emb_b = embed(first + 10)
    distance = np.linalg.norm(emb_a[:, None] - emb_b[None], axis=-1)
    same = ids_a[:, None] == ids_b[None]
    rows = np.flatnonzero(same.any(axis=1))
    assert len(rows) >= 4
    assert same[rows, distance[rows].argmin(axis=1)].mean() >= 0.9
    assert stage.calibration is not None
