"""KPR appearance models and the part-visibility distance.

``build_reid(name)`` returns the appearance stage the CLI's ``--reid`` option names:

- ``pose-guided``: KPR with the training-free pose-guided part attention (BPBReID's
  "fixed attention"): part maps from the keypoint prompts, visibility from keypoint
  confidences, ImageNet MobileNetV2 trunk.
- ``global``: one global embedding from the same trunk (the non-part-based baseline).
- ``kpr``: KPR with learned part attention, the head trained by kpr-track
  (``kpr-mobilenetv2-mot17-02`` in the weights resolver; DESIGN.md §3).
- ``retail-0288``: one global embedding from Open Model Zoo's ReID-trained
  ``person-reidentification-retail-0288`` ONNX model (onnxruntime, CPU), weights from the
  resolver entry ``reid-retail-0288``.
- ``none``: no appearance (motion-only tracking).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from .appearance import KPRAppearance
from .distance import part_distance
from .model import KPRModel, KPROutput, load_kpr_weights
from .onnx_reid import OnnxReID


def _pose_guided(device: str) -> KPRAppearance:
    return KPRAppearance(KPRModel(attention="pose"), device=device)


def _global(device: str) -> KPRAppearance:
    return KPRAppearance(KPRModel(attention="pose"), representation="global", device=device)


def _retail_0288(device: str) -> OnnxReID:
    return OnnxReID()  # onnxruntime on the CPU whatever ``device`` is


def _kpr(device: str) -> KPRAppearance:
    from ..weights import resolve_weights

    model = load_kpr_weights(resolve_weights("kpr-mobilenetv2-mot17-02"))
    return KPRAppearance(model, device=device)


REID_MODELS: dict[str, Callable[[str], KPRAppearance | OnnxReID]] = {
    "pose-guided": _pose_guided,
    "global": _global,
    "kpr": _kpr,
    "retail-0288": _retail_0288,
}


def build_reid(name: str, device: str = "cpu") -> KPRAppearance | OnnxReID | None:
    """Build the appearance stage named ``name`` (or ``None`` for ``"none"``).

    Raises:
        ConfigError: on an unknown name, listing the valid ones.
        WeightsError: if the trunk weights cannot be found.
    """
    if name == "none":
        return None
    if name not in REID_MODELS:
        raise ConfigError(
            f"unknown --reid {name!r}; expected one of {sorted([*REID_MODELS, 'none'])}"
        )
    return REID_MODELS[name](device)


__all__ = [
    "KPRAppearance",
    "KPRModel",
    "KPROutput",
    "OnnxReID",
    "REID_MODELS",
    "build_reid",
    "part_distance",
]
