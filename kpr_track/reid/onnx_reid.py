"""A global-embedding appearance stage from an ONNX person ReID model (onnxruntime).

Made for Open Model Zoo's ``person-reidentification-retail-0288`` (an OSNet-style model
trained for person ReID): one `(1, H, W, 3)` NHWC input, BGR in 0-255, batch fixed at 1
in the graph, one 256-d embedding out. The input name, layout and size are read from
the session, so another ONNX ReID model with the same conventions (BGR 0-255, one
embedding per crop, NHWC or NCHW) works too. Each detection's box is clipped to the
frame and resized to the network input with bilinear interpolation; the output is
L2-normalised and returned as a single "part" (`(N, 1, D)`, visibility 1), the layout
the KPR tracker's part distance takes for global embeddings.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..detections import Detections
from ..errors import ConfigError, InputError, WeightsError
from ..weights import resolve_weights
from .calibration import DistanceCalibration


class OnnxReID:
    """Global person embeddings from an ONNX ReID model, one crop per forward pass.

    Args:
        weights: the ``.onnx`` file; None resolves the registered ``reid-retail-0288``
            through :func:`kpr_track.weights.resolve_weights` (cache directory).
        threads: onnxruntime intra-op threads; None lets onnxruntime choose.
        calibration: the model's distance calibration (read by the tracker), or None.

    Attributes:
        input_size: network input ``(H, W)`` in pixels.
        embed_dim: D, the embedding size.

    Raises:
        WeightsError: the file is missing, has the wrong sha256 (resolved case) or is
            not loadable by onnxruntime.
        ConfigError: the graph's input is not a fixed 4-D image with 3 channels, or its
            output is not one embedding per crop.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        threads: int | None = None,
        calibration: DistanceCalibration | None = None,
    ) -> None:
        import onnxruntime

        self.calibration = calibration
        path = resolve_weights("reid-retail-0288", weights)
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # any load failure means unusable weights
            message = str(error).replace("\n", " ")
            raise WeightsError(f"{path}: not loadable by onnxruntime ({message})") from None
        graph_input = self._session.get_inputs()[0]
        shape = graph_input.shape
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
            raise ConfigError(f"{path}: expected a fixed 4-D image input, got {shape}")
        if shape[3] == 3:
            self._channels_last, self.input_size = True, (shape[1], shape[2])
        elif shape[1] == 3:
            self._channels_last, self.input_size = False, (shape[2], shape[3])
        else:
            raise ConfigError(f"{path}: input {shape} has no 3-channel axis (NHWC or NCHW)")
        output = self._session.get_outputs()[0].shape
        if len(output) != 2 or not isinstance(output[1], int):
            raise ConfigError(f"{path}: expected a (1, D) embedding output, got {output}")
        self._input_name = graph_input.name
        self.embed_dim = int(output[1])
        self.path = path

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """Embed person crops already resized to :attr:`input_size`.

        Args:
            crops: ``N`` arrays `(H, W, 3)` BGR uint8.

        Returns:
            `(N, D)` float32, L2-normalised.
        """
        out = np.zeros((len(crops), self.embed_dim), np.float32)
        for row, crop in enumerate(crops):
            image = crop.astype(np.float32)[None]  # (1, H, W, 3) BGR 0-255
            if not self._channels_last:
                image = np.ascontiguousarray(image.transpose(0, 3, 1, 2))
            out[row] = self._session.run(None, {self._input_name: image})[0][0]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def crops(self, frame: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        """Cut every box out of ``frame`` (clipped to it) and resize it to the input size.

        Args:
            frame: `(H, W, 3)` BGR uint8.
            boxes: `(N, 4)` xyxy in frame pixels.

        Returns:
            ``N`` crops `(h, w, 3)` BGR uint8 with ``(h, w) =`` :attr:`input_size`; a box
            entirely outside the frame gives a black crop.

        Raises:
            InputError: if ``frame`` is not an `(H, W, 3)` uint8 image.
        """
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.dtype != np.uint8:
            shape = getattr(frame, "shape", type(frame).__name__)
            raise InputError(f"OnnxReID: expected an (H, W, 3) uint8 BGR frame, got {shape}")
        height, width = self.input_size
        windows = np.round(np.asarray(boxes, np.float64).reshape(-1, 4)).astype(np.int64)
        windows[:, [0, 2]] = windows[:, [0, 2]].clip(0, frame.shape[1])
        windows[:, [1, 3]] = windows[:, [1, 3]].clip(0, frame.shape[0])
        crops = []
        for x0, y0, x1, y1 in windows:
            if x1 <= x0 or y1 <= y0:
                crops.append(np.zeros((height, width, 3), np.uint8))
                continue
            crops.append(
                cv2.resize(frame[y0:y1, x0:x1], (width, height), interpolation=cv2.INTER_LINEAR)
            )
        return crops

    def __call__(self, frame: np.ndarray, detections: Detections) -> Detections:
        """Return ``detections`` carrying embeddings `(N, 1, D)` and visibility `(N, 1)` = 1."""
        embeddings = self.embed_crops(self.crops(frame, detections.boxes))[:, None]
        return detections.with_appearance(embeddings, np.ones((len(detections), 1), np.float32))
