"""Property-based tests of every reader (hypothesis).

Random files and mutated copies of real files must either parse or raise our own error
(:class:`InputError`, :class:`ConfigError` or :class:`WeightsError`) on one line that
names the file: never another exception. Valid files generated from known values must
read back exactly those values (no silent wrong value). Each test runs ``EXAMPLES``
examples (``pytest --hypothesis-show-statistics`` prints the counts).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import shared_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpr_track.config import available_presets
from kpr_track.detectors.files import MotFileDetector, read_mot_rows
from kpr_track.errors import ConfigError, InputError, WeightsError
from kpr_track.evaluation.mot import read_mot_ground_truth, read_mot_table, read_seqinfo
from kpr_track.evaluation.posetrack import (
    read_posetrack_ground_truth,
    read_posetrack_mot_ground_truth,
    read_posetrack_predictions,
)
from kpr_track.reid.model import load_kpr_weights
from kpr_track.trackers import load_tracker, shipped_presets
from kpr_track.train.config import load_train_config
from kpr_track.train.dataset import load_reid_split, read_split_file
from kpr_track.train.split_builder import write_split_file
from kpr_track.weights import REGISTRY, file_sha256, resolve_weights

EXAMPLES = 250
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
POSETRACK_VIDEO = "012834_mpii_test"  # 11 annotated people in one frame

# --- strategies ------------------------------------------------------------------------

TEXT_FIELDS = st.one_of(
    st.text(max_size=8),
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from(["", " ", "nan", "-inf", "1e400", "-1", "0", "0.5", "1e-320", "0x1"]),
)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6))
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=8,
)


@st.composite
def mutated_lines(draw, lines: list[str]) -> str:
    """Comma-separated ``lines`` with 1-3 fields replaced, dropped or added, or a line
    replaced by random text."""
    rows = [line.split(",") for line in lines]
    for _ in range(draw(st.integers(1, 3))):
        row = rows[draw(st.integers(0, len(rows) - 1))]
        action = draw(st.sampled_from(["replace", "drop", "add", "line"]))
        column = draw(st.integers(0, max(len(row) - 1, 0)))
        if action == "replace" and row:
            row[column] = draw(TEXT_FIELDS)
        elif action == "drop" and row:
            del row[column]
        elif action == "add":
            row.insert(column, draw(TEXT_FIELDS))
        else:
            row[:] = [draw(st.text(max_size=40))]
    return "".join(",".join(row) + "\n" for row in rows)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) inside a JSON document."""
    found = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return found
    for key, child in items:
        found.append((value, key))
        found.extend(_slots(child))
    return found


