"""Ultralytics ``YOLO(...).track(...)`` with KPR appearance.

:func:`add_kpr` inserts a callback before the tracker's own ``on_predict_postprocess_end``
that computes KPR on ``result.boxes`` (+ ``result.keypoints`` from a pose model; top-down
pose otherwise) and sets ``result.feats``, which the tracker reads:

- with the shipped ``botsort_kpr.yaml`` (BoT-SORT, ``with_reid: True``, ``model: auto``)
  BoT-SORT compares :meth:`KPR.flat <kpr_track.kpr.KPR.flat>` vectors (cosine);
- with ``kpr.yaml`` (``tracker_type: kpr``, registered in Ultralytics' ``TRACKER_MAP``)
  our :class:`~kpr_track.trackers.KPRTracker` runs with the exact part-visibility
  distance and the model's calibration.

Paths of the shipped YAMLs: :func:`tracker_yaml`. Tested with ultralytics 8.4.190.
"""

from __future__ import annotations

from functools import partial
from importlib import resources
from typing import Any, NamedTuple

import numpy as np

from ..detections import Detections
from ..errors import ConfigError
from ..keypoints import NUM_KEYPOINTS
from ..kpr import KPR
from ..trackers.base import BaseTracker
from ..trackers.config import load_tracker
from . import import_host, valid_boxes

TRACKER_YAMLS = ("botsort_kpr", "kpr")
# Keys of kpr.yaml besides Ultralytics' own (tracker_type; device is added by Ultralytics).
_KPR_KEYS = {"tracker_type", "device", "preset", "frame_rate"}


class PartFeatures(NamedTuple):
    """``result.feats`` for :class:`UltralyticsKPRTracker`: the frame's detections with
    part embeddings and the model's calibration (other trackers get an `(N, P * D)`
    array)."""

    detections: Detections
    calibration: Any


def tracker_yaml(name: str = "botsort_kpr") -> str:
    """Path of a shipped tracker YAML for ``model.track(tracker=...)``.

    Args:
        name: ``"botsort_kpr"`` (BoT-SORT with KPR features) or ``"kpr"`` (KPRTracker).

    Raises:
        ConfigError: on another name.
    """
    if name not in TRACKER_YAMLS:
        raise ConfigError(
            f"unknown Ultralytics tracker YAML {name!r}; expected one of {TRACKER_YAMLS}"
        )
    return str(resources.files("kpr_track.configs") / "ultralytics" / f"{name}.yaml")


def add_kpr(model: Any, kpr: KPR) -> None:
    """Give an Ultralytics ``YOLO`` model's trackers KPR features.

    Inserts the KPR callback first in ``model.callbacks["on_predict_postprocess_end"]``
    (before the tracker update that ``model.track`` registers) and registers
    ``tracker_type: kpr``. Calling it again replaces the earlier KPR callback.

    Args:
        model: an ``ultralytics.YOLO`` (detect or pose task; pose gives KPR its prompts).
        kpr: the appearance model.
    """
    register_kpr_tracker()
    callbacks = model.callbacks["on_predict_postprocess_end"]
    callbacks[:] = [cb for cb in callbacks if getattr(cb, "func", None) is not set_kpr_feats]
    callbacks.insert(0, partial(set_kpr_feats, kpr=kpr))


def register_kpr_tracker() -> None:
    """Register :class:`UltralyticsKPRTracker` as ``tracker_type: kpr`` in Ultralytics'
    ``TRACKER_MAP``.

    Raises:
        ConfigError: when ultralytics is not installed.
    """
    import_host("ultralytics")
    from ultralytics.trackers import track

    track.TRACKER_MAP["kpr"] = UltralyticsKPRTracker


def set_kpr_feats(predictor: Any, kpr: KPR) -> None:
    """The ``on_predict_postprocess_end`` callback: ``result.feats`` from KPR for every
    result of the batch (track mode only)."""
    if predictor.args.mode != "track" or not getattr(predictor, "trackers", None):
        return
    ours = isinstance(predictor.trackers[0], UltralyticsKPRTracker)
    for result in predictor.results:
        boxes = result.boxes.xyxy.cpu().numpy().astype(np.float32)
        scores = result.boxes.conf.cpu().numpy().astype(np.float32)
        keypoints = None
        if result.keypoints is not None and len(boxes):
            keypoints = result.keypoints.data.cpu().numpy().astype(np.float32)
        found = kpr.detections(result.orig_img, boxes, keypoints, scores)
        if ours:
            result.feats = PartFeatures(found, kpr.calibration)
        else:
            result.feats = KPR.flat(found.embeddings, found.visibility)


