"""Trackers: the :class:`BaseTracker` interface, its registry and the KPR tracker.

Installed as ``kpr_track.trackers`` (the source folder is the top-level ``trackers/``).
"""

from .base import BaseTracker, available_trackers, build_tracker, register_tracker
from .config import TrackerConfig, load_tracker
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
    "register_tracker",
]
