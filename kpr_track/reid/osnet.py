"""The OSNet-style person ReID trunk of Open Model Zoo's ``person-reidentification-retail-028x``.

Omni-scale network (Zhou et al., "Omni-Scale Feature Learning for Person
Re-Identification", ICCV 2019; instance normalisation in the stem as in OSNet-AIN,
TPAMI 2021), written to match the official OpenVINO graphs layer for layer (read from
their ONNX conversion; BatchNorm is folded into the preceding convolution there, so
every convolution that had one carries a bias here):

- input: BGR 0-255 -> RGB, ImageNet mean / std, then instance normalisation;
- stem: 7x7 stride-2 conv, instance norm, ReLU, 3x3 stride-2 max-pool;
- three stages of two omni-scale blocks (four streams of 1..4 lite 3x3 convs fused by
  a channel gate); the first block's gate is an MLP (OSNet's), the second block's a
  group-normalised pooled descriptor; 1x1 conv + 2x2 average pool between stages;
- ``conv5``: 1x1 conv + ReLU -> the feature map `(B, F, H / 16, W / 16)`;
- embedding head: a global depthwise conv over the whole map, a linear layer, an
  affine (folded BatchNorm1d) and a leaky ReLU -> `(B, 256)`.

Shape letters: B crops, F = ``channels[-1]`` map channels (256 for 0287, 128 for 0288).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# ImageNet statistics in RGB order, in 0-255 units (the graph's own constants).


@dataclass(frozen=True)
class OSNetSpec:
    """Architecture of one OMZ OSNet variant.

    Attributes:
        stem: stem output channels.
        channels: output channels of the three stages (the last is also ``conv5``'s).
        input_size: crop ``(H, W)`` in pixels the embedding head was trained for.
        embed_dim: embedding size of the head.
        gate_groups: groups of the second blocks' normalised gates, per stage.
        leaky_slope: negative slope of the head's final leaky ReLU.
    """

    stem: int
    channels: tuple[int, int, int]
    gate_groups: tuple[int, int, int]
    input_size: tuple[int, int] = (256, 128)
    embed_dim: int = 256
    leaky_slope: float = 0.0


OSNET_SPECS: dict[str, OSNetSpec] = {
    "retail-0287": OSNetSpec(
        stem=32, channels=(128, 192, 256), gate_groups=(16, 16, 16), leaky_slope=0.9896512627601624
    ),
    "retail-0288": OSNetSpec(
        stem=16, channels=(64, 96, 128), gate_groups=(16, 8, 16), leaky_slope=0.996234179
    ),
}


class LiteConv(nn.Module):
    """1x1 linear conv, then 3x3 depthwise conv (+ folded BN) and ReLU (OSNet Fig. 3)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)))


