"""MOTChallenge readers on real sequences, and every kind of bad input they must reject."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from kpr_track.errors import InputError
from kpr_track.evaluation.evaluate import load_ground_truth, load_predictions
from kpr_track.evaluation.mot import read_mot_ground_truth, read_mot_predictions


def test_pets09_is_mot15_with_consider_flag():
    gt = read_mot_ground_truth(shared_path("data", "PETS09-S2L1"))
    assert (gt.name, gt.num_frames, gt.protocol) == ("PETS09-S2L1", 795, "MOT15")
    assert (gt.frame_rate, gt.image_size) == (7.0, (768, 576))
    assert len(gt.tracks) == 4650 and gt.tracks.classes is None
    assert len(np.unique(gt.tracks.ids)) == 19
    assert int((gt.tracks.scores == 0).sum()) == 174  # rows the consider flag excludes
    first = gt.tracks.frames == 1
    np.testing.assert_array_equal(gt.tracks.ids[first], [9, 15, 19])
    np.testing.assert_allclose(gt.tracks.boxes[first][0], [499, 158, 31.03, 75.17])
    assert gt.labeled.all() and gt.ignore_regions == {} and gt.image_frames is None


def test_mot17_video_sequence_has_classes():
    gt = load_ground_truth(shared_path("data", "MOT17-02-raw540"))
    assert (gt.num_frames, gt.protocol, gt.image_size) == (600, "MOT17", (960, 540))
    pedestrians = (gt.tracks.classes == 1) & (gt.tracks.scores == 1)
    assert len(np.unique(gt.tracks.ids[pedestrians])) == 62
    assert set(np.unique(gt.tracks.classes)) == {1, 2, 4, 7, 8, 9}


def test_mot17_mini_frames_subset_of_sequence():
    gt = read_mot_ground_truth(shared_path("data", "MOT17-mini", "train", "MOT17-02-FRCNN"))
    assert gt.num_frames == 600 and gt.protocol == "MOT17"
    assert 1 <= gt.tracks.frames.min() <= gt.tracks.frames.max() <= 8


def test_predictions_accept_whitespace_and_seven_columns(tmp_path):
    path = tmp_path / "pred.txt"
    path.write_text("1 4 10 20 30 40 0.9\n\n2 4 11 21 30 40 0.8\n")
    tracks = read_mot_predictions(path, num_frames=2)
    np.testing.assert_array_equal(tracks.frames, [1, 2])
    np.testing.assert_allclose(tracks.scores, [0.9, 0.8])
    assert tracks.keypoints is None


@pytest.fixture
def seq_dir(tmp_path) -> Path:
    """A 3-frame MOTChallenge sequence with two people."""
    seq = tmp_path / "SEQ-01"
    (seq / "gt").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ-01\nseqLength=3\nimWidth=64\n")
    (seq / "gt" / "gt.txt").write_text(
        "1,1,0,0,10,20,1,-1,-1,-1\n1,2,30,0,10,20,1,-1,-1,-1\n2,1,1,0,10,20,1,-1,-1,-1\n"
    )
    return seq


BAD_GT_LINES = [
    ("1,1,0,0,10,20\n", "gt.txt:1", "expected 7 to 10 columns"),
    ("1,1,0,0,10,20,1,-1,-1,-1\n1,2,0,0,10,20,1\n", "gt.txt:2", "expected 10 columns"),
    ("1,1,0,0,10,20,1,-1,-1,-1\n2,1,zero,0,10,20,1,-1,-1,-1\n", "gt.txt:2", "column 'left'"),
    ("1,1,0,0,nan,20,1,-1,-1,-1\n", "gt.txt:1", "column 'width'"),
    ("1,1,0,0,10,20,1,-1,-1,-1\n0,1,0,0,10,20,1,-1,-1,-1\n", "gt.txt:2", "frame 0 is outside"),
    ("4,1,0,0,10,20,1,-1,-1,-1\n", "gt.txt:1", "frame 4 is outside the sequence (expected 1..3)"),
    ("1.5,1,0,0,10,20,1,-1,-1,-1\n", "gt.txt:1", "column 'frame': expected an integer"),
    ("1,-3,0,0,10,20,1,-1,-1,-1\n", "gt.txt:1", "non-negative"),
    ("1,1,0,0,10,20,1,-1,-1,-1\n1,1,5,0,10,20,1,-1,-1,-1\n", "gt.txt:2", "also on line 1"),
]


@pytest.mark.parametrize(("content", "where", "what"), BAD_GT_LINES)
def test_bad_gt_lines_name_file_and_line(seq_dir, content, where, what):
    (seq_dir / "gt" / "gt.txt").write_text(content)
    with pytest.raises(InputError) as error:
        read_mot_ground_truth(seq_dir)
    assert where in str(error.value) and what in str(error.value)


@pytest.mark.parametrize(
    ("content", "where", "what"),
    [
        ("1,1,0,0,10,20\n", "pred.txt:1", "expected 7 to 10 columns"),
        ("1,1,0,0,10,20,x\n", "pred.txt:1", "column 'conf'"),
        ("1,1,0,0,10,20,1\n9,1,0,0,10,20,1\n", "pred.txt:2", "frame 9 is outside"),
    ],
)
def test_bad_prediction_lines_name_file_and_line(tmp_path, content, where, what):
    path = tmp_path / "pred.txt"
    path.write_text(content)
    with pytest.raises(InputError) as error:
        read_mot_predictions(path, num_frames=3)
    assert where in str(error.value) and what in str(error.value)


def test_missing_files_are_named(seq_dir, tmp_path):
    gt = read_mot_ground_truth(seq_dir)
    with pytest.raises(InputError, match="absent.txt: file not found"):
        load_predictions(tmp_path / "absent.txt", gt)
    (seq_dir / "gt" / "gt.txt").unlink()
    with pytest.raises(InputError, match=r"gt\.txt: file not found"):
        read_mot_ground_truth(seq_dir)
    shutil.rmtree(seq_dir / "gt")
    (seq_dir / "seqinfo.ini").unlink()
    with pytest.raises(InputError, match="seqinfo.ini: sequence info file not found"):
        read_mot_ground_truth(seq_dir)
    with pytest.raises(InputError, match="expected a sequence folder with seqinfo.ini"):
        load_ground_truth(seq_dir)


@pytest.mark.parametrize(
    ("ini", "what"),
    [
        ("[Other]\nseqLength=3\n", r"expected a \[Sequence\] section"),
        ("[Sequence]\nname=x\n", "seqLength: expected an integer >= 1, got ''"),
        ("[Sequence]\nseqLength=0\n", "seqLength: expected an integer >= 1"),
        ("[Sequence]\nseqLength=3\nframeRate=fast\n", "frameRate: expected a finite number"),
        ("seqLength=3\n", "not a valid INI file"),
    ],
)
def test_bad_seqinfo_is_named(seq_dir, ini, what):
    (seq_dir / "seqinfo.ini").write_text(ini)
    with pytest.raises(InputError, match=what) as error:
        read_mot_ground_truth(seq_dir)
    assert "seqinfo.ini" in str(error.value)
