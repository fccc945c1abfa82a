"""``kpr-track tune`` on small real sequences: cached detections, a resumable study, and
a best preset the tracker loads."""

from __future__ import annotations

import pytest
from conftest import shared_path

from kpr_track.cli import main
from kpr_track.errors import ConfigError
from kpr_track.trackers import KPRTracker, load_tracker
from kpr_track.tune import objective_value

pytest.importorskip("optuna")

SEQUENCES = ("MOT17-05-FRCNN", "MOT17-09-FRCNN")


def _tune(tmp_path, trials: int, *extra: str) -> int:
    paths = [str(shared_path("data", "MOT17-mini", "train", name)) for name in SEQUENCES]
    return main(
        [
            "tune", *paths, "--det", "mot", "--tracker", "motion", "--trials", str(trials),
            "--study", str(tmp_path / "study.sqlite"), "--out", str(tmp_path / "best.yaml"),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress", *extra,
        ]
    )  # fmt: skip


def test_tune_writes_a_loadable_preset_and_resumes(tmp_path, capsys):
    import optuna

    assert _tune(tmp_path, 3) == 0
    caches = sorted((tmp_path / "cache").glob("*.npz"))
    assert len(caches) == len(SEQUENCES)  # one detection cache per sequence
    study = optuna.load_study(study_name="kpr-track", storage=f"sqlite:///{tmp_path}/study.sqlite")
    assert len(study.trials) == 3
    first = study.trials[0]  # the starting preset's own settings come first
    assert first.params["max_age_s"] == load_tracker("motion").config.max_age_s
    tracker = load_tracker(str(tmp_path / "best.yaml"))
    assert isinstance(tracker, KPRTracker)
    best = study.best_trial
    assert tracker.config.high_score == pytest.approx(best.params["high_score"], abs=1e-4)
    assert best.value >= first.value and 0 < best.value <= 1
    assert "HOTA" in capsys.readouterr().out
    mtimes = [path.stat().st_mtime for path in caches]
    assert _tune(tmp_path, 5) == 0  # continues the study, reuses the caches
    study = optuna.load_study(study_name="kpr-track", storage=f"sqlite:///{tmp_path}/study.sqlite")
    assert len(study.trials) == 5
    assert [path.stat().st_mtime for path in caches] == mtimes


def test_sequence_without_ground_truth_is_refused(tmp_path, capsys):
    folder = tmp_path / "seq"
    (folder / "img1").mkdir(parents=True)
    (folder / "seqinfo.ini").write_text("[Sequence]\nname=seq\nframeRate=30\nseqLength=1\n")
    code = main(["tune", str(folder), "--det", "mot", "--study", str(tmp_path / "s.sqlite")])
    assert code == 2 and "ground truth" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("objective", "weight", "value"), [("hota", 0.5, 0.4), ("idf1", 0.5, 0.6), ("mix", 0.25, 0.55)]
)
def test_objectives(objective, weight, value):
    assert objective_value({"HOTA": 0.4, "IDF1": 0.6}, objective, weight) == pytest.approx(value)
    with pytest.raises(ConfigError, match="objective"):
        objective_value({"HOTA": 0.4, "IDF1": 0.6}, "mota")


def test_frame_steps_tune_on_thinned_sequences_too(tmp_path, capsys):
    """``--frame-steps 1 3``: each MOT17-mini sequence also at every 3rd frame, its ground
    truth thinned and renumbered the same way, scored in the same study."""
    import configparser

    assert _tune(tmp_path, 2, "--frame-steps", "1", "3") == 0
    source = shared_path("data", "MOT17-mini", "train", SEQUENCES[0])
    folder = tmp_path / "cache" / "thinned" / f"{SEQUENCES[0]}-every3"
    original = [line.split(",") for line in (source / "gt" / "gt.txt").read_text().split()]
    kept = [line.split(",") for line in (folder / "gt" / "gt.txt").read_text().split()]
    expected = [[str((int(r[0]) - 1) // 3 + 1), *r[1:]] for r in original if int(r[0]) % 3 == 1]
    assert kept == expected and len(kept) > 0
    info, before = configparser.ConfigParser(), configparser.ConfigParser()
    info.read(folder / "seqinfo.ini")
    before.read(source / "seqinfo.ini")
    rate = float(before["Sequence"]["frameRate"])
    assert float(info["Sequence"]["frameRate"]) == pytest.approx(rate / 3, abs=1e-4)
    assert f"{SEQUENCES[0]}-every3" in (tmp_path / "best.yaml").read_text()


def test_thinned_warps_compose_the_skipped_frames(tmp_path):
    """Camera warps of the kept frames are the composition of the skipped ones: a pan of
    2 px a frame becomes 6 px at every 3rd frame."""
    import numpy as np

    from kpr_track.datasets.sequences import SequenceSpec
    from kpr_track.tune_cache import CachedSequence, thinned

    source = shared_path("data", "MOT17-mini", "train", SEQUENCES[0])
    pan = np.tile(np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]]), (7, 1, 1))
    boxes = np.arange(7 * 4, dtype=np.float32).reshape(7, 4)
    sequence = CachedSequence(
        spec=SequenceSpec("s", source, "s.txt", gt=source, seq_dir=source),
        frame_rate=30.0, frame_ids=np.arange(1, 8), counts=np.ones(7, np.int64), boxes=boxes,
        scores=np.ones(7, np.float32), keypoints=np.zeros((7, 17, 3), np.float32), warps=pan,
        image_size=(640, 480),
    )  # fmt: skip
    every = thinned(sequence, 3, tmp_path)
    assert every.frame_ids.tolist() == [1, 2, 3] and every.frame_rate == 10.0
    np.testing.assert_array_equal(every.boxes, boxes[[0, 3, 6]])
    np.testing.assert_allclose(every.warps[0], np.eye(3)[:2])
    np.testing.assert_allclose(every.warps[1:, 0, 2], [6.0, 6.0])
    assert thinned(sequence, 1, tmp_path) is sequence


