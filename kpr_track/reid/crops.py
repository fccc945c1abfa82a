"""Batched person crops: every detection of a frame cropped and resized in one operation.

The crops are RoIAlign's (He et al., "Mask R-CNN", ICCV 2017; ``aligned=True`` and two
samples per bin and axis, as ``torchvision.ops.roi_align(..., sampling_ratio=2,
aligned=True)``), computed as two batched matrix products instead of torchvision's
per-pixel CPU loop (about 10 x faster on 256 x 128 crops): RoIAlign's bilinear sampling
on a regular grid is separable, ``crop[c] = A_y @ frame[c] @ A_x^T``, where row ``o`` of
``A_y`` holds the mean of the bilinear weights of the two samples of output row ``o``.
Each box reads only its own window of the frame (every window padded to the largest
of the frame), so the products cost a few million multiply-adds per crop.

The crop *window* of a detection is its box clipped to the frame (:func:`crop_windows`),
stretched to the model input: the geometry the Open Model Zoo ReID trunks were trained
on. Sampling the whole box with black outside the frame cost 2.3 mAP / 5.9 rank-1 on
occluded queries of a held-out street scene (DESIGN.md §3). Inference
(:class:`~kpr_track.reid.appearance.KPRAppearance`, so :class:`~kpr_track.kpr.KPR` and the
integrations), the training crop cache and the prompts all take their window from
:func:`crop_windows`.
"""

from __future__ import annotations

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SAMPLES = 2  # RoIAlign samples per bin and axis (torchvision's sampling_ratio)


def crop_windows(boxes: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """The crop window of every box: the box clipped to the frame, at least 1 px wide/high.

    The one definition of what a person crop covers (module docstring); prompts are
    rendered in the same window (:func:`kpr_track.prompts.render_prompts` ``windows``).

    Args:
        boxes: `(N, 4)` float xyxy in frame pixels (may extend past the frame).
        frame_shape: the frame's shape ``(H, W, ...)`` in pixels.

    Returns:
        `(N, 4)` float32 xyxy in frame pixels with ``0 <= x0 < x1 <= W`` and
        ``0 <= y0 < y1 <= H``; a box wholly outside the frame becomes the 1 px strip of
        the frame nearest to it.
    """
    height, width = int(frame_shape[0]), int(frame_shape[1])
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    x0 = np.clip(boxes[:, 0], 0.0, width - 1.0)
    y0 = np.clip(boxes[:, 1], 0.0, height - 1.0)
    x1 = np.clip(boxes[:, 2], x0 + 1.0, float(width))
    y1 = np.clip(boxes[:, 3], y0 + 1.0, float(height))
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.float32)


