"""Detection stage: frames in, :class:`~kpr_track.detections.Detections` out.

Build a detector from a spec string with :func:`build_detector`; backends (Ultralytics,
onnxruntime) are imported only when one is built.
"""

from .base import DETECTOR_FORMS, Detector, PoseFn, build_detector

__all__ = ["DETECTOR_FORMS", "Detector", "PoseFn", "build_detector"]
