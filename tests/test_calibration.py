"""Distance calibration: the logistic fit, its file form, and the calibrations shipped."""

from __future__ import annotations

import numpy as np
import pytest

from kpr_track.errors import ConfigError
from kpr_track.reid.calibration import DistanceCalibration, fit_calibration, shipped_calibration
from kpr_track.reid.registry import REID_MODELS


def test_fit_recovers_the_crossing_of_two_distance_distributions():
    rng = np.random.default_rng(0)
    same = rng.normal(0.30, 0.05, 4000).clip(0, 1)
    different = rng.normal(0.50, 0.05, 1000).clip(0, 1)  # class sizes differ: prior balanced
    calibration = fit_calibration(same, different, "synthetic")
    assert calibration.midpoint == pytest.approx(0.40, abs=0.01)
    assert calibration.same_median == pytest.approx(0.30, abs=0.01)
    assert calibration.different_median == pytest.approx(0.50, abs=0.01)
    p = calibration.same_probability(np.array([0.2, 0.4, 0.6]))
    assert p[0] > 0.95 and p[1] == pytest.approx(0.5, abs=0.02) and p[2] < 0.05
    assert p.dtype == np.float32


def test_json_round_trip_and_bad_input():
    calibration = DistanceCalibration(0.4, 20.0, 0.3, 0.5, "x")
    assert DistanceCalibration.from_json(calibration.to_json()) == calibration
    with pytest.raises(ConfigError, match="head.safetensors: not a distance calibration"):
        DistanceCalibration.from_json('{"midpoint": 0.4}', "head.safetensors")
    with pytest.raises(ConfigError, match="slope"):
        DistanceCalibration(0.4, -1.0, 0.3, 0.5)
    with pytest.raises(ConfigError, match="same-identity pairs are not closer"):
        fit_calibration(np.array([0.6, 0.7, 0.8]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ConfigError, match=">= 2 same"):
        fit_calibration(np.array([0.1]), np.array([0.5, 0.6]))


@pytest.mark.parametrize(
    "name", sorted(n for n, e in REID_MODELS.items() if not e.calibration_in_weights)
)
def test_every_model_without_one_in_its_weights_ships_a_calibration(name):
    calibration = shipped_calibration(name)
    assert 0.0 < calibration.same_median < calibration.midpoint < calibration.different_median
    assert "train split" in calibration.source
    with pytest.raises(ConfigError, match="no shipped distance calibration"):
        shipped_calibration("resnet")


def test_calibrate_cli_on_real_crops(mot17_reid_split, tmp_path, capsys):
    """`kpr-track calibrate` fits a model on the training identities of a real split."""
    import json

    from kpr_track.cli import main

    root, _ = mot17_reid_split
    out = tmp_path / "calibrations.json"
    assert main(["calibrate", str(root), "--out", str(out), "--reid", "retail-0288"]) == 0
    table = json.loads(out.read_text())
    calibration = DistanceCalibration.from_json(json.dumps(table["retail-0288"]))
    assert calibration.same_median < calibration.different_median
    assert "identity pairs" in calibration.source
    assert "retail-0288: midpoint" in capsys.readouterr().out