def test_a_linking_preset_is_tuned_on_its_linked_tracks(tmp_path):
    """The ``kpr`` preset links (``link.enabled``): each trial scores the linked tracks,
    what ``kpr-track VIDEO`` writes, and the tuned preset keeps the link section; with
    ``--no-link`` the online tracks are scored."""
    import dataclasses
    import tempfile
    from pathlib import Path

    import optuna

    from kpr_track.cli.tune import _mot_sequence
    from kpr_track.reid import DEFAULT_REID
    from kpr_track.reid.registry import reid_calibration
    from kpr_track.trackers.link import load_link_config
    from kpr_track.tune import run_tracker
    from kpr_track.tune_cache import _load, thinned

    source = shared_path("data", "PETS09-S2L1")

    def tune(name: str, *extra: str) -> float:
        code = main(
            [
                "tune", str(source), "--det", "mot", "--tracker", "kpr", "--trials", "1",
                "--max-frames", "80", "--study", str(tmp_path / "study.sqlite"),
                "--study-name", name, "--out", str(tmp_path / f"{name}.yaml"),
                "--cache-dir", str(tmp_path / "cache"), "--no-progress", *extra,
            ]
        )  # fmt: skip
        assert code == 0
        storage = f"sqlite:///{tmp_path}/study.sqlite"
        return optuna.load_study(study_name=name, storage=storage).trials[0].value

    linked_value, online_value = tune("linked"), tune("online", "--no-link")
    (cache,) = (tmp_path / "cache").glob("*.npz")
    # scored on its 80 frames, as the command does (the ground truth cut there)
    sequence = thinned(_load(cache, _mot_sequence(source), None, (768, 576)), 1, tmp_path)
    config = load_tracker("kpr").config
    settings = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    calibration = reid_calibration(DEFAULT_REID)
    scores = {}
    for label, link in (("online", None), ("linked", load_link_config("kpr"))):
        with tempfile.TemporaryDirectory() as folder:
            result = run_tracker(settings, [sequence], calibration, Path(folder), link)
        scores[label] = result["combined"]["HOTA"]
    assert scores["linked"] != pytest.approx(scores["online"])  # linking changes the tracks
    assert linked_value == pytest.approx(scores["linked"])
    assert online_value == pytest.approx(scores["online"])
    assert load_link_config(str(tmp_path / "linked.yaml")) == load_link_config("kpr")
    with pytest.raises(ConfigError, match="linking needs"):
        run_tracker(settings, [sequence], None, tmp_path, load_link_config("kpr"))


def test_link_without_appearance_is_refused(tmp_path, capsys):
    assert _tune(tmp_path, 1, "--link") == 2  # the motion preset has no appearance
    assert "--link: the 'motion' preset tracks without appearance" in capsys.readouterr().err


def test_a_sequence_cached_short_is_scored_on_its_frames_only(tmp_path):
    """``--max-frames``: the ground truth is cut at the last cached frame (frames never
    tracked are not misses), at every step."""
    import numpy as np

    from kpr_track.cli.tune import _mot_sequence
    from kpr_track.tune_cache import CachedSequence, thinned

    source = shared_path("data", "PETS09-S2L1")
    frames = 40
    sequence = CachedSequence(
        spec=_mot_sequence(source), frame_rate=7.0, frame_ids=np.arange(1, frames + 1),
        counts=np.zeros(frames, np.int64), boxes=np.zeros((0, 4), np.float32),
        scores=np.zeros(0, np.float32), keypoints=np.zeros((0, 17, 3), np.float32),
        warps=np.tile(np.eye(3)[:2], (frames, 1, 1)), image_size=(768, 576),
    )  # fmt: skip
    original = [line.split(",") for line in (source / "gt" / "gt.txt").read_text().split()]
    for step in (1, 4):
        cut = thinned(sequence, step, tmp_path)
        assert cut.spec.name == "PETS09-S2L1" + (f"-every{step}" if step > 1 else "") + "-first40"
        lines = [line.split(",") for line in (cut.spec.gt / "gt" / "gt.txt").read_text().split()]
        expected = [
            [str((int(r[0]) - 1) // step + 1), *r[1:]]
            for r in original
            if int(r[0]) <= frames and (int(r[0]) - 1) % step == 0
        ]
        assert lines == expected and len(lines) > 0
        assert f"seqLength={(frames - 1) // step + 1}" in (cut.spec.gt / "seqinfo.ini").read_text()


def test_kept_settings_are_not_searched(tmp_path, capsys):
    """``--keep``: the kept settings stay at the preset's values in every trial and in the
    written preset; the ordered thresholds still respect a kept ``high_score``."""
    import optuna

    keep = ("high_score", "max_age_s")
    assert _tune(tmp_path, 4, "--keep", *keep) == 0
    study = optuna.load_study(study_name="kpr-track", storage=f"sqlite:///{tmp_path}/study.sqlite")
    preset = load_tracker("motion").config
    for trial in study.trials:
        assert not set(keep) & set(trial.params)
        assert trial.params["low_score"] <= preset.high_score <= trial.params["new_track_score"]
    tuned = load_tracker(str(tmp_path / "best.yaml")).config
    assert (tuned.high_score, tuned.max_age_s) == (preset.high_score, preset.max_age_s)
    assert (
        "Not searched (the starting preset's values): high_score, max_age_s"
        in (tmp_path / "best.yaml").read_text()
    )
    assert _tune(tmp_path, 5, "--keep", "max_age") == 2
    assert "--keep: max_age not among the searched settings" in capsys.readouterr().err
