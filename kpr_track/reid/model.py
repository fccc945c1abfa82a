"""The KPR appearance model: prompt-injected trunk, part attention and part pooling.

Implemented from Somers et al., "Keypoint Promptable Re-Identification" (ECCV 2024)
and "Body Part-Based Representation Learning for Occluded Person Re-Identification"
(BPBReID, WACV 2023); see DESIGN.md §3. Shape letters: B crops, K parts, C = K + 2
prompt channels, F trunk map channels, h x w feature map, D part embedding dimension,
G holistic (trunk head) embedding dimension.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InputError, WeightsError, one_line
from ..prompts import NEGATIVE
from .calibration import DistanceCalibration
from .trunk import build_trunk

Attention = Literal["learned", "pose"]
DEFAULT_TRUNK = "osnet-retail-0287"


class KPROutput(NamedTuple):
    """What the KPR model returns for a batch of ``B`` crops.

    Attributes:
        embeddings: `(B, 1 + K, D)` float32, L2-normalised ``[holistic, part_1..part_K]``;
            the holistic slot is the trunk's own embedding head on the prompted feature
            map (the ReID network's embedding for OSNet trunks, the plain average of the
            map for ImageNet trunks).
        visibility: `(B, 1 + K)` float32 in {0, 1}, same order; the holistic slot is
            always 1 (every crop has one), so two crops always share a slot; a learned
            part is visible when it wins the argmax on at least
            :attr:`KPRModel.min_part_area` of the feature map's cells (and one cell).
        part_maps: `(B, 1 + K, h, w)` float32 attention ``[background, part_1..part_K]``.
        global_embedding: `(B, G)` float32, L2-normalised trunk-head embedding (the
            holistic slot alone, where G = D).
    """

    embeddings: torch.Tensor
    visibility: torch.Tensor
    part_maps: torch.Tensor
    global_embedding: torch.Tensor


class KPRTrainOutput(NamedTuple):
    """What training needs from a batch of ``B`` crops (BNNeck, Luo et al. CVPRW 2019).

    Attributes:
        part_logits: `(B, 1 + K, h, w)` float32 part-head logits ``[background, parts]``.
        global_features: `(B, G)` holistic embedding before its BatchNorm.
        features: `(B, 1 + K, D)` ``[foreground, parts]`` before BatchNorm (the foreground
            embedding, pooled by the union of the part maps, serves the identity loss only).
        global_bn: `(B, G)` holistic embedding after its BatchNorm (identity loss).
        bn_features: `(B, 1 + K, D)` after the per-slot BatchNorms (identity loss).
    """

    part_logits: torch.Tensor
    global_features: torch.Tensor
    features: torch.Tensor
    global_bn: torch.Tensor
    bn_features: torch.Tensor


class KPRModel(nn.Module):
    """KPR on a CNN trunk, with the prompt injected at the stem.

    The prompt tensor goes through a zero-initialised 1x1 convolution whose output is
    *added* to the trunk's stem output, so a pretrained trunk starts unchanged (the KPR
    prompt injection, moved to a CNN stem; DESIGN.md §3). The prompt is rendered at the
    stem's resolution, half the crop's (:meth:`prompt_size`): its Gaussians (std W / 22,
    5.8 crop px) are smooth at that scale, and a 3x3 stride-2 convolution on a
    crop-resolution prompt (the stem of earlier weights files, converted on loading by
    :func:`load_kpr_weights`) cost 4 x the pixels to render and 9 x the multiply-adds.

    Args:
        num_parts: K (5 or 8).
        attention: ``"learned"``: part maps = softmax over K + 1 classes of a 1x1 conv on
            the feature map; a part is visible when it wins the argmax on at least a
            share :attr:`min_part_area` of the feature-map cells (at least one cell: KPR's
            rule when the share is 0; the shipped weights carry a share chosen on their
            training data). ``"pose"``: training-free "fixed attention" of
            BPBReID: part maps = the prompt's own part channels max-pooled to the feature
            map and dilated by one cell; other people's keypoints (negative prompts)
            down-weight only cells the target's own keypoints do not cover
            (:func:`pose_guided_maps`); a part is visible when its own keypoints are.
        embed_dim: D of the trained part embeddings (a linear reduction F -> D with one
            BNNeck per slot); ``None``: no trained layers, D = F.
        pretrained: load the trunk's weights through the weights resolver.
        trunk: a name of :data:`kpr_track.reid.trunk.TRUNKS`.

    The holistic slot of the output is the trunk's own head (DESIGN.md §3 keeps a ReID
    network's embedding head for the holistic embedding: on retail-0287 it ranks
    occluded people far better than pooling its map). Where the head's size G differs
    from D (training-free parts on retail-0288: F = 128, G = 256) the slot falls back to
    the foreground-pooled map; :attr:`KPROutput.global_embedding` is always the head's.

    Raises:
        ConfigError: on an unknown ``attention`` mode or trunk.
    """

    def __init__(
        self,
        num_parts: int = 8,
        attention: Attention = "learned",
        embed_dim: int | None = None,
        pretrained: bool = True,
        trunk: str = DEFAULT_TRUNK,
    ) -> None:
        super().__init__()
        if attention not in ("learned", "pose"):
            raise ConfigError(f"attention={attention!r}; expected 'learned' or 'pose'")
        self.num_parts = num_parts
        self.attention = attention
        self.trunk_name = trunk
        self.trunk = build_trunk(trunk, pretrained)
        channels = self.trunk.feature_channels
        self.prompt_stem = nn.Conv2d(num_parts + 2, self.trunk.stem_channels, 1, bias=False)
        nn.init.zeros_(self.prompt_stem.weight)
        self.part_head = nn.Conv2d(channels, num_parts + 1, kernel_size=1)
        self.embed_dim = channels if embed_dim is None else embed_dim
        self.trained = embed_dim is not None
        if self.trained:
            self.reduction = nn.Linear(channels, embed_dim)
            self.global_neck = nn.BatchNorm1d(self.trunk.head_dim)
            self.necks = nn.ModuleList(nn.BatchNorm1d(embed_dim) for _ in range(num_parts + 1))
        else:
            self.reduction = nn.Identity()
        self.calibration: DistanceCalibration | None = None
        self.min_part_area = 0.0  # share of the h x w cells a visible part must win

    @staticmethod
    def prompt_size(input_size: tuple[int, int]) -> tuple[int, int]:
        """``(H / 2, W / 2)`` px: the prompt tensor's size for crops of ``input_size``
        ``(H, W)`` (the trunk's stem output, where the prompt is added)."""
        return input_size[0] // 2, input_size[1] // 2

    def features(self, images: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` normalised crops + `(B, C, H / 2, W / 2)` prompts -> `(B, F, h, w)`.

        Raises:
            InputError: prompts of another size than :meth:`prompt_size` of the crops.
        """
        expected = self.prompt_size(tuple(images.shape[-2:]))
        if tuple(prompts.shape[-2:]) != expected:
            raise InputError(
                f"KPR model: prompts of {tuple(prompts.shape[-2:])} px for crops of "
                f"{tuple(images.shape[-2:])}; expected {expected} (KPRModel.prompt_size)"
            )
        return self.trunk.body(self.trunk.stem(images) + self.prompt_stem(prompts))

    def part_attention(
        self, feature_map: torch.Tensor, prompts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Part maps `(B, K, h, w)` in [0, 1] and part visibility `(B, K)` in {0, 1}."""
        if self.attention == "pose":
            # plain ints: the map size is a constant of the crop size (ONNX export needs it)
            return pose_guided_maps(prompts, tuple(int(s) for s in feature_map.shape[-2:]))
        probabilities = self.part_head(feature_map).softmax(dim=1)  # (B, 1 + K, h, w)
        areas = part_areas(probabilities)
        visible = ((areas > 0) & (areas >= self.min_part_area)).float()
        return probabilities[:, 1:], visible

    def forward(self, images: torch.Tensor, prompts: torch.Tensor) -> KPROutput:
        """Embed a batch of crops.

        Args:
            images: `(B, 3, H, W)` float32 ImageNet-normalised RGB crops.
            prompts: `(B, K + 2, H / 2, W / 2)` float32 prompt tensors
                (:mod:`kpr_track.prompts`, rendered at :meth:`prompt_size`).

        Returns:
            :class:`KPROutput`. Embeddings are the features *before* the BNNecks (the
            trunk head's own embedding space for the holistic slot).
        """
        feature_map = self.features(images, prompts)  # (B, F, h, w)
        part_maps, part_visible = self.part_attention(feature_map, prompts)
        foreground = part_maps.amax(dim=1, keepdim=True)  # (B, 1, h, w)
        pooled = F.normalize(self.reduction(self._pool(feature_map, part_maps)), dim=-1)
        holistic = F.normalize(self.trunk.head(feature_map), dim=-1)  # (B, G)
        first = holistic if holistic.shape[-1] == self.embed_dim else pooled[:, 0]
        visibility = torch.cat([torch.ones_like(part_visible[:, :1]), part_visible], dim=1)
        return KPROutput(
            embeddings=torch.cat([first[:, None], pooled[:, 1:]], dim=1),
            visibility=visibility,
            part_maps=torch.cat([1.0 - foreground, part_maps], dim=1),
            global_embedding=holistic,
        )

    def train_outputs(self, images: torch.Tensor, prompts: torch.Tensor) -> KPRTrainOutput:
        """Training view of the learned-attention model (needs ``embed_dim``).

        Args:
            images: `(B, 3, H, W)` float32 ImageNet-normalised RGB crops.
            prompts: `(B, K + 2, H / 2, W / 2)` float32 prompt tensors.

        Returns:
            :class:`KPRTrainOutput`; pooling uses the soft part maps, as :meth:`forward`.

        Raises:
            ConfigError: for ``attention="pose"`` or ``embed_dim=None`` (nothing to train).
        """
        if self.attention != "learned" or not self.trained:
            raise ConfigError("training needs attention='learned' and an embed_dim")
        feature_map = self.features(images, prompts)
        logits = self.part_head(feature_map)  # (B, 1 + K, h, w)
        features = self.reduction(self._pool(feature_map, logits.softmax(dim=1)[:, 1:]))
        bn = torch.stack([neck(features[:, i]) for i, neck in enumerate(self.necks)], dim=1)
        holistic = self.trunk.head(feature_map)
        return KPRTrainOutput(logits, holistic, features, self.global_neck(holistic), bn)

    @staticmethod
    def _pool(feature_map: torch.Tensor, part_maps: torch.Tensor) -> torch.Tensor:
        """`(B, F, h, w)` + `(B, K, h, w)` -> `(B, 1 + K, F)` [foreground, parts]."""
        foreground = part_maps.amax(dim=1, keepdim=True)
        maps = torch.cat([foreground, part_maps], dim=1)  # (B, 1 + K, h, w)
        # Global weighted average pooling: sum(G * M_k) / sum(M_k) (BPBReID Eq. 2).
        pooled = torch.einsum("bfhw,bphw->bpf", feature_map, maps)
        return pooled / maps.sum(dim=(2, 3)).clamp_min(1e-6)[..., None]


def part_areas(probabilities: torch.Tensor) -> torch.Tensor:
    """Share of the feature-map cells each part wins in the argmax over ``[background,
    parts]``.

    Args:
        probabilities: `(B, 1 + K, h, w)` part-head softmax (or logits).

    Returns:
        `(B, K)` float32 in [0, 1].
    """
    winners = F.one_hot(probabilities.argmax(dim=1), probabilities.shape[1])  # (B, h, w, 1 + K)
    return winners.float().mean(dim=(1, 2))[:, 1:]


def pose_guided_maps(
    prompts: torch.Tensor, size: torch.Size | tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """BPBReID's fixed (pose-guided) attention from a prompt tensor.

    Part maps are the prompt's part channels max-pooled to the ``h x w`` feature map
    (``Q_k``) and dilated by one cell (``P_k``). The negative channel, max-pooled but not
    dilated (``N``), down-weights a cell by ``N * (1 - max_k Q_k)``: cells the target's
    own keypoints cover (``max_k Q_k = 1``) are never erased, while the dilated
    spill-over onto cells only other people's keypoints cover is removed. Visibility
    comes from the target's own keypoints alone (a part is visible when
    ``max P_k > 0.5``), so negatives never hide a part.

    Args:
        prompts: `(B, K + 2, H', W')` prompt tensors (any size at least ``(h, w)``).
        size: the feature map ``(h, w)``.

    Returns:
        ``(maps (B, K, h, w) in [0, 1], visibility (B, K) in {0, 1})``.
    """
    pooled = F.adaptive_max_pool2d(prompts[:, NEGATIVE:], size)  # (B, 1 + K, h, w)
    parts = F.max_pool2d(pooled[:, 1:], kernel_size=3, stride=1, padding=1)
    coverage = pooled[:, 1:].amax(dim=1, keepdim=True)
    maps = parts * (1.0 - pooled[:, :1] * (1.0 - coverage))
    return maps, (parts.amax(dim=(2, 3)) > 0.5).float()


def save_kpr_weights(model: KPRModel, path: str | Path, *, half: bool = True) -> None:
    """Save a learned-attention KPR model (and its calibration) as one safetensors file.

    The architecture (trunk, ``num_parts``, ``embed_dim``), the part visibility threshold
    (``min_part_area``) and the distance calibration go into the file's metadata, so
    :func:`load_kpr_weights` needs nothing else.
    ``half`` stores float16 tensors (BatchNorm counters stay int64).
    """
    from safetensors.torch import save_file

    state = {
        name: (t.half() if half and t.is_floating_point() else t).contiguous()
        for name, t in model.state_dict().items()
    }
    metadata = {
        "trunk": model.trunk_name,
        "num_parts": str(model.num_parts),
        "embed_dim": str(model.embed_dim),
        "min_part_area": repr(float(model.min_part_area)),
    }
    if model.calibration is not None:
        metadata["calibration"] = model.calibration.to_json()
    save_file(state, str(path), metadata=metadata)


def load_kpr_weights(path: str | Path) -> KPRModel:
    """Build a learned-attention :class:`KPRModel` from :func:`save_kpr_weights` output.

    Files whose prompt stem is the earlier 3x3 stride-2 kernel on crop-resolution prompts
    are converted to the half-resolution 1x1 stem by :func:`half_resolution_stem`.

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
            int(metadata["num_parts"]),
            "learned",
            int(metadata["embed_dim"]),
            pretrained=False,
            trunk=metadata["trunk"],
        )
        state = {n: t.float() if t.is_floating_point() else t for n, t in state.items()}
        state["prompt_stem.weight"] = half_resolution_stem(state["prompt_stem.weight"])
        model.load_state_dict(state)
        model.min_part_area = float(metadata.get("min_part_area", 0.0))
        if "calibration" in metadata:
            model.calibration = DistanceCalibration.from_json(metadata["calibration"], str(path))
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as error:
        raise WeightsError(f"{path}: not a KPR weights file ({one_line(error)})") from None
    return model.eval()


def half_resolution_stem(weight: torch.Tensor) -> torch.Tensor:
    """The 1x1 prompt-stem kernel `(S, C, 1, 1)` equivalent to ``weight``.

    A 3x3 stride-2 kernel `(S, C, 3, 3)` on a crop-resolution prompt (the stem of
    earlier weights files) sums the prompt over a 3 x 3 neighbourhood of each stem cell; the
    prompt's Gaussians (std 5.8 crop px) barely change over it, so the kernel summed over
    its taps, on the prompt rendered at the stem's resolution, gives the same stem input
    up to their curvature: on PETS09-S2L1 crops the embeddings of the shipped ``kpr``
    weights move by at most 0.002 (max abs), against 0.08 for its int8 export
    (``tests/test_model_stem.py``). A `(S, C, 1, 1)` kernel is returned as it is.

    Raises:
        ValueError: on any other kernel size.
    """
    if weight.shape[-2:] == (1, 1):
        return weight
    if weight.shape[-2:] != (3, 3):
        raise ValueError(f"prompt stem: expected a 1x1 or 3x3 kernel, got {tuple(weight.shape)}")
    return weight.sum(dim=(2, 3), keepdim=True)
