"""Tracker settings searched on labelled sequences (``kpr-track tune``).

The search is Optuna's (Akiba et al., "Optuna: A Next-generation Hyperparameter
Optimization Framework", KDD 2019) tree-structured Parzen estimator, seeded with the
starting preset as its first trial so a study never ends below it. A study lives in an
SQLite file (Optuna RDB storage): running the command again with the same ``--study``
file continues it up to ``--trials`` finished trials. Each trial runs the tracker over
the cached detections of every sequence (:mod:`kpr_track.tune_cache`) and scores the
results with TrackEval (:func:`kpr_track.evaluation.evaluate`, combined over the
sequences): HOTA, IDF1 or ``w HOTA + (1 - w) IDF1``. With the starting preset's ``link``
settings enabled (the ``kpr`` preset) the score is that of the linked output, what
``kpr-track VIDEO`` writes: the online tracks of each trial are linked and their gaps
filled (:func:`kpr_track.linking.link_rows`) before they are scored.

The best settings are written as a preset YAML that ``--tracker`` reads, with the starting
preset's ``link`` section.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .trackers.link import LinkConfig
from .tune_cache import CachedSequence

OBJECTIVES = ("hota", "idf1", "mix")


@dataclass(frozen=True)
class Range:
    """One searched setting: ``low``..``high`` (``log``: on a log scale; ``integer``)."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


# The searched settings of KPRTracker (units: trackers.config.TrackerConfig). The score
# thresholds are drawn in order (high, then low <= high, then new_track >= high).
SEARCH_SPACE: dict[str, Range] = {
    "high_score": Range(0.1, 0.6),
    "low_score": Range(0.05, 0.6),
    "new_track_score": Range(0.1, 0.8),
    "match_cost": Range(0.5, 1.2),
    "low_match_cost": Range(0.3, 0.8),
    "lost_low_match_cost": Range(0.0, 0.6),
    "isolated_match_iou": Range(0.0, 0.6),
    "pose_score_weight": Range(0.0, 3.0),
    "pose_score_below": Range(0.2, 1.0),
    "unconfirmed_match_cost": Range(0.4, 1.0),
    "gate_threshold": Range(5.0, 40.0, log=True),
    "max_age_s": Range(0.5, 6.0, log=True),
    "min_hits": Range(1, 5, integer=True),
    "lost_max_speed": Range(0.5, 6.0, log=True),
    "noise_exponent": Range(0.5, 1.5),
    "direction_weight": Range(0.0, 0.5),
    "direction_delta_s": Range(0.03, 0.3, log=True),
}
APPEARANCE_SPACE = {
    "appearance_weight": Range(0.1, 1.0),
    "gallery_size": Range(1, 10, integer=True),
}


