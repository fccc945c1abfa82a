"""Tracker settings: a checked dataclass, and YAML presets turned into trackers.

A preset (``configs/trackers/<name>.yaml``) holds ``tracker: <registered name>`` plus
the keyword arguments of that tracker; unknown keys and out-of-range values are a
:class:`~kpr_track.errors.ConfigError` naming the file and the key.

Durations are settings in seconds (``max_age_s``, ``direction_delta_s``) and speeds per
second (``lost_max_speed``), so one preset means the same at 7 and at 30 fps; they
become frame counts in one place, :func:`per_frame`, with the sequence's frame rate.
The keys that counted frames before (``max_age``, ``direction_delta``) are a
ConfigError naming their replacement.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from kpr_track.config import available_presets, from_mapping, load_yaml, preset_path
from kpr_track.errors import ConfigError

from .base import BaseTracker, tracker_class
from .kalman import CHI2_99_4DOF

# Keys that counted frames before durations were set in seconds -> their replacement.
RENAMED = {"max_age": "max_age_s", "direction_delta": "direction_delta_s"}


@dataclass(frozen=True)
class TrackerConfig:
    """Keyword arguments of :class:`~kpr_track.trackers.KPRTracker`, with units.

    Raises:
        ConfigError: at construction, naming the field, when a value is out of range.
    """

    renamed: ClassVar[dict[str, str]] = RENAMED  # old frame keys -> new keys (build_tracker)

    high_score: float = 0.5  # [0,1] score: detections at or above it enter the first round
    low_score: float = 0.1  # [0,1] score: detections below it are ignored
    new_track_score: float = 0.6  # [0,1] score >= high_score: unmatched ones start tracks
    match_cost: float = 0.8  # cost: largest fused cost of a first-round match
    low_match_cost: float = 0.5  # cost in [0,1]: largest 1 - IoU of a low-score match
    # Cost in [0,1]: largest 1 - IoU of a low-score detection taken by a lost track (after
    # the tracked tracks took theirs; within the lost track's reach). 0 = none (ByteTrack).
    lost_low_match_cost: float = 0.0
    # IoU in [0,1]: after rounds (b)-(d), a confirmed or lost track and a detection scoring
    # at least low_score, both left over, that overlap each other this much and nothing else
    # (no other such detection, no other confirmed or lost track) are matched (0 = off).
    isolated_match_iou: float = 0.0
    # Pose evidence (scores.py): the score thresholds read s * min(1, c / reference) **
    # weight, c the detection's mean keypoint confidence (the tracker then needs keypoints).
    pose_score_weight: float = 0.0  # exponent >= 0 (0 = the detector's scores)
    pose_score_reference: float = 0.75  # mean keypoint confidence in (0, 1]
    # Detector score >= 0: detections scoring at least this keep their score (inf = the
    # discount reaches every detection).
    pose_score_below: float = math.inf
    unconfirmed_match_cost: float = 0.7  # cost: largest fused cost, tentative tracks
    min_iou: float = 0.0  # IoU in [0,1]: pairs below it are infeasible (0 = no IoU gate)
    # Squared Mahalanobis distance, 4 dof (inf = no motion gate). The 99 % quantile: a 95 %
    # gate rejects 1 true match in 20 per frame by construction, which fragments tracks.
    gate_threshold: float = CHI2_99_4DOF
    # Appearance (costs.fuse_costs): cost shift of a pair = weight * (2 p_same - 1), p_same
    # from the appearance model's DistanceCalibration; the weight reaches appearance_weight
    # when the pair shares full_weight_parts visible slots, pro rata below.
    appearance_weight: float = 0.5  # cost units in [0,1] (0 = motion only)
    full_weight_parts: int = 3  # slots (foreground + parts) >= 1
    gallery_size: int = 5  # embeddings kept per slot (1 = last seen only)
    memory_max_overlap: float = 0.3  # IoU in [0,1]: a detection overlapping another more
    # than this does not update the appearance memory (occluded crop)
    visibility_threshold: float = 0.5  # [0,1] visibility above which a part counts as seen
    max_age_s: float = 2.0  # seconds >= 0 a lost track is kept for re-identification
    # Detections (a count, not a time): consecutive matches before a new track is output.
    # Confirmation asks the detector for repeated evidence, which every frame gives once.
    min_hits: int = 3
    # Box heights per second >= 0: a lost track may take a detection only within
    # h * (0.5 + lost_max_speed * gap seconds) of its last observed centre (h its height),
    # however wide its Kalman gate has grown (inf: no bound).
    lost_max_speed: float = 2.0
    score_scaled_noise: bool = False  # scale Kalman measurement noise by (1 - score)
    reference_fps: float = 30.0  # frames/s at which the Kalman noise constants hold (> 0)
    noise_exponent: float = 1.0  # >= 0: process noise std x (reference_fps / fps)^exponent
    observation_reupdate: bool = True  # OC-SORT ORU: re-run the filter over a gap
    direction_weight: float = 0.2  # cost units in [0,1]: OC-SORT OCM weight (0 = off)
    direction_delta_s: float = 0.1  # seconds >= 0: OCM direction from observations this far
    # apart (at least one frame; OC-SORT: 3 frames at 30 fps)
    direction_min_motion: float = 0.1  # box heights: slower observed motion has no direction
    camera_motion: bool = True  # estimate and apply camera motion (needs frames)
    camera_min_shift: float = 1.0  # px >= 0: smaller warps of the track centres are ignored
    # Embeddings on demand (KPRTracker.appearance_targets): a first-round detection is not
    # embedded when its best candidate is a confirmed track matched in the last frame, with
    # IoU >= embed_min_iou, ahead of every other candidate by embed_margin IoU, no lost
    # track's predicted box overlaps it, and the track's memory is younger than
    # embed_refresh_s.
    embed_refresh_s: float = 0.0  # seconds >= 0 (0 = embed every detection)
    embed_margin: float = 0.4  # IoU in [0,1]: lead of the best pair over the next candidate
    embed_min_iou: float = 0.7  # IoU in [0,1] of the pair with the track's predicted box

    def __post_init__(self) -> None:
        for name in _UNIT_INTERVAL:
            _require(self, name, 0.0 <= getattr(self, name) <= 1.0, "in [0, 1]")
        _require(self, "low_score", self.low_score <= self.high_score, "<= high_score")
        _require(
            self,
            "new_track_score",
            self.new_track_score >= self.high_score,
            f">= high_score ({self.high_score}; lower would start tracks from second-round "
            "detections)",
        )
        for name in ("match_cost", "unconfirmed_match_cost"):
            _require(self, name, 0.0 <= getattr(self, name) <= 2.0, "in [0, 2]")
        _require(self, "full_weight_parts", self.full_weight_parts >= 1, ">= 1 slot")
        _require(self, "gallery_size", self.gallery_size >= 1, ">= 1 embedding")
        fps_ok = 0 < self.reference_fps < math.inf
        _require(self, "reference_fps", fps_ok, "finite and > 0 frames per second")
        _require(self, "noise_exponent", 0 <= self.noise_exponent < math.inf, "finite, >= 0")
        delta_ok = 0 <= self.direction_delta_s < math.inf
        _require(self, "direction_delta_s", delta_ok, "finite, >= 0 seconds")
        speed_ok = self.lost_max_speed >= 0 and not math.isnan(self.lost_max_speed)
        _require(self, "lost_max_speed", speed_ok, ">= 0 box heights per second (or inf)")
        motion_ok = 0 <= self.direction_min_motion < math.inf
        _require(self, "direction_min_motion", motion_ok, "finite, >= 0")
        shift_ok = 0 <= self.camera_min_shift < math.inf
        _require(self, "camera_min_shift", shift_ok, "finite, >= 0 pixels")
        gate_ok = self.gate_threshold > 0 and not math.isnan(self.gate_threshold)
        _require(self, "gate_threshold", gate_ok, "> 0 (or inf to disable the gate)")
        weight_ok = 0 <= self.pose_score_weight < math.inf
        _require(self, "pose_score_weight", weight_ok, "finite, >= 0")
        reference_ok = 0 < self.pose_score_reference <= 1
        _require(self, "pose_score_reference", reference_ok, "in (0, 1]")
        below_ok = self.pose_score_below >= 0  # False for NaN
        _require(self, "pose_score_below", below_ok, "a detector score >= 0 (inf: none kept)")
        age_ok = 0 <= self.max_age_s < math.inf
        _require(self, "max_age_s", age_ok, "finite, >= 0 seconds")
        _require(self, "min_hits", self.min_hits >= 1, ">= 1 detection")
        refresh_ok = 0 <= self.embed_refresh_s < math.inf
        _require(self, "embed_refresh_s", refresh_ok, "finite, >= 0 seconds")


def check_renamed(keys, source: str) -> None:
    """Raise on a key of :data:`RENAMED` among ``keys`` (``source``: where they came from).

    Raises:
        ConfigError: naming ``source``, the old key and the new one.
    """
    for key in keys:
        if key in RENAMED:
            raise ConfigError(
                f"{source}: tracker setting {key!r} (frames) was replaced by "
                f"{RENAMED[key]!r} (seconds, converted with the sequence's frame rate)"
            )


@dataclass(frozen=True)
class PerFrame:
    """The time settings of a :class:`TrackerConfig` at one frame rate (:func:`per_frame`).

    Attributes:
        max_age: frames >= 0 a lost track is kept.
        direction_delta: frames >= 1 between the observations of the OCM direction.
        lost_max_speed: box heights per frame a lost track may have moved.
        embed_refresh: frames >= 0 a track's appearance memory counts as fresh (0: never,
            every detection is embedded).
        seconds_per_frame: ``1 / frame_rate``.
    """

    max_age: int
    direction_delta: int
    lost_max_speed: float
    embed_refresh: int
    seconds_per_frame: float


def per_frame(config: TrackerConfig, frame_rate: float) -> PerFrame:
    """Convert the settings in seconds to frames at ``frame_rate`` frames per second: the
    one place where the tracker's durations meet the frame rate (rounded to the nearest
    frame; the direction spans at least one frame).

    Raises:
        ConfigError: when ``frame_rate`` is not finite and > 0.
    """
    if not 0 < frame_rate < math.inf:
        raise ConfigError(f"tracker frame_rate must be > 0 frames per second, got {frame_rate}")
    return PerFrame(
        max_age=round(config.max_age_s * frame_rate),
        direction_delta=max(1, round(config.direction_delta_s * frame_rate)),
        lost_max_speed=config.lost_max_speed / frame_rate,
        embed_refresh=round(config.embed_refresh_s * frame_rate),
        seconds_per_frame=1.0 / frame_rate,
    )


# Settings that are scores, costs, weights or fractions in [0, 1].
_UNIT_INTERVAL = (
    "high_score",
    "low_score",
    "new_track_score",
    "low_match_cost",
    "lost_low_match_cost",
    "isolated_match_iou",
    "min_iou",
    "appearance_weight",
    "memory_max_overlap",
    "visibility_threshold",
    "direction_weight",
    "embed_margin",
    "embed_min_iou",
)


def _require(config: TrackerConfig, name: str, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(
            f"tracker setting {name!r} must be {expected}, got {getattr(config, name)!r}"
        )


def load_tracker(
    name_or_yaml: str | Path, overrides: dict[str, Any] | None = None, **inputs: Any
) -> BaseTracker:
    """Build a tracker from a shipped preset name (``"kpr"``, ``"motion"``) or a YAML file.

    Args:
        name_or_yaml: preset name or YAML path.
        overrides: settings replacing the preset's (e.g. an ablation's
            ``{"camera_motion": False}``), checked like the preset's own.
        **inputs: facts about the input that are not settings, passed to the tracker's
            constructor as given: for :class:`~kpr_track.trackers.KPRTracker`
            ``frame_rate`` (frames per second of the sequence) and ``calibration``
            (the appearance model's ``DistanceCalibration``).

    Raises:
        ConfigError: naming the file, when the preset is unknown, the ``tracker`` key is
            missing or names no registered tracker, a key is unknown or a value is out
            of range.
    """
    cls, settings = preset_settings(name_or_yaml, overrides)
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    return cls(**values, **inputs)


def preset_settings(
    name_or_yaml: str | Path, overrides: dict[str, Any] | None = None
) -> tuple[type[BaseTracker], Any]:
    """The registered tracker class a preset names and its checked settings (an instance
    of the class's ``config_class``), without building the tracker.

    Raises:
        ConfigError: as :func:`load_tracker`.
    """
    path = preset_path("trackers", str(name_or_yaml))
    data = load_yaml(path)
    data.pop("link", None)  # offline linking settings: kpr_track.trackers.link.load_link_config
    name = data.pop("tracker", None)
    if not isinstance(name, str):
        raise ConfigError(f"{path}: key 'tracker' (a registered tracker name) is required")
    check_renamed(data, str(path))
    try:
        cls = tracker_class(name)
        return cls, from_mapping(cls.config_class, data | (overrides or {}), str(path))
    except ConfigError as error:
        message = str(error)
        raise ConfigError(
            message if message.startswith(str(path)) else f"{path}: {message}"
        ) from None


def shipped_presets() -> list[str]:
    """Names of the tracker presets shipped in ``kpr_track/configs/trackers/``, sorted."""
    return sorted(available_presets("trackers"))
