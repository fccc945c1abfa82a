"""The KPR training loop: P x K batches, GiLt + part attention loss, AdamW with warm-up and
cosine decay, per-epoch evaluation, logs, curves and resumable checkpoints.

``<train.output_dir>`` receives::

    config.yaml                 the configuration used
    checkpoint/                 model, optimizer, RNG states and position in the epoch,
                                every ``train.checkpoint_every`` iterations and at each
                                epoch end (:mod:`kpr_track.train.checkpoint`)
    metrics.json, metrics.csv      one row per epoch (losses, lr, mAP, rank-1, seconds)
    curves.png                     losses and mAP per epoch
    kpr_head.safetensors           the trained model in float16 with its distance calibration
                                   (fitted on the training crops), for inference
    snapshots/epoch_NNN.safetensors  the model at each evaluation (float16, no calibration),
                                   to choose an epoch on the validation identities

A run killed at any point (even mid-epoch, even by SIGKILL) and started again resumes
from its last checkpoint and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from tqdm import tqdm

from ..errors import InputError, one_line
from ..reid.model import KPRModel, save_kpr_weights
from ..reid.trunk import build_trunk
from .augment import make_batch
from .calibrate import calibrate_variant
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .crop_cache import CropRecord, cached_records, min_samples_per_identity
from .evaluate import Variant, evaluate_variant
from .losses import IdentityHeads, kpr_losses
from .sampler import PKSampler

_LOG = logging.getLogger(__name__)
HEAD_FILE = "kpr_head.safetensors"
SNAPSHOTS = "snapshots"  # <output_dir>/snapshots/epoch_NNN.safetensors at each evaluation


def prepare_records(config: TrainConfig, subset: str) -> list[CropRecord]:
    """Load a subset of the split(s) and the cached crops
    (:func:`~kpr_track.train.crop_cache.cached_records`); training identities with fewer
    than 2 crops are dropped.

    Raises:
        InputError: see :func:`~kpr_track.train.dataset.load_reid_splits`; also when
            nothing is left.
    """
    records = cached_records(config.data.roots, subset, config.cache_dir, config.input_size)
    if subset == "train":
        records, _ = min_samples_per_identity(records, 2)
    if not records:
        raise InputError(f"{config.data.roots}: no usable {subset} sample left")
    return records


def lr_factor(iteration: int, total: int, warmup: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up from 0.1, then cosine to ``min_ratio``."""
    if iteration < warmup:
        return 0.1 + 0.9 * iteration / max(warmup, 1)
    progress = (iteration - warmup) / max(total - warmup, 1)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


