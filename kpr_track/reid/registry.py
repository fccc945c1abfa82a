"""The registry of ``--reid`` models: one :class:`ReIDEntry` per name, and the one
function that builds any of them (:func:`build_reid`).

An entry carries everything a model needs: its description, its trunk (whose input
convention, ImageNet-normalised RGB crops of 256 x 128 pixels, is the trunk registry's,
:mod:`kpr_track.reid.trunk`), its representation, its trained weights (a name of the
weights resolver, :mod:`kpr_track.weights`) and where its distance calibration comes from
(the weights file, or ``kpr_track/assets/calibrations.json`` under the entry's name).
Adding a model is one entry here plus its files. The module imports no torch, so
``kpr-track --help`` lists the models quickly; models are built on demand.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from .appearance import KPRAppearance
    from .calibration import DistanceCalibration
    from .model import KPRModel

# Chosen on tracking PETS09-S2L1 (never trained or tuned on) and on ReID (issue 17):
# the trained parts fused with the holistic slot by calibrated evidence.
DEFAULT_REID = "kpr"
# --reid-backend choices (build_reid): onnxruntime on the CPU where it runs, else PyTorch;
# PyTorch; onnxruntime (a registered model's cached export, or a .onnx file).
REID_BACKENDS = ("auto", "torch", "onnx")
DEFAULT_BACKEND = "auto"
# --reid-precision choices: float32, or onnxruntime static int8 quantisation.
REID_PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"


@dataclass(frozen=True)
class ReIDEntry:
    """One ``--reid`` model.

    Attributes:
        description: what the model is, one short line for ``--help``.
        trunk: a name of :data:`kpr_track.reid.trunk.TRUNKS`.
        representation: ``"parts"`` (holistic + parts) or ``"global"`` (trunk head).
        weights: resolver name of trained KPR weights (learned attention); ``None``:
            training-free pose-guided attention.
    """

    description: str
    trunk: str
    representation: str = "parts"
    weights: str | None = None

    @property
    def calibration_in_weights(self) -> bool:
        """True when the weights file carries this entry's calibration (trained weights used
        with the part representation they were calibrated for); else it ships in
        ``kpr_track/assets/calibrations.json`` under the entry's name."""
        return self.weights is not None and self.representation == "parts"

    @property
    def reads_keypoints(self) -> bool:
        """True when the model's input includes keypoint prompts (trained weights, or
        pose-guided parts)."""
        return self.weights is not None or self.representation == "parts"

    def model(self) -> KPRModel:
        """The :class:`~kpr_track.reid.model.KPRModel` in eval mode (weights resolved
        offline-first).

        Raises:
            WeightsError: when the weights cannot be found or loaded.
        """
        from ..weights import resolve_weights
        from .model import KPRModel, load_kpr_weights

        if self.weights is None:
            return KPRModel(attention="pose", trunk=self.trunk).eval()
        return load_kpr_weights(resolve_weights(self.weights))


REID_MODELS: dict[str, ReIDEntry] = {
    "kpr": ReIDEntry(
        "KPR trained by kpr-track on MOT17-02 + MOT20-01 + MOT16-04 identities: learned "
        "parts + holistic, keypoint prompts, calibrated fusion of the slots",
        "osnet-retail-0287",
        weights="kpr-osnet-0287-mot3",
    ),
    "kpr-global": ReIDEntry(
        "the holistic embedding of the trained KPR (prompts at its stem), no parts",
        "osnet-retail-0287",
        "global",
        weights="kpr-osnet-0287-mot3",
    ),
    "pose-guided": ReIDEntry(
        "training-free parts on retail-0287, attention from the keypoints",
        "osnet-retail-0287",
    ),
    "retail-0287": ReIDEntry(
        "Open Model Zoo person-reidentification-retail-0287 embedding, untouched",
        "osnet-retail-0287",
        "global",
    ),
    "retail-0288": ReIDEntry(
        "Open Model Zoo person-reidentification-retail-0288 embedding (smaller)",
        "osnet-retail-0288",
        "global",
    ),
    "pose-guided-imagenet": ReIDEntry(
        "training-free parts on an ImageNet MobileNetV2", "mobilenetv2-imagenet"
    ),
    "global-imagenet": ReIDEntry(
        "average-pooled ImageNet MobileNetV2 features",
        "mobilenetv2-imagenet",
        "global",
    ),
}


def reid_entry(name: str) -> ReIDEntry:
    """The registered entry ``name``.

    Raises:
        ConfigError: on an unknown name, listing the registered ones.
    """
    if name not in REID_MODELS:
        raise ConfigError(
            f"unknown --reid {name!r}; expected one of {sorted([*REID_MODELS, 'none'])}"
        )
    return REID_MODELS[name]


