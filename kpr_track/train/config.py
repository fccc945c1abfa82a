"""The training configuration: one YAML file, one dataclass per section, strict keys.

Sections: ``data``, ``model``, ``augment`` (:class:`~kpr_track.train.augment.AugmentOptions`),
``loss``, ``optim`` and ``train``; every key has a default except ``data.root`` and
``train.output_dir``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import from_mapping, load_yaml
from ..errors import ConfigError
from .augment import AugmentOptions


@dataclass(frozen=True)
class DataConfig:
    """Where the split lives and how crops are made.

    Attributes:
        root: Occluded-PoseTrack-ReID-layout root (PoseTrack21, or a built split).
        cache_dir: crop cache folder; empty: ``<train.output_dir>/crops``.
        input_height: crop height in px.
        input_width: crop width in px.
        min_frame_gap: evaluation: same identity + camera gallery samples closer than
            this many frames to the query are ignored (``.inf``: all same-camera ones).
    """

    root: str
    cache_dir: str = ""
    input_height: int = 256
    input_width: int = 128
    min_frame_gap: float = 30.0


@dataclass(frozen=True)
class ModelConfig:
    """KPR architecture: K parts, embedding dimension D, ImageNet trunk or not."""

    num_parts: int = 8
    embed_dim: int = 256
    pretrained: bool = True


@dataclass(frozen=True)
class LossConfig:
    """GiLt + part attention loss weights (KPR defaults)."""

    margin: float = 0.3
    label_smoothing: float = 0.1
    part_weight: float = 0.35


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay, stepped every iteration.

    Attributes:
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_iterations: iterations of linear warm-up from ``lr / 10``.
        min_lr_ratio: final learning rate as a share of ``lr``.
    """

    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup_iterations: int = 50
    min_lr_ratio: float = 0.01


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
            a value of the wrong type.
    """
    unknown = sorted(set(data) - set(SECTIONS))
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