def objective_value(metrics: dict, objective: str, weight: float = 0.5) -> float:
    """The number a study maximises, from TrackEval's combined metrics (in [0, 1]).

    Raises:
        ConfigError: unknown objective or ``weight`` outside [0, 1].
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"objective weight must be in [0, 1], got {weight}")
    if objective == "hota":
        return float(metrics["HOTA"])
    if objective == "idf1":
        return float(metrics["IDF1"])
    return weight * float(metrics["HOTA"]) + (1.0 - weight) * float(metrics["IDF1"])


def suggest(trial, space: dict[str, Range], base: dict) -> dict:
    """Draw one set of settings from ``space``, the score thresholds kept ordered
    (``low_score <= high_score <= new_track_score``; a threshold not in ``space`` keeps
    its ``base`` value and bounds the others)."""
    values = {}
    for name, bounds in space.items():
        low, high = bounds.low, bounds.high
        high_score = values.get("high_score", base.get("high_score"))
        if name == "low_score" and high_score is not None:
            high = high_score
        if name == "new_track_score" and high_score is not None:
            low = high_score
        if bounds.integer:
            values[name] = trial.suggest_int(name, int(low), int(high))
        else:
            values[name] = trial.suggest_float(name, low, max(high, low), log=bounds.log)
    return values


def run_tracker(
    settings: dict,
    sequences: list[CachedSequence],
    calibration,
    folder: Path,
    link: LinkConfig | None = None,
):
    """Track every cached sequence with ``settings`` and score the results.

    Args:
        settings: TrackerConfig fields.
        sequences: the cached sequences.
        calibration: the appearance model's distance calibration (None: motion only).
        folder: where the result files are written.
        link: link settings: score the linked, gap-filled tracks (as ``kpr-track VIDEO``
            writes them) instead of the online ones; None: online.

    Returns:
        :func:`~kpr_track.evaluation.evaluate`'s result (``combined`` and ``sequences``).

    Raises:
        ConfigError: ``link`` without a ``calibration`` (linking reads appearance).
    """
    from .evaluation import evaluate
    from .io.writers import MOTWriter, PoseTrackWriter
    from .linking import ScoredRunWriter
    from .trackers import KPRTracker

    if link is not None and calibration is None:
        raise ConfigError("linking needs an appearance model with a calibration (--reid)")
    predictions = []
    for sequence in sequences:
        tracker = KPRTracker(**settings, frame_rate=sequence.frame_rate, calibration=calibration)
        spec = sequence.spec
        if spec.posetrack_json is not None:
            file = PoseTrackWriter(folder / f"{spec.name}.json", spec.name, images=sequence.images)
        else:
            file = MOTWriter(folder / f"{spec.name}.txt")
        writer = ScoredRunWriter(file, sequence.image_size, calibration, sequence.frame_rate, link)
        for frame_id, found, warp in sequence.frames():
            detections = found.only_embedded(tracker.appearance_targets(found))
            writer.write(frame_id, detections, tracker.update(detections, camera_warp=warp))
        writer.close(sequence.frame_ids.tolist())
        predictions.append(writer.path)
    return evaluate([s.spec.gt for s in sequences], predictions)


@dataclass
class Study:
    """What a tuning run needs besides the sequences.

    Attributes:
        base: the starting settings (a preset's, as a dict of TrackerConfig fields).
        storage: SQLite file of the Optuna study (created, or continued when it exists).
        name: study name inside the file.
        objective: one of :data:`OBJECTIVES`.
        weight: ``w`` of the ``mix`` objective, in [0, 1].
        trials: finished trials the study should reach (earlier runs count).
        appearance: also search ``appearance_weight`` and ``gallery_size``.
        seed: sampler seed (reproducible studies).
        link: score linked tracks with these settings (:func:`run_tracker`); None: online.
        keep: settings not searched: they keep their ``base`` value.
    """

    base: dict
    storage: Path
    name: str = "kpr-track"
    objective: str = "hota"
    weight: float = 0.5
    trials: int = 50
    appearance: bool = False
    seed: int = 0
    link: LinkConfig | None = None
    keep: tuple[str, ...] = ()


def optimise(
    study: Study,
    sequences: list[CachedSequence],
    calibration=None,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
):
    """Run (or continue) the study; returns the Optuna study.

    Raises:
        ConfigError: unknown objective, ``trials`` < 1, a base setting out of range, a
            ``keep`` name that is not searched.
    """
    import optuna

    objective_value({"HOTA": 0.0, "IDF1": 0.0}, study.objective, study.weight)  # checks
    if study.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {study.trials}")
    space = {**SEARCH_SPACE, **(APPEARANCE_SPACE if study.appearance else {})}
    unknown = sorted(set(study.keep) - set(space))
    if unknown:
        raise ConfigError(
            f"--keep: {', '.join(unknown)} not among the searched settings ({', '.join(space)})"
        )
    space = {name: bounds for name, bounds in space.items() if name not in study.keep}
    if not space:
        raise ConfigError("--keep: every searched setting is kept; nothing left to search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.storage.parent.mkdir(parents=True, exist_ok=True)
    found = optuna.create_study(
        study_name=study.name,
        storage=f"sqlite:///{study.storage.resolve()}",
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=study.seed),
    )
    finished = [t for t in found.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not found.trials:  # the starting preset first: the study never ends below it
        found.enqueue_trial({name: study.base[name] for name in space})
    remaining = study.trials - len(finished)
    if remaining <= 0:
        log(f"study {study.name!r} already has {len(finished)} finished trials")
        return found

    def trial_value(trial) -> float:
        settings = {**study.base, **suggest(trial, space, study.base)}
        with tempfile.TemporaryDirectory(prefix="kpr-track-tune-") as tmp:
            result = run_tracker(settings, sequences, calibration, Path(tmp), study.link)
        combined = result["combined"]
        for key in ("HOTA", "IDF1", "MOTA", "DetA", "AssA", "IDSW"):
            trial.set_user_attr(key, float(combined[key]))
        for name, metrics in result["sequences"].items():
            trial.set_user_attr(f"{name}/HOTA", float(metrics["HOTA"]))
        return objective_value(combined, study.objective, study.weight)

    found.optimize(trial_value, n_trials=remaining, show_progress_bar=progress)
    return found


def best_settings(study, base: dict) -> dict:
    """``base`` with the best trial's values."""
    return {**base, **study.best_trial.params}


def write_preset(
    path: Path, settings: dict, header: list[str], link: LinkConfig | None = None
) -> Path:
    """Write ``settings`` (TrackerConfig fields) as a ``tracker: kpr`` preset YAML, each key
    commented with its unit (from TrackerConfig's source) or ``tuned``, and ``link`` (the
    starting preset's link settings) as its ``link`` section.

    Raises:
        OutputError: the file cannot be written.
    """
    from .errors import OutputError
    from .trackers import TrackerConfig

    TrackerConfig(**settings)  # range checks before writing
    lines = [f"# {line}" for line in header] + ["tracker: kpr"]
    for field in dataclasses.fields(TrackerConfig):
        value = _yaml_value(settings[field.name])
        lines.append(f"{field.name}: {value}  # {_UNITS.get(field.name, 'see TrackerConfig')}")
    if link is not None:
        lines.append("link:  # offline linking (LinkConfig), as in the starting preset")
        lines += [
            f"  {field.name}: {_yaml_value(getattr(link, field.name))}"
            for field in dataclasses.fields(LinkConfig)
        ]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as error:
        raise OutputError(f"{path}: cannot write the preset ({error})") from None
    return path


def _yaml_value(value) -> str:
    """A scalar setting as YAML text (floats to 4 significant digits, ``.inf``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return ".inf" if math.isinf(value) else f"{value:.4g}"
    return str(value)


_UNITS = {
    "high_score": "[0,1] detector score: first round from here",
    "low_score": "[0,1] detector score: ignored below",
    "new_track_score": "[0,1] detector score >= high_score: starts tracks",
    "match_cost": "cost in [0,2]: largest first-round cost",
    "low_match_cost": "cost in [0,1]: largest 1 - IoU of a low-score match",
    "lost_low_match_cost": "cost in [0,1]: largest 1 - IoU of a lost track's low-score match",
    "isolated_match_iou": "IoU in [0,1]: leftover pairs overlapping only each other (0 = off)",
    "pose_score_weight": "exponent >= 0 of the pose discount of the scores (0 = off)",
    "pose_score_reference": "mean keypoint confidence in (0,1] that keeps its score",
    "pose_score_below": "detector score >= 0: detections at or above it keep their score",
    "unconfirmed_match_cost": "cost in [0,2]: largest cost of a tentative track's match",
    "min_iou": "IoU in [0,1] (0 = no IoU gate)",
    "gate_threshold": "squared Mahalanobis distance, 4 dof",
    "appearance_weight": "cost units in [0,1] (0 = motion only)",
    "full_weight_parts": "slots >= 1",
    "gallery_size": "embeddings per slot >= 1",
    "memory_max_overlap": "IoU in [0,1]",
    "visibility_threshold": "[0,1] part visibility",
    "max_age_s": "seconds a lost track is kept",
    "min_hits": "detections before a track is output",
    "lost_max_speed": "box heights per second a lost track may move",
    "score_scaled_noise": "NSA Kalman switch",
    "reference_fps": "frames/s of the Kalman noise constants",
    "noise_exponent": ">= 0: process noise x (reference_fps / fps)^exponent",
    "observation_reupdate": "OC-SORT ORU switch",
    "direction_weight": "cost units in [0,1]: OC-SORT OCM weight",
    "direction_delta_s": "seconds between the OCM observations",
    "direction_min_motion": "box heights",
    "camera_motion": "camera-motion compensation switch",
    "camera_min_shift": "px",
}
