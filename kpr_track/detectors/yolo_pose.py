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

from ..boxes import box_iou
from ..detections import Detections
from ..errors import ConfigError, WeightsError
from ..keypoints import NUM_KEYPOINTS
from ..reid.crops import crop_boxes
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
        pose_size: ``(height, width)`` px of the top-down pose crops
            (:meth:`pose_on_boxes`), multiples of 32.
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
        pose_size: tuple[int, int] = (192, 96),
        crop_scale: float = 1.25,
    ) -> None:
        if any(side < 32 or side % 32 for side in pose_size):
            raise ConfigError(f"pose_size must be (height, width) multiples of 32, got {pose_size}")
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
        self.pose_size = pose_size
        self.device = torch.device(device)
        self.weights = path
        self._network: torch.nn.Module | None = None
        self.crop_scale = crop_scale

    def detect(self, frame: np.ndarray, frame_id: int) -> Detections:
        """Detect people and their keypoints; see :meth:`Detector.detect`."""
        result = self._predict([check_frame(frame)], self.imgsz)[0]
        boxes, scores, keypoints = _unpack(result)
        return Detections(boxes=boxes, scores=scores, keypoints=keypoints)

    @torch.inference_mode()
    def pose_on_boxes(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Top-down pose: the pose network run on one batched crop per given box.

        Each box is enlarged ``crop_scale`` times about its centre and widened or
        heightened to the aspect of ``pose_size`` (the top-down convention of Xiao et al.,
        "Simple Baselines for Human Pose Estimation", ECCV 2018), so nobody is stretched;
        all crops are cut and resized in one batched RoIAlign (pixels outside the frame
        read as black) and go through the network as one tensor, without Ultralytics'
        per-image pre- and post-processing. In each crop the prediction with the highest
        ``score x IoU`` against the given box (IoU at least 0.3, score at least ``conf``)
        supplies the keypoints; no NMS is needed for a single choice.

        Args:
            frame: `(H, W, 3)` uint8 BGR image.
            boxes: `(N, 4)` xyxy boxes in frame pixels.

        Returns:
            `(N, 17, 3)` float32 keypoints ``(x px, y px, conf in [0, 1])`` in frame
            pixels; all zeros for a box where no matching person was found.

        Raises:
            InputError: when ``frame`` is not an `(H, W, 3)` uint8 image.
            ConfigError: when the weights' pose head is not a dense YOLOv8 / YOLO11 head.
        """
        frame = check_frame(frame)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        out = np.zeros((len(boxes), NUM_KEYPOINTS, 3), np.float32)
        if len(boxes) == 0:
            return out
        network = self._pose_network()
        height, width = self.pose_size
        windows = torch.from_numpy(_crop_windows(boxes, self.crop_scale, height / width))
        crops = crop_boxes(frame, windows.numpy(), (height, width), self.device).div_(255.0)
        raw = network(crops)[0].float().cpu()  # (N, 4 + 1 + 17 * 3, anchors)
        # Crop px -> frame px: frame = window origin + crop * (window size / crop size).
        origin = windows[:, None, :2]
        scale = (windows[:, None, 2:] - windows[:, None, :2]) / torch.tensor([width, height])
        centre, size = raw[:, 0:2].mT, raw[:, 2:4].mT  # (N, A, 2) crop px
        predicted = torch.cat([centre - size / 2, centre + size / 2], dim=-1) * scale.repeat(
            1, 1, 2
        ) + origin.repeat(1, 1, 2)
        iou = torch.from_numpy(box_iou(boxes[:, None], predicted.numpy()))  # (N, A)
        score = raw[:, 4]
        quality = torch.where(
            (iou >= _MIN_MATCH_IOU) & (score >= self._predict_args["conf"]), score * iou, -1.0
        )
        best = quality.argmax(dim=1)
        found = quality.gather(1, best[:, None])[:, 0] > 0
        rows = torch.arange(len(boxes))
        keypoints = raw[rows, 5:, best].reshape(-1, NUM_KEYPOINTS, 3)
        keypoints[..., :2] = keypoints[..., :2] * scale + origin
        out[found.numpy()] = keypoints[found].numpy()
        return out

    def _pose_network(self) -> torch.nn.Module:
        """The fused PyTorch pose network (first call: fused and checked)."""
        if self._network is None:
            network = self._model.model.to(self.device).eval()
            head = network.model[-1]
            if getattr(head, "end2end", False) or getattr(head, "kpt_shape", None) != [17, 3]:
                raise ConfigError(
                    f"{self.weights}: top-down pose needs a dense COCO-17 YOLO-pose head "
                    "(YOLOv8 / YOLO11 pose weights)"
                )
            self._network = network.fuse(verbose=False)
        return self._network

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


def _crop_windows(boxes: np.ndarray, scale: float, aspect: float) -> np.ndarray:
    """Top-down crop windows: boxes `(N, 4)` xyxy px enlarged ``scale`` times about their
    centre, then the short side extended to ``aspect`` (height / width); `(N, 4)` float32
    xyxy px, not clipped (they may reach outside the frame)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0) * scale
    width = np.maximum(size[:, 0], size[:, 1] / aspect)
    half = np.stack([width, width * aspect], axis=1) / 2
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
