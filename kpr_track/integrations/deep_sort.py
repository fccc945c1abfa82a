"""deep-sort-realtime with KPR appearance: ``update_tracks(..., embeds=...)`` with
:meth:`KPR.flat <kpr_track.kpr.KPR.flat>` vectors.

``DeepSort.update_tracks`` silently drops boxes without positive width and height *after*
taking ``embeds``, which shifts every later embedding onto the wrong detection;
:func:`deep_sort_inputs` drops them first. Build the tracker with ``embedder=None`` so
deep-sort-realtime loads no embedder of its own. deep-sort-realtime 1.3.2 is a dependency
of kpr-track.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..detections import Detections
from ..kpr import KPR
from ..trackers.base import BaseTracker
from . import import_host, valid_boxes


def deep_sort_inputs(
    boxes: np.ndarray,
    scores: np.ndarray,
    embeddings: np.ndarray,
    visibility: np.ndarray,
    *,
    class_name: str = "person",
) -> tuple[list, list[np.ndarray], list[int]]:
    """Arguments of ``DeepSort.update_tracks`` for one frame.

    Args:
        boxes: `(N, 4)` float xyxy px.
        scores: `(N,)` float in [0, 1].
        embeddings: `(N, P, D)` from :meth:`KPR.embed <kpr_track.kpr.KPR.embed>`.
        visibility: `(N, P)`.
        class_name: the class stored on each detection.

    Returns:
        ``(raw_detections, embeds, others)`` for boxes with positive width and height:
        ``([left, top, w, h], score, class_name)`` tuples, `(P * D,)` float32 unit
        vectors, and each detection's index in the input (pass as ``others=``; a
        track's ``get_det_supplementary()`` then names the detection it matched).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    keep = np.flatnonzero(valid_boxes(boxes))
    vectors = KPR.flat(embeddings, visibility)
    raw = [
        (
            [*boxes[i, :2].tolist(), *(boxes[i, 2:] - boxes[i, :2]).tolist()],
            float(scores[i]),
            class_name,
        )
        for i in keep
    ]
    return raw, [vectors[i] for i in keep], keep.tolist()


class DeepSortTracker(BaseTracker):
    """deep-sort-realtime's ``DeepSort`` on kpr-track :class:`~kpr_track.detections.Detections`.

    Args:
        appearance: pass the detections' KPR vectors; False passes one constant vector
            for every detection, so the cosine term cannot tell people apart (DeepSORT
            needs an embedding: the motion-only ablation).
        **options: keyword arguments of ``DeepSort`` (``embedder`` is always None).
    """

    def __init__(self, *, appearance: bool = True, **options: Any) -> None:
        super().__init__()
        self.appearance = appearance
        self._make = lambda: import_host("deep_sort_realtime.deepsort_tracker").DeepSort(
            embedder=None, **options
        )
        self._tracker = self._make()
        self._ids: dict[str, int] = {}

    def update(self, detections: Detections, frame: np.ndarray | None = None) -> np.ndarray:
        """Advance by one frame; see :meth:`kpr_track.trackers.BaseTracker.update`
        (confirmed tracks matched this frame; deep-sort's string ids map to 1, 2, ...)."""
        count = len(detections)
        if self.appearance and detections.embeddings is not None:
            embeddings, visibility = detections.embeddings, detections.visibility
        else:
            embeddings, visibility = np.ones((count, 1, 1), np.float32), np.ones((count, 1))
        raw, embeds, others = deep_sort_inputs(
            detections.boxes, detections.scores, embeddings, visibility
        )
        tracks = self._tracker.update_tracks(raw, embeds=embeds, others=others)
        ids = np.full(count, -1, np.int64)
        for track in tracks:
            if track.is_confirmed() and track.time_since_update == 0:
                index = track.get_det_supplementary()
                ids[index] = self._ids.setdefault(track.track_id, len(self._ids) + 1)
        return ids

    def reset(self) -> None:
        """Forget every track; ids restart at 1."""
        super().reset()
        self._tracker = self._make()
        self._ids = {}