class UltralyticsKPRTracker:
    """:class:`~kpr_track.trackers.KPRTracker` behind Ultralytics' tracker interface.

    Args:
        args: the tracker YAML as Ultralytics passes it: ``tracker_type: kpr``, ``preset``
            (a kpr-track preset name or YAML path, default ``kpr``) and ``frame_rate``
            (frames per second, or null for the preset's reference rate).
        frame_rate: older Ultralytics versions pass it; used when the YAML has none.

    Raises:
        ConfigError: an unknown key or preset.
    """

    def __init__(self, args: Any, frame_rate: float | None = None) -> None:
        settings = dict(vars(args))
        unknown = sorted(set(settings) - _KPR_KEYS)
        if unknown:
            raise ConfigError(
                f"Ultralytics tracker YAML (tracker_type: kpr): unknown keys {unknown}; "
                f"expected {sorted(_KPR_KEYS - {'device'})}"
            )
        rate = settings.get("frame_rate") or frame_rate
        self.tracker = load_tracker(settings.get("preset", "kpr"), frame_rate=rate)
        self.tracked_stracks: list = []  # read by Ultralytics when nothing is output

    def update(self, results: Any, img: np.ndarray | None = None, feats: Any = None, **kwargs: Any):
        """One frame, Ultralytics' contract.

        Args:
            results: NumPy ``Boxes`` (``xyxy``, ``conf``, ``cls``).
            img: the BGR frame (camera-motion compensation).
            feats: :class:`PartFeatures` from :func:`set_kpr_feats`; anything else (no
                :func:`add_kpr`) tracks on motion alone.

        Returns:
            `(M, 8)` float32 rows ``[x1, y1, x2, y2, track_id, score, cls, idx]`` of the
            detections output as tracks (``idx`` indexes ``results``).
        """
        boxes = np.asarray(results.xyxy, np.float32).reshape(-1, 4)
        scores = np.asarray(results.conf, np.float32)
        if isinstance(feats, PartFeatures):
            detections = feats.detections
            self.tracker.calibration = feats.calibration
        else:
            empty = np.zeros((len(boxes), NUM_KEYPOINTS, 3), np.float32)
            detections = Detections(boxes=boxes, scores=scores, keypoints=empty)
        ids = np.full(len(boxes), -1, np.int64)
        keep = np.flatnonzero(valid_boxes(boxes))
        ids[keep] = self.tracker.update(detections[keep], img)
        rows = np.flatnonzero(ids > 0)
        classes = np.asarray(results.cls, np.float32)
        return np.column_stack([boxes[rows], ids[rows], scores[rows], classes[rows], rows]).astype(
            np.float32
        )

    def reset(self) -> None:
        """Forget every track (Ultralytics calls it when the video changes)."""
        self.tracker.reset()


class UltralyticsTracker(BaseTracker):
    """An Ultralytics tracker (BoT-SORT) on kpr-track :class:`~kpr_track.detections.Detections`,
    fed KPR vectors as ``feats`` the way :func:`set_kpr_feats` feeds it in ``model.track``.

    Args:
        appearance: ``with_reid`` on, with the detections' :meth:`KPR.flat
            <kpr_track.kpr.KPR.flat>` vectors; False: BoT-SORT on motion alone.
        camera_motion: keep ``gmc_method`` (needs ``frame``); False sets it to ``none``.
        **options: keys of ``botsort_kpr.yaml`` to change.
    """

    def __init__(self, *, appearance: bool = True, camera_motion: bool = True, **options: Any):
        super().__init__()
        import_host("ultralytics")
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.utils import YAML, IterableSimpleNamespace

        settings = YAML.load(tracker_yaml("botsort_kpr")) | {"with_reid": appearance} | options
        if not camera_motion:
            settings["gmc_method"] = "none"
        self._tracker = BOTSORT(args=IterableSimpleNamespace(**settings))
        self.appearance = appearance

    def update(self, detections: Detections, frame: np.ndarray | None = None) -> np.ndarray:
        """Advance by one frame; see :meth:`kpr_track.trackers.BaseTracker.update`."""
        import torch
        from ultralytics.engine.results import Boxes

        rows = np.c_[detections.boxes, detections.scores, np.zeros(len(detections))]
        height = int(detections.boxes[:, 3].max()) + 1 if len(detections) else 1
        width = int(detections.boxes[:, 2].max()) + 1 if len(detections) else 1
        boxes = Boxes(torch.from_numpy(rows.astype(np.float32)), (height, width)).numpy()
        feats = None
        if self.appearance and detections.embeddings is not None:
            feats = KPR.flat(detections.embeddings, detections.visibility)
        output = self._tracker.update(boxes, frame, feats=feats)
        ids = np.full(len(detections), -1, np.int64)
        if len(output):
            ids[output[:, -1].astype(np.int64)] = output[:, 4].astype(np.int64)
        return ids

    def reset(self) -> None:
        """Forget every track; ids restart at 1."""
        super().reset()
        self._tracker.reset()
