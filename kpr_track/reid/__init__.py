"""KPR appearance models and the part-visibility distance.

``build_reid(name)`` returns the appearance stage the CLI's ``--reid`` option names;
:data:`REID_MODELS` lists every name with a one-line description (shown by ``--help``).
Every stage carries a :class:`DistanceCalibration` (``stage.calibration``) fitted on
the MOT17-02 training identities, which the tracker reads instead of a hand-set gate.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..reid_catalog import DEFAULT_REID, REID_BACKENDS, REID_MODELS, ReIDEntry, reid_help
from .appearance import KPRAppearance
from .calibration import DistanceCalibration, fit_calibration, shipped_calibration
from .distance import part_distance
from .model import KPRModel, KPROutput


def build_reid(name: str, device: str = "cpu", backend: str = "torch") -> KPRAppearance | None:
    """Build the appearance stage named ``name`` (or ``None`` for ``"none"``).

    Args:
        name: a key of :data:`REID_MODELS`, ``"none"``, or with ``backend="onnx"`` a
            ``.onnx`` file written by ``kpr-track export --format onnx``.
        device: torch device (the ONNX backend runs on the CPU).
        backend: ``"torch"`` or ``"onnx"`` (onnxruntime).

    Raises:
        ConfigError: on an unknown name or backend, listing the valid ones; on a name
            that does not fit the backend.
        WeightsError: if the weights (or the ONNX file) cannot be found or loaded.
    """
    if backend not in REID_BACKENDS:
        raise ConfigError(f"unknown --reid-backend {backend!r}; expected one of {REID_BACKENDS}")
    if name == "none":
        return None
    if backend == "onnx":
        from .export import load_onnx_appearance

        if not name.endswith(".onnx") or device != "cpu":
            raise ConfigError(
                f"--reid-backend onnx runs a .onnx file on the CPU (--reid FILE.onnx, --device "
                f"cpu; write one with kpr-track export --format onnx), got --reid {name!r} "
                f"--device {device!r}"
            )
        return load_onnx_appearance(name)
    if name.endswith(".onnx"):
        raise ConfigError(f"--reid {name}: an ONNX file runs with --reid-backend onnx")
    if name not in REID_MODELS:
        raise ConfigError(
            f"unknown --reid {name!r}; expected one of {sorted([*REID_MODELS, 'none'])}"
        )
    entry = REID_MODELS[name]
    model = entry.model()
    return KPRAppearance(
        model,
        representation=entry.representation,
        device=device,
        calibration=reid_calibration(name, model),
    )


def reid_calibration(name: str, model: KPRModel | None = None) -> DistanceCalibration:
    """The distance calibration of the ``--reid`` model ``name``: from its weights file
    when it carries the calibration of this representation, else the shipped one.

    Args:
        name: a key of :data:`REID_MODELS`.
        model: the entry's model when already built (else it is loaded if needed).

    Raises:
        ConfigError: when no calibration ships for ``name``.
        WeightsError: when the weights cannot be found.
    """
    entry = REID_MODELS[name]
    if entry.calibration_in_weights:
        return (model or entry.model()).calibration
    return shipped_calibration(name)


__all__ = [
    "DEFAULT_REID",
    "DistanceCalibration",
    "KPRAppearance",
    "KPRModel",
    "KPROutput",
    "REID_BACKENDS",
    "REID_MODELS",
    "ReIDEntry",
    "build_reid",
    "fit_calibration",
    "part_distance",
    "reid_calibration",
    "reid_help",
]
