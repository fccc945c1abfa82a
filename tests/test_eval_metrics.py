"""Our metrics against references: motmetrics' shipped TUD results, TrackEval's own path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from kpr_track.evaluation.evaluate import evaluate

PETS09 = ("data", "PETS09-S2L1")
# motmetrics 1.4.0's own reader, under pandas 3; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Operation with tuple is deprecated")

# motmetrics 1.4.0 tests/test_metrics.py::test_motchallenge_files, the reference for
# TUD-Campus / TUD-Stadtmitte (motmetrics' MOTP is a distance, 1 - IoU).
TUD_EXPECTED = {
    "TUD-Campus": dict(
        IDF1=0.557659, IDP=0.729730, IDR=0.451253, Recall=0.582173, Precision=0.941441,
        gt_ids=8, MT=1, PT=6, ML=1, FP=13, FN=150, IDSW=7, Frag=7, MOTA=0.526462,
        MOTP=1 - 0.277201,
    ),
    "TUD-Stadtmitte": dict(
        IDF1=0.644619, IDP=0.819760, IDR=0.531142, Recall=0.608997, Precision=0.939920,
        gt_ids=10, MT=5, PT=4, ML=1, FP=45, FN=452, IDSW=7, Frag=6, MOTA=0.564014,
        MOTP=1 - 0.345904,
    ),
    "COMBINED": dict(
        IDF1=0.624296, IDP=0.799176, IDR=0.512211, Recall=0.602640, Precision=0.940268,
        gt_ids=18, MT=6, PT=10, ML=2, FP=58, FN=602, IDSW=14, Frag=13, MOTA=0.555116,
        MOTP=1 - 0.330177,
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def mm():
    """motmetrics, with the one shim it needs under NumPy 2 (np.asfarray was removed)."""
    if not hasattr(np, "asfarray"):
        np.asfarray = lambda a, dtype=float: np.asarray(a, dtype=dtype)
    import motmetrics

    return motmetrics


def tud_sequence(mm, name: str, root: Path) -> tuple[Path, Path]:
    """motmetrics' TUD ground truth as a sequence folder, and its reference tracker output."""
    data = Path(mm.__file__).parent / "data" / name
    seq = root / name
    (seq / "gt").mkdir(parents=True)
    num_frames = int(np.loadtxt(data / "gt.txt", delimiter=",")[:, 0].max())
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nseqLength={num_frames}\n")
    shutil.copy(data / "gt.txt", seq / "gt" / "gt.txt")
    return seq, data / "test.txt"


def test_tud_reproduces_motmetrics_reference(mm, tmp_path):
    pairs = [tud_sequence(mm, name, tmp_path) for name in ("TUD-Campus", "TUD-Stadtmitte")]
    results = evaluate([gt for gt, _ in pairs], [pred for _, pred in pairs])
    for name, expected in TUD_EXPECTED.items():
        got = results["combined"] if name == "COMBINED" else results["sequences"][name]
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-6), (name, key)


