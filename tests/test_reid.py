"""The KPR appearance module: every variant on small tensors, and real PETS09 crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kpr_track.errors import ConfigError, InputError, WeightsError
from kpr_track.prompts import empty_prompts, render_prompts
from kpr_track.reid import build_reid
from kpr_track.reid.appearance import KPRAppearance
from kpr_track.reid.model import KPRModel
from kpr_track.reid.trunk import build_mobilenet_v2, load_mobilenet_v2_weights

TRUNK_DIMS = {  # trunk: (F map channels, G head embedding)
    "osnet-retail-0287": (256, 256),
    "osnet-retail-0288": (128, 256),
    "mobilenetv2-imagenet": (1280, 1280),
}


@pytest.mark.parametrize("trunk", sorted(TRUNK_DIMS))
@pytest.mark.parametrize("attention", ["learned", "pose"])
@pytest.mark.parametrize(("num_parts", "trained"), [(8, False), (5, True)])
def test_every_variant_on_small_tensors(trunk, attention, num_parts, trained):
    torch.manual_seed(0)
    channels, head = TRUNK_DIMS[trunk]
    embed_dim = head if trained else None
    dim = embed_dim or channels
    model = KPRModel(num_parts, attention, embed_dim, pretrained=False, trunk=trunk).eval()
    boxes = np.array([[0, 0, 64, 128], [16, 0, 80, 128]], np.float32)
    keypoints = np.zeros((2, 17, 3), np.float32)
    keypoints[:, :, :2] = np.linspace((20, 10), (40, 120), 17)
    keypoints[:, :, 2] = 0.9
    prompts = render_prompts(boxes, keypoints, model.prompt_size((256, 128)), num_parts)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 256, 128), prompts)
    assert out.embeddings.shape == (2, 1 + num_parts, dim)
    assert out.visibility.shape == (2, 1 + num_parts)
    assert out.part_maps.shape == (2, 1 + num_parts, 16, 8)
    assert out.global_embedding.shape == (2, head)
    assert torch.allclose(out.embeddings.norm(dim=-1), torch.ones(2, 1 + num_parts), atol=1e-4)
    assert set(out.visibility.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out.visibility[:, 0], torch.ones(2))  # the holistic slot
    if dim == head:
        assert torch.equal(out.embeddings[:, 0], out.global_embedding)


def test_unknown_attention_is_a_config_error():
    with pytest.raises(ConfigError, match="attention"):
        KPRModel(attention="fixed", pretrained=False)
    with pytest.raises(ConfigError, match="--reid"):
        build_reid("osnet")
    with pytest.raises(ConfigError, match="trunk"):
        KPRModel(trunk="resnet50", pretrained=False)


@pytest.mark.parametrize("trunk", sorted(TRUNK_DIMS))
def test_prompt_injection_starts_as_identity(trunk):
    """The zero-initialised prompt convolution leaves the pretrained trunk unchanged."""
    model = KPRModel(pretrained=False, trunk=trunk).eval()
    images = torch.randn(1, 3, 256, 128)
    prompts = torch.rand(1, 10, 128, 64)
    with torch.no_grad():
        plain = model.trunk.features(images)
        assert torch.allclose(model.features(images, prompts), plain, atol=1e-6)
        no_prompt = empty_prompts(1, (128, 64))
        assert torch.allclose(model.features(images, no_prompt), plain, atol=1e-6)
    with pytest.raises(InputError, match=r"expected \(128, 64\)"):
        model.features(images, torch.rand(1, 10, 256, 128))


def test_imagenet_weights_are_loaded(tmp_path):
    """The ImageNet MobileNetV2 trunk (``--reid pose-guided-imagenet``) still loads."""
    pretrained = build_mobilenet_v2(pretrained=True)
    random = build_mobilenet_v2(pretrained=False)
    assert not torch.allclose(pretrained[0][0].weight, random[0][0].weight)
    assert pretrained[14].conv[1][0].stride == (1, 1)
    bad = tmp_path / "bad.pt"
    torch.save({"features.0.0.weight": torch.zeros(3, 3, 3, 3)}, bad)
    with pytest.raises(WeightsError, match="bad.pt"):
        load_mobilenet_v2_weights(random, bad)


@pytest.fixture(scope="module")
def pose_guided_model():
    return KPRModel(attention="pose", trunk="osnet-retail-0287")


def test_batched_and_one_by_one_embeddings_agree(pets_crossing, pose_guided_model):
    frame, dets = pets_crossing
    batched = KPRAppearance(pose_guided_model, batch_size=32)(frame, dets)
    single = KPRAppearance(pose_guided_model, batch_size=1)(frame, dets)
    np.testing.assert_allclose(batched.embeddings, single.embeddings, atol=1e-4)
    np.testing.assert_array_equal(batched.visibility, single.visibility)


def test_negative_prompt_changes_the_embedding(pets_crossing, pose_guided_model):
    """In frame 31 two people overlap: the crop that holds the other person's keypoints
    is embedded differently with negative prompts; crops without any are unchanged."""
    frame, dets = pets_crossing
    with_neg = KPRAppearance(pose_guided_model, negatives=True)(frame, dets)
    without = KPRAppearance(pose_guided_model, negatives=False)(frame, dets)
    prompts = render_prompts(dets.boxes, dets.keypoints)
    has_negative = prompts[:, 1].amax(dim=(1, 2)).numpy() > 0.5
    assert has_negative.any() and not has_negative.all()
    change = np.abs(with_neg.embeddings - without.embeddings).max(axis=(1, 2))
    assert (change[has_negative] > 1e-2).all()
    assert (change[~has_negative] < 1e-6).all()


def test_negatives_never_erase_the_targets_own_keypoint_cells():
    """Pose-guided maps: a negative keypoint on top of the target's own keypoint leaves
    that cell and the part's visibility intact; where only the negative lies, the
    dilated spill-over of the target's part is removed."""
    from kpr_track.reid.model import pose_guided_maps

    boxes = np.array([[0, 0, 128, 256], [40, 0, 168, 256]], np.float32)  # IoU 0.52
    keypoints = np.zeros((2, 17, 3), np.float32)
    keypoints[0, 0] = (64, 24, 0.9)  # target's nose: head part, cell (1, 4)
    keypoints[1, 0] = (64, 24, 0.9)  # another person's nose on the same spot
    keypoints[1, 5] = (80, 40, 0.9)  # another person's shoulder one cell down-right
    prompts = render_prompts(boxes, keypoints, (256, 128))
    maps, visible = pose_guided_maps(prompts[:1], (16, 8))
    alone, _ = pose_guided_maps(render_prompts(boxes[:1], keypoints[:1], (256, 128)), (16, 8))
    assert visible[0, 0] == 1.0  # head stays visible
    assert maps[0, 0, 1, 4] > 0.9  # its own cell is kept
    assert alone[0, 0, 2, 5] > 0.9  # the dilated spill-over onto the other's shoulder cell
    assert maps[0, 0, 2, 5] < 0.5 * alone[0, 0, 2, 5]  # ... is down-weighted