def crop_people(
    frame: np.ndarray,
    boxes: np.ndarray,
    size: tuple[int, int] = (256, 128),
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Crop and resize every window of a frame with bilinear RoIAlign, ImageNet-normalised.

    Equal to ``torchvision.ops.roi_align`` (``sampling_ratio=2, aligned=True``) on the
    frame as RGB in [0, 1], then ``(x - mean) / std``, up to float32 rounding.

    Args:
        frame: `(H, W, 3)` BGR uint8.
        boxes: `(N, 4)` float xyxy in frame pixels, normally :func:`crop_windows` of the
            detections; parts outside the frame read as 0 (as RoIAlign: samples up to
            one pixel outside repeat the border).
        size: output ``(H, W)`` in pixels.
        device: torch device of the output (the windows are cut on it).

    Returns:
        `(N, 3, H, W)` float32 RGB crops normalised with the ImageNet mean / std.
    """
    return normalise_rgb255(crop_boxes(frame, boxes, size, device))


def normalise_rgb255(images: torch.Tensor) -> torch.Tensor:
    """The one input normalisation of every trunk: RGB in [0, 255] -> ImageNet-normalised.

    Args:
        images: `(B, 3, H, W)` float32 RGB pixel values in [0, 255]; changed in place.

    Returns:
        ``images``, now ``(x / 255 - mean) / std`` with the ImageNet mean / std (RGB order).
    """
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    return images.mul_(1.0 / (255.0 * std)).sub_(mean / std)


def crop_boxes(
    frame: np.ndarray,
    boxes: np.ndarray,
    size: tuple[int, int],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """RoIAlign crops of every box of a frame, as RGB pixel values.

    Args:
        frame: `(H, W, 3)` BGR uint8.
        boxes: `(N, 4)` float xyxy in frame pixels (see :func:`crop_people`).
        size: output ``(H, W)`` in pixels.
        device: torch device of the output.

    Returns:
        `(N, 3, H, W)` float32 RGB in [0, 255].
    """
    height, width = size
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    image = torch.from_numpy(np.ascontiguousarray(frame)).to(device)  # (H, W, 3) BGR
    rows, row_weights = (
        torch.from_numpy(a).to(device)
        for a in _axis_weights(boxes[:, 1], boxes[:, 3], height, image.shape[0])
    )
    cols, col_weights = (
        torch.from_numpy(a).to(device)
        for a in _axis_weights(boxes[:, 0], boxes[:, 2], width, image.shape[1])
    )
    windows = image[rows[:, :, None], cols[:, None, :]]  # (N, h, w, 3) uint8 BGR
    windows = windows.flip(-1).permute(0, 3, 1, 2).float()  # (N, 3, h, w) RGB
    return row_weights[:, None] @ windows @ col_weights[:, None].transpose(-1, -2)


def _axis_weights(
    start: np.ndarray, end: np.ndarray, out_size: int, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """RoIAlign's sampling along one axis as a matrix over each box's window.

    Computed in NumPy: a few small arrays per frame, where each torch call would cost
    more in dispatch than in arithmetic (PETS09 frames: 0.08 ms per crop in torch, 0.05 here).

    Args:
        start, end: `(N,)` float32 box edges in frame pixels along this axis.
        out_size: output pixels along this axis.
        limit: frame pixels along this axis.

    Returns:
        ``(index (N, n) int64, weights (N, out_size, n) float32)``: the frame pixels of
        each box's window (``n`` = the largest window of the frame, clamped into the
        frame; pixels past a box's own window get weight 0) and, per output pixel, the
        mean bilinear weight of its samples on them (torchvision's ``bilinear_interpolate``
        rules: samples beyond one pixel outside the frame are 0, others clamp to it).
    """
    count = len(start)
    first, last = (start - 0.5)[:, None, None], (end - 0.5)[:, None, None]
    bins = (last - first) / np.float32(out_size)
    steps = np.arange(out_size, dtype=np.float32)[:, None]
    offsets = np.arange(SAMPLES, dtype=np.float32) + np.float32(0.5)
    samples = first + steps * bins + offsets * bins / np.float32(SAMPLES)  # (N, out, SAMPLES)
    valid = (samples >= -1.0) & (samples <= limit)
    position = np.maximum(samples, np.float32(0.0))
    low = np.minimum(np.floor(position), np.float32(limit - 1))
    frac = np.where(low >= limit - 1, np.float32(0.0), position - low)  # the last pixel: alone
    low = low.astype(np.int64)
    high = np.minimum(low + 1, limit - 1)
    origin = low.min(axis=(1, 2)) if count else np.zeros(0, np.int64)  # (N,) window start
    span = int((high.max(axis=(1, 2)) - origin).max()) + 1 if count else 1
    index = np.minimum(origin[:, None] + np.arange(span), limit - 1)
    scale = valid.astype(np.float32) / np.float32(SAMPLES)
    local = np.concatenate([low, high], axis=-1) - origin[:, None, None]
    values = np.concatenate([(1.0 - frac) * scale, frac * scale], axis=-1)
    cell = np.arange(count * out_size).reshape(count, out_size, 1) * span + local
    weights = np.bincount(cell.ravel(), values.ravel(), minlength=count * out_size * span)
    return index, weights.astype(np.float32).reshape(count, out_size, span)
