"""The training configuration: one YAML file, one dataclass per section, strict keys.

Sections: ``data``, ``model``, ``augment`` (:class:`~kpr_track.train.augment.AugmentOptions`),
``loss``, ``optim`` and ``train``; every key has a default except ``data.root`` and
``train.output_dir``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..config import from_mapping, load_yaml
from ..errors import ConfigError
from .augment import AugmentOptions


@dataclass(frozen=True)
class DataConfig:
    """Where the split lives and how crops are made.

    Attributes:
        root: Occluded-PoseTrack-ReID-layout root (PoseTrack21, or a built split), or a
            list of such roots: their samples are pooled, each root's identities and
            cameras kept distinct (prefixed with the root's folder name).
        cache_dir: crop cache folder; empty: ``<train.output_dir>/crops``.
        input_height: crop height in px.
        input_width: crop width in px.
        min_frame_gap: evaluation: same identity + camera gallery samples closer than
            this many frames to the query are ignored (``.inf``: all same-camera ones).
    """

    root: str | list[str]
    cache_dir: str = ""
    input_height: int = 256
    input_width: int = 128
    min_frame_gap: float = 30.0

    @property
    def roots(self) -> list[str]:
        """The data roots, as a list (one or more)."""
        return [self.root] if isinstance(self.root, str) else list(self.root)


@dataclass(frozen=True)
class ModelConfig:
    """KPR architecture.

    Attributes:
        num_parts: K (5 or 8).
        embed_dim: D of the part embeddings.
        pretrained: start from the trunk's pretrained weights.
        trunk: a name of :data:`kpr_track.reid.trunk.TRUNKS`.
    """

    num_parts: int = 8
    embed_dim: int = 256
    pretrained: bool = True
    trunk: str = "osnet-retail-0287"


@dataclass(frozen=True)
class LossConfig:
    """GiLt + part attention loss weights (KPR defaults), plus the tie to the trunk.

    Attributes:
        margin: triplet margin.
        label_smoothing: identity and part-attention cross-entropy smoothing.
        part_weight: weight of the part attention loss (0.35 in KPR).
        distill_weight: weight of the distillation of the holistic slot towards the
            untouched trunk's embedding of the same (augmented, unprompted) crop,
            ``1 - cos`` (0: off). Keeps the trunk's generality while the rest adapts.
    """

    margin: float = 0.3
    label_smoothing: float = 0.1
    part_weight: float = 0.35
    distill_weight: float = 0.0


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay, stepped every iteration.

    Attributes:
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_iterations: iterations of linear warm-up from ``lr / 10``.
        min_lr_ratio: final learning rate as a share of ``lr``.
        trunk_lr_factor: the pretrained trunk's learning rate as a share of ``lr``
            (0 freezes it in effect; prompt stem, part head and necks train at ``lr``).
        freeze_trunk_norm: keep the trunk's BatchNorm statistics as pretrained (its
            BatchNorm layers stay in eval mode; small P x K batches of a few scenes
            would otherwise re-estimate them).
    """

    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup_iterations: int = 50
    min_lr_ratio: float = 0.01
    trunk_lr_factor: float = 0.1
    freeze_trunk_norm: bool = False


@dataclass(frozen=True)
class TrainSection:
    """The loop.

    Attributes:
        output_dir: checkpoints, logs, curves and the exported head.
        epochs: number of epochs.
        iterations_per_epoch: batches per epoch.
        identities_per_batch: P.
        instances_per_identity: K of P x K (4 in KPR).
        seed: seed of sampling and augmentation.
        threads: torch CPU threads (0: torch's default).
        eval_every: evaluate mAP on query / gallery every n epochs (0: never).
        max_minutes: stop after the epoch that passes this wall time (0: no limit).
        device: torch device.
        checkpoint_every: also checkpoint every this many iterations within an epoch,
            so a killed run loses at most that much work (0: at epoch ends only).
    """

    output_dir: str
    epochs: int = 10
    iterations_per_epoch: int = 50
    identities_per_batch: int = 8
    instances_per_identity: int = 4
    seed: int = 0
    threads: int = 0
    eval_every: int = 1
    max_minutes: float = 0.0
    device: str = "cpu"
    checkpoint_every: int = 25


@dataclass(frozen=True)
class TrainConfig:
    """The whole training configuration (one YAML file)."""

    data: DataConfig
    train: TrainSection
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.data.input_height, self.data.input_width)

    @property
    def cache_dir(self) -> Path:
        return Path(self.data.cache_dir or Path(self.train.output_dir) / "crops")


