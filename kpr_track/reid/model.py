"""The KPR appearance model: prompt-injected trunk, part attention and part pooling.

Implemented from Somers et al., "Keypoint Promptable Re-Identification" (ECCV 2024)
and "Body Part-Based Representation Learning for Occluded Person Re-Identification"
(BPBReID, WACV 2023); see DESIGN.md §3. Shape letters: B crops, K parts, C = K + 2
prompt channels, F trunk channels, h x w feature map, D embedding dimension.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, WeightsError
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


class KPRTrainOutput(NamedTuple):
    """What training needs from a batch of ``B`` crops (BNNeck, Luo et al. CVPRW 2019).

    Attributes:
        part_logits: `(B, 1 + K, h, w)` float32 part-head logits ``[background, parts]``.
        features: `(B, 2 + K, D)` float32 embeddings before the reduction's BatchNorm,
            ``[global, foreground, part_1..part_K]`` (for the triplet loss).
        bn_features: `(B, 2 + K, D)` float32 the same after BatchNorm (for identity
            classifiers; L2-normalised, they are what :meth:`KPRModel.forward` returns).
    """

    part_logits: torch.Tensor
    features: torch.Tensor
    bn_features: torch.Tensor


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
        reduced = self.reduction(self._pool(feature_map, part_maps).flatten(0, 1))
        reduced = F.normalize(reduced.view(len(images), self.num_parts + 2, -1), dim=-1)
        visibility = torch.cat([part_visible.amax(dim=1, keepdim=True), part_visible], dim=1)
        return KPROutput(
            embeddings=reduced[:, 1:],
            visibility=visibility,
            part_maps=torch.cat([1.0 - foreground, part_maps], dim=1),
            global_embedding=reduced[:, 0],
        )

    def train_outputs(self, images: torch.Tensor, prompts: torch.Tensor) -> KPRTrainOutput:
        """Training view of the learned-attention model (needs ``embed_dim``).

        Args:
            images: `(B, 3, H, W)` float32 ImageNet-normalised RGB crops.
            prompts: `(B, K + 2, H, W)` float32 prompt tensors.

        Returns:
            :class:`KPRTrainOutput`; pooling uses the soft part maps, as :meth:`forward`.

        Raises:
            ConfigError: for ``attention="pose"`` or ``embed_dim=None`` (nothing to train).
        """
        if self.attention != "learned" or isinstance(self.reduction, nn.Identity):
            raise ConfigError("training needs attention='learned' and an embed_dim")
        feature_map = self.features(images, prompts)
        logits = self.part_head(feature_map)  # (B, 1 + K, h, w)
        pooled = self._pool(feature_map, logits.softmax(dim=1)[:, 1:]).flatten(0, 1)
        linear, batch_norm = self.reduction
        features = linear(pooled)
        shape = (len(images), self.num_parts + 2, -1)
        return KPRTrainOutput(logits, features.view(shape), batch_norm(features).view(shape))

    @staticmethod
    def _pool(feature_map: torch.Tensor, part_maps: torch.Tensor) -> torch.Tensor:
        """`(B, F, h, w)` + `(B, K, h, w)` -> `(B, 2 + K, F)` [global, foreground, parts]."""
        foreground = part_maps.amax(dim=1, keepdim=True)
        maps = torch.cat([foreground, part_maps], dim=1)  # (B, 1 + K, h, w)
        # Global weighted average pooling: sum(G * M_k) / sum(M_k) (BPBReID Eq. 2).
        pooled = torch.einsum("bfhw,bphw->bpf", feature_map, maps)
        pooled = pooled / maps.sum(dim=(2, 3)).clamp_min(1e-6)[..., None]
        return torch.cat([feature_map.mean(dim=(2, 3))[:, None], pooled], dim=1)


def save_kpr_weights(model: KPRModel, path: str | Path, *, half: bool = True) -> None:
    """Save a learned-attention KPR model as one safetensors file.

    The architecture (``num_parts``, ``embed_dim``) goes into the file's metadata, so
    :func:`load_kpr_weights` needs nothing else. ``half`` stores float16 tensors
    (BatchNorm counters stay int64).
    """
    from safetensors.torch import save_file

    state = {
        name: (t.half() if half and t.is_floating_point() else t).contiguous()
        for name, t in model.state_dict().items()
    }
    metadata = {"num_parts": str(model.num_parts), "embed_dim": str(model.embed_dim)}
    save_file(state, str(path), metadata=metadata)


def load_kpr_weights(path: str | Path) -> KPRModel:
    """Build a learned-attention :class:`KPRModel` from :func:`save_kpr_weights` output.

    Raises:
        WeightsError: naming the file when it is not a safetensors file, lacks the
            architecture metadata or its tensors do not fit.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {name: handle.get_tensor(name) for name in handle.keys()}
        model = KPRModel(
            int(metadata["num_parts"]), "learned", int(metadata["embed_dim"]), pretrained=False
        )
        model.load_state_dict(
            {n: t.float() if t.is_floating_point() else t for n, t in state.items()}
        )
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as error:
        message = str(error).replace("\n", " ")[:300]
        raise WeightsError(f"{path}: not a KPR weights file ({message})") from None
    return model.eval()
