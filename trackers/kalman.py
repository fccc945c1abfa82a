"""Constant-velocity Kalman filter on boxes, with noise scaled by the box height.

State `(8,)`: ``(cx, cy, a, h, vcx, vcy, va, vh)`` with box centre ``cx, cy`` and height
``h`` in pixels, aspect ``a = w / h`` (unitless) and their velocities per frame. The
measurement is the `(4,)` ``(cx, cy, a, h)`` of a detection box.

The parameterisation and the noise model (standard deviations proportional to the
box height, 1/20 for positions and 1/160 for velocities; fixed small noise on the
aspect) are those of DeepSORT (Wojke, Bewley & Paulus, "Simple Online and Realtime
Tracking with a Deep Association Metric", ICIP 2017) as reused by ByteTrack (Zhang
et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection Box", ECCV
2022). The optional confidence scaling of the measurement noise, ``R * (1 - score)``,
is the NSA Kalman filter of GIAOTracker / StrongSORT (Du et al., IEEE TMM 2023).

Frame rate: DeepSORT's per-frame constants were set for MOT16 video (about 30 fps). At
``fps`` frames per second one frame lasts ``dt = reference_fps / fps`` reference frames,
and both process-noise standard deviations are multiplied by ``dt^e``
(``noise_exponent``). Under the continuous white-noise-acceleration model
(Bar-Shalom, Li & Kirubarajan, "Estimation with Applications to Tracking and
Navigation", 2001, Sec. 6.2.2) a position's variance over one step grows as ``dt^3``,
and so does that of a velocity expressed per frame, i.e. ``e = 1.5``; ``e = 1`` keeps
the noise a fixed fraction of the per-frame displacement (the presets' value, chosen on
MOT17-02 at 30 and 7.5 fps). The initial velocity spread (a per-frame velocity) scales
by ``dt``. Measurement noise depends on the detector, not on the frame rate.

Shape letters: ``T`` tracks, ``N`` detections.
"""

from __future__ import annotations

import numpy as np

# Squared-Mahalanobis thresholds: quantiles of the chi-square distribution with 4 dof.
CHI2_95_4DOF = 9.4877
CHI2_99_4DOF = 13.2767

