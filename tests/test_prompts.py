"""Prompt rendering on real PETS09 keypoints: channels land where the keypoints are."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kpr_track.errors import InputError
from kpr_track.keypoints import part_assignment
from kpr_track.prompts import (
    BACKGROUND,
    FIRST_PART,
    NEGATIVE,
    empty_prompts,
    keypoints_in_crops,
    render_prompts,
)
from kpr_track.trackers.costs import iou_cost

SIZE = (256, 128)


def _pixel(xy: np.ndarray) -> tuple[int, int]:
    return int(np.floor(xy[1])), int(np.floor(xy[0]))  # (row, col); floor keeps -0.5 outside


@pytest.mark.parametrize("num_parts", [8, 5])
def test_positive_prompts_peak_at_own_keypoints(pets_crossing, num_parts):
    _, dets = pets_crossing
    prompts = render_prompts(dets.boxes, dets.keypoints, SIZE, num_parts).numpy()
    assert prompts.shape == (len(dets), num_parts + 2, *SIZE)
    coords = keypoints_in_crops(dets.boxes, dets.keypoints, SIZE)
    membership = part_assignment(num_parts)
    checked = 0
    for i in range(len(dets)):
        for j in np.flatnonzero(dets.keypoints[i, :, 2] > 0.3):
            row, col = _pixel(coords[i, i, j])
            if not (0 <= row < SIZE[0] and 0 <= col < SIZE[1]):
                continue
            for k in np.flatnonzero(membership[:, j]):
                assert prompts[i, FIRST_PART + k, row, col] > 0.9
            checked += 1
    assert checked >= 5 * len(dets), "top-down pose should give most keypoints of each person"
    # A part map is 0 far from every keypoint of that part (> 4 sigma away).
    sigma = SIZE[1] / 22
    i, k = 0, 0
    members = coords[i, i, membership[k] & (dets.keypoints[i, :, 2] > 0.3)]
    rows, cols = np.mgrid[: SIZE[0], : SIZE[1]]
    far = np.ones(SIZE, bool)
    for x, y in members:
        far &= np.hypot(cols + 0.5 - x, rows + 0.5 - y) > 4 * sigma
    assert prompts[i, FIRST_PART + k][far].max() < 1e-3


def test_negative_prompts_are_the_other_persons_keypoints(pets_crossing):
    _, dets = pets_crossing
    prompts = render_prompts(dets.boxes, dets.keypoints, SIZE).numpy()
    coords = keypoints_in_crops(dets.boxes, dets.keypoints, SIZE)
    found = 0
    for i in range(len(dets)):
        expected = np.zeros(SIZE, bool)
        for j in range(len(dets)):
            if j == i:
                continue
            for xy, conf in zip(coords[i, j], dets.keypoints[j, :, 2], strict=True):
                row, col = _pixel(xy)
                if conf > 0.3 and 0 <= row < SIZE[0] and 0 <= col < SIZE[1]:
                    assert prompts[i, NEGATIVE, row, col] > 0.9
                    expected[row, col] = True
                    found += 1
        if not expected.any():
            assert prompts[i, NEGATIVE].max() == 0.0
    assert found >= 5, "in frame 31 two people overlap: one's keypoints fall in the other's box"
    without = render_prompts(dets.boxes, dets.keypoints, SIZE, negatives=False).numpy()
    assert without[:, NEGATIVE].max() == 0.0
    np.testing.assert_array_equal(without[:, FIRST_PART:], prompts[:, FIRST_PART:])


@pytest.mark.parametrize(
    ("change", "gives_negatives"),
    [
        ("none", True),  # the other person, confident, IoU 0.69 with the target
        ("low_score", False),  # scores below negative_min_score (the tracker ignores it)
        ("duplicate", False),  # a second box of the target itself (IoU > duplicate_iou)
    ],
)
def test_negatives_only_from_confident_other_people(pets_crossing, change, gives_negatives):
    """PETS09 frame 31: add to the real detections one more box and see whether its joints
    become negatives of the target."""
    _, dets = pets_crossing
    iou = 1 - iou_cost(dets.boxes, dets.boxes)
    np.fill_diagonal(iou, 0)
    target, other = np.unravel_index(iou.argmax(), iou.shape)  # the overlapping pair
    extra_box = dets.boxes[other]
    extra_keypoints = dets.keypoints[other]
    score = 0.9
    if change == "low_score":
        score = 0.03
    elif change == "duplicate":  # the target's box shifted by 2 px with its own joints
        extra_box = dets.boxes[target] + 2.0
        extra_keypoints = dets.keypoints[target].copy()
        extra_keypoints[:, :2] += 2.0
    keep = np.arange(len(dets)) != other  # the added box replaces the real other person
    boxes = np.concatenate([dets.boxes[keep], extra_box[None]])
    keypoints = np.concatenate([dets.keypoints[keep], extra_keypoints[None]])
    scores = np.r_[np.ones(keep.sum()), score].astype(np.float32)
    prompts = render_prompts(boxes, keypoints, SIZE, scores=scores, negative_min_score=0.05)
    # Without the extra box: the negatives other neighbours give anyway (a third person's
    # hand may reach into the target's box).
    alone = render_prompts(boxes[:-1], keypoints[:-1], SIZE, scores=scores[:-1])
    row = int(np.flatnonzero(keep).tolist().index(target))
    added = prompts[row, NEGATIVE] - alone[row, NEGATIVE]
    assert (added.max() > 0.9) == gives_negatives


def test_background_is_the_complement(pets_crossing):
    _, dets = pets_crossing
    prompts = render_prompts(dets.boxes, dets.keypoints, SIZE)
    expected = (1 - prompts[:, NEGATIVE:].sum(1)).clamp(0, 1)
    assert np.allclose(prompts[:, BACKGROUND], expected)
    assert prompts.min() >= 0 and prompts.max() <= 1


def test_low_confidence_and_outside_keypoints_are_not_drawn():
    boxes = np.array([[10, 10, 60, 110]], np.float32)
    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, 0] = (35, 20, 0.9)  # nose, inside, confident
    keypoints[0, 5] = (35, 50, 0.2)  # left shoulder, too uncertain
    keypoints[0, 15] = (200, 200, 0.9)  # left ankle, outside the box
    prompts = render_prompts(boxes, keypoints, SIZE).numpy()
    head, left_arm, left_leg = FIRST_PART + 0, FIRST_PART + 1, FIRST_PART + 4
    assert prompts[0, head].max() > 0.99
    assert prompts[0, left_arm].max() == 0.0
    assert prompts[0, left_leg].max() == 0.0


def test_empty_and_no_prompt():
    assert render_prompts(np.zeros((0, 4)), np.zeros((0, 17, 3))).shape == (0, 10, *SIZE)
    none = empty_prompts(2)
    assert none[:, BACKGROUND].min() == 1.0 and none[:, 1:].max() == 0.0


def test_bad_shapes_are_named():
    with pytest.raises(InputError, match=r"keypoints \(N, 17, 3\)"):
        render_prompts(np.zeros((2, 4)), np.zeros((2, 16, 3)))


def _prompts_pixel_by_pixel(boxes, keypoints, num_parts, duplicate_iou=0.7):
    """The module docstring's definition evaluated directly per crop, part and joint
    (float64, one full Gaussian at a time), every detection scoring 1."""
    height, width = SIZE
    sigma = width / 22
    rows, cols = np.mgrid[:height, :width] + 0.5
    iou = 1 - iou_cost(boxes, boxes)
    out = np.zeros((len(boxes), num_parts + 2, height, width))

    def gaussian(x, y):
        return np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma**2))

    for i, (x1, y1, x2, y2) in enumerate(boxes.astype(np.float64)):
        scale = np.array([width / (x2 - x1), height / (y2 - y1)])
        drawn = []  # (person, joint, x, y) inside crop i with confidence > 0.3
        for person, joints in enumerate(keypoints.astype(np.float64)):
            for joint, (x, y, confidence) in enumerate(joints):
                cx, cy = (np.array([x, y]) - (x1, y1)) * scale
                if confidence > 0.3 and 0 <= cx < width and 0 <= cy < height:
                    drawn.append((person, joint, cx, cy))
        for k, members in enumerate(part_assignment(num_parts)):
            for person, joint, cx, cy in drawn:
                if person == i and members[joint]:
                    out[i, FIRST_PART + k] = np.maximum(out[i, FIRST_PART + k], gaussian(cx, cy))
        for person, _, cx, cy in drawn:
            if person != i and iou[i, person] <= duplicate_iou:
                out[i, NEGATIVE] = np.maximum(out[i, NEGATIVE], gaussian(cx, cy))
        out[i, BACKGROUND] = np.clip(1 - out[i, NEGATIVE:].sum(axis=0), 0, 1)
    return out


@pytest.mark.parametrize("num_parts", [8, 5])
def test_batched_rendering_equals_the_definition(pets_crossing, num_parts):
    """The one-operation-per-part rendering gives the prompts of the definition."""
    _, dets = pets_crossing
    prompts = render_prompts(dets.boxes, dets.keypoints, SIZE, num_parts).numpy()
    expected = _prompts_pixel_by_pixel(dets.boxes, dets.keypoints, num_parts)
    assert expected[:, NEGATIVE].max() > 0.9  # the frame has negatives to compare
    np.testing.assert_allclose(prompts, expected, atol=1e-5)  # float32 sums of 9 channels


def test_targets_render_their_rows_with_every_detection_as_negatives(pets_crossing):
    _, dets = pets_crossing
    every = render_prompts(dets.boxes, dets.keypoints, SIZE, scores=dets.scores).numpy()
    targets = np.array([len(dets) - 1, 0])
    chosen = render_prompts(dets.boxes, dets.keypoints, SIZE, scores=dets.scores, targets=targets)
    assert every[targets, NEGATIVE].max() > 0.9  # the chosen rows have negatives to compare
    np.testing.assert_array_equal(chosen.numpy(), every[targets])
    assert render_prompts(dets.boxes, dets.keypoints, SIZE, targets=[]).shape == (0, 10, *SIZE)
    with pytest.raises(InputError, match="targets must index the"):
        render_prompts(dets.boxes, dets.keypoints, SIZE, targets=[len(dets)])


def test_prompts_hold_no_subnormal_floats(pets_crossing):
    """Gaussian tails that would be subnormal floats (50 x slower in the prompt
    convolution on x86) are 0."""
    _, dets = pets_crossing
    prompts = render_prompts(dets.boxes, dets.keypoints, SIZE)
    tiny = torch.finfo(torch.float32).tiny
    assert not ((prompts > 0) & (prompts < tiny)).any()
    assert ((prompts > 0) & (prompts < 1e-6)).any()  # the tails themselves are kept


def test_gaussian_factors_are_the_exact_exponentials_or_zero():
    """Clamping the exponent (for speed) changes no factor: each is exp(-d^2 / 2 sigma^2)
    where that is at least NEGLIGIBLE, and 0 where it is smaller."""
    from kpr_track.prompts import NEGLIGIBLE, _gaussian_factors

    rng = np.random.default_rng(1)
    centres = rng.uniform([-200, -200], [SIZE[1] + 200, SIZE[0] + 200], (64, 2))
    rows, cols = _gaussian_factors(torch.from_numpy(centres.astype(np.float32)), SIZE, 5.0)
    for factors, pixels, axis in ((rows, SIZE[0], 1), (cols, SIZE[1], 0)):
        offsets = np.arange(pixels, dtype=np.float32) + 0.5 - centres[:, axis : axis + 1]
        exact = torch.exp(torch.from_numpy(-(offsets.astype(np.float32) ** 2) / 50.0))
        expected = exact.masked_fill(exact < NEGLIGIBLE, 0.0)
        assert torch.allclose(factors, expected, rtol=1e-4, atol=0.0)  # float32 rounding
        assert (factors == 0).any() and (factors > 0.5).any()


def test_max_of_gaussians_per_owner_in_any_order():
    """The round-by-round drawing of the negative channel equals the max of each owner's
    Gaussians, drawn one at a time, whatever order the owners come in."""
    from kpr_track.prompts import _gaussian_factors, _max_of_gaussians

    rng = np.random.default_rng(0)
    owner = rng.permutation(np.repeat([4, 0, 2], [5, 1, 3]))
    centres = rng.uniform([0, 0], [SIZE[1], SIZE[0]], (len(owner), 2)).astype(np.float32)
    owners, maps = _max_of_gaussians(owner, centres, SIZE, 5.0)
    assert owners.tolist() == [4, 2, 0]  # most Gaussians first
    rows, cols = _gaussian_factors(torch.from_numpy(centres), SIZE, 5.0)
    for who, drawn in zip(owners.tolist(), maps, strict=True):
        mine = np.flatnonzero(owner == who)
        expected = torch.stack([rows[m][:, None] * cols[m][None, :] for m in mine]).amax(0)
        assert torch.equal(drawn, expected)
