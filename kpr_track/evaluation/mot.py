"""Readers for MOTChallenge text files: ``seqinfo.ini``, ``gt/gt.txt`` and tracker results.

Format (https://motchallenge.net/instructions/, MOT16 paper arXiv 1603.00831 §3.3): one
box per line, ``frame,id,left,top,width,height,conf,x,y,z`` with frames from 1. In
ground truth, column 7 is a consider flag (0 = ignore) and, from MOT16 on, column 8 a
class (1 pedestrian; 2 person on vehicle, 7 static person, 8 distractor and 12
reflection are distractors) and column 9 a visibility ratio. MOT15 files put world
coordinates or -1 in columns 8-10. Fields are separated by commas or whitespace.
"""

from __future__ import annotations

import configparser
import math
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.textfiles import read_lines
from .sequence import GroundTruth, Protocol, Tracks

COLUMN_NAMES = ("frame", "id", "left", "top", "width", "height", "conf", "x", "y", "z")
MIN_COLUMNS = 7
# TrackEval's MotChallenge2DBox class ids (1 pedestrian ... 13 crowd).
MOT_CLASS_IDS = range(1, 14)


def read_seqinfo(seq_dir: Path) -> dict[str, str]:
    """The ``[Sequence]`` section of ``seq_dir/seqinfo.ini``.

    Raises:
        InputError: if the file is missing or has no integer ``seqLength`` >= 1.
    """
    path = Path(seq_dir) / "seqinfo.ini"
    if not path.is_file():
        raise InputError(
            f"{path}: sequence info file not found (expected a MOTChallenge "
            "sequence folder with seqinfo.ini and gt/gt.txt)"
        )
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep the camelCase keys
    try:
        parser.read_string("\n".join(read_lines(path)), str(path))
    except configparser.Error as error:
        raise InputError(f"{path}: not a valid INI file ({error})".replace("\n", " ")) from None
    if "Sequence" not in parser:
        raise InputError(f"{path}: expected a [Sequence] section")
    info = dict(parser["Sequence"])
    length = info.get("seqLength", "")
    if not length.strip().isascii() or not length.strip().isdigit() or int(length) < 1:
        raise InputError(f"{path}: [Sequence] seqLength: expected an integer >= 1, got {length!r}")
    return info


def read_mot_ground_truth(seq_dir: str | Path) -> GroundTruth:
    """Read a MOTChallenge sequence folder (``seqinfo.ini`` + ``gt/gt.txt``).

    The images may be a folder (``imDir``) or a video next to it; neither is opened.
    The protocol is MOT17 (MOT20 for sequences named ``MOT20*``) when column 8 holds
    MOTChallenge class ids on every line, else MOT15 (consider flag only).

    Raises:
        InputError: on a missing file or a malformed line (file and line named).
    """
    seq_dir = Path(seq_dir)
    info = read_seqinfo(seq_dir)
    num_frames = int(info["seqLength"])
    gt_path = seq_dir / "gt" / "gt.txt"
    table = read_mot_table(gt_path, num_frames)
    classes = None
    protocol: Protocol = "MOT15"
    if table.shape[1] >= 8 and np.all(np.isin(table[:, 7], MOT_CLASS_IDS)):
        classes = table[:, 7].astype(np.int64)
        protocol = "MOT20" if info.get("name", seq_dir.name).startswith("MOT20") else "MOT17"
    tracks = Tracks(
        frames=table[:, 0].astype(np.int64),
        ids=table[:, 1].astype(np.int64),
        boxes=table[:, 2:6].copy(),
        scores=table[:, 6].copy(),
        classes=classes,
    )
    seqinfo = seq_dir / "seqinfo.ini"
    width = _optional_number(info, "imWidth", seqinfo)
    height = _optional_number(info, "imHeight", seqinfo)
    for key, size in (("imWidth", width), ("imHeight", height)):
        if size is not None and (size < 1 or size != int(size)):
            raise InputError(f"{seqinfo}: [Sequence] {key}: expected an integer >= 1, got {size}")
    return GroundTruth(
        name=info.get("name", seq_dir.name),
        num_frames=num_frames,
        tracks=tracks,
        protocol=protocol,
        source=gt_path,
        labeled=np.ones(num_frames, bool),
        frame_rate=_optional_number(info, "frameRate", seqinfo),
        image_size=None if width is None or height is None else (int(width), int(height)),
    )