class MLPGate(nn.Module):
    """OSNet's unified aggregation gate: pooled descriptor -> MLP -> sigmoid (reduction 16)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, max(channels // 16, 1), 1)
        self.fc2 = nn.Conv2d(max(channels // 16, 1), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(pooled))))


class NormGate(nn.Module):
    """Gate of the graphs' second blocks: sigmoid of the group-normalised pooled
    descriptor (``groups`` groups, per-channel affine).

    Written out rather than ``nn.GroupNorm``, which refuses groups of one value (0288's
    first stage has 16 groups of 1 channel: the normalised value is 0, the gate its bias).
    """

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3)).unflatten(1, (self.groups, -1))  # (B, groups, C / groups)
        mean = pooled.mean(dim=-1, keepdim=True)
        var = pooled.var(dim=-1, unbiased=False, keepdim=True)
        normalised = ((pooled - mean) / torch.sqrt(var + 1e-5)).flatten(1)
        gate = torch.sigmoid(normalised * self.weight + self.bias)
        return x * gate[:, :, None, None]


class OSBlock(nn.Module):
    """Omni-scale residual bottleneck: four streams of 1-4 lite convs, one shared gate.

    Args:
        in_channels: input channels.
        out_channels: output channels (bottleneck = ``out_channels // 4``).
        gate_groups: 0 for :class:`MLPGate`, else the groups of a :class:`NormGate`.
    """

    def __init__(self, in_channels: int, out_channels: int, gate_groups: int) -> None:
        super().__init__()
        mid = out_channels // 4
        self.conv1 = nn.Conv2d(in_channels, mid, 1)
        self.streams = nn.ModuleList(
            nn.Sequential(*(LiteConv(mid) for _ in range(depth))) for depth in (1, 2, 3, 4)
        )
        self.gate = NormGate(mid, gate_groups) if gate_groups else MLPGate(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1)
        self.downsample = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bottleneck = F.relu(self.conv1(x))
        fused = sum(self.gate(stream(bottleneck)) for stream in self.streams)
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv3(fused) + identity)


class OSNet(nn.Module):
    """The OMZ OSNet ReID network, split into a feature map and an embedding head.

    Args:
        spec: the variant's architecture (:data:`OSNET_SPECS`).

    Input convention: :meth:`stem`, :meth:`features` and :meth:`forward` take
    ImageNet-normalised RGB (:func:`kpr_track.reid.crops.normalise_rgb255` of the RGB
    pixels; the OMZ graphs take BGR 0-255 and normalise inside).
    """

    def __init__(self, spec: OSNetSpec) -> None:
        super().__init__()
        self.spec = spec
        c1, c2, c3 = spec.channels
        self.input_norm = nn.InstanceNorm2d(3, affine=True, eps=1e-5)
        self.conv1 = nn.Conv2d(3, spec.stem, 7, stride=2, padding=3, bias=False)
        self.conv1_norm = nn.InstanceNorm2d(spec.stem, affine=True, eps=1e-5)
        self.stages = nn.ModuleList(
            nn.Sequential(OSBlock(c_in, c_out, 0), OSBlock(c_out, c_out, groups))
            for c_in, c_out, groups in zip(
                (spec.stem, c1, c2), spec.channels, spec.gate_groups, strict=True
            )
        )
        self.transitions = nn.ModuleList(nn.Conv2d(c, c, 1) for c in (c1, c2))
        self.conv5 = nn.Conv2d(c3, c3, 1)
        map_size = (spec.input_size[0] // 16, spec.input_size[1] // 16)
        self.head_pool = nn.Conv2d(c3, c3, map_size, groups=c3)
        self.head_fc = nn.Linear(c3, spec.embed_dim)
        self.head_scale = nn.Parameter(torch.ones(spec.embed_dim))
        self.head_shift = nn.Parameter(torch.zeros(spec.embed_dim))

    @property
    def stem_channels(self) -> int:
        """Channels of :meth:`stem`'s output (where KPR adds the prompt embedding)."""
        return self.spec.stem

    @property
    def head_dim(self) -> int:
        """Size of :meth:`head`'s embedding."""
        return self.spec.embed_dim

    @property
    def feature_channels(self) -> int:
        """F, channels of :meth:`features`' map."""
        return self.spec.channels[-1]

    def stem(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` normalised RGB -> `(B, stem, H / 2, W / 2)` (before max-pool)."""
        return F.relu(self.conv1_norm(self.conv1(self.input_norm(images))))

    def body(self, stem: torch.Tensor) -> torch.Tensor:
        """:meth:`stem` output -> feature map `(B, F, H / 16, W / 16)` (after ReLU)."""
        x = F.max_pool2d(stem, 3, stride=2, padding=1)
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index < len(self.transitions):
                x = F.avg_pool2d(F.relu(self.transitions[index](x)), 2)
        return F.relu(self.conv5(x))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` normalised RGB -> feature map `(B, F, H / 16, W / 16)`."""
        return self.body(self.stem(images))

    def head(self, feature_map: torch.Tensor) -> torch.Tensor:
        """The network's own embedding head: `(B, F, h, w)` -> `(B, embed_dim)`, not normalised.

        The global depthwise conv spans the map of the training input (16 x 8 for
        256 x 128 crops); a map of another size is resized to it (bilinear) first.
        """
        size = self.head_pool.kernel_size
        if tuple(feature_map.shape[-2:]) != tuple(size):
            feature_map = F.interpolate(feature_map, size, mode="bilinear", align_corners=False)
        pooled = self.head_pool(feature_map).flatten(1)
        embedding = self.head_fc(pooled) * self.head_scale + self.head_shift
        return F.leaky_relu(embedding, self.spec.leaky_slope)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` normalised RGB -> `(B, embed_dim)` embedding (OMZ's output)."""
        return self.head(self.features(images))
