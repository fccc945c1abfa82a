"""Trackers: the :class:`BaseTracker` interface, its registry and the KPR tracker.

Installed as ``kpr_track.trackers`` (the source folder is the top-level ``trackers/``).

Adding a tracker is its class and its preset: a :class:`BaseTracker` subclass with a
``config_class`` (the dataclass of its settings), decorated with
``@register_tracker("<name>")`` in a module imported below, and
``configs/trackers/<preset>.yaml`` (``tracker: <name>`` plus every setting, each with its
unit). ``kpr-track track --tracker``, the quality benchmark's rows
(``benchmarks/track_quality.py``) and the preset tests read the registry and the shipped
presets (:func:`shipped_presets`).
"""

from .base import BaseTracker, available_trackers, build_tracker, register_tracker
from .config import TrackerConfig, load_tracker, preset_settings, shipped_presets
from .kpr_tracker import KPRTracker
from .track import Track, TrackState

__all__ = [
    "BaseTracker",
    "KPRTracker",
    "Track",
    "TrackState",
    "TrackerConfig",
    "available_trackers",
    "build_tracker",
    "load_tracker",
    "preset_settings",
    "register_tracker",
    "shipped_presets",
]
