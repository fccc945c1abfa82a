"""norfair with KPR appearance: part embeddings on ``Detection(embedding=...)`` and a
``reid_distance_function`` with the exact part-visibility distance.

norfair matches detections to tracks on its ``distance_function`` (e.g. ``"iou"`` on box
corners) and uses ReID only to merge a newly initialised track with a lost one (keep lost
tracks with ``reid_hit_counter_max``). Install: ``pip install --no-deps norfair==2.3.0
"filterpy<2"`` (norfair pins ``numpy<2``; it runs on NumPy 2). Tested with norfair 2.3.0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..detections import Detections
from ..reid.distance import part_distance
from ..trackers.base import BaseTracker
from . import import_host

if TYPE_CHECKING:
    import norfair


class PartEmbedding(NamedTuple):
    """What :func:`norfair_detections` stores in ``Detection.embedding``.

    Attributes:
        embeddings: `(P, D)` float32, L2-normalised slots (holistic then parts).
        visibility: `(P,)` float32 in [0, 1].
    """

    embeddings: np.ndarray
    visibility: np.ndarray


def norfair_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    embeddings: np.ndarray | None = None,
    visibility: np.ndarray | None = None,
) -> list[norfair.Detection]:
    """One norfair ``Detection`` per box: points = the two corners `(2, 2)` (for the
    ``"iou"`` distance), scores = the box score on both, ``embedding`` =
    :class:`PartEmbedding` (None without embeddings), ``data = {"index": i}``.

    Args:
        boxes: `(N, 4)` float xyxy px.
        scores: `(N,)` float in [0, 1].
        embeddings: `(N, P, D)` from :meth:`KPR.embed <kpr_track.kpr.KPR.embed>`, or None.
        visibility: `(N, P)`, with ``embeddings``.

    Raises:
        ConfigError: norfair is not installed.
    """
    host = import_host("norfair")
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32)
    return [
        host.Detection(
            points=boxes[i].reshape(2, 2),
            scores=np.full(2, scores[i], np.float32),
            data={"index": i},
            embedding=None
            if embeddings is None
            else PartEmbedding(
                np.asarray(embeddings[i], np.float32), np.asarray(visibility[i], np.float32)
            ),
        )
        for i in range(len(boxes))
    ]


def part_reid_distance(candidate: Any, tracked: Any) -> float:
    """norfair ``reid_distance_function``: part-visibility distance in [0, 1] between a
    new track's last detection and the closest of a lost track's past detections
    (:func:`kpr_track.reid.part_distance`); 1 when either carries no embedding or they
    share no visible part."""
    query = candidate.last_detection.embedding
    gallery = [d.embedding for d in tracked.past_detections if d.embedding is not None]
    if query is None or not gallery:
        return 1.0
    distance, comparable = part_distance(
        query.embeddings[None],
        query.visibility[None],
        np.stack([g.embeddings for g in gallery]),
        np.stack([g.visibility for g in gallery]),
    )
    return float(distance[comparable].min()) if comparable.any() else 1.0


class NorfairTracker(BaseTracker):
    """A norfair ``Tracker`` on kpr-track :class:`~kpr_track.detections.Detections`.

    Args:
        appearance: pass the detections' part embeddings and :func:`part_reid_distance`.
        distance_threshold: largest ``1 - IoU`` of a match (norfair's ``"iou"`` distance).
        reid_distance_threshold: largest part distance in [0, 1] of a ReID merge.
        **options: other keyword arguments of ``norfair.Tracker``.
    """

    def __init__(
        self,
        *,
        appearance: bool = True,
        distance_threshold: float = 0.8,
        reid_distance_threshold: float = 0.35,
        **options: Any,
    ) -> None:
        super().__init__()
        self.appearance = appearance
        reid = (
            {
                "reid_distance_function": part_reid_distance,
                "reid_distance_threshold": reid_distance_threshold,
            }
            if appearance
            else {}
        )
        self._make = lambda: import_host("norfair").Tracker(
            distance_function="iou", distance_threshold=distance_threshold, **reid, **options
        )
        self._tracker = self._make()

    def update(self, detections: Detections, frame: np.ndarray | None = None) -> np.ndarray:
        """Advance by one frame; see :meth:`kpr_track.trackers.BaseTracker.update`."""
        use = self.appearance and detections.embeddings is not None
        inputs = norfair_detections(
            detections.boxes,
            detections.scores,
            detections.embeddings if use else None,
            detections.visibility if use else None,
        )
        ids = np.full(len(detections), -1, np.int64)
        mine = {id(d) for d in inputs}
        for tracked in self._tracker.update(inputs):
            if id(tracked.last_detection) in mine:
                ids[tracked.last_detection.data["index"]] = tracked.id
        return ids

    def reset(self) -> None:
        """Forget every track; ids restart at 1."""
        super().reset()
        self._tracker = self._make()
