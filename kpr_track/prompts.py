"""Keypoint prompts rendered into the KPR prompt tensor (DESIGN.md §3, KPR Sec. 3.2).

For every detection ``i`` of a frame, in the coordinates of its own crop (its crop
window, the box clipped to the frame by :func:`kpr_track.reid.crops.crop_windows`,
resized to ``H x W``; the same window the crop is cut from):

- each of its own keypoints with confidence > ``min_confidence`` that falls inside
  the crop becomes a 2-D Gaussian (peak 1, std ``sigma`` crop pixels; 0 where one of
  its 1-D factors is below :data:`NEGLIGIBLE`); the J = 17
  maps are merged into K part channels by max within each part;
- every keypoint of the *other* detections of the frame that falls inside box ``i``
  is drawn the same way, and all of them are merged by max into one negative channel;
  only other detections scoring at least ``negative_min_score`` (the tracker's
  ``low_score``: what it ignores is not a person to push away) and overlapping box
  ``i`` by at most ``duplicate_iou`` (above it the detector found the same person twice,
  and its joints are the target's own) give negatives;
- background = clamp(1 - sum of the other channels, 0, 1).

Channel order: ``[background, negative, part_1..part_K]`` (``C = K + 2``).
"""

from __future__ import annotations

import numpy as np
import torch

from .boxes import box_iou
from .errors import InputError
from .keypoints import NUM_KEYPOINTS, part_assignment

BACKGROUND, NEGATIVE, FIRST_PART = 0, 1, 2
# Gaussian factors below this (more than 9 sigma from the keypoint) are set to 0. Their
# products would be subnormal floats (< 1.2e-38), which x86 CPUs compute with about 50 x
# slower: the prompt convolution of the KPR stem cost 3 ms per crop instead of 0.6. The
# change to the prompt values is below 1e-18, far under float32 resolution.
NEGLIGIBLE = 1e-18
# Exponents are clamped to this before exp (exp(-45) < NEGLIGIBLE, so every clamped factor
# is still set to 0): torch's exp of arguments below about -87, whose results underflow,
# is 10 x slower than of small ones (0.73 vs 0.07 ms for the 8 crops x 17 joints of a
# batch); most factors of a crop lie far from its keypoints.
_EXPONENT_FLOOR = -45.0