class Trainer:
    """Trains the learned-attention KPR model on an Occluded-PoseTrack-ReID-layout split.

    Args:
        config: the training configuration.
        train_records: training crops (default: loaded from ``config.data.root``).
        eval_records: query + gallery crops for per-epoch evaluation (default: loaded
            when ``train.eval_every > 0``).
    """

    def __init__(
        self,
        config: TrainConfig,
        train_records: list[CropRecord] | None = None,
        eval_records: list[CropRecord] | None = None,
    ) -> None:
        self.config = config
        self.output = Path(config.train.output_dir)
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        torch.manual_seed(config.train.seed)
        self.records = (
            train_records if train_records is not None else prepare_records(config, "train")
        )
        if eval_records is None and config.train.eval_every:
            eval_records = prepare_records(config, "val")
        self.query = [r for r in eval_records or [] if r.split == "query"]
        self.gallery = [r for r in eval_records or [] if r.split == "gallery"]
        identities = sorted({r.identity for r in self.records})
        self.class_of = {identity: i for i, identity in enumerate(identities)}
        labels = np.array([self.class_of[r.identity] for r in self.records])
        train = config.train
        self.sampler = PKSampler(labels, train.identities_per_batch, train.instances_per_identity)
        self.rng = np.random.default_rng(train.seed)
        m = config.model
        self.device = torch.device(train.device)
        self.model = KPRModel(m.num_parts, "learned", m.embed_dim, m.pretrained, trunk=m.trunk).to(
            self.device
        )
        self.teacher = None
        if config.loss.distill_weight > 0:
            # The untouched trunk, frozen: the holistic slot is pulled towards its embedding.
            self.teacher = build_trunk(m.trunk, m.pretrained).to(self.device).eval()
            self.teacher.requires_grad_(False)
        self.heads = IdentityHeads(
            len(identities), self.model.trunk.head_dim, m.embed_dim, m.num_parts
        ).to(self.device)
        o = config.optim
        trunk_params = list(self.model.trunk.parameters())
        trunk_ids = {id(p) for p in trunk_params}
        new_params = [p for p in self.model.parameters() if id(p) not in trunk_ids]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": [*new_params, *self.heads.parameters()], "lr": o.lr},
                {"params": trunk_params, "lr": o.lr * o.trunk_lr_factor},
            ],
            lr=o.lr,
            weight_decay=o.weight_decay,
        )
        total = train.epochs * train.iterations_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda i: lr_factor(i, total, o.warmup_iterations, o.min_lr_ratio)
        )
        with torch.no_grad():
            probe = torch.zeros((1, 3, *config.input_size), device=self.device)
            self.feature_size = tuple(self.model.trunk.eval().features(probe).shape[-2:])
        self.epoch = 0  # epochs completed
        self.step = 0  # iterations completed in the current epoch
        self.sums = _zero_sums()  # loss sums of those iterations
        self.history: list[dict] = []

    def resume(self) -> bool:
        """Load the last checkpoint of ``output_dir`` if there is one; True if loaded.

        Raises:
            InputError: a checkpoint file cannot be read, or holds another architecture
                (e.g. the prompt stem of earlier versions: start a new ``output_dir``).
        """
        folder = latest_checkpoint(self.output)
        if folder is None:
            return False
        state, optim, meta = load_checkpoint(folder, self.device)
        try:
            for name, module in (("model", self.model), ("heads", self.heads)):
                prefix = f"{name}."
                tensors = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
                module.load_state_dict(tensors)
        except RuntimeError as error:
            raise InputError(
                f"{folder}: a checkpoint of another model than the config's ({one_line(error)}); "
                "train into a new output_dir"
            ) from None
        self.optimizer.load_state_dict(optim["optimizer"])
        self.scheduler.load_state_dict(optim["scheduler"])
        torch.set_rng_state(optim["torch_rng"].cpu())
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.sums = meta["sums"]
        self.rng.bit_generator.state = meta["rng"]
        self.history = meta["history"]
        _LOG.info("resumed from %s at epoch %d, iteration %d", folder, self.epoch, self.step)
        return True

    def fit(self, epochs: int | None = None) -> list[dict]:
        """Train until ``epochs`` (default ``train.epochs``) or ``train.max_minutes``.

        Returns:
            The per-epoch metrics so far (also in ``metrics.json`` / ``.csv``).
        """
        cfg = self.config
        self.output.mkdir(parents=True, exist_ok=True)
        config_dict = dataclasses.asdict(cfg)
        (self.output / "config.yaml").write_text(yaml.safe_dump(config_dict, sort_keys=False))
        started = time.monotonic()
        last = cfg.train.epochs if epochs is None else epochs
        while self.epoch < last:
            row = self._train_epoch()
            self.epoch += 1
            row["epoch"] = self.epoch
            every = cfg.train.eval_every
            if every and self.query and (self.epoch % every == 0 or self.epoch == last):
                metrics, holistic = self.evaluate()
                row.update(mAP=metrics["mAP"], rank1=metrics["rank1"])
                row.update(holistic_mAP=holistic["mAP"], holistic_rank1=holistic["rank1"])
                # A snapshot per evaluation: the model can be chosen on validation later.
                snapshots = self.output / SNAPSHOTS
                snapshots.mkdir(exist_ok=True)
                save_kpr_weights(self.model, snapshots / f"epoch_{self.epoch:03d}.safetensors")
            row["seconds"] = round(time.monotonic() - started, 1)
            self.history.append(row)
            _LOG.info("epoch %d: %s", self.epoch, row)
            self._save()
            write_metrics(self.history, self.output)
            limit = cfg.train.max_minutes
            if limit and time.monotonic() - started > 60 * limit:
                _LOG.info("stopping after %.1f min (train.max_minutes)", limit)
                break
        self.model.calibration, self.model.min_part_area = calibrate_variant(
            Variant("trained", self.model.eval(), True),
            self.records,
            f"{'+'.join(Path(r).name for r in cfg.data.roots)} train split",
        )
        save_kpr_weights(self.model.cpu(), self.output / HEAD_FILE)
        self.model.to(self.device)
        return self.history

    def evaluate(self, prompts: bool = True) -> tuple[dict[str, float], dict[str, float]]:
        """mAP / CMC of the current model on the query / gallery records: with every
        shared slot (parts averaged) and with the holistic slot alone (one embedding
        pass for both)."""
        variant = Variant("trained", self.model, prompts)
        gap = self.config.data.min_frame_gap
        both = evaluate_variant(variant, self.query, self.gallery, gap, holistic_too=True)
        self.model.train()
        return both

    def _train_epoch(self) -> dict:
        cfg = self.config
        self.model.train()
        self.heads.train()
        if cfg.optim.freeze_trunk_norm:
            for module in self.model.trunk.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        steps = cfg.train.iterations_per_epoch
        bar = tqdm(
            range(self.step, steps), desc=f"epoch {self.epoch + 1}/{cfg.train.epochs}", leave=False
        )
        for _ in bar:
            indices = self.sampler.batch(self.rng)
            batch = make_batch(
                [self.records[i] for i in indices],
                [self.class_of[self.records[i].identity] for i in indices],
                cfg.augment,
                self.rng,
                num_parts=cfg.model.num_parts,
                feature_size=self.feature_size,
                prompt_size=self.model.prompt_size(cfg.input_size),
            )
            images, prompts, parsing, labels = (t.to(self.device) for t in batch)
            outputs = self.model.train_outputs(images, prompts)
            losses = kpr_losses(
                outputs,
                self.heads(outputs),
                labels,
                parsing,
                margin=cfg.loss.margin,
                label_smoothing=cfg.loss.label_smoothing,
                part_weight=cfg.loss.part_weight,
            )
            total = losses.total
            if self.teacher is not None:
                distill = self._distillation(images, outputs.global_features)
                total = total + cfg.loss.distill_weight * distill
                self.sums["distill"] = self.sums.get("distill", 0.0) + distill.item()
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            self.optimizer.step()
            self.scheduler.step()
            values = dict(zip(_zero_sums(), (v.item() for v in losses), strict=True))
            for key, value in values.items():
                self.sums[key] += value
            bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()})
            self.step += 1
            every = cfg.train.checkpoint_every
            if every and self.step % every == 0 and self.step < steps:
                self._save()
        row = {key: value / steps for key, value in self.sums.items()}
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        self.step, self.sums = 0, _zero_sums()
        return row

    def _distillation(self, images: torch.Tensor, holistic: torch.Tensor) -> torch.Tensor:
        """Mean ``1 - cos`` between the holistic slot `(B, G)` (prompted, trained) and the
        frozen untouched trunk's embedding of the same crops `(B, 3, H, W)` (no prompt)."""
        with torch.no_grad():
            target = self.teacher.head(self.teacher.features(images))
        return (1.0 - F.cosine_similarity(holistic, target, dim=-1)).mean()

    def _save(self) -> None:
        state = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        state.update({f"heads.{k}": v for k, v in self.heads.state_dict().items()})
        optim = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        meta = {
            "epoch": self.epoch,
            "step": self.step,
            "sums": self.sums,
            "rng": self.rng.bit_generator.state,
            "history": self.history,
        }
        save_checkpoint(self.output, state, optim, meta)


