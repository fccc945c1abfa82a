"""Batched person crops: every detection of a frame cropped and resized in one operation."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import roi_align

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def frame_to_tensor(frame: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """`(H, W, 3)` BGR uint8 frame -> `(1, 3, H, W)` RGB float32 tensor in [0, 1]."""
    rgb = torch.from_numpy(np.ascontiguousarray(frame[..., ::-1]))
    return rgb.to(device).permute(2, 0, 1)[None].float().div_(255.0)


def crop_people(
    frame: torch.Tensor, boxes: np.ndarray, size: tuple[int, int] = (256, 128)
) -> torch.Tensor:
    """Crop and resize every box of a frame with bilinear RoIAlign, ImageNet-normalised.

    Args:
        frame: `(1, 3, H, W)` RGB float32 in [0, 1] (see :func:`frame_to_tensor`).
        boxes: `(N, 4)` float xyxy in frame pixels; parts outside the frame read as 0.
        size: output ``(H, W)`` in pixels.

    Returns:
        `(N, 3, H, W)` float32 crops normalised with the ImageNet mean / std.
    """
    rois = torch.as_tensor(np.asarray(boxes, np.float32), device=frame.device)
    crops = roi_align(
        frame, [rois], output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True
    )
    mean = torch.tensor(IMAGENET_MEAN, device=frame.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=frame.device).view(1, 3, 1, 1)
    return (crops - mean) / std
