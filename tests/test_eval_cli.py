"""``kpr-track eval`` end to end: table, JSON output, one-line errors with exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import shared_path

from kpr_track.cli import main


@pytest.fixture
def pets_pred(tmp_path):
    """PETS09-S2L1 ground truth (considered rows) as a tracker output, minus person 15."""
    gt = np.loadtxt(shared_path("data", "PETS09-S2L1", "gt", "gt.txt"), delimiter=",")
    path = tmp_path / "PETS09-S2L1.txt"
    np.savetxt(path, gt[(gt[:, 6] != 0) & (gt[:, 1] != 15)], delimiter=",", fmt="%.3f")
    return path


def test_eval_prints_table_and_writes_json(tmp_path, pets_pred, capsys):
    out = tmp_path / "results" / "eval.json"
    seq = shared_path("data", "PETS09-S2L1")
    assert main(["eval", "--gt", str(seq), "--pred", str(pets_pred), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "sequence", "HOTA", "DetA", "AssA", "LocA", "MOTA", "IDF1", "IDP", "IDR", "IDSW", "Frag",
    ]  # fmt: skip
    assert lines[1].startswith("PETS09-S2L1") and lines[2].startswith("COMBINED")
    assert lines[1].split()[1:] == lines[2].split()[1:]
    assert lines[1].split()[7] == "100.00"  # IDP: every predicted box is right
    results = json.loads(out.read_text())
    combined = results["combined"]
    assert combined["IDP"] == 1.0 and combined["FP"] == 0 and 0.8 < combined["IDR"] < 1.0
    assert combined["gt_ids"] == 19 and results["filters"] is True
    assert results["inputs"][0]["protocol"] == "MOT15"


def test_no_filters_is_reported(pets_pred, capsys):
    seq = shared_path("data", "PETS09-S2L1")
    assert main(["eval", "--gt", str(seq), "--pred", str(pets_pred), "--no-filters"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(filters off: --no-filters)")


@pytest.mark.parametrize(
    ("pred_args", "message"),
    [
        (["--pred", "missing.txt"], "missing.txt: file not found"),
        ([], "expected one prediction file per ground truth, got 2"),
    ],
)
def test_errors_are_one_line_with_status_2(tmp_path, pets_pred, capsys, pred_args, message):
    seq = str(shared_path("data", "PETS09-S2L1"))
    args = ["eval", "--gt", seq, "--gt", seq, "--pred", str(pets_pred)]
    if pred_args:
        args = ["eval", "--gt", seq, *pred_args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kpr-track eval: error:") and message in err and "\n" not in err
