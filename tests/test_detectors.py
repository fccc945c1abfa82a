"""Detection stage on real data: YOLO-pose, YOLOX, top-down pose and MOT file readers.

PETS09 frame 100 (1-based; video index 99) has 6 ground-truth people.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from conftest import PETS09, mot_gt_boxes, read_video_frame, shared_path
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou

from kpr_track.detectors import build_detector
from kpr_track.detectors.base import check_frame
from kpr_track.detectors.files import MotFileDetector, causal_score_rank
from kpr_track.detectors.yolox import letterbox
from kpr_track.errors import ConfigError, InputError, WeightsError

FRAME_ID = 100
MOT17_MINI = ("data", "MOT17-mini", "train")


def count_matches(gt: np.ndarray, found: np.ndarray) -> int:
    """One-to-one matches with IoU >= 0.5."""
    iou = box_iou(torch.from_numpy(gt), torch.from_numpy(found)).numpy()
    rows, cols = linear_sum_assignment(-iou)
    return int((iou[rows, cols] >= 0.5).sum())


def inside(keypoints: np.ndarray, box: np.ndarray, margin: float) -> bool:
    """All keypoints `(J, 2)` lie in ``box`` grown by ``margin`` pixels."""
    low, high = box[:2] - margin, box[2:] + margin
    return bool(((keypoints >= low) & (keypoints <= high)).all())


@pytest.fixture(scope="module")
def pets_frame(pets_video, pets_gt):
    _, gt = mot_gt_boxes(pets_gt, FRAME_ID)
    return read_video_frame(pets_video, FRAME_ID - 1), gt


@pytest.fixture(scope="module")
def yolox():
    weights = shared_path("weights", "yolox_nano_416x416.onnx")
    return build_detector(f"yolox:{weights}")


def test_yolo_pose_finds_pets_people_with_keypoints_in_boxes(pose_detector, pets_frame):
    frame, gt = pets_frame
    found = pose_detector.detect(frame, FRAME_ID)
    assert len(gt) == 6
    assert count_matches(gt, found.boxes) >= 4  # measured 5 of 6 at imgsz 960, conf 0.05
    assert found.boxes.dtype == np.float32 and found.keypoints.shape == (len(found), 17, 3)
    for box, keypoints in zip(found.boxes, found.keypoints, strict=True):
        confident = keypoints[keypoints[:, 2] > 0.5, :2]
        assert len(confident) >= 5
        assert inside(confident, box, margin=2)


def test_yolox_finds_pets_people(yolox, pets_frame):
    frame, gt = pets_frame
    found = yolox.detect(frame, FRAME_ID)
    assert count_matches(gt, found.boxes) >= 4  # measured 5 of 6 at conf 0.1
    assert (found.scores >= 0.1).all() and (found.keypoints == 0).all()
    assert (found.boxes[:, 2:] <= [frame.shape[1], frame.shape[0]]).all()


def test_top_down_pose_on_gt_boxes(pose_detector, pets_frame):
    frame, gt = pets_frame
    keypoints = pose_detector.pose_on_boxes(frame, gt)
    assert keypoints.shape == (len(gt), 17, 3) and keypoints.dtype == np.float32
    confident = keypoints[:, :, 2] > 0.5
    assert (confident.sum(axis=1) >= 5).sum() >= 5  # measured: all 6 boxes, 9 to 17 each
    for box, points, mask in zip(gt, keypoints, confident, strict=True):
        assert inside(points[mask, :2], box, margin=5)


def test_top_down_pose_gives_zeros_where_nobody_is(pose_detector, pets_frame):
    frame, _ = pets_frame
    grass = np.array([[0, 480, 60, 570], [700, 0, 760, 60]], np.float32)
    assert (pose_detector.pose_on_boxes(frame, grass) == 0).all()
    assert pose_detector.pose_on_boxes(frame, np.zeros((0, 4))).shape == (0, 17, 3)


def test_yolox_decoding_formula(yolox):
    """One anchor at grid cell (x=3, y=2) of stride 8: xy = (out + grid) * 8, wh = exp(out) * 8."""
    raw = np.zeros((len(yolox._grid), 85), np.float32)
    anchor = 2 * (416 // 8) + 3
    raw[anchor, :4] = [0.5, 0.5, np.log(4), np.log(8)]
    raw[anchor, 4:6] = [0.9, 0.8]
    boxes, scores = yolox._decode(raw, ratio=0.5, width=1000, height=1000)
    # centre (28, 20), size (32, 64) in input pixels -> (12, -12, 44, 52) / 0.5, clipped
    np.testing.assert_allclose(boxes, [[24, 0, 88, 104]], atol=1e-4)
    np.testing.assert_allclose(scores, [0.72], atol=1e-6)


def test_letterbox_keeps_aspect_and_pads_with_114():
    frame = np.full((576, 768, 3), 7, np.uint8)
    image, ratio = letterbox(frame, (416, 416))
    assert image.shape == (3, 416, 416) and image.dtype == np.float32
    assert ratio == pytest.approx(416 / 768)
    assert (image[:, :312] == 7).all() and (image[:, 312:] == 114).all()


@pytest.mark.parametrize(
    ("parts", "frame_id", "expected"),
    [
        ((*PETS09, "det", "det.txt"), 100, 9),
        ((*MOT17_MINI, "MOT17-02-FRCNN", "det", "det.txt"), 1, 13),
        ((*MOT17_MINI, "MOT17-04-FRCNN", "det", "det.txt"), 1, 26),
    ],
)
def test_det_file_box_counts(parts, frame_id, expected):
    found = MotFileDetector(shared_path(*parts)).detect(None, frame_id)
    assert len(found) == expected
    assert (found.boxes[:, 2:] > found.boxes[:, :2]).all()
    assert ((found.scores >= 0) & (found.scores <= 1)).all()


def test_det_file_ltwh_to_xyxy_and_causal_scores():
    detector = MotFileDetector(shared_path(*PETS09, "det", "det.txt"))
    found = detector.detect(None, 1)
    # first line: 1,-1,500,158,30.979,70.299,93.673,...; raw scores span [-0.48, 138.92]
    np.testing.assert_allclose(found.boxes[0], [500, 158, 530.979, 228.299], rtol=1e-6)
    rows = np.loadtxt(shared_path(*PETS09, "det", "det.txt"), delimiter=",")
    first = rows[rows[:, 0] == 1, 6]
    # Frame 1 is ranked among frame 1 only: later frames (and the 138.9 outlier) do not count.
    expected = (first[:, None] >= first[None, :]).sum(axis=1) / len(first)
    np.testing.assert_allclose(found.scores, expected, rtol=1e-6)
    assert detector.frame_ids[0] == 1 and detector.frame_ids[-1] == 795
    assert len(detector.detect(None, 10_000)) == 0


def test_a_flag_score_column_keeps_every_detection(caplog):
    # MOT20's public det.txt: column 7 is 0 or 1 (8243 zeros, 4367 ones), not a confidence
    path = shared_path("data", "MOT20-01", "det", "det.txt")
    with caplog.at_level(logging.WARNING, logger="kpr_track"):
        detector = MotFileDetector(path)
    assert "column 7 holds only [0.0, 1.0]" in caplog.text and str(path) in caplog.text
    scores = np.concatenate([detector.detect(None, f).scores for f in detector.frame_ids])
    assert len(scores) == 12610 and (scores == 1.0).all()


@pytest.mark.parametrize(
    ("column", "expected"),
    [((0.3, 0.3, 0.3), (1.0, 1.0, 1.0)), ((0.2, 0.7, 0.2), (0.2, 0.7, 0.2))],
)
def test_constant_scores_are_a_flag_two_confidences_are_kept(tmp_path, column, expected):
    path = tmp_path / "det.txt"
    path.write_text("".join(f"1,-1,{10 * i},5,8,20,{c}\n" for i, c in enumerate(column)))
    np.testing.assert_allclose(MotFileDetector(path).detect(None, 1).scores, expected)


def test_causal_score_rank_ignores_the_future_and_keeps_order():
    frames = np.array([1, 1, 1, 2, 2])
    raw = np.array([3.0, -1.0, 10.0, 500.0, 2.0])
    mapped = causal_score_rank(frames, raw)
    assert mapped[:3].tolist() == pytest.approx([2 / 3, 1 / 3, 1.0])
    assert mapped[3:].tolist() == pytest.approx([1.0, 2 / 5])
    # An outlier in a later frame leaves earlier frames untouched (min-max would not).
    outlier = causal_score_rank(np.r_[frames, 3], np.r_[raw, 1e6])
    assert outlier[:5].tolist() == pytest.approx(mapped.tolist())
    assert ((mapped > 0) & (mapped <= 1)).all()


def test_gt_file_filters():
    # MOT17 (9 columns): frame 1 has 39 rows, 22 with consider flag 1 and class 1.
    mot17 = MotFileDetector(shared_path(*MOT17_MINI, "MOT17-02-FRCNN", "gt", "gt.txt"), kind="gt")
    assert len(mot17.detect(None, 1)) == 22
    # MOT15 (10 columns, world coordinates in columns 8-10): no class filter.
    pets = MotFileDetector(shared_path(*PETS09, "gt", "gt.txt"), kind="gt")
    assert len(pets.detect(None, 1)) == 3 and (pets.detect(None, 1).scores == 1).all()


def test_file_detector_uses_pose_callable():
    calls = []

    def pose(frame, boxes):
        calls.append(len(boxes))
        return np.ones((len(boxes), 17, 3), np.float32)

    detector = MotFileDetector(shared_path(*PETS09, "det", "det.txt"), pose=pose)
    assert (detector.detect(np.zeros((4, 4, 3), np.uint8), 100).keypoints == 1).all()
    assert calls == [9]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1,-1,5,5,10,10,0.9\n1,-1,5,5,10\n", r"bad\.txt:2: expected at least 6"),
        ("1,-1,5,5,10,10,0.9\n\n2,-1,5,x,10,10,0.9\n", r"bad\.txt:3: non-numeric"),
        ("1,-1,5,5,10,10,0.9\n2,-1,5,5,10,10\n", r"bad\.txt:2: expected 7 columns"),
        ("1.5,-1,5,5,10,10\n", r"bad\.txt:1: frame must be an integer"),
        ("1,-1,5,5,0,10\n", r"bad\.txt:1: width and height must be > 0"),
        ("1,-1,5,nan,3,10\n", r"bad\.txt:1: NaN"),
    ],
)
def test_malformed_file_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        MotFileDetector(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        build_detector(f"mot:{tmp_path / 'none.txt'}")


@pytest.mark.parametrize("spec", ["yolo", "ssd:model.onnx", ""])
def test_unknown_spec_lists_valid_forms(spec):
    with pytest.raises(ConfigError, match="unknown detector.*yolo-pose.*mot:PATH/det.txt"):
        build_detector(spec)


@pytest.mark.parametrize("spec", ["mot", "gt:"])
def test_file_spec_without_path(spec):
    with pytest.raises(ConfigError, match="needs a file"):
        build_detector(spec)


def test_unknown_option_is_a_config_error():
    with pytest.raises(ConfigError, match="does not take option.*imgsz.*it takes: pose"):
        build_detector(f"mot:{shared_path(*PETS09, 'det', 'det.txt')}", imgsz=960)


@pytest.mark.parametrize(
    "frame", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32), "frame.jpg"]
)
def test_check_frame_rejects_non_images(frame):
    with pytest.raises(InputError, match="frame"):
        check_frame(frame)


@pytest.mark.parametrize(("spec", "suffix"), [("yolo-pose", ".pt"), ("yolox", ".onnx")])
def test_unloadable_weights_file_is_a_weights_error(tmp_path, spec, suffix):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"this is not a model")
    with pytest.raises(WeightsError, match=r"broken.*not loadable"):
        build_detector(f"{spec}:{path}")


def test_yolox_tiles_a_frame_when_imgsz_exceeds_its_input(pets_frame):
    """--imgsz acts for yolox: above its fixed 416 input the frame is scaled and tiled, so
    the small people of a real frame stay found, in frame pixels, and conf filters them."""
    frame, gt = pets_frame
    weights = shared_path("weights", "yolox_nano_416x416.onnx")
    tiled = build_detector(f"yolox:{weights}", imgsz=960, conf=0.3).detect(frame, FRAME_ID)
    assert count_matches(gt, tiled.boxes) >= 4
    assert (tiled.scores >= 0.3).all()
    assert (tiled.boxes[:, 2:] <= [frame.shape[1], frame.shape[0]]).all()
    assert (tiled.boxes[:, :2] >= 0).all()


def test_tiles_cover_the_image_with_overlap():
    from kpr_track.detectors.yolox import TILE_OVERLAP, _tile_origins

    origins = _tile_origins((720, 960), (416, 416))
    ys, xs = sorted({y for y, _ in origins}), sorted({x for _, x in origins})
    assert ys[0] == xs[0] == 0 and ys[-1] + 416 == 720 and xs[-1] + 416 == 960
    assert all(b - a <= 416 * (1 - TILE_OVERLAP) for a, b in zip(xs, xs[1:], strict=False))
    assert _tile_origins((300, 400), (416, 416)) == [(0, 0)]


@pytest.mark.parametrize(
    ("spec", "size", "expected"),
    [
        ("yolo-pose", (768, 576), 960),  # PETS09: enlarged to where the nano model finds people
        ("yolo-pose", (960, 540), 960),
        ("yolo-pose", (1920, 1080), 1920),  # MOT20: small people not halved away
        ("yolo-pose", (1000, 700), 1024),  # rounded up to a multiple of 32
        ("yolo-pose", (3840, 2160), 1920),  # capped
        ("yolox", (1920, 1080), None),  # its own input, no tiling by default
        ("mot:det.txt", (1920, 1080), None),
    ],
)
def test_default_imgsz_follows_the_source(spec, size, expected):
    from kpr_track.detectors.base import default_imgsz

    assert default_imgsz(spec, *size) == expected
