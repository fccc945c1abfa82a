"""YOLOX person detector from an ONNX export, run with onnxruntime.

Pre- and post-processing follow YOLOX (Ge et al., "YOLOX: Exceeding YOLO Series in
2021", arXiv 2107.08430) as its ONNX export expects them:

- letterbox: resize keeping the aspect ratio so the image fits the network input,
  pad right/bottom with grey 114, BGR, CHW float32 0-255 (no mean/std);
- output `(1, A, 5 + classes)` raw grid predictions per anchor point, for strides
  8, 16, 32 in that order, row-major: ``xy = (out + grid) * stride``,
  ``wh = exp(out) * stride``; objectness and class scores are already sigmoids;
- score = objectness * person probability (COCO class 0), then NMS.

Keypoints come from an optional top-down ``pose`` callable, else zeros.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision.ops import nms

from ..detections import Detections
from ..errors import ConfigError
from ..keypoints import NUM_KEYPOINTS
from ..onnx_runtime import cpu_session
from ..weights import resolve_weights
from .base import Detector, PoseFn, check_frame

_STRIDES = (8, 16, 32)
_PAD_VALUE = 114
_PERSON = 0


class YoloxDetector(Detector):
    """YOLOX (e.g. YOLOX-nano 416x416) person detector.

    Args:
        weights: a YOLOX ``.onnx`` export with raw grid outputs; None resolves the
            registered ``yolox-nano``.
        conf: minimum score (objectness x person probability).
        iou: NMS IoU threshold.
        pose: top-down pose callable giving keypoints for the boxes; None gives zeros.

    Raises:
        WeightsError: weights not found, wrong sha256, or not loadable by onnxruntime.
        ConfigError: the graph's input is not a fixed `(1, 3, H, W)` or its output does
            not match the anchor points of that input size.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        conf: float = 0.1,
        iou: float = 0.45,
        pose: PoseFn | None = None,
    ) -> None:
        path = resolve_weights("yolox-nano", weights)
        self._session = cpu_session(path)
        graph_input = self._session.get_inputs()[0]
        shape = graph_input.shape
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]) or shape[1] != 3:
            raise ConfigError(f"{path}: expected a fixed (1, 3, H, W) input, got {shape}")
        self._input_name = graph_input.name
        self.input_hw = (int(shape[2]), int(shape[3]))
        self._grid, self._stride = _anchor_points(*self.input_hw)
        anchors = self._session.get_outputs()[0].shape[1]
        if isinstance(anchors, int) and anchors != len(self._grid):
            raise ConfigError(
                f"{path}: output has {anchors} anchor points, expected {len(self._grid)} "
                f"for a {self.input_hw} input with strides {_STRIDES}"
            )
        self.conf = conf
        self.iou = iou
        self.pose = pose

    def detect(self, frame: np.ndarray, frame_id: int) -> Detections:
        """Detect people; see :meth:`Detector.detect`."""
        frame = check_frame(frame)
        image, ratio = letterbox(frame, self.input_hw)
        raw = self._session.run(None, {self._input_name: image[None]})[0][0]
        boxes, scores = self._decode(raw, ratio, frame.shape[1], frame.shape[0])
        if self.pose is not None and len(boxes):
            keypoints = self.pose(frame, boxes)
        else:
            keypoints = np.zeros((len(boxes), NUM_KEYPOINTS, 3), np.float32)
        return Detections(boxes=boxes, scores=scores, keypoints=keypoints)

    def _decode(
        self, raw: np.ndarray, ratio: float, width: int, height: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw `(A, 5 + C)` predictions -> person boxes `(N, 4)` xyxy px and scores `(N,)`."""
        scores = raw[:, 4] * raw[:, 5 + _PERSON]
        keep = scores >= self.conf
        raw, scores = raw[keep], scores[keep]
        stride = self._stride[keep]
        centre = (raw[:, :2] + self._grid[keep]) * stride
        size = np.exp(raw[:, 2:4]) * stride
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) / ratio
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        kept = nms(torch.from_numpy(boxes), torch.from_numpy(scores), self.iou).numpy()
        return boxes[kept].astype(np.float32), scores[kept].astype(np.float32)


def letterbox(frame: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, float]:
    """YOLOX preprocessing: fit inside ``input_hw`` keeping aspect, pad 114 right/bottom.

    Args:
        frame: `(H, W, 3)` uint8 BGR image.
        input_hw: network input ``(height, width)``.

    Returns:
        `(3, h, w)` float32 BGR image in 0-255 and the resize ratio (input px per frame px).
    """
    ratio = min(input_hw[0] / frame.shape[0], input_hw[1] / frame.shape[1])
    size = (int(frame.shape[1] * ratio), int(frame.shape[0] * ratio))
    padded = np.full((*input_hw, 3), _PAD_VALUE, np.uint8)
    padded[: size[1], : size[0]] = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32), ratio


def _anchor_points(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell offsets `(A, 2)` (x, y) and strides `(A, 1)` in YOLOX output order."""
    grids, strides = [], []
    for stride in _STRIDES:
        ys, xs = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((xs.size, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)
