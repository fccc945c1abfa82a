"""Adding a tracker is its class and its preset: the registry, presets, CLI and benchmark
pick it up without further edits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kpr_track.cli.bench import load_benchmark
from kpr_track.cli.help import ArgumentParser
from kpr_track.cli.track import register
from kpr_track.config import available_presets
from kpr_track.detections import Detections
from kpr_track.errors import ConfigError
from kpr_track.trackers import BaseTracker, load_tracker, register_tracker
from kpr_track.trackers.base import _REGISTRY


@dataclasses.dataclass(frozen=True)
class _NearestConfig:
    max_distance: float = 50.0  # px: a detection farther from every track starts a new one


class _NearestTracker(BaseTracker):
    """Each detection takes the id of the closest last-frame box centre (test only)."""

    config_class = _NearestConfig

    def __init__(self, max_distance: float = 50.0, frame_rate=None, calibration=None) -> None:
        super().__init__()
        self.max_distance = max_distance
        self.last: list[tuple[np.ndarray, int]] = []

    def update(self, detections: Detections, frame=None) -> np.ndarray:
        centres = (detections.boxes[:, :2] + detections.boxes[:, 2:]) / 2
        ids = []
        for centre in centres:
            near = [(np.linalg.norm(centre - c), i) for c, i in self.last]
            close = min(near, default=(np.inf, 0))
            ids.append(close[1] if close[0] <= self.max_distance else self._new_id())
        self.last = list(zip(centres, ids, strict=True))
        return np.asarray(ids, np.int64)


@pytest.fixture
def nearest(tmp_path):
    """The test tracker registered as ``nearest-test`` and its preset file."""
    register_tracker("nearest-test")(_NearestTracker)
    preset = tmp_path / "nearest.yaml"
    preset.write_text("tracker: nearest-test\nmax_distance: 20.0  # px\n")
    yield preset
    del _REGISTRY["nearest-test"]


def _frame(*lefts: float) -> Detections:
    boxes = np.array([[x, 10, x + 20, 60] for x in lefts], np.float32)
    return Detections(boxes, np.ones(len(lefts), np.float32), np.zeros((len(lefts), 17, 3)))


def test_a_registered_tracker_runs_from_its_preset(nearest):
    tracker = load_tracker(nearest, frame_rate=7.0)
    assert isinstance(tracker, _NearestTracker) and tracker.max_distance == 20.0
    assert tracker.update(_frame(0, 100)).tolist() == [1, 2]
    assert tracker.update(_frame(105, 5)).tolist() == [2, 1]
    assert tracker.update(_frame(300)).tolist() == [3]


def test_its_preset_is_checked_against_its_own_settings(nearest, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker: nearest-test\nmax_distanse: 20.0\n")
    with pytest.raises(ConfigError, match="bad.yaml.*max_distanse"):
        load_tracker(bad)


def test_the_benchmark_gets_a_row_for_it(nearest):
    quality = load_benchmark("quality_rows")
    spec = quality._preset_spec(str(nearest))
    assert spec.appearance is None and not spec.uses_camera
    tracker = spec.build(load_tracker("kpr").config, 7.0, None)
    assert isinstance(tracker, _NearestTracker)
    # Every shipped preset has a row, under its own name or as the start of named rows.
    assert set(available_presets("trackers")) <= {s.preset for s in quality.TRACKERS.values()}


def test_the_cli_lists_every_shipped_preset():
    parser = ArgumentParser(prog="kpr-track")
    subparsers = parser.add_subparsers()
    register(subparsers)
    track_help = subparsers.choices["track"].format_help()
    for preset in available_presets("trackers"):
        assert preset in track_help
