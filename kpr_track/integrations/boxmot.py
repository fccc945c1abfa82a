"""boxmot 25 with KPR appearance.

boxmot 25 trackers take ``update(detections, frame)`` (no ``embs`` argument). KPR reaches
them in one of two ways:

- :func:`boxmot_detections`: a ``boxmot.structures.Detections`` whose ``embeddings`` are
  :meth:`KPR.flat <kpr_track.kpr.KPR.flat>` vectors (use it when you have keypoints:
  KPR's prompts then come from your pose model);
- :class:`KPRBoxmotReID`: a ``reid_model=`` backend with ``get_features(xyxys, img)``
  for ``BotSort``, ``DeepOcSort``, ``StrongSort``, ``HybridSort`` and ``BoostTrack``
  (keypoints from top-down pose).

Either way boxmot never builds its default ReID model (which would download weights).
Install: ``pip install --no-deps boxmot==25.0.0 "lapx<1" platformdirs`` (boxmot pins
``opencv-python<5``; it runs on kpr-track's stack). Tested with boxmot 25.0.0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..detections import Detections
from ..errors import ConfigError, InputError
from ..kpr import KPR
from ..trackers.base import BaseTracker
from . import import_host, valid_boxes

if TYPE_CHECKING:
    import boxmot.structures

# kpr-track name -> (boxmot class, whether it has the use_embeddings switch, its settings
# that turn camera-motion compensation off). StrongSort always uses appearance and ECC.
BOXMOT_TRACKERS: dict[str, tuple[str, bool, dict]] = {
    "botsort": ("BotSort", True, {"use_cmc": False}),
    "deepocsort": ("DeepOcSort", True, {"cmc_off": True}),
    "strongsort": ("StrongSort", False, {}),
    "hybridsort": ("HybridSort", True, {"cmc_method": None}),
    "boosttrack": ("BoostTrack", True, {"use_cmc": False}),  # appearance off by default
}


class KPRBoxmotReID:
    """A boxmot ``reid_model=`` backend computing KPR features.

    Args:
        kpr: the appearance model (its :meth:`~kpr_track.kpr.KPR.embed` runs top-down
            pose for the keypoints, since boxmot passes boxes only).
    """

    def __init__(self, kpr: KPR) -> None:
        self.kpr = kpr

    def get_features(self, xyxys: np.ndarray, img: np.ndarray) -> np.ndarray:
        """KPR vectors of the boxes of one frame.

        Args:
            xyxys: `(N, 4)` float xyxy px (extra columns are ignored).
            img: `(H, W, 3)` BGR uint8 frame.

        Returns:
            `(N, P * D)` float32, rows in input order, unit norm (never zero).
        """
        boxes = np.asarray(xyxys, np.float32).reshape(len(xyxys), -1)[:, :4]
        return KPR.flat(*self.kpr.embed(img, boxes))


def boxmot_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    embeddings: np.ndarray | None = None,
    visibility: np.ndarray | None = None,
    *,
    class_ids: np.ndarray | None = None,
    sample_id: str = "frame",
) -> boxmot.structures.Detections:
    """boxmot 25 ``Detections`` carrying KPR vectors.

    Args:
        boxes: `(N, 4)` float xyxy px with ``x2 > x1`` and ``y2 > y1`` (boxmot rejects
            others: drop them first).
        scores: `(N,)` float in [0, 1].
        embeddings: `(N, P, D)` from :meth:`KPR.embed <kpr_track.kpr.KPR.embed>`; None
            for boxes only.
        visibility: `(N, P)`, with ``embeddings``.
        class_ids: `(N,)` int; None: all 0 (person).
        sample_id: boxmot's frame identifier (a ``Frame`` given with it must match).

    Raises:
        ConfigError: boxmot is not installed.
        InputError: mismatched shapes.
    """
    import_host("boxmot")
    import torch
    from boxmot.structures import Boxes
    from boxmot.structures import Detections as BoxmotDetections

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32)
    if scores.shape != (len(boxes),):
        raise InputError(f"boxmot_detections: expected scores ({len(boxes)},), got {scores.shape}")
    classes = np.zeros(len(boxes), np.int64) if class_ids is None else class_ids
    vectors = None
    if embeddings is not None:
        vectors = torch.from_numpy(KPR.flat(embeddings, visibility))
    return BoxmotDetections(
        geometry=Boxes(torch.from_numpy(np.ascontiguousarray(boxes))),
        scores=torch.from_numpy(scores),
        class_ids=torch.from_numpy(np.asarray(classes, np.int64)),
        sample_id=sample_id,
        embeddings=vectors,
    )


class BoxmotTracker(BaseTracker):
    """A boxmot 25 tracker on kpr-track :class:`~kpr_track.detections.Detections`.

    Detections carrying embeddings reach boxmot as :meth:`KPR.flat
    <kpr_track.kpr.KPR.flat>` vectors; ids map back through boxmot's
    ``Tracks.detection_indices``.

    Args:
        name: a key of :data:`BOXMOT_TRACKERS`.
        appearance: use the detections' embeddings (``use_embeddings=True``, which
            BoostTrack does not set by default); False turns the tracker's appearance off
            (not possible for ``strongsort``).
        camera_motion: keep the tracker's camera-motion compensation (needs ``frame``).
        **options: keyword arguments of the boxmot class.

    Raises:
        ConfigError: unknown name or option, ``strongsort`` without appearance, or
            boxmot missing.
    """

    def __init__(
        self, name: str, *, appearance: bool = True, camera_motion: bool = True, **options: Any
    ) -> None:
        super().__init__()
        if name not in BOXMOT_TRACKERS:
            raise ConfigError(
                f"unknown boxmot tracker {name!r}; expected one of {sorted(BOXMOT_TRACKERS)}"
            )
        class_name, switch, no_cmc = BOXMOT_TRACKERS[name]
        if not appearance and not switch:
            raise ConfigError(f"boxmot {class_name} always uses appearance")
        settings = {"use_embeddings": appearance} if switch else {}
        settings |= {} if camera_motion else no_cmc
        try:
            self._tracker = getattr(import_host("boxmot"), class_name)(**settings, **options)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"boxmot {class_name}: {error}") from None
        self.appearance = appearance

    def update(self, detections: Detections, frame: np.ndarray | None = None) -> np.ndarray:
        """Advance by one frame; see :meth:`kpr_track.trackers.BaseTracker.update`.

        boxmot ids start at 0; they are shifted by 1 (ours start at 1, -1 = not output).
        """
        keep = np.flatnonzero(valid_boxes(detections.boxes))
        kept = detections[keep]
        with_embeddings = self.appearance and kept.embeddings is not None
        found = boxmot_detections(
            kept.boxes,
            np.clip(kept.scores, 0.0, 1.0),
            kept.embeddings if with_embeddings else None,
            kept.visibility if with_embeddings else None,
        )
        tracks = self._tracker.update(found, frame)
        ids = np.full(len(detections), -1, np.int64)
        rows = tracks.detection_indices.numpy()
        matched = rows >= 0
        ids[keep[rows[matched]]] = tracks.track_ids.numpy()[matched] + 1
        return ids

    def reset(self) -> None:
        """Forget every track; ids restart at 1."""
        super().reset()
        self._tracker.reset()