@st.composite
def mutated_json(draw, document: Any) -> Any:
    """``document`` with 1-3 values replaced by random JSON, deleted or added to."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(document)
        if not slots:
            return draw(JSON_VALUES)
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            container[key] = draw(JSON_VALUES)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.text(max_size=6))] = draw(JSON_VALUES)
        else:
            container.insert(key, draw(JSON_VALUES))
    return document


def _write(path: Path, content: str | bytes | Any) -> Path:
    """Text or bytes as is; anything else as JSON (NaN and Infinity allowed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_text(json.dumps(content))
    return path


def parses_or_names_file(
    path: Path, read: Callable[[], Any], errors: tuple[type, ...] = (InputError,)
) -> Any:
    """``read()``'s result, or None when it raised one of ``errors`` on one line naming
    ``path`` (a file, or the folder of the files read). Any other exception fails the
    test."""
    try:
        return read()
    except errors as error:
        message = str(error)
        assert str(path) in message, message
        assert "\n" not in message, message
        return None


def _text_or_bytes(mutations: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(mutations, st.text(max_size=200), st.binary(max_size=200))


# --- MOTChallenge text: det.txt, gt.txt, results -------------------------------------------


@pytest.fixture(scope="module")
def pets_det_lines() -> list[str]:
    return shared_path("data", "PETS09-S2L1", "det", "det.txt").read_text().splitlines()[:20]


@pytest.fixture(scope="module")
def pets_gt_lines() -> list[str]:
    return shared_path("data", "PETS09-S2L1", "gt", "gt.txt").read_text().splitlines()[:20]


@FUZZ
@given(data=st.data())
def test_mot_detections_parse_or_name_the_file(tmp_path, pets_det_lines, data):
    content = data.draw(_text_or_bytes(mutated_lines(pets_det_lines)))
    path = _write(tmp_path / "det.txt", content)
    kind = data.draw(st.sampled_from(["det", "gt"]))
    detector = parses_or_names_file(path, lambda: MotFileDetector(path, kind=kind))
    if detector is not None:
        for frame_id in detector.frame_ids:
            found = detector.detect(np.zeros((4, 4, 3), np.uint8), frame_id)
            assert np.isfinite(found.boxes).all() and np.isfinite(found.scores).all()
            assert ((found.scores >= 0) & (found.scores <= 1)).all()


ROWS = st.lists(
    st.tuples(
        st.integers(1, 10**6),
        st.integers(-1, 10**6),
        st.floats(-1e4, 1e4),
        st.floats(-1e4, 1e4),
        st.floats(1e-3, 1e4),
        st.floats(1e-3, 1e4),
        st.floats(-10, 200),
    ),
    min_size=1,
    max_size=20,
)


@FUZZ
@given(rows=ROWS)
def test_mot_detections_read_back_exactly(tmp_path, rows):
    path = _write(tmp_path / "det.txt", "".join(",".join(map(repr, r)) + "\n" for r in rows))
    np.testing.assert_array_equal(read_mot_rows(path), np.asarray(rows, np.float64))


@FUZZ
@given(data=st.data())
def test_mot_table_parses_or_names_the_file(tmp_path, pets_gt_lines, data):
    content = data.draw(_text_or_bytes(mutated_lines(pets_gt_lines)))
    path = _write(tmp_path / "gt.txt", content)
    table = parses_or_names_file(path, lambda: read_mot_table(path, 795))
    if table is not None:
        assert np.isfinite(table).all() and table.shape[1] >= 7
        assert ((table[:, 0] >= 1) & (table[:, 0] <= 795)).all()


@FUZZ
@given(rows=ROWS, num_frames=st.integers(1, 10**6))
def test_mot_table_reads_back_exactly(tmp_path, rows, num_frames):
    unique = {(frame % num_frames + 1, abs(track)): rest for frame, track, *rest in rows}
    expected = np.asarray([[*key, *rest] for key, rest in unique.items()], np.float64)
    text = "".join(",".join(map(repr, row)) + "\n" for row in expected.tolist())
    path = _write(tmp_path / "gt.txt", text)
    np.testing.assert_array_equal(read_mot_table(path, num_frames), expected)


SEQINFO = "[Sequence]\nname=PETS09-S2L1\nimDir=img1\nframeRate=7\nseqLength=795\nimWidth=768\nimHeight=576\nimExt=.jpg\n"  # noqa: E501


@FUZZ
@given(data=st.data())
def test_seqinfo_and_ground_truth_parse_or_name_the_file(tmp_path, pets_gt_lines, data):
    seqinfo = data.draw(
        st.one_of(
            mutated_lines(SEQINFO.splitlines()).map(lambda text: text.replace(",", "=")),
            st.text(max_size=200).map(lambda text: "[Sequence]\n" + text),
            st.binary(max_size=100),
        )
    )
    path = _write(tmp_path / "seq" / "seqinfo.ini", seqinfo)
    _write(tmp_path / "seq" / "gt" / "gt.txt", "\n".join(pets_gt_lines) + "\n")
    info = parses_or_names_file(path, lambda: read_seqinfo(path.parent))
    if info is not None:
        assert int(info["seqLength"]) >= 1
        gt = parses_or_names_file(path, lambda: read_mot_ground_truth(path.parent))
        if gt is not None and gt.image_size is not None:
            assert min(gt.image_size) >= 1


# --- PoseTrack21 JSON -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def posetrack_document() -> dict:
    """The real annotation file, its ignore regions cut to one short polygon (speed)."""
    folder = shared_path("data", "posetrack18-sample", "annotations", "val")
    document = json.loads((folder / f"{POSETRACK_VIDEO}.json").read_text())
    for image in document["images"]:
        for axis in ("x", "y"):
            image[f"ignore_regions_{axis}"] = [image[f"ignore_regions_{axis}"][1][:6]]
    return document


@pytest.fixture(scope="module")
def posetrack_gt(posetrack_document, tmp_path_factory):
    path = _write(tmp_path_factory.mktemp("gt") / "gt.json", posetrack_document)
    return read_posetrack_ground_truth(path)


def _check_tracks(tracks) -> None:
    assert np.isfinite(tracks.boxes).all() and np.isfinite(tracks.scores).all()
    assert (tracks.frames >= 1).all() and (tracks.ids >= 0).all()
    if tracks.keypoints is not None:
        assert np.isfinite(tracks.keypoints).all()


@FUZZ
@given(data=st.data())
def test_posetrack_ground_truth_parses_or_names_the_file(tmp_path, posetrack_document, data):
    document = data.draw(st.one_of(mutated_json(posetrack_document), JSON_VALUES))
    path = _write(tmp_path / "video.json", document)
    gt = parses_or_names_file(path, lambda: read_posetrack_ground_truth(path))
    if gt is not None:
        _check_tracks(gt.tracks)
        assert len(gt.image_frames) == gt.num_frames  # one frame per image id


@FUZZ
@given(data=st.data())
def test_posetrack_predictions_parse_or_name_the_file(
    tmp_path, posetrack_document, posetrack_gt, data
):
    document = data.draw(st.one_of(mutated_json(posetrack_document), JSON_VALUES))
    path = _write(tmp_path / "tracks.json", document)
    tracks = parses_or_names_file(path, lambda: read_posetrack_predictions(path, posetrack_gt))
    if tracks is not None:
        _check_tracks(tracks)
        assert (tracks.frames <= posetrack_gt.num_frames).all()


@FUZZ
@given(data=st.data())
def test_posetrack_mot_layout_parses_or_names_the_file(tmp_path, posetrack_document, data):
    images = [
        {"id": image["id"], "frame_index": n + 1, "is_labeled": True}
        | {k: v for k, v in image.items() if k.startswith("ignore_regions")}
        for n, image in enumerate(posetrack_document["images"])
    ]
    info = data.draw(st.one_of(mutated_json(images), JSON_VALUES))
    path = _write(tmp_path / "seq" / "image_info.json", info)
    _write(tmp_path / "seq" / "gt" / "gt.txt", "1,3,10,20,30,40,1,-1,-1\n")
    gt = parses_or_names_file(path.parent, lambda: read_posetrack_mot_ground_truth(path.parent))
    if gt is not None:
        _check_tracks(gt.tracks)
        assert gt.labeled.shape == (gt.num_frames,)


# --- tracker and training YAML presets --------------------------------------------------------


def _yaml_preset(kind: str, name: str) -> dict:
    return yaml.safe_load(available_presets(kind)[name].read_text())


YAML_VALUES = st.one_of(
    JSON_VALUES.filter(lambda v: not isinstance(v, float) or v == v),
    st.sampled_from([".inf", "-.inf", ".nan", "yes", "2024-01-01", "1e3", "0x10", "~"]).map(
        lambda text: yaml.safe_load(f"v: {text}")["v"]
    ),
)


@st.composite
def mutated_mapping(draw, mapping: dict, values=YAML_VALUES) -> Any:
    """A flat or two-level YAML mapping with 1-3 keys replaced, removed or added."""
    mapping = copy.deepcopy(mapping)
    for _ in range(draw(st.integers(1, 3))):
        slots = [(mapping, key) for key in mapping] + [
            (inner, key) for inner in mapping.values() if isinstance(inner, dict) for key in inner
        ]
        container, key = draw(st.sampled_from(slots)) if slots else (mapping, "x")
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            container[key] = draw(values)
        elif action == "delete":
            container.pop(key, None)
        else:
            container[draw(st.one_of(st.text(max_size=8), st.integers()))] = draw(values)
    return mapping


def _dump_yaml(document: Any) -> str:
    return document if isinstance(document, str) else yaml.safe_dump(document)


@FUZZ
@given(data=st.data())
def test_tracker_presets_parse_or_name_the_file(tmp_path, data):
    preset = _yaml_preset("trackers", data.draw(st.sampled_from(shipped_presets())))
    document = data.draw(st.one_of(mutated_mapping(preset), st.text(max_size=200)))
    path = _write(tmp_path / "tracker.yaml", _dump_yaml(document))
    tracker = parses_or_names_file(path, lambda: load_tracker(path), (ConfigError,))
    if tracker is not None and isinstance(document, dict):
        for key, value in document.items():
            if key not in ("tracker", "link"):  # link: the linking pass's own section
                assert_held(getattr(tracker.config, key), value, key)


@FUZZ
@given(data=st.data())
def test_training_presets_parse_or_name_the_file(tmp_path, data):
    preset = _yaml_preset("train", "kpr_osnet0287_mot17_02")
    document = data.draw(st.one_of(mutated_mapping(preset), st.text(max_size=200)))
    path = _write(tmp_path / "train.yaml", _dump_yaml(document))
    config = parses_or_names_file(path, lambda: load_train_config(path), (ConfigError,))
    if config is not None and isinstance(document, dict):
        for section, values in document.items():
            for key, value in values.items():
                assert_held(getattr(getattr(config, section), key), value, (section, key))


def assert_held(stored, value, name) -> None:
    """A parsed setting equals the value written; an integer given for a float setting is
    held as the nearest float (2**53 + 1 becomes 2**53)."""
    expected = float(value) if isinstance(stored, float) else value
    assert stored == expected, name


# --- training split files ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def split_root(posetrack_document, tmp_path_factory) -> Path:
    """The PoseTrack18 sample video in the Occluded-PoseTrack-ReID layout."""
    root = tmp_path_factory.mktemp("split")
    ids = [a["id"] for a in posetrack_document["annotations"]]
    labels = {i: ("query" if n < 3 else "gallery") for n, i in enumerate(ids)}
    write_split_file(root / "occluded_posetrack_reid" / "val_dataset_sampling.json", labels)
    return root


@FUZZ
@given(data=st.data())
def test_split_files_parse_or_name_the_file(tmp_path, split_root, data):
    real = json.loads(
        (split_root / "occluded_posetrack_reid" / "val_dataset_sampling.json").read_text()
    )
    document = data.draw(st.one_of(mutated_json(real), JSON_VALUES))
    path = _write(tmp_path / "val_dataset_sampling.json", document)
    labels = parses_or_names_file(path, lambda: read_split_file(path))
    if labels is not None:
        assert sorted(labels) == sorted(document["id"].values())
        assert set(labels.values()) <= {"train", "query", "gallery", "none"}


@FUZZ
@given(data=st.data())
def test_split_annotations_parse_or_name_the_file(split_root, posetrack_document, data):
    document = data.draw(st.one_of(mutated_json(posetrack_document), JSON_VALUES))
    _write(split_root / "posetrack_data" / "val" / f"{POSETRACK_VIDEO}.json", document)
    # Errors name the annotation file, or the split file for ids no annotation holds.
    samples = parses_or_names_file(split_root, lambda: load_reid_split(split_root, "val"))
    for sample in samples or []:
        assert np.isfinite(sample.box).all()
        assert np.isfinite(sample.keypoints).all() and sample.keypoints.shape == (17, 3)
        assert isinstance(sample.frame, int) and isinstance(sample.image, Path)


# --- the weights registry's inputs -------------------------------------------------------------


ODD_PATHS = st.sampled_from(["~no-such-user/w", "~", "x" * 300, "/dev/null", ".", "/"])


def _breaks(text: str) -> bool:
    """True if ``text`` holds a line break (a path with one cannot print on one line;
    the CLI escapes them)."""
    return len(f"{text}.".splitlines()) > 1


@FUZZ
@given(
    name=st.one_of(st.sampled_from(sorted(REGISTRY)), st.text(max_size=12)),
    explicit=st.one_of(st.none(), st.text(max_size=30).filter(lambda t: not _breaks(t)), ODD_PATHS),
    home=st.one_of(
        st.text(max_size=30).filter(lambda text: "\x00" not in text and not _breaks(text)),
        ODD_PATHS,
    ),
    content=st.binary(max_size=64),
)
def test_weights_resolver_finds_a_verified_file_or_says_why(
    tmp_path, monkeypatch, name, explicit, home, content
):
    monkeypatch.setenv("KPR_TRACK_HOME", str(tmp_path / "cache") if home == "" else home)
    monkeypatch.chdir(tmp_path)
    if name in REGISTRY and home == "":
        _write(tmp_path / "cache" / REGISTRY[name].filename, content)
    try:
        path = resolve_weights(name, explicit, offline=True)
    except WeightsError as error:
        assert "\n" not in str(error)
        return
    assert path.is_file()
    if explicit is None:
        assert file_sha256(path) == REGISTRY[name].sha256


@pytest.fixture(scope="module")
def shipped_head() -> bytes:
    return resolve_weights("kpr-osnet-0287-mot17-02", offline=True).read_bytes()


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_kpr_head_files_load_or_name_the_file(tmp_path, shipped_head, data):
    header = int.from_bytes(shipped_head[:8], "little") + 8
    cut = data.draw(st.integers(0, header + 64))
    flips = data.draw(st.lists(st.tuples(st.integers(0, header - 1), st.integers(0, 255))))
    content = bytearray(shipped_head[:cut] if data.draw(st.booleans()) else shipped_head)
    for position, value in flips:
        if position < len(content):
            content[position] = value
    path = _write(tmp_path / "head.safetensors", bytes(content))
    parses_or_names_file(path, lambda: load_kpr_weights(path), (WeightsError,))
