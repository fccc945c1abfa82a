"""Human-parsing labels derived from keypoints, the targets of the part attention loss.

KPR / BPBReID train the part attention against human-parsing maps; without a parsing
model we draw them from the keypoints (DESIGN.md §3). Recipe, per crop, at feature-map
size ``h x w``:

1. each part ``k`` (:data:`kpr_track.keypoints.PART_GROUPS`) is drawn as "limbs":
   a segment between every pair of its visible joints, a half segment from each of its
   joints towards every skeleton neighbour outside the part (e.g. knee -> mid-thigh, so
   the thighs are covered), and a dot on each joint;
2. a limb's heat at a cell is ``exp(-d^2 / (2 sigma^2))`` with ``d`` the distance from
   the cell centre to the segment, in crop pixels (``sigma`` defaults to ``W / 10``);
   a part's heat is the max over its limbs;
3. the label of a cell is ``1 + argmax_k heat_k`` (ties to the later part, so a foot
   wins over the leg sharing its ankle) where the largest heat exceeds ``threshold``,
   else 0 (background).

Joints count as visible above ``min_confidence``; a limb needs both ends visible.
"""

from __future__ import annotations

import numpy as np
import torch

from ..keypoints import COCO_SKELETON, part_assignment


def limb_table(num_parts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The limbs drawn for each part.

    Returns:
        ``(start, end, reach, part)``, each `(S,)`: the segment of limb ``s`` goes from
        joint ``start`` to ``start + reach * (end - start)`` and belongs to ``part``.
    """
    membership = part_assignment(num_parts)
    limbs: list[tuple[int, int, float, int]] = []
    for k, row in enumerate(membership):
        joints = np.flatnonzero(row).tolist()
        limbs += [(j, j, 0.0, k) for j in joints]
        limbs += [(a, b, 1.0, k) for i, a in enumerate(joints) for b in joints[i + 1 :]]
        for a, b in COCO_SKELETON:
            if row[a] != row[b]:
                inner, outer = (a, b) if row[a] else (b, a)
                limbs.append((inner, outer, 0.5, k))
    start, end, reach, part = (np.array(column) for column in zip(*limbs, strict=True))
    return start, end, reach.astype(np.float32), part


def parsing_labels(
    keypoints: torch.Tensor,
    crop_size: tuple[int, int],
    feature_size: tuple[int, int],
    num_parts: int = 8,
    *,
    sigma: float | None = None,
    threshold: float = 0.3,
    min_confidence: float = 0.3,
) -> torch.Tensor:
    """Part labels of a batch of crops at feature-map size.

    Args:
        keypoints: `(B, 17, 3)` float ``(x, y, conf)`` in crop pixels.
        crop_size: crop ``(H, W)`` in pixels.
        feature_size: feature map ``(h, w)``.
        num_parts: K (5 or 8).
        sigma: limb Gaussian std in crop pixels (default ``W / 10``).
        threshold: smallest heat labelled as a part.
        min_confidence: keypoints at or below it are not drawn.

    Returns:
        `(B, h, w)` int64 labels in ``0..K`` (0 = background).
    """
    height, width = crop_size
    rows, cols = feature_size
    sigma = width / 10.0 if sigma is None else sigma
    start, end, reach, part = (torch.from_numpy(a) for a in limb_table(num_parts))
    xy, conf = keypoints[..., :2].float(), keypoints[..., 2]
    a = xy[:, start]  # (B, S, 2)
    b = a + reach[None, :, None] * (xy[:, end] - a)
    valid = (conf[:, start] > min_confidence) & (conf[:, end] > min_confidence)  # (B, S)
    ys = (torch.arange(rows, dtype=torch.float32) + 0.5) * height / rows
    xs = (torch.arange(cols, dtype=torch.float32) + 0.5) * width / cols
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).view(1, 1, -1, 2)
    segment = (b - a)[:, :, None]  # (B, S, 1, 2)
    offset = grid - a[:, :, None]  # (B, S, h*w, 2)
    t = (offset * segment).sum(-1) / (segment**2).sum(-1).clamp_min(1e-6)
    closest = a[:, :, None] + t.clamp(0.0, 1.0)[..., None] * segment
    heat = torch.exp(-((grid - closest) ** 2).sum(-1) / (2 * sigma**2)) * valid[..., None]
    parts = torch.stack([heat[:, part == k].amax(dim=1) for k in range(num_parts)], dim=1)
    # Ties go to the later part, so a foot wins over the leg that shares its ankle.
    best, flipped = parts.flip(1).max(dim=1)
    return torch.where(best > threshold, num_parts - flipped, 0).view(-1, rows, cols)
