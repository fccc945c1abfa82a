"""The rows of ``kpr-track bench quality``: which tracker, preset, overrides, appearance slot
and linking each row runs (:data:`TRACKERS`), and how library and host trackers are set up
to match our preset. :mod:`track_quality` runs and scores them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kpr_track.baselines import RoboflowTracker
from kpr_track.integrations.boxmot import BoxmotTracker
from kpr_track.integrations.deep_sort import DeepSortTracker
from kpr_track.integrations.norfair import NorfairTracker
from kpr_track.integrations.ultralytics import UltralyticsTracker
from kpr_track.trackers import (
    BaseTracker,
    TrackerConfig,
    load_tracker,
    preset_settings,
    shipped_presets,
)
from kpr_track.trackers.config import per_frame


@dataclass(frozen=True)
class TrackerSpec:
    """One tracker of the comparison.

    Attributes:
        label: name in the tables.
        appearance: cache slot attached to the detections (None: boxes only).
        features: cache features it needs (keypoints for the prompts, embeddings).
        preset: our preset it starts from (None for a library tracker).
        overrides: settings changed from the preset (ablation rows).
        fps_aware: give the tracker the sequence frame rate (False: the ablation row
            without frame-rate scaling, i.e. the 30 fps constants everywhere).
        library: a Roboflow tracker name (fed only detections scoring at least
            ``low_score``, which our trackers ignore by themselves).
        host: a key of :data:`HOSTS` (fed like a library tracker); with ``appearance``
            it gets that slot's embeddings.
        link: cache slot whose embeddings link the tracklets after the online pass
            (None: online only).
    """

    label: str
    appearance: str | None = None
    features: frozenset[str] = frozenset()
    preset: str | None = None
    overrides: dict = field(default_factory=dict)
    fps_aware: bool = True
    library: str | None = None
    host: str | None = None
    link: str | None = None

    def build(self, preset: TrackerConfig, frame_rate: float, calibration) -> BaseTracker:
        """A fresh tracker for one sequence of ``frame_rate`` frames/s; ``calibration``
        is the appearance slot's (None without appearance)."""
        if self.library is not None:
            options = library_options(self.library, preset, frame_rate)
            return RoboflowTracker(self.library, **options)
        if self.host is not None:
            max_age = per_frame(preset, frame_rate).max_age
            return HOSTS[self.host](self.appearance is not None, preset, max_age)
        return load_tracker(
            self.preset,
            self.overrides,
            frame_rate=frame_rate if self.fps_aware else None,
            calibration=calibration,
        )

    @property
    def cache_features(self) -> frozenset[str]:
        """:attr:`features`, with ``keypoints`` where our tracker's score thresholds read
        pose evidence (``pose_score_weight > 0``: top-down pose for box-only sources)."""
        if self.library is None and self.host is None:
            _, settings = preset_settings(self.preset, self.overrides)
            if getattr(settings, "pose_score_weight", 0.0) > 0:
                return self.features | {"keypoints"}
        return self.features

    @property
    def uses_camera(self) -> bool:
        """Whether the tracker reads camera warps (our trackers with ``camera_motion``)."""
        if self.library is not None or self.host is not None:
            return False
        _, settings = preset_settings(self.preset, self.overrides)
        return bool(getattr(settings, "camera_motion", False))


def library_options(name: str, preset: TrackerConfig, frame_rate: float = 30.0) -> dict:
    """Settings of a Roboflow tracker aligned with our preset where they mean the same.

    Score thresholds follow the preset (they depend on the detector's score scale, and
    the library defaults assume ByteTrack's calibrated 0.6 / 0.7); the lost-track buffer
    is the preset's ``max_age_s`` in frames at ``frame_rate`` (``frame_rate=30`` makes
    the library's 30-fps buffer a frame count). IoU thresholds, minimum consecutive
    frames and OC-SORT's direction weight / delta_t keep the library defaults.
    """
    buffer = per_frame(preset, frame_rate).max_age
    options: dict = {"lost_track_buffer": buffer, "frame_rate": 30.0}
    if name in ("sort", "bytetrack"):
        options["track_activation_threshold"] = preset.new_track_score
    if name in ("bytetrack", "ocsort"):
        options["high_conf_det_threshold"] = preset.high_score
    return options


def _boxmot(name: str):
    def build(appearance: bool, preset: TrackerConfig, max_age: int) -> BaseTracker:
        # BotSort's score thresholds and buffer follow the preset, as for Roboflow's trackers;
        # the others' det_thresh is the preset's new-track score.
        if name == "botsort":
            options = {
                "track_high_thresh": preset.high_score,
                "track_low_thresh": preset.low_score,
                "new_track_thresh": preset.new_track_score,
                "track_buffer": max_age,
            }
        else:
            options = {"det_thresh": preset.new_track_score, "max_age": max_age}
        return BoxmotTracker(name, appearance=appearance, camera_motion=False, **options)

    return build


