"""One frame through the stages: detection + pose -> KPR appearance -> tracker."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from .detections import Detections
from .detectors.base import Detector
from .trackers.base import BaseTracker

AppearanceStage = Callable[[np.ndarray, Detections], Detections]
"""Fills embeddings `(N, P, D)` and visibility `(N, P)` of a frame's detections, e.g.
:class:`~kpr_track.reid.KPRAppearance` or :class:`~kpr_track.reid.OnnxReID`."""


class StageTimer:
    """Wall-clock seconds and call counts per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start
            self.calls[stage] += 1

    def fps(self) -> dict[str, float]:
        """Calls per second of each stage (frames per second for per-frame stages)."""
        return {s: self.calls[s] / t if t > 0 else float("inf") for s, t in self.seconds.items()}


class TrackingPipeline:
    """Detector, optional appearance model and tracker, run frame by frame.

    Args:
        detector: finds people (boxes, scores, keypoints) in a frame.
        appearance: fills part embeddings and visibility; ``None`` for motion only.
        tracker: assigns track ids.
        timer: collects per-stage timings (``detect``, ``reid``, ``track``).
    """

    def __init__(
        self,
        detector: Detector,
        appearance: AppearanceStage | None,
        tracker: BaseTracker,
        timer: StageTimer | None = None,
    ) -> None:
        self.detector = detector
        self.appearance = appearance
        self.tracker = tracker
        self.timer = timer or StageTimer()

    def step(self, frame: np.ndarray, frame_id: int) -> tuple[Detections, np.ndarray]:
        """Process one frame.

        Args:
            frame: `(H, W, 3)` BGR uint8.
            frame_id: 1-based frame number.

        Returns:
            The frame's detections (with embeddings when an appearance model is set) and
            `(N,)` int64 track ids aligned with them (-1 = not output as a track).
        """
        with self.timer("detect"):
            detections = self.detector.detect(frame, frame_id)
        if self.appearance is not None:
            with self.timer("reid"):
                detections = self.appearance(frame, detections)
        with self.timer("track"):
            track_ids = self.tracker.update(detections, frame)
        return detections, track_ids