def keypoints_in_crops(
    boxes: np.ndarray, keypoints: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """Keypoints of every detection expressed in the crop of each given box.

    Args:
        boxes: `(B, 4)` float xyxy in frame pixels, the crops.
        keypoints: `(N, 17, 3)` float ``(x px, y px, confidence)`` in frame pixels.
        size: crop ``(H, W)`` in pixels.

    Returns:
        `(B, N, 17, 2)` float32: entry ``[i, j]`` holds the keypoints of detection ``j``
        in the pixel frame of crop ``i`` (``x`` in [0, W), ``y`` in [0, H) when inside).
    """
    height, width = size
    boxes = np.asarray(boxes, np.float32)
    origin = boxes[:, None, None, :2]  # (B, 1, 1, 2)
    extent = np.maximum(boxes[:, None, None, 2:] - boxes[:, None, None, :2], 1e-3)
    scale = np.array([width, height], np.float32) / extent
    return ((keypoints[None, :, :, :2] - origin) * scale).astype(np.float32)


def render_prompts(
    boxes: np.ndarray,
    keypoints: np.ndarray,
    size: tuple[int, int] = (256, 128),
    num_parts: int = 8,
    *,
    min_confidence: float = 0.3,
    sigma: float | None = None,
    negatives: bool = True,
    scores: np.ndarray | None = None,
    negative_min_score: float = 0.1,
    duplicate_iou: float = 0.7,
    targets: np.ndarray | None = None,
    windows: np.ndarray | None = None,
) -> torch.Tensor:
    """Render positive and negative keypoint prompts for the detections of one frame.

    Vectorised over detections and keypoints (Python loops only over the K parts).

    Args:
        boxes: `(N, 4)` float xyxy in frame pixels.
        keypoints: `(N, 17, 3)` float ``(x px, y px, confidence in [0, 1])``.
        size: ``(H, W)`` px of the prompt tensor, which covers each target's crop window
            (for the KPR model: :meth:`~kpr_track.reid.model.KPRModel.prompt_size`, 128 x 64
            for its 256 x 128 crops).
        num_parts: K, 5 or 8 (see :mod:`kpr_track.keypoints`).
        min_confidence: keypoints at or below this confidence are not drawn.
        sigma: Gaussian std in pixels of the tensor; default ``W / 22`` (5.8 px at W = 128,
            2.9 px at 64: 5.8 px of a 128-wide crop either way).
        negatives: draw other people's keypoints into the negative channel.
        scores: `(N,)` detector scores in [0, 1]; None treats every detection as scoring 1.
        negative_min_score: score in [0, 1]: lower-scoring detections give no negatives.
        duplicate_iou: IoU in [0, 1]: another detection overlapping the target more than
            this is a duplicate of it and gives no negatives (NMS-style threshold).
        targets: `(B,)` int indices of the detections to render prompts for (every
            detection still gives negatives); None: all of them (``B = N``).
        windows: `(B, 4)` float xyxy frame pixels, the crop window of each target (the
            region its crop is cut from, :func:`kpr_track.reid.crops.crop_windows`);
            None: the target boxes themselves. Boxes still decide duplicates.

    Returns:
        `(B, K + 2, H, W)` float32 tensor in [0, 1], channels
        ``[background, negative, part_1..part_K]``.

    Raises:
        InputError: on arrays of the wrong shape, or ``targets`` outside ``[0, N)``.
    """
    boxes = np.asarray(boxes, np.float32)
    keypoints = np.asarray(keypoints, np.float32)
    n = boxes.shape[0] if boxes.ndim == 2 else -1
    if boxes.shape != (n, 4) or keypoints.shape != (n, NUM_KEYPOINTS, 3):
        raise InputError(
            f"render_prompts: expected boxes (N, 4) and keypoints (N, 17, 3), "
            f"got {boxes.shape} and {keypoints.shape}"
        )
    targets = np.arange(n) if targets is None else np.asarray(targets, np.int64).reshape(-1)
    if targets.size and (targets.min() < 0 or targets.max() >= n):
        raise InputError(f"render_prompts: targets must index the {n} detections, got {targets}")
    scores = np.ones(n, np.float32) if scores is None else np.asarray(scores, np.float32)
    if scores.shape != (n,):
        raise InputError(f"render_prompts: expected scores (N,) = ({n},), got {scores.shape}")
    windows = boxes[targets] if windows is None else np.asarray(windows, np.float32)
    if windows.shape != (len(targets), 4):
        raise InputError(
            f"render_prompts: expected windows (B, 4) = ({len(targets)}, 4), got {windows.shape}"
        )
    height, width = size
    sigma = width / 22.0 if sigma is None else sigma
    b = len(targets)
    # Written in place through a channel-first view of the contiguous (B, K + 2, H, W)
    # result (each crop's map of a channel is contiguous), so the model, and onnxruntime,
    # read it without a copy.
    prompts = torch.empty((b, num_parts + 2, height, width), dtype=torch.float32)
    channels = prompts.transpose(0, 1)
    channels[NEGATIVE] = 0.0
    if b == 0:
        return prompts

    coords = keypoints_in_crops(windows, keypoints, size)  # (B, N, 17, 2)
    inside = (
        (coords[..., 0] >= 0) & (coords[..., 0] < width)
        & (coords[..., 1] >= 0) & (coords[..., 1] < height)
    )  # fmt: skip
    drawn = inside & (keypoints[None, :, :, 2] > min_confidence)  # (B, N, 17)
    own = (targets[:, None] == np.arange(n)[None, :])[:, :, None]
    negative_source = (scores >= negative_min_score)[None, :] & (
        box_iou(boxes[targets][:, None], boxes[None]) <= duplicate_iou
    )  # (target B, other N)

    # Positive prompts: each detection's own separable Gaussians (rows zeroed for joints
    # not drawn) as batched outer products, merged into their part's channel by max. The
    # products are broadcast multiplies: 4 x faster than bmm with an inner size of 1.
    idx = np.arange(b)
    rows, cols = _gaussian_factors(torch.from_numpy(coords[idx, targets]), size, sigma)
    rows *= torch.from_numpy(drawn[idx, targets]).float()[..., None]
    rows, cols = rows.transpose(0, 1)[..., None], cols.transpose(0, 1)[..., None, :]  # per joint
    product = torch.empty((b, height, width), dtype=torch.float32)
    for k, joints in enumerate(part_assignment(num_parts)):
        part = channels[FIRST_PART + k]
        first, *others = np.flatnonzero(joints)
        torch.mul(rows[first], cols[first], out=part)
        for joint in others:
            torch.maximum(part, torch.mul(rows[joint], cols[joint], out=product), out=part)

    if negatives:
        target, other, joint = np.nonzero(drawn & ~own & negative_source[:, :, None])
        if target.size:
            owners, maps = _max_of_gaussians(target, coords[target, other, joint], size, sigma)
            channels[NEGATIVE][owners] = maps

    background = channels[BACKGROUND]
    torch.sum(channels[NEGATIVE:], dim=0, out=background)
    background.neg_().add_(1.0).clamp_(0.0, 1.0)
    return prompts


def empty_prompts(n: int, size: tuple[int, int] = (256, 128), num_parts: int = 8) -> torch.Tensor:
    """The "no prompt" tensor: `(N, K + 2, H, W)` zeros with background 1."""
    prompts = torch.zeros((n, num_parts + 2, *size), dtype=torch.float32)
    prompts[:, BACKGROUND] = 1.0
    return prompts


def _max_of_gaussians(
    owner: np.ndarray, centres: np.ndarray, size: tuple[int, int], sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per owner, the pixel-wise max of its Gaussians (peak 1, :func:`_gaussian_factors`).

    Drawn in rounds, the owners ordered by their number of Gaussians (most first): round
    ``k`` draws the ``k``-th Gaussian of every owner that has more than ``k``, a prefix of
    that order, into its map. A crowd's hundreds of negative keypoints so cost one
    ``(owners, H, W)`` product per round instead of an ``(M, H, W)`` array reduced by index:
    the same values, and prompt rendering of MOT20-01 frames (34 people) at 0.6 instead of
    1.0 ms per crop.

    Args:
        owner: `(M,)` int index of the crop each Gaussian belongs to, in any order.
        centres: `(M, 2)` float32 ``(x, y)`` crop pixels.
        size: crop ``(H, W)``; ``sigma``: standard deviation in crop pixels.

    Returns:
        ``(owners (O,) int64, maps (O, H, W) float32)``: the distinct owners and their maps.
    """
    owners, inverse, counts = np.unique(owner, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")  # slot -> owner, most Gaussians first
    slot = np.empty_like(order)
    slot[order] = np.arange(len(order))
    start = np.cumsum(counts) - counts  # each owner's Gaussians, in a run of the sorted owners
    by_owner = np.argsort(owner, kind="stable")
    rank = np.empty_like(by_owner)
    rank[by_owner] = np.arange(len(owner)) - np.repeat(start, counts)  # place in its owner's run
    rows, cols = _gaussian_factors(torch.from_numpy(centres), size, sigma)
    height, width = size
    rounds = int(counts.max())
    round_rows = torch.zeros((rounds, len(owners), height))
    round_cols = torch.zeros((rounds, len(owners), width))
    where = (torch.from_numpy(rank), torch.from_numpy(slot[inverse]))
    round_rows[where], round_cols[where] = rows, cols
    maps = torch.zeros((len(owners), height, width))
    product = torch.empty_like(maps)
    drawing = counts[order]  # Gaussians of each slot, descending
    for k in range(rounds):
        n = int(np.count_nonzero(drawing > k))  # slots 0..n-1 have a k-th Gaussian
        torch.mul(round_rows[k, :n, :, None], round_cols[k, :n, None, :], out=product[:n])
        torch.maximum(maps[:n], product[:n], out=maps[:n])
    return torch.from_numpy(owners[order]), maps


def _gaussian_factors(
    centres: torch.Tensor, size: tuple[int, int], sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two 1-D factors of separable 2-D Gaussians (peak 1) at pixel centres.

    Args:
        centres: `(..., 2)` float32 ``(x, y)`` in crop pixels.
        size: crop ``(H, W)``.
        sigma: standard deviation in crop pixels.

    Returns:
        ``(rows (..., H), cols (..., W))``; the Gaussian is ``rows[..., :, None] *
        cols[..., None, :]``. Factors below :data:`NEGLIGIBLE` are 0.
    """
    height, width = size
    ys = torch.arange(height, dtype=torch.float32) + 0.5
    xs = torch.arange(width, dtype=torch.float32) + 0.5
    rows = torch.exp((-((ys - centres[..., 1:2]) ** 2) / (2 * sigma**2)).clamp_(_EXPONENT_FLOOR))
    cols = torch.exp((-((xs - centres[..., 0:1]) ** 2) / (2 * sigma**2)).clamp_(_EXPONENT_FLOOR))
    return rows.masked_fill_(rows < NEGLIGIBLE, 0.0), cols.masked_fill_(cols < NEGLIGIBLE, 0.0)
