"""Library trackers behind kpr-track's tracker interface, for side-by-side baselines.

:class:`RoboflowTracker` runs SORT, ByteTrack or OC-SORT from Roboflow's ``trackers``
package (PyPI ``trackers``, tested with 2.6.1; ``pip install 'kpr-track[bench]'``) on our
:class:`~kpr_track.detections.Detections`. Each detection's index travels through the
library tracker in ``supervision.Detections.data``, so the ids map back to our
detections exactly, whatever order the library returns them in (ByteTrack and OC-SORT
reorder them). None of these three library trackers takes appearance embeddings
(``trackers`` 2.6.1: ``update(detections, frame=None, timestamp=None)`` on boxes and
confidences only), so they run on boxes and scores alone.

Our own trackers install as ``kpr_track.trackers``; the repository's top-level
``trackers/`` folder still shadows the PyPI package when Python runs from the repository
root (``python -m ...``, ``python -c``), so :func:`roboflow_trackers` loads the package
from its installed location when a plain import finds the wrong one.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .detections import Detections
from .errors import ConfigError, InputError
from .trackers.base import BaseTracker

ROBOFLOW_TRACKERS = {
    "sort": "SORTTracker",
    "bytetrack": "ByteTrackTracker",
    "ocsort": "OCSORTTracker",
}
_INDEX_KEY = "kpr_track_index"
_INSTALL = "pip install 'kpr-track[bench]' (PyPI package 'trackers')"


def roboflow_trackers() -> ModuleType:
    """Import Roboflow's ``trackers`` package, never the repository's ``trackers/`` folder.

    Raises:
        ConfigError: when the package is not installed (says how to install it), or when
            another module named ``trackers`` was already imported in this process.
    """
    loaded = sys.modules.get("trackers")
    if loaded is not None:
        if hasattr(loaded, "SORTTracker"):
            return loaded
        raise ConfigError(
            f"a module named 'trackers' from {getattr(loaded, '__file__', '?')} is already "
            "imported and is not Roboflow trackers; run from outside the repository root"
        )
    try:
        distribution = importlib.metadata.distribution("trackers")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"Roboflow trackers is not installed: {_INSTALL}") from None
    init = Path(str(distribution.locate_file("trackers/__init__.py"))).resolve()
    if not init.is_file():
        raise ConfigError(f"Roboflow trackers is installed without {init}: {_INSTALL}")
    found = importlib.util.find_spec("trackers")  # locates without executing
    if found is not None and found.origin and Path(found.origin).resolve() == init:
        return importlib.import_module("trackers")
    spec = importlib.util.spec_from_file_location(
        "trackers", init, submodule_search_locations=[str(init.parent)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["trackers"] = module
    spec.loader.exec_module(module)
    return module


class RoboflowTracker(BaseTracker):
    """A Roboflow ``trackers`` tracker with kpr-track's :meth:`update` contract.

    Args:
        name: ``"sort"``, ``"bytetrack"`` or ``"ocsort"``.
        **options: keyword arguments of the library tracker's constructor (e.g.
            ``track_activation_threshold``, ``high_conf_det_threshold``,
            ``lost_track_buffer``); unknown ones are a :class:`ConfigError`.

    Raises:
        ConfigError: unknown name, unknown option, or the package is missing.
    """

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__()
        if name not in ROBOFLOW_TRACKERS:
            raise ConfigError(
                f"unknown Roboflow tracker {name!r}; expected one of {sorted(ROBOFLOW_TRACKERS)}"
            )
        library = roboflow_trackers()
        try:
            self._tracker = getattr(library, ROBOFLOW_TRACKERS[name])(**options)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"Roboflow tracker {name!r}: {error}") from None
        self.name = name
        self.options = dict(options)
        import supervision

        self._sv = supervision

    def update(self, detections: Detections, frame: np.ndarray | None = None) -> np.ndarray:
        """Advance by one frame; see :meth:`kpr_track.trackers.BaseTracker.update`
        (``frame`` is not used: these trackers run on boxes and scores).

        The library's ids start at 0; they are shifted by 1 so that, as for our own
        trackers, ids start at 1 and ``-1`` means "not output".

        Raises:
            InputError: if ``detections`` is not a :class:`Detections`.
        """
        if not isinstance(detections, Detections):
            raise InputError(
                f"RoboflowTracker.update: expected Detections, got {type(detections).__name__}"
            )
        count = len(detections)
        inputs = self._sv.Detections(
            xyxy=detections.boxes.astype(np.float32).reshape(-1, 4),
            confidence=detections.scores.astype(np.float32),
            class_id=np.zeros(count, int),
            data={_INDEX_KEY: np.arange(count)},
        )
        result = self._tracker.update(inputs)
        ids = np.full(count, -1, np.int64)
        if len(result):
            tracker_ids = np.asarray(result.tracker_id, np.int64)
            indices = np.asarray(result.data[_INDEX_KEY], np.int64)
            ids[indices] = np.where(tracker_ids >= 0, tracker_ids + 1, -1)
        return ids

    def reset(self) -> None:
        """Forget every track; ids restart at 1."""
        super().reset()
        self._tracker.reset()