def perturbed_prediction(
    gt_txt: Path, out: Path, seed: int = 0, *, drop_frames: bool = True, ignored: bool = False
) -> None:
    """A tracker output made from gt: jitter, an id swap, dropped frames, false positives.

    ``ignored`` keeps boxes on rows the consider flag excludes (distractors in MOT17).
    """
    rng = np.random.default_rng(seed)
    rows = np.loadtxt(gt_txt, delimiter=",")
    pred = rows[(rows[:, 6] != 0) | ignored, :7].copy()
    pred[:, 6] = 1.0
    pred[:, 2:4] += rng.normal(0.0, 3.0, (len(pred), 2))
    pred[:, 4:6] *= rng.uniform(0.85, 1.15, (len(pred), 2))
    first, second = np.unique(pred[:, 1])[:2]  # swap these two people from mid-sequence
    later = pred[:, 0] > np.median(pred[:, 0])
    swap_a, swap_b = later & (pred[:, 1] == first), later & (pred[:, 1] == second)
    pred[swap_a, 1], pred[swap_b, 1] = second, first
    frames = np.unique(pred[:, 0])
    dropped = rng.choice(frames, len(frames) // 10 if drop_frames else 0, replace=False)
    pred = pred[~np.isin(pred[:, 0], dropped)]
    pred = pred[rng.random(len(pred)) > 0.05]
    false = pred[rng.choice(len(pred), len(pred) // 20)].copy()
    false[:, 2] += rng.uniform(60.0, 200.0, len(false))
    false[:, 1] = 1000 + np.arange(len(false))
    pred = np.concatenate([pred, false])
    np.savetxt(out, pred[np.argsort(pred[:, 0], kind="stable")], delimiter=",", fmt="%.3f")


def trackeval_reference(seq_dirs: list[Path], preds: list[Path], root: Path, benchmark: str):
    """TrackEval's own path: MotChallenge2DBox on a TrackEval folder layout + Evaluator."""
    import trackeval

    for seq_dir, pred in zip(seq_dirs, preds, strict=True):
        shutil.copytree(seq_dir, root / "gt" / seq_dir.name, ignore=lambda d, names: ["video.mp4"])
        tracker = root / "trackers" / "ours" / "data"
        tracker.mkdir(parents=True, exist_ok=True)
        shutil.copy(pred, tracker / f"{seq_dir.name}.txt")
    quiet = {"PRINT_CONFIG": False}
    evaluator = trackeval.Evaluator(
        {
            **quiet,
            "PRINT_RESULTS": False,
            "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
            "LOG_ON_ERROR": None,
        }
    )
    dataset = trackeval.datasets.MotChallenge2DBox(
        {
            **quiet,
            "GT_FOLDER": str(root / "gt"),
            "TRACKERS_FOLDER": str(root / "trackers"),
            "SKIP_SPLIT_FOL": True,
            "BENCHMARK": benchmark,
            "SEQ_INFO": {seq_dir.name: None for seq_dir in seq_dirs},
            "TRACKERS_TO_EVAL": ["ours"],
        }
    )
    metrics = [
        trackeval.metrics.HOTA(),
        trackeval.metrics.CLEAR(dict(quiet)),
        trackeval.metrics.Identity(dict(quiet)),
    ]
    results, _ = evaluator.evaluate([dataset], metrics)
    return {seq: res["pedestrian"] for seq, res in results["MotChallenge2DBox"]["ours"].items()}


def assert_matches_trackeval(ours: dict, reference: dict) -> None:
    for name in ("HOTA", "DetA", "AssA", "LocA"):
        assert ours[name] == pytest.approx(np.mean(reference["HOTA"][name]), abs=1e-6), name
    for name in ("MOTA", "MOTP", "IDSW", "Frag"):
        assert ours[name] == pytest.approx(reference["CLEAR"][name], abs=1e-6), name
    for name in ("IDF1", "IDP", "IDR"):
        assert ours[name] == pytest.approx(reference["Identity"][name], abs=1e-6), name


def motmetrics_reference(mm, seq_dir: Path, pred: Path, root: Path) -> dict[str, float]:
    """motmetrics on the considered ground-truth rows (it has no consider flag of its own)."""
    gt = np.loadtxt(seq_dir / "gt" / "gt.txt", delimiter=",")
    np.savetxt(root / "gt_considered.txt", gt[gt[:, 6] != 0], delimiter=",", fmt="%.4f")
    accumulator = mm.utils.compare_to_groundtruth(
        mm.io.loadtxt(root / "gt_considered.txt"), mm.io.loadtxt(pred), "iou", distth=0.5
    )
    names = {"MOTA": "mota", "IDF1": "idf1", "IDP": "idp", "IDR": "idr", "IDSW": "num_switches"}
    names["Frag"] = "num_fragmentations"
    values = mm.metrics.create().compute(accumulator, list(names.values()), return_dataframe=False)
    return {ours: values[theirs] for ours, theirs in names.items()}


def test_pets09_perturbed_matches_trackeval_and_motmetrics(mm, tmp_path):
    seq_dir = shared_path(*PETS09)
    pred = tmp_path / "pred.txt"
    perturbed_prediction(seq_dir / "gt" / "gt.txt", pred)
    ours = evaluate([seq_dir], [pred])["sequences"]["PETS09-S2L1"]
    reference = trackeval_reference([seq_dir], [pred], tmp_path / "trackeval", "MOT15")
    assert_matches_trackeval(ours, reference["PETS09-S2L1"])
    assert 0.3 < ours["HOTA"] < 0.9 and ours["IDSW"] >= 1 and ours["FP"] > 0  # a real test
    reference = motmetrics_reference(mm, seq_dir, pred, tmp_path)
    for name in ("MOTA", "IDF1", "IDP", "IDR", "IDSW"):
        assert ours[name] == pytest.approx(reference[name], abs=1e-6), name
    # TrackEval's CLEAR skips frames without any prediction when it follows fragmentations,
    # so a frame dropped whole does not fragment a track there; motmetrics counts it.
    assert ours["Frag"] < reference["Frag"]


def test_pets09_fragmentations_match_motmetrics_without_empty_frames(mm, tmp_path):
    seq_dir = shared_path(*PETS09)
    pred = tmp_path / "pred.txt"
    perturbed_prediction(seq_dir / "gt" / "gt.txt", pred, seed=1, drop_frames=False)
    ours = evaluate([seq_dir], [pred])["combined"]
    reference = motmetrics_reference(mm, seq_dir, pred, tmp_path)
    for name in ("MOTA", "IDF1", "IDSW"):
        assert ours[name] == pytest.approx(reference[name], abs=1e-6), name
    # TrackEval also counts a track resumed after a gap in the ground truth itself (a
    # person hidden from the annotation); motmetrics looks only at annotated frames.
    gt = np.loadtxt(seq_dir / "gt" / "gt.txt", delimiter=",")
    gt = gt[gt[:, 6] != 0]
    gaps = sum(int((np.diff(np.sort(gt[gt[:, 1] == i, 0])) > 1).sum()) for i in np.unique(gt[:, 1]))
    assert reference["Frag"] > 50 and gaps == 2
    assert reference["Frag"] <= ours["Frag"] <= reference["Frag"] + gaps


def test_mot17_distractor_rules_and_combination_match_trackeval(tmp_path):
    root = shared_path("data", "MOT17-mini", "train")
    seq_dirs = sorted(root.iterdir())
    preds = []
    for index, seq_dir in enumerate(seq_dirs):
        preds.append(tmp_path / f"{seq_dir.name}.txt")
        perturbed_prediction(seq_dir / "gt" / "gt.txt", preds[-1], seed=index, ignored=True)
    results = evaluate(seq_dirs, preds)
    reference = trackeval_reference(seq_dirs, preds, tmp_path / "trackeval", "MOT17")
    for seq_dir in seq_dirs:
        assert_matches_trackeval(results["sequences"][seq_dir.name], reference[seq_dir.name])
    assert_matches_trackeval(results["combined"], reference["COMBINED_SEQ"])
    # Without the rules, predictions on distractors and static people count as false positives.
    unfiltered = evaluate(seq_dirs, preds, filters=False)["combined"]
    assert unfiltered["FP"] > results["combined"]["FP"]


def test_ground_truth_against_itself_is_perfect(tmp_path):
    seq_dir = shared_path(*PETS09)
    gt = np.loadtxt(seq_dir / "gt" / "gt.txt", delimiter=",")
    np.savetxt(tmp_path / "pred.txt", gt[gt[:, 6] != 0], delimiter=",", fmt="%.4f")
    result = evaluate([seq_dir], [tmp_path / "pred.txt"])["combined"]
    for name in ("HOTA", "DetA", "AssA", "LocA", "MOTA", "IDF1", "IDP", "IDR"):
        assert result[name] == pytest.approx(1.0, abs=1e-9), name
    assert (result["IDSW"], result["FP"], result["FN"]) == (0, 0, 0)
    assert (result["gt_ids"], result["gt_dets"], result["frames"]) == (19, 4476, 795)
