"""The appearance model as a self-describing ONNX file, and its onnxruntime runner.

:func:`export_onnx` writes the network the appearance stage runs
(:class:`~kpr_track.reid.appearance.RepresentationNet`) with two inputs, ``images``
`(N, 3, H, W)` and ``prompts`` `(N, K + 2, H / 2, W / 2)` (float32, see
:meth:`KPRAppearance.inputs <kpr_track.reid.appearance.KPRAppearance.inputs>`), two
outputs, ``embeddings`` `(N, P, D)` and ``visibility`` `(N, P)`, and a dynamic batch axis
``N``. What the stage needs besides the weights goes into the file's ``metadata_props``
(:data:`METADATA_KEYS`), so :func:`load_onnx_appearance` needs nothing else.

The TorchScript-based exporter is used (``dynamo=False``): torch's default dynamo
exporter needs the ``onnxscript`` package, which kpr-track does not depend on.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, WeightsError
from ..onnx_runtime import cpu_session
from .appearance import DEFAULT_BATCH, KPRAppearance, Representation, RepresentationNet
from .calibration import DistanceCalibration

# 2: prompts at the model's prompt size (metadata "prompt_size"); files of format 1 take
# prompts at the crop size, as their graphs were exported.
FORMAT = "kpr-track-appearance-2"
FORMATS = ("kpr-track-appearance-1", FORMAT)
OPSET = 17
INPUTS = ("images", "prompts")
OUTPUTS = ("embeddings", "visibility")
# metadata_props written by export_onnx; "calibration" is absent for an uncalibrated model.
METADATA_KEYS = (
    "format", "reid", "representation", "input_size", "prompt_size", "num_parts", "output_shape"
)  # fmt: skip


def export_onnx(appearance: KPRAppearance, reid: str, path: str | Path) -> None:
    """Write ``appearance``'s torch model as ONNX with its settings in the metadata.

    Args:
        appearance: a stage built on a :class:`~kpr_track.reid.model.KPRModel`.
        reid: the ``--reid`` name it was built from (stored for the record).
        path: the ``.onnx`` file to write.

    Raises:
        ConfigError: when ``appearance`` runs an ONNX model already.
        OutputError: when ``path`` cannot be written.
    """
    import onnx

    from ..io.writers import writing

    if not isinstance(appearance.net, RepresentationNet):
        raise ConfigError("export needs the torch model; this stage runs an ONNX file already")
    model = copy.deepcopy(appearance.model).cpu().to(memory_format=torch.contiguous_format)
    net = RepresentationNet(model.eval(), appearance.representation).eval()
    height, width = appearance.input_size
    prompt_size = appearance.prompt_size
    example = (torch.zeros(2, 3, height, width), torch.zeros(2, net.num_parts + 2, *prompt_size))
    batch = {0: "batch"}
    metadata = {
        "format": FORMAT,
        "reid": reid,
        "representation": appearance.representation,
        "input_size": json.dumps([height, width]),
        "prompt_size": json.dumps(list(prompt_size)),
        "num_parts": str(net.num_parts),
        "output_shape": json.dumps(list(net.output_shape())),
    }
    if appearance.calibration is not None:
        metadata["calibration"] = appearance.calibration.to_json()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Shape checks on the fixed crop size become constants: intended (H, W are fixed).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*instance_norm.*train=True")
        # The TorchScript exporter is chosen on purpose (see the module docstring).
        warnings.filterwarnings(
            "ignore", ".*legacy TorchScript-based ONNX export", DeprecationWarning
        )
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning)
        torch.onnx.export(
            net,
            example,
            buffer,
            dynamo=False,
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes={name: batch for name in (*INPUTS, *OUTPUTS)},
            opset_version=OPSET,
        )
    graph = onnx.load_from_string(buffer.getvalue())
    for key, value in metadata.items():
        graph.metadata_props.add(key=key, value=value)
    with writing(path):
        Path(path).write_bytes(graph.SerializeToString())


class OnnxAppearanceModel:
    """An :func:`export_onnx` file run by onnxruntime on the CPU, called like
    :class:`~kpr_track.reid.appearance.RepresentationNet`.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime intra-op threads; default torch's thread count, so one
            setting (``torch.set_num_threads``, ``--threads``) governs both backends.

    Attributes:
        reid, representation, input_size, num_parts, calibration: from the metadata.

    Raises:
        WeightsError: naming the file when it is missing, not ONNX, or lacks the metadata.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise WeightsError(f"{self.path}: no such ONNX file (write one with kpr-track export)")
        self.session = cpu_session(self.path, threads)
        metadata = self.session.get_modelmeta().custom_metadata_map
        try:
            if metadata["format"] not in FORMATS:
                raise ValueError(f"format {metadata['format']!r}, expected one of {FORMATS}")
            self.reid = metadata["reid"]
            self.representation: Representation = metadata["representation"]
            height, width = json.loads(metadata["input_size"])
            self.input_size = (int(height), int(width))
            height, width = json.loads(metadata.get("prompt_size", metadata["input_size"]))
            self._prompt_size = (int(height), int(width))
            self.num_parts = int(metadata["num_parts"])
            slots, dim = json.loads(metadata["output_shape"])
            self._output_shape = (int(slots), int(dim))
        except (KeyError, ValueError, TypeError) as error:
            raise WeightsError(
                f"{self.path}: not a kpr-track appearance model (metadata: {error}); "
                "write one with kpr-track export --format onnx"
            ) from None
        text = metadata.get("calibration")
        self.calibration = None if text is None else DistanceCalibration.from_json(text, str(path))

    def __call__(
        self, images: torch.Tensor, prompts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(B, 3, H, W)` crops + `(B, K + 2, H', W')` prompts (float32, CPU; ``(H', W')``
        = :meth:`prompt_size`) -> ``(embeddings (B, P, D), visibility (B, P))`` float32."""
        feeds = {
            name: np.ascontiguousarray(tensor.numpy())
            for name, tensor in zip(INPUTS, (images, prompts), strict=True)
        }
        embeddings, visibility = self.session.run(list(OUTPUTS), feeds)
        return torch.from_numpy(embeddings), torch.from_numpy(visibility)

    def prompt_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        """``(H', W')`` px of the prompts the file takes (``input_size`` must be its crop
        size; format 1 files: the crop size)."""
        return self._prompt_size

    def output_shape(self) -> tuple[int, int]:
        """``(P, D)``: slots and embedding size of the embeddings."""
        return self._output_shape


def load_onnx_appearance(path: str | Path, batch_size: int = DEFAULT_BATCH) -> KPRAppearance:
    """The appearance stage running the :func:`export_onnx` file ``path`` (CPU).

    Raises:
        WeightsError: naming the file when it is missing or not a kpr-track export.
    """
    model = OnnxAppearanceModel(path)
    return KPRAppearance(
        model,
        input_size=model.input_size,
        representation=model.representation,
        batch_size=batch_size,
        calibration=model.calibration,
    )
