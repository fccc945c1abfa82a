"""KPR training: parsing labels, sampling, losses, augmentation, config, and a short real
training run on MOT17-02 crops with a resume from its checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kpr_track.config import available_presets
from kpr_track.errors import ConfigError, InputError
from kpr_track.reid.model import load_kpr_weights
from kpr_track.train.augment import AugmentOptions, make_batch
from kpr_track.train.config import config_from_mapping, load_train_config
from kpr_track.train.crop_cache import cache_crops
from kpr_track.train.dataset import load_reid_split
from kpr_track.train.losses import batch_hard_triplet, part_averaged_distance
from kpr_track.train.parsing import parsing_labels
from kpr_track.train.sampler import PKSampler
from kpr_track.train.trainer import HEAD_FILE, Trainer, lr_factor

# A standing person in a 256 x 128 crop (COCO-17 order, x, y).
STANDING = [
    (64, 20), (60, 16), (68, 16), (56, 20), (72, 20), (44, 60), (84, 60), (36, 100),
    (92, 100), (32, 135), (96, 135), (50, 130), (78, 130), (48, 185), (80, 185),
    (46, 240), (82, 240),
]  # fmt: skip


def standing_keypoints() -> torch.Tensor:
    keypoints = torch.ones((1, 17, 3))
    keypoints[0, :, :2] = torch.tensor(STANDING, dtype=torch.float32)
    return keypoints


def test_parsing_labels_follow_the_body():
    labels = parsing_labels(standing_keypoints(), (256, 128), (16, 8))[0]
    assert labels.shape == (16, 8)
    assert labels[0, 0] == 0 and labels[-1, -1] == 0  # background in the corners
    assert labels[0, 3] == 1  # head at the top centre
    assert labels[8, 1] == 2 and labels[8, 6] == 3  # left arm on the image left
    assert labels[7, 4] == 4  # torso in the middle
    assert labels[11, 2] == 5 and labels[11, 5] == 6  # legs
    assert labels[15, 2] == 7 and labels[15, 5] == 8  # feet win at the ankles
    hidden = standing_keypoints()
    hidden[0, 13:, 2] = 0.0  # knees and ankles invisible
    lower = parsing_labels(hidden, (256, 128), (16, 8))[0]
    assert set(lower[12:].unique().tolist()) == {0}


def test_pk_sampler():
    labels = np.repeat(np.arange(5), [1, 3, 6, 4, 4])
    sampler = PKSampler(labels, identities=3, instances=4)
    batch = sampler.batch(np.random.default_rng(0))
    assert len(batch) == 12
    groups = labels[batch].reshape(3, 4)
    assert np.all(groups == groups[:, :1]) and len(set(groups[:, 0])) == 3
    with pytest.raises(InputError, match="needs 6 identities, the training set has 5"):
        PKSampler(labels, identities=6)


def test_batch_hard_triplet_on_a_hand_made_distance():
    distance = torch.tensor(
        [[0.0, 0.5, 0.3, 0.9], [0.5, 0.0, 0.8, 0.2], [0.3, 0.8, 0.0, 0.4], [0.9, 0.2, 0.4, 0.0]]
    )
    labels = torch.tensor([0, 0, 1, 1])
    # hardest positive - hardest negative + 0.3 per anchor: 0.5, 0.6, 0.4, 0.5
    loss = batch_hard_triplet(distance, labels, margin=0.3)
    assert loss.item() == pytest.approx((0.5 + 0.6 + 0.4 + 0.5) / 4)
    parts = torch.zeros((2, 2, 3))
    parts[1, 0, 0] = 3.0  # part 0 differs by 3, part 1 by 0 -> mean 1.5
    assert part_averaged_distance(parts)[0, 1].item() == pytest.approx(1.5)


def test_lr_schedule_warms_up_then_decays():
    factors = [lr_factor(i, 100, 10, 0.01) for i in range(101)]
    assert factors[0] == pytest.approx(0.1) and factors[10] == pytest.approx(1.0)
    assert factors[100] == pytest.approx(0.01) and factors[50] < factors[20]


def test_config_is_strict_and_shipped_configs_load():
    presets = available_presets("train")
    assert {"kpr_osnet0287_mot17_02", "kpr_osnet0287_occ_posetrack"} <= set(presets)
    for path in presets.values():
        config = load_train_config(path)
        assert config.model.embed_dim > 0 and config.loss.part_weight == pytest.approx(0.35)
    with pytest.raises(ConfigError, match=r"\[train\]: unknown key\(s\) \['epoch'\]"):
        config_from_mapping({"data": {"root": "x"}, "train": {"output_dir": "o", "epoch": 3}}, "t")
    with pytest.raises(ConfigError, match="section 'data' is required"):
        config_from_mapping({"train": {"output_dir": "o"}}, "t")
    with pytest.raises(ConfigError, match="unknown section"):
        config_from_mapping({"data": {"root": "x"}, "train": {"output_dir": "o"}, "opt": {}}, "t")
    base = {"data": {"root": "x"}, "train": {"output_dir": "o"}}
    for section, key, value, expected in (
        ("train", "epochs", -1, ">= 0"),
        ("train", "identities_per_batch", 1, ">= 2"),
        ("optim", "lr", float("inf"), "finite number > 0"),
        ("augment", "flip", 1.5, r"in \[0, 1\]"),
        ("augment", "flip", float("nan"), "NaN"),
        ("model", "num_parts", 6, "5 or 8"),
    ):
        mapping = {**base, section: {**base.get(section, {}), key: value}}
        with pytest.raises(
            ConfigError, match=rf"t( \[{section}\])?: key '{key}' must be.*{expected}"
        ):
            config_from_mapping(mapping, "t")


@pytest.fixture(scope="module")
def mot17_train_records(mot17_reid_split, tmp_path_factory):
    """Real MOT17-02 training crops at 128 x 64: two identities with 4+ samples each."""
    root, _ = mot17_reid_split
    records, _ = cache_crops(
        load_reid_split(root, "train"), tmp_path_factory.mktemp("crops"), (128, 64)
    )
    counts = {i: sum(r.identity == i for r in records) for i in {r.identity for r in records}}
    chosen = sorted(i for i, c in counts.items() if c >= 4)[:2]
    assert len(chosen) == 2, counts
    return [r for r in records if r.identity in chosen]


def test_bipo_and_prompt_dropout(mot17_train_records):
    records = mot17_train_records[:2] + mot17_train_records[-2:]
    labels = [0, 0, 1, 1]
    options = AugmentOptions(flip=0.0, pad=0, erasing=0.0, bipo=1.0, prompt_dropout=0.0)
    plain = AugmentOptions(flip=0.0, pad=0, erasing=0.0, bipo=0.0, prompt_dropout=0.0)
    rng = np.random.default_rng(0)
    kw = {"num_parts": 8, "feature_size": (8, 4), "prompt_size": (64, 32)}
    occluded = make_batch(records, labels, options, rng, **kw)
    clean = make_batch(records, labels, plain, rng, **kw)
    assert occluded.images.shape == (4, 3, 128, 64) and occluded.parsing.shape == (4, 8, 4)
    # The pasted person adds negative prompt mass and covers the lower part.
    assert (occluded.prompts[:, 1].sum((1, 2)) > clean.prompts[:, 1].sum((1, 2))).all()
    assert not torch.allclose(occluded.images[:, :, 100:], clean.images[:, :, 100:])
    assert (occluded.parsing[:, 6:] != 0).sum() <= (clean.parsing[:, 6:] != 0).sum()
    dropped = make_batch(records, labels, AugmentOptions(prompt_dropout=1.0), rng, **kw)
    assert torch.all(dropped.prompts[:, 0] == 1.0) and torch.all(dropped.prompts[:, 1:] == 0.0)


def test_short_training_run_decreases_the_loss_and_resumes(mot17_train_records, tmp_path):
    data = {"root": "unused", "input_height": 128, "input_width": 64}
    train = {
        "output_dir": str(tmp_path / "run"),
        "epochs": 3,
        "iterations_per_epoch": 2,
        "identities_per_batch": 2,
        "instances_per_identity": 4,
        "eval_every": 0,
        "threads": 1,
    }
    config = config_from_mapping(
        {
            "data": data,
            "train": train,
            "model": {"embed_dim": 256},
            "augment": {"erasing": 0.0, "bipo": 0.0, "prompt_dropout": 0.0, "flip": 0.0},
            "optim": {"lr": 1e-3, "warmup_iterations": 0},
        },
        "test",
    )
    trainer = Trainer(config, train_records=mot17_train_records)
    history = trainer.fit()
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[-1]["loss"] < history[0]["loss"]
    output = tmp_path / "run"
    for name in ("metrics.json", "metrics.csv", "curves.png", "config.yaml", HEAD_FILE):
        assert (output / name).is_file(), name
    head = load_kpr_weights(output / HEAD_FILE)
    assert head.embed_dim == 256 and head.attention == "learned"
    assert head.trunk_name == "osnet-retail-0287"
    # The calibration fitted on the training crops travels in the file.
    assert head.calibration is not None and 0.0 < head.calibration.midpoint < 1.0
    assert head.calibration.same_median < head.calibration.different_median

    resumed = Trainer(config, train_records=mot17_train_records)
    assert resumed.resume() and resumed.epoch == 3 and len(resumed.history) == 3
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    assert resumed.scheduler.last_epoch == trainer.scheduler.last_epoch == 6
    assert len(resumed.fit(epochs=4)) == 4


def test_bad_head_file_is_a_weights_error(tmp_path):
    from kpr_track.errors import WeightsError

    bad = tmp_path / "head.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="head.safetensors: not a KPR weights file"):
        load_kpr_weights(bad)


def test_shipped_head_loads_through_the_resolver_and_build_reid():
    from kpr_track.reid import build_reid
    from kpr_track.weights import REGISTRY, file_sha256, resolve_weights

    path = resolve_weights("kpr-osnet-0287-mot17-02", offline=True)
    assert file_sha256(path) == REGISTRY["kpr-osnet-0287-mot17-02"].sha256
    assert path.stat().st_size < 10 * 2**20
    appearance = build_reid("kpr")
    assert appearance.model.attention == "learned" and appearance.model.embed_dim == 256
    assert appearance.model.trunk_name == "osnet-retail-0287"
    assert appearance.model.prompt_stem.weight.abs().sum() > 0  # trained, not zero-init
    assert appearance.calibration is appearance.model.calibration is not None
