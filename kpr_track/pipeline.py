"""Frames through the stages: detection + pose -> KPR appearance -> tracker.

:meth:`TrackingPipeline.run` can overlap the stages of consecutive frames: a worker
thread decodes and detects frame t + 1 while the calling thread runs the appearance
model and the tracker on frame t (the heavy calls, torch / onnxruntime / OpenCV, release
the GIL). It does so by default from 4 torch threads up, each stage with half of them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from .detections import Detections
from .detectors.base import Detector, build_detector
from .reid.registry import DEFAULT_BACKEND, DEFAULT_PRECISION, DEFAULT_REID
from .trackers.base import BaseTracker

AppearanceStage = Callable[[np.ndarray, Detections, np.ndarray], Detections]
"""Fills embeddings `(N, P, D)` and visibility `(N, P)` of the detections a `(N,)` bool
mask selects (the others: zeros), e.g. :class:`~kpr_track.reid.KPRAppearance`; the
pipeline selects those the tracker will read (its ``appearance_targets``)."""

FrameResult = tuple[int, np.ndarray, Detections, np.ndarray]
"""``(frame_id, frame, detections, track_ids)`` of one frame, see :meth:`TrackingPipeline.step`."""


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
        return self.follow(frame, self.detect(frame, frame_id))

    def detect(self, frame: np.ndarray, frame_id: int) -> Detections:
        """The detection stage of :meth:`step` (boxes, scores, keypoints)."""
        with self.timer("detect"):
            return self.detector.detect(frame, frame_id)

    def follow(self, frame: np.ndarray, detections: Detections) -> tuple[Detections, np.ndarray]:
        """The appearance and tracking stages of :meth:`step`, on detected people."""
        if self.appearance is not None:
            targets = self.tracker.appearance_targets(detections)
            with self.timer("reid"):
                detections = self.appearance(frame, detections, targets)
        with self.timer("track"):
            track_ids = self.tracker.update(detections, frame)
        return detections, track_ids

    def run(
        self, frames: Iterable[tuple[int, np.ndarray]], *, overlap: bool | None = None
    ) -> Iterator[FrameResult]:
        """Process a sequence in frame order, optionally with decoding and detection of
        the next frame overlapping the appearance and tracking of the current one.

        Args:
            frames: ``(frame_id, (H, W, 3) BGR uint8)`` pairs, decoded lazily (the time
                spent in the iterator is timed as ``decode``).
            overlap: run decoding and detection in a worker thread, at most
                ``_AHEAD`` frames ahead, each thread with half of torch's threads; False
                runs every stage in this thread; None (default): :func:`overlap_pays`.
                On 2 cores the overlap does not pay: PETS09 with the defaults ran at
                4.1-4.7 FPS overlapped (1 thread each) vs 4.5-5.0 FPS one stage after
                the other (2 threads).

        Yields:
            ``(frame_id, frame, detections, track_ids)`` for each frame, in input order.

        Raises:
            Whatever decoding or detection raised, in this thread, after the frames
            before it were yielded. Closing the generator early (an exception in the
            consumer, e.g. KeyboardInterrupt) stops the worker before returning.
        """
        import torch

        if overlap is None:
            overlap = overlap_pays()
        share = max(1, torch.get_num_threads() // 2) if overlap else torch.get_num_threads()
        detected = self._detected(frames)
        if overlap:
            detected = _ahead(_with_threads(detected, share), _AHEAD)
        try:
            with _torch_threads(share):
                for frame_id, frame, detections in detected:
                    yield frame_id, frame, *self.follow(frame, detections)
        finally:
            detected.close()

    def _detected(
        self, frames: Iterable[tuple[int, np.ndarray]]
    ) -> Iterator[tuple[int, np.ndarray, Detections]]:
        source = iter(frames)
        while True:
            with self.timer("decode"):
                item = next(source, None)
            if item is None:
                return
            frame_id, frame = item
            yield frame_id, frame, self.detect(frame, frame_id)


# Frames decoded and detected ahead of the appearance and tracking stages.
_AHEAD = 2
# Torch threads from which the stages overlap by default (each thread gets half).
_OVERLAP_MIN_THREADS = 4
_DONE = object()


def overlap_pays() -> bool:
    """Whether :meth:`TrackingPipeline.run` overlaps the stages by default: with at least
    ``_OVERLAP_MIN_THREADS`` torch threads (cores), so that each stage keeps two."""
    import torch

    return torch.get_num_threads() >= _OVERLAP_MIN_THREADS


@contextmanager
def _torch_threads(count: int):
    """Torch intra-op threads of the calling thread set to ``count`` inside the block."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _with_threads(items: Iterator, count: int) -> Iterator:
    """``items``, produced with ``count`` torch threads in whichever thread iterates."""
    with _torch_threads(count):
        yield from items


