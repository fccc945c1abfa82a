"""Constant-velocity Kalman filter on (cx, cy, a, h)."""

from __future__ import annotations

import numpy as np
import pytest

from kpr_track.trackers.kalman import KalmanFilter, xyah_to_xyxy, xyxy_to_xyah


def test_box_conversion_round_trip():
    boxes = np.array([[10, 20, 50, 120], [0, 0, 1, 2]], float)
    xyah = xyxy_to_xyah(boxes)
    assert xyah[0].tolist() == pytest.approx([30, 70, 0.4, 100])
    assert xyah_to_xyxy(xyah) == pytest.approx(boxes)


def test_tracks_constant_velocity_box():
    kalman = KalmanFilter()
    velocity = np.array([3.0, -1.5, 0.0, 0.5])  # px/frame on cx, cy, a, h
    start = np.array([100.0, 200.0, 0.4, 100.0])
    mean, cov = kalman.initiate(start)
    for frame in range(1, 30):
        mean, cov = kalman.predict(mean, cov)
        mean, cov = kalman.update(mean, cov, start + frame * velocity)
    assert mean[4:] == pytest.approx(velocity, abs=0.05)
    predicted, _ = kalman.predict(mean, cov)
    assert predicted[:4] == pytest.approx(start + 30 * velocity, abs=0.2)


def test_predict_grows_uncertainty_and_update_shrinks_it():
    kalman = KalmanFilter()
    mean, cov = kalman.initiate(np.array([50.0, 50.0, 0.5, 80.0]))
    predicted_mean, predicted_cov = kalman.predict(mean, cov)
    assert predicted_mean == pytest.approx(mean)  # zero initial velocity
    assert np.all(np.diag(predicted_cov) > np.diag(cov))
    _, updated_cov = kalman.update(predicted_mean, predicted_cov, mean[:4])
    assert np.all(np.diag(updated_cov)[:4] < np.diag(predicted_cov)[:4])


def test_batched_predict_equals_single():
    kalman = KalmanFilter()
    states = [kalman.initiate(np.array([10.0 * i, 20.0, 0.4, 50.0 + i])) for i in range(3)]
    means = np.stack([s[0] for s in states])
    means[:, 4] = [1.0, -2.0, 0.5]
    covs = np.stack([s[1] for s in states])
    batch_mean, batch_cov = kalman.predict(means, covs)
    for i in range(3):
        mean, cov = kalman.predict(means[i], covs[i])
        assert batch_mean[i] == pytest.approx(mean)
        assert batch_cov[i] == pytest.approx(cov)


def test_gating_distance_is_zero_at_prediction_and_grows():
    kalman = KalmanFilter()
    mean, cov = kalman.predict(*kalman.initiate(np.array([100.0, 100.0, 0.4, 100.0])))
    measurements = np.array([mean[:4], mean[:4] + [5, 0, 0, 0], mean[:4] + [20, 0, 0, 0]])
    distance = kalman.gating_distance(mean[None], cov[None], measurements)
    assert distance.shape == (1, 3)
    assert distance[0, 0] == pytest.approx(0.0, abs=1e-9)
    assert 0 < distance[0, 1] < distance[0, 2]
    assert distance[0, 2] == pytest.approx(16 * distance[0, 1])  # quadratic in the offset


@pytest.mark.parametrize(("score", "pull"), [(0.0, "partial"), (1.0, "full")])
def test_score_scaled_noise(score, pull):
    kalman = KalmanFilter(score_scaled_noise=True)
    mean, cov = kalman.predict(*kalman.initiate(np.array([100.0, 100.0, 0.4, 100.0])))
    measurement = mean[:4] + [10.0, 0, 0, 0]
    new_mean, _ = kalman.update(mean, cov, measurement, score=score)
    if pull == "full":  # a certain detection is trusted entirely
        assert new_mean[0] == pytest.approx(110.0)
    else:
        assert 100.0 < new_mean[0] < 110.0


@pytest.mark.parametrize("time_step", [30 / 7, 2.0, 0.5])
@pytest.mark.parametrize("exponent", [1.0, 1.5])
def test_process_noise_std_grows_as_dt_power_and_initial_velocity_spread_as_dt(time_step, exponent):
    """Per-step process variance ~ dt^(2 e) (kalman module docstring)."""
    state = np.array([50.0, 50.0, 0.5, 80.0])
    reference = KalmanFilter()
    scaled = KalmanFilter(time_step=time_step, noise_exponent=exponent)
    mean, cov = reference.initiate(state)
    added = reference.predict(mean, cov)[1] - reference._motion @ cov @ reference._motion.T
    added_scaled = scaled.predict(mean, cov)[1] - scaled._motion @ cov @ scaled._motion.T
    assert np.diag(added_scaled) == pytest.approx(np.diag(added) * time_step ** (2 * exponent))
    velocity_spread = np.diag(scaled.initiate(state)[1])[4:6]
    assert velocity_spread == pytest.approx(np.diag(cov)[4:6] * time_step**2)


def test_time_step_must_be_positive():
    with pytest.raises(ValueError, match="time_step"):
        KalmanFilter(time_step=0.0)
