"""The ``--reid`` choices: name, description, trunk, representation and weights.

Kept free of torch imports so ``kpr-track --help`` can list them quickly; the models are
built by :func:`kpr_track.reid.build_reid`.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_REID = "kpr-global"
# --reid-backend choices: PyTorch, or onnxruntime on a `kpr-track export --format onnx` file.
REID_BACKENDS = ("torch", "onnx")


@dataclass(frozen=True)
class ReIDEntry:
    """One ``--reid`` choice.

    Attributes:
        description: what the model is, for ``--help``.
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
        ``kpr_track/assets/calibrations.json``."""
        return self.weights is not None and self.representation == "parts"

    def model(self):
        """The :class:`~kpr_track.reid.model.KPRModel` in eval mode (weights resolved
        offline-first).

        Raises:
            WeightsError: when the weights cannot be found or loaded.
        """
        from .reid.model import KPRModel, load_kpr_weights
        from .weights import resolve_weights

        if self.weights is None:
            return KPRModel(attention="pose", trunk=self.trunk).eval()
        return load_kpr_weights(resolve_weights(self.weights))


REID_MODELS: dict[str, ReIDEntry] = {
    "kpr": ReIDEntry(
        "KPR trained by kpr-track on the OSNet retail-0287 ReID trunk: learned part "
        "attention, keypoint prompts, part-visibility distance",
        "osnet-retail-0287",
        weights="kpr-osnet-0287-mot17-02",
    ),
    "kpr-global": ReIDEntry(
        "the holistic embedding alone of the trained KPR (the retail-0287 head fine-tuned "
        "with keypoint prompts at its stem), no parts (default: best tracking on PETS09)",
        "osnet-retail-0287",
        "global",
        weights="kpr-osnet-0287-mot17-02",
    ),
    "pose-guided": ReIDEntry(
        "training-free parts on the retail-0287 trunk, attention from the keypoints",
        "osnet-retail-0287",
    ),
    "retail-0287": ReIDEntry(
        "one global embedding of Open Model Zoo person-reidentification-retail-0287, untouched",
        "osnet-retail-0287",
        "global",
    ),
    "retail-0288": ReIDEntry(
        "one global embedding of Open Model Zoo person-reidentification-retail-0288 (smaller)",
        "osnet-retail-0288",
        "global",
    ),
    "pose-guided-imagenet": ReIDEntry(
        "training-free parts on an ImageNet MobileNetV2", "mobilenetv2-imagenet"
    ),
    "global-imagenet": ReIDEntry(
        "one average-pooled embedding of the ImageNet MobileNetV2",
        "mobilenetv2-imagenet",
        "global",
    ),
}


def reid_help() -> str:
    """``name: description`` of every ``--reid`` choice, for ``--help``."""
    lines = [f"{name}: {entry.description}" for name, entry in REID_MODELS.items()]
    return "; ".join([*lines, "none: no appearance (motion only)"])