def _finite(low: float, high: float = math.inf, *, open_low: bool = False):
    """A finite number in [low, high] (in (low, high] with ``open_low``)."""
    return lambda v: math.isfinite(v) and (v > low if open_low else v >= low) and v <= high


# (section, key, test, expected): the valid values of every numeric setting.
_RANGES = (
    ("data", "input_height", _finite(32), "an integer >= 32 px"),
    ("data", "input_width", _finite(32), "an integer >= 32 px"),
    ("data", "min_frame_gap", lambda v: v >= 0, ">= 0 frames (.inf: every same-camera one)"),
    ("model", "num_parts", lambda v: v in (5, 8), "5 or 8"),
    ("model", "embed_dim", _finite(1), "an integer >= 1"),
    *(("augment", key, _finite(0, 1), "in [0, 1]") for key in ("flip", "erasing", "bipo")),
    ("augment", "prompt_dropout", _finite(0, 1), "in [0, 1]"),
    ("augment", "pad", _finite(0), ">= 0 px"),
    ("loss", "margin", _finite(0), ">= 0"),
    ("loss", "label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("loss", "part_weight", _finite(0), ">= 0"),
    ("loss", "distill_weight", _finite(0), ">= 0"),
    ("optim", "lr", _finite(0, open_low=True), "a finite number > 0"),
    ("optim", "weight_decay", _finite(0), ">= 0"),
    ("optim", "warmup_iterations", _finite(0), ">= 0 iterations"),
    ("optim", "min_lr_ratio", _finite(0, 1), "in [0, 1]"),
    ("optim", "trunk_lr_factor", _finite(0, 1), "in [0, 1] (0 freezes the trunk)"),
    ("train", "epochs", _finite(0), ">= 0"),
    ("train", "iterations_per_epoch", _finite(1), ">= 1"),
    ("train", "identities_per_batch", _finite(2), ">= 2 (the triplet loss needs negatives)"),
    ("train", "instances_per_identity", _finite(2), ">= 2 (the triplet loss needs positives)"),
    ("train", "threads", _finite(0), ">= 0 (0: torch's default)"),
    ("train", "eval_every", _finite(0), ">= 0 epochs (0: never)"),
    ("train", "max_minutes", _finite(0), ">= 0 minutes (0: no limit)"),
    ("train", "checkpoint_every", _finite(0), ">= 0 iterations (0: at epoch ends only)"),
)


SECTIONS = {
    "data": DataConfig,
    "train": TrainSection,
    "model": ModelConfig,
    "augment": AugmentOptions,
    "loss": LossConfig,
    "optim": OptimConfig,
}


def config_from_mapping(data: dict, source: str) -> TrainConfig:
    """Build a :class:`TrainConfig` from a YAML mapping.

    Raises:
        ConfigError: unknown section or key, missing ``data.root`` / ``train.output_dir``,
            a value of the wrong type or out of its range (:data:`_RANGES`).
    """
    unknown = sorted(set(data) - set(SECTIONS), key=str)
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {unknown}; expected {sorted(SECTIONS)}")
    values = {}
    for name, cls in SECTIONS.items():
        section = data.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: section {name!r} must be a mapping")
        if name in ("data", "train") and not section:
            raise ConfigError(f"{source}: section {name!r} is required")
        values[name] = from_mapping(cls, section, f"{source} [{name}]")
    for section, key, test, expected in _RANGES:
        value = getattr(values[section], key)
        if not test(value):
            raise ConfigError(
                f"{source} [{section}]: key {key!r} must be {expected}, got {value!r}"
            )
    root = values["data"].root
    if not (
        (isinstance(root, str) and root)
        or (isinstance(root, list) and root and all(isinstance(r, str) and r for r in root))
    ):
        raise ConfigError(
            f"{source} [data]: key 'root' must be a folder or a non-empty list of folders, "
            f"got {root!r}"
        )
    from ..reid.trunk import TRUNKS

    if values["model"].trunk not in TRUNKS:
        raise ConfigError(
            f"{source} [model]: key 'trunk' must be one of {sorted(TRUNKS)}, "
            f"got {values['model'].trunk!r}"
        )
    return TrainConfig(**values)


def load_train_config(path: str | Path, overrides: dict[str, dict] | None = None) -> TrainConfig:
    """Read a training YAML, optionally overriding keys per section.

    Raises:
        ConfigError: see :func:`config_from_mapping`.
    """
    data = load_yaml(path)
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    return config_from_mapping(data, str(path))
