"""Tracker presets: shipped YAML files, strict keys and range checks."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

from kpr_track.config import available_presets
from kpr_track.errors import ConfigError
from kpr_track.trackers import (
    KPRTracker,
    TrackerConfig,
    build_tracker,
    load_tracker,
    preset_settings,
    shipped_presets,
)
from kpr_track.trackers.link import LinkConfig


def test_kpr_and_motion_presets_ship():
    assert {"kpr", "motion"} <= set(shipped_presets())


@pytest.mark.parametrize(("preset", "appearance"), [("kpr", True), ("motion", False)])
def test_shipped_presets_load(preset, appearance):
    tracker = load_tracker(preset)
    assert isinstance(tracker, KPRTracker)
    assert (tracker.config.appearance_weight > 0) == appearance


@pytest.mark.parametrize("preset", shipped_presets())
def test_every_shipped_preset_builds_its_registered_tracker(preset):
    cls, _ = preset_settings(preset)
    assert isinstance(load_tracker(preset), cls)


@pytest.mark.parametrize("preset", shipped_presets())
def test_shipped_presets_set_and_document_every_key(preset):
    cls, _ = preset_settings(preset)
    lines = available_presets("trackers")[preset].read_text().splitlines()
    sections = ("tracker:", "link:")
    settings = [
        line for line in lines if re.match(r"^\w+:", line) and not line.startswith(sections)
    ]
    keys = {line.split(":")[0] for line in settings}
    assert keys == {f.name for f in dataclasses.fields(cls.config_class)}
    link = [line.strip() for line in lines if re.match(r"^  \w+:", line)]  # the link section
    assert {line.split(":")[0] for line in link} == {f.name for f in dataclasses.fields(LinkConfig)}
    assert all("#" in line for line in settings + link), "each key needs a comment with its unit"


def test_constructor_defaults_are_the_config_defaults():
    signature = inspect.signature(KPRTracker.__init__).parameters
    for field in dataclasses.fields(TrackerConfig):
        assert signature[field.name].default == field.default, field.name


def _write(tmp_path, text):
    path = tmp_path / "custom.yaml"
    path.write_text(text)
    return path


def test_custom_yaml_file(tmp_path):
    tracker = load_tracker(str(_write(tmp_path, "tracker: kpr\nmax_age_s: 1.5\nmin_hits: 2\n")))
    assert (tracker.config.max_age_s, tracker.config.min_hits) == (1.5, 2)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("tracker: kpr\nmax_agee: 3\n", r"custom\.yaml.*max_agee"),  # unknown key
        ("max_age_s: 3\n", r"custom\.yaml.*'tracker'"),  # tracker key missing
        ("tracker: kpr\nmax_age: 60\n", r"custom\.yaml.*'max_age' \(frames\).*'max_age_s'"),
        (
            "tracker: kpr\ndirection_delta: 3\n",
            r"custom\.yaml.*'direction_delta' \(frames\).*'direction_delta_s'",
        ),
        ("tracker: kpr\nlost_max_speed: -1\n", r"custom\.yaml.*lost_max_speed"),
        ("tracker: sort\n", r"custom\.yaml.*unknown tracker 'sort'"),
        ("tracker: kpr\nmax_age_s: -1\n", r"custom\.yaml.*max_age_s"),
        ("tracker: kpr\nappearance_weight: 1.5\n", r"custom\.yaml.*appearance_weight"),
        ("tracker: kpr\nmin_hits: 0\n", r"custom\.yaml.*min_hits"),
        ("tracker: kpr\nlow_score: 0.7\nhigh_score: 0.5\n", r"custom\.yaml.*low_score"),
        ("tracker: kpr\ngallery_size: 0\n", r"custom\.yaml.*gallery_size"),
        (
            "tracker: kpr\nhigh_score: 0.5\nnew_track_score: 0.3\n",
            r"custom\.yaml.*new_track_score.*>= high_score",
        ),
        ("tracker: kpr\nmax_appearance_distance: 0.35\n", r"custom\.yaml.*max_appearance_distance"),
        ("tracker: kpr\nreference_fps: 0\n", r"custom\.yaml.*reference_fps"),
        ("tracker: kpr\nmax_age_s: ten\n", r"custom\.yaml.*max_age_s.*float"),
    ],
)
def test_bad_yaml_names_file_and_key(tmp_path, text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_tracker(str(_write(tmp_path, text)))


def test_unknown_preset_name():
    with pytest.raises(ConfigError, match="unknown trackers preset 'nope'"):
        load_tracker("nope")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_age_s": -3.0}, "max_age_s"),
        ({"appearance_weight": -0.1}, "appearance_weight"),
        ({"gate_threshold": 0.0}, "gate_threshold"),
    ],
)
def test_constructor_checks_ranges(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        KPRTracker(**kwargs)
    with pytest.raises(ConfigError, match=field):
        build_tracker("kpr", **kwargs)
