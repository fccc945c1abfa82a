"""The tracker interface and a name -> class registry (DESIGN.md §4, STYLE.md "worth doing" 2).

A tracker consumes one frame's :class:`~kpr_track.detections.Detections` at a time and
returns, for each input detection, the id of the track it belongs to. Ids come from a
per-instance counter starting at 1, so two trackers in one process never share ids.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from kpr_track.detections import Detections
from kpr_track.errors import ConfigError

_REGISTRY: dict[str, type[BaseTracker]] = {}


class BaseTracker(ABC):
    """Online multi-object tracker: one :meth:`update` call per frame.

    Subclasses set ``config_class`` to the dataclass whose fields are their constructor
    keyword arguments, so a YAML preset can be checked before construction.
    """

    config_class: ClassVar[type]

    def __init__(self) -> None:
        self._next_id = 1

    def _new_id(self) -> int:
        """Draw the next track id of this instance (1, 2, 3, ...)."""
        track_id = self._next_id
        self._next_id += 1
        return track_id

    @abstractmethod
    def update(self, detections: Detections, frame: np.ndarray | None = None) -> np.ndarray:
        """Advance by one frame.

        Args:
            detections: the ``N`` detections of the new frame (possibly empty).
            frame: the `(H, W, 3)` BGR uint8 image, for trackers that read it (camera
                motion); others ignore it.

        Returns:
            `(N,)` int64 track id per input detection, ``-1`` where the detection is
            not output as a track this frame (unconfirmed track, unmatched detection).
        """

    @property
    def uses_keypoints(self) -> bool:
        """Whether :meth:`update` reads the detections' keypoints, so the pipeline runs
        top-down pose for detectors that give boxes only; False by default."""
        return False

    @property
    def appearance_min_score(self) -> float:
        """Detector score in [0, 1] below which this tracker never reads a detection's
        embedding (neither compares nor remembers it), so the pipeline need not compute
        it; 0 for trackers that read every one."""
        return 0.0

    def appearance_targets(self, detections: Detections) -> np.ndarray:
        """`(N,)` bool: the detections of the coming :meth:`update` whose embedding it
        reads, the ones the appearance stage must fill; by default those scoring at least
        :attr:`appearance_min_score`."""
        return detections.scores >= self.appearance_min_score

    def reset(self) -> None:
        """Forget every track and restart ids at 1 (call between sequences)."""
        self._next_id = 1


def register_tracker(name: str):
    """Class decorator registering a :class:`BaseTracker` subclass under ``name``.

    Raises:
        ValueError: if ``name`` is already taken by another class (a programming error).
    """

    def decorator(cls: type[BaseTracker]) -> type[BaseTracker]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"tracker name {name!r} already registered by {_REGISTRY[name]}")
        _REGISTRY[name] = cls
        return cls

    return decorator


def available_trackers() -> list[str]:
    """Names of the registered trackers, sorted."""
    return sorted(_REGISTRY)


def tracker_class(name: str) -> type[BaseTracker]:
    """The class registered under ``name``.

    Raises:
        ConfigError: if no tracker has that name; the message lists the known names.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown tracker {name!r}; expected one of {available_trackers()}")
    return _REGISTRY[name]


def build_tracker(name: str, **kwargs: Any) -> BaseTracker:
    """Construct the tracker registered under ``name`` with keyword ``kwargs``.

    Raises:
        ConfigError: on an unknown name, an unknown keyword or an out-of-range value.
    """
    cls = tracker_class(name)
    renamed = getattr(cls.config_class, "renamed", {})
    for key in set(kwargs) & set(renamed):
        raise ConfigError(
            f"tracker {name!r}: setting {key!r} (frames) was replaced by {renamed[key]!r} (seconds)"
        )
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ConfigError(f"tracker {name!r}: {error}") from None
