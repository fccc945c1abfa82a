"""Tracker settings: a checked dataclass, and YAML presets turned into trackers.

A preset (``configs/trackers/<name>.yaml``) holds ``tracker: <registered name>`` plus
the keyword arguments of that tracker; unknown keys and out-of-range values are a
:class:`~kpr_track.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from kpr_track.config import from_mapping, load_yaml, preset_path
from kpr_track.errors import ConfigError

from .base import BaseTracker, tracker_class
from .kalman import CHI2_99_4DOF


@dataclass(frozen=True)
class TrackerConfig:
    """Keyword arguments of :class:`~kpr_track.trackers.KPRTracker`, with units.

    Raises:
        ConfigError: at construction, naming the field, when a value is out of range.
    """

    high_score: float = 0.5  # [0,1] score: detections at or above it enter the first round
    low_score: float = 0.1  # [0,1] score: detections below it are ignored
    new_track_score: float = 0.6  # [0,1] score: unmatched detections at or above it start tracks
    match_cost: float = 0.8  # cost in [0,1]: largest fused cost of a first-round match
    low_match_cost: float = 0.5  # cost in [0,1]: largest 1 - IoU of a low-score match
    unconfirmed_match_cost: float = 0.7  # cost in [0,1]: largest fused cost, tentative tracks
    min_iou: float = 0.0  # IoU in [0,1]: pairs below it are infeasible (0 = no IoU gate)
    # Squared Mahalanobis distance, 4 dof (inf = no motion gate). The 99 % quantile: a 95 %
    # gate rejects 1 true match in 20 per frame by construction, which fragments tracks.
    gate_threshold: float = CHI2_99_4DOF
    appearance_weight: float = 0.5  # [0,1] weight of appearance in the fused cost (0 = motion)
    max_appearance_distance: float = 0.35  # distance in [0,1]: comparable pairs above it fail
    memory_momentum: float = 0.9  # [0,1) EMA weight of a track's old appearance memory
    visibility_threshold: float = 0.5  # [0,1] visibility above which a part counts as seen
    max_age: int = 30  # frames a lost track is kept for re-identification
    min_hits: int = 3  # frames: consecutive matches before a new track is output
    score_scaled_noise: bool = False  # scale Kalman measurement noise by (1 - score)

    def __post_init__(self) -> None:
        for name in _UNIT_INTERVAL:
            _require(self, name, 0.0 <= getattr(self, name) <= 1.0, "in [0, 1]")
        _require(self, "memory_momentum", 0.0 <= self.memory_momentum < 1.0, "in [0, 1)")
        _require(self, "low_score", self.low_score <= self.high_score, "<= high_score")
        gate_ok = self.gate_threshold > 0 and not math.isnan(self.gate_threshold)
        _require(self, "gate_threshold", gate_ok, "> 0 (or inf to disable the gate)")
        _require(self, "max_age", self.max_age >= 0, ">= 0 frames")
        _require(self, "min_hits", self.min_hits >= 1, ">= 1 frame")


# Settings that are scores, costs, weights or fractions in [0, 1].
_UNIT_INTERVAL = (
    "high_score",
    "low_score",
    "new_track_score",
    "match_cost",
    "low_match_cost",
    "unconfirmed_match_cost",
    "min_iou",
    "appearance_weight",
    "max_appearance_distance",
    "visibility_threshold",
)


def _require(config: TrackerConfig, name: str, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(
            f"tracker setting {name!r} must be {expected}, got {getattr(config, name)!r}"
        )


def load_tracker(name_or_yaml: str | Path) -> BaseTracker:
    """Build a tracker from a shipped preset name (``"kpr"``, ``"motion"``) or a YAML file.

    Raises:
        ConfigError: naming the file, when the preset is unknown, the ``tracker`` key is
            missing or names no registered tracker, a key is unknown or a value is out
            of range.
    """
    path = preset_path("trackers", str(name_or_yaml))
    data = load_yaml(path)
    name = data.pop("tracker", None)
    if not isinstance(name, str):
        raise ConfigError(f"{path}: key 'tracker' (a registered tracker name) is required")
    try:
        cls = tracker_class(name)
        settings = from_mapping(cls.config_class, data, str(path))
        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)})
    except ConfigError as error:
        message = str(error)
        raise ConfigError(
            message if message.startswith(str(path)) else f"{path}: {message}"
        ) from None
