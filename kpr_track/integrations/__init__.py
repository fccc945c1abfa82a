"""KPR as the ReID module of other libraries' trackers.

One thin module per host library, each importing its host only when used:

- :mod:`.boxmot`: boxmot 25 (``BotSort``, ``DeepOcSort``, ``StrongSort``, ``HybridSort``,
  ``BoostTrack``): KPR vectors as ``boxmot.structures.Detections(embeddings=...)``, or a
  ``reid_model=`` backend;
- :mod:`.ultralytics`: ``YOLO(...).track(...)``: a callback giving BoT-SORT KPR
  features, and our :class:`~kpr_track.trackers.KPRTracker` as ``tracker_type: kpr``;
- :mod:`.supervision`: a tracker with the supervision / Roboflow ``trackers`` convention;
- :mod:`.norfair`: ``Detection(embedding=...)`` and a part-visibility
  ``reid_distance_function``;
- :mod:`.deep_sort`: deep-sort-realtime ``update_tracks(..., embeds=...)``.

Each also offers a :class:`~kpr_track.trackers.BaseTracker` wrapper running the host on
our cached :class:`~kpr_track.detections.Detections` (``kpr-track bench quality`` rows).
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

from ..errors import ConfigError

# How to install each host where `pip install kpr-track[extra]` cannot (pins that clash
# with ours: boxmot pins opencv-python<5, norfair numpy<2; both run on our stack).
INSTALL = {
    "boxmot": 'pip install --no-deps boxmot==25.0.0 "lapx<1" platformdirs',
    "norfair": 'pip install --no-deps norfair==2.3.0 "filterpy<2"',
    "supervision": "pip install 'kpr-track[supervision]'",
    "ultralytics": "pip install kpr-track (ultralytics is a dependency)",
    "deep_sort_realtime": "pip install kpr-track (deep-sort-realtime is a dependency)",
}


def import_host(name: str) -> ModuleType:
    """Import the host library ``name`` (a key of :data:`INSTALL`, or a module of one).

    Raises:
        ConfigError: when it is not installed; the message gives the install command.
    """
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ConfigError(
            f"the {name} integration needs {name}, which is not importable ({error}); "
            f"install it with: {INSTALL[name.split('.')[0]]}"
        ) from None


def valid_boxes(boxes: np.ndarray) -> np.ndarray:
    """`(N,)` bool: which boxes `(N, 4)` xyxy have positive width and height. Hosts drop
    (deep-sort-realtime, ultralytics) or reject (boxmot) the others, which would misalign
    per-detection arrays such as embeddings."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
