"""Ultralytics YOLO-pose backend: person boxes and COCO-17 keypoints in one pass.

The weights come from :func:`kpr_track.weights.resolve_weights` (``yolo11n-pose``) or an
explicit ``.pt`` path; Ultralytics is always given a local file and put offline, so it
never reaches the network. Ultralytics checkpoints are pickled modules: only load
files you trust (the registered one is sha256-verified).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou

from ..detections import Detections
from ..errors import ConfigError, WeightsError
from ..keypoints import NUM_KEYPOINTS
from ..weights import resolve_weights
from .base import Detector, check_frame

# Top-down pose: a predicted person matches a box when their IoU reaches this value.
_MIN_MATCH_IOU = 0.3


class YoloPoseDetector(Detector):
    """Person detector + pose estimator (Ultralytics YOLO-pose, e.g. yolo11n-pose).

    Args:
        weights: a YOLO-pose ``.pt`` file; None resolves the registered ``yolo11n-pose``.
        imgsz: inference size in pixels (long side). The nano model misses PETS09's
            small people at 640; 960 finds most of them (DESIGN.md section 6).
        conf: minimum detection score. Low by default so that low-score detections
            reach the tracker's second, motion-only association round.
        iou: NMS IoU threshold.
        device: torch device string, e.g. ``"cpu"`` or ``"cuda:0"``.
        max_det: maximum number of people per frame.
        pose_imgsz: inference size of the top-down pose crops (:meth:`pose_on_boxes`).
        crop_scale: enlargement of each box (about its centre) for top-down crops.

    Raises:
        WeightsError: weights not found, wrong sha256, or not loadable by Ultralytics.
        ConfigError: the weights are not a pose model.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        imgsz: int = 960,
        conf: float = 0.05,
        iou: float = 0.7,
        device: str = "cpu",
        max_det: int = 300,
        pose_imgsz: int = 192,
        crop_scale: float = 1.25,
    ) -> None:
        path = resolve_weights("yolo11n-pose", weights)
        # A user who set YOLO_OFFLINE explicitly keeps their choice.
        os.environ.setdefault("YOLO_OFFLINE", "1")
        from ultralytics import YOLO

        try:
            self._model = YOLO(str(path), task="pose")
        except Exception as error:  # any load failure means unusable weights
            message = str(error).replace("\n", " ")
            raise WeightsError(
                f"{path}: not loadable as Ultralytics YOLO weights ({message})"
            ) from None
        if self._model.task != "pose":
            raise ConfigError(f"{path}: a YOLO {self._model.task!r} model, expected a pose model")
        self._predict_args = {"conf": conf, "iou": iou, "device": device, "max_det": max_det}
        self.imgsz = imgsz
        self.pose_imgsz = pose_imgsz
        self.crop_scale = crop_scale

    def detect(self, frame: np.ndarray, frame_id: int) -> Detections:
        """Detect people and their keypoints; see :meth:`Detector.detect`."""
        result = self._predict([check_frame(frame)], self.imgsz)[0]
        boxes, scores, keypoints = _unpack(result)
        return Detections(boxes=boxes, scores=scores, keypoints=keypoints)

    def pose_on_boxes(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Top-down pose: run the pose model on a crop around each given box.

        Each box is enlarged ``crop_scale`` times about its centre, clipped to the
        frame, and all crops go through the model in one batch at ``pose_imgsz``
        (letterboxed, aspect kept). Of the people found in a crop, the one whose box
        has the highest IoU (at least 0.3) with the given box supplies its keypoints.

        Args:
            frame: `(H, W, 3)` uint8 BGR image.
            boxes: `(N, 4)` xyxy boxes in frame pixels.

        Returns:
            `(N, 17, 3)` float32 keypoints ``(x px, y px, conf)`` in frame pixels; all
            zeros for a box where no matching person was found.
        """
        frame = check_frame(frame)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        out = np.zeros((len(boxes), NUM_KEYPOINTS, 3), np.float32)
        origins = _crop_windows(boxes, self.crop_scale, frame.shape[1], frame.shape[0])
        valid = np.flatnonzero((origins[:, 2] > origins[:, 0]) & (origins[:, 3] > origins[:, 1]))
        if len(valid) == 0:
            return out
        crops = [frame[y0:y1, x0:x1] for x0, y0, x1, y1 in origins[valid]]
        for index, result in zip(valid, self._predict(crops, self.pose_imgsz), strict=True):
            found, _, keypoints = _unpack(result)
            if len(found) == 0:
                continue
            offset = origins[index, :2].astype(np.float32)
            found += np.tile(offset, 2)
            ious = box_iou(torch.from_numpy(boxes[index : index + 1]), torch.from_numpy(found))[0]
            best = int(ious.argmax())
            if ious[best] >= _MIN_MATCH_IOU:
                out[index] = keypoints[best]
                out[index, :, :2] += offset
        return out

    def _predict(self, images: list[np.ndarray], imgsz: int) -> list:
        # Ultralytics' CPU device setup sets the process-wide torch thread count to
        # cpu_count - 1 (1 on a 2-core machine), slowing every later torch model too.
        threads = torch.get_num_threads()
        try:
            return self._model.predict(images, imgsz=imgsz, verbose=False, **self._predict_args)
        finally:
            torch.set_num_threads(threads)


def _unpack(result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ultralytics result -> boxes `(N, 4)`, scores `(N,)`, keypoints `(N, 17, 3)` (float32)."""
    boxes = result.boxes.xyxy.cpu().numpy().astype(np.float32)
    scores = result.boxes.conf.cpu().numpy().astype(np.float32)
    if result.keypoints is None or len(boxes) == 0:
        keypoints = np.zeros((len(boxes), NUM_KEYPOINTS, 3), np.float32)
    else:
        keypoints = result.keypoints.data.cpu().numpy().astype(np.float32)
    return boxes, scores, keypoints


def _crop_windows(boxes: np.ndarray, scale: float, width: int, height: int) -> np.ndarray:
    """Boxes `(N, 4)` enlarged about their centre and clipped: integer `(N, 4)` x0,y0,x1,y1."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * scale / 2
    windows = np.concatenate([centre - half, centre + half], axis=1)
    windows = np.round(windows).astype(np.int64)
    windows[:, [0, 2]] = windows[:, [0, 2]].clip(0, width)
    windows[:, [1, 3]] = windows[:, [1, 3]].clip(0, height)
    return windows
