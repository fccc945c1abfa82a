"""The half-resolution prompt stem: weights files with the earlier 3x3 stride-2 stem on
crop-resolution prompts load converted, and embed real people as that stem did."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from kpr_track.errors import WeightsError
from kpr_track.prompts import render_prompts
from kpr_track.reid import build_reid
from kpr_track.reid.crops import crop_windows
from kpr_track.reid.model import half_resolution_stem, load_kpr_weights
from kpr_track.weights import resolve_weights


def test_converted_stem_embeds_real_people_as_the_crop_resolution_stem(pets_crossing, monkeypatch):
    """PETS09 frame 31 (two people overlapping: positive and negative prompts): the
    shipped ``kpr`` file holds a 3x3 stride-2 stem; run as such on crop-resolution
    prompts, and converted on half-resolution ones, its embeddings agree to 0.005
    (measured 0.0018; the int8 export moves them by 0.08), its visibility is the same."""
    frame, dets = pets_crossing
    path = resolve_weights("kpr-osnet-0287-mot3")
    with safe_open(str(path), framework="pt") as handle:
        crop_stem = handle.get_tensor("prompt_stem.weight").float()
    assert crop_stem.shape[-2:] == (3, 3)
    stage = build_reid("kpr", backend="torch")
    model = stage.model
    assert model.prompt_stem.weight.shape[-2:] == (1, 1)
    crops, prompts = stage.inputs(frame, dets)
    assert prompts.shape[-2:] == (128, 64) and prompts[:, 1].amax() > 0.9  # negatives drawn
    full = render_prompts(
        dets.boxes,
        dets.keypoints,
        (256, 128),
        scores=dets.scores,
        windows=crop_windows(dets.boxes, frame.shape),
    )
    with torch.inference_mode():
        converted = model(crops, prompts)
        stem = model.trunk.stem(crops) + F.conv2d(full, crop_stem, stride=2, padding=1)
        feature_map = model.trunk.body(stem)
        monkeypatch.setattr(model, "features", lambda images, prompts: feature_map)
        original = model(crops, prompts)
    difference = (converted.embeddings - original.embeddings).abs().max().item()
    assert 0 < difference < 5e-3
    assert torch.equal(converted.visibility, original.visibility)


def test_a_3x3_stem_becomes_its_sum_over_the_taps():
    weight = torch.arange(2 * 10 * 9, dtype=torch.float32).reshape(2, 10, 3, 3)
    summed = half_resolution_stem(weight)
    assert summed.shape == (2, 10, 1, 1)
    assert summed[1, 3, 0, 0] == weight[1, 3].sum()
    assert half_resolution_stem(summed) is summed


def test_a_weights_file_with_another_stem_is_refused_by_name(tmp_path):
    source = resolve_weights("kpr-osnet-0287-mot3")
    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
    state = load_file(str(source))
    state["prompt_stem.weight"] = torch.zeros(32, 10, 5, 5, dtype=torch.float16)
    broken = tmp_path / "stem5x5.safetensors"
    save_file(state, str(broken), metadata=metadata)
    with pytest.raises(WeightsError, match=r"stem5x5.safetensors.*1x1 or 3x3"):
        load_kpr_weights(broken)