def _ultralytics(appearance: bool, preset: TrackerConfig, max_age: int) -> BaseTracker:
    options = {
        "track_high_thresh": preset.high_score,
        "track_low_thresh": preset.low_score,
        "new_track_thresh": preset.new_track_score,
        "track_buffer": max_age,
    }
    return UltralyticsTracker(appearance=appearance, camera_motion=False, **options)


# Host trackers of kpr_track.integrations: (appearance on?, our preset, its max_age_s in
# frames at the sequence's frame rate) -> tracker.
HOSTS = {
    **{f"boxmot-{n}": _boxmot(n) for n in ("botsort", "deepocsort", "hybridsort", "boosttrack")},
    "ultralytics-botsort": _ultralytics,
    "norfair": lambda appearance, preset, max_age: NorfairTracker(
        appearance=appearance, reid_hit_counter_max=max_age
    ),
    "deep-sort": lambda appearance, preset, max_age: DeepSortTracker(
        appearance=appearance, max_age=max_age
    ),
}
# The default --reid model's slot (kpr-global: the trained KPR's holistic embedding).
_HOST_KPR = {"appearance": "trained-global", "features": frozenset({"keypoints", "kpr-trained"})}

_NO_OC = {"observation_reupdate": False, "direction_weight": 0.0}
_RETAIL = {"appearance": "retail", "features": frozenset({"retail"}), "preset": "kpr"}
_SPECS = [
    TrackerSpec("kpr", "parts", frozenset({"keypoints", "kpr"}), "kpr"),
    TrackerSpec("motion", preset="motion"),
    # Motion ablations: each new switch of issue 8 off on its own.
    TrackerSpec("motion-no-oc", preset="motion", overrides=_NO_OC),
    TrackerSpec("motion-no-cmc", preset="motion", overrides={"camera_motion": False}),
    TrackerSpec("motion-no-fps", preset="motion", fps_aware=False),
    TrackerSpec("kpr-global", "global", frozenset({"kpr"}), "kpr"),
    TrackerSpec("kpr-trained", "trained", frozenset({"keypoints", "kpr-trained"}), "kpr"),
    TrackerSpec(
        "kpr-trained-global", "trained-global", frozenset({"keypoints", "kpr-trained"}), "kpr"
    ),
    # The default with embeddings on demand off: every readable detection embedded.
    TrackerSpec(
        "kpr-trained-every-crop",
        "trained",
        frozenset({"keypoints", "kpr-trained"}),
        "kpr",
        overrides={"embed_refresh_s": 0.0},
    ),
    # Appearance ablations on the ReID-trained retail-0287 global embedding.
    TrackerSpec("kpr-retail0287", **_RETAIL),
    TrackerSpec("kpr-retail0287-gallery1", **_RETAIL, overrides={"gallery_size": 1}),
    TrackerSpec("kpr-retail0287-no-oc", **_RETAIL, overrides=_NO_OC),
    *(TrackerSpec(name, library=name) for name in ("sort", "bytetrack", "ocsort")),
    *(TrackerSpec(host, host=host) for host in HOSTS),
    *(TrackerSpec(f"{host}+kpr", host=host, **_HOST_KPR) for host in HOSTS),
]


def _preset_spec(preset: str) -> TrackerSpec:
    """The row of a shipped preset no row above starts from (a newly added tracker): the
    preset as shipped, with the default ``--reid`` model's features when it weighs
    appearance."""
    _, settings = preset_settings(preset)
    if getattr(settings, "appearance_weight", 0.0) > 0:
        return TrackerSpec(preset, preset=preset, **_HOST_KPR)
    return TrackerSpec(preset, preset=preset)


_SPECS += [
    _preset_spec(name) for name in shipped_presets() if name not in {s.preset for s in _SPECS}
]


def _linked(spec: TrackerSpec) -> TrackerSpec:
    """``spec`` followed by offline linking on its own appearance slot, or on the default
    --reid's (``trained-global``) when it has none."""
    if spec.appearance is not None:
        return dataclasses.replace(spec, label=f"{spec.label}+link", link=spec.appearance)
    features = spec.features | _HOST_KPR["features"]
    return dataclasses.replace(
        spec, label=f"{spec.label}+link", link=_HOST_KPR["appearance"], features=features
    )


LINKED = ("motion", "kpr-retail0287", "kpr-trained-global", "kpr-trained", "kpr", "kpr-global")
_SPECS += [_linked(s) for s in _SPECS if s.label in LINKED or s.library is not None]
TRACKERS: dict[str, TrackerSpec] = {spec.label: spec for spec in _SPECS}
# Opt-in (--trackers ...): the pose-guided rows need top-down pose and the ImageNet KPR
# pass on every crop; the host rows need their libraries (kpr_track.integrations).
# kpr-trained (the default --reid kpr) is a default row.
HOST_ROWS = tuple(f"{host}{suffix}" for host in HOSTS for suffix in ("", "+kpr"))
OPT_IN = (
    "kpr",
    "kpr-global",
    *(f"{name}+link" for name in ("kpr", "kpr-global")),
    *HOST_ROWS,
)
DEFAULT_TRACKERS = [name for name in TRACKERS if name not in OPT_IN]
