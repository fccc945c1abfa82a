"""The ONNX runtime of a ``--reid`` model, exported once into the cache and checked.

:func:`cached_onnx` gives the path of ``<cache>/onnx/<name>-<fingerprint>.onnx``
(``<cache>``: :func:`kpr_track.weights.cache_dir`), building it on first use: the torch
model is exported (:func:`~kpr_track.reid.export.export_onnx`), for ``int8`` statically
quantised by onnxruntime, and run by onnxruntime next to PyTorch on real crops of people
(:func:`probe_inputs`); the largest absolute difference of the embeddings is logged
(INFO) and kept in the sidecar, and a file above :data:`TOLERANCE` is refused.

The fingerprint hashes what the file is made from: the weights (every tensor of the
model), the source files of the network's modules, :data:`EXPORT_VERSION`, the opset
and the precision, so a changed model or exporter gets a new file. A sidecar ``.json``
holds the file's sha256 and fingerprint; a cached file that disagrees with it
(truncated, overwritten, another fingerprint) is reported in one line and rebuilt
(:func:`cache_problem`). Files are written under a temporary name and moved into place
(``os.replace``), so a crash leaves no half file.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import WeightsError
from .appearance import KPRAppearance
from .export import OPSET, export_onnx, load_onnx_appearance

_LOG = logging.getLogger(__name__)
PRECISIONS = ("fp32", "int8")
# Bump when export_onnx, the quantisation settings or the probe crops change (2: the
# trunk's embedding head stays float32 in int8 exports; 3: half-resolution prompts).
EXPORT_VERSION = 3
# Largest absolute difference of the (unit-length) embeddings between onnxruntime and
# PyTorch on the probe crops. fp32 measured 1e-6 (kpr-global, kpr); int8 0.080 (kpr-global)
# and 0.075 (kpr: QDQ, per-channel weights, the head in float32), where a broken
# quantisation (QOperator) gave 0.17.
TOLERANCE = {"fp32": 1e-3, "int8": 0.1}
# Probe photos shipped by Ultralytics (a dependency), and the detector score to keep a person.
PROBE_IMAGES = ("bus.jpg", "zidane.jpg")
PROBE_MIN_SCORE = 0.5


def cached_onnx(name: str, appearance: KPRAppearance, precision: str = "fp32") -> Path:
    """The checked ONNX file of the ``--reid`` model ``name`` at ``precision``, built into
    the cache on first use (see the module docstring).

    Args:
        name: the ``--reid`` name (part of the file name).
        appearance: its torch stage (the model the file is exported from).
        precision: ``"fp32"`` or ``"int8"``.

    Returns:
        Path of an intact ``.onnx`` file whose sidecar records its sha256, fingerprint and
        measured difference from PyTorch.

    Raises:
        WeightsError: the export differs from PyTorch by more than :data:`TOLERANCE`.
        OutputError: the cache folder cannot be written.
    """
    from ..io.writers import writing
    from ..weights import cache_dir

    fingerprint = export_fingerprint(appearance, precision)
    path = cache_dir() / "onnx" / f"{name}-{fingerprint[:16]}.onnx"
    problem = cache_problem(path, fingerprint)
    if problem is None:
        return path
    if path.exists() or path.with_suffix(".json").exists():
        _LOG.warning("kpr-track: cached ONNX %s; rebuilding it", problem)
    with writing(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(dir=path.parent, prefix=".build-")
    built = Path(folder) / path.name
    try:
        difference = build_onnx(appearance, name, precision, built)
        record = {"fingerprint": fingerprint, "sha256": _sha256(built)}
        record.update(precision=precision, max_abs_difference=difference)
        with writing(path.parent):
            built.with_suffix(".json").write_text(json.dumps(record, indent=1))
            os.replace(built, path)  # the file first: a sidecar never vouches for an old one
            os.replace(built.with_suffix(".json"), path.with_suffix(".json"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _LOG.info(
        "kpr-track: exported --reid %s (%s) to %s; max abs embedding difference from "
        "PyTorch %.2e on real crops (tolerance %g)",
        *(name, precision, path, difference, TOLERANCE[precision]),
    )
    return path


def cache_problem(path: Path, fingerprint: str) -> str | None:
    """Why the cached ``path`` must not be used, in one line; None when it is intact
    (present, with a sidecar ``.json`` whose fingerprint is ``fingerprint`` and whose
    sha256 is the file's)."""
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        return f"{path}: missing (file or its {sidecar.name})"
    try:
        record = json.loads(sidecar.read_text())
        expected, recorded = record["sha256"], record["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"{sidecar}: unreadable ({type(error).__name__}: {error})"
    if recorded != fingerprint:
        return f"{path}: fingerprint {recorded[:16]}, expected {fingerprint[:16]}"
    actual = _sha256(path)
    if actual != expected:
        return f"{path}: sha256 {actual[:16]}..., its sidecar says {expected[:16]}..."
    return None


def export_fingerprint(appearance: KPRAppearance, precision: str) -> str:
    """Hex sha256 of everything the ONNX file of ``appearance`` is made from: every tensor
    of the model (names, dtypes, shapes, bytes), the source of the network's modules, the
    representation, crop size, opset, :data:`EXPORT_VERSION` and ``precision``."""
    digest = hashlib.sha256()
    header = [EXPORT_VERSION, OPSET, precision, appearance.representation]
    digest.update(json.dumps([*header, list(appearance.input_size)]).encode())
    for key, tensor in appearance.model.state_dict().items():
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    sources = sorted({inspect.getsourcefile(type(m)) or "" for m in appearance.model.modules()})
    for source in [s for s in sources if "kpr_track" in s]:
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()


def build_onnx(appearance: KPRAppearance, name: str, precision: str, path: Path) -> float:
    """Export ``appearance`` to ``path`` at ``precision`` and check it against PyTorch.

    int8: onnxruntime static quantisation (``quantize_static``, QDQ, per-channel int8
    weights, uint8 activations) calibrated on :func:`probe_inputs`, the trunk's embedding
    head kept in float32 (:func:`_head_nodes`).

    Returns:
        The largest absolute embedding difference from PyTorch on :func:`probe_inputs`.

    Raises:
        ConfigError: an unknown precision.
        WeightsError: the difference is above :data:`TOLERANCE` (``path`` is removed).
    """
    from ..errors import ConfigError

    if precision not in PRECISIONS:
        raise ConfigError(f"unknown --reid-precision {precision!r}; expected one of {PRECISIONS}")
    images, prompts = probe_inputs(appearance)
    if precision == "fp32":
        export_onnx(appearance, name, path)
    else:
        float_path = path.with_name(f"{path.stem}.fp32.onnx")
        export_onnx(appearance, name, float_path)
        _quantize(float_path, path, images, prompts)
        float_path.unlink()
    with torch.inference_mode():
        expected = appearance.net(images.to(appearance.device), prompts.to(appearance.device))
    got = load_onnx_appearance(path).net(images, prompts)
    difference = float((got[0] - expected[0].cpu()).abs().max())
    if not difference <= TOLERANCE[precision]:
        path.unlink()
        raise WeightsError(
            f"the {precision} ONNX export of --reid {name} differs from PyTorch by "
            f"{difference:.3g} (tolerance {TOLERANCE[precision]:g}); not used"
        )
    return difference


def probe_inputs(appearance: KPRAppearance) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops and prompts of real people: those yolo11n-pose finds (score >= 0.5) in the
    photos Ultralytics ships (:data:`PROBE_IMAGES`) and in their mirror images, each
    with the other people of its photo as negative prompts (14 crops).

    Returns:
        ``(crops (B, 3, H, W), prompts (B, K + 2, H / 2, W / 2))`` float32 on the CPU.

    Raises:
        WeightsError: the yolo11n-pose weights cannot be found.
    """
    import cv2
    from ultralytics.utils import ASSETS

    from ..detectors.base import build_detector

    detector = build_detector("yolo-pose", imgsz=640, conf=PROBE_MIN_SCORE)
    batches = []
    for image in PROBE_IMAGES:
        photo = cv2.imread(str(Path(ASSETS) / image))
        if photo is None:
            raise WeightsError(f"{Path(ASSETS) / image}: the probe photo cannot be read")
        for frame in (photo, np.ascontiguousarray(photo[:, ::-1])):
            detections = detector.detect(frame, 1)
            detections = detections[detections.scores >= PROBE_MIN_SCORE]
            batches.append([t.cpu() for t in appearance.inputs(frame, detections)])
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def _quantize(source: Path, target: Path, images: torch.Tensor, prompts: torch.Tensor) -> None:
    """onnxruntime static int8 quantisation of ``source`` into ``target``, calibrated on
    one crop at a time of ``images`` + ``prompts`` (min-max ranges)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(
                {"images": images[i : i + 1].numpy(), "prompts": prompts[i : i + 1].numpy()}
                for i in range(len(images))
            )

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    prepared = source.with_name(f"{source.stem}.pre.onnx")
    # The quantiser warns on the root logger that 1-d normalisation weights have no
    # channel axis (they are quantised per tensor, as intended).
    logging.disable(logging.WARNING)
    try:
        # The symbolic shape pass cannot follow the model's reshapes; onnx's own does.
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(target),
            Crops(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=_head_nodes(prepared),
        )
    finally:
        logging.disable(logging.NOTSET)
    prepared.unlink()


def _head_nodes(path: Path) -> list[str]:
    """Names of the nodes of the ONNX file ``path`` that run the trunk's embedding head
    (those reading a ``model.trunk.head*`` weight): kept in float32 by :func:`_quantize`.

    The holistic embedding is the head's output: with the head in int8 it moved by up to
    0.104 (max abs, unit-length embeddings; 0.093 with two threads) on the PETS09 crops of
    ``tests/test_onnx_cache.py`` (``--reid kpr-global``, the earlier prompt stem), above
    :data:`TOLERANCE`; with the head in float32 by 0.066 (0.068), and with today's stem by
    0.064 (0.057). The part embeddings of ``--reid kpr`` move by at most 0.015 either way.
    The head is a global depthwise convolution and one fully connected layer, a negligible
    share of the time.
    """
    import onnx

    graph = onnx.load(str(path)).graph
    weights = {i.name for i in graph.initializer if i.name.startswith("model.trunk.head")}
    return [node.name for node in graph.node if weights.intersection(node.input)]


def _sha256(path: Path) -> str:
    from ..weights import file_sha256

    return file_sha256(path)
