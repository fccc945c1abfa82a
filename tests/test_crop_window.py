"""The crop window on real PETS09 / MOT17-02 data: boxes clipped to the frame, the same
window for the crop, the prompts and the training crop cache."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kpr_track.detections import Detections
from kpr_track.prompts import FIRST_PART, render_prompts
from kpr_track.reid.appearance import KPRAppearance
from kpr_track.reid.crops import crop_boxes, crop_people, crop_windows
from kpr_track.reid.model import KPRModel

SIZE = (256, 128)
LEFT_ANKLE = 15  # COCO-17
LEFT_FOOT = 6  # part index of {left ankle} among the K = 8 parts


def test_windows_clip_boxes_to_the_frame(pets_crossing):
    frame, dets = pets_crossing
    height, width = frame.shape[:2]
    outside = np.array(
        [[-30, -20, 40, 150], [700, 500, width + 25, height + 40], [-50, -60, -10, -5]],
        np.float32,
    )
    boxes = np.concatenate([dets.boxes, outside])
    windows = crop_windows(boxes, frame.shape)
    assert (windows[:, :2] >= 0).all() and (windows[:, 2] <= width).all()
    assert (windows[:, 3] <= height).all()
    assert (windows[:, 2:] - windows[:, :2] >= 1).all()
    inside = (boxes[:, :2] >= 0).all(1) & (boxes[:, 2] <= width) & (boxes[:, 3] <= height)
    np.testing.assert_array_equal(windows[inside], boxes[inside])
    np.testing.assert_array_equal(windows[-3], [0, 0, 40, 150])
    np.testing.assert_array_equal(windows[-2], [700, 500, width, height])
    # The crop of a box past the border holds no black band (the whole-box crop does).
    clipped = crop_boxes(frame, windows[-3:-2], SIZE)[0]
    whole = crop_boxes(frame, boxes[-3:-2], SIZE)[0]
    assert whole[:, :20, :20].max() == 0 and clipped[:, :20, :20].mean() > 20


def test_stage_crops_and_prompts_share_the_clipped_window(pets_crossing):
    """A real person's box pushed past the right border: the crop is RoIAlign of the
    clipped box, and its left-foot prompt (one joint: the left ankle) peaks where the
    ankle falls in that window."""
    frame, dets = pets_crossing
    keypoints = dets.keypoints.copy()
    person = int(np.argmax(keypoints[:, LEFT_ANKLE, 2]))  # the surest left ankle
    assert keypoints[person, LEFT_ANKLE, 2] > 0.3
    ankle = keypoints[person, LEFT_ANKLE, :2]
    boxes = dets.boxes.copy()
    width = frame.shape[1]
    boxes[person, 2] = width + 60.0  # extend the box 60 px past the frame's right edge
    edge = Detections(boxes, dets.scores, keypoints)
    stage = KPRAppearance(KPRModel(attention="pose"))
    crops, prompts = stage.inputs(frame, edge, np.array([person]))
    window = crop_windows(boxes[person : person + 1], frame.shape)
    assert window[0, 2] == width
    np.testing.assert_allclose(crops, crop_people(frame, window, SIZE), atol=1e-5)
    head = prompts[0, FIRST_PART + LEFT_FOOT].numpy()
    assert head.shape == stage.prompt_size == (SIZE[0] // 2, SIZE[1] // 2)
    row, col = np.unravel_index(np.argmax(head), head.shape)
    x0, y0, x1, y1 = window[0]
    (rows, cols) = stage.prompt_size
    expected = ((ankle[0] - x0) * cols / (x1 - x0), (ankle[1] - y0) * rows / (y1 - y0))
    assert abs(col + 0.5 - expected[0]) <= 1.0 and abs(row + 0.5 - expected[1]) <= 1.0
    # Rendered in the unclipped box, the peak would sit elsewhere: the window matters.
    unclipped = render_prompts(boxes, keypoints, stage.prompt_size, targets=[person])
    unclipped = unclipped[0, FIRST_PART + LEFT_FOOT]
    assert np.argmax(unclipped.numpy()) != np.argmax(head)


def test_training_crops_are_the_inference_crops(mot17_reid_split, tmp_path):
    """The crop cache cuts each sample's clipped window with the inference RoIAlign."""
    from kpr_track.train.crop_cache import cache_crops
    from kpr_track.train.dataset import load_reid_split

    root, _ = mot17_reid_split
    samples = load_reid_split(root, "val")[:12]
    records, _ = cache_crops(samples, tmp_path / "crops", SIZE)
    assert len(records) == len(samples)
    for sample, record in zip(samples, records, strict=True):
        frame = cv2.imread(str(sample.image))
        window = crop_windows(sample.box[None], frame.shape)
        expected = crop_boxes(frame, window, SIZE)[0].permute(1, 2, 0).numpy()[..., ::-1]
        cached = cv2.imread(str(record.path)).astype(np.float32)
        assert np.abs(cached - expected).mean() < 3.0  # JPEG quality 95
        x0, y0, x1, y1 = window[0]
        joints = sample.keypoints[:, :2]
        scale = np.array([SIZE[1] / (x1 - x0), SIZE[0] / (y1 - y0)])
        np.testing.assert_allclose(
            record.keypoints[:, :2], (joints - [x0, y0]) * scale, rtol=1e-5, atol=1e-3
        )


@pytest.mark.parametrize("shape", [(480, 640, 3), (1080, 1920)])
def test_windows_of_boxes_wholly_outside_are_one_pixel_strips(shape):
    boxes = np.array([[-100, -100, -50, -20], [5000, 10, 6000, 50]], np.float32)
    windows = crop_windows(boxes, shape)
    np.testing.assert_array_equal(windows[:, 2:] - windows[:, :2] >= 1, True)
    assert windows[1, 0] == shape[1] - 1 and windows[1, 2] == shape[1]