def reid_help() -> str:
    """One line per ``--reid`` choice (``name: description``), the default marked once."""
    lines = [
        f"{name}: {entry.description}{' (default)' if name == DEFAULT_REID else ''}"
        for name, entry in REID_MODELS.items()
    ]
    return "\n".join([*lines, "none: no appearance (motion only)"])


def build_reid(
    name: str, device: str = "cpu", backend: str = "torch", precision: str = "fp32"
) -> KPRAppearance | None:
    """Build the appearance stage named ``name`` (or ``None`` for ``"none"``).

    Args:
        name: a key of :data:`REID_MODELS`, ``"none"``, or (backend ``"onnx"`` or ``"auto"``) a
            ``.onnx`` file written by ``kpr-track export --format onnx``.
        device: torch device (the ONNX backend runs on the CPU).
        backend: ``"torch"``; ``"onnx"``: onnxruntime on the CPU, running a ``.onnx``
            file or the registered model's export cached by
            :func:`~kpr_track.reid.onnx_cache.cached_onnx` (made and checked against
            PyTorch on first use); ``"auto"`` (the CLI's default): ``"onnx"`` on the CPU
            when onnxruntime is installed and the checked export can be made, else
            ``"torch"`` (a failed export is reported on stderr in one line).
        precision: ``"fp32"`` or ``"int8"`` (onnxruntime static quantisation; not with
            ``backend="torch"``).

    Raises:
        ConfigError: on an unknown name, backend or precision, listing the valid ones; on
            a name or precision that does not fit the backend.
        WeightsError: if the weights or the ONNX file cannot be found or loaded, or (with
            ``backend="onnx"``) the export differs from PyTorch beyond its tolerance.
    """
    if backend not in REID_BACKENDS:
        raise ConfigError(f"unknown --reid-backend {backend!r}; expected one of {REID_BACKENDS}")
    if precision not in REID_PRECISIONS:
        raise ConfigError(
            f"unknown --reid-precision {precision!r}; expected one of {REID_PRECISIONS}"
        )
    if name == "none":
        return None
    if name.endswith(".onnx"):
        from .export import load_onnx_appearance

        if backend == "torch" or device != "cpu" or precision != "fp32":
            raise ConfigError(
                f"--reid {name}: an ONNX file runs as it is with --reid-backend onnx (or "
                f"auto) on --device cpu, got --reid-backend {backend!r} --device {device!r} "
                f"--reid-precision {precision!r}"
            )
        return load_onnx_appearance(name)
    requested = backend
    if backend == "auto":
        backend = "onnx" if device == "cpu" and _has_onnxruntime() else "torch"
    elif backend == "onnx" and device != "cpu":
        raise ConfigError(f"--reid-backend onnx runs on the CPU, got --device {device!r}")
    if backend == "torch" and precision != "fp32":
        raise ConfigError(
            f"--reid-precision {precision} runs in onnxruntime (--reid-backend onnx or auto "
            f"on --device cpu), got --reid-backend {backend!r} --device {device!r}"
        )
    from .appearance import KPRAppearance

    entry = reid_entry(name)
    model = entry.model()
    stage = KPRAppearance(
        model,
        representation=entry.representation,
        device=device,
        calibration=reid_calibration(name, model),
    )
    if backend == "torch":
        return stage
    return _onnx_stage(name, stage, precision, fall_back=requested == "auto")


def _onnx_stage(name: str, stage: KPRAppearance, precision: str, fall_back: bool) -> KPRAppearance:
    """The onnxruntime stage of the cached, checked export of ``stage``; with
    ``fall_back``, ``stage`` itself (torch) when the export cannot be made or checked."""
    from ..errors import OutputError, WeightsError
    from .export import load_onnx_appearance
    from .onnx_cache import cached_onnx

    try:
        return load_onnx_appearance(cached_onnx(name, stage, precision), stage.batch_size)
    except (WeightsError, ConfigError, OutputError) as error:
        if not fall_back:
            raise
        print(f"kpr-track: warning: {error}; --reid {name} runs in PyTorch", file=sys.stderr)
        return stage


def _has_onnxruntime() -> bool:
    """Whether onnxruntime is installed (found without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def reid_calibration(name: str, model: KPRModel | None = None) -> DistanceCalibration:
    """The distance calibration of the ``--reid`` model ``name``: from its weights file
    when it carries the calibration of this representation, else the shipped one.

    Args:
        name: a key of :data:`REID_MODELS`.
        model: the entry's model when already built (else it is loaded if needed).

    Raises:
        ConfigError: on an unknown name, or when no calibration ships for ``name``.
        WeightsError: when the weights cannot be found.
    """
    from .calibration import shipped_calibration

    entry = reid_entry(name)
    if entry.calibration_in_weights:
        return (model or entry.model()).calibration
    return shipped_calibration(name)