def read_mot_predictions(path: str | Path, num_frames: int) -> Tracks:
    """Read tracker results in MOTChallenge text format (7 to 10 columns).

    Args:
        path: the results file.
        num_frames: the sequence length; frames must lie in ``1..num_frames``.

    Returns:
        The boxes with ``scores`` = column 7 (confidence).

    Raises:
        InputError: on a missing file or a malformed line (file and line named).
    """
    path = Path(path)
    table = read_mot_table(path, num_frames)
    return Tracks(
        frames=table[:, 0].astype(np.int64),
        ids=table[:, 1].astype(np.int64),
        boxes=table[:, 2:6].copy(),
        scores=table[:, 6].copy(),
    )


def read_mot_table(path: Path, num_frames: int) -> np.ndarray:
    """Parse and validate a MOTChallenge text file.

    Every line needs the same number of columns (7 to 10), finite numbers, an integer
    frame in ``1..num_frames`` and a non-negative integer id, at most once per frame.

    Returns:
        `(R, C)` float64 table in file order (`(0, 7)` for an empty file).

    Raises:
        InputError: naming the file and line of the first problem.
    """
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    rows: list[list[float]] = []
    first_line_of: dict[tuple[int, int], int] = {}
    num_columns = 0
    for line_number, line in enumerate(read_lines(path), start=1):
        text = line.strip()
        if not text:
            continue
        fields = [f.strip() for f in text.split(",")] if "," in text else text.split()
        where = f"{path}:{line_number}"
        if num_columns == 0:
            if not MIN_COLUMNS <= len(fields) <= len(COLUMN_NAMES):
                raise InputError(
                    f"{where}: expected {MIN_COLUMNS} to {len(COLUMN_NAMES)} columns "
                    f"(frame,id,left,top,width,height,conf[,x,y,z]), got {len(fields)}"
                )
            num_columns = len(fields)
        elif len(fields) != num_columns:
            raise InputError(
                f"{where}: expected {num_columns} columns as on the first line, got {len(fields)}"
            )
        values = [
            _number(field, f"column {COLUMN_NAMES[i]!r}", where) for i, field in enumerate(fields)
        ]
        frame, track_id = _integer(values[0], "frame", where), _integer(values[1], "id", where)
        if not 1 <= frame <= num_frames:
            raise InputError(
                f"{where}: frame {frame} is outside the sequence (expected 1..{num_frames})"
            )
        if track_id < 0:
            raise InputError(f"{where}: id {track_id}: expected a non-negative integer")
        earlier = first_line_of.setdefault((frame, track_id), line_number)
        if earlier != line_number:
            raise InputError(
                f"{where}: id {track_id} appears twice in frame {frame} "
                f"(also on line {earlier}); expected one box per id and frame"
            )
        rows.append(values)
    if not rows:
        return np.zeros((0, MIN_COLUMNS))
    return np.asarray(rows, dtype=np.float64)


def _number(text: str, label: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(f"{where}: {label}: expected a finite number, got {text!r}")
    return value


def _integer(value: float, column: str, where: str) -> int:
    if value != int(value) or abs(value) >= 2**63:
        raise InputError(f"{where}: column {column!r}: expected an integer, got {value}")
    return int(value)


def _optional_number(info: dict[str, str], key: str, path: Path) -> float | None:
    if key not in info:
        return None
    return _number(info[key], key, f"{path}: [Sequence]")
