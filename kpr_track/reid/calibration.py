"""Calibration of an appearance model's distances: how likely a pair is the same person.

Every appearance model ships a :class:`DistanceCalibration`, fitted on the training
split of its ReID data (same-identity vs different-identity pairs): a logistic model of
the probability that two samples show the same person, from their *per-slot* distances
(slot 0 = holistic, slots 1..K = parts; each distance ``||f^q - f^g||_2 / 2`` in [0, 1]):

    z = slope (midpoint - d_h) + s (part_slope (part_midpoint - d_p))
    p_same = 1 / (1 + exp(-z))

with ``d_h`` the holistic distance, ``s = n / K`` the share of the K parts both samples
show and ``d_p`` the mean distance of those ``n`` shared parts (Platt scaling, Platt
1999, extended to two evidence terms; fitted by maximum likelihood on balanced pairs, so
the prior is 0.5). Slots live at different scales (a learned part's different-identity
median distance is a fraction of the holistic slot's), so each gets its own slope
instead of a plain average of slot distances. Without a shared part (``s = 0``), or for
a model whose parts carry no evidence (``part_slope = 0``), the model *is* the holistic
calibration: that is the special case it always falls back to. Consumers (the tracker's
fusion and gate, ``eval-reid``'s ranking) read :meth:`DistanceCalibration.logit` instead
of a hard distance threshold, so switching ``--reid`` needs no new tracker settings.

``statistic`` says which distances it was fitted on: ``"pair"`` (one crop against
another) or ``"gallery-min-G"`` (per slot the minimum over a gallery of ``G`` crops of
one identity, what :class:`~kpr_track.trackers.KPRTracker` compares against a track).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ConfigError, InputError


@dataclass(frozen=True)
class DistanceCalibration:
    """Logistic map from part distance in [0, 1] to same-identity probability.

    Attributes:
        midpoint: holistic distance in [0, 1] where, with no shared part, same and
            different identity are equally likely (p_same = 0.5).
        slope: holistic logistic slope in 1 / distance units (> 0; larger = sharper).
        same_median: median holistic distance of same-identity pairs in the fitting data.
        different_median: median holistic distance of different-identity pairs.
        source: what the calibration was fitted on (data set, split, pair counts).
        part_midpoint: mean shared-part distance at which the parts add no evidence
            either way (distance units; may lie outside [0, 1] when parts only ever add
            or only ever subtract evidence).
        part_slope: slope of the part evidence in 1 / distance units, at full part share
            (>= 0; 0: parts add nothing, the holistic calibration alone).
        statistic: ``"pair"`` or ``"gallery-min-G"`` (module docstring).

    Raises:
        ConfigError: if ``slope <= 0``, ``part_slope < 0``, ``midpoint`` is outside
            [0, 1] or ``part_midpoint`` is not finite.
    """

    midpoint: float
    slope: float
    same_median: float
    different_median: float
    source: str = ""
    part_midpoint: float = 0.0
    part_slope: float = 0.0
    statistic: str = "pair"

    def __post_init__(self) -> None:
        if not self.slope > 0:
            raise ConfigError(f"calibration slope must be > 0, got {self.slope}")
        if not self.part_slope >= 0:
            raise ConfigError(f"calibration part_slope must be >= 0, got {self.part_slope}")
        if not 0.0 <= self.midpoint <= 1.0:
            raise ConfigError(f"calibration midpoint must be in [0, 1], got {self.midpoint}")
        if not np.isfinite(self.part_midpoint):
            raise ConfigError(f"calibration part_midpoint must be finite, got {self.part_midpoint}")

    def same_probability(self, distance: np.ndarray) -> np.ndarray:
        """p_same from the holistic distance alone (no shared part): any shape, float in
        [0, 1] -> same shape float32."""
        z = self.slope * (np.asarray(distance, np.float64) - self.midpoint)
        return (1.0 / (1.0 + np.exp(np.clip(z, -60.0, 60.0)))).astype(np.float32)

    def logit(self, slot_distance: np.ndarray, shared: np.ndarray) -> np.ndarray:
        """Same-person log-odds ``z`` of pairs from their per-slot distances (module formula).

        Args:
            slot_distance: `(..., P)` float distances in [0, 1] per slot (slot 0
                holistic, then the K = P - 1 parts; any value where not shared).
            shared: `(..., P)` bool, True where both samples show the slot. Pairs must
                share the holistic slot (it is always visible); a part not shared adds
                nothing.

        Returns:
            `(...)` float64 log-odds (monotonically decreasing in every shared slot's
            distance); ``-logit`` is the ranking distance of ``eval-reid``.

        Raises:
            InputError: if the shapes differ.
        """
        distance = np.asarray(slot_distance, np.float64)
        shared = np.asarray(shared, bool)
        if distance.shape != shared.shape or distance.ndim < 1:
            raise InputError(
                f"calibration: slot distances {distance.shape} and shared {shared.shape} "
                "must be the same (..., P) shape"
            )
        z = self.slope * (self.midpoint - distance[..., 0])
        if distance.shape[-1] > 1 and self.part_slope > 0:
            share, mean = part_evidence(distance, shared)
            z = z + share * self.part_slope * (self.part_midpoint - mean)
        return z

    def fused_probability(self, slot_distance: np.ndarray, shared: np.ndarray) -> np.ndarray:
        """p_same = sigmoid(:meth:`logit`): `(..., P)` distances and shared -> `(...)` float32."""
        z = np.clip(self.logit(slot_distance, shared), -60.0, 60.0)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def to_json(self) -> str:
        """One-line JSON (stored in safetensors metadata or next to ONNX weights)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, origin: str = "calibration") -> DistanceCalibration:
        """Parse :meth:`to_json` output (files without the part terms: holistic only).

        Raises:
            ConfigError: naming ``origin`` when the text is not a valid calibration.
        """
        try:
            fields = json.loads(text)
            return cls(
                **{k: fields[k] for k in ("midpoint", "slope", "same_median", "different_median")},
                source=str(fields.get("source", "")),
                part_midpoint=float(fields.get("part_midpoint", 0.0)),
                part_slope=float(fields.get("part_slope", 0.0)),
                statistic=str(fields.get("statistic", "pair")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"{origin}: not a distance calibration ({error})") from None


def part_evidence(slot_distance: np.ndarray, shared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of shared parts and their mean distance.

    Args:
        slot_distance: `(..., P)` float per-slot distances (slot 0 holistic).
        shared: `(..., P)` bool, slots both samples show.

    Returns:
        ``(share (...), mean (...))`` float64: ``n / K`` with ``n`` the shared parts of
        the ``K = P - 1``, and their mean distance (0 where ``n = 0``).
    """
    parts = np.asarray(shared, bool)[..., 1:]
    count = parts.sum(-1)
    total = np.where(parts, np.asarray(slot_distance, np.float64)[..., 1:], 0.0).sum(-1)
    return count / max(parts.shape[-1], 1), np.where(count > 0, total / np.maximum(count, 1), 0.0)


def fit_calibration(
    same: np.ndarray,
    different: np.ndarray,
    source: str = "",
    *,
    same_parts: tuple[np.ndarray, np.ndarray] | None = None,
    different_parts: tuple[np.ndarray, np.ndarray] | None = None,
    statistic: str = "pair",
) -> DistanceCalibration:
    """Fit :class:`DistanceCalibration` on same- and different-identity pairs.

    The two classes are weighted equally (balanced prior), then a logistic regression on
    ``[1, d_h, s, s d_p]`` (module formula) is fitted by Newton's method on the
    log-likelihood with a small ridge. Without part evidence, or when the fitted part
    term does not decrease with the part distance, the holistic-only model is fitted.

    Args:
        same: `(S,)` float holistic distances in [0, 1] of same-identity pairs (S >= 2).
        different: `(M,)` float holistic distances of different-identity pairs (M >= 2).
        source: provenance text stored in the result.
        same_parts: ``(share (S,), mean part distance (S,))`` of the same pairs
            (:func:`part_evidence`), or None for a holistic-only model.
        different_parts: the same for the different pairs.
        statistic: what the distances are (``"pair"``, ``"gallery-min-G"``).

    Raises:
        ConfigError: with fewer than 2 pairs of either class, non-finite distances, or
            when same-identity pairs are not closer.
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
    columns = [np.ones_like(x), x]
    if same_parts is not None and different_parts is not None:
        share = np.concatenate([same_parts[0], different_parts[0]]).astype(np.float64)
        mean = np.concatenate([same_parts[1], different_parts[1]]).astype(np.float64)
        if share.any():
            columns += [share, share * mean]
    coef = _newton(np.stack(columns, axis=1), y, w)
    if len(coef) == 4 and not coef[3] < 0:  # parts would not say "closer = same": drop them
        coef = _newton(np.stack(columns[:2], axis=1), y, w)
    a, b = coef[0], coef[1]
    if b >= 0:  # distances do not separate identities at all: a flat, uninformative map
        raise ConfigError(f"calibration: same-identity pairs are not closer ({source})")
    part_slope = float(-coef[3]) if len(coef) == 4 else 0.0
    return DistanceCalibration(
        midpoint=float(np.clip(-a / b, 0.0, 1.0)),
        slope=float(-b),
        same_median=float(np.median(same)),
        different_median=float(np.median(different)),
        source=source,
        part_midpoint=float(coef[2] / part_slope) if part_slope else 0.0,
        part_slope=part_slope,
        statistic=statistic,
    )


def _newton(design: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted logistic regression ``p = sigmoid(design @ coef)`` by Newton-Raphson, with
    a ridge of 1e-4 on every coefficient but the intercept (separable data stays finite).

    Args:
        design: `(M, C)` float64, first column the intercept.
        y: `(M,)` {0, 1} labels.
        w: `(M,)` sample weights (sum 1).

    Returns:
        `(C,)` float64 coefficients.
    """
    ridge = np.full(design.shape[1], 1e-4)
    ridge[0] = 0.0
    coef = np.zeros(design.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ coef, -60, 60)))
        gradient = design.T @ (w * (y - p)) - ridge * coef
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag(ridge + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        coef = coef + step
        if np.abs(step).max() < 1e-10:
            break
    return coef


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
