"""The detector interface and :func:`build_detector`, which turns a spec string into one.

Spec strings (``--detector`` on the CLI):

- ``yolo-pose`` (default) or ``yolo-pose:PATH.pt``: Ultralytics YOLO-pose, boxes + keypoints;
- ``yolox`` or ``yolox:PATH.onnx``: YOLOX ONNX person detector (keypoints from ``pose``);
- ``mot:PATH/det.txt``: MOTChallenge detections file;
- ``gt:PATH/gt.txt``: MOTChallenge ground-truth boxes (oracle detections).

Backends are imported only when built, so ``import kpr_track`` stays light.
"""

from __future__ import annotations

import abc
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..detections import Detections
from ..errors import ConfigError, InputError

PoseFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Top-down pose: ``(frame (H, W, 3) BGR uint8, boxes (N, 4) xyxy px) -> (N, 17, 3)``."""


class Detector(abc.ABC):
    """Finds the people of one frame."""

    @abc.abstractmethod
    def detect(self, frame: np.ndarray, frame_id: int) -> Detections:
        """Detect people in one frame.

        Args:
            frame: `(H, W, 3)` uint8 BGR image.
            frame_id: 1-based frame number in the sequence (file-based detectors use it
                to look up their rows; image-based ones ignore it).

        Returns:
            The frame's :class:`~kpr_track.detections.Detections` (boxes in frame pixels).
        """


@dataclass(frozen=True)
class _Backend:
    module: str
    cls: str
    path_required: bool
    form: str
    fixed: tuple[tuple[str, Any], ...] = ()


_BACKENDS: dict[str, _Backend] = {
    "yolo-pose": _Backend("yolo_pose", "YoloPoseDetector", False, "yolo-pose[:PATH.pt]"),
    "yolox": _Backend("yolox", "YoloxDetector", False, "yolox[:PATH.onnx]"),
    "mot": _Backend("files", "MotFileDetector", True, "mot:PATH/det.txt", (("kind", "det"),)),
    "gt": _Backend("files", "MotFileDetector", True, "gt:PATH/gt.txt", (("kind", "gt"),)),
}
DETECTOR_FORMS = tuple(backend.form for backend in _BACKENDS.values())


# Automatic input size of the image detectors (yolo-pose): the source's long side rounded
# up to a multiple of 32, within these bounds (px). Chosen on MOT20-01, MOT17-02-raw540 and
# PETS09-S2L1 by recall and time (benchmarks/detector_recall.py; README "Detection").
AUTO_IMGSZ_MIN = 960
AUTO_IMGSZ_MAX = 1920


def default_imgsz(detector: str, width: int | None = None, height: int | None = None) -> int | None:
    """The input size a detector gets when the user gives none, from the source's size.

    ``yolo-pose``: the long side rounded up to a multiple of 32, clamped to
    [``AUTO_IMGSZ_MIN``, ``AUTO_IMGSZ_MAX``], so the small people of a 1080p crowd are not
    halved away and a small video is still enlarged to where the nano model finds small
    people. ``yolox``: None (its export's fixed input, no tiling). File detectors: None.

    Args:
        detector: a spec string (``yolo-pose[:PATH]``, ``yolox[:PATH]``, ...).
        width: source frame width px (None with ``height``: size unknown, the minimum).
        height: source frame height px.
    """
    if detector.partition(":")[0] != "yolo-pose":
        return None
    if width is None or height is None:
        return AUTO_IMGSZ_MIN
    side = -(-max(width, height) // 32) * 32
    return int(min(max(side, AUTO_IMGSZ_MIN), AUTO_IMGSZ_MAX))


def check_frame(frame: np.ndarray) -> np.ndarray:
    """Return ``frame`` if it is an `(H, W, 3)` uint8 image.

    Raises:
        InputError: with the expected and actual shape / dtype.
    """
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", type(frame).__name__)
        raise InputError(f"frame: expected an (H, W, 3) BGR image, got shape {shape}")
    if frame.dtype != np.uint8:
        raise InputError(f"frame: expected dtype uint8, got {frame.dtype}")
    return frame


def build_detector(spec: str = "yolo-pose", **options: Any) -> Detector:
    """Build a detector from a spec string.

    Args:
        spec: one of :data:`DETECTOR_FORMS` (see the module docstring).
        **options: keyword arguments of the backend's constructor (e.g. ``imgsz``,
            ``conf``). ``pose`` may be a :data:`PoseFn`, or a ``yolo-pose[:PATH.pt]``
            spec whose top-down pose is then used.

    Returns:
        The detector.

    Raises:
        ConfigError: unknown spec, missing path, or an option the backend does not take
            (the message lists the valid forms / options).
    """
    kind, _, path = spec.partition(":")
    backend = _BACKENDS.get(kind)
    if backend is None:
        raise ConfigError(f"unknown detector {spec!r}; valid forms: {', '.join(DETECTOR_FORMS)}")
    if backend.path_required and not path:
        raise ConfigError(f"detector {spec!r} needs a file: use {backend.form}")
    cls = getattr(importlib.import_module(f".{backend.module}", __package__), backend.cls)
    # The first parameter is the spec's PATH; ``kind`` is fixed by the spec.
    accepted = [name for name in list(inspect.signature(cls).parameters)[1:] if name != "kind"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"detector {kind!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(accepted)}"
        )
    if isinstance(options.get("pose"), str):
        options["pose"] = _pose_from_spec(options["pose"])
    return cls(path or None, **dict(backend.fixed), **options)


def _pose_from_spec(spec: str) -> PoseFn:
    if spec.partition(":")[0] != "yolo-pose":
        raise ConfigError(f"unknown pose model {spec!r}; valid forms: yolo-pose[:PATH.pt]")
    return build_detector(spec).pose_on_boxes
