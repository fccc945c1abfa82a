"""Calibration of an appearance model's distances: how likely a pair is the same person.

Every appearance model ships a :class:`DistanceCalibration`, fitted on the training
split of its ReID data (same-identity vs different-identity pairs): a logistic model
of the probability that two samples at part-visibility distance ``d`` show the same
person,

    p_same(d) = 1 / (1 + exp(slope * (d - midpoint)))

(Platt scaling, Platt 1999, fitted by maximum likelihood on balanced pairs, so the
prior is 0.5 and ``midpoint`` is the distance at which a pair is equally likely the
same or different person). Consumers (the tracker's fusion and gate) read this instead
of a hard distance threshold tuned on one sequence, so switching ``--reid`` needs no
new tracker settings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class DistanceCalibration:
    """Logistic map from part distance in [0, 1] to same-identity probability.

    Attributes:
        midpoint: distance in [0, 1] where same and different identity are equally
            likely (p_same = 0.5).
        slope: logistic slope in 1 / distance units (> 0; larger = sharper).
        same_median: median distance of same-identity pairs in the fitting data.
        different_median: median distance of different-identity pairs.
        source: what the calibration was fitted on (data set, split, pair counts).

    Raises:
        ConfigError: if ``slope <= 0`` or ``midpoint`` is outside [0, 1].
    """

    midpoint: float
    slope: float
    same_median: float
    different_median: float
    source: str = ""

    def __post_init__(self) -> None:
        if not self.slope > 0:
            raise ConfigError(f"calibration slope must be > 0, got {self.slope}")
        if not 0.0 <= self.midpoint <= 1.0:
            raise ConfigError(f"calibration midpoint must be in [0, 1], got {self.midpoint}")

    def same_probability(self, distance: np.ndarray) -> np.ndarray:
        """p_same for an array of distances (any shape, float, [0, 1]) -> same shape float32."""
        z = self.slope * (np.asarray(distance, np.float64) - self.midpoint)
        return (1.0 / (1.0 + np.exp(np.clip(z, -60.0, 60.0)))).astype(np.float32)

    def to_json(self) -> str:
        """One-line JSON (stored in safetensors metadata or next to ONNX weights)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, origin: str = "calibration") -> DistanceCalibration:
        """Parse :meth:`to_json` output.

        Raises:
            ConfigError: naming ``origin`` when the text is not a valid calibration.
        """
        try:
            fields = json.loads(text)
            return cls(
                **{k: fields[k] for k in ("midpoint", "slope", "same_median", "different_median")},
                source=str(fields.get("source", "")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"{origin}: not a distance calibration ({error})") from None


def fit_calibration(
    same: np.ndarray, different: np.ndarray, source: str = ""
) -> DistanceCalibration:
    """Fit :class:`DistanceCalibration` on same- and different-identity pair distances.

    The two classes are weighted equally (balanced prior), then a 1-D logistic
    regression is fitted by Newton's method on the log-likelihood.

    Args:
        same: `(S,)` float distances in [0, 1] of same-identity pairs (S >= 2).
        different: `(M,)` float distances of different-identity pairs (M >= 2).
        source: provenance text stored in the result.

    Raises:
        ConfigError: with fewer than 2 pairs of either class, or non-finite distances.
    """
    same = np.asarray(same, np.float64).ravel()
    different = np.asarray(different, np.float64).ravel()
    if len(same) < 2 or len(different) < 2:
        raise ConfigError(
            f"calibration needs >= 2 same and >= 2 different pairs, got {len(same)} / "
            f"{len(different)}"
        )
    if not (np.isfinite(same).all() and np.isfinite(different).all()):
        raise ConfigError("calibration distances must be finite")
    x = np.concatenate([same, different])
    y = np.concatenate([np.ones_like(same), np.zeros_like(different)])
    w = np.concatenate(
        [np.full_like(same, 0.5 / len(same)), np.full_like(different, 0.5 / len(different))]
    )
    # p = sigmoid(a + b x); Newton-Raphson with a small ridge for separable data.
    a, b = 0.0, 0.0
    design = np.stack([np.ones_like(x), x], axis=1)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(a + b * x, -60, 60)))
        gradient = design.T @ (w * (y - p)) - 1e-4 * np.array([0.0, b])
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag([1e-9, 1e-4])
        step = np.linalg.solve(hessian, gradient)
        a, b = a + step[0], b + step[1]
        if np.abs(step).max() < 1e-10:
            break
    if b >= 0:  # distances do not separate identities at all: a flat, uninformative map
        raise ConfigError(f"calibration: same-identity pairs are not closer ({source})")
    return DistanceCalibration(
        midpoint=float(np.clip(-a / b, 0.0, 1.0)),
        slope=float(-b),
        same_median=float(np.median(same)),
        different_median=float(np.median(different)),
        source=source,
    )


CALIBRATIONS_FILE = "calibrations.json"


def shipped_calibration(name: str) -> DistanceCalibration:
    """The calibration shipped for the training-free ``--reid`` model ``name``.

    Read from ``kpr_track/assets/calibrations.json`` (written by
    ``kpr-track calibrate``); trained KPR weights carry their own in their metadata.

    Raises:
        ConfigError: when no calibration is shipped for ``name``.
    """
    from importlib.resources import files

    text = files("kpr_track").joinpath("assets", CALIBRATIONS_FILE).read_text()
    table = json.loads(text)
    if name not in table:
        raise ConfigError(f"no shipped distance calibration for {name!r}; have {sorted(table)}")
    return DistanceCalibration.from_json(json.dumps(table[name]), f"{CALIBRATIONS_FILE} [{name}]")