def test_pose_guided_visibility_follows_keypoints(pets_crossing, pose_guided_model):
    frame, dets = pets_crossing
    out = KPRAppearance(pose_guided_model)(frame, dets)
    assert out.embeddings.shape == (len(dets), 9, 256)
    # Nobody's keypoints: every part invisible, only the holistic slot is left.
    blind = dets.__class__(dets.boxes, dets.scores, np.zeros_like(dets.keypoints))
    out_blind = KPRAppearance(pose_guided_model)(frame, blind)
    assert out_blind.visibility[:, 1:].max() == 0.0 and np.isfinite(out_blind.embeddings).all()
    assert (out_blind.visibility[:, 0] == 1.0).all()
    # Every person of this frame is seen whole by top-down pose: torso (part 4) visible.
    assert out.visibility[:, 4].mean() >= 0.8


def test_same_person_is_closer_than_other_people(
    pets_video, pets_gt, pose_detector, pose_guided_model
):
    """Pose-guided parts on the retail-0287 trunk re-identify people 10-20 frames apart
    (rank-1 over gt boxes; chance is about 1/6). Measured: 16 of 20."""
    from conftest import mot_gt_boxes, read_video_frame

    from kpr_track.detections import Detections
    from kpr_track.reid.distance import part_distance

    def embed(frame_id):
        frame = read_video_frame(pets_video, frame_id - 1)
        ids, boxes = mot_gt_boxes(pets_gt, frame_id)
        kps = pose_detector.pose_on_boxes(frame, boxes)
        dets = Detections(boxes, np.ones(len(ids)), kps)
        return list(ids), KPRAppearance(pose_guided_model)(frame, dets)

    correct = total = 0
    for first, second in [(31, 41), (100, 115), (200, 215), (300, 320)]:
        (ids_a, a), (ids_b, b) = embed(first), embed(second)
        dist, _ = part_distance(a.embeddings, a.visibility, b.embeddings, b.visibility)
        for i in set(ids_a) & set(ids_b):
            correct += ids_b[int(dist[ids_a.index(i)].argmin())] == i
            total += 1
    print(f"rank-1 {correct}/{total}")
    assert total >= 15 and correct / total >= 0.75
