"""Training batches: augmentation, prompts and parsing labels for P x K crops.

Per sample, in this order (KPR / BPBReID training recipe, DESIGN.md §3):

1. horizontal flip with probability ``flip`` (left / right keypoints swapped);
2. random crop with zero padding ``pad`` px (the crop keeps its size);
3. BIPO, with probability ``bipo``: another identity of the batch is pasted over the
   lower part of the crop (its upper body, at the same scale, from a random height in
   [0.4, 0.7] H with a random horizontal shift in [-0.3, 0.3] W, like a person walking
   in front); the target keypoints and negatives under the pasted rectangle become
   invisible and the occluder's keypoints join the negative prompt;
4. prompt dropout, with probability ``prompt_dropout``: the "no prompt" tensor;
5. ImageNet normalisation, then random erasing with probability ``erasing``
   (Zhong et al., AAAI 2020; erased pixels set to the mean).

Parsing labels (:mod:`kpr_track.train.parsing`) come from the final target keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import torch

from ..errors import InputError
from ..prompts import empty_prompts, render_prompts
from ..reid.crops import normalise_rgb255
from .crop_cache import CropRecord
from .parsing import parsing_labels

# COCO-17 index of each keypoint's mirror image (left <-> right).
FLIP_PERMUTATION = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])


@dataclass(frozen=True)
class AugmentOptions:
    """Probabilities and sizes of the augmentations (module docstring)."""

    flip: float = 0.5
    pad: int = 10
    erasing: float = 0.5
    bipo: float = 0.2
    prompt_dropout: float = 0.2
    negatives: bool = True


class Batch(NamedTuple):
    """A training batch of ``B`` crops.

    Attributes:
        images: `(B, 3, H, W)` float32 ImageNet-normalised RGB.
        prompts: `(B, K + 2, H', W')` float32 prompt tensors (the model's prompt size).
        parsing: `(B, h, w)` int64 part labels (0 = background).
        labels: `(B,)` int64 identity class indices.
    """

    images: torch.Tensor
    prompts: torch.Tensor
    parsing: torch.Tensor
    labels: torch.Tensor


def read_crop(record: CropRecord) -> np.ndarray:
    """The cached crop as `(H, W, 3)` RGB uint8.

    Raises:
        InputError: if the JPEG is missing or unreadable.
    """
    image = cv2.imread(str(record.path))
    if image is None:
        raise InputError(f"{record.path}: cached crop missing or unreadable; delete the cache")
    return np.ascontiguousarray(image[..., ::-1])


def sample_prompts(
    keypoints: np.ndarray,
    negatives: np.ndarray,
    size: tuple[int, int],
    num_parts: int,
    prompt_size: tuple[int, int],
) -> torch.Tensor:
    """Prompt tensor of one crop from keypoints already in crop pixels.

    Args:
        keypoints: `(17, 3)` target keypoints in crop pixels.
        negatives: `(M, 17, 3)` other people's keypoints in crop pixels.
        size: crop ``(H, W)``.
        num_parts: K.
        prompt_size: ``(H', W')`` of the prompt tensor (the model's
            :meth:`~kpr_track.reid.model.KPRModel.prompt_size`), covering the whole crop.

    Returns:
        `(K + 2, H', W')` float32: :func:`kpr_track.prompts.render_prompts` with the crop
        as the target box and each negative person as another detection.
    """
    height, width = size
    people = np.concatenate([keypoints[None], negatives.reshape(-1, 17, 3)])
    boxes = np.tile(np.array([[0, 0, width, height]], np.float32), (len(people), 1))
    # Every "detection" is the crop box, so none is told apart as a duplicate by IoU:
    # the listed negatives are other people by construction.
    return render_prompts(boxes, people, prompt_size, num_parts, duplicate_iou=1.0, targets=[0])[0]


def make_batch(
    records: list[CropRecord],
    labels: list[int],
    options: AugmentOptions,
    rng: np.random.Generator,
    *,
    num_parts: int,
    feature_size: tuple[int, int],
    prompt_size: tuple[int, int],
) -> Batch:
    """Augment, prompt and label a batch (see the module docstring).

    Args:
        records: the batch's cached crops (all of one size ``H x W``).
        labels: `(B,)` identity class indices.
        options: augmentation settings.
        rng: random generator (its state is part of a training checkpoint).
        num_parts: K.
        feature_size: feature map ``(h, w)`` of the model for the parsing labels.
        prompt_size: the model's prompt tensor ``(H', W')``.
    """
    images = [read_crop(r) for r in records]
    size = images[0].shape[:2]
    keypoints = [r.keypoints.copy() for r in records]
    negatives = [r.negatives.copy() for r in records]
    for i in range(len(records)):
        images[i], keypoints[i], negatives[i] = _flip_and_shift(
            images[i], keypoints[i], negatives[i], options, rng
        )
    originals = [(im.copy(), kp.copy()) for im, kp in zip(images, keypoints, strict=True)]
    for i in range(len(records)):
        others = [j for j in range(len(records)) if labels[j] != labels[i]]
        if others and rng.random() < options.bipo:
            occluder = originals[int(rng.choice(others))]
            images[i], keypoints[i], negatives[i] = _paste_occluder(
                images[i], keypoints[i], negatives[i], occluder, rng
            )
    prompts = []
    for i in range(len(records)):
        if rng.random() < options.prompt_dropout:
            prompts.append(empty_prompts(1, prompt_size, num_parts)[0])
        else:
            negative = negatives[i] if options.negatives else np.zeros((0, 17, 3), np.float32)
            prompts.append(sample_prompts(keypoints[i], negative, size, num_parts, prompt_size))
    tensor = normalise_rgb255(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float())
    for image in tensor:
        if rng.random() < options.erasing:
            _erase(image, rng)
    parsing = parsing_labels(torch.from_numpy(np.stack(keypoints)), size, feature_size, num_parts)
    return Batch(tensor, torch.stack(prompts), parsing, torch.as_tensor(labels, dtype=torch.int64))


def _flip_and_shift(image, keypoints, negatives, options, rng):
    """Horizontal flip and random crop with zero padding; keypoints follow."""
    height, width = image.shape[:2]
    if rng.random() < options.flip:
        image = image[:, ::-1]
        keypoints = keypoints[FLIP_PERMUTATION]
        negatives = negatives[:, FLIP_PERMUTATION]
        keypoints[:, 0] = width - keypoints[:, 0]
        negatives[..., 0] = width - negatives[..., 0]
    pad = options.pad
    if pad > 0:
        padded = np.zeros((height + 2 * pad, width + 2 * pad, 3), np.uint8)
        padded[pad : pad + height, pad : pad + width] = image
        dx, dy = (int(v) for v in rng.integers(0, 2 * pad + 1, size=2))
        image = padded[dy : dy + height, dx : dx + width]
        shift = np.array([pad - dx, pad - dy], np.float32)
        keypoints[:, :2] += shift
        negatives[..., :2] += shift
    return np.ascontiguousarray(image), keypoints, negatives


def _paste_occluder(image, keypoints, negatives, occluder, rng):
    """BIPO: paste the occluder's upper body over the lower part of the crop."""
    height, width = image.shape[:2]
    source, source_keypoints = occluder
    top = int(rng.uniform(0.4, 0.7) * height)
    left = int(rng.uniform(-0.3, 0.3) * width)
    x0, x1 = max(left, 0), min(left + width, width)
    image = image.copy()
    image[top:, x0:x1] = source[: height - top, x0 - left : x1 - left]

    def covered(points: np.ndarray) -> np.ndarray:
        x, y = points[..., 0], points[..., 1]
        return (y >= top) & (x >= x0) & (x < x1)

    keypoints = keypoints.copy()
    keypoints[covered(keypoints), 2] = 0.0
    negatives = negatives.copy()
    negatives[covered(negatives), 2] = 0.0
    pasted = source_keypoints.copy()
    pasted[:, 0] += left
    pasted[:, 1] += top
    pasted[~covered(pasted), 2] = 0.0  # only the part that was pasted is visible
    return image, keypoints, np.concatenate([negatives, pasted[None]])


def _erase(image: torch.Tensor, rng: np.random.Generator) -> None:
    """Random erasing in place: a rectangle of area 2-33 % and aspect 0.3-3.3 set to 0
    (the ImageNet mean after normalisation), Zhong et al. AAAI 2020 defaults."""
    height, width = image.shape[-2:]
    for _ in range(10):
        area = rng.uniform(0.02, 0.33) * height * width
        aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
        h, w = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
        if 0 < h < height and 0 < w < width:
            y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            image[:, y : y + h, x : x + w] = 0.0
            return
