"""Batched person crops on real PETS09 boxes: equal to torchvision's RoIAlign."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from kpr_track.reid.crops import IMAGENET_MEAN, IMAGENET_STD, crop_people

SIZE = (256, 128)


def _roi_align_reference(frame: np.ndarray, boxes: np.ndarray) -> torch.Tensor:
    """The crops as computed before: the frame as RGB in [0, 1], torchvision RoIAlign
    (sampling_ratio 2, aligned), then ImageNet normalisation."""
    rgb = torch.from_numpy(np.ascontiguousarray(frame[..., ::-1])).permute(2, 0, 1)[None]
    rois = [torch.as_tensor(boxes, dtype=torch.float32)]
    crops = roi_align(rgb.float() / 255, rois, SIZE, 1.0, sampling_ratio=2, aligned=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (crops - mean) / std


def test_crops_equal_torchvision_roi_align(pets_crossing):
    """Real boxes of PETS09 frame 31, plus boxes crossing every border of the frame, a
    box larger than the crop (down-sampling) and one under a pixel wide."""
    frame, dets = pets_crossing
    height, width = frame.shape[:2]
    extra = [
        [-30, -20, 40, 150],  # top-left corner, partly outside
        [700, 500, width + 25, height + 40],  # bottom-right corner, partly outside
        [-2, -1.5, width + 1.2, height + 0.7],  # the whole frame and a border
        [100.3, 200.7, 100.9, 202.0],  # under a pixel
        [10, 10, 400, 560],  # larger than 256 x 128: every output pixel averages
    ]
    boxes = np.concatenate([dets.boxes, np.array(extra, np.float32)])
    crops = crop_people(frame, boxes, SIZE)
    expected = _roi_align_reference(frame, boxes)
    difference = (crops - expected).abs().max().item()
    print(f"max abs difference to torchvision roi_align: {difference:.2e}")
    assert crops.shape == (len(boxes), 3, *SIZE) and crops.dtype == torch.float32
    assert difference < 1e-4  # float32 rounding; one grey level is 0.017 here


def test_crop_of_nothing_and_outside_the_frame(pets_crossing):
    frame, _ = pets_crossing
    assert crop_people(frame, np.zeros((0, 4), np.float32), SIZE).shape == (0, 3, *SIZE)
    outside = crop_people(frame, np.array([[-400, -400, -300, -200]], np.float32), SIZE)
    black = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)  # a pixel value of 0
    assert torch.allclose(outside, black.view(1, 3, 1, 1).expand_as(outside))


@pytest.mark.parametrize("count", [1, 8])
def test_crops_of_one_box_do_not_depend_on_the_others(pets_crossing, count):
    """Windows are padded to the largest box of the frame: padding never leaks in."""
    frame, dets = pets_crossing
    alone = crop_people(frame, dets.boxes[:1], SIZE)
    big = np.array([[0, 0, 700, 570]], np.float32)
    together = crop_people(frame, np.concatenate([dets.boxes[:1]] * count + [big]), SIZE)
    assert torch.allclose(together[:count], alone.expand(count, -1, -1, -1), atol=1e-5)


def test_stage_embeds_like_the_roi_align_path(pets_crossing):
    """The KPR stage (batched crops, chunks of its batch size) gives the embeddings of the
    trained model on torchvision RoIAlign crops of PETS09 frame 31, the path it replaced."""
    from kpr_track.reid import build_reid
    from kpr_track.reid.appearance import representation_of

    frame, dets = pets_crossing
    stage = build_reid("kpr")
    _, prompts = stage.inputs(frame, dets)
    with torch.inference_mode():
        out = stage.model(_roi_align_reference(frame, dets.boxes), prompts)
    embeddings, visibility = representation_of(out, "parts")
    got = stage(frame, dets)
    difference = np.abs(got.embeddings - embeddings.numpy()).max()
    print(f"max abs embedding difference to the RoIAlign path: {difference:.2e}")
    assert difference < 1e-4
    np.testing.assert_array_equal(got.visibility, visibility.numpy())
