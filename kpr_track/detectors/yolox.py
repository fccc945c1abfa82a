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

The export's input size is fixed (416 x 416 for YOLOX-nano). An ``imgsz`` larger than it
is reached by tiling: the frame is scaled so that its long side is ``imgsz`` pixels and
cut into overlapping tiles of the input size, each run through the network; the boxes of
all tiles go through one NMS (the slicing of SAHI, Akyon et al., ICIP 2022).
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
        imgsz: px, the long side the frame is scaled to; above the network input's long
            side the scaled frame is tiled (``TILE_OVERLAP``); None or not above it: the
            whole frame is letterboxed into one input.

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
        imgsz: int | None = None,
    ) -> None:
        if imgsz is not None and imgsz < 32:
            raise ConfigError(f"yolox imgsz must be >= 32 pixels, got {imgsz}")
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
        self.imgsz = imgsz

    def detect(self, frame: np.ndarray, frame_id: int) -> Detections:
        """Detect people; see :meth:`Detector.detect`."""
        frame = check_frame(frame)
        scale = 0.0 if self.imgsz is None else self.imgsz / max(frame.shape[:2])
        if scale * max(frame.shape[:2]) <= max(self.input_hw):
            boxes, scores = self._run(frame, 0, 0)
        else:
            scaled = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
            found = [
                self._run(scaled[y : y + self.input_hw[0], x : x + self.input_hw[1]], x, y)
                for y, x in _tile_origins(scaled.shape[:2], self.input_hw)
            ]
            boxes = np.concatenate([b for b, _ in found]) / scale
            scores = np.concatenate([s for _, s in found])
            kept = nms(torch.from_numpy(boxes), torch.from_numpy(scores), self.iou).numpy()
            boxes, scores = boxes[kept], scores[kept]
        if self.pose is not None and len(boxes):
            keypoints = self.pose(frame, boxes)
        else:
            keypoints = np.zeros((len(boxes), NUM_KEYPOINTS, 3), np.float32)
        return Detections(boxes=boxes, scores=scores, keypoints=keypoints)

    def _run(self, image: np.ndarray, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
        """Boxes `(N, 4)` xyxy px (offset by the tile origin ``x, y``) and scores `(N,)`."""
        blob, ratio = letterbox(image, self.input_hw)
        raw = self._session.run(None, {self._input_name: blob[None]})[0][0]
        boxes, scores = self._decode(raw, ratio, image.shape[1], image.shape[0])
        return boxes + np.array([x, y, x, y], np.float32), scores

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


TILE_OVERLAP = 0.25  # fraction of a tile shared with its neighbour (people on the seams)


def _tile_origins(size_hw: tuple[int, int], tile_hw: tuple[int, int]) -> list[tuple[int, int]]:
    """``(y, x)`` px origins of tiles of ``tile_hw`` covering an image of ``size_hw``, each
    overlapping its neighbour by at least ``TILE_OVERLAP``; the last tile of a row or
    column ends at the border."""

    def starts(size: int, tile: int) -> list[int]:
        if size <= tile:
            return [0]
        count = int(np.ceil((size - tile) / (tile * (1 - TILE_OVERLAP)))) + 1
        return np.linspace(0, size - tile, count).round().astype(int).tolist()

    return [(y, x) for y in starts(size_hw[0], tile_hw[0]) for x in starts(size_hw[1], tile_hw[1])]


def _anchor_points(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell offsets `(A, 2)` (x, y) and strides `(A, 1)` in YOLOX output order."""
    grids, strides = [], []
    for stride in _STRIDES:
        ys, xs = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((xs.size, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)