_STD_POSITION = 1.0 / 20.0  # position noise, fraction of the box height
_STD_VELOCITY = 1.0 / 160.0  # velocity noise per frame, fraction of the box height


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """Convert `(..., 4)` ``(x1, y1, x2, y2)`` px boxes to ``(cx, cy, w / h, h)``."""
    boxes = np.asarray(boxes, np.float64)
    w = boxes[..., 2] - boxes[..., 0]
    h = np.maximum(boxes[..., 3] - boxes[..., 1], 1e-6)
    return np.stack([boxes[..., 0] + w / 2, boxes[..., 1] + h / 2, w / h, h], axis=-1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """Convert `(..., 4)` ``(cx, cy, w / h, h)`` to ``(x1, y1, x2, y2)`` px boxes."""
    xyah = np.asarray(xyah, np.float64)
    w = xyah[..., 2] * xyah[..., 3]
    half = np.stack([w / 2, xyah[..., 3] / 2], axis=-1)
    return np.concatenate([xyah[..., :2] - half, xyah[..., :2] + half], axis=-1)


class KalmanFilter:
    """Constant-velocity Kalman filter in ``(cx, cy, a, h)`` space (DeepSORT / ByteTrack).

    Args:
        score_scaled_noise: if True, :meth:`update` multiplies the measurement noise by
            ``1 - score`` (confident detections are trusted more; NSA Kalman).
        time_step: ``dt``, the frame interval in reference frames
            (``reference_fps / fps``; 1 at 30 fps, about 4.3 at 7 fps), > 0.
        noise_exponent: ``e``: process-noise standard deviations scale by ``dt^e``.

    Raises:
        ValueError: if ``time_step`` is not > 0 (a programming error: the tracker
            checks the frame rate it is given).
    """

    def __init__(
        self, score_scaled_noise: bool = False, time_step: float = 1.0, noise_exponent: float = 1.0
    ) -> None:
        if not time_step > 0:
            raise ValueError(f"KalmanFilter: time_step must be > 0, got {time_step}")
        self.score_scaled_noise = score_scaled_noise
        self.time_step = float(time_step)
        self._process_scale = self.time_step**noise_exponent
        self._motion = np.eye(8)  # x_{t+1} = F x_t with unit time step (one frame)
        self._motion[:4, 4:] = np.eye(4)
        self._observation = np.eye(4, 8)  # z = H x

    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start a track from one `(4,)` ``(cx, cy, a, h)`` measurement.

        Returns:
            ``(mean (8,), covariance (8, 8))`` with zero velocity and a wide velocity prior.
        """
        measurement = np.asarray(measurement, np.float64)
        h = measurement[3]
        mean = np.concatenate([measurement, np.zeros(4)])
        std = np.array(
            [2 * _STD_POSITION * h, 2 * _STD_POSITION * h, 1e-2, 2 * _STD_POSITION * h]
            + [10 * _STD_VELOCITY * h, 10 * _STD_VELOCITY * h, 1e-5, 10 * _STD_VELOCITY * h]
        )
        std[4:] *= self.time_step
        return mean, np.diag(std**2)

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Propagate one frame ahead, for one track or a batch.

        Args:
            mean: `(8,)` or `(T, 8)` state means.
            covariance: `(8, 8)` or `(T, 8, 8)` state covariances.

        Returns:
            The predicted ``(mean, covariance)`` with the input shapes.
        """
        mean, covariance = np.asarray(mean, np.float64), np.asarray(covariance, np.float64)
        h = mean[..., 3]
        ones = np.ones_like(h)
        std = (
            np.stack(
                [_STD_POSITION * h, _STD_POSITION * h, 1e-2 * ones, _STD_POSITION * h]
                + [_STD_VELOCITY * h, _STD_VELOCITY * h, 1e-5 * ones, _STD_VELOCITY * h],
                axis=-1,
            )
            * self._process_scale
        )
        process_noise = std[..., :, None] * np.eye(8) * std[..., None, :]  # diag(std^2)
        mean = mean @ self._motion.T
        covariance = self._motion @ covariance @ self._motion.T + process_noise
        return mean, covariance

    def project(
        self, mean: np.ndarray, covariance: np.ndarray, score: float | np.ndarray = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Project states into measurement space, adding measurement noise.

        Args:
            mean: `(8,)` or `(T, 8)` state means.
            covariance: `(8, 8)` or `(T, 8, 8)` state covariances.
            score: detection confidence in [0, 1]; used only with ``score_scaled_noise``.

        Returns:
            ``(mean (..., 4), covariance (..., 4, 4))`` of the predicted measurement.
        """
        mean, covariance = np.asarray(mean, np.float64), np.asarray(covariance, np.float64)
        h = mean[..., 3]
        std = np.stack(
            [_STD_POSITION * h, _STD_POSITION * h, 1e-1 * np.ones_like(h), _STD_POSITION * h],
            axis=-1,
        )
        noise = std[..., :, None] * np.eye(4) * std[..., None, :]
        if self.score_scaled_noise:
            confidence = np.clip(np.asarray(score, np.float64), 0.0, 1.0)
            noise = noise * (1.0 - confidence)[..., None, None]
        projected_mean = mean @ self._observation.T
        projected_cov = self._observation @ covariance @ self._observation.T + noise
        return projected_mean, projected_cov

    def update(
        self,
        mean: np.ndarray,
        covariance: np.ndarray,
        measurement: np.ndarray,
        score: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Correct one track's state with a `(4,)` ``(cx, cy, a, h)`` measurement.

        Args:
            mean: `(8,)` predicted state mean.
            covariance: `(8, 8)` predicted state covariance.
            measurement: `(4,)` measured ``(cx, cy, a, h)``.
            score: detection confidence in [0, 1] (used only with ``score_scaled_noise``).

        Returns:
            The corrected ``(mean (8,), covariance (8, 8))``.
        """
        projected_mean, projected_cov = self.project(mean, covariance, score)
        # Kalman gain K = P H^T S^-1, solved rather than inverted (S is symmetric PD).
        gain = np.linalg.solve(projected_cov, (covariance @ self._observation.T).T).T
        innovation = np.asarray(measurement, np.float64) - projected_mean
        new_mean = mean + gain @ innovation
        new_covariance = covariance - gain @ projected_cov @ gain.T
        return new_mean, new_covariance

    def gating_distance(
        self, mean: np.ndarray, covariance: np.ndarray, measurements: np.ndarray
    ) -> np.ndarray:
        """Squared Mahalanobis distance between predicted tracks and measurements.

        Args:
            mean: `(T, 8)` state means.
            covariance: `(T, 8, 8)` state covariances.
            measurements: `(N, 4)` ``(cx, cy, a, h)`` measurements.

        Returns:
            `(T, N)` float64 squared distances on all 4 measurement dimensions; compare
            with :data:`CHI2_95_4DOF` to gate at 95 %.
        """
        projected_mean, projected_cov = self.project(mean, covariance)
        measurements = np.asarray(measurements, np.float64)
        diff = measurements[None, :, :] - projected_mean[:, None, :]  # (T, N, 4)
        # S = L L^T; d^T S^-1 d = ||L^-1 d||^2, with L^-1 of the (T, 4, 4) factors applied
        # to all N measurements at once by a batched matrix product.
        inverse = np.linalg.inv(np.linalg.cholesky(projected_cov))  # (T, 4, 4)
        z = inverse @ np.swapaxes(diff, 1, 2)  # (T, 4, N) = L^-1 d
        return (z**2).sum(axis=1)
