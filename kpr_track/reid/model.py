"""The KPR appearance model: prompt-injected trunk, part attention and part pooling.

Implemented from Somers et al., "Keypoint Promptable Re-Identification" (ECCV 2024)
and "Body Part-Based Representation Learning for Occluded Person Re-Identification"
(BPBReID, WACV 2023); see DESIGN.md §3. Shape letters: B crops, K parts, C = K + 2
prompt channels, F trunk channels, h x w feature map, D embedding dimension.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..prompts import NEGATIVE
from .trunk import FEATURE_CHANNELS, STEM_CHANNELS, build_mobilenet_v2

Attention = Literal["learned", "pose"]


class KPROutput(NamedTuple):
    """What the KPR model returns for a batch of ``B`` crops.

    Attributes:
        embeddings: `(B, 1 + K, D)` float32, L2-normalised ``[foreground, part_1..part_K]``.
        visibility: `(B, 1 + K)` float32 in {0, 1}, same order.
        part_maps: `(B, 1 + K, h, w)` float32 attention ``[background, part_1..part_K]``.
        global_embedding: `(B, D)` float32, L2-normalised plain average of the feature map.
    """

    embeddings: torch.Tensor
    visibility: torch.Tensor
    part_maps: torch.Tensor
    global_embedding: torch.Tensor


class KPRModel(nn.Module):
    """KPR with a MobileNetV2 trunk and the prompt injected at the stem.

    The prompt tensor goes through a zero-initialised 3x3 stride-2 convolution whose
    output is *added* to the trunk's stem output, so a pretrained trunk starts unchanged
    (the KPR prompt injection, moved to a CNN stem; DESIGN.md §3).

    Args:
        num_parts: K (5 or 8).
        attention: ``"learned"``: part maps = softmax over K + 1 classes of a 1x1 conv on
            the feature map, a part is visible when it wins the argmax at one or more
            feature-map pixels (KPR). ``"pose"``: training-free "fixed attention" of
            BPBReID: part maps = the prompt's own part channels max-pooled to the feature
            map and dilated by one cell, suppressed where the negative prompt (other
            people's keypoints) is, and a part is visible when its map peaks above 0.5 —
            so visibility follows keypoint confidences (thresholded in the prompt).
        embed_dim: D; ``None`` keeps the trunk's F = 1280 channels (no trained reduction).
        pretrained: load ImageNet trunk weights through the weights resolver.

    Raises:
        ConfigError: on an unknown ``attention`` mode.
    """

    def __init__(
        self,
        num_parts: int = 8,
        attention: Attention = "learned",
        embed_dim: int | None = None,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        if attention not in ("learned", "pose"):
            raise ConfigError(f"attention={attention!r}; expected 'learned' or 'pose'")
        self.num_parts = num_parts
        self.attention = attention
        self.trunk = build_mobilenet_v2(pretrained=pretrained)
        self.prompt_stem = nn.Conv2d(num_parts + 2, STEM_CHANNELS, 3, 2, 1, bias=False)
        nn.init.zeros_(self.prompt_stem.weight)
        self.part_head = nn.Conv2d(FEATURE_CHANNELS, num_parts + 1, kernel_size=1)
        self.embed_dim = FEATURE_CHANNELS if embed_dim is None else embed_dim
        self.reduction = (
            nn.Identity()
            if embed_dim is None
            else nn.Sequential(nn.Linear(FEATURE_CHANNELS, embed_dim), nn.BatchNorm1d(embed_dim))
        )

    def features(self, images: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` normalised crops + `(B, C, H, W)` prompts -> `(B, F, h, w)`."""
        x = self.trunk[0](images) + self.prompt_stem(prompts)
        return self.trunk[1:](x)

    def part_attention(
        self, feature_map: torch.Tensor, prompts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Part maps `(B, K, h, w)` in [0, 1] and part visibility `(B, K)` in {0, 1}."""
        size = feature_map.shape[-2:]
        if self.attention == "pose":
            pooled = F.adaptive_max_pool2d(prompts[:, NEGATIVE:], size)  # (B, 1 + K, h, w)
            pooled = F.max_pool2d(pooled, kernel_size=3, stride=1, padding=1)
            maps = pooled[:, 1:] * (1.0 - pooled[:, :1])
            return maps, (maps.amax(dim=(2, 3)) > 0.5).float()
        probabilities = self.part_head(feature_map).softmax(dim=1)  # (B, 1 + K, h, w)
        winners = F.one_hot(probabilities.argmax(dim=1), self.num_parts + 1)  # (B, h, w, 1 + K)
        visible = winners.amax(dim=(1, 2))[:, 1:].float()
        return probabilities[:, 1:], visible

    def forward(self, images: torch.Tensor, prompts: torch.Tensor) -> KPROutput:
        """Embed a batch of crops.

        Args:
            images: `(B, 3, H, W)` float32 ImageNet-normalised RGB crops.
            prompts: `(B, K + 2, H, W)` float32 prompt tensors (:mod:`kpr_track.prompts`).

        Returns:
            :class:`KPROutput`.
        """
        feature_map = self.features(images, prompts)  # (B, F, h, w)
        part_maps, part_visible = self.part_attention(feature_map, prompts)
        foreground = part_maps.amax(dim=1, keepdim=True)  # (B, 1, h, w)
        maps = torch.cat([foreground, part_maps], dim=1)  # (B, 1 + K, h, w)
        # Global weighted average pooling: sum(G * M_k) / sum(M_k) (BPBReID Eq. 2).
        pooled = torch.einsum("bfhw,bphw->bpf", feature_map, maps)
        pooled = pooled / maps.sum(dim=(2, 3)).clamp_min(1e-6)[..., None]
        global_pooled = feature_map.mean(dim=(2, 3))
        batch, slots = pooled.shape[:2]
        reduced = self.reduction(torch.cat([global_pooled, pooled.flatten(0, 1)]))
        embeddings = F.normalize(reduced[batch:].view(batch, slots, -1), dim=-1)
        visibility = torch.cat([part_visible.amax(dim=1, keepdim=True), part_visible], dim=1)
        return KPROutput(
            embeddings=embeddings,
            visibility=visibility,
            part_maps=torch.cat([1.0 - foreground, part_maps], dim=1),
            global_embedding=F.normalize(reduced[:batch], dim=-1),
        )