def _zero_sums() -> dict[str, float]:
    return {"loss": 0.0, "identity": 0.0, "triplet": 0.0, "part": 0.0}


def write_metrics(history: list[dict], output: Path) -> None:
    """Write ``metrics.json``, ``metrics.csv`` and ``curves.png`` (losses and mAP per epoch)."""
    (output / "metrics.json").write_text(json.dumps(history, indent=2) + "\n")
    columns = sorted({key for row in history for key in row}, key=_column_order)
    with (output / "metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "identity", "triplet", "part"):
        left.plot(epochs, [row[key] for row in history], marker="o", label=key)
    left.set(xlabel="epoch", ylabel="loss", title="training losses")
    left.legend()
    scored = [row for row in history if "mAP" in row]
    for key in ("mAP", "rank1"):
        right.plot(
            [r["epoch"] for r in scored], [100 * r[key] for r in scored], marker="o", label=key
        )
    right.set(xlabel="epoch", ylabel="%", title="query / gallery")
    right.legend()
    figure.tight_layout()
    figure.savefig(output / "curves.png", dpi=100)
    plt.close(figure)


def _column_order(key: str) -> int:
    order = ("epoch", "loss", "identity", "triplet", "part", "lr", "mAP", "rank1", "seconds")
    return order.index(key) if key in order else len(order)