def _ahead(items: Iterator, size: int) -> Iterator:
    """Consume ``items`` in a worker thread, at most ``size`` ahead; yield them in order.

    An exception of the worker is re-raised here; closing this generator stops the
    worker (it finishes the item in hand, then exits) and waits for it.
    """
    buffer: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(buffer, (item, None), stop):
                    return
            _put(buffer, (_DONE, None), stop)
        except BaseException as error:  # handed to the consumer, which re-raises it
            _put(buffer, (_DONE, error), stop)

    worker = threading.Thread(target=produce, name="kpr-track-detect", daemon=True)
    worker.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join()


def _put(buffer: queue.Queue, item: tuple, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first; True when it was put."""
    while not stop.is_set():
        try:
            buffer.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


@dataclass(frozen=True)
class TrackOptions:
    """The ``kpr-track track`` settings (same names, meaning and defaults as its options),
    what :func:`build_pipeline` builds the stages from.

    ``det`` may be ``mot`` or ``gt`` without a path: each MOTChallenge sequence's own
    ``det/det.txt`` or ``gt/gt.txt`` (see :func:`sequence_detector`).
    """

    det: str = "yolo-pose"
    tracker: str = "kpr"
    reid: str = DEFAULT_REID
    reid_backend: str = DEFAULT_BACKEND
    reid_precision: str = DEFAULT_PRECISION
    imgsz: int | None = None  # px; None: from the source's resolution (default_imgsz)
    conf: float = 0.05
    device: str = "cpu"
    max_frames: int | None = None
    link: bool | None = None  # offline linking of a file (None: the preset's link.enabled)

    @classmethod
    def of(cls, args: object) -> TrackOptions:
        """The options of ``args`` (any object with these attribute names, e.g. the parsed
        ``track`` / ``track-dataset`` arguments)."""
        return cls(**{name: getattr(args, name) for name in cls.__dataclass_fields__})

    def for_source(self, width: int | None, height: int | None) -> TrackOptions:
        """These options with ``imgsz`` resolved for a ``width`` x ``height`` px source
        (:func:`~.detectors.base.default_imgsz` when None; an explicit ``imgsz`` wins): the
        one place the input size follows the source, what a run records as used."""
        from .detectors.base import default_imgsz

        if self.imgsz is not None:
            return self
        return replace(self, imgsz=default_imgsz(self.det, width, height))


def build_pipeline(options: TrackOptions, frame_rate: float) -> TrackingPipeline:
    """The detector, appearance and tracker stages named by ``options`` (resolved for the
    source with :meth:`TrackOptions.for_source`). The tracker gets the sequence's frame
    rate (frames per second) and the appearance model's ``calibration``; the detector
    ``conf``, ``imgsz`` (None: the detector's own) and the ``device`` of its top-down pose
    model."""
    from .reid.registry import build_reid
    from .trackers import load_tracker

    appearance = build_reid(
        options.reid,
        device=options.device,
        backend=options.reid_backend,
        precision=options.reid_precision,
    )
    tracker = load_tracker(
        options.tracker,
        frame_rate=frame_rate,
        calibration=None if appearance is None else appearance.calibration,
    )
    kind = options.det.partition(":")[0]
    settings = {}
    if kind in ("yolo-pose", "yolox"):
        settings = {"conf": options.conf}
        if options.imgsz is not None:
            settings["imgsz"] = options.imgsz
        if kind == "yolo-pose":
            settings["device"] = options.device
    if kind in ("mot", "gt", "yolox") and (appearance is not None or tracker.uses_keypoints):
        settings["pose"] = build_detector("yolo-pose", device=options.device).pose_on_boxes
    detector = build_detector(options.det, **settings)
    return TrackingPipeline(detector, appearance, tracker)
